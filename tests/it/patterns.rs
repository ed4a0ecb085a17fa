//! The reliability patterns, each next to its broken twin under the same
//! seed and faults: synchronous calls and their defences, sagas, state
//! machines with deadlines, business rules.

use faultline::service::Backoff;
use faultline::sim::{SimDuration, run};
use faultline::trace::{Record, RecordKind};

use crate::support::{records, scenario_text, system};

/// A caller `a` that calls `b` for every request; CALL is the call's
/// settings, FAULT the fault plan.
const CALLER: &str = r#"Scenario(
    name: "caller", duration: "60s",
    bus: Ephemeral(latency: Const("1ms")),
    services: [
        Service(name: "a", workers: 50,
            on: [Accept(entity: "req", work: Const("1ms"),
                        call: (service: "b", request: "Get", timeout: "100ms", CALL on_failure: ["Failed"]),
                        terminal: true)]),
        Service(name: "b", workers: 4, on: [Handle(event: "Get", work: WORK)]),
    ],
    workload: Poisson(rate: "RATE", entity: "req", keys: Sequential, stop: "50s"),
    faults: [FAULT],
    invariants: [NoLostEntities(entity: "req", deadline_after_heal: "5s")],
)"#;

fn caller(call: &str, work: &str, rate: &str, fault: &str) -> faultline::system::System {
    system(&CALLER.replace("CALL", call).replace("WORK", work).replace("RATE", rate).replace("FAULT", fault))
}

fn count(rs: &[Record], kind: RecordKind) -> usize {
    rs.iter().filter(|r| r.kind == kind).count()
}

#[test]
fn plain_retries_amplify_a_slowdown_and_backoff_with_a_breaker_does_not() {
    let run_file = |f: &str| run(&system(&scenario_text(f)), 1).unwrap();
    let storm = run_file("retry-storm.ron");
    let calm = run_file("circuit-breaker.ron");
    // Same workload, same slowdown.
    assert_eq!(storm.metrics.requests, calm.metrics.requests);
    assert_eq!(storm.faults, calm.faults);
    let ratio = |o: &faultline::outcome::Outcome| o.invariants[0].counts["per_entity_x1000"];
    assert!(ratio(&storm) > 3_000, "{}", ratio(&storm));
    assert!(ratio(&calm) < 1_200, "{}", ratio(&calm));
    assert!(storm.invariants[0].violated() && calm.all_hold());
    // The storm outlives the slowdown: Payment's queue never drains, so
    // orders still fail after it ends; with the breaker they succeed again.
    assert!(storm.metrics.calls.timeouts > 10 * calm.metrics.calls.timeouts.max(1));
    assert!(calm.metrics.calls.refused > 0, "the breaker opened");
    // Idempotent Payment: retries never charge a card twice, in either design.
    assert!(storm.invariants[1].holds() && calm.invariants[1].holds());
}

#[test]
fn retries_back_off_exponentially_up_to_the_cap_with_jitter_below_it() {
    let ms = |n: u64| SimDuration(n * 1_000_000);
    let b = Backoff { base: ms(100), factor: 2.0, max: ms(1000), jitter: 0.0 };
    let waits: Vec<u64> = (1..=6).map(|k| b.wait(k, 0.7).0 / 1_000_000).collect();
    assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
    let full = Backoff { jitter: 1.0, ..b };
    assert_eq!(full.wait(3, 0.0), ms(400));
    assert_eq!(full.wait(3, 0.25), ms(300));
    assert_eq!(Backoff::NONE.wait(5, 0.5), SimDuration::ZERO);
}

