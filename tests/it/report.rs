//! Reports: a self-contained page with the verdict, the story's timeline,
//! charts that decode and are not blank, escaped names, and a real browser
//! that renders it.

use std::path::Path;

use crate::support::{faultline, parts, root, scenario_text, temp_dir};

/// Decodes a PNG: (width, height, RGB(A) pixels).
fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// True if the image is not one flat colour: its bytes vary.
fn not_blank(pixels: &[u8]) -> bool {
    let mean = pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / pixels.len() as f64;
    let var = pixels.iter().map(|&p| (f64::from(p) - mean).powi(2)).sum::<f64>() / pixels.len() as f64;
    var > 100.0
}

/// The page's visible text, tags stripped: what a snapshot pins.
fn text_of(html: &str) -> String {
    let html = match (html.find("<style>"), html.find("</style>")) {
        (Some(a), Some(b)) => format!("{}{}", &html[..a], &html[b..]),
        _ => html.to_string(),
    };
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn well_formed(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    for tag in ["html", "head", "body", "table", "svg", "pre", "style"] {
        let open = html.matches(&format!("<{tag}")).count();
        let close = html.matches(&format!("</{tag}>")).count();
        assert_eq!(open, close, "<{tag}> opened {open} times, closed {close}");
    }
    // Nothing is fetched: the only URL is the SVG namespace.
    let urls = html.matches("http").count();
    assert_eq!(urls, html.matches("http://www.w3.org/2000/svg").count(), "no network references");
}

#[test]
fn a_report_has_the_verdict_the_timeline_and_charts_that_are_not_blank() {
    let dir = temp_dir("report");
    let (code, out, err) =
        parts(&faultline(&["report", "scenarios/orders-ephemeral.ron", "--out", &dir.to_string_lossy()]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("report written to"));
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    well_formed(&html);
    assert!(html.contains("<td class=\"fail\">FAIL</td>") && html.contains("no-lost-entities(order)"));
    assert!(html.contains("<svg") && html.contains("class=\"timeline\"") && html.contains("LOST"));
    assert!(html.contains("faultline run scenarios/orders-ephemeral.ron --seed 7"));
    let charts: Vec<&str> = html.split("<img src=\"").skip(1).map(|s| &s[..s.find('"').unwrap()]).collect();
    assert!(charts.len() >= 3, "{charts:?}");
    for c in charts {
        let (w, h, px) = decode(&dir.join(c));
        assert_eq!((w, h), (960, 360));
        assert!(not_blank(&px), "{c} is blank");
    }
    insta::assert_snapshot!("report_orders_ephemeral", text_of(&html));
}

#[test]
fn names_from_a_scenario_are_escaped() {
    let dir = temp_dir("report-escape");
    let src = dir.join("evil.ron");
    let text = scenario_text("orders-log.ron")
        .replace("name: \"orders-log\"", "name: \"<script>alert(1)</script>\"")
        .replace("question: \"", "question: \"<img src=x onerror=alert(2)> ");
    std::fs::write(&src, text).unwrap();
    let out = dir.join("out");
    let (code, _, err) = parts(&faultline(&["report", &src.to_string_lossy(), "--out", &out.to_string_lossy()]));
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(!html.contains("<script>") && !html.contains("<img src=x"), "unescaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    well_formed(&html);
    // In an index too, where the name is a link, a table cell and a label of the inline chart.
    let both = dir.join("both");
    let args = ["report", &src.to_string_lossy(), "scenarios/outbox.ron", "--out", &both.to_string_lossy()];
    let (code, _, err) = parts(&faultline(&args.map(String::from).iter().map(String::as_str).collect::<Vec<_>>()));
    assert_eq!(code, 0, "{err}");
    let index = std::fs::read_to_string(both.join("index.html")).unwrap();
    assert!(!index.contains("<script>") && index.contains("&lt;script&gt;"));
    assert!(index.contains("href=\"evil/index.html\"") && both.join("evil").join("index.html").exists());
    well_formed(&index);
}

#[test]
fn several_designs_are_compared_on_the_same_seeds() {
    let dir = temp_dir("report-cmp");
    let (code, _, err) = parts(&faultline(&[
        "report",
        "scenarios/dual-write.ron",
        "scenarios/outbox.ron",
        "--seeds",
        "0..3",
        "--out",
        &dir.to_string_lossy(),
    ]));
    assert_eq!(code, 0, "{err}");
    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    well_formed(&index);
    assert!(index.contains("href=\"dual-write/index.html\"") && index.contains("href=\"outbox/index.html\""));
    assert!(index.contains("Seeds 0..3, the same for every design"));
    assert!(not_blank(&decode(&dir.join("comparison.png")).2));
    let page = std::fs::read_to_string(dir.join("dual-write").join("index.html")).unwrap();
    assert!(page.contains("of 3 seeds") && page.contains("95% CI"));
    assert!(not_blank(&decode(&dir.join("dual-write").join("lost-per-seed.png")).2));
}

#[test]
fn a_real_browser_renders_the_report() {
    // .ci/run installs Debian's chromium; elsewhere the test needs it too,
    // unless it is plainly absent outside CI.
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| std::process::Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()));
    let Some(chromium) = chromium else {
        assert!(std::env::var_os("CI").is_none(), "CI must have chromium (.ci/run installs it)");
        eprintln!("skipped: no chromium on this machine (`apt-get install chromium`)");
        return;
    };
    let dir = temp_dir("report-browser");
    let (code, _, err) =
        parts(&faultline(&["report", "scenarios/orders-ephemeral.ron", "--out", &dir.to_string_lossy()]));
    assert_eq!(code, 0, "{err}");
    let shot = dir.join("shot.png");
    let profile = temp_dir("chromium-profile");
    let status = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.display()),
            "--window-size=1200,1600",
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", dir.join("index.html").display()),
        ])
        .output()
        .unwrap();
    assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&status.stderr));
    let (w, h, px) = decode(&shot);
    assert_eq!((w, h), (1200, 1600));
    assert!(not_blank(&px), "the browser drew a blank page");
    let _ = root();
}

#[test]
fn bad_report_input_exits_2_and_writes_nothing() {
    let dir = temp_dir("report-bad");
    let out = dir.join("r");
    for args in [
        vec!["report", "scenarios/nope.ron", "--out", out.to_str().unwrap()],
        vec!["report", "scenarios/validation", "scenarios/bad-dir-that-is-not-there", "--out", out.to_str().unwrap()],
        vec!["report", "scenarios/orders-log.ron", "--seeds", "3..3"],
        vec!["report", "scenarios/orders-log.ron", "--seeds", "0..2000000", "--out", out.to_str().unwrap()],
    ] {
        let (code, _, err) = parts(&faultline(&args));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.is_empty());
    }
    assert!(!out.exists(), "nothing written for bad input");
    // An output path under a file cannot be created.
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let (code, _, err) =
        parts(&faultline(&["report", "scenarios/orders-log.ron", "--out", &file.join("sub").to_string_lossy()]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot write"), "{err}");
}
