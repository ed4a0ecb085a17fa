//! `faultline report`: one self-contained HTML page per scenario (styles
//! and the message timeline inline, PNG charts beside it), and an index
//! that puts several designs side by side on the same seeds.
//!
//! Why it is over 800 lines: the page, its comparison table and its charts
//! are one output format; the numbers come from `sweep` and `outcome`.
//!
//! Nothing in a page refers to the network, and every name that comes from
//! a scenario file is escaped. Charts are drawn by plotters with a bundled
//! font, so they render on a machine with no fonts installed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::prelude::*;

use crate::outcome::{AppliedFault, Outcome};
use crate::scenario::Loaded;
use crate::sim::{SetupError, SimTime};
use crate::sweep::Summary;
use crate::trace::{NO_NODE, Record, RecordKind};

/// The font every chart uses (DejaVu Sans, Bitstream Vera licence: see
/// `assets/fonts/LICENSE-DejaVu.txt`).
const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Chart size in pixels.
const CHART: (u32, u32) = (960, 360);

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let registered = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
        assert!(registered.is_ok(), "the bundled font is valid");
    });
}

/// `s` with `&`, `<`, `>`, `"` and `'` escaped: safe in HTML text and attributes, and in SVG.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The system does not set up.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// A chart could not be drawn.
    #[error("cannot draw {path}: {message}")]
    Chart {
        /// The chart's path.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// One scenario's report: what its page shows.
pub struct Page<'a> {
    /// The scenario, as loaded.
    pub loaded: &'a Loaded,
    /// Its file as given.
    pub file: &'a str,
    /// Its text.
    pub text: &'a str,
    /// The run shown in detail (with its series and stories).
    pub outcome: &'a Outcome,
    /// Over many seeds, when the report sweeps.
    pub sweep: Option<&'a Summary>,
    /// Per seed of the sweep, in seed order: the entities lost (as the
    /// no-lost-entities and terminal-within invariants count them), or the
    /// messages lost when the scenario has neither (for the histogram).
    pub lost_per_seed: Option<&'a [u64]>,
}

/// What a seed lost, for a report's histogram: entities if an invariant
/// counts them, else messages; and the word for it.
pub fn lost_of(o: &Outcome) -> (u64, &'static str) {
    let counted: Vec<u64> = o.invariants.iter().filter_map(|v| v.counts.get("lost").copied()).collect();
    if counted.is_empty() { (o.metrics.lost, "messages") } else { (counted.iter().sum(), "entities") }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let err = |source| ReportError::Write { path: path.display().to_string(), source };
    let tmp = path.with_extension("partial");
    let written = fs::write(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(err)
}

/// The fault windows of a run, in seconds, for shading charts.
fn windows(faults: &[AppliedFault]) -> Vec<(f64, f64)> {
    faults.iter().map(|f| (f.from_ns as f64 / 1e9, f.until_ns.max(f.from_ns + 1) as f64 / 1e9)).collect()
}

/// Draws a PNG of `size` at `path`: into a temporary file, renamed into
/// place once drawn, so a failed chart leaves nothing behind.
fn png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<(), String>,
) -> Result<(), ReportError> {
    register_font();
    let tmp = path.with_extension("partial.png");
    if let Err(message) = draw(BitMapBackend::new(&tmp, size).into_drawing_area()) {
        let _ = fs::remove_file(&tmp);
        return Err(ReportError::Chart { path: path.display().to_string(), message });
    }
    fs::rename(&tmp, path).map_err(|source| ReportError::Write { path: path.display().to_string(), source })
}

