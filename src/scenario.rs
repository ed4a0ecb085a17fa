//! Scenario files: the RON schema, validation with friendly errors, and
//! compiling a scenario into a [`System`] the kernel runs.

mod buses;
pub mod error;
mod faults;
mod invariants;
pub mod locate;
pub mod replay;
pub mod schema;
mod services;
mod workloads;

use std::sync::Arc;

pub use error::{Diagnostic, ScenarioError, render_warnings};
use locate::{Seg, locate, suggest};
use schema::Scenario;

use crate::service::{
    Backoff, Breaker, Call, Control, Declarative, Decline, FIELDS, Handler as KHandler, Kind, Machine, RateLimit,
    Reserve, SetTo, Timeout,
};
use crate::sim::time::{ScaledError, parse_scaled};
use crate::sim::{Dist, SimDuration, SimTime, parse_duration};
use crate::system::{
    Acks, BrokerSpec, Bus, BusSpec, CommitPolicy, Dedup, Event, FaultSpec, FieldValue, InvariantSpec, KeyDist, Limits,
    Names, QueueKind, RandomFault, RateShape, Routing, Seam, ServiceSpec, StateKind, System, TopicSpec, WorkloadSpec,
};

/// The queue kind a scenario names.
fn queue_kind(kind: schema::QueueKind) -> QueueKind {
    match kind {
        schema::QueueKind::Classic => QueueKind::Classic,
        schema::QueueKind::Quorum => QueueKind::Quorum,
        schema::QueueKind::JetStream => QueueKind::JetStream,
        schema::QueueKind::RedisStream => QueueKind::RedisStream,
    }
}

/// Upper bounds that catch absurd numbers before they become an OOM or a hang.
pub mod bounds {
    /// Longest simulated run.
    pub const DURATION_MAX_NS: u64 = 365 * 86_400 * 1_000_000_000;
    /// Instances per service.
    pub const INSTANCES_MAX: u32 = 1_000;
    /// Workers per instance.
    pub const WORKERS_MAX: u32 = 10_000;
    /// Queue capacity per instance.
    pub const QUEUE_MAX: u32 = 10_000_000;
    /// Partitions per topic.
    pub const PARTITIONS_MAX: u32 = 1_024;
    /// Records fetched ahead per consumer.
    pub const FETCH_MAX: u32 = 1_000_000;
    /// Arrivals per second.
    pub const RATE_MAX_PER_S: f64 = 10_000_000.0;
    /// Largest `events_max`.
    pub const EVENTS_MAX: u64 = 10_000_000_000;
    /// Largest `entities_max`.
    pub const ENTITIES_MAX: u64 = 100_000_000;
    /// Values in an empirical distribution.
    pub const EMPIRICAL_MAX: usize = 100_000;
    /// Ids an idempotent consumer remembers.
    pub const DEDUP_WINDOW_MAX: u32 = 10_000_000;
    /// The largest scenario file read.
    pub const INPUT_MAX_BYTES: u64 = 4 << 20;
    /// Characters in one string of a scenario (a name, a duration, the question).
    pub const STRING_MAX_CHARS: usize = 1_000;
    /// Services in a scenario.
    pub const SERVICES_MAX: usize = 1_000;
    /// Workloads in a scenario.
    pub const WORKLOADS_MAX: usize = 64;
    /// Instances of all services together.
    pub const NODES_MAX: u64 = 10_000;
    /// Workers of all instances together.
    pub const WORKERS_TOTAL_MAX: u64 = 1_000_000;
    /// Partitions a log keeps: topics × partitions × (1 + replicas), and
    /// partitions read, summed over the consuming services.
    pub const LOG_PARTITIONS_MAX: u64 = 1_000_000;
    /// Faults in a scenario's plan.
    pub const FAULTS_MAX: usize = 10_000;
    /// Invariants in a scenario.
    pub const INVARIANTS_MAX: usize = 100;
    /// Faulty spells a random plan may draw per node.
    pub const SPELLS_MAX: u64 = 10_000;
}

