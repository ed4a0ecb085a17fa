//! Fidelity: faultline's numbers agree with queueing theory. Each scenario
//! under `scenarios/validation/` states its analytic expectation in its
//! header; these tests run 20 independent seeds and assert that the analytic
//! value lies inside a 95% confidence interval of the measured mean, and
//! that the interval is narrow enough for that to mean something.
//!
//! There are sixteen such checks. With plain 95% intervals one of them
//! would fail by chance about every other time the random draws change, so
//! the intervals are simultaneous (Bonferroni): all sixteen hold together
//! with 95% confidence, each at 1 - 0.05/16. The README reports the
//! individual 95% intervals.

use faultline::outcome::{Outcome, ServiceMetrics};
use faultline::scenario;

use crate::support::root;

/// Independent seeds per model.
const SEEDS: u64 = 20;
/// Two-sided Student t quantile, 19 degrees of freedom, at 1 - 0.05/(2 x 16 checks).
const T_19_SIMULTANEOUS: f64 = 3.383;
/// Two-sided 95% Student t quantile for 19 degrees of freedom.
const T_19: f64 = 2.093;

/// The mean of `stat` over independent seeds of `file`, and the half-width
/// of its individual 95% confidence interval.
pub fn estimate(file: &str, stat: impl Fn(&Outcome) -> f64) -> (f64, f64) {
    let path = root().join("scenarios/validation").join(file);
    let loaded = scenario::load(&path.to_string_lossy()).unwrap_or_else(|e| panic!("{e}"));
    let xs: Vec<f64> = (1..=SEEDS).map(|seed| stat(&faultline::sim::run(&loaded.system, seed).unwrap())).collect();
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, T_19 * (var / n).sqrt())
}

/// Asserts `expected` lies in the simultaneous 95% CI of `stat`, and the
/// individual 95% CI's half-width is under `precision` times the expected value.
fn assert_inside(file: &str, what: &str, expected: f64, precision: f64, stat: impl Fn(&Outcome) -> f64) {
    let (mean, half) = estimate(file, stat);
    let simultaneous = half * T_19_SIMULTANEOUS / T_19;
    assert!(
        (mean - expected).abs() <= simultaneous,
        "{file}: {what}: theory {expected:.5} is outside the simultaneous 95% CI {mean:.5} +- {simultaneous:.5} \
         (individual: +- {half:.5}); rerun with other seeds before suspecting the model"
    );
    assert!(half < precision * expected, "{file}: {what}: CI half-width {half:.5} is too wide to test anything");
}

fn station(o: &Outcome) -> &ServiceMetrics {
    &o.metrics.services["station"]
}

fn sojourn(o: &Outcome) -> f64 {
    o.metrics.e2e_latency_s.mean
}

#[test]
fn mm1_at_utilisation_one_half() {
    let rho: f64 = 0.5;
    assert_inside("mm1-rho05.ron", "mean time in system", 1.0 / (1.0 - rho), 0.05, sojourn);
    assert_inside("mm1-rho05.ron", "mean number waiting", rho * rho / (1.0 - rho), 0.05, |o| station(o).queue_len_mean);
}

#[test]
fn mm1_at_utilisation_nine_tenths() {
    let rho: f64 = 0.9;
    assert_inside("mm1-rho09.ron", "mean time in system", 1.0 / (1.0 - rho), 0.05, sojourn);
    assert_inside("mm1-rho09.ron", "mean number waiting", rho * rho / (1.0 - rho), 0.05, |o| station(o).queue_len_mean);
}

/// Erlang C: the probability that an arrival waits in an M/M/c queue with
/// offered load `a` (in erlangs).
pub fn erlang_c(c: u32, a: f64) -> f64 {
    let rho = a / f64::from(c);
    let mut term = 1.0; // a^k / k!
    let mut sum = 0.0;
    for k in 0..c {
        sum += term;
        term *= a / f64::from(k + 1);
    }
    let top = term / (1.0 - rho);
    top / (sum + top)
}

#[test]
fn mmc_with_four_workers_matches_erlang_c() {
    let (c, lambda, mu) = (4, 3.0, 1.0);
    let p_wait = erlang_c(c, lambda / mu);
    assert!((p_wait - 0.5094).abs() < 1e-4, "{p_wait}");
    assert_inside("mmc4.ron", "probability of waiting", p_wait, 0.05, |o| station(o).waited_fraction);
    let wq = p_wait / (f64::from(c) * mu - lambda);
    assert_inside("mmc4.ron", "mean wait", wq, 0.05, |o| station(o).wait_s.mean);
    // The instance's utilisation is rho = lambda / (c mu).
    let rho = lambda / (f64::from(c) * mu);
    assert_inside("mmc4.ron", "utilisation", rho, 0.05, |o| station(o).instances[0].utilisation);
    assert_inside("mmc4.ron", "mean queue length", lambda * wq, 0.05, |o| station(o).instances[0].queue_len_mean);
}

