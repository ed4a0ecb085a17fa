//! `faultline bench`: kernel speed on the order pipeline, measured in the
//! same process against a bare heap loop of the same three-station model
//! (the floor: what any discrete-event simulator of this model must pay for
//! its event queue and random draws).
//!
//! Wall-clock rates on shared machines drift, so both loops run
//! alternately, `repeat` times each, and the medians are compared.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::service::{Declarative, Handler};
use crate::sim::{self, Dist, SimDuration, SimTime, Stream, StreamKind};
use crate::system::{Bus, BusSpec, KeyDist, Limits, Names, ServiceSpec, System, WorkloadSpec};

/// Arrival rate of the benchmark pipeline, per second.
const RATE_PER_S: u64 = 50_000;
/// Mean processing time at each of the three stations, in ns.
const WORK_NS: [u64; 3] = [20_000, 40_000, 60_000];
/// Workers per station (utilisation 0.25, 0.5, 0.75).
const WORKERS: u32 = 4;

/// The order pipeline as the benchmark runs it: order -> inventory ->
/// invoice on a log with 4 partitions, no faults, `duration` long.
pub fn pipeline(duration: SimDuration) -> System {
    let mut names = Names::default();
    let request = names.kind("order request");
    let created = names.kind("OrderCreated");
    let reserved = names.kind("InventoryReserved");
    let sent = names.effect("invoice-sent");
    let station = |name: &str, on, consumes: Vec<_>, work: u64, emit: Vec<_>, last: bool| {
        let mut s = ServiceSpec::new(name);
        s.workers = WORKERS;
        s.consumes = consumes;
        s.behaviour = Arc::new(Declarative {
            handlers: vec![Handler {
                accept: on == request,
                emit,
                effect: last.then_some(sent),
                terminal: last,
                ..Handler::new(on, Dist::Exp { mean: SimDuration(work) })
            }],
            machine: None,
            version: None,
            unknown: None,
        });
        s
    };
    let services = vec![
        station("order", request, vec![], WORK_NS[0], vec![created], false),
        station("inventory", created, vec![created], WORK_NS[1], vec![reserved], false),
        station("invoice", reserved, vec![reserved], WORK_NS[2], vec![], true),
    ];
    System {
        name: "bench-pipeline".into(),
        names,
        buses: Bus::only(BusSpec::Log {
            partitions: 4,
            latency: Dist::Exp { mean: SimDuration(5_000) },
            fetch_max: 500,
            retention: None,
            retention_records: None,
            compacted: vec![],
            per_topic: vec![],
            session_timeout: SimDuration::from_secs(10),
            brokers: None,
            delivery_timeout: SimDuration::from_secs(120),
        }),
        topic_bus: Vec::new(),
        services,
        workloads: vec![WorkloadSpec {
            entity: "order".into(),
            request,
            target: 0,
            interarrival_mean: SimDuration(1_000_000_000 / RATE_PER_S),
            regular: false,
            count: None,
            keys: KeyDist::Uniform(10_000),
            start: SimTime::ZERO,
            stop: SimTime::ZERO + duration,
            shape: crate::system::RateShape::Constant,
            replay: Vec::new(),
            fields: Vec::new(),
            version: 1,
        }],
        faults: vec![],
        invariants: vec![],
        duration,
        seed: 1,
        limits: Limits { events_max: u64::MAX, entities_max: u64::MAX },
        warmup: SimDuration::ZERO,
    }
}

/// The floor: a bare binary-heap loop of the same three stations (Poisson
/// arrivals, exponential work, FIFO queues, 4 workers each), with no bus,
/// no trace and no checks. Returns events processed.
pub fn heap_floor(duration: SimDuration, seed: u64) -> u64 {
    let mut rng = Stream::new(seed, StreamKind::Workload, "floor");
    let mut heap: BinaryHeap<Reverse<(u64, u64, u32)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |heap: &mut BinaryHeap<_>, t: u64, what: u32| {
        heap.push(Reverse((t, seq, what)));
        seq += 1;
    };
    let gap = 1e9 / RATE_PER_S as f64;
    let end = duration.0;
    let mut busy = [0u32; 3];
    let mut waiting: [VecDeque<u64>; 3] = Default::default();
    push(&mut heap, 0, 3);
    let mut events = 0u64;
    // Event payload: 3 = arrival, s = station s finished a job.
    while let Some(Reverse((t, _, what))) = heap.pop() {
        if t > end {
            break;
        }
        events += 1;
        let to = if what == 3 {
            let next = t + rng.exp(gap) as u64;
            push(&mut heap, next, 3);
            Some(0)
        } else {
            let s = what as usize;
            if let Some(_job) = waiting[s].pop_front() {
                let w = rng.exp(WORK_NS[s] as f64) as u64;
                push(&mut heap, t + w, what);
            } else {
                busy[s] -= 1;
            }
            (s < 2).then_some(s + 1)
        };
        if let Some(s) = to {
            if busy[s] < WORKERS {
                busy[s] += 1;
                let w = rng.exp(WORK_NS[s] as f64) as u64;
                push(&mut heap, t + w, s as u32);
            } else {
                waiting[s].push_back(t);
            }
        }
    }
    events
}

/// One benchmark result.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Events per measured faultline run.
    pub events: u64,
    /// Measured runs of each loop.
    pub repeat: u32,
    /// faultline on the order pipeline (log bus, fingerprinting on, no trace file), median.
    pub faultline_events_per_s: f64,
    /// Bare heap loop of the same model, median.
    pub floor_events_per_s: f64,
    /// faultline / floor.
    pub ratio: f64,
    /// Wall-clock nanoseconds per faultline event.
    pub faultline_ns_per_event: f64,
    /// Trace records per event (each one is hashed into the fingerprint).
    pub records_per_event: f64,
}