/// A line chart over simulated time with fault windows shaded; PNG at `path`.
fn line_chart(
    path: &Path,
    title: &str,
    y_desc: &str,
    x_max: f64,
    lines: &[(String, Vec<(f64, f64)>)],
    faults: &[(f64, f64)],
) -> Result<(), ReportError> {
    let chart_err = |e: &dyn std::fmt::Display| e.to_string();
    png(path, CHART, |root| {
        root.fill(&WHITE).map_err(|e| chart_err(&e))?;
        let y_max = lines.iter().flat_map(|(_, pts)| pts.iter().map(|p| p.1)).fold(0.0_f64, f64::max);
        let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FAMILY, 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max.max(1e-9), 0.0..y_max)
            .map_err(|e| chart_err(&e))?;
        chart
            .configure_mesh()
            .x_desc("simulated time (s)")
            .y_desc(y_desc)
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 15))
            .draw()
            .map_err(|e| chart_err(&e))?;
        let shade = RGBAColor(220, 40, 40, 0.13);
        let mut first = true;
        for &(a, b) in faults {
            let r = chart
                .draw_series(std::iter::once(Rectangle::new([(a, 0.0), (b.min(x_max), y_max)], shade.filled())))
                .map_err(|e| chart_err(&e))?;
            if first {
                r.label("fault window")
                    .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], shade.filled()));
                first = false;
            }
        }
        let palette = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(148, 103, 189)];
        for (i, (name, pts)) in lines.iter().enumerate() {
            let color = palette[i % palette.len()];
            // A gap in the data (no completion in an interval) stays a gap.
            let step = pts.windows(2).map(|w| w[1].0 - w[0].0).filter(|d| *d > 0.0).fold(f64::INFINITY, f64::min);
            let mut segments: Vec<Vec<(f64, f64)>> = Vec::new();
            for (k, p) in pts.iter().enumerate() {
                if k == 0 || p.0 - pts[k - 1].0 > step * 1.5 {
                    segments.push(Vec::new());
                }
                segments.last_mut().expect("pushed").push(*p);
            }
            for (k, seg) in segments.into_iter().enumerate() {
                let drawn = chart
                    .draw_series(LineSeries::new(seg, color.stroke_width(2)).point_size(if pts.len() < 3 {
                        3
                    } else {
                        0
                    }))
                    .map_err(|e| chart_err(&e))?;
                if k == 0 {
                    drawn
                        .label(name.as_str())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
                }
            }
        }
        chart
            .configure_series_labels()
            .label_font((FAMILY, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| chart_err(&e))?;
        root.present().map_err(|e| chart_err(&e))?;
        Ok(())
    })
}

/// A histogram of a count per seed; PNG at `path`.
fn histogram_chart(path: &Path, title: &str, x_desc: &str, values: &[u64]) -> Result<(), ReportError> {
    let chart_err = |e: &dyn std::fmt::Display| e.to_string();
    let max = values.iter().copied().max().unwrap_or(0);
    let bins = 30u64;
    let width = (max / bins + 1).max(1);
    let mut counts = vec![0u64; (max / width + 1) as usize];
    for v in values {
        counts[(v / width) as usize] += 1;
    }
    let y_max = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    png(path, CHART, |root| {
        root.fill(&WHITE).map_err(|e| chart_err(&e))?;
        let x_end = (counts.len() as u64 * width) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FAMILY, 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_end.max(1.0), 0.0..y_max)
            .map_err(|e| chart_err(&e))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("seeds")
            .label_style((FAMILY, 13))
            .axis_desc_style((FAMILY, 15))
            .draw()
            .map_err(|e| chart_err(&e))?;
        let color = RGBColor(31, 119, 180);
        chart
            .draw_series(counts.iter().enumerate().map(|(i, c)| {
                let x0 = (i as u64 * width) as f64;
                Rectangle::new([(x0, 0.0), (x0 + width as f64 * 0.9, *c as f64)], color.filled())
            }))
            .map_err(|e| chart_err(&e))?;
        root.present().map_err(|e| chart_err(&e))?;
        Ok(())
    })
}

