//! Traffic shapes: a workload's rate changing over time (bursts, steps,
//! ramps, a daily cycle), for Poisson and regular arrivals; a constant
//! workload draws exactly what it always did (the snapshots pin that).

use faultline::trace::RecordKind;

use crate::support::{records, system};

/// One service that accepts orders; the workload's rate is 10/s for
/// `duration`, shaped by `shape`.
fn one_service(kind: &str, shape: &str, duration: &str) -> String {
    format!(
        r#"Scenario(
    name: "shape-test",
    duration: "{duration}",
    bus: Ephemeral(latency: Const("1ms")),
    services: [Service(name: "order", workers: 64,
        on: [Accept(entity: "order", work: Const("1ms"), terminal: true)])],
    workload: {kind}(rate: "10/s", entity: "order", keys: Uniform(100), shape: {shape}),
    limits: (entities_max: 10000000),
)"#
    )
}

/// Arrivals per window of `window_s` seconds.
fn arrivals(src: &str, seed: u64, window_s: u64) -> Vec<u64> {
    let sys = system(src);
    let mut counts = Vec::new();
    for r in records(&sys, seed) {
        if r.kind == RecordKind::Request {
            let w = (r.time.0 / (window_s * 1_000_000_000)) as usize;
            if counts.len() <= w {
                counts.resize(w + 1, 0);
            }
            counts[w] += 1;
        }
    }
    counts
}

/// `x` is within `tolerance` (a fraction) of `expected`.
fn near(x: u64, expected: f64, tolerance: f64) -> bool {
    (x as f64 - expected).abs() <= expected * tolerance
}

#[test]
fn steps_multiply_the_rate_from_their_time_on() {
    let shape = r#"Steps([Step(at: "10m", factor: 3.0), Step(at: "20m", factor: 0.5)])"#;
    let c = arrivals(&one_service("Poisson", shape, "30m"), 1, 600);
    // 10/s for 10 minutes is 6,000; the 95% band of a Poisson count is ~2.5%.
    assert!(near(c[0], 6000.0, 0.05), "{c:?}");
    assert!(near(c[1], 18000.0, 0.05), "{c:?}");
    assert!(near(c[2], 3000.0, 0.07), "{c:?}");
}

#[test]
fn regular_arrivals_follow_the_steps_exactly() {
    let shape = r#"Steps([Step(at: "1m", factor: 2.0)])"#;
    let c = arrivals(&one_service("Regular", shape, "2m"), 1, 60);
    assert_eq!(c, [600, 1200], "exact gaps of 100 ms, then 50 ms");
}

#[test]
fn bursts_come_back_every_period() {
    // 30 s at 5x every 5 minutes, the first at 1m: minute 1 holds 30 s of
    // burst (1,500 + 300), minute 2 none (600).
    let shape = r#"Burst(every: "5m", lasting: "30s", factor: 5.0, at: "1m")"#;
    let c = arrivals(&one_service("Poisson", shape, "10m"), 2, 60);
    assert!(near(c[0], 600.0, 0.15), "{c:?}");
    assert!(near(c[1], 1800.0, 0.1), "{c:?}");
    assert!(near(c[2], 600.0, 0.15), "{c:?}");
    assert!(near(c[6], 1800.0, 0.1), "the next burst, at 6m: {c:?}");
}

#[test]
fn a_ramp_rises_linearly_then_holds() {
    // From 1x to 3x over 20 minutes from 0: the mean factor of minutes
    // 0-10 is 1.5, of 10-20 is 2.5, after it 3.
    let shape = r#"Ramp(to: 3.0, over: "20m")"#;
    let c = arrivals(&one_service("Poisson", shape, "30m"), 3, 600);
    assert!(near(c[0], 9000.0, 0.05), "{c:?}");
    assert!(near(c[1], 15000.0, 0.05), "{c:?}");
    assert!(near(c[2], 18000.0, 0.05), "{c:?}");
}

