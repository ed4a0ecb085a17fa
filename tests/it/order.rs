//! Order and timeliness invariants: `per-key-order` names the first pair
//! of a row's writes out of publish order; `bounded-lag` samples a
//! consumer group's lag after the last heal; `bounded-staleness` gives
//! every source write a deadline at the replica.

use faultline::sim::run;
use faultline::trace::RecordKind;

use crate::support::{records, scenario_text, system};

fn verdict<'a>(o: &'a faultline::outcome::Outcome, name: &str) -> &'a faultline::check::Verdict {
    o.invariants.iter().find(|v| v.name.starts_with(name)).unwrap_or_else(|| panic!("{name}: {:?}", o.invariants))
}

#[test]
fn per_key_order_names_a_pair_written_against_their_publish_order() {
    let sys = system(&scenario_text("email-parallel-consumer.ron"));
    let o = run(&sys, 3).unwrap();
    let v = verdict(&o, "per-key-order");
    assert!(v.violations > 5, "{v:?}");
    let story = v.example.as_ref().unwrap();
    let conclusion = story.lines.last().unwrap();
    let after = conclusion.split(" after change ").nth(1).unwrap();
    let (older, newer) = (story.entity, after.split('\'').next().unwrap().parse::<u64>().unwrap());
    let rs = records(&sys, 3);
    let billing = sys.node_names().iter().position(|n| n == "billing-1").unwrap() as u32;
    let at = |kind, entity, node: Option<u32>| {
        rs.iter()
            .filter(|r| r.kind == kind && r.entity == entity && node.is_none_or(|n| r.node == n))
            .map(|r| r.time)
            .next()
            .unwrap()
    };
    // Published first, handled (written) last at billing.
    assert!(at(RecordKind::Published, older, None) < at(RecordKind::Published, newer, None));
    assert!(at(RecordKind::Handled, older, Some(billing)) > at(RecordKind::Handled, newer, Some(billing)));
    let ordered = run(&system(&scenario_text("email-ordered-consumer.ron")), 3).unwrap();
    let v = verdict(&ordered, "per-key-order");
    assert!(v.holds() && v.counts["writes"] > 9_000, "{v:?}");
}

