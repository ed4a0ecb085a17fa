//! Topics with their own settings on a log: partitions, retention,
//! compaction, replication and how the partition is chosen, per topic,
//! the others taking the bus's.

use std::collections::{BTreeMap, BTreeSet};

use faultline::outcome::Outcome;
use faultline::trace::RecordKind;

use crate::support::{records, system};

/// Orders (OrderPlaced) and email changes (EmailChanged, same entity for
/// simplicity) on one log; `log` is the bus, `faults` the plan.
fn pipeline(log: &str, faults: &str) -> String {
    format!(
        r#"Scenario(
    name: "topics-test",
    duration: "3m",
    bus: {log},
    services: [
        Service(name: "order", workers: 8,
            on: [Accept(entity: "order", work: Exp(mean: "1ms"), emit: ["OrderPlaced", "EmailChanged"])]),
        Service(name: "invoice", workers: 2, state: Durable,
            consume: (topics: ["OrderPlaced"]),
            on: [Handle(event: "OrderPlaced", work: Exp(mean: "2ms"), effect: "invoiced", terminal: true)]),
        Service(name: "crm", workers: 2, state: Durable,
            consume: (topics: ["EmailChanged"]),
            on: [Handle(event: "EmailChanged", work: Exp(mean: "1ms"), effect: "mailed")]),
    ],
    workload: Poisson(rate: "20/s", entity: "order", keys: Uniform(50), stop: "2m"),
    faults: [{faults}],
    invariants: [NoLostEntities(entity: "order", deadline_after_heal: "30s")],
)"#
    )
}

/// Topic, or (topic, key), to the partitions its records were appended to.
type Placement<K> = BTreeMap<K, BTreeSet<u64>>;

/// For each topic name, the partitions its records were appended to, and
/// for each (topic, key) the partitions that key's records went to.
fn placement(src: &str) -> (Placement<String>, Placement<(String, u64)>) {
    let sys = system(src);
    let (mut kind_of, mut key_of) = (BTreeMap::new(), BTreeMap::new());
    let (mut parts, mut by_key) = (BTreeMap::new(), BTreeMap::new());
    for r in records(&sys, 1) {
        match r.kind {
            // The workload's request names the entity's key.
            RecordKind::Request => {
                key_of.insert(r.entity, r.aux);
            }
            RecordKind::Published => {
                kind_of.insert(r.msg, sys.names.kind_name(faultline::service::Kind(r.aux as u32)).to_string());
            }
            RecordKind::Appended => {
                let topic = kind_of[&r.msg].clone();
                let p = r.aux >> 40;
                parts.entry(topic.clone()).or_insert_with(BTreeSet::new).insert(p);
                by_key.entry((topic, key_of[&r.entity])).or_insert_with(BTreeSet::new).insert(p);
            }
            _ => {}
        }
    }
    (parts, by_key)
}

#[test]
fn each_topic_has_its_own_partitions() {
    let log = r#"Log(partitions: 8, latency: Const("1ms"), per_topic: [Topic(name: "EmailChanged", partitions: 1)])"#;
    let (parts, _) = placement(&pipeline(log, ""));
    assert_eq!(parts["OrderPlaced"].len(), 8, "{parts:?}");
    assert_eq!(parts["EmailChanged"], BTreeSet::from([0]), "{parts:?}");
}

#[test]
fn a_round_robin_topic_spreads_one_key_over_its_partitions() {
    // Each order emits both topics: OrderPlaced is keyed, so the records
    // of one key stay in one partition; EmailChanged goes round robin.
    let log = r#"Log(partitions: 4, latency: Const("1ms"), per_topic: [Topic(name: "EmailChanged", key: RoundRobin)])"#;
    let (parts, by_key) = placement(&pipeline(log, ""));
    assert_eq!(parts["EmailChanged"].len(), 4);
    let spread = |topic: &str| by_key.iter().filter(|((t, _), p)| t == topic && p.len() > 1).count();
    assert_eq!(spread("OrderPlaced"), 0, "a key's records stay in its partition");
    assert!(spread("EmailChanged") > 40, "round robin spreads a key: {} of 50 keys", spread("EmailChanged"));
}

fn run(src: &str) -> Outcome {
    faultline::sim::run(&system(src), 2).unwrap()
}

