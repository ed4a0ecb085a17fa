//! Metrics as defined: a warm-up discarded from every count, time-averages
//! over the measurement window (not the drain), and latencies that say
//! whom they cover.

use faultline::sim::run;

use crate::support::{root, scenario_text, system};

fn validation(file: &str) -> String {
    std::fs::read_to_string(root().join("scenarios/validation").join(file)).unwrap()
}

#[test]
fn a_warm_up_is_left_out_of_every_count() {
    let full = run(&system(&scenario_text("orders-log.ron")), 7).unwrap();
    let src = scenario_text("orders-log.ron").replace("duration: \"20m\",", "duration: \"20m\", warmup: \"10m\",");
    let warm = run(&system(&src), 7).unwrap();
    // The same run (the warm-up changes no draw), measured from 10m on:
    // the workload runs until 15m, so a third of the orders count.
    assert_eq!(warm.fingerprint, full.fingerprint);
    let (a, w) = (full.metrics.accepted as f64, warm.metrics.accepted as f64);
    assert!((w / a - 1.0 / 3.0).abs() < 0.02, "{w} of {a}");
    assert_eq!(warm.invariants[0].counts["accepted"], warm.metrics.accepted);
    assert_eq!(warm.invariants[1].counts["entities_applied"], warm.metrics.completed);
    assert_eq!(warm.metrics.e2e_latency_s.count, warm.metrics.completed);
    // Messages too: about a third handled, and the outage (2m to 7m) is
    // before the warm-up: nothing waited long.
    let handled = |o: &faultline::outcome::Outcome| o.metrics.services["inventory"].handled as f64;
    assert!((handled(&warm) / handled(&full) - 1.0 / 3.0).abs() < 0.02);
    assert!(warm.metrics.e2e_latency_s.max < 1.0, "{}", warm.metrics.e2e_latency_s.max);
    assert!(full.metrics.e2e_latency_s.max > 100.0);
    assert!(warm.all_hold());
}

#[test]
fn a_warm_up_as_long_as_the_run_is_refused() {
    let src = scenario_text("orders-log.ron").replace("duration: \"20m\",", "duration: \"20m\", warmup: \"20m\",");
    let err = faultline::scenario::parse("w.ron", &src).unwrap_err().to_string();
    assert!(err.contains("the warm-up covers the whole run"), "{err}");
}

#[test]
fn the_mean_queue_length_leaves_out_the_drain() {
    // The same M/M/1 run followed by as much idle time again: the mean
    // number waiting is over the arrivals' window, so it does not halve.
    let src = validation("mm1-rho09.ron");
    let longer = src.replace("duration: \"100000s\"", "duration: \"200000s\"");
    let (a, b) = (run(&system(&src), 3).unwrap(), run(&system(&longer), 3).unwrap());
    let (qa, qb) = (a.metrics.services["station"].queue_len_mean, b.metrics.services["station"].queue_len_mean);
    assert!(qa > 7.0, "{qa}");
    assert!((qa - qb).abs() < 1e-9, "{qa} against {qb}");
}

#[test]
fn end_to_end_latency_says_whom_it_leaves_out() {
    let o = run(&system(&scenario_text("orders-ephemeral.ron")), 7).unwrap();
    let m = &o.metrics;
    assert_eq!(m.e2e_latency_s.count, m.completed);
    assert_eq!(m.e2e_not_completed, m.accepted - m.completed);
    assert!(m.e2e_not_completed > 14_000);
    let text = faultline::cli::render(&o, "", "x.ron", None);
    assert!(
        text.contains(
            "latency     end to end, of the 29,908 completed; 15,022 accepted never completed and are not in it"
        ),
        "{text}"
    );
}
