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
    let plain = system(&one_service("Poisson", "Constant", "1m")).workload.clone();
    let src = one_service("Poisson", "Constant", "1m").replace(", shape: Constant", "");
    assert_eq!(system(&src).workload, plain);
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
