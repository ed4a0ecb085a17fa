//! Kernel properties that need a whole system: stream independence, limits,
//! crash semantics, both buses.

use std::sync::Arc;

use faultline::outcome::StopReason;
use faultline::scenario;
use faultline::service::{Context, EffectId, Message, Out, Service};
use faultline::sim::{Dist, SimDuration, run};
use faultline::system::{FaultSpec, System};
use faultline::trace::{Record, RecordKind};

use crate::support::{records, scenario_text, system};

/// (time, key) of every request the workload sent.
fn workload_draws(rs: &[Record]) -> Vec<(u64, u64)> {
    rs.iter().filter(|r| r.kind == RecordKind::Request).map(|r| (r.time.0, r.aux)).collect()
}

#[test]
fn changing_the_fault_plan_or_the_services_does_not_change_the_workload() {
    let base = system(&scenario_text("orders-ephemeral.ron"));
    let reference = workload_draws(&records(&base, 7));
    assert!(reference.len() > 40_000);

    let mut no_faults = base.clone();
    no_faults.faults.clear();
    let mut other_fault = base.clone();
    if let FaultSpec::Crash { at, .. } = &mut other_fault.faults[0] {
        *at += SimDuration::from_secs(30);
    }
    let mut more_instances = base.clone();
    more_instances.services[1].instances = 3;
    for (what, sys) in [("no faults", no_faults), ("a later crash", other_fault), ("3 inventories", more_instances)] {
        let draws = workload_draws(&records(&sys, 7));
        assert!(draws == reference, "{what} changed the workload's draws");
    }
    // ... while the seed does change them.
    assert!(workload_draws(&records(&base, 8)) != reference);
}

#[test]
fn events_max_stops_the_run_with_a_reason() {
    let mut sys = system(&scenario_text("orders-log.ron"));
    sys.limits.events_max = 1000;
    let o = run(&sys, 7).unwrap();
    assert_eq!(o.stopped_by, StopReason::EventsMax { limit: 1000 });
    assert_eq!(o.events, 1000);
    assert!(o.sim_time_ns < 60_000_000_000, "stopped early in simulated time");
}

#[test]
fn a_stop_flag_ends_the_run_within_4096_events_and_says_so() {
    use std::sync::atomic::AtomicBool;
    let sys = system(&scenario_text("orders-log.ron"));
    let stop = AtomicBool::new(true);
    let opts = faultline::sim::RunOptions { stop: Some(&stop), ..Default::default() };
    let o = faultline::sim::run_with(&sys, 7, opts).unwrap();
    assert_eq!(o.stopped_by, StopReason::Interrupted);
    assert!(o.events <= 4096, "{}", o.events);
    // Unset, the same flag changes nothing.
    let stop = AtomicBool::new(false);
    let opts = faultline::sim::RunOptions { stop: Some(&stop), ..Default::default() };
    let o = faultline::sim::run_with(&sys, 7, opts).unwrap();
    assert_eq!(o, run(&sys, 7).unwrap());
}

#[test]
fn the_run_ends_at_its_duration() {
    let o = run(&system(&scenario_text("orders-log.ron")), 7).unwrap();
    assert_eq!(o.stopped_by, StopReason::Completed);
    assert_eq!(o.sim_time_ns, 20 * 60 * 1_000_000_000);
}

const SLOW: &str = r#"Scenario(
    name: "slow",
    duration: "60s",
    bus: BUS,
    services: [
        Service(name: "front", workers: 4, on: [Accept(entity: "job", work: Const("1ms"), emit: ["Job"])]),
        Service(name: "back", workers: 1, state: Durable, consume: (topics: ["Job"]),
            on: [Handle(event: "Job", work: Const("500ms"), effect: "done", terminal: true)]),
    ],
    workload: Poisson(rate: "1/s", entity: "job", keys: Sequential, stop: "20s"),
    faults: [Crash(node: "back-1", at: "10s", down_for: "5s")],
    invariants: [NoLostEntities(entity: "job", deadline_after_heal: "30s"), NoDuplicateEffects(effect: "done")],
)"#;

