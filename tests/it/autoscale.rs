//! The autoscaler: Kubernetes' HPA formula within its bounds, scale-up at
//! once and scale-down after the stabilization window, new instances in
//! their consumer group (a rebalance) and queue, removed ones drained
//! first, and what a slot keeps while it is not running.

use faultline::outcome::{Outcome, ScalingMetrics};
use faultline::sim::{SimTime, run};
use faultline::trace::RecordKind;

use crate::support::{records, system};

/// Requests to `entry` (round robin over its instances, 1 worker each,
/// 50 ms of work) at `rate` regular arrivals per second, with `autoscale`.
fn entry_only(rate: &str, instances: u32, autoscale: &str, duration: &str) -> String {
    format!(
        r#"Scenario(
    name: "autoscale-test",
    duration: "{duration}",
    bus: Ephemeral(latency: Const("1ms")),
    services: [Service(name: "api", instances: {instances}, queue: 100000, routing: RoundRobin,
        autoscale: Some({autoscale}),
        on: [Accept(entity: "order", work: Const("50ms"), terminal: true)])],
    workload: Regular(rate: "{rate}", entity: "order", keys: Sequential),
    invariants: [NoLostEntities(entity: "order", deadline_after_heal: "1m")],
)"#
    )
}

fn scaling<'a>(o: &'a Outcome, service: &str) -> &'a ScalingMetrics {
    o.metrics.services[service].scaling.as_ref().expect("the service autoscales")
}

/// The count asked for after the last change.
fn last(s: &ScalingMetrics, initial: u32) -> u32 {
    s.changes.last().map_or(initial, |c| c.instances)
}

#[test]
fn the_count_follows_the_hpa_formula_and_its_tolerance() {
    // 42/s x 50 ms keeps 2.1 workers busy. Starting at 4 (0.525 each,
    // target 0.5) the ratio 1.05 is within the default tolerance of 0.1:
    // no change. Without tolerance: ceil(2.1 / 0.5) = 5.
    let within = run(&system(&entry_only("42/s", 4, "Autoscale(min: 1, max: 10, target: 0.5)", "3m")), 1).unwrap();
    assert!(scaling(&within, "api").changes.is_empty(), "{:?}", scaling(&within, "api"));
    let strict = entry_only("42/s", 4, "Autoscale(min: 1, max: 10, target: 0.5, tolerance: 0.0)", "3m");
    let strict = run(&system(&strict), 1).unwrap();
    let s = scaling(&strict, "api");
    assert_eq!(s.changes[0].instances, 5, "{s:?}");
    assert!((s.changes[0].at_s - 15.0).abs() < 1e-9, "the first decision is one period in: {s:?}");
    assert_eq!(last(s, 4), 5, "then 2.1 / 5 = 0.42 is a ratio of 0.84: scale-in waits for the window: {s:?}");
}

#[test]
fn a_saturated_service_scales_up_at_once_within_its_bounds() {
    // 100/s x 50 ms is 5 busy workers: at target 0.5 it wants 10; max is 6.
    let src = entry_only("100/s", 1, "Autoscale(min: 1, max: 6, target: 0.5, startup: \"5s\")", "5m");
    let sys = system(&src);
    let o = run(&sys, 1).unwrap();
    let s = scaling(&o, "api");
    // One saturated instance asks for ceil(1 / 0.5) = 2, then 2 for 4, then
    // the cap of 6 (the HPA's policy allows at most +4 or x2 a period).
    let asked: Vec<u32> = s.changes.iter().map(|c| c.instances).collect();
    assert_eq!(asked, [2, 4, 6], "{s:?}");
    assert_eq!((s.instances_min, s.instances_max), (1, 6), "{s:?}");
    assert_eq!(s.scale_ups, 3, "{s:?}");
    // Running: 1 for 15 s, 2 for 15 s, 4 for 15 s, then 6 to the end (5m).
    let at: Vec<f64> = s.changes.iter().map(|c| c.at_s).collect();
    assert_eq!(at, [15.0, 30.0, 45.0]);
    assert!((s.instances_mean - (15.0 + 30.0 + 60.0 + 255.0 * 6.0) / 300.0).abs() < 1e-9, "{s:?}");
    // Each new instance is ready its start-up after it was asked for, and
    // then takes work.
    let rs = records(&sys, 1);
    let asked_at: Vec<u64> = rs.iter().filter(|r| r.kind == RecordKind::Provisioned).map(|r| r.time.0).collect();
    let ready_at: Vec<u64> = rs.iter().filter(|r| r.kind == RecordKind::ScaledUp).map(|r| r.time.0).collect();
    assert_eq!(asked_at.len(), 5);
    assert_eq!(ready_at, asked_at.iter().map(|t| t + 5_000_000_000).collect::<Vec<_>>());
    for node in 1..6u32 {
        let ready = rs.iter().find(|r| r.kind == RecordKind::ScaledUp && r.node == node).unwrap().time;
        let first = rs.iter().find(|r| r.kind == RecordKind::Handled && r.node == node).expect("it takes work").time;
        assert!(first >= ready, "api-{} worked before it was ready", node + 1);
    }
    assert_eq!(o.metrics.lost, 0);
}

