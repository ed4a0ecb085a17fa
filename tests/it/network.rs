//! Every network fault acts: a producer cut off from the bus on each of the
//! three buses, and partitions between broker nodes (followers stop
//! fetching, the in-sync set shrinks, elections follow).

use faultline::outcome::Outcome;
use faultline::sim::run;
use faultline::trace::RecordKind;

use crate::support::{records, system};

/// Order -> Work on `bus`, with `faults`.
fn pipeline(bus: &str, faults: &str) -> String {
    format!(
        r#"Scenario(
    name: "net", duration: "10m", seed: 1,
    bus: {bus},
    services: [
        Service(name: "order", workers: 4, on: [Accept(entity: "order", work: Const("1ms"), emit: ["Created"])]),
        Service(name: "work", workers: 4, state: Durable, consume: (topics: ["Created"]),
            on: [Handle(event: "Created", work: Exp(mean: "2ms"), effect: "done", terminal: true)]),
    ],
    workload: Poisson(rate: "20/s", entity: "order", keys: Uniform(100), stop: "6m"),
    faults: [{faults}],
    invariants: [NoLostEntities(entity: "order", deadline_after_heal: "2m"), NoDuplicateEffects(effect: "done")],
)"#
    )
}

const EPHEMERAL: &str = r#"Ephemeral(latency: Exp(mean: "2ms"))"#;
const QUEUE: &str = r#"Queue(latency: Exp(mean: "2ms"))"#;
const LOG: &str = r#"Log(partitions: 2, latency: Exp(mean: "2ms"))"#;

fn outcome(bus: &str, faults: &str) -> Outcome {
    run(&system(&pipeline(bus, faults)), 1).unwrap()
}

