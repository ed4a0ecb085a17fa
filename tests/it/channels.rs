//! Channels are FIFO: on one connection a message never overtakes an
//! earlier one, whatever latency each draws; only a reorder fault does.

use faultline::sim::run;
use faultline::system::System;
use faultline::trace::{Record, RecordKind};

use crate::support::{records, system};

/// The ids of the messages of kind `kind` that reached node `node`, in
/// arrival order.
fn arrivals(sys: &System, rs: &[Record], node: &str, kind: &str) -> Vec<u64> {
    let n = sys.node_names().iter().position(|x| x == node).expect("node") as u32;
    let k = sys.names.find_kind(kind).expect("kind").0;
    rs.iter()
        .filter(|r| r.kind == RecordKind::Enqueued && r.node == n && r.aux == u64::from(k))
        .map(|r| r.msg)
        .collect()
}

/// Pairs of consecutive arrivals where the later-sent came first.
fn overtakes(ids: &[u64]) -> usize {
    ids.windows(2).filter(|w| w[1] < w[0]).count()
}

/// Users -> Billing: one Billing instance with one worker copies every
/// change. Latencies are exponential, so without FIFO channels later
/// changes would often overtake earlier ones.
fn copy(bus: &str, consume: &str, faults: &str) -> System {
    system(&format!(
        r#"Scenario(
    name: "copy", duration: "5m", seed: 1,
    bus: {bus},
    services: [
        Service(name: "users", workers: 4, state: Durable,
            on: [Accept(entity: "change", work: Exp(mean: "2ms"), write: "email", emit: ["EmailChanged"])]),
        Service(name: "billing", workers: 1, state: Durable,
            consume: (topics: ["EmailChanged"]{consume}),
            on: [Handle(event: "EmailChanged", work: Exp(mean: "1ms"), write: "email")]),
    ],
    workload: Poisson(rate: "200/s", entity: "change", keys: Uniform(20), stop: "4m"),
    faults: [{faults}],
    invariants: [ReplicaConvergence(source: "users", replica: "billing", table: "email")],
)"#
    ))
}

#[test]
fn queue_deliveries_to_one_consumer_arrive_in_order_and_the_copy_converges() {
    let sys = copy(r#"Queue(latency: Exp(mean: "2ms"))"#, ", prefetch: 10", "");
    for seed in 0..50 {
        let o = run(&sys, seed).unwrap();
        assert!(o.all_hold(), "seed {seed}: {:?}", o.invariants);
        assert!(o.invariants[0].counts["rows"] == 20, "seed {seed}: every row written");
    }
    let rs = records(&sys, 3);
    let ids = arrivals(&sys, &rs, "billing-1", "EmailChanged");
    assert!(ids.len() > 40_000, "{}", ids.len());
    assert_eq!(overtakes(&ids), 0);
}

#[test]
fn ephemeral_deliveries_from_one_publisher_arrive_in_order() {
    let src = r#"Scenario(
    name: "ephemeral", duration: "60s", seed: 1,
    bus: Ephemeral(latency: Exp(mean: "2ms")),
    services: [
        Service(name: "users", workers: 4, on: [Accept(entity: "change", work: Exp(mean: "1ms"), emit: ["Changed"])]),
        Service(name: "billing", workers: 1, consume: (topics: ["Changed"]),
            on: [Handle(event: "Changed", work: Const("100us"), terminal: true)]),
    ],
    workload: Poisson(rate: "500/s", entity: "change", keys: Uniform(20)),
    invariants: [NoLostEntities(entity: "change", deadline_after_heal: "10s")],
)"#;
    let sys = system(src);
    let rs = records(&sys, 2);
    let ids = arrivals(&sys, &rs, "billing-1", "Changed");
    assert!(ids.len() > 20_000, "{}", ids.len());
    assert_eq!(overtakes(&ids), 0);
}

