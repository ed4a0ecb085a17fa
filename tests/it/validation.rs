//! Fidelity: faultline's numbers agree with queueing theory. Each scenario
//! under `scenarios/validation/` states its analytic expectation in its
//! header; these tests run independent seeds and assert that the analytic
//! value lies inside the 95% confidence interval of the measured mean.

use faultline::scenario;

use crate::support::root;

/// Two-sided 95% Student t quantile for 19 degrees of freedom.
const T_19: f64 = 2.093;

/// The mean end-to-end latency (s) of `seeds` independent runs, and the
/// half-width of its 95% confidence interval.
fn mean_sojourn(file: &str, seeds: u64) -> (f64, f64) {
    let path = root().join("scenarios/validation").join(file);
    let loaded = scenario::load(&path.to_string_lossy()).unwrap_or_else(|e| panic!("{e}"));
    let xs: Vec<f64> =
        (1..=seeds).map(|seed| faultline::sim::run(&loaded.system, seed).unwrap().metrics.e2e_latency_s.mean).collect();
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, T_19 * (var / n).sqrt())
}

fn assert_inside(file: &str, expected: f64) {
    let (mean, half) = mean_sojourn(file, 20);
    assert!((mean - expected).abs() <= half, "{file}: theory {expected} s outside the 95% CI {mean:.4} +- {half:.4} s");
    // The interval is tight enough to mean something: within 5% of the value.
    assert!(half < 0.05 * expected, "{file}: CI half-width {half:.4} too wide to test anything");
}

#[test]
fn mm1_at_utilisation_half_matches_theory() {
    assert_inside("mm1-rho05.ron", 1.0 / (1.0 - 0.5));
}

#[test]
fn mm1_at_utilisation_nine_tenths_matches_theory() {
    assert_inside("mm1-rho09.ron", 1.0 / (1.0 - 0.9));
}

#[test]
#[ignore = "prints the figures recorded in the README"]
fn print_validation_figures() {
    for f in ["mm1-rho05.ron", "mm1-rho09.ron"] {
        let (m, h) = mean_sojourn(f, 20);
        println!("{f}: {m:.4} +- {h:.4}");
    }
}