/// A string literal of `src` longer than [`bounds::STRING_MAX_CHARS`], as
/// a problem at its start: nothing a person writes in a scenario is that
/// long, and names are compared and suggested character by character.
fn overlong_string(src: &str) -> Option<Diagnostic> {
    let mut chars = src.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        // Comments may hold quotes of their own.
        if c == '/' && chars.peek().is_some_and(|&(_, n)| n == '/') {
            for (_, c) in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            continue;
        }
        if c == '/' && chars.peek().is_some_and(|&(_, n)| n == '*') {
            let mut star = false;
            for (_, c) in chars.by_ref() {
                if star && c == '/' {
                    break;
                }
                star = c == '*';
            }
            continue;
        }
        if c != '"' {
            continue;
        }
        let mut n = 0;
        loop {
            match chars.next() {
                None => return None,
                Some((_, '\\')) => {
                    chars.next();
                }
                Some((_, '"')) => break,
                Some(_) => {}
            }
            n += 1;
            if n > bounds::STRING_MAX_CHARS {
                let pos = locate::pos_of_offset(src, i);
                return Some(Diagnostic {
                    line: pos.line,
                    col: pos.col,
                    message: format!("a string of more than {} characters", bounds::STRING_MAX_CHARS),
                    help: Some("names, durations and questions are short: is a quote missing?".into()),
                });
            }
        }
    }
    None
}

/// A scenario read from a file: its source, its parsed form and the system.
#[derive(Debug)]
pub struct Loaded {
    /// The path as given.
    pub file: String,
    /// The parsed file.
    pub scenario: Scenario,
    /// The compiled system.
    pub system: System,
    /// What is legal but likely a mistake (a topic nobody consumes), in file order.
    pub warnings: Vec<Diagnostic>,
}

/// Reads, parses, validates and compiles the scenario at `path`.
pub fn load(path: &str) -> Result<Loaded, ScenarioError> {
    parse(path, &read_text(path)?)
}

/// The text of the file at `path`: at most [`bounds::INPUT_MAX_BYTES`],
/// UTF-8, without a byte-order mark. Nothing larger is read (`/dev/zero`
/// included).
pub fn read_text(path: &str) -> Result<String, ScenarioError> {
    use std::io::Read;
    let read = |source| ScenarioError::Read { path: path.to_string(), source };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut bytes = Vec::new();
    file.take(bounds::INPUT_MAX_BYTES + 1).read_to_end(&mut bytes).map_err(read)?;
    if bytes.len() as u64 > bounds::INPUT_MAX_BYTES {
        let message =
            format!("the file is larger than {} MB, more than faultline reads", bounds::INPUT_MAX_BYTES >> 20);
        return Err(ScenarioError::Unreadable { path: path.to_string(), message });
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        // Located like any other problem: the line and column of the first
        // byte that is not UTF-8.
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let before = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ScenarioError::Invalid {
            file: path.to_string(),
            src: String::from_utf8_lossy(bytes).into_owned(),
            diagnostics: vec![Diagnostic {
                line,
                col,
                message: format!("not UTF-8 text: byte 0x{:02x} cannot be read as a character", bytes[valid]),
                help: Some("save the file as UTF-8".into()),
            }],
            more: 0,
        }
    })?;
    // A byte-order mark is invisible in an editor and not RON.
    Ok(text.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(text))
}

/// Parses, validates and compiles scenario text; `file` names it in errors.
pub fn parse(file: &str, src: &str) -> Result<Loaded, ScenarioError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let invalid = |diagnostics: Vec<Diagnostic>, more: usize| ScenarioError::Invalid {
        file: file.to_string(),
        src: src.to_string(),
        diagnostics,
        more,
    };
    if let Some(d) = overlong_string(src) {
        return Err(invalid(vec![d], 0));
    }
    let options = ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let scenario: Scenario = options.from_str(src).map_err(|e| invalid(vec![error::from_ron(src, &e)], 0))?;
    let dir = std::path::Path::new(file).parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    let mut c = Compiler { src, dir, problems: Vec::new(), warnings: Vec::new(), more: 0 };
    let system = c.compile(&scenario);
    if !c.problems.is_empty() {
        let mut ds = c.problems;
        ds.sort_by_key(|d| (d.line, d.col));
        ds.dedup();
        return Err(invalid(ds, c.more));
    }
    let mut warnings = c.warnings;
    warnings.sort_by_key(|d| (d.line, d.col));
    warnings.dedup();
    Ok(Loaded { file: file.to_string(), scenario, system: system.expect("no problems means a system"), warnings })
}