#[test]
fn retention_is_per_topic() {
    // crm is down for a minute; EmailChanged keeps 10 s of records, so what
    // crm had not read is gone, while OrderPlaced keeps everything.
    let faults =
        r#"Crash(node: "crm-1", at: "30s", down_for: "1m"), Crash(node: "invoice-1", at: "30s", down_for: "1m")"#;
    let log =
        r#"Log(partitions: 2, latency: Const("1ms"), per_topic: [Topic(name: "EmailChanged", retention: "10s")])"#;
    let o = run(&pipeline(log, faults));
    assert!(o.metrics.lost_by_reason["retention"] > 100, "{:?}", o.metrics.lost_by_reason);
    assert!(o.all_hold(), "orders are on a topic without retention: {:?}", o.invariants);
    // With the retention on the bus, the orders go too.
    let on_bus = r#"Log(partitions: 2, latency: Const("1ms"), retention: "10s")"#;
    assert!(!run(&pipeline(on_bus, faults)).all_hold());
}

#[test]
fn compaction_is_per_topic() {
    let faults = r#"Crash(node: "crm-1", at: "30s", down_for: "1m")"#;
    let log = r#"Log(partitions: 2, latency: Const("1ms"), per_topic: [Topic(name: "EmailChanged", compacted: true)])"#;
    let o = run(&pipeline(log, faults));
    let listed = r#"Log(partitions: 2, latency: Const("1ms"), compacted: ["EmailChanged"])"#;
    let same = run(&pipeline(listed, faults));
    assert_eq!(o.fingerprint, same.fingerprint, "Topic(compacted: true) is the bus's compacted list");
    // After its outage crm reads each key's newest change, not the backlog.
    let plain = run(&pipeline(r#"Log(partitions: 2, latency: Const("1ms"))"#, faults));
    let (compacted, all) = (o.metrics.services["crm"].handled, plain.metrics.services["crm"].handled);
    assert!(all - compacted > 500, "compacted {compacted}, all {all}");
}

#[test]
fn replication_is_per_topic() {
    // EmailChanged's partitions (global 2 and 3) have one copy, on broker-3
    // and broker-1; OrderPlaced's have three. broker-1 crashes: OrderPlaced
    // fails over, partition 3 of EmailChanged is offline until it is back.
    let brokers = r#"brokers: (count: 3, replication: 3, acks: Leader, min_insync: 1)"#;
    let faults = r#"Crash(node: "broker-1", at: "30s", down_for: "30s")"#;
    let one = format!(
        r#"Log(partitions: 2, latency: Const("1ms"), {brokers}, per_topic: [Topic(name: "EmailChanged", replication: 1)])"#
    );
    let three = format!(r#"Log(partitions: 2, latency: Const("1ms"), {brokers})"#);
    let (o, u) = (run(&pipeline(&one, faults)), run(&pipeline(&three, faults)));
    assert!(o.all_hold() && u.all_hold(), "orders fail over in both");
    // Its producers give up on the offline partition's records.
    assert!(o.metrics.lost_by_reason["producer-gave-up"] > 50, "{:?}", o.metrics.lost_by_reason);
    assert_eq!(o.metrics.lost, o.metrics.lost_by_reason["producer-gave-up"]);
    assert_eq!(u.metrics.lost, 0, "three copies: {:?}", u.metrics.lost_by_reason);
}

#[test]
fn bad_topic_settings_are_refused_where_they_are_written() {
    let cases = [
        (
            r#"Log(latency: Const("1ms"), per_topic: [Topic(name: "EmailChange")])"#,
            "4:61: error: topic `EmailChange` is never emitted by any service",
        ),
        (
            r#"Log(latency: Const("1ms"), per_topic: [Topic(name: "EmailChanged"), Topic(name: "EmailChanged", partitions: 2)])"#,
            "4:90: error: topic `EmailChanged` has its settings twice",
        ),
        (
            r#"Log(latency: Const("1ms"), per_topic: [Topic(name: "EmailChanged", replication: 2)])"#,
            "error: an ideal broker keeps one copy",
        ),
        (
            r#"Log(latency: Const("1ms"), brokers: (count: 2), per_topic: [Topic(name: "EmailChanged", replication: 3)])"#,
            "error: replication 3 is out of range",
        ),
        (
            r#"Log(latency: Const("1ms"), per_topic: [Topic(name: "EmailChanged", partitions: 0)])"#,
            "error: partitions 0 is out of range",
        ),
    ];
    for (log, expected) in cases {
        let src = pipeline(log, "");
        let e = faultline::scenario::parse("t.ron", &src).err().unwrap_or_else(|| panic!("accepted {log}")).to_string();
        assert!(e.contains(expected), "expected {expected:?} in:\n{e}");
    }
}
