//! "Hey, I'm back": a service with volatile state that restarts (or is
//! deployed late) asks the data's owner for a snapshot, works on nothing
//! until it has loaded it, then resumes from the stream; the snapshot's
//! size and the time to load it and to catch up are measured.

use faultline::sim::run;
use faultline::trace::{Record, RecordKind};

use crate::support::{records, scenario_text, system};

/// Users -> Billing on `bus`, Billing's copy in memory; `billing` is
/// inserted into Billing's service, `faults` into the plan.
fn emails(bus: &str, billing: &str, faults: &str) -> String {
    emails_until("2m15s", bus, billing, faults)
}

/// [`emails`] whose changes stop at `stop`.
fn emails_until(stop: &str, bus: &str, billing: &str, faults: &str) -> String {
    format!(
        r#"Scenario(
    name: "rehydrate-test",
    duration: "10m",
    bus: {bus},
    services: [
        Service(name: "users", instances: 2, workers: 4, state: Shared,
            on: [Accept(entity: "change", work: Const("1ms"), write: "email", emit: ["EmailChanged"])]),
        Service(name: "billing", workers: 1, {billing}
            consume: (topics: ["EmailChanged"]),
            on: [Handle(event: "EmailChanged", work: Const("2ms"), write: "email")]),
    ],
    workload: Regular(rate: "10/s", entity: "change", keys: Uniform(100), stop: "{stop}"),
    faults: [{faults}],
    invariants: [ReplicaConvergence(source: "users", replica: "billing", table: "email")],
)"#
    )
}

const LOG: &str = r#"Log(partitions: 2, latency: Const("1ms"))"#;
const REHYDRATE: &str = r#"rehydrate: Some(Rehydrate(from: "users", table: "email")),"#;
const CRASH: &str = r#"Crash(node: "billing-1", at: "2m", down_for: "10s")"#;

fn diverged(o: &faultline::outcome::Outcome) -> u64 {
    o.invariants.iter().find(|v| v.name.starts_with("replica-convergence")).unwrap().violations
}

fn of_billing(o: &faultline::outcome::Outcome) -> &faultline::outcome::RehydrationMetrics {
    o.metrics.services["billing"].rehydration.as_ref().expect("billing re-hydrates")
}

fn at(rs: &[Record], kind: RecordKind) -> Vec<u64> {
    rs.iter().filter(|r| r.kind == kind).map(|r| r.time.0).collect()
}

#[test]
fn a_restarted_volatile_copy_comes_back_only_with_a_snapshot() {
    let without = run(&system(&emails(LOG, "", CRASH)), 3).unwrap();
    assert!(diverged(&without) > 10, "{:?}", without.invariants);
    let with = run(&system(&emails(LOG, REHYDRATE, CRASH)), 3).unwrap();
    assert_eq!(diverged(&with), 0, "{:?}", with.invariants);
    let r = of_billing(&with);
    assert_eq!((r.snapshots, r.requests, r.caught_up), (1, 1, 1), "{r:?}");
    // By 2m10s every one of the 100 keys has changed: the snapshot holds them all.
    assert_eq!(r.rows_max, 100);
    // Two 1ms hops and 100 rows at 10us each.
    assert!((r.load_s_max - 0.003).abs() < 1e-9, "{r:?}");
    assert!(r.catch_up_s_max >= r.load_s_max);
    assert!(without.metrics.services["billing"].rehydration.is_none());
}

#[test]
fn nothing_is_worked_on_or_fetched_until_the_snapshot_is_loaded() {
    let sys = system(&emails(LOG, REHYDRATE, CRASH));
    let rs = records(&sys, 3);
    let node = rs.iter().find(|r| r.kind == RecordKind::Restart).unwrap().node;
    let asked = rs.iter().find(|r| r.kind == RecordKind::Hydrating).unwrap();
    let loaded = rs.iter().find(|r| r.kind == RecordKind::Rehydrated).unwrap();
    assert_eq!((asked.node, loaded.node), (node, node));
    assert_eq!(loaded.aux, 100, "the rows");
    let handled_between = rs
        .iter()
        .filter(|r| r.node == node && (r.kind == RecordKind::Handled || r.kind == RecordKind::Enqueued))
        .filter(|r| r.time > asked.time && r.time < loaded.time)
        .count();
    assert_eq!(handled_between, 0, "a log consumer does not even poll while it waits");
    // And it works right after: its first handling after the restart follows the load.
    let first = rs.iter().find(|r| r.node == node && r.kind == RecordKind::Handled && r.time > asked.time).unwrap();
    assert!(first.time >= loaded.time);
}