#[test]
fn per_key_order_judges_only_the_named_table_and_a_service_s_own_handler_writes() {
    // The same parallel consumer, judged on the source (one worker: in order).
    let text = scenario_text("email-parallel-consumer.ron")
        .replace(r#"PerKeyOrder(service: "billing""#, r#"PerKeyOrder(service: "users""#);
    let o = run(&system(&text), 3).unwrap();
    assert!(verdict(&o, "per-key-order").holds());
    // Rebuilt rows (a replay of the events) are restores, not writes out of order.
    let es = scenario_text("event-sourced-snapshots.ron").replace(
        r#"invariants: [NoStateLoss(service: "users", table: "email")]"#,
        r#"invariants: [NoStateLoss(service: "users", table: "email"), PerKeyOrder(service: "users", table: "email")]"#,
    );
    let sys = system(&es.replace("Service(name: \"users\", workers: 4,", "Service(name: \"users\", workers: 1,"));
    let o = run(&sys, 3).unwrap();
    assert!(verdict(&o, "per-key-order").holds(), "{:?}", o.invariants);
    assert!(records(&sys, 3).iter().any(|r| r.kind == RecordKind::Rebuilt));
}

#[test]
fn bounded_lag_judges_the_samples_after_the_heal_and_its_grace() {
    let slow = run(&system(&scenario_text("orders-catch-up-slow.ron")), 3).unwrap();
    let v = verdict(&slow, "bounded-lag");
    assert!(v.violated() && v.counts["lag_max_judged"] > 1_000, "{v:?}");
    // Sampled every second over 20 minutes; judged from 7m30s (heal at 7m + 30s) on.
    assert_eq!(v.counts["samples"], 1200 - 450 + 1, "{v:?}");
    let fast = run(&system(&scenario_text("orders-catch-up.ron")), 3).unwrap();
    let v = verdict(&fast, "bounded-lag");
    assert!(v.holds(), "{v:?}");
    // The outage's backlog is there before the grace ends.
    assert!(v.counts["lag_max"] > 10_000 && v.counts["lag_max_judged"] <= 500, "{v:?}");
    // A grace past the end judges nothing.
    let late = scenario_text("orders-catch-up.ron").replace(r#"after_heal: "30s""#, r#"after_heal: "1h""#);
    let o = run(&system(&late), 3).unwrap();
    assert!(verdict(&o, "bounded-lag").is_inconclusive());
    // A coarser sample misses the spike's tail, and says how many it took.
    let coarse = scenario_text("orders-catch-up-slow.ron")
        .replace(r#"after_heal: "30s")"#, r#"after_heal: "30s", every: "1m")"#);
    let v = verdict(&run(&system(&coarse), 3).unwrap(), "bounded-lag").clone();
    assert_eq!(v.counts["samples"], 13, "{v:?}");
}

#[test]
fn bounded_lag_names_a_log_consumer() {
    let text = scenario_text("orders-catch-up.ron")
        .replace(r#"BoundedLag(service: "inventory""#, r#"BoundedLag(service: "order""#);
    let e = faultline::scenario::parse("t.ron", &text).unwrap_err().to_string();
    assert!(e.contains("`order` consumes nothing from a Log or a Queue bus") && e.contains("t.ron:"), "{e}");
}

/// email-fanout (Billing down 3m to 8m, a durable queue) with a staleness bound.
fn fanout(after_heal: &str) -> String {
    scenario_text("email-fanout.ron").replace(
        r#"invariants: [ReplicaConvergence(source: "users", replica: "billing", table: "email")]"#,
        &format!(
            r#"invariants: [BoundedStaleness(source: "users", replica: "billing", table: "email", max: "5s", after_heal: "{after_heal}")]"#
        ),
    )
}

#[test]
fn bounded_staleness_gives_writes_before_the_heal_its_grace_and_the_others_the_bound() {
    // The outage's changes wait in the queue and arrive seconds after the
    // heal: within a minute's grace, later than 5 s after the write (and one written just after the heal waits behind them).
    let graced = run(&system(&fanout("1m")), 3).unwrap();
    let v = verdict(&graced, "bounded-staleness");
    assert!(v.holds(), "{v:?}");
    let strict = run(&system(&fanout("0s")), 3).unwrap();
    let v = verdict(&strict, "bounded-staleness");
    // Every change of the outage (~300) misses a deadline of the heal itself.
    assert!(v.violations > 250 && v.counts["worst_ms"] > 290_000, "{v:?}");
    // On a fire-and-forget bus they never arrive.
    let eph = scenario_text("email-ephemeral.ron").replace(
        r#"invariants: [ReplicaConvergence(source: "users", replica: "billing", table: "email")]"#,
        r#"invariants: [BoundedStaleness(source: "users", replica: "billing", table: "email", max: "1s", after_heal: "1m")]"#,
    );
    let o = run(&system(&eph), 3).unwrap();
    let v = verdict(&o, "bounded-staleness");
    assert!(v.violations > 200, "{v:?}");
    let conclusion = o.invariants[0].example.as_ref().unwrap().lines.last().unwrap().clone();
    assert!(conclusion.contains("billing held it (or a newer change of its row)"), "{conclusion}");
}

#[test]
fn bounded_lag_counts_a_queue_consumer_s_ready_messages() {
    // email-fanout: Billing down 3m to 8m on a durable queue, the outage's
    // changes (~300) ready in its queue until it is back.
    let text = scenario_text("email-fanout.ron").replace(
        r#"invariants: [ReplicaConvergence(source: "users", replica: "billing", table: "email")]"#,
        r#"invariants: [BoundedLag(service: "billing", max: 10, after_heal: "0s")]"#,
    );
    let at_heal = run(&system(&text), 3).unwrap();
    let v = verdict(&at_heal, "bounded-lag");
    assert!(v.violated() && v.counts["lag_max"] > 250, "{v:?}");
    let graced = run(&system(&text.replace(r#"after_heal: "0s""#, r#"after_heal: "30s""#)), 3).unwrap();
    let v = verdict(&graced, "bounded-lag");
    assert!(v.holds() && v.counts["lag_max"] > 250, "{v:?}");
}
