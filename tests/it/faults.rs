//! Network faults on every path (queue deliveries, log fetches, calls),
//! random plans for every kind of fault, and faults in the trace.

use faultline::sim::run;
use faultline::trace::{NO_NODE, Record, RecordKind};

use crate::support::{records, scenario_text, system};

/// Orders consumed from a log by two inventory instances; FAULTS is the plan.
const TWO_CONSUMERS: &str = r#"Scenario(
    name: "two-consumers", duration: "5m",
    bus: Log(partitions: 4, latency: Exp(mean: "2ms"), session_timeout: "10s"),
    services: [
        Service(name: "order", workers: 8,
            on: [Accept(entity: "order", work: Exp(mean: "1ms"), emit: ["OrderCreated"])]),
        Service(name: "inventory", instances: 2, workers: 4, consume: (topics: ["OrderCreated"]),
            on: [Handle(event: "OrderCreated", work: Exp(mean: "3ms"), effect: "reserved", terminal: true)]),
    ],
    workload: Poisson(rate: "50/s", entity: "order", keys: Sequential, stop: "4m"),
    faults: [FAULTS],
    invariants: [NoLostEntities(entity: "order", deadline_after_heal: "30s")],
)"#;

fn at(rs: &[Record], kind: RecordKind, node: u32) -> Vec<u64> {
    rs.iter().filter(|r| r.kind == kind && r.node == node).map(|r| r.time.0 / 1_000_000_000).collect()
}