#[test]
fn a_daily_cycle_peaks_and_troughs_where_it_says() {
    // A one-hour cycle peaking at 15 minutes, counted in windows of 7.5.
    let shape = r#"Daily(low: 0.2, high: 2.0, peak_at: "15m", period: "1h")"#;
    let c = arrivals(&one_service("Poisson", shape, "2h"), 4, 450);
    // Window k covers [7.5k, 7.5(k+1)) minutes; windows 1 and 2 surround
    // the peak at 15m, windows 5 and 6 the trough at 45m.
    let (peak, trough) = (c[1] + c[2], c[5] + c[6]);
    // Over the 15 minutes around the peak (a quarter of the cycle, +-pi/4)
    // the mean of (1 + cos) / 2 is 1/2 + sin(pi/4) / (pi/2) / 2 = 0.950, so
    // the mean factor is 0.2 + 1.8 * 0.950 = 1.910; around the trough
    // 0.2 + 1.8 * 0.050 = 0.290.
    assert!(near(peak, 10.0 * 900.0 * 1.910, 0.05), "{peak} {c:?}");
    assert!(near(trough, 10.0 * 900.0 * 0.290, 0.07), "{trough} {c:?}");
    assert!(near(c[9] + c[10], peak as f64, 0.05), "the next cycle's peak, at 75m: {c:?}");
}

#[test]
fn a_constant_shape_is_the_default() {
    let plain = system(&one_service("Poisson", "Constant", "1m")).workloads.clone();
    let src = one_service("Poisson", "Constant", "1m").replace(", shape: Constant", "");
    assert_eq!(system(&src).workloads, plain);
    let a = faultline::sim::run(&system(&src), 5).unwrap();
    let b = faultline::sim::run(&system(&one_service("Poisson", "Constant", "1m")), 5).unwrap();
    assert_eq!(a.fingerprint, b.fingerprint);
}

