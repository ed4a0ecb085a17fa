//! Event-sourced state: a service whose table lives in memory and is
//! rebuilt from its own events on the log at every restart (from its
//! latest snapshot, if it takes them); retention shorter than the history
//! loses state, and `no-state-loss` says so.

use std::collections::BTreeMap;

use faultline::sim::run;
use faultline::trace::RecordKind;

use crate::support::{records, scenario_text, system};

/// The bundled event-sourced Users, with `from` replaced by `to`.
fn users(from: &str, to: &str) -> String {
    let text = scenario_text("event-sourced-retention.ron");
    assert!(text.contains(from), "{from}");
    text.replace(from, to)
}

fn lost(o: &faultline::outcome::Outcome) -> &faultline::check::Verdict {
    o.invariants.iter().find(|v| v.name.starts_with("no-state-loss")).unwrap()
}

fn rebuild(o: &faultline::outcome::Outcome) -> &faultline::outcome::RebuildMetrics {
    o.metrics.services["users"].rebuild.as_ref().expect("users is event-sourced")
}

const ES: &str = r#"event_sourced: Some(EventSourced(topic: "EmailChanged", table: "email")),"#;

#[test]
fn a_volatile_table_is_lost_in_a_crash_and_comes_back_whole_from_a_log_that_keeps_everything() {
    let plain = run(&system(&users(ES, "")), 3).unwrap();
    let v = lost(&plain);
    // Every row not written again after the restart is gone.
    assert!(v.violations > v.counts["rows"] / 3, "a crash of volatile state loses its rows: {v:?}");
    assert!(plain.metrics.services["users"].rebuild.is_none());
    let forever = run(&system(&users(r#", retention: "10m")"#, ")")), 3).unwrap();
    assert!(lost(&forever).holds(), "{:?}", lost(&forever));
    let r = rebuild(&forever);
    assert_eq!((r.rebuilds, r.expired_max), (1, 0));
    // Every event published before the crash (and appended) is replayed.
    let accepted_before_crash = records(&system(&users(r#", retention: "10m")"#, ")")), 3)
        .iter()
        .filter(|r| r.kind == RecordKind::Appended && r.time.0 < 1_800_000_000_000)
        .count() as u64;
    assert_eq!(r.events_max, accepted_before_crash);
}

#[test]
fn retention_shorter_than_the_history_loses_exactly_the_rows_whose_last_event_it_deleted() {
    let sys = system(&scenario_text("event-sourced-retention.ron"));
    let rs = records(&sys, 3);
    // Each key's last change, by request time (a change's event is
    // appended a few ms later).
    let mut key_of = BTreeMap::new();
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    for r in &rs {
        match r.kind {
            RecordKind::Request => {
                key_of.insert(r.entity, r.aux);
            }
            RecordKind::Appended => {
                last.insert(key_of[&r.entity], r.time.0);
            }
            _ => {}
        }
    }
    let rebuilt_at = rs.iter().find(|r| r.kind == RecordKind::Restart).unwrap().time.0;
    let ten_minutes = 600_000_000_000;
    let expired_keys = last.values().filter(|&&t| t + ten_minutes <= rebuilt_at).count() as u64;
    let o = run(&sys, 3).unwrap();
    let v = lost(&o);
    assert!(expired_keys > 50);
    assert_eq!(v.counts["lost"], expired_keys, "{v:?}");
    assert!(rebuild(&o).expired_max > 0);
}

#[test]
fn a_snapshot_keeps_what_retention_deleted_and_shortens_the_replay() {
    let o = run(&system(&scenario_text("event-sourced-snapshots.ron")), 3).unwrap();
    assert!(lost(&o).holds(), "{:?}", lost(&o));
    let r = rebuild(&o);
    assert!(r.snapshot_rows_max > 300, "{r:?}");
    assert!(r.events_max < 110, "only the events after the last snapshot: {r:?}");
    let without = rebuild(&run(&system(&scenario_text("event-sourced-retention.ron")), 3).unwrap()).events_max;
    assert!(without > 400);
}

#[test]
fn nothing_is_worked_on_until_the_events_are_replayed() {
    // 20ms per event: over ten seconds of replay, in which requests wait.
    let sys = system(&users(
        ES,
        r#"event_sourced: Some(EventSourced(topic: "EmailChanged", table: "email", per_event: "20ms")),"#,
    ));
    let rs = records(&sys, 3);
    let restart = rs.iter().find(|r| r.kind == RecordKind::Restart).unwrap();
    let rebuilt = rs.iter().find(|r| r.kind == RecordKind::Rebuilt).unwrap();
    assert!(rebuilt.time.0 - restart.time.0 > 10_000_000_000);
    let worked = rs.iter().filter(|r| r.kind == RecordKind::Handled && r.time > restart.time && r.time < rebuilt.time);
    assert_eq!(worked.count(), 0);
    let waited = rs.iter().filter(|r| r.kind == RecordKind::Enqueued && r.time > restart.time && r.time < rebuilt.time);
    assert!(waited.count() > 5);
    let o = run(&sys, 3).unwrap();
    assert!((rebuild(&o).recovery_s_max - (rebuilt.time.0 - restart.time.0) as f64 / 1e9).abs() < 1e-9);
}

#[test]
fn no_state_loss_holds_for_a_durable_table_and_judges_only_handler_writes() {
    let durable = run(&system(&users(ES, "state: Durable,")), 3).unwrap();
    assert!(lost(&durable).holds(), "{:?}", lost(&durable));
    assert!(lost(&durable).counts["rows"] >= 400, "it judged the rows written");
}

#[test]
fn event_sourcing_is_checked_with_its_position() {
    for (from, to, says) in [
        (
            r#"topic: "EmailChanged""#,
            r#"topic: "EmailChange""#,
            "no handler of `users` writes `email` and emits `EmailChange`",
        ),
        (
            "Service(name: \"users\", workers: 4,",
            "Service(name: \"users\", workers: 4, state: Durable,",
            "keeps its state only in memory",
        ),
        (
            r#"NoStateLoss(service: "users", table: "email")"#,
            r#"NoStateLoss(service: "users", table: "emails")"#,
            "writes table `emails`",
        ),
    ] {
        let e = faultline::scenario::parse("t.ron", &users(from, to)).expect_err(says);
        let text = e.to_string();
        assert!(text.contains(says), "{says}: {text}");
        assert!(text.contains("t.ron:"), "{text}");
    }
    let zero = users(
        ES,
        r#"event_sourced: Some(EventSourced(topic: "EmailChanged", table: "email", snapshot_every: Some(0))),"#,
    );
    assert!(faultline::scenario::parse("t.ron", &zero).unwrap_err().to_string().contains("every 0 writes"));
}