impl Report {
    /// The human summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "order pipeline (order -> inventory -> invoice, log bus, 4 partitions), one core");
        let _ = writeln!(s, "events per run      {}", self.events);
        let _ = writeln!(s, "runs (median of)    {}", self.repeat);
        let _ = writeln!(
            s,
            "faultline           {:.2}M events/s ({:.0} ns/event, {:.2} trace records/event)",
            self.faultline_events_per_s / 1e6,
            self.faultline_ns_per_event,
            self.records_per_event
        );
        let _ = writeln!(s, "bare heap floor     {:.2}M events/s", self.floor_events_per_s / 1e6);
        let _ = writeln!(s, "ratio               {:.0}% of the floor", self.ratio * 100.0);
        s
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[expect(
    clippy::disallowed_methods,
    reason = "a benchmark measures wall-clock time; nothing here reaches a simulation"
)]
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = std::time::Instant::now();
    let r = f();
    (r, t.elapsed())
}

/// Runs the benchmark: about `events` events per run, `repeat` runs of each loop.
pub fn run(events: u64, repeat: u32) -> Report {
    // About 6 events per order (arrival, 3 completions, 2 fetches).
    let duration = SimDuration(events.max(1000) * 1_000_000_000 / (6 * RATE_PER_S));
    let system = pipeline(duration);
    let (mut fl, mut floor) = (Vec::new(), Vec::new());
    let (mut n_events, mut records) = (0, 0);
    for i in 0..repeat {
        let (outcome, d) = timed(|| sim::run(&system, u64::from(i) + 1));
        let outcome = outcome.expect("the benchmark system is valid");
        n_events = outcome.events;
        records = outcome.trace_records;
        fl.push(outcome.events as f64 / d.as_secs_f64());
        let (n, d) = timed(|| heap_floor(duration, u64::from(i) + 1));
        floor.push(n as f64 / d.as_secs_f64());
    }
    let (f, b) = (median(fl), median(floor));
    Report {
        events: n_events,
        repeat,
        faultline_events_per_s: f,
        floor_events_per_s: b,
        ratio: f / b,
        faultline_ns_per_event: 1e9 / f,
        records_per_event: records as f64 / n_events.max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_and_pipeline_do_comparable_work() {
        // Not a timing test: the two loops must simulate the same model, so
        // their event counts per simulated second agree.
        let d = SimDuration::from_secs(2);
        let floor = heap_floor(d, 1) as f64;
        let outcome = sim::run(&pipeline(d), 1).unwrap();
        let ratio = outcome.events as f64 / floor;
        assert!((ratio - 1.5).abs() < 0.05, "{ratio}: pipeline {} vs floor {floor}", outcome.events);
        assert!(outcome.metrics.completed > 0);
    }
}

/// The sweep benchmark's scenario: a small order pipeline with a random
/// crash, about a millisecond a seed (`bench/sweep/orders-small.ron`).
pub const SWEEP_SCENARIO: &str = include_str!("../bench/sweep/orders-small.ron");

/// Sweep throughput at 1 and 2 jobs.
#[derive(Debug, Serialize)]
pub struct SweepReport {
    /// Seeds per measured sweep.
    pub seeds: u64,
    /// Measured sweeps at each job count.
    pub repeat: u32,
    /// Median seeds per second with one job.
    pub seeds_per_s_1: f64,
    /// Median seeds per second with two jobs.
    pub seeds_per_s_2: f64,
    /// Two jobs' rate over one job's.
    pub speedup: f64,
    /// The process's peak resident memory, in KiB (Linux; 0 elsewhere).
    pub peak_rss_kib: u64,
}

impl SweepReport {
    /// The human summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "sweep of bench/sweep/orders-small.ron ({} seeds, median of {})", self.seeds, self.repeat);
        let _ = writeln!(s, "1 job               {:.0} seeds/s", self.seeds_per_s_1);
        let _ = writeln!(s, "2 jobs              {:.0} seeds/s", self.seeds_per_s_2);
        let _ = writeln!(s, "speedup             {:.2}x", self.speedup);
        let _ = writeln!(s, "peak memory         {:.1} MiB (the whole process)", self.peak_rss_kib as f64 / 1024.0);
        s
    }
}

/// The process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// Sweeps `seeds` seeds of the small order pipeline with 1 and 2 jobs,
/// alternately, `repeat` times each.
pub fn run_sweep(seeds: u64, repeat: u32) -> SweepReport {
    use std::sync::atomic::AtomicBool;
    let loaded = crate::scenario::parse("bench/sweep/orders-small.ron", SWEEP_SCENARIO).expect("a valid scenario");
    let range = crate::sweep::SeedRange { start: 0, end: seeds.max(1) };
    let stop = AtomicBool::new(false);
    let (mut one, mut two) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        for (jobs, rates) in [(1, &mut one), (2, &mut two)] {
            let opts = crate::sweep::Options { jobs, progress: None, stop: &stop, each: None };
            let (r, d) = timed(|| crate::sweep::sweep(&loaded.system, "orders-small", "", range, &opts));
            r.expect("the benchmark scenario sets up");
            rates.push(range.len() as f64 / d.as_secs_f64());
        }
    }
    let (a, b) = (median(one), median(two));
    SweepReport {
        seeds: range.len(),
        repeat,
        seeds_per_s_1: a,
        seeds_per_s_2: b,
        speedup: b / a,
        peak_rss_kib: peak_rss_kib(),
    }
}
