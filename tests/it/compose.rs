//! Faults compose: every pair of fault kinds on one node, overlapping.
//!
//! Fault A holds from 60 s to 180 s, fault B from 120 s to 240 s, on the
//! only consumer of a log, `work-1`, which does 10 ms of work per message.
//! In each phase (A alone, both, B alone, neither) the node must behave as
//! the faults active in it say: down, paused or cut off means it handles
//! nothing; slowdowns multiply its work time; link delays add up.

use faultline::sim::run;
use faultline::system::System;
use faultline::trace::{Record, RecordKind};

use crate::support::{records, system};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Crash,
    Pause,
    Slow(f64),
    Partition,
    Delay(u64),
}

impl Kind {
    fn ron(self, at: &str, lasting: &str) -> String {
        match self {
            Kind::Crash => format!(r#"Crash(node: "work-1", at: "{at}", down_for: "{lasting}")"#),
            Kind::Pause => format!(r#"Pause(node: "work-1", at: "{at}", for: "{lasting}")"#),
            Kind::Slow(f) => format!(r#"Slow(node: "work-1", at: "{at}", for: "{lasting}", factor: {f:.1})"#),
            Kind::Partition => format!(r#"Partition(groups: [["work-1"], ["bus"]], at: "{at}", for: "{lasting}")"#),
            Kind::Delay(ms) => {
                format!(r#"Link(from: "bus", to: "work-1", delay: Const("{ms}ms"), at: "{at}", for: "{lasting}")"#)
            }
        }
    }

    /// It stops the node from handling anything.
    fn blocks(self) -> bool {
        matches!(self, Kind::Crash | Kind::Pause | Kind::Partition)
    }
}

fn scenario(a: Kind, b: Kind) -> System {
    system(&format!(
        r#"Scenario(
    name: "compose", duration: "6m", seed: 1,
    bus: Log(partitions: 1, latency: Const("1ms"), session_timeout: "10s"),
    services: [
        Service(name: "front", workers: 4, on: [Accept(entity: "job", work: Const("1ms"), emit: ["Job"])]),
        Service(name: "work", state: Durable, consume: (topics: ["Job"]),
            on: [Handle(event: "Job", work: Const("10ms"), terminal: true)]),
    ],
    workload: Poisson(rate: "5/s", entity: "job", keys: Sequential, stop: "5m"),
    faults: [{}, {}],
    invariants: [NoLostEntities(entity: "job", deadline_after_heal: "1m")],
)"#,
        a.ron("60s", "2m"),
        b.ron("2m", "2m")
    ))
}

const S: u64 = 1_000_000_000;

/// What the node did in `[from, to)`: messages handled, the shortest work
/// time of a message that arrived and finished in it, and the shortest
/// transit from its append to its arrival.
struct Phase {
    handled: usize,
    work_min_ns: Option<u64>,
    transit_min_ns: Option<u64>,
}

fn phase(rs: &[Record], from: u64, to: u64) -> Phase {
    let node = 1; // front-1 is node 0
    let inside = |t: u64| from <= t && t < to;
    let handled: Vec<&Record> =
        rs.iter().filter(|r| r.kind == RecordKind::Handled && r.node == node && inside(r.time.0)).collect();
    let arrived = |msg: u64| rs.iter().find(|r| r.kind == RecordKind::Enqueued && r.node == node && r.msg == msg);
    let appended = |msg: u64| rs.iter().find(|r| r.kind == RecordKind::Appended && r.msg == msg);
    let mut work_min_ns = None::<u64>;
    let mut transit_min_ns = None::<u64>;
    for h in &handled {
        let Some(a) = arrived(h.msg).filter(|a| inside(a.time.0)) else { continue };
        let w = h.time.0 - a.time.0;
        work_min_ns = Some(work_min_ns.map_or(w, |m| m.min(w)));
        if let Some(p) = appended(h.msg) {
            let t = a.time.0 - p.time.0;
            transit_min_ns = Some(transit_min_ns.map_or(t, |m| m.min(t)));
        }
    }
    Phase { handled: handled.len(), work_min_ns, transit_min_ns }
}

fn check_pair(a: Kind, b: Kind) {
    let sys = scenario(a, b);
    let rs = records(&sys, 1);
    // (phase start, end, the faults active in it)
    let phases = [(60, 120, vec![a]), (120, 180, vec![a, b]), (180, 240, vec![b]), (240, 300, vec![])];
    for (from, to, active) in phases {
        // A second for what was under way at the phase's start to settle.
        let p = phase(&rs, (from + 1) * S, to * S);
        let what = format!("{a:?} + {b:?}, phase {from}s..{to}s with {active:?}");
        if active.iter().any(|k| k.blocks()) {
            assert_eq!(p.handled, 0, "{what}: handled while down, paused or cut off");
            continue;
        }
        assert!(p.handled > 100, "{what}: handled only {}", p.handled);
        let slow: f64 = active.iter().map(|k| if let Kind::Slow(f) = k { *f } else { 1.0 }).product();
        let delay: u64 = active.iter().map(|k| if let Kind::Delay(ms) = k { *ms } else { 0 }).sum();
        let work = p.work_min_ns.expect("some message arrived and finished in the phase");
        assert_eq!(work, (10_000_000.0 * slow) as u64, "{what}: slowdowns multiply");
        let transit = p.transit_min_ns.expect("appended");
        assert_eq!(transit, 1_000_000 + delay * 1_000_000, "{what}: link delays add");
    }
    // Overlapping pauses are one stall, told once.
    if (a, b) == (Kind::Pause, Kind::Pause) {
        let count = |k: RecordKind| rs.iter().filter(|r| r.kind == k && r.node == 1).count();
        assert_eq!((count(RecordKind::Paused), count(RecordKind::Resumed)), (1, 1));
    }
    // Every fault heals, and the node catches up: nothing is lost.
    let o = run(&sys, 1).unwrap();
    assert!(o.all_hold(), "{a:?} + {b:?}: {:?} {:?}", o.invariants, o.warnings);
    // The summary lists both windows as they were.
    let windows: Vec<(u64, u64)> = o.faults.iter().map(|f| (f.from_ns / S, f.until_ns / S)).collect();
    assert_eq!(windows, [(60, 180), (120, 240)], "{a:?} + {b:?}");
}

/// The second fault of a pair of the same kind, so that their effects can be told apart.
fn other(k: Kind) -> Kind {
    match k {
        Kind::Slow(_) => Kind::Slow(3.0),
        Kind::Delay(_) => Kind::Delay(50),
        k => k,
    }
}

macro_rules! pairs {
    ($($name:ident: $a:expr, $b:expr;)*) => {$(
        #[test]
        fn $name() {
            check_pair($a, $b);
        }
    )*};
}

pairs! {
    crash_and_crash: Kind::Crash, other(Kind::Crash);
    crash_and_pause: Kind::Crash, Kind::Pause;
    crash_and_slow: Kind::Crash, Kind::Slow(2.0);
    crash_and_partition: Kind::Crash, Kind::Partition;
    crash_and_delay: Kind::Crash, Kind::Delay(20);
    pause_and_crash: Kind::Pause, Kind::Crash;
    pause_and_pause: Kind::Pause, other(Kind::Pause);
    pause_and_slow: Kind::Pause, Kind::Slow(2.0);
    pause_and_partition: Kind::Pause, Kind::Partition;
    pause_and_delay: Kind::Pause, Kind::Delay(20);
    slow_and_crash: Kind::Slow(2.0), Kind::Crash;
    slow_and_slow: Kind::Slow(2.0), other(Kind::Slow(2.0));
    slow_and_partition: Kind::Slow(2.0), Kind::Partition;
    slow_and_delay: Kind::Slow(2.0), Kind::Delay(20);
    partition_and_partition: Kind::Partition, other(Kind::Partition);
    partition_and_delay: Kind::Partition, Kind::Delay(20);
    delay_and_delay: Kind::Delay(20), other(Kind::Delay(20));
}

#[test]
fn a_crash_inside_a_longer_crash_does_not_restart_the_node_early() {
    // The issue's case: a scripted outage of 2m to 7m and a random crash
    // spell inside it. The node stays down for the whole outage.
    let sys = scenario(Kind::Crash, other(Kind::Crash));
    let rs = records(&sys, 1);
    let restarts: Vec<u64> =
        rs.iter().filter(|r| r.kind == RecordKind::Restart && r.node == 1).map(|r| r.time.0 / S).collect();
    assert_eq!(restarts, [240]);
    let crashes = rs.iter().filter(|r| r.kind == RecordKind::Crash && r.node == 1).count();
    assert_eq!(crashes, 1, "the second crash found it down");
}

#[test]
fn clock_skews_multiply_while_they_overlap() {
    // A deadline of 10 s set while a x0.5 and a x4 skew overlap lasts 20 s.
    let src = r#"Scenario(
    name: "skews", duration: "10m", seed: 1,
    bus: Ephemeral(latency: Const("1ms")),
    services: [
        Service(name: "desk", state: Durable,
            machine: (terminal: ["closed"], timeouts: [(state: "open", after: "10s", to: "closed")]),
            on: [Accept(entity: "case", work: Const("1ms"), to: "open")]),
    ],
    workload: Poisson(rate: "1/s", entity: "case", keys: Sequential, stop: "8m"),
    faults: [
        ClockSkew(node: "desk-1", factor: 0.5, at: "1m", for: "2m"),
        ClockSkew(node: "desk-1", factor: 4.0, at: "2m", for: "2m"),
    ],
    invariants: [NoLostEntities(entity: "case", deadline_after_heal: "1m")],
)"#;
    let rs = records(&system(src), 1);
    let accepted = |e: u64| rs.iter().find(|r| r.kind == RecordKind::Accepted && r.entity == e).unwrap().time.0;
    let mut lasted: Vec<(u64, u64)> = rs
        .iter()
        .filter(|r| r.kind == RecordKind::Terminal)
        .map(|r| (accepted(r.entity) / S, (r.time.0 - accepted(r.entity)) / 100_000_000))
        .collect();
    lasted.sort_unstable();
    let in_phase = |from: u64, to: u64| -> Vec<u64> {
        let mut v: Vec<u64> = lasted.iter().filter(|(a, _)| from < *a && *a < to).map(|x| x.1).collect();
        v.dedup();
        v
    };
    // In tenths of a second: 10 s, 5 s, 20 s, 40 s, 10 s.
    assert_eq!(in_phase(0, 60), [100]);
    assert_eq!(in_phase(60, 120), [50]);
    assert_eq!(in_phase(120, 180), [200]);
    assert_eq!(in_phase(180, 240), [400]);
    assert_eq!(in_phase(240, 480), [100]);
}