#[test]
fn a_breaker_opens_after_consecutive_failures_and_a_trial_call_closes_it() {
    // b is cut off from a for 10s: every attempt times out.
    let sys = caller(
        r#"breaker: (failures: 3, open_for: "2s"),"#,
        r#"Const("1ms")"#,
        "20/s",
        r#"Partition(groups: [["a-1"], ["b-1"]], at: "10s", for: "10s")"#,
    );
    let rs = records(&sys, 1);
    assert!(count(&rs, RecordKind::CallTimedOut) >= 3);
    // The third failure in a row opens it: the next attempt is refused, and
    // none is sent for the open period (attempts in flight may still end).
    let third = rs.iter().filter(|r| r.kind == RecordKind::CallTimedOut).nth(2).unwrap().time;
    let next = |kind| rs.iter().find(|r| r.kind == kind && r.time > third).unwrap();
    let (refused, sent) = (next(RecordKind::CallRefused), next(RecordKind::CallSent));
    assert_eq!(refused.aux, 1, "refused because the breaker is open");
    assert!(refused.time < sent.time);
    assert!(sent.time.0 >= third.0 + 2_000_000_000, "{} {}", third, sent.time);
    // While the partition lasts, the breaker lets one trial through every
    // open period (2s), not every request (20/s).
    let in_partition = |r: &&Record| r.time.0 >= 11_000_000_000 && r.time.0 < 20_000_000_000;
    let trials = rs.iter().filter(in_partition).filter(|r| r.kind == RecordKind::CallSent).count();
    assert!((3..=6).contains(&trials), "{trials}");
    // After the heal a trial succeeds and calls flow again.
    let late_ok = rs.iter().filter(|r| r.time.0 > 23_000_000_000 && r.kind == RecordKind::CallReplied).count();
    let late_refused = rs.iter().filter(|r| r.time.0 > 23_000_000_000 && r.kind == RecordKind::CallRefused).count();
    assert!(late_ok > 400 && late_refused == 0, "{late_ok} {late_refused}");
}