#[test]
fn scale_down_waits_for_the_stabilization_window_and_drains() {
    // 100/s for 2 minutes, then 10/s: the window of 1 minute keeps the high
    // count for a minute past the last high recommendation.
    let src = r#"Scenario(
    name: "autoscale-down",
    duration: "6m",
    bus: Queue(latency: Const("1ms")),
    services: [
        Service(name: "order", workers: 64, on: [Accept(entity: "order", work: Const("1ms"), emit: ["Charge"])]),
        Service(name: "payments", instances: 6, workers: 1, consume: (topics: ["Charge"], prefetch: 10),
            autoscale: Some(Autoscale(min: 1, max: 6, target: 0.5, stabilization: "1m")),
            on: [Handle(event: "Charge", work: Const("50ms"), effect: "charged", terminal: true)]),
    ],
    workload: Regular(rate: "100/s", entity: "order", keys: Sequential,
        shape: Steps([Step(at: "2m", factor: 0.1)])),
    invariants: [NoLostEntities(entity: "order", deadline_after_heal: "1m"), NoDuplicateEffects(effect: "charged")],
)"#;
    let sys = system(src);
    let o = run(&sys, 3).unwrap();
    let s = scaling(&o, "payments");
    let first_down = s.changes.iter().find(|c| c.instances < 6).expect("it scales down");
    // The last high recommendation is at 2m (or 2m15s, measuring a window
    // that was mostly high), so nothing lower before 3m.
    assert!(first_down.at_s >= 180.0, "{s:?}");
    assert_eq!(last(s, 6), 1, "0.5 workers busy at target 0.5 is one instance: {s:?}");
    assert_eq!(s.scale_ups, 0, "{s:?}");
    // Draining loses and repeats nothing: a cancelled consumer finishes and
    // acks what it holds before it leaves.
    assert!(o.invariants.iter().all(|v| v.status == faultline::check::Status::Holds), "{:?}", o.invariants);
    assert_eq!((o.metrics.lost, o.metrics.redelivered), (0, 0));
    let rs = records(&sys, 3);
    for r in rs.iter().filter(|r| r.kind == RecordKind::ScaledDown) {
        let drained = rs.iter().rfind(|d| d.kind == RecordKind::Draining && d.node == r.node && d.time <= r.time);
        let drained = drained.expect("a ready instance drains before it goes").time;
        let handled_after = rs.iter().filter(|h| h.node == r.node && h.kind == RecordKind::Handled && h.time > r.time);
        assert_eq!(handled_after.count(), 0, "node {} worked after it left", r.node);
        let received = rs.iter().filter(|h| h.node == r.node && h.kind == RecordKind::Enqueued);
        let late = received.filter(|h| h.time > drained + faultline::sim::SimDuration::from_millis(1)).count();
        assert_eq!(late, 0, "node {}: the queue kept delivering to a draining consumer", r.node);
    }
}

