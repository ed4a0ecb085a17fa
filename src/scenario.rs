//! Scenario files: the RON schema, validation with friendly errors, and
//! compiling a scenario into a [`System`] the kernel runs.

pub mod error;
pub mod locate;
pub mod replay;
pub mod schema;

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

    /// Every network fault must act on something: a partition must cut a
    /// connection that carries messages, a link fault must change what
    /// crosses its link. What would silently do nothing is refused.
    fn network_faults_act(&mut self, s: &Scenario) {
        let service_of = |node: &str| -> Option<&schema::Service> {
            s.services.iter().find(|sv| {
                node.strip_prefix(sv.name.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|i| i.parse::<u32>().is_ok_and(|i| i >= 1 && i <= sv.instances))
            })
        };
        let broker_names = s.broker_names();
        let is_broker = |node: &str| broker_names.iter().any(|b| b == node) && service_of(node).is_none();
        let talks_to_bus = |sv: &schema::Service| {
            !sv.consume.topics.is_empty()
                || sv.on.iter().any(|h| match h {
                    schema::Handler::Accept { emit, call, .. } => {
                        !emit.is_empty() || call.as_ref().is_some_and(|c| !c.on_failure.is_empty())
                    }
                    schema::Handler::Handle { emit, rejected, decline, call, .. } => {
                        !emit.is_empty()
                            || !rejected.is_empty()
                            || decline.as_ref().is_some_and(|d| !d.emit.is_empty())
                            || call.as_ref().is_some_and(|c| !c.on_failure.is_empty())
                    }
                })
                || sv.machine.as_ref().is_some_and(|m| m.timeouts.iter().any(|t| !t.emit.is_empty()))
        };
        let calls = |a: &schema::Service, b: &schema::Service| {
            a.on.iter().any(|h| match h {
                schema::Handler::Accept { call, .. } | schema::Handler::Handle { call, .. } => {
                    call.as_ref().is_some_and(|c| c.service == b.name)
                }
            })
        };
        let brokers = matches!(s.log_bus(), Some(schema::Bus::Log { brokers: Some(b), .. }) if b.count >= 2);
        // Does anything travel between `a` and `b`, one way or the other?
        let carries = |a: &str, b: &str| -> bool {
            match (a == "bus" || is_broker(a), b == "bus" || is_broker(b)) {
                (true, true) => brokers && a != "bus" && b != "bus",
                (true, false) => service_of(b).is_some_and(talks_to_bus),
                (false, true) => service_of(a).is_some_and(talks_to_bus),
                (false, false) => match (service_of(a), service_of(b)) {
                    (Some(x), Some(y)) => calls(x, y) || calls(y, x),
                    _ => false,
                },
            }
        };
        let no_traffic_help = "only synchronous calls travel between service instances, and replication between \
            brokers; cut an instance off from \"bus\" to stop what it publishes and consumes";
        for (i, f) in s.faults.iter().enumerate() {
            let fat = |f: &'static str| [P::F("faults"), P::I(i), P::F(f)];
            match f {
                schema::Fault::Partition { groups, .. } if groups.len() == 2 => {
                    let (a, b) = (&groups[0], &groups[1]);
                    if let Some((k, n)) = b.iter().enumerate().find(|(_, n)| a.contains(n)) {
                        let at = [P::F("faults"), P::I(i), P::F("groups"), P::I(1), P::I(k)];
                        self.err(&at, format!("`{n}` is on both sides of the partition"), None);
                        continue;
                    }
                    let bus_and_broker = (a.iter().any(|n| n == "bus") && b.iter().any(|n| is_broker(n)))
                        || (b.iter().any(|n| n == "bus") && a.iter().any(|n| is_broker(n)));
                    if bus_and_broker {
                        self.err(
                            &fat("groups"),
                            "\"bus\" stands for every broker: it cannot be cut off from one of them",
                            Some("name the brokers on each side instead".into()),
                        );
                        continue;
                    }
                    if !a.iter().any(|x| b.iter().any(|y| carries(x, y))) {
                        self.err(
                            &fat("groups"),
                            "nothing travels between these two groups: the partition would change nothing",
                            Some(no_traffic_help.into()),
                        );
                    }
                }
                schema::Fault::Link { from, to, drop, duplicate, delay, reorder, .. } => {
                    if from == to {
                        self.err(
                            &fat("to"),
                            format!("a link goes from one node to another, not from `{from}` to itself"),
                            None,
                        );
                        continue;
                    }
                    if *drop == 0.0 && *duplicate == 0.0 && delay.is_none() && reorder.is_none() {
                        let help = Some("give it `drop`, `duplicate`, `delay` or `reorder`".into());
                        self.err(&fat("from"), "this link fault changes nothing", help);
                        continue;
                    }
                    if !carries(from, to) {
                        let msg =
                            format!("nothing travels from `{from}` to `{to}`: the link fault would change nothing");
                        self.err(&fat("from"), msg, Some(no_traffic_help.into()));
                        continue;
                    }
                    // What crosses the link: a reliable connection (TCP) never
                    // duplicates, and log records arrive in offset order.
                    let to_bus = to == "bus" || is_broker(to);
                    let from_bus = from == "bus" || is_broker(from);
                    // With several buses, the link carries what each sends.
                    let (reliable, fetches) = link_semantics(s, from_bus, to_bus);
                    if *duplicate > 0.0 && reliable {
                        self.err(
                            &fat("duplicate"),
                            format!("`{from}` -> `{to}` is a reliable connection, which never duplicates"),
                            Some("duplicates arise from resends: crash a consumer, or use an ack timeout".into()),
                        );
                    }
                    if reorder.is_some() && (fetches || (to_bus && from_bus)) {
                        self.err(
                            &fat("reorder"),
                            format!("what crosses `{from}` -> `{to}` arrives in order (log records, replication)"),
                            Some("use `delay` to make it late".into()),
                        );
                    }
                }
                _ => {}
            }
        }
    }

    /// The static checks of what cannot work by construction: invariants
    /// that judge something no handler produces, settings with no effect,
    /// topics that go nowhere.
    fn by_construction(&mut self, s: &Scenario) {
        let consumed: Vec<&str> =
            s.services.iter().flat_map(|sv| sv.consume.topics.iter()).map(String::as_str).collect();
        // A kind a compacted topic keeps or a business rule watches is used
        // even when no service consumes it.
        let mut used: Vec<&str> = match s.log_bus() {
            Some(schema::Bus::Log { compacted, .. }) => compacted.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        for inv in &s.invariants {
            match inv {
                schema::Invariant::LeadsTo { from, to, .. } => {
                    used.push(from);
                    used.extend(to.iter().map(String::as_str));
                }
                schema::Invariant::NeverWithout { event, prior, .. } => used.extend([event.as_str(), prior.as_str()]),
                _ => {}
            }
        }
        let mut ends = false;
        for (i, sv) in s.services.iter().enumerate() {
            let terminal_states: Vec<&str> = sv.machine.iter().flat_map(|m| &m.terminal).map(String::as_str).collect();
            let ends_in = |to: &Option<String>| to.as_deref().is_some_and(|t| terminal_states.contains(&t));
            for (h, handler) in sv.on.iter().enumerate() {
                let (terminal, to, lists): (bool, &Option<String>, Vec<EmitList<'_>>) = match handler {
                    schema::Handler::Accept { terminal, to, emit, .. } => (*terminal, to, vec![("emit", emit)]),
                    schema::Handler::Handle { terminal, to, emit, rejected, decline, .. } => {
                        let mut l = vec![("emit", emit), ("rejected", rejected)];
                        if let Some(d) = decline {
                            l.push(("decline", &d.emit));
                        }
                        (*terminal, to, l)
                    }
                };
                ends |= terminal || ends_in(to);
                for (field, kinds) in lists {
                    for (k, kind) in kinds.iter().enumerate() {
                        if consumed.contains(&kind.as_str()) || used.contains(&kind.as_str()) {
                            continue;
                        }
                        let mut at = vec![P::F("services"), P::I(i), P::F("on"), P::I(h), P::F(field)];
                        if field == "decline" {
                            at.push(P::F("emit"));
                        }
                        at.push(P::I(k));
                        self.warn(
                            &at,
                            format!("`{kind}` is published but no service consumes it: its messages go nowhere"),
                            Some(format!("add `{kind}` to a service's consume topics, or stop emitting it")),
                        );
                    }
                }
            }
            if let Some(m) = &sv.machine {
                ends |= m.timeouts.iter().any(|t| terminal_states.contains(&t.to.as_str()));
            }
            if matches!(sv.consume.ack, Some(schema::Ack::Auto)) && sv.consume.prefetch.is_some() {
                self.err(
                    &[P::F("services"), P::I(i), P::F("consume"), P::F("prefetch")],
                    "`prefetch` has no effect with `ack: Auto`: the broker pushes without waiting for acks",
                    Some("remove `prefetch`, or use `ack: Manual`".into()),
                );
            }
        }
        for (i, inv) in s.invariants.iter().enumerate() {
            match inv {
                schema::Invariant::NoLostEntities { entity, .. } | schema::Invariant::TerminalWithin { entity, .. }
                    if !ends =>
                {
                    self.err(
                        &[P::F("invariants"), P::I(i), P::F("entity")],
                        format!("no handler ever ends entity `{entity}`: this invariant could never hold"),
                        Some("mark the last handler `terminal: true`, or move a machine to a terminal state".into()),
                    );
                }
                schema::Invariant::ReplicaConvergence { source, replica, table } => {
                    for (field, name) in [("source", source), ("replica", replica)] {
                        let Some(sv) = s.services.iter().find(|x| &x.name == name) else { continue };
                        let writes = sv.on.iter().any(|h| match h {
                            schema::Handler::Accept { write, .. } | schema::Handler::Handle { write, .. } => {
                                write.as_deref() == Some(table.as_str())
                            }
                        });
                        if !writes {
                            let what = if field == "source" { "nothing to copy" } else { "a copy that never changes" };
                            self.err(
                                &[P::F("invariants"), P::I(i), P::F(field)],
                                format!("`{name}` never writes table `{table}`: {what}"),
                                Some(format!("give one of `{name}`'s handlers `write: \"{table}\"`")),
                            );
                        }
                    }
                }
                _ => {}
            }
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

    /// A business rule's event: `state NAME` of some machine, a kind some
    /// handler publishes, or an effect some handler applies.
    fn event(
        &mut self,
        path: &[P],
        name: &str,
        s: &Scenario,
        emitted: &[&str],
        effects: &[&str],
        names: &mut Names,
    ) -> Option<Event> {
        let states: Vec<&str> = s
            .services
            .iter()
            .flat_map(|sv| {
                let handlers = sv.on.iter().flat_map(|h| match h {
                    schema::Handler::Accept { to, .. } => to.iter().map(String::as_str).collect::<Vec<_>>(),
                    schema::Handler::Handle { from, to, .. } => {
                        from.iter().chain(to.iter()).map(String::as_str).collect::<Vec<_>>()
                    }
                });
                let machine = sv.machine.iter().flat_map(|m| {
                    m.terminal.iter().chain(m.timeouts.iter().flat_map(|t| [&t.state, &t.to])).map(String::as_str)
                });
                handlers.chain(machine).collect::<Vec<_>>()
            })
            .collect();
        if name == "accepted" {
            return Some(Event::Accepted);
        }
        if let Some(state) = name.strip_prefix("state ") {
            if states.contains(&state) {
                return Some(Event::State(names.state(state)));
            }
            let help = suggest(state, states.iter().copied()).map(|x| format!("did you mean `state {x}`?"));
            self.err(path, format!("no state machine has a state `{state}`"), help);
            return None;
        }
        if emitted.contains(&name) {
            return Some(Event::Kind(names.kind(name)));
        }
        if effects.contains(&name) {
            return Some(Event::Effect(names.effect(name)));
        }
        let known = emitted.iter().chain(effects).copied();
        let help = suggest(name, known)
            .map(|x| format!("did you mean `{x}`?"))
            .unwrap_or_else(|| "name a kind some handler emits, an effect, `state NAME` or `accepted`".into());
        self.err(path, format!("`{name}` is neither a published kind nor an effect"), Some(help));
        None
    }

    /// The id of state `name`, which a handler of `sv` names: the service needs a machine.
    fn state(&mut self, path: &[P], sv: &schema::Service, name: &str, names: &mut Names) -> u16 {
        let message = format!("service `{}` moves a state machine but declares none", sv.name);
        // Said once per service, at its first state.
        if sv.machine.is_none() && !self.problems.iter().any(|d| d.message == message) {
            self.err(path, message, Some("add machine: (terminal: [...], timeouts: [...]) to the service".into()));
        }
        names.state(name)
    }

    /// A handler's synchronous call, checked: the callee exists and handles the request.
    fn call(&mut self, path: &[P], c: &schema::CallSchema, s: &Scenario, names: &mut Names) -> Option<Call> {
        let at = |f: &'static str| [path, &[P::F(f)]].concat();
        let service = s.services.iter().position(|x| x.name == c.service);
        match service {
            None => {
                let help = suggest(&c.service, s.services.iter().map(|x| x.name.as_str()))
                    .map(|x| format!("did you mean `{x}`?"));
                self.err(&at("service"), format!("no service is called `{}`", c.service), help);
            }
            Some(i) => {
                let handles = s.services[i]
                    .on
                    .iter()
                    .any(|h| matches!(h, schema::Handler::Handle { event, .. } if *event == c.request));
                if !handles {
                    self.err(
                        &at("request"),
                        format!("service `{}` has no handler for `{}`", c.service, c.request),
                        Some(format!("give `{}` a handler Handle(event: \"{}\", ...)", c.service, c.request)),
                    );
                }
            }
        }
        let timeout = self.duration(&at("timeout"), &c.timeout);
        if timeout == Some(SimDuration::ZERO) {
            self.err(&at("timeout"), "the timeout must be above zero", None);
        }
        let latency = match &c.latency {
            Some(d) => self.dist(&at("latency"), d),
            None => Some(Dist::Const(SimDuration::MILLISECOND)),
        };
        let retries = self.bounded(&at("retries"), "retries", c.retries, 0, 1_000);
        let backoff = match &c.backoff {
            None => Some(Backoff::NONE),
            Some(b) => {
                let bat = |f: &'static str| [path, &[P::F("backoff"), P::F(f)]].concat();
                let base = self.duration(&bat("base"), &b.base);
                let max = self.duration(&bat("max"), &b.max);
                if !(b.factor.is_finite() && (1.0..=100.0).contains(&b.factor)) {
                    self.err(
                        &bat("factor"),
                        format!("factor {} is out of range", b.factor),
                        Some("expected 1 to 100".into()),
                    );
                }
                if !(0.0..=1.0).contains(&b.jitter) {
                    self.err(&bat("jitter"), format!("jitter {} is not in [0, 1]", b.jitter), None);
                }
                Some(Backoff { base: base?, factor: b.factor, max: max?, jitter: b.jitter })
            }
        };
        let breaker = match &c.breaker {
            None => Some(None),
            Some(b) => {
                let bat = |f: &'static str| [path, &[P::F("breaker"), P::F(f)]].concat();
                let failures = self.bounded(&bat("failures"), "failures", b.failures, 1, 1_000_000);
                let open_for = self.duration(&bat("open_for"), &b.open_for);
                if open_for == Some(SimDuration::ZERO) {
                    self.err(&bat("open_for"), "open_for must be above zero", None);
                }
                open_for.map(|open_for| Some(Breaker { failures, open_for }))
            }
        };
        let rate_limit = c.rate_limit.as_ref().map(|r| {
            let rat = |f: &'static str| [path, &[P::F("rate_limit"), P::F(f)]].concat();
            if !(r.per_second.is_finite() && r.per_second > 0.0 && r.per_second <= bounds::RATE_MAX_PER_S) {
                self.err(&rat("per_second"), format!("rate {} is out of range", r.per_second), None);
            }
            let burst = self.bounded(&rat("burst"), "burst", r.burst, 1, 1_000_000);
            RateLimit { per_second: r.per_second, burst }
        });
        let bulkhead = c.bulkhead.map(|b| self.bounded(&at("bulkhead"), "bulkhead", b, 1, bounds::WORKERS_MAX));
        Some(Call {
            service: service?,
            request: names.kind(&c.request),
            latency: latency?,
            timeout: timeout?,
            retries,
            backoff: backoff?,
            breaker: breaker?,
            rate_limit,
            bulkhead,
            on_failure: c.on_failure.iter().map(|k| names.kind(k)).collect(),
        })
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

    /// The buses and the bus of each topic (by kind): `bus` alone carries
    /// every topic; under `buses` (at most one of each kind, each named),
    /// each carries the topics it lists and the first one every topic that
    /// none lists.
    fn buses(&mut self, s: &Scenario, names: &mut Names, emitted: &[&str]) -> Option<(Vec<Bus>, Vec<u32>)> {
        match (&s.bus, s.buses.is_empty()) {
            (None, true) => {
                let help = "add `bus: Log(...)`, `Queue(...)` or `Ephemeral(...)`, or `buses: [...]` for several";
                self.err(&[], "the scenario has no bus", Some(help.into()));
                return None;
            }
            (Some(_), false) => {
                let help = "one bus: `bus: ...`; several: `buses: [...]` alone";
                self.err(&[P::F("buses")], "both `bus` and `buses` are given", Some(help.into()));
                return None;
            }
            _ => {}
        }
        let single = s.bus.is_some();
        let mut buses = Vec::new();
        let mut topic_bus: Vec<u32> = Vec::new();
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (i, (here, b)) in all_buses(s).into_iter().enumerate() {
            let at = |f: &'static str| [here.as_slice(), &[P::F(f)]].concat();
            let (name, topics) = b.binding();
            if single && !topics.is_empty() {
                let help = Some("list topics only under `buses: [...]`, where there are several".into());
                self.err(&at("topics"), "the only bus carries every topic", help);
            }
            let name = match name {
                Some(n) => n,
                None if single => "broker",
                None => {
                    let help = Some(format!("give it a name: {}(name: \"...\", ...)", b.kind_name()));
                    self.err(&here, "each of several buses needs a name", help);
                    "broker"
                }
            };
            if !valid_name(name) {
                let help = Some("use letters, digits, '_' and '-'".into());
                self.err(&at("name"), format!("bus name {name:?} is not usable"), help);
            }
            if s.services.iter().any(|sv| sv.name == name) {
                let help = Some("its broker nodes would share the service's node names: rename one".into());
                self.err(&at("name"), format!("a service is also called `{name}`"), help);
            }
            if let Some((_, other)) = seen.iter().find(|(n, _)| *n == name) {
                self.err(&at("name"), format!("two buses are called `{name}` (the other is a {other})"), None);
            }
            if let Some((other, _)) = seen.iter().find(|(_, k)| *k == b.kind_name()) {
                let help = Some("one bus of each kind: Log, Queue, Ephemeral".into());
                self.err(&here, format!("a second {} bus (`{other}` is one)", b.kind_name()), help);
            }
            seen.push((name, b.kind_name()));
            self.bind_topics(&here, topics, i as u32, emitted, names, &mut topic_bus);
            self.topics_carried(s, &here, b);
            let spec = self.bus(&here, b, names, emitted);
            buses.push(spec.map(|spec| Bus { name: name.to_string(), spec }));
        }
        // Every topic no bus lists travels on the first.
        for b in &mut topic_bus {
            if *b == u32::MAX {
                *b = 0;
            }
        }
        Some((buses.into_iter().collect::<Option<Vec<_>>>()?, topic_bus))
    }

    /// The topics a log bus (at `here`) gives settings must travel on it.
    fn topics_carried(&mut self, s: &Scenario, here: &[P], b: &schema::Bus) {
        let schema::Bus::Log { per_topic, .. } = b else { return };
        for (i, t) in per_topic.iter().enumerate() {
            if let Some(other) = s.bus_of(&t.name).filter(|o| !matches!(o, schema::Bus::Log { .. })) {
                let on = other.binding().0.unwrap_or("another bus");
                let at = [here, &[P::F("per_topic"), P::I(i), P::F("name")]].concat();
                self.err(&at, format!("topic `{}` travels on `{on}`, not on this log", t.name), None);
            }
        }
    }

    /// Bus `bus` (written at `here`) carries `topics`: each must be emitted
    /// by some handler and listed by no other bus.
    fn bind_topics(
        &mut self,
        here: &[P],
        topics: &[String],
        bus: u32,
        emitted: &[&str],
        names: &mut Names,
        topic_bus: &mut Vec<u32>,
    ) {
        for (t, topic) in topics.iter().enumerate() {
            let tat = [here, &[P::F("topics"), P::I(t)]].concat();
            if !emitted.contains(&topic.as_str()) {
                let help = suggest(topic, emitted.iter().copied()).map(|s| format!("did you mean `{s}`?"));
                self.err(&tat, format!("no handler emits `{topic}`"), help);
                continue;
            }
            let k = names.kind(topic).0 as usize;
            if topic_bus.len() <= k {
                topic_bus.resize(k + 1, u32::MAX);
            }
            if topic_bus[k] != u32::MAX {
                self.err(&tat, format!("topic `{topic}` is listed by two buses"), None);
            }
            topic_bus[k] = bus;
        }
    }

    /// One bus, checked against the topics that exist; `here` is where it
    /// is written.
    fn bus(&mut self, here: &[P], b: &schema::Bus, names: &mut Names, emitted: &[&str]) -> Option<BusSpec> {
        match b {
            schema::Bus::Ephemeral { latency, .. } => {
                self.dist(&[here, &[P::F("latency")]].concat(), latency).map(|latency| BusSpec::Ephemeral { latency })
            }
            schema::Bus::Queue { .. } => self.queue_bus_spec(here, b),
            schema::Bus::Log { .. } => self.log_bus_spec(here, b, names, emitted),
        }
    }

    /// A Queue bus (at `here`).
    fn queue_bus_spec(&mut self, here: &[P], b: &schema::Bus) -> Option<BusSpec> {
        let schema::Bus::Queue {
            latency,
            kind,
            ack_timeout,
            delivery_limit,
            heartbeat,
            window,
            message_size,
            reconnect,
            durable,
            persistent,
            confirms,
            max_len,
            ..
        } = b
        else {
            return None;
        };
        let heartbeat = self.positive(&[here, &[P::F("heartbeat")]].concat(), heartbeat, 60);
        let reconnect = self.positive(&[here, &[P::F("reconnect")]].concat(), reconnect, 5);
        let ack_timeout = match ack_timeout {
            Some(t) => {
                let at = [here, &[P::F("ack_timeout")]].concat();
                let d = self.duration(&at, t);
                if d == Some(SimDuration::ZERO) {
                    self.err(&at, "the ack timeout must be above zero", None);
                }
                d
            }
            None => None,
        };
        let kind = queue_kind(*kind);
        if kind == QueueKind::RedisStream && ack_timeout.is_none() {
            self.warn(
                &[here, &[P::F("kind")]].concat(),
                "no `ack_timeout` on a Redis stream: nothing claims a dead consumer's pending entries \
                 (no XAUTOCLAIM); they wait for that consumer's restart",
                Some("set `ack_timeout` to the idle time of your consumers' XAUTOCLAIM loop".into()),
            );
        }
        let ack_timeout = ack_timeout.or(kind.default_ack_timeout());
        if let Some(n) = max_len {
            let at = [here, &[P::F("max_len")]].concat();
            if kind != QueueKind::RedisStream {
                self.err(&at, "`max_len` trims a Redis stream", Some("use kind: RedisStream".into()));
            }
            self.bounded(&at, "max_len", *n, 1, u64::MAX);
        }
        if let Some(m) = delivery_limit {
            let at = [here, &[P::F("delivery_limit")]].concat();
            if kind == QueueKind::Classic {
                self.err(
                    &at,
                    "classic queues have no delivery limit: RabbitMQ ignores `x-delivery-limit` on them, \
                     and a nacked message is delivered again for ever",
                    Some("use kind: Quorum (x-delivery-limit) or kind: JetStream (max_deliver)".into()),
                );
            }
            let low = if kind == QueueKind::Quorum { 0 } else { 1 };
            self.bounded(&at, "delivery_limit", *m, low, 1_000_000);
        }
        // The window in messages: its bytes over a message's, at least one.
        let window_bytes = match window {
            Some(w) => self.bytes(&[here, &[P::F("window")]].concat(), w),
            None => Some(4_400_000),
        };
        let size = match message_size {
            Some(s) => self.bytes(&[here, &[P::F("message_size")]].concat(), s),
            None => Some(1000),
        };
        let window = match (window_bytes, size) {
            (Some(w), Some(s)) if s > 0 => (w / s).clamp(1, u64::from(u32::MAX)) as u32,
            (_, Some(0)) => {
                self.err(&[here, &[P::F("message_size")]].concat(), "a message of no bytes", None);
                1
            }
            _ => 1,
        };
        if kind == QueueKind::Quorum {
            for (field, v) in [("durable", durable), ("persistent", persistent)] {
                if *v == Some(false) {
                    self.err(
                        &[here, &[P::F(field)]].concat(),
                        "quorum queues are always durable and keep every message on disk",
                        Some(format!("remove `{field}`, or use kind: Classic")),
                    );
                }
            }
        }
        if kind == QueueKind::JetStream && *durable == Some(false) {
            self.err(
                &[here, &[P::F("durable")]].concat(),
                "a JetStream stream survives a server restart; its storage decides what its messages do",
                Some("use `persistent: false` for memory storage".into()),
            );
        }
        self.dist(&[here, &[P::F("latency")]].concat(), latency).map(|latency| BusSpec::Queue {
            latency,
            kind,
            ack_timeout,
            delivery_limit: *delivery_limit,
            heartbeat,
            window,
            reconnect,
            durable: durable.unwrap_or(true),
            persistent: persistent.unwrap_or(true),
            confirms: *confirms,
            max_len: *max_len,
        })
    }

    /// A Log bus (at `here`), its compacted topics among those emitted.
    fn log_bus_spec(&mut self, here: &[P], b: &schema::Bus, names: &mut Names, emitted: &[&str]) -> Option<BusSpec> {
        let schema::Bus::Log {
            partitions,
            latency,
            fetch_max,
            retention,
            retention_records,
            compacted,
            session_timeout,
            brokers,
            delivery_timeout,
            per_topic,
            ..
        } = b
        else {
            return None;
        };
        let delivery_timeout = self.positive(&[here, &[P::F("delivery_timeout")]].concat(), delivery_timeout, 120);
        let session_timeout = match session_timeout {
            Some(t) => self.duration(&[here, &[P::F("session_timeout")]].concat(), t).unwrap_or(SimDuration::ZERO),
            None => SimDuration::from_secs(10),
        };
        let retention = retention.as_deref().and_then(|r| self.duration(&[here, &[P::F("retention")]].concat(), r));
        if let Some(n) = retention_records {
            self.bounded(&[here, &[P::F("retention_records")]].concat(), "retention_records", *n, 1, u64::MAX);
        }
        let mut compacted_kinds = Vec::new();
        for (t, topic) in compacted.iter().enumerate() {
            if !emitted.contains(&topic.as_str()) {
                let help = suggest(topic, emitted.iter().copied()).map(|x| format!("did you mean `{x}`?"));
                self.err(
                    &[here, &[P::F("compacted"), P::I(t)]].concat(),
                    format!("topic `{topic}` is never emitted by any service"),
                    help,
                );
            }
            compacted_kinds.push(names.kind(topic));
        }
        let retention_records = *retention_records;
        let brokers = brokers.as_ref().map(|b| self.broker_spec(here, b, latency));
        let partitions =
            self.bounded(&[here, &[P::F("partitions")]].concat(), "partitions", *partitions, 1, bounds::PARTITIONS_MAX);
        let fetch_max =
            self.bounded(&[here, &[P::F("fetch_max")]].concat(), "fetch_max", *fetch_max, 1, bounds::FETCH_MAX);
        let defaults = (partitions, retention, retention_records, brokers.as_ref().map(|b| b.count));
        let per_topic = self.topic_specs(here, per_topic, defaults, names, emitted);
        self.dist(&[here, &[P::F("latency")]].concat(), latency).map(|latency| BusSpec::Log {
            partitions,
            latency,
            fetch_max,
            retention,
            retention_records,
            compacted: compacted_kinds,
            per_topic,
            session_timeout,
            brokers,
            delivery_timeout,
        })
    }

    /// The log keeps every partition of every topic, each with its replicas,
    /// and each consuming service (a group) its progress in every partition
    /// it reads: refused when absurd.
    fn log_size_bound(&mut self, s: &Scenario, names: &Names, consumed_topics: u64) {
        if let Some(schema::Bus::Log { partitions, brokers, per_topic, .. }) = s.log_bus() {
            // At most: the largest topic's partitions for every topic.
            let largest = per_topic.iter().filter_map(|t| t.partitions).fold(*partitions, u32::max);
            let partitions = u64::from(largest.min(bounds::PARTITIONS_MAX));
            let replication = brokers.as_ref().map_or(1, |b| u64::from(b.replication.clamp(1, 100)));
            let (topics, groups) = (names.kind_count() as u64, consumed_topics * partitions);
            let kept = topics * partitions * (1 + replication);
            if kept > bounds::LOG_PARTITIONS_MAX || groups > bounds::LOG_PARTITIONS_MAX {
                self.err(
                    &[P::F("bus"), P::F("partitions")],
                    format!(
                        "{topics} topics × {partitions} partitions: {kept} partition replicas to keep and {groups} \
                         consumer positions to track"
                    ),
                    Some(format!("at most {} of each: fewer partitions or fewer topics", bounds::LOG_PARTITIONS_MAX)),
                );
            }
        }
    }

    /// A log's broker nodes (the log at `here`; `latency`: its fetch
    /// latency, the default between replicas).
    fn broker_spec(&mut self, here: &[P], b: &schema::Brokers, latency: &schema::Dist) -> BrokerSpec {
        let at = |f: &'static str| [here, &[P::F("brokers"), P::F(f)]].concat();
        let count = self.bounded(&at("count"), "count", b.count, 1, 100);
        let replication = self.bounded(&at("replication"), "replication", b.replication, 1, count.max(1));
        let min_insync = self.bounded(&at("min_insync"), "min_insync", b.min_insync, 1, replication.max(1));
        let flush_every = b.flush.as_deref().and_then(|f| self.duration(&at("flush"), f));
        if flush_every == Some(SimDuration::ZERO) {
            self.err(&at("flush"), "the flush interval must be above zero", None);
        }
        let replica_latency = match &b.replica_latency {
            Some(d) => self.dist(&at("replica_latency"), d),
            None => self.dist(&[here, &[P::F("latency")]].concat(), latency),
        }
        .unwrap_or(Dist::Const(SimDuration::ZERO));
        let retry_after = match &b.retry_after {
            Some(t) => self.duration(&at("retry_after"), t).unwrap_or(SimDuration::SECOND),
            None => SimDuration::from_secs(5),
        };
        if retry_after == SimDuration::ZERO {
            self.err(&at("retry_after"), "retry_after must be above zero", None);
        }
        let retries = self.bounded(&at("retries"), "retries", b.retries, 0, 1_000);
        let broker_session = self.positive(&at("session_timeout"), &b.session_timeout, 9);
        let replica_lag = self.positive(&at("replica_lag"), &b.replica_lag, 30);
        BrokerSpec {
            count,
            replication,
            min_insync,
            acks: match b.acks {
                schema::AcksSchema::None => Acks::None,
                schema::AcksSchema::Leader => Acks::Leader,
                schema::AcksSchema::All => Acks::All,
            },
            unclean_election: b.unclean_election,
            flush_every,
            replica_latency,
            retries,
            retry_after,
            idempotent: b.idempotent,
            session_timeout: broker_session,
            replica_lag,
        }
    }

    /// A log's topics with their own settings (at `here`), each taking what
    /// it leaves out from its bus: (partitions, retention, size retention,
    /// broker nodes).
    fn topic_specs(
        &mut self,
        here: &[P],
        topics: &[schema::Topic],
        (partitions, retention, retention_records, brokers): (u32, Option<SimDuration>, Option<u64>, Option<u32>),
        names: &mut Names,
        emitted: &[&str],
    ) -> Vec<TopicSpec> {
        let mut out: Vec<TopicSpec> = Vec::new();
        for (i, t) in topics.iter().enumerate() {
            let at = |f: &'static str| [here, &[P::F("per_topic"), P::I(i), P::F(f)]].concat();
            if !emitted.contains(&t.name.as_str()) {
                let help = suggest(&t.name, emitted.iter().copied()).map(|x| format!("did you mean `{x}`?"));
                self.err(&at("name"), format!("topic `{}` is never emitted by any service", t.name), help);
                continue;
            }
            let kind = names.kind(&t.name);
            if out.iter().any(|o| o.kind == kind) {
                self.err(&at("name"), format!("topic `{}` has its settings twice", t.name), None);
            }
            let replication = t.replication.map(|r| match brokers {
                Some(count) => self.bounded(&at("replication"), "replication", r, 1, count),
                None => {
                    let help = Some("replication needs broker nodes: `brokers: (count: N)`".into());
                    self.err(&at("replication"), "an ideal broker keeps one copy", help);
                    1
                }
            });
            out.push(TopicSpec {
                kind,
                partitions: t.partitions.map_or(partitions, |p| {
                    self.bounded(&at("partitions"), "partitions", p, 1, bounds::PARTITIONS_MAX)
                }),
                retention: t.retention.as_deref().and_then(|r| self.duration(&at("retention"), r)).or(retention),
                retention_records: t
                    .retention_records
                    .map(|n| self.bounded(&at("retention_records"), "retention_records", n, 1, u64::MAX))
                    .or(retention_records),
                compacted: t.compacted,
                replication,
                round_robin: t.key == schema::TopicKey::RoundRobin,
            });
        }
        out
    }

    /// The services, and which of them accept which workload's entity
    /// (service, workload); `entry` holds each workload's entity kind and
    /// request.
    fn services(
        &mut self,
        s: &Scenario,
        names: &mut Names,
        emitted: &[&str],
        requests: &[&str],
        entry: &[(&str, Kind)],
    ) -> (Vec<ServiceSpec>, Vec<(usize, usize)>) {
        if s.services.is_empty() {
            self.err(&[P::F("services")], "a scenario needs at least one service", None);
        }
        let mut services = Vec::new();
        let mut accepting: Vec<(usize, usize)> = Vec::new();
        let (mut node_count, mut worker_count, mut consumed_topics) = (0u64, 0u64, 0u64);
        for (i, sv) in s.services.iter().enumerate() {
            let at = |f: &'static str| [P::F("services"), P::I(i), P::F(f)];
            if !valid_name(&sv.name) {
                self.err(
                    &at("name"),
                    format!("service name {:?} is not usable", sv.name),
                    Some("use letters, digits, '_' and '-'".into()),
                );
            }
            if s.services[..i].iter().any(|o| o.name == sv.name) {
                self.err(&at("name"), format!("service `{}` is declared twice", sv.name), None);
            }
            let (instances, autoscale) = self.instances(i, sv);
            let workers = self.bounded(&at("workers"), "workers", sv.workers, 1, bounds::WORKERS_MAX);
            // A queue of 0 is a loss system: what finds every worker busy is refused.
            let queue = self.bounded(&at("queue"), "queue", sv.queue, 0, bounds::QUEUE_MAX);
            node_count += u64::from(instances.min(bounds::INSTANCES_MAX));
            worker_count += u64::from(instances) * u64::from(workers);
            let before = worker_count - u64::from(instances) * u64::from(workers);
            if worker_count > bounds::WORKERS_TOTAL_MAX && before <= bounds::WORKERS_TOTAL_MAX {
                self.err(
                    &at("workers"),
                    format!("{worker_count} workers in all (instances × workers, summed over the services so far)"),
                    Some(format!("at most {} in a scenario", bounds::WORKERS_TOTAL_MAX)),
                );
            }
            consumed_topics += sv.consume.topics.len() as u64;
            let mut consumes = Vec::new();
            for (t, topic) in sv.consume.topics.iter().enumerate() {
                if !emitted.contains(&topic.as_str()) {
                    let help = suggest(topic, emitted.iter().copied()).map(|s| format!("did you mean `{s}`?"));
                    self.err(
                        &[P::F("services"), P::I(i), P::F("consume"), P::F("topics"), P::I(t)],
                        format!("topic `{topic}` is never emitted by any service"),
                        help.or_else(|| Some("a topic exists when some handler emits it".into())),
                    );
                }
                consumes.push(names.kind(topic));
            }
            let mut handlers = Vec::new();
            let mut reserves = false;
            let mut spec_flaky = false;
            for (h, handler) in sv.on.iter().enumerate() {
                let here = [P::F("services"), P::I(i), P::F("on"), P::I(h)];
                let handler = match handler {
                    schema::Handler::Accept { entity, .. } => {
                        let w =
                            self.accepted_workload(&[&here[..], &[P::F("entity")]].concat(), &sv.name, entity, entry);
                        accepting.push((i, w));
                        self.accept_handler(&here, s, sv, handler, entry.get(w).map_or(Kind(0), |e| e.1), names)
                    }
                    schema::Handler::Handle { .. } => {
                        self.handle_handler(&here, s, sv, handler, names, emitted, requests, &handlers)
                    }
                };
                spec_flaky |= handler.flaky > 0.0;
                reserves |= handler.reserve.is_some();
                handlers.push(handler);
            }
            let mut spec = ServiceSpec::new(&sv.name);
            (spec.instances, spec.autoscale) = (instances, autoscale);
            spec.workers = workers;
            spec.queue_capacity = queue;
            spec.state = state_kind(sv.state);
            spec.consumes = consumes;
            spec.commit = self.commit_policy(i, sv);
            let is_log = reads_from(s, sv, true);
            if spec.commit != CommitPolicy::AfterProcess && !is_log {
                self.err(
                    &[P::F("services"), P::I(i), P::F("consume"), P::F("commit")],
                    "commit policies apply to consumers of a Log bus",
                    Some("remove `commit`, or use bus: Log(...)".into()),
                );
            }
            let is_queue = reads_from(s, sv, false);
            let cat = |f: &'static str| [P::F("services"), P::I(i), P::F("consume"), P::F(f)];
            if !is_queue {
                for (field, set) in [
                    ("queue", sv.consume.queue.is_some()),
                    ("ack", sv.consume.ack.is_some()),
                    ("prefetch", sv.consume.prefetch.is_some()),
                ] {
                    if set {
                        self.err(
                            &cat(field),
                            format!("`{field}` applies to consumers of a Queue bus"),
                            Some(format!("remove `{field}`, or use bus: Queue(...)")),
                        );
                    }
                }
            }
            spec.queue = sv.consume.queue.clone();
            spec.start_latest = matches!(sv.consume.start, schema::Start::Latest);
            if let Some(o) = &sv.outbox {
                let at = [P::F("services"), P::I(i), P::F("outbox"), P::F("poll")];
                let poll = self.duration(&at, &o.poll);
                if poll == Some(SimDuration::ZERO) {
                    self.err(&at, "the outbox poll interval must be above zero", None);
                }
                spec.outbox = Some(poll.unwrap_or(SimDuration::SECOND));
            }
            spec.starts_at = self.starts_at(i, sv);
            spec.routing = routing(sv.routing);
            spec.auto_ack = matches!(sv.consume.ack, Some(schema::Ack::Auto));
            spec.prefetch = match sv.consume.prefetch {
                Some(p) => self.bounded(&cat("prefetch"), "prefetch", p, 1, 1_000_000),
                // Only a Queue bus reads it.
                None => match s.queue_bus() {
                    Some(schema::Bus::Queue { kind, .. }) => queue_kind(*kind).default_prefetch(),
                    _ => u32::MAX,
                },
            };
            spec.dedup = sv.dedup.as_ref().map(|d| {
                let (durable, window) = match d {
                    schema::Dedup::Volatile { window } => (false, *window),
                    schema::Dedup::Durable { window } => (true, *window),
                };
                let at = [P::F("services"), P::I(i), P::F("dedup"), P::F("window")];
                let window = self.bounded(&at, "window", window, 1, bounds::DEDUP_WINDOW_MAX);
                Dedup { durable, window }
            });
            spec.calls = handlers.iter().any(|h| h.call.is_some());
            let machine = self.machine(i, sv, names);
            spec.durable_timers = sv.timers != schema::State::Volatile;
            spec.behaviour = Arc::new(Declarative { handlers, machine, version: sv.version });
            spec.reserves = reserves;
            spec.flaky = spec_flaky;
            services.push(spec);
        }
        if node_count > bounds::NODES_MAX {
            self.err(
                &[P::F("services")],
                format!("{node_count} instances in all is absurd"),
                Some(format!("at most {}", bounds::NODES_MAX)),
            );
        }
        self.log_size_bound(s, names, consumed_topics);
        (services, accepting)
    }

    /// Service `i`'s state machine, if it has one.
    fn machine(&mut self, i: usize, sv: &schema::Service, names: &mut Names) -> Option<Machine> {
        sv.machine.as_ref().map(|m| {
            let mat = |f: &'static str| [P::F("services"), P::I(i), P::F("machine"), P::F(f)];
            let terminal: Vec<u16> = m.terminal.iter().map(|t| names.state(t)).collect();
            let mut timeouts = Vec::new();
            for (k, t) in m.timeouts.iter().enumerate() {
                let tat = |f: &'static str| [&mat("timeouts")[..], &[P::I(k), P::F(f)]].concat();
                let state = usize::from(names.state(&t.state));
                let to = names.state(&t.to);
                let after = self.duration(&tat("after"), &t.after);
                if after == Some(SimDuration::ZERO) {
                    self.err(&tat("after"), "a deadline must be above zero", None);
                }
                if timeouts.len() <= state {
                    timeouts.resize(state + 1, None);
                }
                if timeouts[state].is_some() {
                    self.err(&tat("state"), format!("state `{}` has two deadlines", t.state), None);
                }
                timeouts[state] = Some(Timeout {
                    after: after.unwrap_or(SimDuration::SECOND),
                    to,
                    emit: t.emit.iter().map(|k| names.kind(k)).collect(),
                    effect: t.effect.as_deref().map(|e| names.effect(e)),
                });
            }
            let mut term = vec![false; names.state_count()];
            for t in terminal {
                term[usize::from(t)] = true;
            }
            Machine { terminal: term, timeouts, durable: sv.state != schema::State::Volatile }
        })
    }

    /// The fields a handler at `here` sets on what it publishes, and the
    /// field its `write` puts in the row.
    fn payload_of(
        &mut self,
        here: &[P],
        set: &[schema::Set],
        write: &Option<String>,
        write_value: &Option<String>,
        names: &mut Names,
    ) -> (Vec<(u8, SetTo)>, Option<u8>) {
        let mut out = Vec::new();
        for (k, st) in set.iter().enumerate() {
            let at = |f: &'static str| [here, &[P::F("set"), P::I(k), P::F(f)]].concat();
            let slot = self.field(&at("field"), &st.field, names);
            let to = match &st.to {
                schema::SetTo::Const(v) => SetTo::Const(*v),
                schema::SetTo::Copy(from) => SetTo::Copy(self.field(&at("to"), from, names)),
                schema::SetTo::Add(by) => SetTo::Add(*by),
            };
            if set[..k].iter().any(|o| o.field == st.field) {
                self.err(&at("field"), format!("field `{}` is set twice", st.field), None);
            }
            out.push((slot, to));
        }
        let value = write_value.as_ref().map(|f| {
            let at = [here, &[P::F("write_value")]].concat();
            if write.is_none() {
                let help = Some("add `write: \"table\"`, or remove `write_value`".into());
                self.err(&at, "`write_value` names the value a `write` puts in its row, and there is no `write`", help);
            }
            self.field(&at, f, names)
        });
        (out, value)
    }

    /// The slot of message field `name` (written at `at`): at most
    /// [`FIELDS`] distinct fields in a scenario.
    fn field(&mut self, at: &[P], name: &str, names: &mut Names) -> u8 {
        if !valid_name(name) {
            self.err(at, format!("field name {name:?} is not usable"), Some("use letters, digits, '_' and '-'".into()));
        }
        let slot = names.field(name);
        if usize::from(slot) >= FIELDS {
            let named: Vec<String> = (0..FIELDS as u8).map(|f| format!("`{}`", names.field_name(f))).collect();
            let help =
                Some(format!("messages carry at most {FIELDS} fields; this scenario names {} first", named.join(", ")));
            self.err(at, format!("field `{name}` is one field too many"), help);
        }
        slot
    }

    /// The entry handler `handler` (an `Accept`, at `here`) of service `sv`,
    /// for the workload whose requests are `request`.
    fn accept_handler(
        &mut self,
        here: &[P],
        s: &Scenario,
        sv: &schema::Service,
        handler: &schema::Handler,
        request: Kind,
        names: &mut Names,
    ) -> KHandler {
        let schema::Handler::Accept { work, emit, terminal, write, call, to, set, write_value, .. } = handler else {
            unreachable!("an Accept handler")
        };
        let hat = |f: &'static str| [here, &[P::F(f)]].concat();
        let work = self.dist(&hat("work"), work);
        let (set, write_value) = self.payload_of(here, set, write, write_value, names);
        KHandler {
            accept: true,
            emit: emit.iter().map(|k| names.kind(k)).collect(),
            terminal: *terminal,
            write: write.as_deref().map(|t| names.table(t)),
            write_value,
            set,
            call: call.as_ref().and_then(|c| self.call(&hat("call"), c, s, names)),
            to: to.as_deref().map(|t| self.state(&hat("to"), sv, t, names)),
            ..KHandler::new(request, work.unwrap_or(Dist::Const(SimDuration::ZERO)))
        }
    }

    /// The handler `handler` (a `Handle`, at `here`) of service `sv`, after
    /// its handlers so far, `handlers`.
    #[allow(clippy::too_many_arguments)]
    fn handle_handler(
        &mut self,
        here: &[P],
        s: &Scenario,
        sv: &schema::Service,
        handler: &schema::Handler,
        names: &mut Names,
        emitted: &[&str],
        requests: &[&str],
        handlers: &[KHandler],
    ) -> KHandler {
        let schema::Handler::Handle {
            event,
            work,
            emit,
            effect,
            terminal,
            fail_keys,
            write,
            reserve,
            rejected,
            call,
            decline,
            flaky,
            from,
            to,
            set,
            write_value,
        } = handler
        else {
            unreachable!("a Handle handler")
        };
        let hat = |f: &'static str| [here, &[P::F(f)]].concat();
        let kind = self.handled_kind(&hat("event"), sv, event, from, names, (emitted, requests), handlers);
        let work = self.dist(&hat("work"), work);
        let (set, write_value) = self.payload_of(here, set, write, write_value, names);
        KHandler {
            on: kind,
            work: work.unwrap_or(Dist::Const(SimDuration::ZERO)),
            accept: false,
            emit: emit.iter().map(|k| names.kind(k)).collect(),
            effect: effect.as_deref().map(|e| names.effect(e)),
            terminal: *terminal,
            fail_keys: fail_keys.clone(),
            write: write.as_deref().map(|t| names.table(t)),
            write_value,
            set,
            reserve: reserve.as_ref().map(reserve_of),
            rejected: rejected.iter().map(|k| names.kind(k)).collect(),
            call: call.as_ref().and_then(|c| self.call(&hat("call"), c, s, names)),
            decline: decline.as_ref().map(|d| self.decline(&hat("decline"), d, names)),
            flaky: self.flaky(&hat("flaky"), *flaky),
            from: from
                .iter()
                .enumerate()
                .map(|(k, st)| {
                    let at = [&hat("from")[..], &[P::I(k)]].concat();
                    self.state(&at, sv, st, names)
                })
                .collect(),
            to: to.as_deref().map(|t| self.state(&hat("to"), sv, t, names)),
        }
    }

    /// The kind a `Handle(event, from)` of service `sv` handles (at `at`):
    /// one the service consumes (or a call's request, of `known`), and not
    /// handled twice in one state by `handlers`.
    #[allow(clippy::too_many_arguments)]
    fn handled_kind(
        &mut self,
        at: &[P],
        sv: &schema::Service,
        event: &str,
        from: &[String],
        names: &mut Names,
        (emitted, requests): (&[&str], &[&str]),
        handlers: &[KHandler],
    ) -> Kind {
        // A misspelt consume topic is reported once, at the topic.
        let topics_valid = sv.consume.topics.iter().all(|t| emitted.contains(&t.as_str()));
        if topics_valid && !sv.consume.topics.iter().any(|t| t == event) && !requests.contains(&event) {
            let help = match suggest(event, sv.consume.topics.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("add `{event}` to this service's consume topics"),
            };
            self.err(at, format!("service `{}` handles `{event}` but does not consume it", sv.name), Some(help));
        }
        let kind = names.kind(event);
        // With a machine, one handler per state is fine.
        let states: Vec<u16> = from.iter().map(|st| names.state(st)).collect();
        let overlaps = |x: &KHandler| {
            sv.machine.is_none()
                || x.from.is_empty()
                || states.is_empty()
                || x.from.iter().any(|st| states.contains(st))
        };
        if handlers.iter().any(|x: &KHandler| x.on == kind && overlaps(x)) {
            self.err(at, format!("service `{}` has two handlers for `{event}`", sv.name), None);
        }
        kind
    }

    /// A handler's business refusal (at `at`).
    fn decline(&mut self, at: &[P], d: &schema::DeclineSchema, names: &mut Names) -> Decline {
        let p = d.probability;
        if !(0.0..=1.0).contains(&p) {
            self.err(&[at, &[P::F("probability")]].concat(), format!("probability {p} is not in [0, 1]"), None);
        }
        Decline { probability: p, emit: d.emit.iter().map(|k| names.kind(k)).collect() }
    }

    /// A handler's probability of failing for a passing reason (at `at`).
    fn flaky(&mut self, at: &[P], flaky: f64) -> f64 {
        if !(0.0..1.0).contains(&flaky) {
            let help = Some("below 1, or the handler never succeeds".to_string());
            self.err(at, format!("probability {flaky} is not in [0, 1)"), help);
        }
        flaky
    }

    /// When service `i` is deployed (time zero unless `starts_at` says).
    /// Service `i`'s commit policy.
    fn commit_policy(&mut self, i: usize, sv: &schema::Service) -> CommitPolicy {
        match &sv.consume.commit {
            schema::Commit::AfterProcess => CommitPolicy::AfterProcess,
            schema::Commit::BeforeProcess => CommitPolicy::BeforeProcess,
            schema::Commit::Transactional => CommitPolicy::Transactional,
            schema::Commit::Auto { every } => {
                let at = [P::F("services"), P::I(i), P::F("consume"), P::F("commit"), P::F("every")];
                let every = self.duration(&at, every).unwrap_or(SimDuration::SECOND);
                if every == SimDuration::ZERO {
                    self.err(&at, "the auto-commit interval must be above zero", None);
                }
                CommitPolicy::Auto { every }
            }
        }
    }

    /// Service `i`'s nodes (its most instances) and its autoscaler, if any.
    fn instances(&mut self, i: usize, sv: &schema::Service) -> (u32, Option<crate::system::Autoscale>) {
        let at = |f: &'static str| [P::F("services"), P::I(i), P::F(f)];
        let instances = self.bounded(&at("instances"), "instances", sv.instances, 1, bounds::INSTANCES_MAX);
        let Some(a) = &sv.autoscale else { return (instances, None) };
        let here = |f: &'static str| [P::F("services"), P::I(i), P::F("autoscale"), P::F(f)];
        let min = self.bounded(&here("min"), "min", a.min, 1, bounds::INSTANCES_MAX);
        let max = self.bounded(&here("max"), "max", a.max, min.max(1), bounds::INSTANCES_MAX);
        if !(min..=max).contains(&instances) {
            self.err(
                &at("instances"),
                format!("an autoscaled service starts with {instances} instances, outside its {min}..={max}"),
                Some("`instances` is the count it starts with, between `min` and `max`".into()),
            );
        }
        if !(a.target > 0.0 && a.target <= 1.0) {
            self.err(&here("target"), format!("target utilisation {} is not in (0, 1]", a.target), None);
        }
        let tolerance = a.tolerance.unwrap_or(0.1);
        if !(0.0..1.0).contains(&tolerance) {
            self.err(&here("tolerance"), format!("tolerance {tolerance} is not in [0, 1)"), None);
        }
        let mut duration = |f: &'static str, v: &Option<String>, default: SimDuration| {
            v.as_ref().and_then(|t| self.duration(&here(f), t)).unwrap_or(default)
        };
        let every = duration("every", &a.every, SimDuration::from_secs(15));
        let startup = duration("startup", &a.startup, SimDuration::from_secs(10));
        let stabilization = duration("stabilization", &a.stabilization, SimDuration::from_secs(300));
        if every == SimDuration::ZERO {
            self.err(&here("every"), "the autoscaler's period must be above zero", None);
        }
        let initial = instances.clamp(min, max);
        let scale =
            crate::system::Autoscale { min, initial, target: a.target, every, startup, stabilization, tolerance };
        (max, Some(scale))
    }

    fn starts_at(&mut self, i: usize, sv: &schema::Service) -> SimTime {
        let at = [P::F("services"), P::I(i), P::F("starts_at")];
        let d = sv.starts_at.as_ref().and_then(|t| self.duration(&at, t));
        SimTime::ZERO + d.unwrap_or(SimDuration::ZERO)
    }

    /// The workload of `entry` whose entity service `service` accepts (in a
    /// handler at `at`); one is chosen when none creates it (an error).
    fn accepted_workload(&mut self, at: &[P], service: &str, entity: &str, entry: &[(&str, Kind)]) -> usize {
        let w = entry.iter().position(|e| e.0 == entity);
        match (w, entry) {
            (Some(_), _) => {}
            (None, [(only, _)]) => {
                let message = format!("service `{service}` accepts `{entity}` but the workload creates `{only}`");
                self.err(at, message, None);
            }
            _ => {
                let kinds: Vec<String> = entry.iter().map(|e| format!("`{}`", e.0)).collect();
                let help = Some(format!("the workloads create {}", kinds.join(", ")));
                self.err(at, format!("service `{service}` accepts `{entity}`, which no workload creates"), help);
            }
        }
        w.unwrap_or(0)
    }

    /// The scenario has `workload` or `workloads`, not both, not neither,
    /// and no two workloads create one entity kind.
    fn one_or_several_workloads(&mut self, s: &Scenario, workloads: &[(Vec<P>, &schema::Workload)]) {
        match (&s.workload, s.workloads.is_empty()) {
            (None, true) => {
                let help =
                    "add `workload: Poisson(rate: ..., entity: ..., keys: ...)`, or `workloads: [...]` for several";
                self.err(&[], "the scenario has no workload", Some(help.into()));
            }
            (Some(_), false) => {
                let help = "one workload: `workload: ...`; several: `workloads: [...]` alone";
                self.err(&[P::F("workloads")], "both `workload` and `workloads` are given", Some(help.into()));
            }
            _ => {}
        }
        for (i, (here, w)) in workloads.iter().enumerate() {
            if workloads[..i].iter().any(|(_, o)| o.entity() == w.entity()) {
                let at = [here.as_slice(), &[P::F("entity")]].concat();
                let help = Some("each workload creates its own entity kind: merge them or rename one".into());
                self.err(&at, format!("two workloads create `{}`", w.entity()), help);
            }
        }
    }

    /// Each workload: its arrivals, keys and entry service.
    fn workloads(
        &mut self,
        s: &Scenario,
        workloads: &[(Vec<P>, &schema::Workload)],
        (duration, limits): (Option<SimDuration>, &Limits),
        accepting: &[(usize, usize)],
        entry: &[(&str, Kind)],
        names: &mut Names,
    ) -> Option<Vec<WorkloadSpec>> {
        let mut out = Vec::new();
        let mut expected_total = 0u64;
        for (w, (here, wl)) in workloads.iter().enumerate() {
            let serving: Vec<usize> = accepting.iter().filter(|a| a.1 == w).map(|a| a.0).collect();
            let spec = self.workload(s, here, wl, duration, limits, &serving, entry[w].1, &mut expected_total);
            let (fields, version) = self.request_fields(here, wl, names);
            out.push(spec.map(|spec| WorkloadSpec { fields, version, ..spec }));
        }
        out.into_iter().collect()
    }

    /// The fields of the requests of the workload `wl` (at `here`) and
    /// their schema version.
    fn request_fields(&mut self, here: &[P], wl: &schema::Workload, names: &mut Names) -> (Vec<(u8, FieldValue)>, u16) {
        let (fields, version) = wl.payload();
        let mut out = Vec::new();
        for (k, f) in fields.iter().enumerate() {
            let at = |x: &'static str| [here, &[P::F("fields"), P::I(k), P::F(x)]].concat();
            let slot = self.field(&at("name"), &f.name, names);
            if fields[..k].iter().any(|o| o.name == f.name) {
                self.err(&at("name"), format!("field `{}` is given twice", f.name), None);
            }
            let value = match f.value {
                schema::FieldValue::Const(v) => FieldValue::Const(v),
                schema::FieldValue::Uniform(lo, hi) => {
                    if lo > hi {
                        self.err(&at("value"), format!("Uniform({lo}, {hi}) is empty"), Some("lo <= hi".into()));
                    }
                    FieldValue::Uniform(lo, hi.max(lo))
                }
                schema::FieldValue::Sequential => FieldValue::Sequential,
                schema::FieldValue::Key => FieldValue::Key,
            };
            out.push((slot, value));
        }
        if version == Some(0) {
            self.err(&[here, &[P::F("version")]].concat(), "schema versions start at 1", None);
        }
        (out, version.unwrap_or(1))
    }

    /// The workload `wl` written at `here`: its arrivals, keys and entry
    /// service (the one of `serving`); adds the entities it is expected to
    /// create to `expected_total`, which `entities_max` bounds.
    #[allow(clippy::too_many_arguments)]
    fn workload(
        &mut self,
        s: &Scenario,
        here: &[P],
        wl: &schema::Workload,
        duration: Option<SimDuration>,
        limits: &Limits,
        serving: &[usize],
        request: Kind,
        expected_total: &mut u64,
    ) -> Option<WorkloadSpec> {
        let wat = |f: &'static str| [here, &[P::F(f)]].concat();
        let entity = wl.entity();
        let (start, stop) = match wl {
            schema::Workload::Poisson { start, stop, .. }
            | schema::Workload::Regular { start, stop, .. }
            | schema::Workload::Replay { start, stop, .. } => (start, stop),
        };
        let start = start.as_ref().map_or(Some(SimDuration::ZERO), |t| self.duration(&wat("start"), t));
        let stop = stop.as_ref().map_or(duration, |t| self.duration(&wat("stop"), t));
        let arrivals = self.arrivals(here, wl);
        let target = match serving {
            [one] => Some(*one),
            [] => {
                self.err(
                    &wat("entity"),
                    format!("no service accepts `{entity}`"),
                    Some(format!("give the entry service a handler Accept(entity: \"{entity}\", ...)")),
                );
                None
            }
            [_, second, ..] => {
                self.err(
                    &[P::F("services"), P::I(*second), P::F("name")],
                    format!("more than one service accepts `{entity}`"),
                    Some("exactly one service is the entry point".into()),
                );
                None
            }
        };
        if let (Some(a), Some(d)) = (start, duration)
            && a >= d
        {
            let help = Some(format!("start it before the end of the run ({})", s.duration));
            self.err(&wat("start"), "the workload starts when the run has ended: no entity would exist", help);
        } else if let (Some(a), Some(b)) = (start, stop)
            && a >= b
        {
            self.err(&wat("stop"), "the workload stops before it starts", None);
        }
        if let (Some(arrivals), Some(a), Some(b)) = (&arrivals, start, stop) {
            *expected_total = expected_total.saturating_add(arrivals.expected(a, b));
            if *expected_total > limits.entities_max {
                let several = if workloads_written(s) > 1 { " (with the workloads before it)" } else { "" };
                self.err(
                    &wat(if matches!(wl, schema::Workload::Replay { .. }) { "file" } else { "rate" }),
                    format!(
                        "this workload would create about {expected_total} entities{several}, above entities_max ({})",
                        limits.entities_max
                    ),
                    Some("lower the rate or the duration, or raise limits.entities_max".into()),
                );
            }
        }
        let (duration, arrivals, start, stop, target) = (duration?, arrivals?, start?, stop?, target?);
        let (interarrival_mean, regular, count, keys, shape, replay) = arrivals.into_parts();
        Some(WorkloadSpec {
            entity: entity.to_string(),
            request,
            target,
            interarrival_mean,
            regular,
            count,
            keys,
            start: SimTime::ZERO + start,
            stop: SimTime::ZERO + stop.min(duration),
            shape,
            replay,
            fields: Vec::new(),
            version: 1,
        })
    }

    /// How the workload written at `here` draws or replays its arrivals.
    fn arrivals(&mut self, here: &[P], wl: &schema::Workload) -> Option<Arrivals> {
        let wat = |f: &'static str| [here, &[P::F(f)]].concat();
        match wl {
            schema::Workload::Poisson { rate, keys, shape, .. }
            | schema::Workload::Regular { rate, keys, shape, .. } => {
                let (regular, count) = match wl {
                    schema::Workload::Regular { count, .. } => (true, *count),
                    _ => (false, None),
                };
                if count == Some(0) {
                    self.err(&wat("count"), "a workload of no arrivals", Some("expected at least 1".into()));
                }
                let gap = self.rate(&wat("rate"), rate);
                let keys = self.keys(here, keys);
                let shape = self.shape(&wat("shape"), shape);
                Some(Arrivals::Drawn { gap: gap?, regular, count, keys, shape })
            }
            schema::Workload::Replay { file, .. } => self.replay(&wat("file"), file).map(Arrivals::Replay),
        }
    }

    /// The arrivals recorded in `file` (relative to the scenario's
    /// directory); a problem in it is told at `at` with the file's own line
    /// and column.
    fn replay(&mut self, at: &[P], file: &str) -> Option<Vec<(SimDuration, u64)>> {
        let path = self.dir.join(file);
        let shown = path.display().to_string();
        let text = match read_text(&shown) {
            Ok(t) => t,
            Err(e) => {
                let message = match e {
                    ScenarioError::Read { source, .. } => format!("cannot read {shown}: {source}"),
                    ScenarioError::Unreadable { message, .. } => format!("cannot read {shown}: {message}"),
                    ScenarioError::Invalid { diagnostics, .. } => {
                        let d = diagnostics.first().map_or(String::new(), |d| d.message.clone());
                        format!("cannot read {shown}: {d}")
                    }
                };
                let help = Some("the file is found relative to the scenario file's directory".into());
                self.err(at, message, help);
                return None;
            }
        };
        match replay::parse(&text) {
            Ok(arrivals) => Some(arrivals),
            Err(p) => {
                let help =
                    Some("each line is `time,key`: a time such as 1.5 or \"1500ms\", then an unsigned key".into());
                self.err(at, format!("{shown}:{}:{}: {}", p.line, p.col, p.message), help);
                None
            }
        }
    }

    /// The keys of the workload written at `here`.
    fn keys(&mut self, here: &[P], keys: &schema::Keys) -> KeyDist {
        match keys {
            schema::Keys::Uniform(0) => {
                self.err(
                    &[here, &[P::F("keys"), P::I(0)]].concat(),
                    "keys Uniform(0) has no keys",
                    Some("expected at least 1".into()),
                );
                KeyDist::Uniform(1)
            }
            schema::Keys::Uniform(n) => KeyDist::Uniform(*n),
            schema::Keys::Sequential => KeyDist::Sequential,
        }
    }

    /// A rate factor of a shape (at `at`): above zero and at most 1000.
    fn factor(&mut self, at: &[P], f: f64) -> f64 {
        if !(f.is_finite() && f > 0.0 && f <= 1000.0) {
            let help = Some("expected a factor above 0 and at most 1000".into());
            self.err(at, format!("factor {f} is out of range"), help);
            return 1.0;
        }
        f
    }

    /// How the workload's rate changes over time (the shape at `here`).
    fn shape(&mut self, here: &[P], shape: &schema::Shape) -> RateShape {
        let at = |f: &'static str| [here, &[P::I(0), P::F(f)]].concat();
        let time = |c: &mut Self, path: &[P], t: &Option<String>, default: SimDuration| match t {
            Some(t) => c.duration(path, t).unwrap_or(default),
            None => default,
        };
        match shape {
            schema::Shape::Constant => RateShape::Constant,
            schema::Shape::Burst { every, lasting, factor, at: first } => {
                let every = self.positive(&at("every"), &Some(every.clone()), 1);
                let lasting = self.duration(&at("lasting"), lasting).unwrap_or(SimDuration::ZERO);
                if lasting >= every {
                    self.err(&at("lasting"), "a burst lasts as long as the time between bursts", None);
                }
                let factor = self.factor(&at("factor"), *factor);
                let first = time(self, &at("at"), first, every);
                RateShape::Burst { every, lasting, factor, at: SimTime::ZERO + first }
            }
            schema::Shape::Steps(steps) => {
                let mut out = Vec::new();
                for (i, st) in steps.iter().enumerate() {
                    let sat = |f: &'static str| [here, &[P::I(0), P::I(i), P::F(f)]].concat();
                    let t = self.duration(&sat("at"), &st.at).unwrap_or(SimDuration::ZERO);
                    if out.last().is_some_and(|(prev, _)| SimTime::ZERO + t <= *prev) {
                        self.err(&sat("at"), "steps must be in time order", None);
                    }
                    out.push((SimTime::ZERO + t, self.factor(&sat("factor"), st.factor)));
                }
                RateShape::Steps(out)
            }
            schema::Shape::Ramp { to, over, from, at: start } => {
                let over = self.positive(&at("over"), &Some(over.clone()), 1);
                let to = self.factor(&at("to"), *to);
                let from = from.map_or(1.0, |f| self.factor(&at("from"), f));
                let start = time(self, &at("at"), start, SimDuration::ZERO);
                RateShape::Ramp { from, to, at: SimTime::ZERO + start, over }
            }
            schema::Shape::Daily { low, high, peak_at, period } => {
                let (low, high) = (self.factor(&at("low"), *low), self.factor(&at("high"), *high));
                if low > high {
                    self.err(&at("low"), format!("the trough ({low}) is above the peak ({high})"), None);
                }
                let period = time(self, &at("period"), period, SimDuration::from_secs(86_400));
                if period == SimDuration::ZERO {
                    self.err(&at("period"), "a cycle of no time", None);
                }
                let peak_at = time(self, &at("peak_at"), peak_at, SimDuration::from_secs(43_200));
                RateShape::Daily { low, high, peak_at, period }
            }
        }
    }

    /// The fault plan, by node names.
    fn faults(&mut self, s: &Scenario, services: &[ServiceSpec], duration: Option<SimDuration>) -> Vec<FaultSpec> {
        // A Queue bus's broker can crash; partitions and links call it "bus".
        let brokers = s.broker_names();
        let queue_broker = s.queue_broker_name();
        let is_queue_broker = |node: &str| queue_broker.as_deref() == Some(node);
        let node_names: Vec<String> = services
            .iter()
            .flat_map(|sv| (0..sv.instances).map(move |i| sv.node_name(i)))
            .chain(brokers.iter().cloned())
            .collect();
        let mut faults = Vec::new();
        for (i, f) in s.faults.iter().enumerate() {
            let fat = |f: &'static str| [P::F("faults"), P::I(i), P::F(f)];
            let (node, down_for) = match f {
                schema::Fault::Crash { node, down_for, .. } | schema::Fault::CrashAt { node, down_for, .. } => {
                    (node, down_for)
                }
                schema::Fault::Slow { node, at, lasting, .. }
                | schema::Fault::Pause { node, at, lasting }
                | schema::Fault::ClockSkew { node, at, lasting, .. } => {
                    if !node_names.contains(node) || brokers.contains(node) {
                        let help = suggest(node, node_names.iter().map(String::as_str))
                            .map(|s| format!("did you mean `{s}`?"));
                        self.err(&fat("node"), format!("no service instance is called `{node}`"), help);
                    }
                    let (at_t, lasting) = (self.duration(&fat("at"), at), self.duration(&fat("for"), lasting));
                    if lasting == Some(SimDuration::ZERO) {
                        self.err(&fat("for"), "the fault must last more than zero", None);
                    }
                    self.not_after_end(&fat("at"), at_t, duration, s);
                    let range = match f {
                        schema::Fault::Slow { factor, .. } => Some((*factor, 1.0, 1000.0)),
                        schema::Fault::ClockSkew { factor, .. } => Some((*factor, 0.01, 100.0)),
                        _ => None,
                    };
                    if let Some((factor, lo, hi)) = range
                        && !(factor.is_finite() && (lo..=hi).contains(&factor))
                    {
                        let help = Some(format!("expected {lo} to {hi}"));
                        self.err(&fat("factor"), format!("factor {factor} is out of range"), help);
                    }
                    if let (Some(at_t), Some(lasting)) = (at_t, lasting) {
                        let (node, at) = (node.clone(), SimTime::ZERO + at_t);
                        faults.push(match f {
                            schema::Fault::Slow { factor, .. } => {
                                FaultSpec::Slow { node, at, lasting, factor: *factor }
                            }
                            schema::Fault::ClockSkew { factor, .. } => {
                                FaultSpec::ClockSkew { node, at, lasting, factor: *factor }
                            }
                            _ => FaultSpec::Pause { node, at, lasting },
                        });
                    }
                    continue;
                }
                schema::Fault::Partition { groups, one_way, at, lasting } => {
                    if groups.len() != 2 {
                        let help = Some("a partition separates two groups: [[\"a-1\"], [\"bus\"]]".into());
                        self.err(&fat("groups"), format!("{} groups given", groups.len()), help);
                        continue;
                    }
                    let mut resolved: [Vec<String>; 2] = [Vec::new(), Vec::new()];
                    for (g, group) in groups.iter().enumerate() {
                        for (k, node) in group.iter().enumerate() {
                            let at = [P::F("faults"), P::I(i), P::F("groups"), P::I(g), P::I(k)];
                            if node != "bus" && !node_names.contains(node) {
                                let help = suggest(node, node_names.iter().map(String::as_str))
                                    .map(|s| format!("did you mean `{s}`?"))
                                    .or_else(|| Some("name service instances, or \"bus\"".into()));
                                self.err(&at, format!("no node is called `{node}`"), help);
                            } else if is_queue_broker(node) {
                                let help = Some("use \"bus\"".into());
                                self.err(&at, "a partition names a Queue bus's broker `bus`", help);
                            }
                            resolved[g].push(node.clone());
                        }
                    }
                    let (at_t, lasting) = (self.duration(&fat("at"), at), self.duration(&fat("for"), lasting));
                    self.not_after_end(&fat("at"), at_t, duration, s);
                    if let (Some(at_t), Some(lasting)) = (at_t, lasting) {
                        let at = SimTime::ZERO + at_t;
                        faults.push(FaultSpec::Partition { groups: resolved, one_way: *one_way, at, lasting });
                    }
                    continue;
                }
                schema::Fault::Link { from, to, drop, duplicate, delay, reorder, at, lasting } => {
                    for (field, node) in [("from", from), ("to", to)] {
                        if node != "bus" && !node_names.contains(node) {
                            let help = suggest(node, node_names.iter().map(String::as_str))
                                .map(|s| format!("did you mean `{s}`?"));
                            self.err(&fat(field), format!("no node is called `{node}`"), help);
                        } else if is_queue_broker(node) {
                            let help = Some("use \"bus\"".into());
                            self.err(&fat(field), "a link names a Queue bus's broker `bus`", help);
                        }
                    }
                    for (field, p) in [("drop", drop), ("duplicate", duplicate)] {
                        if !(0.0..=1.0).contains(p) {
                            self.err(&fat(field), format!("probability {p} is not in [0, 1]"), None);
                        }
                    }
                    let delay = delay.as_ref().and_then(|d| self.dist(&fat("delay"), d));
                    let reorder = reorder.as_ref().and_then(|r| {
                        let rat = |f: &'static str| [&fat("reorder")[..], &[P::F(f)]].concat();
                        if !(0.0..=1.0).contains(&r.probability) {
                            self.err(
                                &rat("probability"),
                                format!("probability {} is not in [0, 1]", r.probability),
                                None,
                            );
                        }
                        self.dist(&rat("by"), &r.by).map(|by| (r.probability, by))
                    });
                    let (at_t, lasting) = (self.duration(&fat("at"), at), self.duration(&fat("for"), lasting));
                    self.not_after_end(&fat("at"), at_t, duration, s);
                    if let (Some(at_t), Some(lasting)) = (at_t, lasting) {
                        faults.push(FaultSpec::Link {
                            from: from.clone(),
                            to: to.clone(),
                            drop: *drop,
                            duplicate: *duplicate,
                            delay,
                            reorder,
                            at: SimTime::ZERO + at_t,
                            lasting,
                        });
                    }
                    continue;
                }
                schema::Fault::RandomCrashes { nodes, mtbf, mttr, from, until }
                | schema::Fault::RandomPauses { nodes, mtbf, mttr, from, until }
                | schema::Fault::RandomPartitions { nodes, mtbf, mttr, from, until }
                | schema::Fault::RandomClockSkews { nodes, mtbf, mttr, from, until, .. }
                | schema::Fault::RandomLossyLinks { nodes, mtbf, mttr, from, until, .. }
                | schema::Fault::RandomSlowdowns { nodes, mtbf, mttr, from, until, .. } => {
                    let what = match f {
                        schema::Fault::RandomPauses { .. } => RandomFault::Pause,
                        schema::Fault::RandomPartitions { .. } => RandomFault::Isolate,
                        schema::Fault::RandomLossyLinks { drop, duplicate, delay, .. } => {
                            for (field, p) in [("drop", drop), ("duplicate", duplicate)] {
                                if !(0.0..=1.0).contains(p) {
                                    self.err(&fat(field), format!("probability {p} is not in [0, 1]"), None);
                                }
                            }
                            let delay = match delay {
                                Some(d) => self.duration(&fat("delay"), d).unwrap_or(SimDuration::ZERO),
                                None => SimDuration::ZERO,
                            };
                            RandomFault::Lossy { drop: *drop, duplicate: *duplicate, delay }
                        }
                        schema::Fault::RandomSlowdowns { factor, .. } => {
                            if !(factor.is_finite() && (1.0..=1000.0).contains(factor)) {
                                let help = Some("expected 1 to 1000".to_string());
                                self.err(&fat("factor"), format!("factor {factor} is out of range"), help);
                            }
                            RandomFault::Slow(*factor)
                        }
                        schema::Fault::RandomClockSkews { factor, .. } => {
                            if !(factor.is_finite() && (0.01..=100.0).contains(factor)) {
                                let help = Some("expected 0.01 to 100".to_string());
                                self.err(&fat("factor"), format!("factor {factor} is out of range"), help);
                            }
                            RandomFault::Skew(*factor)
                        }
                        _ => RandomFault::Crash,
                    };
                    for (k, node) in nodes.iter().enumerate() {
                        if what != RandomFault::Crash && brokers.contains(node) {
                            self.err(
                                &[P::F("faults"), P::I(i), P::F("nodes"), P::I(k)],
                                format!("`{node}` is a broker: only crashes can hit brokers"),
                                None,
                            );
                        }
                        if !node_names.contains(node) {
                            let help = suggest(node, node_names.iter().map(String::as_str))
                                .map(|s| format!("did you mean `{s}`?"));
                            self.err(
                                &[P::F("faults"), P::I(i), P::F("nodes"), P::I(k)],
                                format!("no node is called `{node}`"),
                                help,
                            );
                        }
                    }
                    let (mtbf, mttr) = (self.duration(&fat("mtbf"), mtbf), self.duration(&fat("mttr"), mttr));
                    for (field, d) in [("mtbf", mtbf), ("mttr", mttr)] {
                        if d == Some(SimDuration::ZERO) {
                            self.err(&fat(field), format!("{field} must be above zero"), None);
                        }
                    }
                    let from = from.as_deref().map_or(Some(SimDuration::ZERO), |t| self.duration(&fat("from"), t));
                    let until = until.as_deref().map_or(duration, |t| self.duration(&fat("until"), t));
                    if let (Some(a), Some(b)) = (from, until)
                        && a >= b
                    {
                        self.err(&fat("until"), "the window is empty: `until` is not after `from`", None);
                    } else if let (Some(a), Some(b), Some(up), Some(down)) = (from, until, mtbf, mttr)
                        && (b.0 - a.0) / (up.0.saturating_add(down.0)).max(1) > bounds::SPELLS_MAX / 2
                    {
                        let expected = (b.0 - a.0) / (up.0.saturating_add(down.0)).max(1);
                        let help = Some(format!("at most {} per node: raise mtbf or mttr", bounds::SPELLS_MAX / 2));
                        self.err(&fat("mtbf"), format!("about {expected} faulty spells per node in the window"), help);
                    } else if let (Some(a), Some(d)) = (from, duration)
                        && a >= d
                    {
                        let help = Some(format!("the run ends at {}", s.duration));
                        self.err(&fat("from"), "the window begins when the run has ended", help);
                    }
                    if let (Some(mtbf), Some(mttr), Some(from), Some(until)) = (mtbf, mttr, from, until) {
                        faults.push(FaultSpec::Random {
                            what,
                            nodes: nodes.clone(),
                            mtbf,
                            mttr,
                            from: SimTime::ZERO + from,
                            until: SimTime::ZERO + until,
                        });
                    }
                    continue;
                }
            };
            if !node_names.contains(node) {
                let help = if services.iter().any(|sv| &sv.name == node) {
                    Some(format!("faults name instances: did you mean `{node}-1`?"))
                } else {
                    suggest(node, node_names.iter().map(String::as_str)).map(|s| format!("did you mean `{s}`?"))
                };
                self.err(
                    &fat("node"),
                    format!("no node is called `{node}`"),
                    help.or_else(|| Some(format!("nodes are {}", node_names.join(", ")))),
                );
            }
            let down = self.duration(&fat("down_for"), down_for);
            if down == Some(SimDuration::ZERO) {
                self.err(&fat("down_for"), "down_for must be above zero", None);
            }
            let at = match f {
                schema::Fault::Crash { at, .. } => at,
                schema::Fault::RandomCrashes { .. }
                | schema::Fault::RandomPauses { .. }
                | schema::Fault::RandomPartitions { .. }
                | schema::Fault::RandomClockSkews { .. }
                | schema::Fault::RandomLossyLinks { .. }
                | schema::Fault::RandomSlowdowns { .. }
                | schema::Fault::ClockSkew { .. }
                | schema::Fault::Slow { .. }
                | schema::Fault::Pause { .. }
                | schema::Fault::Partition { .. }
                | schema::Fault::Link { .. } => {
                    continue; // handled above
                }
                schema::Fault::CrashAt { seam, nth, probability, .. } => {
                    let seam = match seam {
                        schema::Seam::AfterDedup => Seam::AfterDedup,
                        schema::Seam::AfterStateWrite => Seam::AfterStateWrite,
                        schema::Seam::AfterPublish => Seam::AfterPublish,
                        schema::Seam::InOutboxRelay => Seam::InOutboxRelay,
                        schema::Seam::Any => Seam::Any,
                    };
                    let service = services.iter().find(|sv| (0..sv.instances).any(|k| sv.node_name(k) == *node));
                    if service.is_none() && node_names.contains(node) {
                        let help = Some(format!("crash it with Crash(node: \"{node}\", at: ..., down_for: ...)"));
                        self.err(&fat("node"), format!("`{node}` is a broker: seams are inside handlers"), help);
                    }
                    if seam == Seam::InOutboxRelay && service.is_some_and(|sv| sv.outbox.is_none()) {
                        self.err(&fat("seam"), format!("`{node}` has no outbox relay to crash in"), None);
                    }
                    if seam == Seam::AfterDedup && service.is_some_and(|sv| sv.dedup.is_none()) {
                        self.err(&fat("seam"), format!("`{node}` keeps no dedup store"), None);
                    }
                    let probability = match (nth, probability) {
                        (Some(0), _) => {
                            self.err(&fat("nth"), "nth counts from 1", None);
                            0.0
                        }
                        (Some(_), None) => 0.0,
                        (None, Some(p)) if (0.0..=1.0).contains(p) => *p,
                        (None, Some(p)) => {
                            self.err(&fat("probability"), format!("probability {p} is not in [0, 1]"), None);
                            0.0
                        }
                        _ => {
                            self.err(&fat("seam"), "give either `nth` or `probability`", None);
                            0.0
                        }
                    };
                    if let Some(down) = down {
                        faults.push(FaultSpec::CrashAt {
                            node: node.clone(),
                            seam,
                            nth: *nth,
                            probability,
                            down_for: down,
                        });
                    }
                    continue;
                }
            };
            let at_range = self.time_range(&fat("at"), at);
            if let (Some((_, at_max)), Some(d)) = (at_range, duration)
                && at_max > d
            {
                self.err(&fat("at"), format!("the crash at {at} is after the end of the run ({})", s.duration), None);
            }
            if let (Some((at_t, at_max)), Some(down)) = (at_range, down) {
                let jitter = SimDuration(at_max.0 - at_t.0);
                let spec = FaultSpec::Crash { node: node.clone(), at: SimTime::ZERO + at_t, jitter, down_for: down };
                faults.push(spec);
            }
        }
        faults
    }

    /// The invariants, by the names they judge.
    #[allow(clippy::too_many_arguments)]
    /// The index of the service called `name` (written at `at`).
    fn service_named(&mut self, at: &[P], s: &Scenario, name: &str) -> Option<usize> {
        let found = s.services.iter().position(|x| x.name == name);
        if found.is_none() {
            let help =
                suggest(name, s.services.iter().map(|x| x.name.as_str())).map(|x| format!("did you mean `{x}`?"));
            self.err(at, format!("no service is called `{name}`"), help);
        }
        found
    }

    /// `e` is an entity kind some workload creates (of `entities`).
    fn entity_kind(&mut self, at: &[P], e: &str, entities: &[&str]) {
        match entities {
            _ if entities.contains(&e) => {}
            [only] => self.err(
                at,
                format!("the workload creates `{only}`, not `{e}`"),
                Some(format!("did you mean `{only}`?")),
            ),
            _ => {
                let help = suggest(e, entities.iter().copied()).map(|x| format!("did you mean `{x}`?"));
                self.err(at, format!("no workload creates `{e}`"), help);
            }
        }
    }

    /// The entity kind a per-entity rule written at `here` judges: the one
    /// it names, which must exist; with several workloads it must name one.
    fn scope(&mut self, here: &[P], entity: &Option<String>, entities: &[&str]) -> Option<String> {
        match entity {
            Some(e) => {
                self.entity_kind(&[here, &[P::F("entity")]].concat(), e, entities);
                Some(e.clone())
            }
            None if entities.len() > 1 => {
                let kinds: Vec<String> = entities.iter().map(|e| format!("`{e}`")).collect();
                let help = Some(format!("add `entity: \"...\"`, one of {}", kinds.join(", ")));
                self.err(here, "with several workloads, say which entity kind this rule judges", help);
                None
            }
            None => None,
        }
    }

    fn invariants(
        &mut self,
        s: &Scenario,
        names: &mut Names,
        effects: &[&str],
        emitted: &[&str],
        entities: &[&str],
    ) -> Vec<InvariantSpec> {
        // Invariants.
        let mut invariants = Vec::new();
        for (i, inv) in s.invariants.iter().enumerate() {
            let iat = |f: &'static str| [P::F("invariants"), P::I(i), P::F(f)];
            let scoped =
                |this: &mut Self, entity: &Option<String>| this.scope(&[P::F("invariants"), P::I(i)], entity, entities);
            match inv {
                schema::Invariant::SagaAtomicity { steps, deadline_after_heal, entity } => {
                    let entity = scoped(self, entity);
                    if steps.is_empty() {
                        self.err(&iat("steps"), "a saga needs at least one step", None);
                    }
                    let mut pairs = Vec::new();
                    for (k, st) in steps.iter().enumerate() {
                        for (field, e) in [("effect", &st.effect), ("compensation", &st.compensation)] {
                            if !effects.contains(&e.as_str()) {
                                let help = suggest(e, effects.iter().copied()).map(|x| format!("did you mean `{x}`?"));
                                let at = [P::F("invariants"), P::I(i), P::F("steps"), P::I(k), P::F(field)];
                                self.err(&at, format!("no handler applies effect `{e}`"), help);
                            }
                        }
                        pairs.push((names.effect(&st.effect), names.effect(&st.compensation)));
                    }
                    if pairs.len() > 8 {
                        self.err(&iat("steps"), format!("{} steps", pairs.len()), Some("at most 8".into()));
                    }
                    if let Some(d) = self.duration(&iat("deadline_after_heal"), deadline_after_heal) {
                        invariants.push(InvariantSpec::SagaAtomicity { steps: pairs, deadline_after_heal: d, entity });
                    }
                }
                schema::Invariant::LeadsTo { from, to, within, entity } => {
                    let entity = scoped(self, entity);
                    let from = self.event(&iat("from"), from, s, emitted, effects, names);
                    let to: Vec<Option<Event>> = to
                        .iter()
                        .enumerate()
                        .map(|(k, e)| {
                            let at = [P::F("invariants"), P::I(i), P::F("to"), P::I(k)];
                            self.event(&at, e, s, emitted, effects, names)
                        })
                        .collect();
                    let within = self.duration(&iat("within"), within);
                    if let (Some(from), Some(to), Some(within)) = (from, to.into_iter().collect(), within) {
                        invariants.push(InvariantSpec::LeadsTo { from, to, within, entity });
                    }
                }
                schema::Invariant::NeverWithout { event, prior, entity } => {
                    let entity = scoped(self, entity);
                    let event = self.event(&iat("event"), event, s, emitted, effects, names);
                    let prior = self.event(&iat("prior"), prior, s, emitted, effects, names);
                    if let (Some(event), Some(prior)) = (event, prior) {
                        invariants.push(InvariantSpec::NeverWithout { event, prior, entity });
                    }
                }
                schema::Invariant::NoLostEntities { entity: e, deadline_after_heal: d }
                | schema::Invariant::TerminalWithin { entity: e, within: d } => {
                    self.entity_kind(&iat("entity"), e, entities);
                    let within = matches!(inv, schema::Invariant::TerminalWithin { .. });
                    let field = if within { "within" } else { "deadline_after_heal" };
                    if let Some(d) = self.duration(&iat(field), d) {
                        invariants.push(if within {
                            InvariantSpec::TerminalWithin { entity: e.clone(), within: d }
                        } else {
                            InvariantSpec::NoLostEntities { entity: e.clone(), deadline_after_heal: d }
                        });
                    }
                }
                schema::Invariant::NoDuplicateEffects { effect } => {
                    if !effects.contains(&effect.as_str()) {
                        let help = suggest(effect, effects.iter().copied()).map(|s| format!("did you mean `{s}`?"));
                        self.err(
                            &iat("effect"),
                            format!("no handler applies effect `{effect}`"),
                            help.or_else(|| Some("effects come from Handle(..., effect: \"name\")".into())),
                        );
                    }
                    invariants.push(InvariantSpec::NoDuplicateEffects { effect: names.effect(effect) });
                }
                schema::Invariant::BoundedAmplification { service, factor, entity } => {
                    let entity = scoped(self, entity);
                    if !(factor.is_finite() && *factor > 0.0) {
                        self.err(&iat("factor"), format!("factor {factor} must be above zero"), None);
                    }
                    if let Some(i) = self.service_named(&iat("service"), s, service) {
                        invariants.push(InvariantSpec::BoundedAmplification { service: i, factor: *factor, entity });
                    }
                }
                schema::Invariant::NoOversell { service } => {
                    if let Some(i) = self.service_named(&iat("service"), s, service) {
                        invariants.push(InvariantSpec::NoOversell { service: i });
                    }
                }
                schema::Invariant::ReplicaConvergence { source, replica, table } => {
                    let src = self.service_named(&iat("source"), s, source);
                    let rep = self.service_named(&iat("replica"), s, replica);
                    let writers: Vec<&str> = s
                        .services
                        .iter()
                        .flat_map(|x| x.on.iter())
                        .filter_map(|h| match h {
                            schema::Handler::Accept { write, .. } | schema::Handler::Handle { write, .. } => {
                                write.as_deref()
                            }
                        })
                        .collect();
                    if !writers.contains(&table.as_str()) {
                        let help = suggest(table, writers.iter().copied()).map(|x| format!("did you mean `{x}`?"));
                        self.err(
                            &iat("table"),
                            format!("no handler writes table `{table}`"),
                            help.or_else(|| {
                                Some(
                                    "tables come from Accept(..., write: \"name\") or Handle(..., write: \"name\")"
                                        .into(),
                                )
                            }),
                        );
                    }
                    if let (Some(source), Some(replica)) = (src, rep) {
                        invariants.push(InvariantSpec::ReplicaConvergence {
                            source,
                            replica,
                            table: names.table(table),
                        });
                    }
                }
            }
        }
        invariants
    }
}