#[test]
fn a_pushed_message_waits_for_the_snapshot_and_is_applied_after_it() {
    // On a fire-and-forget bus the instance is subscribed while it waits:
    // what arrives is held, not lost, and applied over the snapshot.
    let eph = r#"Ephemeral(latency: Const("1ms"))"#;
    let slow = r#"rehydrate: Some(Rehydrate(from: "users", table: "email", per_row: "5ms")),"#;
    let sys = system(&emails(eph, slow, CRASH));
    let rs = records(&sys, 3);
    let node = rs.iter().find(|r| r.kind == RecordKind::Restart).unwrap().node;
    let (asked, loaded) = (at(&rs, RecordKind::Hydrating)[0], at(&rs, RecordKind::Rehydrated)[0]);
    // 100 rows at 5ms: half a second, in which ~5 changes are pushed.
    assert_eq!(loaded - asked, 502_000_000);
    let held =
        rs.iter().filter(|r| r.node == node && r.kind == RecordKind::Enqueued && r.time.0 > asked && r.time.0 < loaded);
    assert!(held.count() >= 3);
    let o = run(&sys, 3).unwrap();
    assert_eq!(diverged(&o), 0, "{:?}", o.invariants);
    let without = run(&system(&emails(eph, "state: Durable,", CRASH)), 3).unwrap();
    assert!(diverged(&without) > 0, "the outage's changes are lost without a snapshot");
}