/// The charts of one run, written into `dir`: (file name, alt text).
fn charts(dir: &Path, o: &Outcome, duration_s: f64) -> Result<Vec<(String, String)>, ReportError> {
    let mut out = Vec::new();
    let faults = windows(&o.faults);
    if let Some(s) = &o.series {
        let x = |i: usize| (i as f64 + 0.5) * s.interval_s;
        let per_s: Vec<(f64, f64)> =
            s.completed.iter().enumerate().map(|(i, c)| (x(i), *c as f64 / s.interval_s)).collect();
        line_chart(
            &dir.join("throughput.png"),
            "Throughput",
            "completed per second",
            duration_s,
            &[("completed / s".into(), per_s)],
            &faults,
        )?;
        out.push(("throughput.png".into(), "entities completed per second over simulated time".into()));
        let p =
            |v: &[f64]| v.iter().enumerate().filter(|(i, _)| s.completed[*i] > 0).map(|(i, y)| (x(i), *y)).collect();
        let lines = vec![("p50".to_string(), p(&s.e2e_p50_s)), ("p99".to_string(), p(&s.e2e_p99_s))];
        line_chart(&dir.join("latency.png"), "End-to-end latency", "latency (s)", duration_s, &lines, &faults)?;
        out.push(("latency.png".into(), "end-to-end latency percentiles over simulated time".into()));
        let per = |v: &[u64]| -> Vec<(f64, f64)> { v.iter().enumerate().map(|(i, c)| (x(i), *c as f64)).collect() };
        let counts = vec![
            ("lost".to_string(), per(&s.lost)),
            ("redelivered".to_string(), per(&s.redelivered)),
            ("duplicates skipped".to_string(), per(&s.duplicates_skipped)),
        ];
        let unit = format!("messages per {:.3} s", s.interval_s);
        let title = "Losses, redeliveries and duplicates";
        line_chart(&dir.join("losses.png"), title, &unit, duration_s, &counts, &faults)?;
        out.push(("losses.png".into(), "messages lost, redelivered and skipped as duplicates per interval".into()));
    }
    if !o.metrics.backlog.is_empty() {
        let lines: Vec<(String, Vec<(f64, f64)>)> = o
            .metrics
            .backlog
            .iter()
            .take(4)
            .map(|(name, b)| {
                (
                    name.clone(),
                    b.samples.iter().enumerate().map(|(i, v)| ((i + 1) as f64 * b.interval_s, *v as f64)).collect(),
                )
            })
            .collect();
        line_chart(&dir.join("backlog.png"), "Backlog and consumer lag", "messages", duration_s, &lines, &faults)?;
        out.push(("backlog.png".into(), "queue backlog and consumer-group lag over simulated time".into()));
    }
    Ok(out)
}

