//! No vacuous verdict: an invariant that judged nothing is inconclusive,
//! a fault that did not take effect is a warning, and either makes the run
//! exit 3 instead of 0.

use faultline::check::Status;
use faultline::outcome::RunVerdict;
use faultline::sim::run;

use crate::support::{faultline, parts, scenario_text, system, temp_dir};

/// orders-log.ron with its fault plan replaced.
fn orders_log_with(faults: &str) -> String {
    let base = scenario_text("orders-log.ron");
    let crash = "faults: [Crash(node: \"inventory-1\", at: \"2m\", down_for: \"5m\")]";
    assert!(base.contains(crash));
    base.replace(crash, &format!("faults: [{faults}]"))
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn a_fault_that_heals_after_the_end_leaves_every_entity_unjudged_and_exits_3() {
    // Inventory is down from the start until after the run: no order can
    // complete, and every deadline (the heal plus two minutes) falls after
    // the end. Before, this passed with 0 of 44,930 orders complete.
    let src = orders_log_with(r#"Crash(node: "inventory-1", at: "0s", down_for: "30m")"#);
    let o = run(&system(&src), 7).unwrap();
    assert_eq!(o.metrics.completed, 0);
    let lost = &o.invariants[0];
    assert_eq!(lost.status, Status::Inconclusive, "{lost:?}");
    assert_eq!(lost.counts["unresolved_at_end"], lost.counts["accepted"]);
    assert!(lost.inconclusive.as_deref().unwrap().contains("still within their deadline"));
    // No invoice was ever sent: no duplicate could have happened.
    assert_eq!(o.invariants[1].status, Status::Inconclusive);
    assert_eq!(o.warnings.len(), 1, "{:?}", o.warnings);
    assert!(o.warnings[0].contains("Crash(inventory-1) heals at 30m00.000s, after the run ends"), "{:?}", o.warnings);
    assert_eq!(o.verdict(), RunVerdict::Inconclusive);
    assert!(!o.all_hold());

    let dir = temp_dir("verdicts-heal");
    let file = write(&dir, "heal.ron", &src);
    let (code, out, _) = parts(&faultline(&["run", &file]));
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("INCONCLUSIVE  no-lost-entities(order): no entity could be judged"), "{out}");
    assert!(out.contains("WARNING  Crash(inventory-1) heals at"), "{out}");
    let (code, json, _) = parts(&faultline(&["run", &file, "--json"]));
    assert_eq!(code, 3);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["invariants"][0]["status"], "inconclusive");
    assert_eq!(v["warnings"].as_array().unwrap().len(), 1);
}