#[test]
fn an_owner_that_is_down_or_cut_off_is_asked_again_after_the_timeout() {
    // Both owners down when Billing restarts: refused, then asked again
    // every second until one is back at 2m13s.
    let faults = format!(
        r#"{CRASH}, Crash(node: "users-1", at: "2m5s", down_for: "8s"), Crash(node: "users-2", at: "2m5s", down_for: "8s")"#
    );
    let o = run(&system(&emails(LOG, REHYDRATE, &faults)), 3).unwrap();
    let r = of_billing(&o);
    assert_eq!(r.snapshots, 1);
    assert_eq!(r.requests, 4, "at 2m10s, 2m11s, 2m12s (refused) and 2m13s: {r:?}");
    assert!(r.load_s_max >= 3.0 && r.load_s_max < 3.1, "{r:?}");
    assert_eq!(diverged(&o), 0);
    // A partition between Billing and Users: no answer until it heals.
    let cut = format!(r#"{CRASH}, Partition(groups: [["billing-1"], ["users-1", "users-2"]], at: "2m", for: "15s")"#);
    let o = run(&system(&emails(LOG, REHYDRATE, &cut)), 3).unwrap();
    let r = of_billing(&o);
    assert_eq!(r.snapshots, 1);
    assert!(r.requests >= 5, "{r:?}");
    assert!(r.load_s_max >= 5.0, "loaded only after the heal at 2m15s: {r:?}");
    assert_eq!(diverged(&o), 0);
}

#[test]
fn a_crash_while_waiting_for_the_snapshot_asks_again_on_the_next_restart() {
    let slow = r#"rehydrate: Some(Rehydrate(from: "users", table: "email", per_row: "100ms")),"#;
    let faults = format!(r#"{CRASH}, Crash(node: "billing-1", at: "2m12s", down_for: "10s")"#);
    let sys = system(&emails(LOG, slow, &faults));
    let o = run(&sys, 3).unwrap();
    let r = of_billing(&o);
    // The first snapshot (10s on the way) dies with the crash at 2m12s.
    assert_eq!((r.requests, r.snapshots), (2, 1), "{r:?}");
    assert_eq!(at(&records(&sys, 3), RecordKind::Rehydrated).len(), 1);
    assert_eq!(diverged(&o), 0);
}

#[test]
fn an_owner_that_crashes_while_sending_breaks_the_snapshot_off_and_is_asked_again() {
    // 100 rows at 100ms: 10s on the way from users-1 (asked first is
    // instance `attempt % 2`), which crashes 5s into it; users-2 answers.
    let slow = r#"rehydrate: Some(Rehydrate(from: "users", table: "email", per_row: "100ms")),"#;
    let asked = |faults: &str| {
        let sys = system(&emails(LOG, slow, faults));
        let rs = records(&sys, 3);
        let owners: Vec<String> = rs
            .iter()
            .filter(|r| r.kind == RecordKind::Hydrating)
            .map(|r| sys.node_names()[r.aux as usize].clone())
            .collect();
        (owners, run(&sys, 3).unwrap())
    };
    let (owners, o) = asked(CRASH);
    assert_eq!(owners, ["users-2"]);
    assert_eq!(diverged(&o), 0);
    let (owners, o) = asked(&format!(r#"{CRASH}, Crash(node: "users-2", at: "2m15s", down_for: "1m")"#));
    assert_eq!(owners, ["users-2", "users-1"], "broken off by the crash, asked again at once");
    let r = of_billing(&o);
    assert_eq!((r.requests, r.snapshots), (2, 1), "{r:?}");
    assert!(r.load_s_max > 15.0, "5s lost, then 10s more: {r:?}");
    assert_eq!(diverged(&o), 0);
}

#[test]
fn the_owner_s_instances_are_asked_in_turn_skipping_those_down() {
    // Three owner instances; the k-th request goes to instance k + 1 (mod
    // 3) first, then the next ones; users-2 is down when Billing restarts.
    let three = |faults: &str| {
        let src = emails(LOG, REHYDRATE, faults).replace(r#"instances: 2, workers: 4"#, r#"instances: 3, workers: 4"#);
        let sys = system(&src);
        let names = sys.node_names();
        let asked: Vec<String> = records(&sys, 3)
            .iter()
            .filter(|r| r.kind == RecordKind::Hydrating)
            .map(|r| names[r.aux as usize].clone())
            .collect();
        asked
    };
    assert_eq!(three(CRASH), ["users-2"]);
    assert_eq!(three(&format!(r#"{CRASH}, Crash(node: "users-2", at: "1m", down_for: "5m")"#)), ["users-3"]);
    // Two crashes of Billing: the second restart's request is the second.
    let twice = format!(r#"{CRASH}, Crash(node: "billing-1", at: "3m", down_for: "10s")"#);
    assert_eq!(three(&twice), ["users-2", "users-3"]);
}

#[test]
fn a_late_deployed_copy_that_starts_at_the_end_of_the_log_is_complete_only_with_a_snapshot() {
    let late = r#"starts_at: "3m", consume: (topics: ["EmailChanged"], start: Latest),"#;
    let src = |extra: &str| {
        emails_until("3m5s", LOG, extra, "").replace(
            r#"consume: (topics: ["EmailChanged"]),
            on: [Handle"#,
            "on: [Handle",
        )
    };
    let without = run(&system(&src(late)), 3).unwrap();
    assert!(diverged(&without) > 50, "{:?}", without.invariants);
    let with = run(&system(&src(&format!("{late} {REHYDRATE}"))), 3).unwrap();
    assert_eq!(diverged(&with), 0, "{:?}", with.invariants);
    assert_eq!(of_billing(&with).snapshots, 1);
}

#[test]
fn rehydration_names_a_service_that_writes_the_table() {
    for (rehydrate, says) in [
        (r#"rehydrate: Some(Rehydrate(from: "user", table: "email")),"#, "no service is called `user`"),
        (r#"rehydrate: Some(Rehydrate(from: "billing", table: "email")),"#, "cannot re-hydrate from itself"),
        (r#"rehydrate: Some(Rehydrate(from: "users", table: "emails")),"#, "writes no table `emails`"),
        (r#"rehydrate: Some(Rehydrate(from: "users", table: "email", timeout: "0s")),"#, "above zero"),
    ] {
        let e = faultline::scenario::parse("test.ron", &emails(LOG, rehydrate, "")).expect_err(says);
        let text = e.to_string();
        assert!(text.contains(says), "{text}");
        assert!(text.contains("test.ron:"), "{text}");
    }
}

#[test]
fn the_bundled_pairs_differ_only_in_the_snapshot() {
    for (broken, fixed) in [
        ("email-volatile-restart.ron", "email-rehydrate.ron"),
        ("email-ephemeral.ron", "email-ephemeral-rehydrate.ron"),
    ] {
        let strip = |t: &str| {
            t.lines()
                .filter(|l| !l.starts_with("//") && !l.contains("name:") && !l.contains("question:"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let (a, b) = (strip(&scenario_text(broken)), strip(&scenario_text(fixed)));
        let extra: Vec<&String> = b.iter().filter(|l| !a.contains(l)).collect();
        assert!(extra.iter().all(|l| l.contains("rehydrate:")) && extra.len() == 1, "{fixed}: {extra:?}");
        assert_eq!(a.len() + 1, b.len(), "{fixed}");
    }
}