/// The message timeline of one entity as SVG: a swimlane per node it
/// touched, an arrow per message from its publish to its arrival, the
/// nodes' down time shaded, losses marked where they happened.
pub fn timeline_svg(
    records: &[Record],
    entity: u64,
    node_names: &[String],
    kind_name: &dyn Fn(u64) -> String,
) -> String {
    let own: Vec<&Record> = records.iter().filter(|r| r.entity == entity).collect();
    let name = |n: u32| {
        if n == NO_NODE { "client".to_string() } else { node_names.get(n as usize).cloned().unwrap_or_default() }
    };
    let mut lanes: Vec<u32> = Vec::new();
    for r in &own {
        if !lanes.contains(&r.node) {
            lanes.push(r.node);
        }
    }
    if own.is_empty() {
        return String::from("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"></svg>");
    }
    // The view ends at the entity's last step, or at the restart of a node
    // of its lanes that came after it (the node coming back).
    let last = own[own.len() - 1].time.0;
    let back = records
        .iter()
        .filter(|r| {
            r.time.0 > last && lanes.contains(&r.node) && matches!(r.kind, RecordKind::Restart | RecordKind::Resumed)
        })
        .map(|r| r.time.0)
        .next();
    let (t0, t1) = (own[0].time.0, back.unwrap_or(last));
    // Time runs across in order, not to scale: each distinct instant gets
    // its own column, so steps a microsecond apart and steps minutes apart
    // are both readable (the times are in the labels and tooltips).
    let mut instants: Vec<u64> = own.iter().map(|r| r.time.0).chain(back).collect();
    instants.extend(
        records
            .iter()
            .filter(|r| lanes.contains(&r.node) && r.entity == 0 && r.time.0 >= t0 && r.time.0 <= t1)
            .map(|r| r.time.0),
    );
    instants.sort_unstable();
    instants.dedup();
    let (left, width, lane_h) = (150.0, 900.0, 56.0);
    let columns = (instants.len().max(2) - 1) as f64;
    let x = |t: u64| {
        let i = instants.partition_point(|&v| v < t);
        left + i.min(instants.len().saturating_sub(1)) as f64 / columns * width
    };
    let lane_y = |n: u32| 40.0 + lanes.iter().position(|l| *l == n).unwrap_or(0) as f64 * lane_h;
    let height = 60.0 + lanes.len() as f64 * lane_h;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" viewBox=\"0 0 {w} {height}\" width=\"100%\" \
         role=\"img\" aria-label=\"message timeline\"><defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" \
         refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" \
         fill=\"#1f77b4\"/></marker></defs>",
        w = left + width + 40.0
    );
    // Down and paused windows of the lanes' nodes, within the view.
    let mut down_since: BTreeMap<u32, (u64, &str)> = BTreeMap::new();
    for r in records {
        if !lanes.contains(&r.node) {
            continue;
        }
        match r.kind {
            RecordKind::Crash => {
                down_since.insert(r.node, (r.time.0, "down"));
            }
            RecordKind::Paused => {
                down_since.insert(r.node, (r.time.0, "paused"));
            }
            RecordKind::Restart | RecordKind::Resumed => {
                if let Some((from, what)) = down_since.remove(&r.node) {
                    shade(&mut svg, x(from.max(t0)), x(r.time.0.min(t1)), lane_y(r.node), what);
                }
            }
            _ => {}
        }
    }
    for (node, (from, what)) in down_since {
        shade(&mut svg, x(from.max(t0)), x(t1), lane_y(node), what);
    }
    // Network faults (partitions, lossy links) across every lane.
    let mut network_since: BTreeMap<u64, u64> = BTreeMap::new();
    let band = |svg: &mut String, a: f64, b: f64| {
        let _ = write!(
            svg,
            "<rect x=\"{a:.1}\" y=\"16\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#ff7f0e\" fill-opacity=\"0.12\">\
             <title>network fault</title></rect>",
            (b - a).max(2.0),
            lanes.len() as f64 * lane_h
        );
    };
    for r in records.iter().filter(|r| r.node == NO_NODE) {
        match r.kind {
            RecordKind::FaultBegan => {
                network_since.insert(r.aux, r.time.0);
            }
            RecordKind::FaultHealed => {
                if let Some(from) = network_since.remove(&r.aux)
                    && r.time.0 >= t0
                    && from <= t1
                {
                    band(&mut svg, x(from.max(t0)), x(r.time.0.min(t1)));
                }
            }
            _ => {}
        }
    }
    for from in network_since.into_values().filter(|f| *f <= t1) {
        band(&mut svg, x(from.max(t0)), x(t1));
    }
    for &n in &lanes {
        let y = lane_y(n);
        let _ = write!(
            svg,
            "<line x1=\"{left}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#bbb\"/><text x=\"{}\" y=\"{}\" \
             font-size=\"13\" text-anchor=\"end\">{}</text>",
            left + width,
            left - 10.0,
            y + 4.0,
            escape(&name(n))
        );
    }
    // Messages: publish -> arrival.
    let mut published: BTreeMap<u64, &Record> = BTreeMap::new();
    for r in &own {
        match r.kind {
            RecordKind::Published | RecordKind::Request => {
                published.insert(r.msg, r);
            }
            RecordKind::Enqueued => {
                if let Some(p) = published.remove(&r.msg) {
                    let _ = write!(
                        svg,
                        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#1f77b4\" stroke-width=\"1.5\" \
                         marker-end=\"url(#arrow)\"><title>{} sent {} received {}</title></line>",
                        x(p.time.0),
                        lane_y(p.node),
                        x(r.time.0),
                        lane_y(r.node),
                        escape(&kind_name(r.aux)),
                        p.time,
                        r.time
                    );
                }
                let _ = write!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#333\">{}</text>",
                    x(r.time.0) + 3.0,
                    lane_y(r.node) - 6.0,
                    escape(&kind_name(r.aux))
                );
            }
            RecordKind::Lost => {
                let (cx, cy) = (x(r.time.0), lane_y(r.node));
                let _ = write!(
                    svg,
                    "<g class=\"lost\"><line x1=\"{a:.1}\" y1=\"{b:.1}\" x2=\"{c:.1}\" y2=\"{d:.1}\" stroke=\"#d62728\" \
                     stroke-width=\"3\"/><line x1=\"{a:.1}\" y1=\"{d:.1}\" x2=\"{c:.1}\" y2=\"{b:.1}\" stroke=\"#d62728\" \
                     stroke-width=\"3\"/><text x=\"{e:.1}\" y=\"{f:.1}\" font-size=\"12\" fill=\"#d62728\">LOST</text></g>",
                    a = cx - 7.0,
                    b = cy - 7.0,
                    c = cx + 7.0,
                    d = cy + 7.0,
                    e = cx + 9.0,
                    f = cy + 18.0
                );
            }
            RecordKind::Terminal | RecordKind::Effect | RecordKind::Accepted => {
                let color = if r.kind == RecordKind::Terminal { "#2ca02c" } else { "#555" };
                let _ = write!(
                    svg,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{color}\"/>",
                    x(r.time.0),
                    lane_y(r.node)
                );
            }
            _ => {}
        }
    }
    // Time labels under the columns where something happened, thinned to fit.
    let every = (instants.len() / 8).max(1);
    for (i, &t) in instants.iter().enumerate() {
        if i % every == 0 || i + 1 == instants.len() {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#555\" text-anchor=\"middle\">{}</text>",
                x(t),
                height - 8.0,
                SimTime(t)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

fn shade(svg: &mut String, x0: f64, x1: f64, y: f64, what: &str) {
    let _ = write!(
        svg,
        "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"36\" fill=\"#d62728\" fill-opacity=\"0.15\"><title>{what}</title></rect>",
        y - 18.0,
        (x1 - x0).max(2.0)
    );
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222;line-height:1.4}\
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}\
.q{font-style:italic;color:#444}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;\
padding:.25em .6em;text-align:left;vertical-align:top}th{background:#f4f4f4}.pass{color:#1a7f37;font-weight:bold}\
.fail{color:#c62828;font-weight:bold}.inconclusive{color:#9a6700;font-weight:bold}pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}\
img{max-width:100%;border:1px solid #eee}code{background:#f2f2f2;padding:0 .2em}.timeline{border:1px solid #eee}";

/// The HTML page of one scenario, with its charts written into `dir`.
pub fn write_page(dir: &Path, page: &Page<'_>) -> Result<PathBuf, ReportError> {
    fs::create_dir_all(dir).map_err(|source| ReportError::Write { path: dir.display().to_string(), source })?;
    let sys = &page.loaded.system;
    let o = page.outcome;
    let duration_s = sys.duration.as_secs_f64();
    let mut images = charts(dir, o, duration_s)?;
    if let Some(lost) = page.lost_per_seed {
        let what = lost_of(o).1;
        let (title, x) = (
            format!("{} lost per seed", if what == "entities" { "Entities" } else { "Messages" }),
            format!("{what} lost in one run"),
        );
        histogram_chart(&dir.join("lost-per-seed.png"), &title, &x, lost)?;
        images.push(("lost-per-seed.png".into(), format!("distribution of {what} lost per seed")));
    }
    let mut h = String::new();
    let title = escape(&sys.name);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>faultline: {title}</title>\
         <style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n<p class=\"q\">{}</p>\n",
        escape(&page.loaded.scenario.question)
    );
    // The verdict first.
    h.push_str("<h2>Verdict</h2>\n<table><tr><th>invariant</th><th>verdict</th><th>details</th></tr>\n");
    match page.sweep {
        Some(sw) => {
            for i in &sw.invariants {
                let (class, word) = match (i.failing, i.inconclusive) {
                    (0, 0) => ("pass", "PASS"),
                    (0, _) => ("inconclusive", "INCONCLUSIVE"),
                    _ => ("fail", "FAIL"),
                };
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td class=\"{class}\">{word}</td><td>{} of {} seeds ({:.1}%, 95% CI {:.1}% to {:.1}%)</td></tr>",
                    escape(&i.name),
                    i.failing,
                    sw.seeds,
                    i.rate * 100.0,
                    i.ci95[0] * 100.0,
                    i.ci95[1] * 100.0
                );
            }
        }
        None => {
            for v in &o.invariants {
                let (class, word) = match v.status {
                    crate::check::Status::Holds => ("pass", "PASS"),
                    crate::check::Status::Violated => ("fail", "FAIL"),
                    crate::check::Status::Inconclusive => ("inconclusive", "INCONCLUSIVE"),
                };
                let mut counts: Vec<String> = v.counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
                if let Some(why) = &v.inconclusive {
                    counts.insert(0, why.clone());
                }
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td class=\"{class}\">{word}</td><td>{}</td></tr>",
                    escape(&v.name),
                    escape(&counts.join(", "))
                );
            }
        }
    }
    h.push_str("</table>\n");
    let failing_seed = page.sweep.and_then(|s| s.reproduce.first().map(|r| r.seed)).unwrap_or(o.seed);
    if page.sweep.is_some_and(|s| s.failing > 0) || o.invariants.iter().any(crate::check::Verdict::violated) {
        let _ = writeln!(
            h,
            "<p>Reproduce: <code>faultline run {} --seed {failing_seed}</code> (fingerprint <code>{}</code>)</p>",
            escape(page.file),
            escape(&o.fingerprint)
        );
    }
    // The story of one violation, and its timeline.
    if let Some((v, story)) = o.invariants.iter().find_map(|v| v.example.as_ref().map(|s| (v, s))) {
        let _ = writeln!(h, "<h2>What went wrong: {} (seed {})</h2>", escape(&v.name), o.seed);
        let records = crate::sim::focused_records(sys, o.seed, &[story.entity])?;
        let names = sys.node_names();
        let kind_name = |k: u64| sys.names.kind_name(crate::service::Kind(k as u32)).to_string();
        h.push_str(&timeline_svg(&records.records, story.entity, &names, &kind_name));
        let _ = writeln!(h, "\n<pre class=\"story\">{}</pre>", escape(&story.lines.join("\n")));
    }
    h.push_str("<h2>Charts</h2>\n");
    for (file, alt) in &images {
        let _ = writeln!(
            h,
            "<p><img src=\"{}\" alt=\"{}\" width=\"{}\" height=\"{}\"></p>",
            escape(file),
            escape(alt),
            CHART.0,
            CHART.1
        );
    }
    // The run shown.
    let m = &o.metrics;
    let _ = writeln!(
        h,
        "<h2>The run</h2>\n<table><tr><th>seed</th><td>{}</td></tr><tr><th>fingerprint</th><td><code>{}</code></td></tr>\
         <tr><th>events</th><td>{}</td></tr><tr><th>entities</th><td>{} requested, {} accepted, {} completed</td></tr>\
         <tr><th>messages</th><td>{} published, {} handled, {} lost, {} redelivered</td></tr>\
         <tr><th>end-to-end latency</th><td>of the {} completed ({} accepted never completed, not in it): p50 {}, p99 {}, max {}</td></tr></table>",
        o.seed,
        escape(&o.fingerprint),
        o.events,
        m.requests,
        m.accepted,
        m.completed,
        m.published,
        m.handled,
        m.lost,
        m.redelivered,
        m.completed,
        m.e2e_not_completed,
        crate::format::secs(m.e2e_latency_s.p50),
        crate::format::secs(m.e2e_latency_s.p99),
        crate::format::secs(m.e2e_latency_s.max)
    );
    if !o.faults.is_empty() {
        h.push_str(
            "<h2>Faults applied</h2>\n<table><tr><th>fault</th><th>where</th><th>from</th><th>until</th></tr>\n",
        );
        for f in o.faults.iter().take(200) {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&f.kind),
                escape(&f.node),
                SimTime(f.from_ns),
                SimTime(f.until_ns)
            );
        }
        h.push_str("</table>\n");
    }
    let _ = write!(
        h,
        "<h2>The scenario</h2>\n<p><code>{}</code></p>\n<pre>{}</pre>\n\
         <p>Generated by faultline {}.</p>\n</body></html>\n",
        escape(page.file),
        escape(page.text),
        env!("CARGO_PKG_VERSION")
    );
    let index = dir.join("index.html");
    write_file(&index, h.as_bytes())?;
    Ok(index)
}