/// A scenario as RON text that [`parse`] reads back to the same scenario:
/// fields at their defaults are left out.
pub fn to_ron(s: &Scenario) -> String {
    let config = ron::ser::PrettyConfig::new()
        .indentor("    ".to_string())
        .struct_names(true)
        .depth_limit(4)
        .extensions(ron::extensions::Extensions::IMPLICIT_SOME);
    ron::ser::to_string_pretty(s, config).expect("a scenario serializes")
}

/// A handler's list of published kinds and the field that holds it.
type EmitList<'a> = (&'static str, &'a Vec<String>);

/// One step of a path into the scenario, owned.
#[derive(Clone, Copy)]
enum P {
    F(&'static str),
    I(usize),
}

/// A scenario's buses with where each is written: `bus` alone, or each of
/// `buses`.
fn all_buses(s: &Scenario) -> Vec<(Vec<P>, &schema::Bus)> {
    match &s.bus {
        Some(b) => vec![(vec![P::F("bus")], b)],
        None => s.buses.iter().enumerate().map(|(i, b)| (vec![P::F("buses"), P::I(i)], b)).collect(),
    }
}

/// A scenario's workloads with where each is written: `workload` alone, or
/// each of `workloads`.
fn all_workloads(s: &Scenario) -> Vec<(Vec<P>, &schema::Workload)> {
    match &s.workload {
        Some(w) => vec![(vec![P::F("workload")], w)],
        None => s.workloads.iter().enumerate().map(|(i, w)| (vec![P::F("workloads"), P::I(i)], w)).collect(),
    }
}

/// How many workloads the scenario writes.
fn workloads_written(s: &Scenario) -> usize {
    s.workloads.len() + usize::from(s.workload.is_some())
}

/// Where a service's state lives.
fn state_kind(state: schema::State) -> StateKind {
    match state {
        schema::State::Volatile => StateKind::Volatile,
        schema::State::Durable => StateKind::Durable,
        schema::State::Shared => StateKind::Shared,
    }
}

/// A handler's stock reservation.
fn reserve_of(r: &schema::ReserveSchema) -> Reserve {
    let control = match r.control {
        schema::Control::None => Control::None,
        schema::Control::Lock => Control::Lock,
        schema::Control::Optimistic => Control::Optimistic,
    };
    Reserve { initial: r.initial, control }
}

/// How a workload's entities arrive, compiled.
enum Arrivals {
    /// Drawn: gaps of mean `gap` (exact when `regular`), keys from `keys`.
    Drawn { gap: SimDuration, regular: bool, count: Option<u64>, keys: KeyDist, shape: RateShape },
    /// Replayed from a file: (time, key), in order.
    Replay(Vec<(SimDuration, u64)>),
}

impl Arrivals {
    /// About how many arrivals fall in `[start, stop)`, at most.
    fn expected(&self, start: SimDuration, stop: SimDuration) -> u64 {
        match self {
            Arrivals::Drawn { gap, count, shape, .. } => {
                // At most: the shape's largest factor all along.
                let n = ((stop.0.saturating_sub(start.0)) / gap.0.max(1)) as f64 * shape.max();
                count.map_or(n as u64, |c| c.min(n as u64))
            }
            Arrivals::Replay(times) => {
                times.iter().filter(|(t, _)| t.0.saturating_add(start.0) < stop.0).count() as u64
            }
        }
    }

