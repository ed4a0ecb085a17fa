//! Several buses in one system: each topic travels on the bus that lists
//! it (else on the first), with that bus's semantics, while a scenario
//! with one `bus:` runs exactly as before (the snapshots prove that part).

use faultline::outcome::Outcome;
use faultline::scenario;

use crate::support::system;

/// Orders on a log, payment commands on a queue, receipts on an ephemeral
/// bus; `faults` and the three topic lists are filled in.
fn shop(kafka: &str, rabbit: &str, notify: &str, faults: &str) -> String {
    format!(
        r#"Scenario(
    name: "shop-test",
    duration: "6m",
    buses: [
        Log(name: "kafka", partitions: 4, latency: Exp(mean: "2ms"), topics: [{kafka}]),
        Queue(name: "rabbit", latency: Exp(mean: "1ms"), topics: [{rabbit}]),
        Ephemeral(name: "notify", latency: Const("1ms"), topics: [{notify}]),
    ],
    services: [
        Service(name: "order", workers: 8,
            on: [Accept(entity: "order", work: Exp(mean: "1ms"), emit: ["OrderPlaced"])]),
        Service(name: "checkout", workers: 4, state: Durable,
            consume: (topics: ["OrderPlaced"]),
            on: [Handle(event: "OrderPlaced", work: Exp(mean: "2ms"), emit: ["ChargeCard"])]),
        Service(name: "payments", workers: 4, state: Durable,
            consume: (topics: ["ChargeCard"]),
            on: [Handle(event: "ChargeCard", work: Exp(mean: "3ms"), effect: "card-charged", terminal: true,
                        emit: ["Charged"])]),
        Service(name: "mailer", workers: 2,
            consume: (topics: ["Charged"]),
            on: [Handle(event: "Charged", work: Exp(mean: "1ms"), effect: "mail-sent")]),
    ],
    workload: Poisson(rate: "20/s", entity: "order", keys: Uniform(1000), stop: "4m"),
    faults: [{faults}],
    invariants: [NoLostEntities(entity: "order", deadline_after_heal: "1m")],
)"#
    )
}

fn run(src: &str, seed: u64) -> Outcome {
    faultline::sim::run(&system(src), seed).unwrap()
}

fn lost(o: &Outcome, reason: &str) -> u64 {
    o.metrics.lost_by_reason[reason]
}

const KAFKA: &str = r#""OrderPlaced""#;
const RABBIT: &str = r#""ChargeCard""#;
const NOTIFY: &str = r#""Charged""#;

#[test]
fn each_topic_is_sampled_on_its_own_bus() {
    let o = run(&shop(KAFKA, RABBIT, NOTIFY, ""), 1);
    let series: Vec<&str> = o.metrics.backlog.keys().map(String::as_str).collect();
    // The log's consumer group lags on its topic; the queue bus holds a
    // queue for its consumer; the ephemeral topic keeps nothing to sample.
    assert_eq!(series, ["lag checkout/OrderPlaced", "queue payments"]);
    assert!(o.all_hold(), "{:?}", o.invariants);
    assert_eq!(o.metrics.lost, 0);
}

#[test]
fn a_consumer_down_loses_the_ephemeral_topic_only() {
    // Mailer (ephemeral) and then checkout (log) are down for 30 s: the
    // receipts sent to the first are gone, the orders wait in the log.
    let faults =
        r#"Crash(node: "mailer-1", at: "1m", down_for: "30s"), Crash(node: "checkout-1", at: "2m", down_for: "30s")"#;
    let o = run(&shop(KAFKA, RABBIT, NOTIFY, faults), 1);
    assert!(lost(&o, "no-subscriber-up") > 100, "{:?}", o.metrics.lost_by_reason);
    assert_eq!(o.metrics.lost, lost(&o, "no-subscriber-up"), "{:?}", o.metrics.lost_by_reason);
    assert!(o.all_hold(), "the orders waited in the log: {:?}", o.invariants);
}