/// One design in a comparison: its name, page and figures.
pub struct Row {
    /// The scenario's name.
    pub name: String,
    /// The directory of its page, beside the index (`DIR/index.html`).
    pub dir: String,
    /// Its question.
    pub question: String,
    /// Invariant name -> (failing seeds, seeds).
    pub verdicts: Vec<(String, u64, u64)>,
    /// Messages lost and duplicated effects over all seeds, p99 latency, messages per entity.
    pub lost: u64,
    /// Extra applications of once-only effects.
    pub duplicated: u64,
    /// p99 end-to-end latency, seconds, of the completed entities.
    pub p99_s: f64,
    /// Entities accepted and completed (over all seeds): what the p99 covers.
    pub accepted: u64,
    /// Entities completed.
    pub completed: u64,
    /// Messages handled per accepted entity.
    pub messages_per_entity: f64,
}

/// The index of several designs on the same seeds: a table of designs x
/// invariants and a chart of their failure rates.
pub fn write_index(dir: &Path, title: &str, seeds: &str, rows: &[Row]) -> Result<PathBuf, ReportError> {
    fs::create_dir_all(dir).map_err(|source| ReportError::Write { path: dir.display().to_string(), source })?;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>faultline: {t}</title><style>{STYLE}</style>\
         </head><body>\n<h1>{t}</h1>\n<p>{}</p>\n<h2>Designs side by side</h2>\n\
         <table><tr><th>design</th><th>question</th><th>invariants (failing seeds)</th><th>messages lost</th>\
         <th>duplicated effects</th><th>p99 latency (of completed entities)</th><th>messages per entity</th></tr>\n",
        escape(seeds),
        t = escape(title)
    );
    for r in rows {
        let verdicts: Vec<String> = r
            .verdicts
            .iter()
            .map(|(name, failing, n)| {
                let class = if *failing == 0 { "pass" } else { "fail" };
                format!("<span class=\"{class}\">{}</span>: {failing}/{n}", escape(name))
            })
            .collect();
        let _ = writeln!(
            h,
            "<tr><td><a href=\"{}/index.html\">{n}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}<br>{} of {} completed</td><td>{:.2}</td></tr>",
            escape(&r.dir),
            escape(&r.question),
            verdicts.join("<br>"),
            crate::format::thousands(r.lost),
            crate::format::thousands(r.duplicated),
            crate::format::secs(r.p99_s),
            crate::format::thousands(r.completed),
            crate::format::thousands(r.accepted),
            r.messages_per_entity,
            n = escape(&r.name)
        );
    }
    h.push_str("</table>\n");
    comparison_chart(&dir.join("comparison.png"), rows)?;
    h.push_str("<h2>Failing seeds per design</h2>\n");
    h.push_str(&comparison_svg(rows)?);
    h.push_str("\n<p><a href=\"comparison.png\">The same chart as a PNG</a></p>\n");
    h.push_str("</body></html>\n");
    let index = dir.join("index.html");
    write_file(&index, h.as_bytes())?;
    Ok(index)
}