    /// (mean gap, regular, count, keys, shape, replayed arrivals).
    #[allow(clippy::type_complexity)]
    fn into_parts(self) -> (SimDuration, bool, Option<u64>, KeyDist, RateShape, Vec<(SimDuration, u64)>) {
        match self {
            Arrivals::Drawn { gap, regular, count, keys, shape } => (gap, regular, count, keys, shape, Vec::new()),
            Arrivals::Replay(times) => (SimDuration::ZERO, true, None, KeyDist::Sequential, RateShape::Constant, times),
        }
    }
}

/// Whether service `sv` reads from the Log bus (`log`) or the Queue bus:
/// with several buses, whether some topic it consumes travels on it.
fn reads_from(s: &Scenario, sv: &schema::Service, log: bool) -> bool {
    let on = |b: Option<&schema::Bus>| {
        matches!((b, log), (Some(schema::Bus::Log { .. }), true) | (Some(schema::Bus::Queue { .. }), false))
    };
    if sv.consume.topics.is_empty() {
        on(s.log_bus().filter(|_| log).or(s.queue_bus().filter(|_| !log)))
    } else {
        sv.consume.topics.iter().any(|t| on(s.bus_of(t)))
    }
}

/// What crosses a link between `from_bus` and `to_bus` endpoints (a
/// broker, or the bus) on every bus of `s`: whether it is a reliable
/// connection on all of them (it never duplicates), and whether it is log
/// records in offset order on all of them (it never reorders).
fn link_semantics(s: &Scenario, from_bus: bool, to_bus: bool) -> (bool, bool) {
    let semantics = all_buses(s).into_iter().map(|(_, b)| match b {
        schema::Bus::Ephemeral { .. } => (false, false),
        schema::Bus::Queue { .. } => (to_bus || from_bus, false),
        schema::Bus::Log { brokers, .. } => {
            let between_brokers = to_bus && from_bus;
            (from_bus || (to_bus && brokers.is_none()), from_bus && !between_brokers)
        }
    });
    semantics.fold((true, true), |(r, f), (r2, f2)| (r && r2, f && f2))
}

/// A service's load-balancing strategy.
fn routing(r: schema::Routing) -> Routing {
    match r {
        schema::Routing::ByKey => Routing::ByKey,
        schema::Routing::RoundRobin => Routing::RoundRobin,
        schema::Routing::Random => Routing::Random,
        schema::Routing::LeastLoaded => Routing::LeastLoaded,
    }
}

/// A usable service or bus name: it makes node names (`name-1`).
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') && !name.ends_with('-')
}

/// Every kind some handler emits: the topics that exist.
fn emitted_kinds(s: &Scenario) -> Vec<&str> {
    s.services
        .iter()
        .flat_map(|sv| sv.on.iter())
        .flat_map(|h| -> Vec<&String> {
            match h {
                schema::Handler::Accept { emit, call, .. } => {
                    emit.iter().chain(call.iter().flat_map(|c| &c.on_failure)).collect()
                }
                schema::Handler::Handle { emit, rejected, call, decline, .. } => emit
                    .iter()
                    .chain(rejected)
                    .chain(call.iter().flat_map(|c| &c.on_failure))
                    .chain(decline.iter().flat_map(|d| &d.emit))
                    .collect(),
            }
        })
        .chain(s.services.iter().flat_map(|sv| sv.machine.iter().flat_map(|m| &m.timeouts)).flat_map(|t| &t.emit))
        .map(String::as_str)
        .collect()
}

/// Request kinds of synchronous calls: handled, but not topics.
fn call_requests(s: &Scenario) -> Vec<&str> {
    s.services
        .iter()
        .flat_map(|sv| sv.on.iter())
        .filter_map(|h| match h {
            schema::Handler::Accept { call: Some(c), .. } | schema::Handler::Handle { call: Some(c), .. } => {
                Some(c.request.as_str())
            }
            _ => None,
        })
        .collect()
}

/// Every effect a handler or a state-machine timeout names.
fn effects_named(s: &Scenario) -> Vec<&str> {
    s.services
        .iter()
        .flat_map(|sv| sv.on.iter())
        .filter_map(|h| match h {
            schema::Handler::Handle { effect: Some(e), .. } => Some(e.as_str()),
            _ => None,
        })
        .chain(
            s.services
                .iter()
                .flat_map(|sv| sv.machine.iter().flat_map(|m| &m.timeouts))
                .filter_map(|t| t.effect.as_deref()),
        )
        .collect()
}

struct Compiler<'a> {
    src: &'a str,
    /// The scenario file's directory: files it names are read from there.
    dir: std::path::PathBuf,
    problems: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    /// Problems beyond the first [`error::ERRORS_SHOWN`]: counted, not located
    /// (locating each walks the file, which many problems make quadratic).
    more: usize,
}