#[test]
fn produce_requests_from_one_producer_are_appended_in_order() {
    let src = r#"Scenario(
    name: "produce", duration: "60s", seed: 1,
    bus: Log(partitions: 1, latency: Exp(mean: "2ms"),
        brokers: (count: 3, replication: 3, min_insync: 2, acks: All, replica_latency: Exp(mean: "5ms"))),
    services: [
        Service(name: "order", workers: 8, on: [Accept(entity: "order", work: Exp(mean: "1ms"), emit: ["Created"])]),
        Service(name: "invoice", workers: 2, consume: (topics: ["Created"]),
            on: [Handle(event: "Created", work: Exp(mean: "1ms"), terminal: true)]),
    ],
    workload: Poisson(rate: "300/s", entity: "order", keys: Uniform(100), stop: "50s"),
    invariants: [NoLostEntities(entity: "order", deadline_after_heal: "10s")],
)"#;
    let sys = system(src);
    let rs = records(&sys, 4);
    let appended: Vec<u64> = rs.iter().filter(|r| r.kind == RecordKind::Appended).map(|r| r.msg).collect();
    assert!(appended.len() > 10_000, "{}", appended.len());
    assert_eq!(overtakes(&appended), 0, "the one partition's log holds the records in the order they were sent");
    assert!(run(&sys, 4).unwrap().all_hold());
}

#[test]
fn call_requests_from_one_caller_reach_the_callee_in_order() {
    let src = r#"Scenario(
    name: "calls", duration: "30s", seed: 1,
    bus: Ephemeral(latency: Const("1ms")),
    services: [
        Service(name: "checkout", workers: 16,
            on: [Accept(entity: "order", work: Exp(mean: "1ms"), terminal: true,
                call: (service: "payment", request: "Charge", timeout: "1s", latency: Exp(mean: "3ms")))]),
        Service(name: "payment", workers: 1, on: [Handle(event: "Charge", work: Const("50us"))]),
    ],
    workload: Poisson(rate: "500/s", entity: "order", keys: Uniform(100)),
    invariants: [NoLostEntities(entity: "order", deadline_after_heal: "10s")],
)"#;
    let sys = system(src);
    let rs = records(&sys, 5);
    let ids = arrivals(&sys, &rs, "payment-1", "Charge");
    assert!(ids.len() > 10_000, "{}", ids.len());
    assert_eq!(overtakes(&ids), 0);
}

#[test]
fn only_a_reorder_fault_lets_a_message_overtake_another() {
    let reorder = r#"Link(from: "bus", to: "billing-1", reorder: (probability: 0.2, by: Const("20ms")),
        at: "1m", for: "1m")"#;
    let sys = copy(r#"Queue(latency: Exp(mean: "2ms"))"#, ", prefetch: 10", reorder);
    let rs = records(&sys, 3);
    let ids = arrivals(&sys, &rs, "billing-1", "EmailChanged");
    assert!(overtakes(&ids) > 100, "{}", overtakes(&ids));
    // Every overtaking happened while the fault held (plus the 20 ms it holds a message back).
    let n = sys.node_names().iter().position(|x| x == "billing-1").unwrap() as u32;
    let k = u64::from(sys.names.find_kind("EmailChanged").unwrap().0);
    let at: Vec<(u64, u64)> = rs
        .iter()
        .filter(|r| r.kind == RecordKind::Enqueued && r.node == n && r.aux == k)
        .map(|r| (r.time.0, r.msg))
        .collect();
    for w in at.windows(2).filter(|w| w[1].1 < w[0].1) {
        let t = w[1].0;
        assert!((60_000_000_000..120_100_000_000).contains(&t), "overtaken at {t} ns, outside the fault");
    }
}

