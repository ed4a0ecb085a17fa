//! Rewinding a consumer group, as an operator does with Kafka's offset
//! reset: to the earliest offset, the latest, an offset or a time; what is
//! rewound over is delivered again (and judged), what is skipped forward
//! and was never processed is lost, and says so.

use faultline::sim::run;
use faultline::trace::{LossReason, Record, RecordKind};

use crate::support::{records, scenario_text, system};

/// Orders on a log of 2 partitions, invoiced by one consumer; `faults`.
fn invoices(faults: &str, dedup: &str) -> String {
    format!(
        r#"Scenario(
    name: "rewind-test",
    duration: "3m",
    bus: Log(partitions: 2, latency: Const("1ms")),
    services: [
        Service(name: "order", workers: 8, on: [Accept(entity: "order", work: Const("1ms"), emit: ["OrderCreated"])]),
        Service(name: "invoice", workers: 4, {dedup} consume: (topics: ["OrderCreated"]),
            on: [Handle(event: "OrderCreated", work: Const("2ms"), effect: "invoiced", terminal: true)]),
    ],
    workload: Regular(rate: "10/s", entity: "order", keys: Sequential, stop: "2m"),
    faults: [{faults}],
    invariants: [NoLostEntities(entity: "order", deadline_after_heal: "30s"), NoDuplicateEffects(effect: "invoiced")],
)"#
    )
}

/// The offset each partition resumed from, in partition order.
fn resumed(rs: &[Record]) -> Vec<u64> {
    let mut v: Vec<(u64, u64)> =
        rs.iter().filter(|r| r.kind == RecordKind::Rewound).map(|r| (r.aux >> 40, r.aux & ((1 << 40) - 1))).collect();
    v.sort_unstable();
    v.into_iter().map(|p| p.1).collect()
}

/// Records appended to each partition before `t_ns`.
fn appended_before(rs: &[Record], t_ns: u64) -> Vec<u64> {
    let mut per = vec![0u64; 2];
    for r in rs.iter().filter(|r| r.kind == RecordKind::Appended && r.time.0 < t_ns) {
        per[(r.aux >> 40) as usize] += 1;
    }
    per
}