#[test]
fn bad_shapes_are_refused_where_they_are_written() {
    let cases = [
        (r#"Steps([Step(at: "2m", factor: 2.0), Step(at: "1m", factor: 3.0)])"#, "error: steps must be in time order"),
        (r#"Steps([Step(at: "1m", factor: 0.0)])"#, "error: factor 0 is out of range"),
        (
            r#"Burst(every: "1m", lasting: "2m", factor: 2.0)"#,
            "error: a burst lasts as long as the time between bursts",
        ),
        (r#"Ramp(to: -1.0, over: "1m")"#, "error: factor -1 is out of range"),
        (r#"Daily(low: 3.0, high: 1.0)"#, "error: the trough (3) is above the peak (1)"),
        (r#"Daily(low: 0.5, high: 1.0, period: "0s")"#, "error: a cycle of no time"),
    ];
    for (shape, expected) in cases {
        let src = one_service("Poisson", shape, "5m");
        let e =
            faultline::scenario::parse("w.ron", &src).err().unwrap_or_else(|| panic!("accepted {shape}")).to_string();
        assert!(e.contains(expected), "expected {expected:?} in:\n{e}");
        assert!(e.starts_with("w.ron:7:"), "positioned on the workload's line: {e}");
    }
}

/// Orders and email changes arriving at once, each at its own entry
/// service; billing (which finishes the changes) is down for 30 s on an
/// ephemeral bus, so changes are lost while orders are not.
const TWO: &str = r#"Scenario(
    name: "two-workloads",
    duration: "5m",
    bus: Ephemeral(latency: Const("1ms")),
    services: [
        Service(name: "orders", workers: 8,
            on: [Accept(entity: "order", work: Const("1ms"), emit: ["OrderPlaced"])]),
        Service(name: "users", workers: 8,
            on: [Accept(entity: "change", work: Const("1ms"), emit: ["EmailChanged"])]),
        Service(name: "shipping", workers: 8, consume: (topics: ["OrderPlaced"]),
            on: [Handle(event: "OrderPlaced", work: Const("1ms"), terminal: true)]),
        Service(name: "billing", workers: 8, consume: (topics: ["EmailChanged"]),
            on: [Handle(event: "EmailChanged", work: Const("1ms"), terminal: true)]),
    ],
    workloads: [
        Poisson(rate: "20/s", entity: "order", keys: Uniform(100), stop: "4m"),
        Regular(rate: "5/s", entity: "change", keys: Sequential, stop: "4m"),
    ],
    faults: [Crash(node: "billing-1", at: "1m", down_for: "30s")],
    invariants: [
        NoLostEntities(entity: "order", deadline_after_heal: "30s"),
        NoLostEntities(entity: "change", deadline_after_heal: "30s"),
        LeadsTo(entity: "order", from: "accepted", to: ["OrderPlaced"], within: "10s"),
    ],
)"#;

/// (time, key) of every request sent.
fn requests(src: &str, seed: u64) -> Vec<(u64, u64)> {
    records(&system(src), seed).iter().filter(|r| r.kind == RecordKind::Request).map(|r| (r.time.0, r.aux)).collect()
}

#[test]
fn several_workloads_arrive_at_once_each_at_its_own_entry() {
    for seed in 0..5 {
        let o = faultline::sim::run(&system(TWO), seed).unwrap();
        let handled = |s: &str| o.metrics.services[s].handled;
        // Regular: exactly 5/s for 240 s; Poisson: about 20/s.
        assert_eq!(handled("users"), 1200, "seed {seed}");
        assert!(near(handled("orders"), 4800.0, 0.08), "seed {seed}: {}", handled("orders"));
        assert_eq!(handled("shipping"), handled("orders"), "seed {seed}: every order reaches shipping");
        let [orders, changes, rule] = &o.invariants[..] else { panic!("three verdicts") };
        // Each invariant judges its own kind only.
        assert!(orders.holds(), "seed {seed}: {orders:?}");
        assert_eq!(orders.counts["accepted"], handled("orders"));
        assert!(changes.violated(), "seed {seed}: {changes:?}");
        assert_eq!(changes.counts["accepted"], 1200);
        // Billing is down for 30 s: 150 changes (one every 200 ms) are lost.
        assert!((149..=151).contains(&changes.counts["lost"]), "seed {seed}: {changes:?}");
        assert!(rule.holds(), "seed {seed}: {rule:?}");
        assert_eq!(rule.counts["started"], handled("orders"), "the rule starts with orders only");
        assert_eq!(rule.name, "order: accepted leads-to OrderPlaced within 10.000s");
    }
}

#[test]
fn a_second_workload_leaves_the_first_ones_draws_alone() {
    let first_only = TWO
        .replace(r#"Regular(rate: "5/s", entity: "change", keys: Sequential, stop: "4m"),"#, "")
        .replace(r#"NoLostEntities(entity: "change", deadline_after_heal: "30s"),"#, "")
        .replace(
            r#"Service(name: "users", workers: 8,
            on: [Accept(entity: "change", work: Const("1ms"), emit: ["EmailChanged"])]),"#,
            "",
        )
        .replace(
            r#"Service(name: "billing", workers: 8, consume: (topics: ["EmailChanged"]),
            on: [Handle(event: "EmailChanged", work: Const("1ms"), terminal: true)]),"#,
            "",
        )
        .replace(r#"faults: [Crash(node: "billing-1", at: "1m", down_for: "30s")],"#, "");
    for seed in 0..3 {
        let one = requests(&first_only, seed);
        let mut both = requests(TWO, seed);
        assert_eq!(both.len(), one.len() + 1200, "seed {seed}");
        // Take out the changes (every 200 ms, keys 1..=1200 in order of
        // their arrivals): what is left is the orders.
        for i in 0..1200u64 {
            let change = (i * 200_000_000, i + 1);
            let k = both.iter().position(|r| *r == change).expect("change i + 1 at i * 200 ms, keyed i + 1");
            both.remove(k);
        }
        assert_eq!(both, one, "seed {seed}: the orders arrive at the same times with the same keys");
    }
}

#[test]
fn several_workloads_are_refused_when_ambiguous() {
    let refused = |src: &str, needle: &str| {
        let e = faultline::scenario::parse("w.ron", src).expect_err("refused").to_string();
        assert!(e.contains(needle), "expected {needle:?} in:\n{e}");
    };
    // A business rule must say which kind it judges.
    refused(
        &TWO.replace(r#"LeadsTo(entity: "order", "#, "LeadsTo("),
        "with several workloads, say which entity kind this rule judges",
    );
    refused(&TWO.replace(r#"LeadsTo(entity: "order", "#, r#"LeadsTo(entity: "ordr", "#), "did you mean `order`?");
    refused(
        &TWO.replace(r#"NoLostEntities(entity: "change""#, r#"NoLostEntities(entity: "payment""#),
        "no workload creates `payment`",
    );
    // Two workloads of one kind; both fields; neither.
    refused(&TWO.replace(r#"entity: "change", keys"#, r#"entity: "order", keys"#), "two workloads create `order`");
    refused(
        &TWO.replace(
            "    workloads: [",
            "    workload: Poisson(rate: \"1/s\", entity: \"order\", keys: Sequential),\n    workloads: [",
        ),
        "both `workload` and `workloads` are given",
    );
    let start = TWO.find("    workloads:").unwrap();
    let end = TWO.find("    faults:").unwrap();
    refused(&format!("{}{}", &TWO[..start], &TWO[end..]), "the scenario has no workload");
    // A service accepting a kind no workload creates.
    refused(&TWO.replace(r#"Accept(entity: "change""#, r#"Accept(entity: "chnage""#), "which no workload creates");
}

/// A scenario in `dir` that replays `arrivals.csv` (shifted by `start`).
fn replay_in(dir: &std::path::Path, csv: &str, start: &str) -> String {
    std::fs::write(dir.join("arrivals.csv"), csv).unwrap();
    let src = format!(
        r#"Scenario(
    name: "replay-test",
    duration: "1m",
    bus: Ephemeral(latency: Const("1ms")),
    services: [Service(name: "order", workers: 4,
        on: [Accept(entity: "order", work: Const("1ms"), terminal: true)])],
    workload: Replay(file: "arrivals.csv", entity: "order", start: "{start}", stop: "50s"),
    invariants: [NoLostEntities(entity: "order", deadline_after_heal: "5s")],
)"#
    );
    let path = dir.join("replay.ron");
    std::fs::write(&path, &src).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn a_replayed_workload_arrives_at_the_recorded_times_with_the_recorded_keys() {
    let dir = crate::support::temp_dir("replay");
    let csv = "time,key\n0.5,42\n1.25,7\n1.25,7\n10s,99\n49.5,1\n60,2\n";
    let path = replay_in(&dir, csv, "500ms");
    let sys = faultline::scenario::load(&path).unwrap_or_else(|e| panic!("{e}")).system;
    let secs = |s: f64| (s * 1e9) as u64;
    // Shifted by 500 ms; the arrival recorded at 49.5 s would come at 50 s,
    // the stop, and the one at 60 s after it: neither arrives.
    let expected = vec![(secs(1.0), 42), (secs(1.75), 7), (secs(1.75), 7), (secs(10.5), 99)];
    for seed in [0, 1, 99] {
        let got: Vec<(u64, u64)> =
            records(&sys, seed).iter().filter(|r| r.kind == RecordKind::Request).map(|r| (r.time.0, r.aux)).collect();
        assert_eq!(got, expected, "seed {seed}: a replay draws nothing");
    }
    let o = faultline::sim::run(&sys, 0).unwrap();
    assert!(o.all_hold());
    assert_eq!(o.invariants[0].counts["accepted"], 4);
    // A first arrival shifted onto the stop does not arrive either.
    let path = replay_in(&dir, "49.5,1\n", "500ms");
    let sys = faultline::scenario::load(&path).unwrap_or_else(|e| panic!("{e}")).system;
    assert!(records(&sys, 0).iter().all(|r| r.kind != RecordKind::Request));
}

#[test]
fn a_bad_arrivals_file_is_told_with_its_own_line_and_column() {
    let dir = crate::support::temp_dir("replay-bad");
    let path = replay_in(&dir, "time,key\n1,5\n2,five\n", "0s");
    let (code, _, err) = crate::support::parts(&crate::support::faultline(&["run", &path]));
    assert_eq!(code, 2, "{err}");
    // Where in the scenario (the `file` field), and where in the CSV.
    assert!(err.contains("replay.ron:7:"), "{err}");
    assert!(err.contains("arrivals.csv:3:3: key \"five\" is not an unsigned integer"), "{err}");
    std::fs::remove_file(dir.join("arrivals.csv")).unwrap();
    let e = faultline::scenario::load(&path).expect_err("no file").to_string();
    assert!(e.contains("cannot read") && e.contains("arrivals.csv"), "{e}");
    assert!(e.contains("relative to the scenario file's directory"), "{e}");
}