#[test]
fn new_instances_join_the_consumer_group_in_one_rebalance() {
    let src = r#"Scenario(
    name: "autoscale-log",
    duration: "3m",
    bus: Log(partitions: 12, latency: Const("1ms")),
    services: [
        Service(name: "order", workers: 64, on: [Accept(entity: "order", work: Const("1ms"), emit: ["OrderCreated"])]),
        Service(name: "invoice", workers: 1, consume: (topics: ["OrderCreated"]),
            autoscale: Some(Autoscale(min: 1, max: 4, target: 0.9)),
            on: [Handle(event: "OrderCreated", work: Const("20ms"), effect: "invoiced", terminal: true)]),
    ],
    workload: Regular(rate: "100/s", entity: "order", keys: Sequential),
    invariants: [NoLostEntities(entity: "order", deadline_after_heal: "1m")],
)"#;
    let sys = system(src);
    let rs = records(&sys, 1);
    // invoice-1 is node 1; the autoscaler adds invoice-2 (and more).
    let ready = rs.iter().find(|r| r.kind == RecordKind::ScaledUp).expect("it scales up");
    let at = ready.time;
    let moved: Vec<_> = rs.iter().filter(|r| r.time == at && r.kind == RecordKind::Assigned).collect();
    assert!(!moved.is_empty(), "a rebalance gives the new member partitions");
    let joined: Vec<u32> =
        rs.iter().filter(|r| r.time == at && r.kind == RecordKind::ScaledUp).map(|r| r.node).collect();
    for n in &joined {
        assert!(moved.iter().any(|r| r.node == *n), "invoice-{} got no partition", n);
    }
    // Every member joining at once is in the same rebalance: no partition
    // is assigned twice at that instant.
    let mut parts: Vec<u64> = moved.iter().map(|r| r.aux).collect();
    parts.sort_unstable();
    let n = parts.len();
    parts.dedup();
    assert_eq!(parts.len(), n, "one rebalance for the members that joined together");
    // The new members consume: records handled on them.
    for n in &joined {
        assert!(rs.iter().any(|r| r.node == *n && r.kind == RecordKind::Handled && r.time > at));
    }
}

#[test]
fn a_slot_removed_while_down_never_comes_back_on_its_own() {
    // Three instances with little to do: the first decision (15 s) asks for
    // one. api-3 is down then (crashed 10 s to 60 s): removed at once, it
    // stays down when its crash heals; api-2 drains and leaves.
    let src = entry_only("2/s", 3, "Autoscale(min: 1, max: 3, target: 0.5)", "2m").replace(
        "invariants:",
        r#"faults: [Crash(node: "api-3", at: "10s", down_for: "50s")],
    invariants:"#,
    );
    let sys = system(&src);
    let rs = records(&sys, 1);
    let (api2, api3) = (1u32, 2u32);
    let gone = |n: u32| rs.iter().find(|r| r.kind == RecordKind::ScaledDown && r.node == n).map(|r| r.time);
    assert_eq!(gone(api3), Some(SimTime::ZERO + faultline::sim::SimDuration::from_secs(15)));
    assert!(gone(api2).is_some());
    assert!(!rs.iter().any(|r| r.node == api3 && r.kind == RecordKind::Restart), "a removed slot restarted");
    assert!(!rs.iter().any(|r| r.node == api3 && r.kind == RecordKind::Handled && r.time.0 > 15_000_000_000));
    let o = run(&sys, 1).unwrap();
    assert_eq!(last(scaling(&o, "api"), 3), 1);
}

#[test]
fn by_key_routing_spreads_keys_over_the_ready_instances_only() {
    let src = entry_only("100/s", 1, "Autoscale(min: 1, max: 6, target: 0.5)", "2m").replace("RoundRobin", "ByKey");
    let sys = system(&src);
    let o = run(&sys, 1).unwrap();
    let per: Vec<u64> = o.metrics.services["api"].instances.iter().map(|i| i.handled).collect();
    // All six slots end up serving; each took a fair share of the keys it
    // was ready for.
    assert!(per.iter().all(|&h| h > 0), "{per:?}");
    assert_eq!(o.metrics.lost, 0);
}

#[test]
fn bad_autoscalers_are_refused_where_they_are_written() {
    for (autoscale, instances, message) in [
        ("Autoscale(min: 3, max: 2, target: 0.5)", 3, "max"),
        ("Autoscale(min: 1, max: 4, target: 0.5)", 5, "outside its 1..=4"),
        ("Autoscale(min: 1, max: 4, target: 1.5)", 1, "target utilisation 1.5 is not in (0, 1]"),
        ("Autoscale(min: 1, max: 4, target: 0.5, tolerance: 1.0)", 1, "tolerance 1 is not in [0, 1)"),
        ("Autoscale(min: 1, max: 4, target: 0.5, every: \"0s\")", 1, "period 0ns is under a second"),
        ("Autoscale(min: 1, max: 4, target: 0.5, every: \"1ns\")", 1, "period 1ns is under a second"),
    ] {
        let src = entry_only("1/s", instances, autoscale, "1m");
        let e = faultline::scenario::parse("test.ron", &src).err().unwrap_or_else(|| panic!("{autoscale} accepted"));
        let text = e.to_string();
        assert!(text.contains(message), "{autoscale}: {text}");
        assert!(text.contains("test.ron:"), "{text}");
    }
}