#[test]
fn a_crash_point_that_never_fires_is_a_warning() {
    // The inventory handles about 45,000 messages: the millionth never comes.
    let src = orders_log_with(r#"CrashAt(node: "inventory-1", seam: AfterPublish, nth: 1000000, down_for: "5s")"#);
    let o = run(&system(&src), 7).unwrap();
    assert!(o.invariants.iter().all(|v| v.holds()), "{:?}", o.invariants);
    assert_eq!(o.warnings.len(), 1);
    assert!(
        o.warnings[0].starts_with("CrashAt(inventory-1, after-publish) never took effect: it fired on none of the")
    );
    assert_eq!(o.verdict(), RunVerdict::Inconclusive);
    // A crash point on a node that never handles a message: never reached.
    let src = orders_log_with(r#"CrashAt(node: "invoice-1", seam: AfterPublish, nth: 1, down_for: "5s")"#).replace(
        "Service(name: \"invoice\", workers: 4,",
        "Service(name: \"invoice\", workers: 4, starts_at: \"30m\",",
    );
    let o = run(&system(&src), 7).unwrap();
    assert_eq!(
        o.warnings,
        ["CrashAt(invoice-1, after-publish) never took effect: no message reached its seam".to_string()]
    );

    // The same crash point where it does fire: no warning.
    let src = orders_log_with(r#"CrashAt(node: "inventory-1", seam: AfterPublish, nth: 100, down_for: "5s")"#);
    let o = run(&system(&src), 7).unwrap();
    assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    assert_ne!(o.verdict(), RunVerdict::Inconclusive);
}

#[test]
fn a_random_plan_that_draws_nothing_is_a_warning() {
    // A mean time between failures of a year in a 20-minute window.
    let src = orders_log_with(r#"RandomCrashes(nodes: ["inventory-1"], mtbf: "365d", mttr: "5s", until: "10m")"#);
    let o = run(&system(&src), 7).unwrap();
    assert_eq!(o.faults.len(), 0);
    assert_eq!(o.warnings.len(), 1);
    assert!(o.warnings[0].contains("RandomCrashes(inventory-1) never took effect: it drew no fault"));
    assert_eq!(o.verdict(), RunVerdict::Inconclusive);
}

#[test]
fn an_effect_never_applied_and_a_rule_never_started_judge_nothing() {
    // Invoice never runs (it is deployed after the end): no invoice, so
    // "no duplicate invoice" judged nothing.
    let src = scenario_text("orders-log.ron").replace(
        "Service(name: \"invoice\", workers: 4,",
        "Service(name: \"invoice\", workers: 4, starts_at: \"30m\",",
    );
    let o = run(&system(&src), 7).unwrap();
    let dup = &o.invariants[1];
    assert_eq!(dup.status, Status::Inconclusive);
    assert_eq!(dup.counts["entities_applied"], 0);
    assert_eq!(dup.inconclusive.as_deref(), Some("effect invoice-sent was never applied"));
    // ... while every order is lost: a violation outranks it.
    assert_eq!(o.invariants[0].status, Status::Violated);
    assert_eq!(o.verdict(), RunVerdict::Violated);
}

#[test]
fn a_topic_nobody_consumes_is_a_warning_of_check_and_run() {
    let src = scenario_text("orders-log.ron").replace(
        "effect: \"invoice-sent\", terminal: true)",
        "effect: \"invoice-sent\", terminal: true, emit: [\"InvoiceSent\"])",
    );
    let loaded = faultline::scenario::parse("x.ron", &src).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].message.contains("`InvoiceSent` is published but no service consumes it"));
    let dir = temp_dir("verdicts-topic");
    let file = write(&dir, "topic.ron", &src);
    let (code, _, err) = parts(&faultline(&["check", &file]));
    assert_eq!(code, 0);
    let line = 1 + src.lines().position(|l| l.contains("InvoiceSent")).unwrap();
    assert!(
        err.contains(&format!("topic.ron:{line}:")) && err.contains("warning: `InvoiceSent` is published"),
        "{err}"
    );
    let (_, json, _) = parts(&faultline(&["run", &file, "--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["scenario_warnings"][0].as_str().unwrap().contains("InvoiceSent"));
}

#[test]
fn a_sweep_counts_inconclusive_seeds_apart_and_exits_3() {
    // A crash that heals after the end under every seed.
    let src = orders_log_with(r#"Crash(node: "inventory-1", at: "1m..2m", down_for: "30m")"#)
        .replace("duration: \"20m\"", "duration: \"3m\"")
        .replace("stop: \"15m\"", "stop: \"2m\"");
    let dir = temp_dir("verdicts-sweep");
    let file = write(&dir, "sweep.ron", &src);
    let (code, out, err) = parts(&faultline(&["sweep", &file, "--seeds", "0..4"]));
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("inconclusive 4 seeds: 0, 1, 2, 3"), "{out}");
    let (_, json, _) = parts(&faultline(&["sweep", &file, "--seeds", "0..4", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["failing"], 0);
    assert_eq!(v["inconclusive"], 4);
    // The orders of the first minute complete: no-lost-entities judged
    // them; the invoices were sent once each.
    assert_eq!(v["invariants"][0]["failing"], 0);
}

#[test]
fn the_exit_codes_are_in_the_help() {
    let (code, out, _) = parts(&faultline(&["--help"]));
    assert_eq!(code, 0);
    assert!(out.contains("3 nothing was violated but a verdict was inconclusive"), "{out}");
}

/// One message per entity to a consumer that a crash point kills on every
/// message, before it publishes: a poison message of the worst kind.
fn crash_loop(settings: &str) -> String {
    format!(
        r#"Scenario(
    name: "crash-loop", duration: "60s", seed: 1,
    bus: Queue(latency: Const("1ms"){settings}),
    services: [
        Service(name: "order", on: [Accept(entity: "order", work: Const("1ms"), emit: ["Job"])]),
        Service(name: "billing", state: Durable, consume: (topics: ["Job"]),
            on: [Handle(event: "Job", work: Const("10ms"), emit: ["Billed"])]),
        Service(name: "ledger", consume: (topics: ["Billed"]),
            on: [Handle(event: "Billed", work: Const("1ms"), terminal: true)]),
    ],
    workload: Poisson(rate: "1/s", entity: "order", keys: Sequential, stop: "3s"),
    faults: [CrashAt(node: "billing-1", seam: AfterStateWrite, probability: 1.0, down_for: "1s")],
    invariants: [NoLostEntities(entity: "order", deadline_after_heal: "10s")],
)"#
    )
}

#[test]
fn a_message_that_kills_its_consumer_is_dead_lettered_at_the_delivery_limit() {
    let o = run(&system(&crash_loop(", kind: Quorum, delivery_limit: 2")), 1).unwrap();
    let m = &o.metrics;
    assert!(m.accepted >= 2, "{}", m.accepted);
    // A quorum queue's x-delivery-limit counts returns: 2 allows 3 deliveries.
    assert_eq!(m.dead_lettered, m.accepted, "every message parked after its third delivery");
    let v = &o.invariants[0];
    assert_eq!(v.status, Status::Holds, "{v:?}");
    assert_eq!(v.counts["dead_lettered"], m.accepted);
    assert_eq!(o.verdict(), RunVerdict::Holds);
    // Three deliveries each: the first and two redeliveries, no more.
    assert_eq!(m.redelivered, 2 * m.accepted);
    let dir = temp_dir("verdicts-crash-loop");
    let (code, out, _) =
        parts(&faultline(&["run", &write(&dir, "loop.ron", &crash_loop(", kind: Quorum, delivery_limit: 2"))]));
    assert_eq!(code, 0, "{out}");

    // Without a limit the loop goes on to the end, and nothing is judged.
    let o = run(&system(&crash_loop("")), 1).unwrap();
    assert_eq!(o.metrics.dead_lettered, 0);
    assert!(o.metrics.redelivered > 20, "{}", o.metrics.redelivered);
    assert_eq!(o.invariants[0].status, Status::Inconclusive, "{:?}", o.invariants[0]);
}

#[test]
fn deliveries_ended_by_an_ack_timeout_count_towards_the_limit() {
    // The handler takes 10 s, JetStream's AckWait is 1 s: the message is
    // taken back, delivered again, and given up after the third
    // (max_deliver counts deliveries).
    let src = crash_loop(r#", kind: JetStream, ack_timeout: "1s", delivery_limit: 3"#)
        .replace("work: Const(\"10ms\")", "work: Const(\"10s\")")
        .replace(
            "faults: [CrashAt(node: \"billing-1\", seam: AfterStateWrite, probability: 1.0, down_for: \"1s\")]",
            "faults: []",
        )
        .replace("Service(name: \"billing\",", "Service(name: \"billing\", workers: 4,");
    let rs = crate::support::records(&system(&src), 1);
    let parked: Vec<u64> =
        rs.iter().filter(|r| r.kind == faultline::trace::RecordKind::DeadLettered).map(|r| r.aux).collect();
    assert!(!parked.is_empty());
    assert!(parked.iter().all(|&deliveries| deliveries == 3), "{parked:?}");
}