#[test]
fn a_rewind_to_the_earliest_offset_delivers_everything_again_and_duplicates_are_judged() {
    let sys = system(&invoices(r#"Rewind(service: "invoice", to: Earliest, at: "1m")"#, ""));
    let rs = records(&sys, 1);
    assert_eq!(resumed(&rs), [0, 0]);
    let o = run(&sys, 1).unwrap();
    // 600 orders before 1m, each invoiced again.
    let dup = o.invariants.iter().find(|v| v.name.starts_with("no-duplicate-effects")).unwrap();
    assert_eq!(dup.violations, 600, "{dup:?}");
    assert_eq!(o.metrics.redelivered, 600);
    assert_eq!(o.metrics.lost, 0);
    // An idempotent consumer absorbs the replay.
    let idem = run(
        &system(&invoices(r#"Rewind(service: "invoice", to: Earliest, at: "1m")"#, "dedup: Durable(window: 100000),")),
        1,
    )
    .unwrap();
    assert!(idem.all_hold(), "{:?}", idem.invariants);
}

#[test]
fn a_rewind_to_an_offset_or_a_time_resumes_there() {
    let sys = system(&invoices(r#"Rewind(service: "invoice", to: Offset(100), at: "1m")"#, ""));
    assert_eq!(resumed(&records(&sys, 1)), [100, 100]);
    let o = run(&sys, 1).unwrap();
    // Partition by key: 300 records each by 1m; 200 of each come again.
    assert_eq!(o.metrics.redelivered, 400);
    // Past the end: the end.
    let far = system(&invoices(r#"Rewind(service: "invoice", to: Offset(1000000), at: "1m")"#, ""));
    let rs = records(&far, 1);
    assert_eq!(resumed(&rs), appended_before(&rs, 60_000_000_001));
    // A time: the first record appended at or after it.
    let at_time = system(&invoices(r#"Rewind(service: "invoice", to: Time("30s"), at: "1m")"#, ""));
    let rs = records(&at_time, 1);
    assert_eq!(resumed(&rs), appended_before(&rs, 30_000_000_000));
}

#[test]
fn a_rewind_forward_past_what_was_never_processed_loses_it_and_says_why() {
    // Invoice is down from 30s to 60s; at 59s an operator skips its group to
    // the end: the 300 orders of the outage are never invoiced.
    let faults =
        r#"Crash(node: "invoice-1", at: "30s", down_for: "30s"), Rewind(service: "invoice", to: Latest, at: "59s")"#;
    let sys = system(&invoices(faults, ""));
    let o = run(&sys, 1).unwrap();
    let lost = o.invariants.iter().find(|v| v.name.starts_with("no-lost-entities")).unwrap();
    assert_eq!(lost.counts["lost"], 290, "{:?}", lost.counts);
    assert_eq!(o.metrics.lost_by_reason["rewound-past"], 290);
    assert_eq!(lost.counts.get("unexplained"), None, "{:?}", lost.counts);
    let story = lost.example.as_ref().unwrap().lines.join("\n");
    assert!(story.contains("rewound its consumer group forward past it"), "{story}");
    let rs = records(&sys, 1);
    let lost_records = rs.iter().filter(|r| r.kind == RecordKind::Lost).count();
    assert_eq!(lost_records, 290);
    assert!(
        rs.iter()
            .filter(|r| r.kind == RecordKind::Lost)
            .all(|r| faultline::trace::loss_of(r.aux).0 == Some(LossReason::RewoundPast))
    );
}

#[test]
fn a_rewind_names_a_consumer_of_a_log() {
    let src = invoices(r#"Rewind(service: "order", to: Earliest, at: "1m")"#, "");
    let e = faultline::scenario::parse("test.ron", &src).expect_err("refused");
    let text = e.to_string();
    assert!(text.contains("no service called `order` consumes from a Log bus"), "{text}");
    assert!(text.contains("test.ron:"), "{text}");
}

#[test]
fn a_volatile_copy_comes_back_only_with_the_rewind() {
    // The bundled pair differs only in the rewind.
    let restart = scenario_text("email-volatile-restart.ron");
    let rewind = scenario_text("email-volatile-rewind.ron");
    let strip = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("//") && !l.contains("name:") && !l.contains("question:"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (a, b) = (strip(&restart), strip(&rewind));
    let extra: Vec<&String> = b.iter().filter(|l| !a.contains(l)).collect();
    assert!(
        extra.iter().all(|l| l.contains("Rewind(") || l.contains("faults: [") || l.contains("Crash(")),
        "{extra:?}"
    );
}

#[test]
fn a_rewind_that_drops_the_tables_rebuilds_a_read_model_from_what_the_log_still_holds() {
    let text = scenario_text("read-model-rebuild.ron");
    let rows = |src: &str| {
        let o = run(&system(src), 3).unwrap();
        o.invariants.iter().find(|v| v.name.starts_with("replica-convergence")).unwrap().clone()
    };
    // Dropped and replayed from a 10-minute log: the old orders are gone.
    let dropped = rows(&text);
    assert!(dropped.violations > 200, "{dropped:?}");
    // The same rewind keeping the table: the replay only rewrites rows.
    let kept = rows(&text.replace(", drop_tables: true", ""));
    assert!(kept.holds(), "{kept:?}");
    // From a compacted topic, the newest update of every order is there.
    let compacted = rows(&scenario_text("read-model-rebuild-compacted.ron"));
    assert!(compacted.holds(), "{compacted:?}");
    let o = run(&system(&text), 3).unwrap();
    assert!(o.faults.iter().any(|f| f.kind == "rewind to earliest, tables dropped"), "{:?}", o.faults);
    // A slow projection (50ms an event) takes a minute to replay: what is
    // written meanwhile waits behind the replay, past the 30s bound.
    let slow = text.replace(
        r#"Handle(event: "OrderUpdated", work: Exp(mean: "2ms"), write: "orders")"#,
        r#"Handle(event: "OrderUpdated", work: Exp(mean: "50ms"), write: "orders")"#,
    );
    let o = run(&system(&slow), 3).unwrap();
    let stale = o.invariants.iter().find(|v| v.name.starts_with("bounded-staleness")).unwrap();
    assert!(stale.violated() && stale.counts["worst_ms"] > 30_000, "{stale:?}");
}