#[test]
fn a_consumer_cut_off_from_the_bus_loses_its_partitions_and_gets_them_back_at_the_heal() {
    let sys = system(
        &TWO_CONSUMERS.replace("FAULTS", r#"Partition(groups: [["inventory-1"], ["bus"]], at: "1m", for: "1m")"#),
    );
    let inventory_1 = 1;
    let rs = records(&sys, 1);
    // It stops heartbeating at 60s; the session times out 10s later.
    assert_eq!(at(&rs, RecordKind::Revoked, inventory_1), [70, 70]);
    assert_eq!(at(&rs, RecordKind::Assigned, inventory_1), [0, 0, 120, 120]);
    let o = run(&sys, 1).unwrap();
    assert!(o.all_hold(), "{:?}", o.invariants);
    // Nothing waits for the heal: the other instance took over.
    assert!(o.metrics.e2e_latency_s.max < 11.0, "{}", o.metrics.e2e_latency_s.max);
}

#[test]
fn a_lossy_link_to_a_log_consumer_delays_its_fetches_but_loses_nothing() {
    let calm = run(&system(&TWO_CONSUMERS.replace("FAULTS", "")), 1).unwrap();
    let lossy = run(
        &system(
            &TWO_CONSUMERS.replace("FAULTS", r#"Link(from: "bus", to: "inventory-1", drop: 0.5, at: "0s", for: "5m")"#),
        ),
        1,
    )
    .unwrap();
    assert!(lossy.all_hold());
    assert_eq!(lossy.metrics.lost, 0);
    // Half the fetches are sent again 200ms later.
    assert!(lossy.metrics.e2e_latency_s.mean > calm.metrics.e2e_latency_s.mean + 0.05);
}

#[test]
fn a_partition_holds_queue_deliveries_until_the_heal() {
    let text = r#"Scenario(
        name: "q", duration: "2m",
        bus: Queue(latency: Const("1ms")),
        services: [
            Service(name: "a", on: [Accept(entity: "job", work: Const("1ms"), emit: ["Job"])]),
            Service(name: "b", workers: 4, consume: (topics: ["Job"]),
                on: [Handle(event: "Job", work: Const("1ms"), terminal: true)]),
        ],
        workload: Poisson(rate: "20/s", entity: "job", keys: Sequential, stop: "90s"),
        faults: [Partition(groups: [["bus"], ["b-1"]], one_way: true, at: "30s", for: "20s")],
        invariants: [NoLostEntities(entity: "job", deadline_after_heal: "5s")],
    )"#;
    let o = run(&system(text), 1).unwrap();
    assert!(o.all_hold(), "{:?}", o.invariants);
    assert_eq!(o.metrics.lost, 0);
    // The jobs of the partition waited for its end: up to 20 seconds.
    assert!((19.0..21.0).contains(&o.metrics.e2e_latency_s.max), "{}", o.metrics.e2e_latency_s.max);
}

#[test]
fn a_reordering_link_lets_later_messages_overtake_earlier_ones() {
    let text = r#"Scenario(
        name: "r", duration: "60s",
        bus: Ephemeral(latency: Const("1ms")),
        services: [
            Service(name: "a", on: [Accept(entity: "job", work: Const("1ms"), emit: ["Job"])]),
            Service(name: "b", workers: 1, consume: (topics: ["Job"]),
                on: [Handle(event: "Job", work: Const("1us"), terminal: true)]),
        ],
        workload: Poisson(rate: "100/s", entity: "job", keys: Sequential, stop: "50s"),
        faults: [FAULTS],
        invariants: [NoLostEntities(entity: "job", deadline_after_heal: "5s")],
    )"#;
    let overtaken = |reorder: &str| {
        let fault = if reorder.is_empty() {
            String::new()
        } else {
            format!(r#"Link(from: "a-1", to: "bus", {reorder} at: "0s", for: "60s")"#)
        };
        let rs = records(&system(&text.replace("FAULTS", &fault)), 1);
        let arrivals: Vec<u64> =
            rs.iter().filter(|r| r.kind == RecordKind::Enqueued && r.node == 1).map(|r| r.msg).collect();
        arrivals.windows(2).filter(|w| w[1] < w[0]).count()
    };
    assert_eq!(overtaken(""), 0);
    let n = overtaken(r#"reorder: (probability: 0.2, by: Const("30ms")),"#);
    // About a fifth of 5,000 messages are held back 30ms, each overtaken by
    // the ~3 sent meanwhile: ~1,000 inversions at the receiver.
    assert!((700..1_300).contains(&n), "{n}");
}

#[test]
fn random_partitions_lossy_links_and_clock_skews_come_from_the_seed_and_are_listed() {
    let sys = system(&scenario_text("swarm.ron"));
    let plan = |seed| run(&sys, seed).unwrap().faults;
    let (a, b) = (plan(3), plan(3));
    assert_eq!(a, b);
    assert!(a.iter().any(|f| f.kind == "partition" && f.node.ends_with(" <-> all")), "{a:?}");
    assert!(a.iter().any(|f| f.kind == "link" && f.node.ends_with(" <-> all")), "{a:?}");
    assert!(a.iter().any(|f| f.kind == "clock skew x0.5" && f.node == "order-1"));
    assert!(a.iter().any(|f| f.kind == "clock skew x2" && f.node == "order-1"));
    assert_ne!(a, plan(4));
}

#[test]
fn every_fault_appears_in_the_trace_with_its_window() {
    let sys = system(&TWO_CONSUMERS.replace(
        "FAULTS",
        r#"Crash(node: "inventory-1", at: "10s", down_for: "5s"),
           Pause(node: "inventory-2", at: "20s", for: "3s"),
           Slow(node: "inventory-2", at: "30s", for: "4s", factor: 3.0),
           ClockSkew(node: "order-1", factor: 2.0, at: "40s", for: "5s"),
           Partition(groups: [["order-1"], ["bus"]], at: "50s", for: "6s"),
           Link(from: "bus", to: "inventory-1", drop: 0.1, at: "60s", for: "7s")"#,
    ));
    let rs = records(&sys, 1);
    let (inv1, inv2, order) = (1, 2, 0);
    assert_eq!((at(&rs, RecordKind::Crash, inv1), at(&rs, RecordKind::Restart, inv1)), (vec![10], vec![15]));
    assert_eq!((at(&rs, RecordKind::Paused, inv2), at(&rs, RecordKind::Resumed, inv2)), (vec![20], vec![23]));
    assert_eq!((at(&rs, RecordKind::FaultBegan, inv2), at(&rs, RecordKind::FaultHealed, inv2)), (vec![30], vec![34]));
    assert_eq!((at(&rs, RecordKind::FaultBegan, order), at(&rs, RecordKind::FaultHealed, order)), (vec![40], vec![45]));
    let network = (at(&rs, RecordKind::FaultBegan, NO_NODE), at(&rs, RecordKind::FaultHealed, NO_NODE));
    assert_eq!(network, (vec![50, 60], vec![56, 67]));
    // Each names its place in the plan the run reports.
    let o = run(&sys, 1).unwrap();
    let began: Vec<&str> = rs
        .iter()
        .filter(|r| r.kind == RecordKind::FaultBegan)
        .map(|r| o.faults[r.aux as usize].kind.as_str())
        .collect();
    assert_eq!(began, ["slow x3", "clock skew x2", "partition", "link"]);
}

#[test]
fn a_crash_point_at_any_seam_hits_every_seam_the_handler_has() {
    let text = TWO_CONSUMERS
        .replace("FAULTS", r#"CrashAt(node: "inventory-1", seam: Any, probability: 0.01, down_for: "1s")"#)
        .replace(
            r#"Service(name: "inventory", instances: 2,"#,
            r#"Service(name: "inventory", dedup: Durable(window: 100000), instances: 2,"#,
        );
    let rs = records(&system(&text), 1);
    let mut seams: Vec<u64> = rs.iter().filter(|r| r.kind == RecordKind::CrashPoint).map(|r| r.aux).collect();
    assert!(seams.len() > 20, "{}", seams.len());
    seams.sort();
    seams.dedup();
    // After the dedup write, after the state write, after the publish.
    assert_eq!(seams, [1, 2, 3]);
}

#[test]
fn a_consumer_that_gains_its_first_partition_starts_auto_committing() {
    // Three auto-committing instances on two partitions: inventory-3 owns
    // none until inventory-1's session times out (40 s); from then it must
    // commit every second like the others, or the rebalance at inventory-1's
    // restart (60 s) hands back a partition 20 s behind.
    let src = TWO_CONSUMERS
        .replace("partitions: 4", "partitions: 2")
        .replace("instances: 2,", "instances: 3,")
        .replace(
            r#"consume: (topics: ["OrderCreated"])"#,
            r#"consume: (topics: ["OrderCreated"], commit: Auto(every: "1s"))"#,
        )
        .replace("FAULTS", r#"Crash(node: "inventory-1", at: "30s", down_for: "30s")"#);
    let sys = system(&src);
    let rs = records(&sys, 1);
    let inventory_3 = 3;
    let assigned = at(&rs, RecordKind::Assigned, inventory_3);
    assert_eq!(assigned.first(), Some(&40), "{assigned:?}");
    let commits = at(&rs, RecordKind::Committed, inventory_3);
    assert!(commits.iter().filter(|&&t| (40..60).contains(&t)).count() >= 15, "{commits:?}");
}