#[test]
fn a_built_system_autoscales_as_its_file_does() {
    use faultline::builder::{self, Builder};
    use faultline::scenario::schema::Keys;
    let b = Builder::new("built-autoscale", "2m")
        .bus(builder::ephemeral(builder::constant("1ms")))
        .service(
            builder::service("api")
                .autoscale(1, 6, 0.5)
                .on(builder::accept("order", builder::constant("50ms")).terminal()),
        )
        .workload(builder::poisson("100/s", "order", Keys::Sequential));
    let text = b.to_ron();
    assert!(text.contains("autoscale: Autoscale(") && text.contains("max: 6,"), "{text}");
    let from_file = run(&system(&text), 2).unwrap();
    let built = b.build().unwrap();
    assert_eq!(built.services[0].instances, 6, "a slot per instance it may have");
    let o = run(&built, 2).unwrap();
    assert_eq!(o.fingerprint, from_file.fingerprint);
    assert!(scaling(&o, "api").instances_max > 1, "{:?}", scaling(&o, "api"));
}

#[test]
fn a_system_whose_autoscaler_cannot_work_is_refused_before_it_runs() {
    let mut sys = system(&entry_only("1/s", 2, "Autoscale(min: 1, max: 4, target: 0.5)", "1m"));
    let good = sys.services[0].autoscale.unwrap();
    for bad in [
        faultline::system::Autoscale { initial: 5, ..good },
        faultline::system::Autoscale { min: 0, ..good },
        faultline::system::Autoscale { target: 0.0, ..good },
        faultline::system::Autoscale { every: faultline::sim::SimDuration::ZERO, ..good },
    ] {
        sys.services[0].autoscale = Some(bad);
        let e = run(&sys, 1).err().unwrap_or_else(|| panic!("{bad:?} ran"));
        assert!(e.to_string().contains("`api`'s autoscaler"), "{e}");
    }
}

#[test]
fn one_decision_adds_at_most_four_or_doubles() {
    // One saturated instance at target 0.1 asks for 10: the HPA's default
    // policy allows max(2 x 1, 1 + 4) = 5 in one period.
    let src = entry_only("100/s", 1, "Autoscale(min: 1, max: 10, target: 0.1)", "20s");
    let o = run(&system(&src), 1).unwrap();
    assert_eq!(scaling(&o, "api").changes[0].instances, 5, "{:?}", scaling(&o, "api"));
}

/// Two invoice instances on two partitions, with little to do: the first
/// decision (15 s) removes invoice-2, whose partition moves to invoice-1.
fn leaving_log_consumer(commit: &str) -> String {
    format!(
        r#"Scenario(
    name: "autoscale-leave",
    duration: "1m",
    bus: Log(partitions: 2, latency: Const("1ms")),
    services: [
        Service(name: "order", workers: 8, on: [Accept(entity: "order", work: Const("1ms"), emit: ["OrderCreated"])]),
        Service(name: "invoice", instances: 2, consume: (topics: ["OrderCreated"], commit: {commit}),
            autoscale: Some(Autoscale(min: 1, max: 2, target: 0.5)),
            on: [Handle(event: "OrderCreated", work: Const("5ms"), effect: "invoiced", terminal: true)]),
    ],
    workload: Regular(rate: "20/s", entity: "order", keys: Sequential),
    invariants: [NoLostEntities(entity: "order", deadline_after_heal: "10s"), NoDuplicateEffects(effect: "invoiced")],
)"#
    )
}