fn cut(lasting: &str) -> String {
    format!(r#"Partition(groups: [["order-1"], ["bus"]], at: "1m", for: "{lasting}")"#)
}

#[test]
fn a_producer_cut_off_from_the_bus_changes_the_outcome_on_every_bus() {
    for bus in [EPHEMERAL, QUEUE, LOG] {
        let calm = outcome(bus, "");
        let cut = outcome(bus, &cut("30s"));
        assert_ne!(calm.fingerprint, cut.fingerprint, "{bus}");
        assert!(calm.all_hold(), "{bus}: {:?}", calm.invariants);
        assert!(calm.metrics.e2e_latency_s.max < 1.0, "{bus}");
        if bus == EPHEMERAL {
            // Fire and forget: what was published into the partition is gone.
            assert!(cut.metrics.lost_by_reason["partitioned"] > 400, "{:?}", cut.metrics.lost_by_reason);
            assert!(cut.invariants[0].violated());
        } else {
            // The producer's connection holds what it sends until the heal:
            // nothing is lost, the outage's orders are 30 s late.
            assert_eq!(cut.metrics.lost, 0, "{bus}: {:?}", cut.metrics.lost_by_reason);
            assert!(cut.all_hold(), "{bus}: {:?}", cut.invariants);
            assert!(cut.metrics.e2e_latency_s.max > 29.0, "{bus}: {}", cut.metrics.e2e_latency_s.max);
        }
    }
}

#[test]
fn a_connection_that_does_not_outlive_the_partition_loses_what_it_was_sending() {
    // A queue's heartbeat (60 s) closes a connection blocked for 90 s: what
    // the producer sent meanwhile is gone. A 50 s cut is only late.
    let long = outcome(QUEUE, &cut("90s"));
    let lost = long.metrics.lost_by_reason["producer-gave-up"];
    assert!((1_600..2_000).contains(&lost), "about 90 s of 20 orders a second: {lost}");
    assert_eq!(long.invariants[0].violations, lost);
    assert_eq!(outcome(QUEUE, &cut("50s")).metrics.lost, 0);
    let heartbeat = outcome(r#"Queue(latency: Exp(mean: "2ms"), heartbeat: "2m")"#, &cut("90s"));
    assert_eq!(heartbeat.metrics.lost, 0, "a longer heartbeat outlives it");
    // A log producer gives each record up after its delivery timeout (2 m):
    // in a 3-minute cut, those sent in its first minute.
    let log = outcome(LOG, &cut("3m"));
    let lost = log.metrics.lost_by_reason["producer-gave-up"];
    assert!((1_000..1_400).contains(&lost), "about 60 s of 20 orders a second: {lost}");
}

#[test]
fn a_link_that_drops_everything_holds_a_reliable_connection_like_a_partition() {
    let drop_all = r#"Link(from: "order-1", to: "bus", drop: 1.0, at: "1m", for: "30s")"#;
    let eph = outcome(EPHEMERAL, drop_all);
    assert!(eph.metrics.lost_by_reason["dropped"] > 400);
    for bus in [QUEUE, LOG] {
        let o = outcome(bus, drop_all);
        assert_eq!(o.metrics.lost, 0, "{bus}");
        assert!(o.metrics.e2e_latency_s.max > 29.0, "{bus}");
    }
    // A lossy link only resends: late by the retransmission, never lost.
    let lossy = r#"Link(from: "order-1", to: "bus", drop: 0.3, at: "1m", for: "1m")"#;
    let o = outcome(QUEUE, lossy);
    assert_eq!(o.metrics.lost, 0);
    assert!(o.metrics.e2e_latency_s.max > 0.2, "{}", o.metrics.e2e_latency_s.max);
}

#[test]
fn publishes_held_on_a_connection_die_with_their_producer() {
    let faults = format!(r#"{}, Crash(node: "order-1", at: "1m20s", down_for: "5s")"#, cut("30s"));
    let o = outcome(QUEUE, &faults);
    assert!(o.metrics.lost_by_reason["crashed-while-held"] > 300, "{:?}", o.metrics.lost_by_reason);
}

/// The order pipeline on three (or five) brokers.
fn cluster(brokers: &str, faults: &str) -> String {
    pipeline(&format!(r#"Log(partitions: 3, latency: Exp(mean: "2ms"), brokers: ({brokers}))"#), faults)
}

#[test]
fn a_leader_cut_off_from_its_followers_is_fenced_and_replaced() {
    // broker-1 leads partitions 0 of each topic; cut off from the two
    // others (the controller quorum), it is fenced after 9 s and broker-2
    // leads in its place. With acks from all in-sync replicas nothing
    // acknowledged is lost.
    let brokers =
        "count: 3, replication: 3, min_insync: 2, acks: All, idempotent: true, retries: 20, retry_after: \"2s\"";
    let faults = r#"Partition(groups: [["broker-1"], ["broker-2", "broker-3"]], at: "1m", for: "1m")"#;
    let sys = system(&cluster(brokers, faults));
    let o = run(&sys, 1).unwrap();
    assert!(o.all_hold(), "{:?} {:?}", o.invariants, o.metrics.lost_by_reason);
    assert_eq!(o.metrics.lost, 0);
    // The same with acks from the leader alone: what broker-1 took in its
    // 9 s before the fence is acknowledged and gone.
    let o = run(&system(&cluster("count: 3, replication: 3, acks: Leader", faults)), 1).unwrap();
    let lost = o.metrics.lost_by_reason["leader-failover"];
    assert!(lost > 20, "{:?}", o.metrics.lost_by_reason);
    assert!(o.invariants[0].violated());
    // The story tells the partition, the fence and the loss, in that order.
    let story = o.invariants[0].example.as_ref().unwrap().lines.join("\n");
    let at = |what: &str| story.find(what).unwrap_or_else(|| panic!("{what} in {story}"));
    assert!(at("partition broker-1 <-> broker-2,broker-3 began") < at("broker-1 FENCED"));
    assert!(at("broker-1 FENCED") < at("LOST: the partition's leader failed"));
    assert_eq!(o.faults[0].node, "broker-1 <-> broker-2,broker-3");
    // The fence happened at 1m09s: appends to partitions led by broker-1
    // stop then, and resume on the new leader.
    let rs = records(&system(&cluster("count: 3, replication: 3, acks: Leader", faults)), 1);
    let lost_at: Vec<u64> =
        rs.iter().filter(|r| r.kind == RecordKind::Lost).map(|r| r.time.0 / 1_000_000_000).collect();
    assert!(lost_at.iter().all(|&t| t == 69), "{lost_at:?}");
}

#[test]
fn a_follower_cut_off_from_its_leader_leaves_the_in_sync_set() {
    // broker-3 alone is cut off: it is fenced (a minority of one), so the
    // leaders drop it at once, and acks from two in-sync replicas go on.
    // With min_insync 3, writes wait until it is back in sync.
    let faults = r#"Partition(groups: [["broker-3"], ["broker-1", "broker-2"]], at: "1m", for: "2m")"#;
    let two = "count: 3, replication: 3, min_insync: 2, acks: All, idempotent: true, retries: 100, retry_after: \"2s\"";
    let o = run(&system(&cluster(two, faults)), 1).unwrap();
    assert!(o.all_hold(), "{:?}", o.invariants);
    assert!(o.metrics.e2e_latency_s.p99 < 20.0, "{}", o.metrics.e2e_latency_s.p99);
    let three = two.replace("min_insync: 2", "min_insync: 3");
    let o = run(&system(&cluster(&three, faults)), 1).unwrap();
    assert!(o.all_hold(), "{:?}", o.invariants);
    assert!(o.metrics.e2e_latency_s.max > 100.0, "writes waited for broker-3: {}", o.metrics.e2e_latency_s.max);
}

#[test]
fn jepsen_s_kafka_case_loses_acknowledged_writes_to_an_unclean_election() {
    // Five brokers, partitions on brokers 1-3 (replication 3). broker-1,
    // the leader of partition 0, is cut off from its followers 2 and 3 but
    // still reaches 4 and 5: it keeps its controller session, shrinks the
    // in-sync set to itself after 30 s, and acknowledges writes alone
    // (min_insync 1). Then it crashes: no in-sync replica is left, and the
    // unclean election of a follower loses what only broker-1 had.
    // Work is down meanwhile, so what the log loses was not read yet.
    let faults = r#"Partition(groups: [["broker-1"], ["broker-2", "broker-3"]], at: "1m", for: "3m"),
        Crash(node: "broker-1", at: "2m", down_for: "30s"), Crash(node: "work-1", at: "1m", down_for: "2m")"#;
    let brokers = "count: 5, replication: 3, min_insync: 1, acks: All, unclean_election: true, retries: 50";
    let o = run(&system(&cluster(brokers, faults)), 1).unwrap();
    let lost = o.metrics.lost_by_reason["unclean-election"];
    assert!(lost > 100, "{:?}", o.metrics.lost_by_reason);
    assert!(o.invariants[0].violated());
    // Refusing the unclean election keeps the partition offline until
    // broker-1 is back, and patient producers lose nothing.
    let clean = brokers.replace("unclean_election: true", "unclean_election: false");
    let o = run(&system(&cluster(&clean, faults)), 1).unwrap();
    assert_eq!(o.metrics.lost_by_reason["unclean-election"], 0);
    assert!(o.invariants[0].holds(), "{:?} {:?}", o.invariants[0], o.metrics.lost_by_reason);
}

#[test]
fn a_one_way_partition_from_the_leader_stops_replication_and_fences_it() {
    // broker-1 can still hear its followers but not answer them: their
    // fetches get no reply, and it cannot talk to the controller quorum.
    let faults = r#"Partition(groups: [["broker-1"], ["broker-2", "broker-3"]], one_way: true, at: "1m", for: "1m")"#;
    let sys = system(&cluster("count: 3, replication: 3, acks: Leader", faults));
    let o = run(&sys, 1).unwrap();
    assert!(o.metrics.lost_by_reason["leader-failover"] > 20, "{:?}", o.metrics.lost_by_reason);
    let rs = records(&sys, 1);
    let fenced: Vec<u64> =
        rs.iter().filter(|r| r.kind == RecordKind::Fenced).map(|r| r.time.0 / 1_000_000_000).collect();
    assert_eq!(fenced, [69]);
    // The other way round: the followers' fetches never reach broker-1.
    let reverse =
        faults.replace(r#"[["broker-1"], ["broker-2", "broker-3"]]"#, r#"[["broker-2", "broker-3"], ["broker-1"]]"#);
    let o = run(&system(&cluster("count: 3, replication: 3, acks: Leader", &reverse)), 1).unwrap();
    assert!(o.metrics.lost_by_reason["leader-failover"] > 20, "{:?}", o.metrics.lost_by_reason);
}

#[test]
fn a_leader_that_cannot_reach_the_controller_does_not_shrink_the_in_sync_set() {
    // Followers lag after 2 s, but a broker keeps its session for 20 s.
    // broker-1 (leading partitions 0) is cut off from everyone from 1m to
    // 1m05s: it cannot tell the controller, so its in-sync set stays whole
    // and `acks: All` writes wait instead of being acknowledged by broker-1
    // alone. From 1m05s to 2m it is cut off from broker-2 only: it reaches
    // the quorum again, drops broker-2 at its next check, and acknowledges
    // with broker-3.
    let faults = r#"Partition(groups: [["broker-1"], ["broker-2", "broker-3"]], at: "1m", for: "5s"),
        Partition(groups: [["broker-1"], ["broker-2"]], at: "1m", for: "1m")"#;
    let brokers = "count: 3, replication: 3, min_insync: 1, acks: All, idempotent: true, retries: 100, \
                   retry_after: \"1s\", session_timeout: \"20s\", replica_lag: \"2s\"";
    let o = run(&system(&cluster(brokers, faults)), 1).unwrap();
    assert!(o.all_hold(), "{:?} {:?}", o.invariants, o.metrics.lost_by_reason);
    assert_eq!(o.metrics.lost, 0);
    // No write waited until the heal at 2m: broker-2 left the set at about
    // 1m06s, and writes went on with broker-3.
    assert!(o.metrics.e2e_latency_s.max < 20.0, "{}", o.metrics.e2e_latency_s.max);
    // Had broker-1 shrunk the set while isolated, it would have acknowledged
    // writes alone at once (min_insync is 1): they waited out the isolation.
    assert!(o.metrics.e2e_latency_s.max > 4.0, "writes waited out the isolation: {}", o.metrics.e2e_latency_s.max);
}