impl Compiler<'_> {
    fn warn(&mut self, path: &[P], message: impl Into<String>, help: Option<String>) {
        if self.warnings.len() >= error::ERRORS_SHOWN {
            return;
        }
        let pos = self.position(path);
        self.warnings.push(Diagnostic { line: pos.line, col: pos.col, message: message.into(), help });
    }

    fn err(&mut self, path: &[P], message: impl Into<String>, help: Option<String>) {
        if self.problems.len() >= error::ERRORS_SHOWN {
            self.more += 1;
            return;
        }
        let pos = self.position(path);
        self.problems.push(Diagnostic { line: pos.line, col: pos.col, message: message.into(), help });
    }

    /// Where `path` points in the file.
    fn position(&self, path: &[P]) -> locate::Pos {
        let segs: Vec<Seg<'_>> = path
            .iter()
            .map(|p| match *p {
                P::F(f) => Seg::Field(f),
                P::I(i) => Seg::Index(i),
            })
            .collect();
        locate(self.src, &segs).unwrap_or(locate::Pos { line: 1, col: 1 })
    }

    fn duration(&mut self, path: &[P], text: &str) -> Option<SimDuration> {
        match parse_duration(text) {
            Ok(d) if d.0 <= bounds::DURATION_MAX_NS => Some(d),
            Ok(_) => {
                self.err(path, format!("duration {text:?} is absurdly long"), Some("at most 365d".into()));
                None
            }
            Err(e) => {
                self.err(path, e.to_string(), None);
                None
            }
        }
    }

    /// A size: `"100B"`, `"4KB"` (4,000 bytes), `"4KiB"` (4,096), `"4.4MB"`, up to 1 TB.
    fn bytes(&mut self, path: &[P], text: &str) -> Option<u64> {
        let t = text.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let scale: u64 = match unit.trim() {
            "B" => 1,
            "KB" => 1000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => 0,
        };
        let value = number.parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| v * scale as f64);
        match value {
            Some(v) if scale > 0 && v <= 1e12 => Some(v.round() as u64),
            Some(_) if scale > 0 => {
                self.err(path, format!("size {text:?} is absurdly large"), Some("at most 1000GB".into()));
                None
            }
            _ => {
                self.err(
                    path,
                    format!("{text:?} is not a size"),
                    Some("a number and a unit: B, KB, MB, GB, KiB, MiB, GiB, as in \"4KB\"".into()),
                );
                None
            }
        }
    }

    /// A time, `"2m"`, or a range to draw from, `"2m..3m"`: (earliest, latest).
    fn time_range(&mut self, path: &[P], text: &str) -> Option<(SimDuration, SimDuration)> {
        match text.split_once("..") {
            None => self.duration(path, text).map(|d| (d, d)),
            Some((a, b)) => {
                let (a, b) = (self.duration(path, a), self.duration(path, b));
                let (a, b) = (a?, b?);
                if b < a {
                    self.err(path, format!("the range {text:?} ends before it starts"), None);
                    return None;
                }
                Some((a, b))
            }
        }
    }

    fn dist(&mut self, path: &[P], d: &schema::Dist) -> Option<Dist> {
        let sub = |f: &'static str| [path, &[P::F(f)]].concat();
        Some(match d {
            schema::Dist::Const(t) => Dist::Const(self.duration(&[path, &[P::I(0)]].concat(), t)?),
            schema::Dist::Exp { mean } => Dist::Exp { mean: self.duration(&sub("mean"), mean)? },
            schema::Dist::Uniform { min, max } => {
                let (lo, hi) = (self.duration(&sub("min"), min), self.duration(&sub("max"), max));
                let (lo, hi) = (lo?, hi?);
                if lo > hi {
                    self.err(&sub("max"), format!("uniform max {max:?} is below min {min:?}"), None);
                    return None;
                }
                Dist::Uniform { min: lo, max: hi }
            }
            schema::Dist::LogNormal { median, sigma } => {
                let m = self.duration(&sub("median"), median);
                if !(sigma.is_finite() && (0.0..=10.0).contains(sigma)) {
                    self.err(
                        &sub("sigma"),
                        format!("sigma {sigma} is out of range"),
                        Some("expected a number from 0 to 10".into()),
                    );
                    return None;
                }
                Dist::LogNormal { median: m?, sigma: *sigma }
            }
            schema::Dist::Empirical(values) => {
                let at = [path, &[P::I(0)]].concat();
                if values.is_empty() || values.len() > bounds::EMPIRICAL_MAX {
                    let help = format!("expected 1 to {} durations", bounds::EMPIRICAL_MAX);
                    self.err(&at, format!("an empirical distribution of {} values", values.len()), Some(help));
                    return None;
                }
                let parsed: Vec<Option<SimDuration>> = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.duration(&[at.as_slice(), &[P::I(i)]].concat(), v))
                    .collect();
                Dist::Empirical(parsed.into_iter().collect::<Option<Vec<_>>>()?)
            }
        })
    }

    /// An optional duration that must be above zero, `default_s` seconds when absent.
    fn positive(&mut self, path: &[P], text: &Option<String>, default_s: u64) -> SimDuration {
        let Some(t) = text else { return SimDuration::from_secs(default_s) };
        match self.duration(path, t) {
            Some(SimDuration::ZERO) => {
                self.err(path, "this duration must be above zero", None);
                SimDuration::from_secs(default_s)
            }
            Some(d) => d,
            None => SimDuration::from_secs(default_s),
        }
    }

    /// A fault beginning at `at` must begin before the end of the run.
    fn not_after_end(&mut self, path: &[P], at: Option<SimDuration>, duration: Option<SimDuration>, s: &Scenario) {
        if let (Some(at), Some(d)) = (at, duration)
            && at >= d
        {
            let help = Some(format!("the run ends at {}", s.duration));
            self.err(path, format!("the fault begins at {at}, when the run has ended: it would never act"), help);
        }
    }

    /// `v` if it is in `lo..=hi`; otherwise a problem, and the nearest
    /// bound, so that nothing is ever built from the value out of range.
    fn bounded<T: PartialOrd + std::fmt::Display + Copy>(&mut self, path: &[P], what: &str, v: T, lo: T, hi: T) -> T {
        if v < lo || v > hi {
            self.err(path, format!("{what} {v} is out of range"), Some(format!("expected {lo} to {hi}")));
        }
        if v < lo {
            lo
        } else if v > hi {
            hi
        } else {
            v
        }
    }

    /// Reads `"50/s"`, `"0.5/s"`, `"3000/m"` as a mean time between arrivals.
    fn rate(&mut self, path: &[P], text: &str) -> Option<SimDuration> {
        let help =
            Some("expected a rate such as \"50/s\", \"0.5/s\" or \"3000/m\" (units: ms, s, m, h, d)".to_string());
        let Some((num, unit)) = text.trim().split_once('/') else {
            self.err(path, format!("cannot read rate {text:?}"), help);
            return None;
        };
        let unit_ns: u64 = match unit.trim() {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" | "min" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            _ => {
                self.err(path, format!("unknown time unit in rate {text:?}"), help);
                return None;
            }
        };
        // The rate in events per unit, scaled by 1e9 to stay exact in integers.
        let per_unit_nano = match parse_scaled(num.trim(), 1_000_000_000) {
            Ok(v) => v,
            Err(ScaledError::Syntax) => {
                self.err(path, format!("cannot read rate {text:?}"), help);
                return None;
            }
            Err(ScaledError::Overflow) => u64::MAX,
        };
        let per_s = per_unit_nano as f64 / 1e9 * (1e9 / unit_ns as f64);
        if per_unit_nano == 0 {
            self.err(path, format!("rate {text:?} must be above zero"), None);
            return None;
        }
        if per_s > bounds::RATE_MAX_PER_S {
            self.err(path, format!("rate {text:?} is absurdly high"), Some("at most 10000000/s".into()));
            return None;
        }
        // mean gap in ns = unit_ns / (per_unit_nano / 1e9)
        let gap = (u128::from(unit_ns) * 1_000_000_000 / u128::from(per_unit_nano)) as u64;
        Some(SimDuration(gap.max(1)))
    }

    fn compile(&mut self, s: &Scenario) -> Option<System> {
        let (duration, warmup, limits) = self.header(s)?;
        let mut names = Names::default();
        let emitted = emitted_kinds(s);
        let requests = call_requests(s);
        let buses = self.buses(s, &mut names, &emitted);
        // The workloads' entity kinds and requests, needed to check Accept handlers.
        let workloads_in = all_workloads(s);
        self.one_or_several_workloads(s, &workloads_in);
        let entry: Vec<(&str, Kind)> =
            workloads_in.iter().map(|(_, w)| (w.entity(), names.kind(&format!("{} request", w.entity())))).collect();
        let effects = effects_named(s);
        let (services, accepting) = self.services(s, &mut names, &emitted, &requests, &entry);
        let workloads = self.workloads(s, &workloads_in, (duration, &limits), &accepting, &entry, &mut names);
        let faults = self.faults(s, &services, duration);
        let entities: Vec<&str> = entry.iter().map(|e| e.0).collect();
        let invariants = self.invariants(s, &mut names, &effects, &emitted, &entities);
        self.by_construction(s);
        self.network_faults_act(s);

        // The checker follows at most 16 effects per entity (a bit each).
        let mut followed: Vec<crate::service::EffectId> =
            invariants.iter().flat_map(InvariantSpec::followed_effects).collect();
        followed.sort();
        followed.dedup();
        if followed.len() > 16 {
            self.err(
                &[P::F("invariants")],
                format!("the invariants follow {} effects", followed.len()),
                Some("at most 16 distinct effects across no-duplicate-effects and saga-atomicity".into()),
            );
        }

        let (duration, (buses, topic_bus), workloads) = (duration?, buses?, workloads?);
        if !self.problems.is_empty() {
            return None;
        }
        Some(System {
            name: s.name.clone(),
            names,
            buses,
            topic_bus,
            services,
            workloads,
            faults,
            invariants,
            duration,
            warmup,
            seed: s.seed,
            limits,
        })
    }

    /// The scenario's counts (refused at once when absurd), name, duration,
    /// warm-up and limits.
    fn header(&mut self, s: &Scenario) -> Option<(Option<SimDuration>, SimDuration, Limits)> {
        // Counts first: everything after is built from them.
        let counts = [
            ("services", s.services.len(), bounds::SERVICES_MAX),
            ("workloads", s.workloads.len(), bounds::WORKLOADS_MAX),
            ("faults", s.faults.len(), bounds::FAULTS_MAX),
            ("invariants", s.invariants.len(), bounds::INVARIANTS_MAX),
        ];
        let mut too_many = false;
        for (field, n, max) in counts {
            if n > max {
                self.err(&[P::F(field)], format!("{n} {field}"), Some(format!("at most {max}")));
                too_many = true;
            }
        }
        if too_many {
            return None;
        }
        if s.name.trim().is_empty() {
            self.err(&[P::F("name")], "the scenario needs a name", None);
        }
        let duration = self.duration(&[P::F("duration")], &s.duration);
        if duration == Some(SimDuration::ZERO) {
            self.err(&[P::F("duration")], "duration must be above zero", None);
        }
        let warmup = match &s.warmup {
            None => SimDuration::ZERO,
            Some(w) => {
                let warmup = self.duration(&[P::F("warmup")], w).unwrap_or(SimDuration::ZERO);
                if duration.is_some_and(|d| warmup >= d) {
                    let help = Some("a warm-up is a first part of the run, shorter than `duration`".into());
                    self.err(&[P::F("warmup")], "the warm-up covers the whole run: nothing would be measured", help);
                }
                warmup
            }
        };
        let limits = Limits {
            events_max: self.bounded(
                &[P::F("limits"), P::F("events_max")],
                "events_max",
                s.limits.events_max,
                1,
                bounds::EVENTS_MAX,
            ),
            entities_max: self.bounded(
                &[P::F("limits"), P::F("entities_max")],
                "entities_max",
                s.limits.entities_max,
                1,
                bounds::ENTITIES_MAX,
            ),
        };
        Some((duration, warmup, limits))
    }
}