#[test]
fn channels_are_independent_of_each_other() {
    // Two publishers, one subscriber: each publisher's messages arrive in
    // the order it sent them, but the two connections do not wait for each
    // other, so a later message from one often arrives before an earlier
    // one from the other.
    let src = r#"Scenario(
    name: "two-publishers", duration: "60s", seed: 1,
    bus: Ephemeral(latency: Exp(mean: "2ms")),
    services: [
        Service(name: "users", instances: 2, workers: 4,
            on: [Accept(entity: "change", work: Exp(mean: "1ms"), emit: ["Changed"])]),
        Service(name: "billing", workers: 1, consume: (topics: ["Changed"]),
            on: [Handle(event: "Changed", work: Const("100us"), terminal: true)]),
    ],
    workload: Poisson(rate: "500/s", entity: "change", keys: Uniform(20)),
    invariants: [NoLostEntities(entity: "change", deadline_after_heal: "10s")],
)"#;
    let sys = system(src);
    let rs = records(&sys, 2);
    let publisher: std::collections::BTreeMap<u64, u32> =
        rs.iter().filter(|r| r.kind == RecordKind::Published).map(|r| (r.msg, r.node)).collect();
    let ids = arrivals(&sys, &rs, "billing-1", "Changed");
    assert!(ids.len() > 20_000, "{}", ids.len());
    for p in [0, 1] {
        let mine: Vec<u64> = ids.iter().copied().filter(|m| publisher[m] == p).collect();
        assert!(mine.len() > 5_000);
        assert_eq!(overtakes(&mine), 0, "publisher {p}'s connection is FIFO");
    }
    assert!(overtakes(&ids) > 1_000, "across connections: {}", overtakes(&ids));
}

#[test]
fn a_crash_closes_a_node_s_connections() {
    // Deliveries take 10 ms or, one in four, 2 s. billing-1 crashes for
    // 1 ms: what was on its way is lost, and the new connection after the
    // restart is not held back behind the old one's last arrival (some 2 s
    // after the crash), so the first message after it can arrive at once.
    let src = r#"Scenario(
    name: "reconnect", duration: "30s", seed: 1,
    bus: Ephemeral(latency: Empirical(["10ms", "10ms", "10ms", "2s"])),
    services: [
        Service(name: "users", workers: 4, on: [Accept(entity: "change", work: Const("1ms"), emit: ["Changed"])]),
        Service(name: "billing", workers: 4, consume: (topics: ["Changed"]),
            on: [Handle(event: "Changed", work: Const("1ms"), terminal: true)]),
    ],
    workload: Poisson(rate: "200/s", entity: "change", keys: Uniform(20)),
    faults: [Crash(node: "billing-1", at: "10s", down_for: "1ms")],
    invariants: [NoLostEntities(entity: "change", deadline_after_heal: "10s")],
)"#;
    let sys = system(src);
    let billing = sys.node_names().iter().position(|x| x == "billing-1").unwrap() as u32;
    let quick = (1..=10)
        .filter(|&seed| {
            let rs = records(&sys, seed);
            let restart = rs.iter().find(|r| r.kind == RecordKind::Restart).unwrap().time.0;
            let first = rs.iter().find(|r| r.kind == RecordKind::Enqueued && r.node == billing && r.time.0 > restart);
            first.is_some_and(|r| r.time.0 < restart + 1_000_000_000)
        })
        .count();
    // The first message after the restart draws 10 ms three times in four.
    assert!(quick >= 5, "the new connection waited behind the old one under {} of 10 seeds", 10 - quick);
}

#[test]
fn a_crash_closes_only_the_crashed_node_s_connections() {
    // billing-1 crashes again and again; audit-1's connection from the same
    // publisher stays FIFO throughout.
    let src = r#"Scenario(
    name: "others", duration: "60s", seed: 1,
    bus: Ephemeral(latency: Exp(mean: "2ms")),
    services: [
        Service(name: "users", workers: 4, on: [Accept(entity: "change", work: Exp(mean: "1ms"), emit: ["Changed"])]),
        Service(name: "billing", workers: 1, consume: (topics: ["Changed"]),
            on: [Handle(event: "Changed", work: Const("100us"))]),
        Service(name: "audit", workers: 1, consume: (topics: ["Changed"]),
            on: [Handle(event: "Changed", work: Const("100us"), terminal: true)]),
    ],
    workload: Poisson(rate: "500/s", entity: "change", keys: Uniform(20)),
    faults: [RandomCrashes(nodes: ["billing-1"], mtbf: "200ms", mttr: "1ms", until: "50s")],
    invariants: [NoLostEntities(entity: "change", deadline_after_heal: "5s")],
)"#;
    let sys = system(src);
    let rs = records(&sys, 3);
    assert!(rs.iter().filter(|r| r.kind == RecordKind::Crash).count() > 100);
    let ids = arrivals(&sys, &rs, "audit-1", "Changed");
    assert!(ids.len() > 20_000, "{}", ids.len());
    assert_eq!(overtakes(&ids), 0);
}