#[test]
fn a_leaving_consumer_commits_what_it_processed_and_fetches_nothing_new() {
    for commit in ["AfterProcess", r#"Auto(every: "5s")"#] {
        let sys = system(&leaving_log_consumer(commit));
        let o = run(&sys, 1).unwrap();
        assert!(
            o.invariants.iter().all(|v| v.status == faultline::check::Status::Holds),
            "{commit}: the partition's next owner redid what the leaver had processed: {:?}",
            o.invariants
        );
        let rs = records(&sys, 1);
        let invoice2 = 2u32;
        let draining = rs.iter().find(|r| r.kind == RecordKind::Draining && r.node == invoice2).expect("it drains");
        let gone = rs.iter().find(|r| r.kind == RecordKind::ScaledDown && r.node == invoice2).expect("it leaves");
        // A fetch under way at the drain's start arrives within 1 ms.
        let fetched_late = rs
            .iter()
            .any(|r| r.node == invoice2 && r.kind == RecordKind::Enqueued && r.time.0 > draining.time.0 + 1_000_000);
        assert!(!fetched_late, "{commit}: a draining consumer fetched");
        let revoked = rs.iter().any(|r| r.kind == RecordKind::Revoked && r.node == invoice2 && r.time == gone.time);
        assert!(revoked, "{commit}: it leaves its group when it goes");
    }
}

#[test]
fn a_busy_consumer_drains_what_it_fetched_and_then_leaves() {
    // Quiet until 14.9 s, then 1,000/s: at 15 s the decision (over a quiet
    // window) removes invoice-2 while it holds a backlog of records, and
    // its partition keeps filling. It must stop fetching, finish, and go.
    let src = leaving_log_consumer("AfterProcess")
        .replace(r#"keys: Sequential)"#, r#"keys: Sequential, shape: Steps([Step(at: "14.9s", factor: 50.0)]))"#);
    let sys = system(&src);
    let rs = records(&sys, 1);
    let invoice2 = 2u32;
    let draining = rs.iter().find(|r| r.kind == RecordKind::Draining && r.node == invoice2).expect("it drains");
    let handled_while_draining =
        rs.iter().filter(|r| r.node == invoice2 && r.kind == RecordKind::Handled && r.time > draining.time).count();
    assert!(handled_while_draining > 0, "it had a backlog to finish");
    let gone = rs.iter().find(|r| r.kind == RecordKind::ScaledDown && r.node == invoice2).expect("the drain ends");
    assert!(gone.time > draining.time);
    let last_work = rs
        .iter()
        .filter(|r| r.node == invoice2 && r.kind == RecordKind::Handled && r.time <= gone.time)
        .map(|r| r.time)
        .max();
    assert_eq!(last_work, Some(gone.time), "it leaves as soon as its last record is done");
    let fetched_late = rs.iter().any(|r| {
        r.node == invoice2
            && r.kind == RecordKind::Enqueued
            && r.time.0 > draining.time.0 + 1_000_000
            && r.time < gone.time
    });
    assert!(!fetched_late, "a draining consumer fetched");
}

#[test]
fn a_push_on_its_way_to_a_removed_instance_is_lost_and_counted() {
    // Pushes take 50 ms on the ephemeral bus; at 15 s mailer-2 drains (it is
    // idle at once) and goes while pushes to it are on their way.
    let src = r#"Scenario(
    name: "autoscale-push",
    duration: "30s",
    bus: Ephemeral(latency: Const("50ms")),
    services: [
        Service(name: "order", workers: 8, on: [Accept(entity: "order", work: Const("1ms"), emit: ["OrderCreated"])]),
        Service(name: "mailer", instances: 2, routing: RoundRobin, consume: (topics: ["OrderCreated"]),
            autoscale: Some(Autoscale(min: 1, max: 2, target: 0.5)),
            on: [Handle(event: "OrderCreated", work: Const("1ms"), terminal: true)]),
    ],
    workload: Regular(rate: "100/s", entity: "order", keys: Sequential, stop: "20s"),
    invariants: [NoLostEntities(entity: "order", deadline_after_heal: "5s")],
)"#;
    let sys = system(src);
    let o = run(&sys, 1).unwrap();
    let scaled_in = o.metrics.lost_by_reason["scaled-in"];
    assert!(scaled_in > 0, "{:?}", o.metrics.lost_by_reason);
    let v = &o.invariants[0];
    assert_eq!(v.counts["lost"], scaled_in, "each loss is an entity lost, with its reason: {:?}", v.counts);
    let rs = records(&sys, 1);
    let mailer_2 = 2u32;
    for r in rs.iter().filter(|r| r.kind == RecordKind::Lost) {
        assert_eq!(r.node, mailer_2);
        assert!(!rs.iter().any(|h| h.kind == RecordKind::Handled && h.msg == r.msg), "a lost push was handled");
    }
}