/// Bars: the share of seeds under which some invariant fails, per design,
/// drawn on any plotters backend.
fn draw_comparison<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    rows: &[Row],
) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Seeds that fail an invariant", (FAMILY, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(260)
        .build_cartesian_2d(0.0..100.0, (0..rows.len().max(1) - 1).into_segmented())
        .map_err(|x| e(&x))?;
    let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    chart
        .configure_mesh()
        .x_desc("share of seeds (%)")
        .y_labels(rows.len().max(1))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .label_style((FAMILY, 13))
        .axis_desc_style((FAMILY, 15))
        .draw()
        .map_err(|x| e(&x))?;
    let worst = |r: &Row| r.verdicts.iter().map(|(_, f, n)| *f as f64 / (*n).max(1) as f64).fold(0.0, f64::max) * 100.0;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| {
            let color = if worst(r) > 0.0 { RGBColor(214, 39, 40) } else { RGBColor(44, 160, 44) };
            Rectangle::new(
                [(0.0, SegmentValue::Exact(i)), (worst(r).max(0.4), SegmentValue::Exact(i + 1))],
                color.filled(),
            )
        }))
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))
}

fn comparison_size(rows: &[Row]) -> (u32, u32) {
    (CHART.0, (80 + 28 * rows.len() as u32).max(200))
}

/// The comparison chart as a PNG at `path`.
fn comparison_chart(path: &Path, rows: &[Row]) -> Result<(), ReportError> {
    png(path, comparison_size(rows), |root| draw_comparison(root, rows))
}

/// The comparison chart as SVG, to inline in the index.
fn comparison_svg(rows: &[Row]) -> Result<String, ReportError> {
    register_font();
    let mut svg = String::new();
    draw_comparison(SVGBackend::with_string(&mut svg, comparison_size(rows)).into_drawing_area(), rows)
        .map_err(|message| ReportError::Chart { path: "comparison (inline SVG)".into(), message })?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
    }
}