#[test]
fn moving_a_topic_to_another_bus_changes_what_a_crash_loses() {
    // The same crash of checkout, with OrderPlaced on the log and then on
    // the ephemeral bus: only the second loses orders.
    let faults = r#"Crash(node: "checkout-1", at: "1m", down_for: "30s")"#;
    let on_log = run(&shop(KAFKA, RABBIT, NOTIFY, faults), 2);
    assert!(on_log.all_hold(), "{:?}", on_log.invariants);
    let on_notify = run(&shop("", RABBIT, r#""Charged", "OrderPlaced""#, faults), 2);
    assert!(!on_notify.all_hold(), "orders pushed to a crashed checkout are gone");
    assert!(lost(&on_notify, "no-subscriber-up") > 100, "{:?}", on_notify.metrics.lost_by_reason);
}

#[test]
fn a_topic_no_bus_lists_travels_on_the_first() {
    let listed = run(&shop(KAFKA, RABBIT, NOTIFY, ""), 3);
    let unlisted = run(&shop("", RABBIT, NOTIFY, ""), 3);
    assert_eq!(listed.metrics.backlog.keys().collect::<Vec<_>>(), unlisted.metrics.backlog.keys().collect::<Vec<_>>());
    assert_eq!(listed.metrics.handled, unlisted.metrics.handled);
    assert_eq!(listed.metrics.e2e_latency_s.p99, unlisted.metrics.e2e_latency_s.p99);
}

#[test]
fn a_queue_command_survives_its_consumer_s_crash() {
    // ChargeCard waits in RabbitMQ's queue while payments is down: acked
    // only after the charge, it is delivered again after the restart.
    let faults = r#"Crash(node: "payments-1", at: "1m", down_for: "30s")"#;
    let o = run(&shop(KAFKA, RABBIT, NOTIFY, faults), 4);
    assert!(o.all_hold(), "{:?}", o.invariants);
    assert_eq!(o.metrics.lost, 0, "{:?}", o.metrics.lost_by_reason);
    let q = &o.metrics.backlog["queue payments"];
    assert!(q.max > 300, "the queue held the commands of the outage: max {}", q.max);
}

#[test]
fn broker_nodes_are_named_after_their_bus() {
    let src = shop(KAFKA, RABBIT, NOTIFY, r#"Crash(node: "rabbit-1", at: "1m", down_for: "20s")"#)
        .replace(r#"Log(name: "kafka", partitions: 4,"#, r#"Log(name: "kafka", partitions: 4, brokers: (count: 3),"#);
    let sys = system(&src);
    let names = sys.node_names();
    assert_eq!(names[names.len() - 4..], ["kafka-1", "kafka-2", "kafka-3", "rabbit-1"]);
    let o = faultline::sim::run(&sys, 1).unwrap();
    assert_eq!(o.faults.len(), 1);
    assert_eq!((o.faults[0].kind.as_str(), o.faults[0].node.as_str()), ("crash", "rabbit-1"));
    // Without confirms, what is published to the queue broker while it is
    // down is lost; the log's records are not.
    assert!(lost(&o, "broker-down") > 100, "{:?}", o.metrics.lost_by_reason);
    assert_eq!(o.metrics.lost, lost(&o, "broker-down"), "{:?}", o.metrics.lost_by_reason);
}

/// The error (as printed) that scenario text `src` is refused with.
fn refusal(src: &str) -> String {
    match scenario::parse("shop.ron", src) {
        Ok(_) => panic!("accepted:\n{src}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_bus_layouts_are_refused_where_they_are_written() {
    let good = shop(KAFKA, RABBIT, NOTIFY, "");
    let cases = [
        // Both forms, or neither.
        (
            good.replace("    buses: [", "    bus: Ephemeral(latency: Const(\"1ms\")),\n    buses: ["),
            "5:12: error: both `bus` and `buses` are given",
        ),
        // Unnamed, twice the same kind, a topic on two buses, an unknown topic.
        (good.replace(r#"Queue(name: "rabbit", "#, "Queue("), "6:9: error: each of several buses needs a name"),
        (
            good.replace(
                r#"Ephemeral(name: "notify", latency: Const("1ms")"#,
                r#"Log(name: "notify", latency: Const("1ms")"#,
            ),
            "7:9: error: a second Log bus (`kafka` is one)",
        ),
        (
            good.replace(r#"topics: ["Charged"]"#, r#"topics: ["Charged", "OrderPlaced"]"#),
            "7:78: error: topic `OrderPlaced` is listed by two buses",
        ),
        (
            good.replace(r#"Exp(mean: "1ms"), topics: ["ChargeCard"]"#, r#"Exp(mean: "1ms"), topics: ["ChargeCrad"]"#),
            "6:67: error: no handler emits `ChargeCrad`",
        ),
        // Names: two buses alike, a bus named like a service.
        (
            good.replace(r#"name: "notify""#, r#"name: "kafka""#),
            "7:25: error: two buses are called `kafka` (the other is a Log)",
        ),
        (good.replace(r#"name: "notify""#, r#"name: "mailer""#), "7:25: error: a service is also called `mailer`"),
        // A log gives settings only to its own topics.
        (
            good.replace(
                r#"Exp(mean: "2ms"), topics: ["OrderPlaced"]"#,
                r#"Exp(mean: "2ms"), topics: ["OrderPlaced"], per_topic: [Topic(name: "ChargeCard")]"#,
            ),
            "error: topic `ChargeCard` travels on `rabbit`, not on this log",
        ),
        // A lone bus carries everything.
        (
            good.replace(
                &good[good.find("    buses: [").unwrap()..good.find("    services:").unwrap()],
                "    bus: Log(latency: Const(\"1ms\"), topics: [\"OrderPlaced\"]),\n",
            ),
            "4:45: error: the only bus carries every topic",
        ),
        // The queue broker of a named bus is not `broker-1`.
        (
            good.replace("faults: []", r#"faults: [Crash(node: "broker-1", at: "1m", down_for: "1s")]"#),
            "no node is called `broker-1`",
        ),
    ];
    for (src, expected) in cases {
        let e = refusal(&src);
        assert!(e.contains(expected), "expected {expected:?} in:\n{e}");
    }
}

#[test]
fn a_scenario_without_any_bus_is_refused() {
    let good = shop(KAFKA, RABBIT, NOTIFY, "");
    let none = good.replace(&good[good.find("    buses: [").unwrap()..good.find("    services:").unwrap()], "");
    let e = refusal(&none);
    assert!(e.contains("1:1: error: the scenario has no bus"), "{e}");
    let empty = good
        .replace(&good[good.find("    buses: [").unwrap()..good.find("    services:").unwrap()], "    buses: [],\n");
    let e = refusal(&empty);
    assert!(e.contains("error: the scenario has no bus"), "{e}");
}