#[test]
fn a_rate_limit_caps_attempts_per_second() {
    let sys = caller(r#"rate_limit: (per_second: 5.0, burst: 2),"#, r#"Const("1ms")"#, "50/s", "");
    let rs = records(&sys, 1);
    let sent = count(&rs, RecordKind::CallSent);
    // 50s of arrivals at 5 tokens a second, plus the first burst.
    assert!((240..=252).contains(&sent), "{sent}");
    assert!(count(&rs, RecordKind::CallRefused) > 2_000);
}

#[test]
fn a_bulkhead_bounds_the_attempts_in_flight() {
    let sys = caller("bulkhead: 3,", r#"Const("80ms")"#, "50/s", "");
    let rs = records(&sys, 1);
    let (mut in_flight, mut most) = (0i64, 0i64);
    for r in &rs {
        match r.kind {
            RecordKind::CallSent => in_flight += 1,
            RecordKind::CallReplied | RecordKind::CallTimedOut => in_flight -= 1,
            _ => {}
        }
        most = most.max(in_flight);
    }
    assert_eq!(most, 3);
    assert!(count(&rs, RecordKind::CallRefused) > 100);
}

#[test]
fn a_call_times_out_when_the_callee_is_slow_and_retries_reuse_the_request_id() {
    let sys = caller("retries: 2,", r#"Const("150ms")"#, "1/s", "");
    let rs = records(&sys, 1);
    let sent: Vec<&Record> = rs.iter().filter(|r| r.kind == RecordKind::CallSent).collect();
    let first = sent[0];
    let retries: Vec<&&Record> = sent.iter().filter(|r| r.msg == first.msg).collect();
    assert_eq!(retries.len(), 3, "one attempt and two retries, all with the same id");
    assert_eq!(retries.iter().map(|r| r.aux >> 32).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(count(&rs, RecordKind::CallFailed) > 0);
    // The callee still did every attempt's work: nobody cancels it.
    let handled_first = rs.iter().filter(|r| r.kind == RecordKind::Handled && r.msg == first.msg).count();
    assert_eq!(handled_first, 3);
}

fn bundled(name: &str) -> faultline::outcome::Outcome {
    run(&system(&scenario_text(name)), 1).unwrap()
}

#[test]
fn an_orchestrator_with_an_outbox_resumes_every_saga_and_a_dual_write_leaves_some_half_done() {
    let sound = bundled("saga-compensation.ron");
    let broken = bundled("saga-dual-write.ron");
    assert_eq!(sound.metrics.requests, broken.metrics.requests);
    assert!(sound.all_hold(), "{:?}", sound.invariants);
    let saga = &sound.invariants[0];
    // Both endings happen: payment fails for some orders, shipping for others.
    assert!(saga.counts["done"] > 5_000 && saga.counts["compensated"] > 1_000, "{:?}", saga.counts);
    // The orchestrator did crash mid-saga, more than once.
    assert!(sound.faults.iter().filter(|f| f.kind.contains("after-state-write")).count() > 5);
    let half = &broken.invariants[0];
    assert!(half.violated() && half.counts["half_done"] > 0);
    let story = half.example.as_ref().unwrap();
    assert!(story.lines.iter().any(|l| l.contains("CRASHED at seam after-state-write")), "{story:?}");
    assert!(story.lines.last().unwrap().contains("stopped half way"), "{story:?}");
}

#[test]
fn a_choreographed_saga_ends_every_order_with_fewer_messages() {
    let chore = bundled("saga-choreography.ron");
    let orch = bundled("saga-compensation.ron");
    assert!(chore.all_hold(), "{:?}", chore.invariants);
    assert!(chore.invariants[0].counts["compensated"] > 1_000);
    assert!(chore.metrics.published * 10 < orch.metrics.published * 7);
}

#[test]
fn a_failed_attempt_rolls_back_the_dedup_record_so_the_retry_is_not_skipped() {
    let sys = system(
        r#"Scenario(name: "flaky", duration: "60s",
        bus: Log(partitions: 2, latency: Const("1ms")),
        services: [
            Service(name: "a", on: [Accept(entity: "job", work: Const("1ms"), emit: ["Job"])]),
            Service(name: "b", workers: 2, state: Durable, dedup: Durable(window: 100000),
                consume: (topics: ["Job"]),
                on: [Handle(event: "Job", work: Const("2ms"), effect: "done", terminal: true, flaky: 0.5)]),
        ],
        workload: Poisson(rate: "20/s", entity: "job", keys: Sequential, stop: "50s"),
        invariants: [NoLostEntities(entity: "job", deadline_after_heal: "5s"),
                     NoDuplicateEffects(effect: "done")],
    )"#,
    );
    let rs = records(&sys, 3);
    let failed = count(&rs, RecordKind::Failed);
    assert!(failed > 300, "{failed}");
    assert_eq!(count(&rs, RecordKind::Skipped), 0);
    let o = run(&sys, 3).unwrap();
    assert!(o.all_hold(), "{:?}", o.invariants);
}

#[test]
fn durable_timers_survive_a_crash_and_timers_in_memory_do_not() {
    let durable = bundled("escrow-deadlines.ron");
    let volatile = bundled("escrow-volatile-timers.ron");
    assert!(durable.all_hold(), "{:?}", durable.invariants);
    let stuck = &volatile.invariants[0];
    assert!(stuck.name.starts_with("terminal-within(escrow"));
    assert!(stuck.violated() && stuck.counts["lost"] > 20, "{:?}", stuck.counts);
    // The story ends with the crash, the deadline it took with it, the restart.
    let story = stuck.example.as_ref().unwrap();
    let n = story.lines.len();
    assert!(story.lines[n - 4].contains("escrow-1 CRASHED"), "{story:?}");
    assert!(story.lines[n - 3].contains("LOST: escrow-1 crashed while holding it"), "{story:?}");
    assert!(story.lines[n - 3].contains("timer#"), "{story:?}");
    assert!(volatile.metrics.lost_by_reason["crashed-while-held"] > 0);
    assert_eq!(durable.metrics.lost, 0, "durable timers are set again, not lost");
}

/// (entity, time, from, to) of every state-machine move.
fn transitions(rs: &[Record], names: &faultline::system::Names) -> Vec<(u64, u64, String, String)> {
    rs.iter()
        .filter(|r| r.kind == RecordKind::Transition)
        .map(|r| {
            let (from, to) = ((r.aux >> 32) as u16, r.aux as u16);
            (r.entity, r.time.0, names.state_name(from).to_string(), names.state_name(to).to_string())
        })
        .collect()
}

#[test]
fn a_state_machine_ignores_late_messages_and_its_deadlines_follow_its_clock() {
    let sys = system(&scenario_text("escrow-deadlines.ron"));
    let rs = records(&sys, 1);
    let moves = transitions(&rs, &sys.names);
    // Nothing leaves a terminal state, though late signatures arrive.
    assert!(moves.iter().all(|(_, _, from, _)| from != "closed" && from != "cancelled"));
    let late_signatures = rs
        .iter()
        .filter(|r| r.kind == RecordKind::Ignored && r.aux == u64::from(sys.names.find_kind("BuyerSigned").unwrap().0))
        .filter(|r| moves.iter().any(|(e, t, _, to)| *e == r.entity && *t < r.time.0 && to == "cancelled"))
        .count();
    assert!(late_signatures > 0);
    // The buyer's deadline is 2 days; under the clock skew (x0.5, days 10
    // to 12) it passes after 1 day.
    let day = 86_400_000_000_000u64;
    let mut normal = 0;
    let mut early = 0;
    for (e, t, from, to) in &moves {
        if from != "awaiting-buyer" || to != "cancelled" {
            continue;
        }
        let entered = moves.iter().find(|(x, _, _, to)| x == e && to == "awaiting-buyer").unwrap().1;
        let waited = t - entered;
        if (10 * day..11 * day).contains(&entered) {
            assert_eq!(waited, day, "entity {e}");
            early += 1;
        } else if !(3 * day..6 * day).contains(&entered) && !(10 * day..12 * day).contains(&entered) {
            assert_eq!(waited, 2 * day, "entity {e}");
            normal += 1;
        }
    }
    assert!(early > 0 && normal > 10, "{early} {normal}");
}

#[test]
fn funds_that_arrive_after_the_deadline_must_be_refunded() {
    // Without the handler that refunds late deposits, held money stays held.
    let text = scenario_text("escrow-deadlines.ron").replace("from: [\"cancelled\"]", "from: [\"closed\"]");
    let o = run(&system(&text), 1).unwrap();
    let rule = &o.invariants[1];
    assert_eq!(rule.name, "funds-held leads-to funds-released or funds-refunded within 1d00h00m00.000s");
    assert!(rule.violated() && rule.counts["never"] > 0, "{:?}", rule.counts);
    let end = rule.example.as_ref().unwrap().lines.last().unwrap();
    assert!(end.contains("funds-held happened to escrow") && end.contains("never followed"), "{end}");
}

#[test]
fn a_synchronous_call_refuses_orders_during_an_outage_and_a_message_delays_them() {
    let sync = bundled("checkout-sync.ron");
    let not_sync = bundled("checkout-async.ron");
    assert_eq!(sync.metrics.requests, not_sync.metrics.requests);
    // Sync: nothing waits, but the outage's orders are never paid.
    let paid = &sync.invariants[0];
    assert_eq!(paid.name, "accepted leads-to OrderPaid within 2m00.000s");
    let failed = sync.metrics.calls.failed;
    assert!(paid.violated() && paid.violations == failed && (2_500..3_500).contains(&failed), "{failed}");
    assert!(sync.metrics.e2e_latency_s.max < 2.0);
    // Async: every order is paid, the outage's a minute late.
    assert!(not_sync.all_hold(), "{:?}", not_sync.invariants);
    assert!(not_sync.metrics.e2e_latency_s.max > 55.0);
    assert!(not_sync.metrics.calls.is_empty());
}