#[test]
fn md1_matches_pollaczek_khinchine() {
    let (lambda, d) = (0.8, 1.0);
    let rho = lambda * d;
    let wq = rho * d / (2.0 * (1.0 - rho));
    assert_inside("md1.ron", "mean wait", wq, 0.05, |o| station(o).wait_s.mean);
}

#[test]
fn tandem_network_sojourn_is_the_sum_of_its_stations() {
    let lambda = 0.4;
    let expected: f64 = [1.0, 1.25, 1.5].iter().map(|mean: &f64| 1.0 / (1.0 / mean - lambda)).sum();
    assert!((expected - 7.9167).abs() < 1e-3);
    assert_inside("tandem.ron", "end-to-end mean sojourn", expected, 0.05, sojourn);
}

#[test]
fn on_a_queue_bus_each_station_s_sojourn_includes_its_time_in_the_broker() {
    let lambda = 0.4;
    let at = |name: &'static str| move |o: &Outcome| o.metrics.services[name].latency_s.mean;
    assert_inside("tandem-queue.ron", "inventory's sojourn", 1.0 / (1.0 / 1.25 - lambda), 0.05, at("inventory"));
    assert_inside("tandem-queue.ron", "invoice's sojourn", 1.0 / (1.0 / 1.5 - lambda), 0.05, at("invoice"));
    let expected: f64 = [1.0, 1.25, 1.5].iter().map(|mean: &f64| 1.0 / (1.0 / mean - lambda)).sum();
    assert_inside("tandem-queue.ron", "end-to-end mean sojourn", expected, 0.05, sojourn);
}

#[test]
fn a_station_with_no_queue_rejects_as_erlang_b_predicts() {
    let (c, a) = (4u32, 3.0f64);
    let mut term = 1.0; // a^k / k!
    let mut sum = 1.0;
    for k in 1..=c {
        term *= a / f64::from(k);
        sum += term;
    }
    let blocking = term / sum;
    assert!((blocking - 0.20611).abs() < 1e-4, "{blocking}");
    assert_inside("erlang-b.ron", "blocking probability", blocking, 0.05, |o| {
        o.metrics.rejected as f64 / o.metrics.requests as f64
    });
}

#[test]
fn fire_and_forget_loses_the_share_of_time_the_subscriber_is_down() {
    let (down, total) = (100.0, 400.0);
    assert_inside("ff-loss.ron", "fraction lost", down / total, 0.05, |o| {
        o.metrics.lost as f64 / o.metrics.accepted as f64
    });
}

#[test]
fn a_bounded_queue_blocks_as_mm1k_predicts() {
    let (rho, k): (f64, i32) = (0.8, 5);
    let p_block = (1.0 - rho) * rho.powi(k) / (1.0 - rho.powi(k + 1));
    assert!((p_block - 0.08882).abs() < 1e-4);
    assert_inside("mm1k.ron", "blocking probability", p_block, 0.05, |o| {
        o.metrics.rejected as f64 / o.metrics.requests as f64
    });
}

#[test]
#[ignore = "prints the figures recorded in the README: cargo test --release -- --ignored validation_figures --nocapture"]
fn validation_figures() {
    type Stat = fn(&Outcome) -> f64;
    let rows: [(&str, &str, Stat); 16] = [
        ("mm1-rho05.ron", "W", sojourn),
        ("mm1-rho05.ron", "Lq", |o| station(o).queue_len_mean),
        ("mm1-rho09.ron", "W", sojourn),
        ("mm1-rho09.ron", "Lq", |o| station(o).queue_len_mean),
        ("mmc4.ron", "P(wait)", |o| station(o).waited_fraction),
        ("mmc4.ron", "Wq", |o| station(o).wait_s.mean),
        ("mmc4.ron", "rho", |o| station(o).instances[0].utilisation),
        ("mmc4.ron", "Lq", |o| station(o).instances[0].queue_len_mean),
        ("md1.ron", "Wq", |o| station(o).wait_s.mean),
        ("tandem.ron", "W", sojourn),
        ("ff-loss.ron", "lost", |o| o.metrics.lost as f64 / o.metrics.accepted as f64),
        ("mm1k.ron", "P(block)", |o| o.metrics.rejected as f64 / o.metrics.requests as f64),
        ("erlang-b.ron", "P(block)", |o| o.metrics.rejected as f64 / o.metrics.requests as f64),
        ("tandem-queue.ron", "W inventory", |o| o.metrics.services["inventory"].latency_s.mean),
        ("tandem-queue.ron", "W invoice", |o| o.metrics.services["invoice"].latency_s.mean),
        ("tandem-queue.ron", "W", sojourn),
    ];
    for (file, what, stat) in rows {
        let (m, h) = estimate(file, stat);
        println!("{file} {what}: {m:.4} +- {h:.4}");
    }
}
