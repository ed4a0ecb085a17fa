//! Load balancing: which instance takes a request (or a call, or a pushed
//! message) by the service's `routing`, skipping instances that are down.

use std::collections::BTreeMap;

use faultline::trace::RecordKind;

use crate::support::{records, system};

/// Four instances of `api` behind `routing`, one of them 10x slow from the
/// start when `slow`; 1,200 requests over a minute on 10 keys.
fn api(routing: &str, faults: &str) -> String {
    format!(
        r#"Scenario(
    name: "routing-test",
    duration: "2m",
    bus: Ephemeral(latency: Const("1ms")),
    services: [Service(name: "api", instances: 4, workers: 1, routing: {routing},
        on: [Accept(entity: "req", work: Exp(mean: "40ms"), terminal: true)])],
    workload: Poisson(rate: "20/s", entity: "req", keys: Uniform(10), stop: "1m"),
    faults: [{faults}],
)"#
    )
}

/// Requests taken per instance (by node name).
fn taken(src: &str, seed: u64) -> BTreeMap<String, u64> {
    let sys = system(src);
    let names = sys.node_names();
    let mut out = BTreeMap::new();
    for r in records(&sys, seed) {
        if r.kind == RecordKind::Enqueued {
            *out.entry(names[r.node as usize].clone()).or_insert(0) += 1;
        }
    }
    out
}

#[test]
fn round_robin_takes_each_instance_in_turn() {
    let t = taken(&api("RoundRobin", ""), 1);
    let counts: Vec<u64> = t.values().copied().collect();
    let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert_eq!(counts.len(), 4);
    assert!(hi - lo <= 1, "in turn: {t:?}");
}

#[test]
fn by_key_keeps_a_key_on_its_instance() {
    // 10 keys on 4 instances: keys 0, 4, 8 on api-1 ... key mod 4.
    let sys = system(&api("ByKey", ""));
    let mut key_of = BTreeMap::new();
    let mut nodes_of: BTreeMap<u64, std::collections::BTreeSet<u32>> = BTreeMap::new();
    for r in records(&sys, 1) {
        if r.kind == RecordKind::Request {
            key_of.insert(r.entity, r.aux);
        }
        if r.kind == RecordKind::Enqueued {
            nodes_of.entry(key_of[&r.entity]).or_default().insert(r.node);
        }
    }
    assert!(nodes_of.iter().all(|(k, n)| n.len() == 1 && n.contains(&((k % 4) as u32))), "{nodes_of:?}");
}

#[test]
fn random_spreads_requests_from_its_own_stream() {
    let t = taken(&api("Random", ""), 1);
    assert_eq!(t.len(), 4);
    assert!(t.values().all(|&c| c > 200 && c < 400), "about 300 each: {t:?}");
    // Its own stream: the arrivals are those of any other routing.
    let arrivals = |src: &str| {
        records(&system(src), 1)
            .iter()
            .filter(|r| r.kind == RecordKind::Request)
            .map(|r| (r.time, r.aux))
            .collect::<Vec<_>>()
    };
    assert_eq!(arrivals(&api("Random", "")), arrivals(&api("RoundRobin", "")));
}

#[test]
fn least_loaded_sends_less_to_a_slow_instance() {
    let slow = r#"Slow(node: "api-2", at: "0s", for: "2m", factor: 10.0)"#;
    let least = taken(&api("LeastLoaded", slow), 1);
    let turn = taken(&api("RoundRobin", slow), 1);
    assert!(least["api-2"] * 2 < turn["api-2"], "least loaded {least:?}, round robin {turn:?}");
    // Ties go in turn: each of the others takes well over the slow one.
    assert!(["api-1", "api-3", "api-4"].iter().all(|n| least[*n] > 2 * least["api-2"]), "{least:?}");
}

#[test]
fn every_strategy_skips_an_instance_that_is_down() {
    let crash = r#"Crash(node: "api-3", at: "0s", down_for: "5m")"#;
    for routing in ["ByKey", "RoundRobin", "Random", "LeastLoaded"] {
        let t = taken(&api(routing, crash), 1);
        assert!(!t.contains_key("api-3"), "{routing}: {t:?}");
        assert_eq!(t.values().sum::<u64>(), taken(&api(routing, ""), 1).values().sum::<u64>(), "{routing}");
    }
}