#[test]
fn a_crash_loses_in_flight_work_on_the_ephemeral_bus() {
    // Slow consumer, long delivery: at the crash back-1 holds messages in
    // its queue and in flight on the bus; all of them are gone. A 2 s
    // delivery at one message a second: some are in flight at the crash in
    // all ten seeds but for odds of about one in a hundred million.
    let sys = system(&SLOW.replace("BUS", r#"Ephemeral(latency: Const("2s"))"#));
    let mut lost = [0u64; 3];
    for seed in 1..=10 {
        let o = run(&sys, seed).unwrap();
        lost[0] += o.metrics.lost_by_reason["crashed-while-held"];
        lost[1] += o.metrics.lost_by_reason["receiver-crashed"];
        lost[2] += o.metrics.lost_by_reason["no-subscriber-up"];
        assert!(o.invariants[0].violated());
    }
    assert!(lost.iter().all(|&n| n > 0), "every way of losing a message happened: {lost:?}");
}

#[test]
fn the_log_resumes_from_the_committed_offset_after_a_crash() {
    let sys = system(&SLOW.replace("BUS", r#"Log(partitions: 1, latency: Const("300ms"))"#));
    for seed in 1..=10 {
        let o = run(&sys, seed).unwrap();
        assert!(o.all_hold(), "seed {seed}: {:?}", o.invariants);
        assert_eq!(o.metrics.lost, 0);
        assert_eq!(o.metrics.completed, o.metrics.accepted);
        // Work in progress at the crash was not committed, so it is done
        // again after the restart, but effects are applied once: the crash
        // came before the handler finished.
        let rs = records(&sys, seed);
        let crash = rs.iter().position(|r| r.kind == RecordKind::Crash).unwrap();
        let restart = rs.iter().position(|r| r.kind == RecordKind::Restart).unwrap();
        assert!(!rs[crash..restart].iter().any(|r| r.kind == RecordKind::Handled && r.node == 1));
        let committed_after = rs[restart..].iter().filter(|r| r.kind == RecordKind::Committed).count();
        assert!(committed_after > 0);
    }
}

/// Counts in durable and volatile state; applies `reset` when the two
/// disagree, which happens only if a crash wiped the volatile count and kept
/// the durable one.
#[derive(Debug)]
struct Counter {
    work: Dist,
    reset: EffectId,
}

impl Service for Counter {
    fn work(&self, _msg: &Message) -> &Dist {
        &self.work
    }
    fn handle(&self, ctx: &Context<'_>, _msg: &Message, out: &mut Out) {
        let d = ctx.durable(0).unwrap_or(0);
        let v = ctx.volatile(0).unwrap_or(0);
        if d != v {
            out.effect(self.reset);
        }
        out.put(true, 0, d + 1);
        out.put(false, 0, v + 1);
        out.terminal();
    }
}

#[test]
fn a_crash_wipes_volatile_state_and_keeps_durable_state() {
    let src = SLOW.replace("BUS", r#"Log(partitions: 1, latency: Const("1ms"))"#);
    let count_resets = |with_crash: bool| {
        let mut sys = system(&src);
        if !with_crash {
            sys.faults.clear();
        }
        let reset = sys.names.effect("reset");
        sys.services[1].behaviour = Arc::new(Counter { work: Dist::Const(SimDuration::MILLISECOND), reset });
        records(&sys, 1).iter().filter(|r| r.kind == RecordKind::Effect).count()
    };
    assert_eq!(count_resets(false), 0);
    assert!(count_resets(true) > 0);
}

#[test]
fn a_full_queue_rejects_requests() {
    let src = SLOW
        .replace("BUS", r#"Ephemeral(latency: Const("1ms"))"#)
        .replace(r#"Service(name: "front", workers: 4,"#, r#"Service(name: "front", workers: 1, queue: 2,"#)
        .replace(r#"Accept(entity: "job", work: Const("1ms")"#, r#"Accept(entity: "job", work: Const("5s")"#);
    let o = run(&system(&src), 1).unwrap();
    assert!(o.metrics.rejected > 0);
    // One worker, 5 s per request: at most 12 can finish in the 60 s run.
    assert!(o.metrics.accepted <= 12, "{}", o.metrics.accepted);
    assert!(o.metrics.accepted + o.metrics.rejected <= o.metrics.requests);
}

/// Waits `delay` after each message, then completes the entity: the
/// escrow-style deadline in its smallest form.
#[derive(Debug)]
struct Delayed {
    work: Dist,
    delay: SimDuration,
    done: EffectId,
}

impl Service for Delayed {
    fn work(&self, _msg: &Message) -> &Dist {
        &self.work
    }
    fn handle(&self, _ctx: &Context<'_>, msg: &Message, out: &mut Out) {
        if msg.kind == faultline::service::Kind::TIMER {
            assert_eq!(msg.key, 42, "the tag comes back as the key");
            out.effect(self.done);
            out.terminal();
        } else {
            out.timer(self.delay, 42);
        }
    }
}

#[test]
fn timers_fire_after_their_delay_and_die_with_their_node() {
    let src = SLOW.replace("BUS", r#"Log(partitions: 1, latency: Const("1ms"))"#);
    let run_with_delay = |with_crash: bool| {
        let mut sys = system(&src);
        if !with_crash {
            sys.faults.clear();
        }
        let done = sys.names.effect("done");
        let delay = SimDuration::from_secs(2);
        sys.services[1].behaviour = Arc::new(Delayed { work: Dist::Const(SimDuration::ZERO), delay, done });
        let rs = records(&sys, 1);
        let o = run(&sys, 1).unwrap();
        (rs, o)
    };
    let (rs, o) = run_with_delay(false);
    assert!(o.all_hold());
    // Each entity completes 2 s (the timer) + 1 ms (front) + 1 ms (fetch) after its request.
    for r in rs.iter().filter(|r| r.kind == RecordKind::Terminal) {
        let req = rs.iter().find(|q| q.kind == RecordKind::Request && q.entity == r.entity).unwrap();
        assert_eq!(r.time.0 - req.time.0, 2_002_000_000);
    }
    // Timers set before the crash of back-1 at 10 s die with it: those
    // entities never complete (their messages were already committed).
    let (_, o) = run_with_delay(true);
    assert!(o.invariants[0].violated());
    assert!(o.invariants[0].counts["lost"] > 0);
}

#[test]
fn empirical_work_takes_only_the_listed_values() {
    let src = SLOW
        .replace("BUS", r#"Ephemeral(latency: Const("1ms"))"#)
        .replace(r#"work: Const("500ms")"#, r#"work: Empirical(["100ms", "300ms"])"#)
        .replace(r#"Service(name: "back", workers: 1,"#, r#"Service(name: "back", workers: 8,"#);
    let mut sys = system(&src);
    sys.faults.clear();
    let o = run(&sys, 3).unwrap();
    let back = &o.metrics.services["back"];
    assert!(back.handled > 10, "{}", back.handled);
    // With 8 workers nothing waits, so each latency is one of the two values.
    assert_eq!(back.wait_s.max, 0.0);
    assert_eq!(back.latency_s.max, 0.3);
    assert!(0.1 < back.latency_s.mean && back.latency_s.mean < 0.3, "{}", back.latency_s.mean);
}

#[test]
fn a_volatile_dedup_store_forgets_at_the_crash_and_a_durable_one_does_not() {
    let duplicates = |dedup: &str| {
        let src = scenario_text("invoice-at-least-once.ron").replace(
            "Service(name: \"invoice\", workers: 16,",
            &format!("Service(name: \"invoice\", workers: 16, {dedup}"),
        );
        let o = run(&system(&src), 7).unwrap();
        (o.invariants[1].violations, o.metrics.duplicates_skipped)
    };
    let (none, _) = duplicates("");
    let (volatile, volatile_skipped) = duplicates("dedup: Volatile(window: 100000),");
    let (durable, durable_skipped) = duplicates("dedup: Durable(window: 100000),");
    assert!(none > 0);
    // The crash wiped the in-memory store, so the redelivered records look new.
    assert_eq!((volatile, volatile_skipped), (none, 0));
    assert_eq!(durable, 0);
    assert_eq!(durable_skipped, none);
    // A window too small to span the outage forgets too.
    let (tiny, _) = duplicates("dedup: Durable(window: 1),");
    assert!(tiny > 0);
}

/// Two services read the same topic from a queue bus: `billing` and `audit`.
fn two_readers(queue_settings: &str, billing_extra: &str, audit_extra: &str, fault: &str) -> System {
    system(&format!(
        r#"Scenario(
    name: "readers", duration: "120s",
    bus: Queue(latency: Const("1ms"){queue_settings}),
    services: [
        Service(name: "users", workers: 4, on: [Accept(entity: "change", work: Const("1ms"), emit: ["Changed"])]),
        Service(name: "billing", workers: 2, consume: (topics: ["Changed"]{billing_extra}),
            on: [Handle(event: "Changed", work: Exp(mean: "80ms"), effect: "billed", terminal: true)]),
        Service(name: "audit", workers: 2, consume: (topics: ["Changed"]{audit_extra}),
            on: [Handle(event: "Changed", work: Exp(mean: "20ms"))]),
    ],
    workload: Poisson(rate: "20/s", entity: "change", keys: Uniform(100), stop: "60s"),
    faults: [{fault}],
    invariants: [NoLostEntities(entity: "change", deadline_after_heal: "30s"), NoDuplicateEffects(effect: "billed")],
)"#
    ))
}

#[test]
fn fan_out_gives_every_service_every_message_and_a_shared_queue_splits_them() {
    let fanout = run(&two_readers("", "", "", ""), 1).unwrap();
    let m = &fanout.metrics;
    assert_eq!(m.services["billing"].handled, m.accepted);
    assert_eq!(m.services["audit"].handled, m.accepted);
    assert!(fanout.all_hold());

    let shared = run(&two_readers("", r#", queue: "changes""#, r#", queue: "changes""#, ""), 1).unwrap();
    let m = &shared.metrics;
    let (b, a) = (m.services["billing"].handled, m.services["audit"].handled);
    assert_eq!(a + b, m.accepted, "each message to exactly one of them");
    assert!(a > m.accepted / 3 && b > m.accepted / 3, "round robin shares: {a} / {b}");
    // Billing never sees the changes audit took: they never complete.
    assert_eq!(shared.invariants[0].violations, a);
}

#[test]
fn manual_acks_survive_a_consumer_crash_and_auto_acks_do_not() {
    let crash = r#"Crash(node: "billing-1", at: "20s", down_for: "10s")"#;
    let mut redelivered = 0;
    for seed in 1..=5 {
        let manual = run(&two_readers("", ", ack: Manual, prefetch: 20", "", crash), seed).unwrap();
        assert!(manual.invariants[0].holds(), "{:?}", manual.invariants[0]);
        assert_eq!(manual.metrics.lost, 0);
        redelivered += manual.metrics.redelivered;
    }
    // In most seeds billing-1 holds unacked messages when it crashes.
    assert!(redelivered > 0, "the crashed consumer's unacked messages were delivered again");

    let mut lost = 0;
    for seed in 1..=5 {
        let auto = run(&two_readers("", ", ack: Auto", "", crash), seed).unwrap();
        assert_eq!(auto.metrics.lost, auto.metrics.lost_by_reason["auto-ack"]);
        assert_eq!(auto.invariants[0].holds(), auto.metrics.lost == 0);
        lost += auto.metrics.lost;
    }
    assert!(lost > 0, "auto-acked messages died with the consumer");
}

#[test]
fn an_ack_timeout_shorter_than_the_work_redelivers_and_duplicates() {
    // Billing's work (mean 80 ms, exponential) often outlasts a 100 ms ack
    // timeout: the broker takes the message back and delivers it again while
    // the first delivery is still being handled, so the effect happens twice.
    let o = run(&two_readers(r#", ack_timeout: "100ms""#, "", "", ""), 3).unwrap();
    assert!(o.metrics.redelivered > 0);
    assert!(o.invariants[1].violated(), "duplicate effects");
    let calm = run(&two_readers(r#", ack_timeout: "10s""#, "", "", ""), 3).unwrap();
    assert_eq!(calm.metrics.redelivered, 0);
    assert!(calm.all_hold());
}

#[test]
fn a_late_group_gets_the_history_from_earliest_on_a_compacted_topic_and_nothing_from_latest() {
    let src = scenario_text("email-bootstrap-compacted.ron");
    let compacted = run(&system(&src), 7).unwrap();
    assert!(compacted.all_hold());
    let rows = compacted.invariants[0].counts["rows"];
    // Compaction: one record per key, the newest.
    assert_eq!(compacted.metrics.services["billing"].handled, rows);

    let latest = run(&system(&src.replace("start: Earliest", "start: Latest")), 7).unwrap();
    assert_eq!(latest.invariants[0].counts["diverged"], rows, "a group at the end of the log gets nothing");
    assert_eq!(latest.metrics.services["billing"].handled, 0);

    // Without compaction the whole history is read, and it converges too.
    let full = run(&system(&src.replace(r#", compacted: ["EmailChanged"]"#, "")), 7).unwrap();
    assert!(full.all_hold());
    assert_eq!(full.metrics.services["billing"].handled, full.metrics.published);

    // Time retention instead of compaction: the history is deleted before Billing exists.
    let retained = run(&system(&src.replace(r#"compacted: ["EmailChanged"]"#, r#"retention: "1m""#)), 7).unwrap();
    assert_eq!(retained.invariants[0].counts["diverged"], rows);
    assert_eq!(retained.metrics.lost_by_reason["retention"], retained.metrics.published);
    assert_eq!(retained.metrics.services["billing"].handled, 0);
}

#[test]
fn size_retention_keeps_the_newest_records_only() {
    let src = scenario_text("email-bootstrap-compacted.ron").replace(
        r#"partitions: 4, latency: Exp(mean: "2ms"), compacted: ["EmailChanged"]"#,
        r#"partitions: 1, latency: Exp(mean: "2ms"), retention_records: 100"#,
    );
    let o = run(&system(&src), 7).unwrap();
    assert_eq!(o.metrics.services["billing"].handled, 100);
    assert_eq!(o.metrics.lost_by_reason["retention"], o.metrics.published - 100);
}

#[test]
fn a_crashed_member_s_partitions_move_to_the_live_ones_after_the_session_timeout() {
    // orders-log with two inventory instances: when inventory-1 crashes for
    // five minutes, inventory-2 takes its partitions 10 s later.
    let src = scenario_text("orders-log.ron").replace(
        r#"Service(name: "inventory", workers: 4,"#,
        r#"Service(name: "inventory", instances: 2, workers: 4,"#,
    );
    let sys = system(&src);
    let o = run(&sys, 7).unwrap();
    assert!(o.all_hold());
    let max = o.metrics.e2e_latency_s.max;
    assert!((9.0..20.0).contains(&max), "the longest wait is about the session timeout, not the outage: {max}");
    let rs = records(&sys, 7);
    let moved: Vec<&Record> = rs.iter().filter(|r| r.kind == RecordKind::Assigned && r.time.0 > 0).collect();
    assert!(!moved.is_empty());
    assert!(
        moved.iter().all(|r| r.time.0 == 130_000_000_000 || r.time.0 == 420_000_000_000),
        "at expiry and at rejoin"
    );

    // With a session timeout longer than the outage nothing moves.
    let patient = system(&src.replace(
        r#"Log(partitions: 4, latency: Exp(mean: "2ms"))"#,
        r#"Log(partitions: 4, latency: Exp(mean: "2ms"), session_timeout: "10m")"#,
    ));
    let o = run(&patient, 7).unwrap();
    assert!(o.metrics.e2e_latency_s.max > 250.0);
}

#[test]
fn a_resent_record_is_appended_twice_unless_the_producer_is_idempotent() {
    let src = scenario_text("broker-acks-all.ron");
    let idempotent = run(&system(&src), 2).unwrap();
    assert!(idempotent.all_hold());
    let plain = run(&system(&src.replace("idempotent: true,", "idempotent: false,")), 2).unwrap();
    assert!(plain.invariants[0].holds(), "nothing lost either way");
    assert!(plain.invariants[1].violated(), "the resends after the failover became duplicates");
}

#[test]
fn without_unclean_election_the_partition_waits_for_its_in_sync_replica() {
    // Availability against durability: refusing the unclean election keeps
    // the partition offline until broker-1 is back, and producers that keep
    // resending long enough lose nothing.
    let src = scenario_text("broker-unclean-election.ron")
        .replace("unclean_election: true,", "unclean_election: false, retries: 30,");
    let o = run(&system(&src), 7).unwrap();
    assert!(o.all_hold(), "{:?}", o.invariants);
    assert_eq!(o.metrics.lost, 0);
    // With too few resends the producers give up while it is offline.
    let impatient = run(&system(&src.replace("retries: 30,", "retries: 2,")), 7).unwrap();
    assert!(impatient.metrics.lost_by_reason["producer-gave-up"] > 0);
}

#[test]
fn backlog_and_lag_are_sampled_over_the_run() {
    let o = run(&system(&scenario_text("orders-log.ron")), 7).unwrap();
    let lag = &o.metrics.backlog["lag inventory/OrderCreated"];
    assert_eq!(lag.samples.len(), 100);
    assert_eq!(lag.interval_s, 12.0);
    // Inventory is down from 2m to 7m: the lag grows through the outage
    // (50 orders/s), peaks just before the restart, and drains after it.
    let at = |t_s: f64| lag.samples[(t_s / lag.interval_s) as usize - 1];
    assert!(at(60.0) < 10);
    assert!(at(240.0) > 5_000);
    assert!(at(408.0) > 14_000, "{}", at(408.0));
    assert!(at(600.0) < 10);
    assert_eq!(lag.max, lag.samples.iter().copied().max().unwrap());
    // On a queue bus, a blocked queue's backlog only grows.
    let poisoned = run(&system(&scenario_text("poison-no-dlq.ron")), 7).unwrap();
    let q = &poisoned.metrics.backlog["queue invoice"];
    assert!(q.samples.windows(2).skip(2).all(|w| w[1] >= w[0]), "{:?}", q.samples);
    assert!(q.max > 9_000);
}

#[test]
fn a_lone_broker_loses_what_it_had_not_flushed() {
    // One broker, one copy, flushed every second: a crash loses up to a
    // second of acknowledged records; flushing every append loses nothing.
    // Inventory is down meanwhile, so it had not read them yet.
    let src = scenario_text("orders-log.ron")
        .replace(
            r#"bus: Log(partitions: 4, latency: Exp(mean: "2ms")),"#,
            r#"bus: Log(partitions: 4, latency: Exp(mean: "2ms"), brokers: (count: 1, acks: Leader, flush: "1s")),"#,
        )
        .replace(
            r#"Crash(node: "inventory-1", at: "2m", down_for: "5m")"#,
            r#"Crash(node: "broker-1", at: "2m00.5s", down_for: "10s"), Crash(node: "inventory-1", at: "1m", down_for: "2m")"#,
        );
    let o = run(&system(&src), 7).unwrap();
    let unflushed = o.metrics.lost_by_reason["unflushed"];
    assert!(unflushed > 0 && unflushed <= 60, "about half a second of ~50 orders/s: {unflushed}");
    assert_eq!(o.metrics.lost, unflushed);
    assert_eq!(o.invariants[0].violations, unflushed, "each lost record is a lost order");
    // Records the consumers had read before the crash took them are not
    // lost: their effects happened.
    let read = run(&system(&src.replace(r#", Crash(node: "inventory-1", at: "1m", down_for: "2m")"#, "")), 7).unwrap();
    assert_eq!(read.metrics.lost, 0);
    assert!(read.all_hold());
    let synced = run(&system(&src.replace(r#", flush: "1s""#, "")), 7).unwrap();
    assert_eq!(synced.metrics.lost, 0);
}

fn with_faults(src: &str, faults: &str) -> String {
    let start = src.find("faults: [").expect("a fault plan");
    let end = start + src[start..].find("],").expect("its end") + 2;
    format!("{}faults: [{faults}],{}", &src[..start], &src[end..])
}

#[test]
fn a_crash_after_the_state_write_loses_a_dual_write_but_not_an_outbox() {
    let fault = r#"CrashAt(node: "order-1", seam: AfterStateWrite, nth: 50, down_for: "5s")"#;
    let dual = with_faults(&scenario_text("dual-write.ron"), fault);
    let outbox = with_faults(&scenario_text("outbox.ron"), fault);
    let d = run(&system(&dual), 1).unwrap();
    assert_eq!(d.invariants[0].violations, 1, "exactly the order being handled");
    let story = d.invariants[0].example.as_ref().unwrap().lines.join("\n");
    assert!(story.contains("CRASHED at seam after-state-write"), "{story}");
    assert_eq!(d.faults.len(), 1);
    assert_eq!(d.faults[0].kind, "crash at after-state-write");
    let o = run(&system(&outbox), 1).unwrap();
    assert!(o.all_hold(), "{:?}", o.invariants);
}

#[test]
fn a_crash_in_the_outbox_relay_publishes_twice() {
    // Between publishing and marking sent: after the restart the relay
    // publishes the same message again (same id), so a plain consumer
    // invoices twice and an idempotent one does not.
    let fault = r#"CrashAt(node: "order-1", seam: InOutboxRelay, nth: 40, down_for: "5s")"#;
    let src = with_faults(&scenario_text("outbox.ron"), fault);
    let plain = run(&system(&src), 1).unwrap();
    assert!(plain.invariants[0].holds());
    assert!(plain.invariants[1].violated(), "duplicate invoices");
    let idempotent = src
        .replace(
            r#"Service(name: "invoice", workers: 4,"#,
            r#"Service(name: "invoice", workers: 4, dedup: Durable(window: 100000),"#,
        )
        .replace(
            r#"Service(name: "inventory", workers: 4, state: Durable,"#,
            r#"Service(name: "inventory", workers: 4, state: Durable, dedup: Durable(window: 100000),"#,
        );
    assert!(run(&system(&idempotent), 1).unwrap().all_hold());
}

#[test]
fn a_crash_after_recording_the_id_but_before_the_effect_loses_the_effect() {
    // The dedup store written outside the effect's transaction: the
    // redelivered message is recognised as done, and the invoice is never sent.
    let src = scenario_text("invoice-idempotent.ron");
    let src = with_faults(&src, r#"CrashAt(node: "invoice-1", seam: AfterDedup, nth: 500, down_for: "5s")"#);
    let o = run(&system(&src), 7).unwrap();
    assert_eq!(o.invariants[0].violations, 1);
    assert!(o.metrics.duplicates_skipped >= 1);
}

#[test]
fn a_crash_after_publishing_but_before_the_commit_redelivers() {
    let src = with_faults(
        &scenario_text("invoice-at-least-once.ron"),
        r#"CrashAt(node: "invoice-1", seam: AfterPublish, nth: 500, down_for: "5s")"#,
    );
    let o = run(&system(&src), 7).unwrap();
    assert!(o.invariants[0].holds());
    assert!(o.invariants[1].violated(), "the invoice of the record being committed is sent again");
}

#[test]
fn a_random_fault_plan_is_drawn_from_the_seed_alone_and_reported() {
    let sys = system(&scenario_text("swarm.ron"));
    let plan = |seed| run(&sys, seed).unwrap().faults;
    let (a, b, c) = (plan(7), plan(7), plan(8));
    assert!(a.len() > 10, "every node crashes now and then: {}", a.len());
    assert_eq!(a, b, "same seed, same schedule");
    assert_ne!(a, c, "another seed, another schedule");
    // The random crashes do not depend on the workload: a different arrival
    // rate leaves their times unchanged (crash points are counted per message,
    // so only the plain crashes are compared).
    let busier = system(&scenario_text("swarm.ron").replace(r#"rate: "50/s""#, r#"rate: "20/s""#));
    let crashes = |f: &Vec<faultline::outcome::AppliedFault>| -> Vec<(String, u64)> {
        f.iter().filter(|x| x.kind == "crash").map(|x| (x.node.clone(), x.from_ns)).collect()
    };
    assert_eq!(crashes(&a), crashes(&run(&busier, 7).unwrap().faults));
}

#[test]
fn the_swarm_holds_for_several_seeds() {
    let sys = system(&scenario_text("swarm.ron"));
    for seed in [1, 2, 3] {
        let o = run(&sys, seed).unwrap();
        assert!(o.all_hold(), "seed {seed}: {:?}", o.invariants);
        assert!(o.faults.iter().any(|f| f.kind.starts_with("crash at")), "seed {seed}: crash points fired");
    }
}

#[test]
fn a_slow_node_delays_but_loses_nothing() {
    let base = scenario_text("orders-log.ron");
    // 3 ms becomes 120 ms: four workers manage 33 of the 50 orders a second.
    let slow = with_faults(&base, r#"Slow(node: "inventory-1", at: "2m", for: "1m", factor: 40.0)"#);
    let calm = with_faults(&base, "");
    let (s, c) = (run(&system(&slow), 7).unwrap(), run(&system(&calm), 7).unwrap());
    assert!(s.all_hold());
    assert_eq!(s.faults[0].kind, "slow x40");
    let (ls, lc) = (&s.metrics.services["inventory"].latency_s, &c.metrics.services["inventory"].latency_s);
    assert!(ls.p99 > 10.0 * lc.p99, "{} vs {}", ls.p99, lc.p99);
    assert!(s.metrics.e2e_latency_s.max > 5.0, "a backlog built up: {}", s.metrics.e2e_latency_s.max);
}

#[test]
fn a_paused_consumer_loses_its_partitions_after_the_session_timeout_and_rejoins_when_it_resumes() {
    let src = with_faults(
        &scenario_text("orders-log.ron").replace(
            r#"Service(name: "inventory", workers: 4,"#,
            r#"Service(name: "inventory", instances: 2, workers: 4,"#,
        ),
        r#"Pause(node: "inventory-1", at: "2m", for: "30s")"#,
    );
    let sys = system(&src);
    let rs = records(&sys, 7);
    let at = |kind: RecordKind| {
        rs.iter().filter(|r| r.kind == kind && r.node == 1).map(|r| r.time.0 / 1_000_000).collect::<Vec<_>>()
    };
    assert_eq!(at(RecordKind::Paused), [120_000]);
    // Session timeout 10 s: its partitions go to inventory-2 at 2m10s...
    assert!(at(RecordKind::Revoked).iter().all(|&t| t == 130_000) && !at(RecordKind::Revoked).is_empty());
    // ... and come back when it resumes at 2m30s and rejoins.
    assert_eq!(at(RecordKind::Resumed), [150_000]);
    assert!(at(RecordKind::Assigned).contains(&150_000));
    let o = run(&sys, 7).unwrap();
    assert!(o.invariants[0].holds(), "nothing lost");
    // Its orders waited the session timeout, not the whole pause.
    assert!((9.0..20.0).contains(&o.metrics.e2e_latency_s.max), "{}", o.metrics.e2e_latency_s.max);
}

#[test]
fn optimistic_reservations_retry_on_conflict_and_locks_serialise() {
    let race = run(&system(&scenario_text("last-item-race.ron")), 7).unwrap();
    let optimistic = run(&system(&scenario_text("last-item-optimistic.ron")), 7).unwrap();
    let lock = run(&system(&scenario_text("last-item-lock.ron")), 7).unwrap();
    // Ten items of three units: the race hands out more than 30.
    assert!(race.invariants[0].counts["units_handed_out"] > 30);
    for o in [&optimistic, &lock] {
        assert_eq!(o.invariants[0].counts["units_handed_out"], 30);
        assert!(o.all_hold());
    }
    assert!(optimistic.metrics.conflicts > 0, "the losers of overlapping writes did their work again");
    assert_eq!(lock.metrics.conflicts, 0);
}

const PINGPONG: &str = r#"Scenario(
    name: "pingpong", duration: "60s",
    bus: Ephemeral(latency: Const("1ms")),
    services: [
        Service(name: "a", workers: 4, consume: (topics: ["Pong"]),
            on: [Accept(entity: "ping", work: Const("1ms"), emit: ["Ping"]),
                 Handle(event: "Pong", work: Const("1ms"), terminal: true)]),
        Service(name: "b", workers: 4, consume: (topics: ["Ping"]),
            on: [Handle(event: "Ping", work: Const("1ms"), emit: ["Pong"])]),
    ],
    workload: Poisson(rate: "10/s", entity: "ping", keys: Sequential, stop: "50s"),
    faults: [FAULT],
    invariants: [NoLostEntities(entity: "ping", deadline_after_heal: "5s")],
)"#;

#[test]
fn a_one_way_partition_delivers_one_way_only() {
    let pp = |fault: &str| run(&system(&PINGPONG.replace("FAULT", fault)), 1).unwrap();
    let calm = pp("");
    // a-1 cannot reach the bus: its pings are lost, so b handles fewer,
    // while nothing addressed to a-1 is lost.
    let out = pp(r#"Partition(groups: [["a-1"], ["bus"]], one_way: true, at: "10s", for: "10s")"#);
    // The bus cannot reach a-1: b still gets every ping, a-1 loses the pongs.
    let back = pp(r#"Partition(groups: [["bus"], ["a-1"]], one_way: true, at: "10s", for: "10s")"#);
    let lost = out.metrics.lost_by_reason["partitioned"];
    assert!(lost > 50, "{lost}");
    assert_eq!(out.metrics.services["b"].handled, calm.metrics.services["b"].handled - lost);
    assert_eq!(back.metrics.services["b"].handled, calm.metrics.services["b"].handled);
    assert!(back.metrics.lost_by_reason["partitioned"] > 50);
    assert_eq!(out.faults[0].node, "a-1 -> bus");
    // Both ways: the union of the two.
    let both = pp(r#"Partition(groups: [["a-1"], ["bus"]], at: "10s", for: "10s")"#);
    assert_eq!(both.faults[0].node, "a-1 <-> bus");
    assert!(both.metrics.lost_by_reason["partitioned"] >= lost);
}

#[test]
fn a_duplicating_link_delivers_twice() {
    let o = run(
        &system(&PINGPONG.replace("FAULT", r#"Link(from: "bus", to: "b-1", duplicate: 1.0, at: "0s", for: "60s")"#)),
        1,
    )
    .unwrap();
    assert_eq!(o.metrics.services["b"].handled, 2 * o.metrics.accepted);
}

#[test]
fn a_lossy_link_with_k_retries_delivers_one_minus_p_to_the_k_plus_one() {
    // The order service's link to the brokers drops 30% of its requests;
    // producers resend up to twice: a record gets through with probability
    // 1 - 0.3^3 = 0.973. Twenty seeds, and the value inside the 95% interval.
    let src = r#"Scenario(
    name: "lossy", duration: "200s",
    bus: Log(partitions: 2, latency: Const("1ms"),
        brokers: (count: 1, acks: Leader, retries: 2, retry_after: "100ms")),
    services: [
        Service(name: "order", workers: 8, on: [Accept(entity: "order", work: Const("1ms"), emit: ["OrderCreated"])]),
        Service(name: "invoice", workers: 8, consume: (topics: ["OrderCreated"]),
            on: [Handle(event: "OrderCreated", work: Const("1ms"), terminal: true)]),
    ],
    workload: Poisson(rate: "10/s", entity: "order", keys: Uniform(100), stop: "190s"),
    faults: [Link(from: "order-1", to: "bus", drop: 0.3, at: "0s", for: "200s")],
)"#;
    let sys = system(src);
    let fractions: Vec<f64> = (1..=20)
        .map(|seed| {
            let o = run(&sys, seed).unwrap();
            1.0 - o.metrics.lost_by_reason["producer-gave-up"] as f64 / o.metrics.published as f64
        })
        .collect();
    let n = fractions.len() as f64;
    let mean = fractions.iter().sum::<f64>() / n;
    let sd = (fractions.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let half = 2.093 * sd / n.sqrt();
    let expected = 1.0 - 0.3f64.powi(3);
    assert!((mean - expected).abs() <= half, "{mean} +- {half} against {expected}");
}

#[test]
fn clock_skew_fires_a_deadline_early() {
    // The Delayed service completes each entity by a 2 s timer; with its
    // clock running at half the real time, the timers fire after 1 s.
    let src = with_faults(
        &SLOW.replace("BUS", r#"Log(partitions: 1, latency: Const("1ms"))"#),
        r#"ClockSkew(node: "back-1", factor: 0.5, at: "0s", for: "60s")"#,
    );
    let mut sys = system(&src);
    let done = sys.names.effect("done");
    let delay = SimDuration::from_secs(2);
    sys.services[1].behaviour = Arc::new(Delayed { work: Dist::Const(SimDuration::ZERO), delay, done });
    let rs = records(&sys, 1);
    let terminals: Vec<&Record> = rs.iter().filter(|r| r.kind == RecordKind::Terminal).collect();
    assert!(!terminals.is_empty());
    for r in terminals {
        let req = rs.iter().find(|q| q.kind == RecordKind::Request && q.entity == r.entity).unwrap();
        assert_eq!(r.time.0 - req.time.0, 1_002_000_000);
    }
    assert_eq!(run(&sys, 1).unwrap().faults[0].kind, "clock skew x0.5");
}

#[test]
fn bounded_amplification_counts_what_redeliveries_add() {
    let base = scenario_text("invoice-at-least-once.ron");
    let with = |factor: &str| {
        base.replace(
            "NoDuplicateEffects(effect: \"invoice-sent\"),",
            &format!("NoDuplicateEffects(effect: \"invoice-sent\"), BoundedAmplification(service: \"invoice\", factor: {factor}),"),
        )
    };
    let strict = run(&system(&with("1.0")), 7).unwrap();
    let v = &strict.invariants[2];
    assert!(v.violated(), "the crash's redeliveries made invoice handle more than one message per order");
    assert!(v.counts["handled"] > v.counts["accepted"]);
    assert!(v.example.is_some());
    let loose = run(&system(&with("1.01")), 7).unwrap();
    assert!(loose.invariants[2].holds());
}

#[test]
fn random_pauses_and_slowdowns_are_drawn_per_seed_too() {
    let o = run(&system(&scenario_text("swarm.ron")), 7).unwrap();
    let kinds: Vec<&str> = o.faults.iter().map(|f| f.kind.as_str()).collect();
    assert!(kinds.contains(&"pause"), "{kinds:?}");
    assert!(kinds.contains(&"slow x10"), "{kinds:?}");
    assert!(kinds.contains(&"link"), "{kinds:?}");
    let bad = scenario_text("swarm.ron")
        .replace(r#"RandomPauses(nodes: ["inventory-1","#, r#"RandomPauses(nodes: ["broker-1", "inventory-1","#);
    let err = scenario::parse("x.ron", &bad).unwrap_err().to_string();
    assert!(err.contains("only crashes can hit brokers"), "{err}");
}

#[test]
fn a_transactional_consumer_that_commits_past_its_position_fetches_on() {
    // After a crash, a transactional consumer resumes from its committed
    // offset with its record of what it did: finishing the first record can
    // move the commit past records it has not fetched again. It used to
    // fetch below its commit and index out of bounds (seeds 3, 5, 24).
    let src = scenario_text("invoice-transactional.ron").replace("sigma: 1.0", "sigma: 1.5");
    let sys = system(&src);
    for seed in [3, 5, 24] {
        let o = run(&sys, seed).unwrap();
        assert!(o.invariants[1].holds(), "seed {seed}: {:?}", o.invariants[1]);
        assert_eq!(o.metrics.lost, 0);
    }
}
