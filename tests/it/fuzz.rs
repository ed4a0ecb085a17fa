//! A fast, deterministic slice of the fuzzer (`examples/fuzz.rs`), in
//! process: mutants of every bundled scenario and of sweep results never
//! panic, and every refusal of scenario text names a line and a column.

use faultline::scenario;
use faultline::sweep::{Options, Summary, Tally, sweep};

use crate::support::bundled_files;

/// The slice's seed: other than the long run's (1), so the two cover different mutants.
const SEED: u64 = 12;

#[test]
fn no_mutant_of_a_bundled_scenario_panics_or_is_refused_without_a_position() {
    let (mut accepted, mut refused) = (0, 0);
    for file in bundled_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for i in 0..80 {
            let m = faultline::fuzz::mutant(&text, SEED, i);
            // The CLI refuses such a file before parsing it.
            if m.len() as u64 > scenario::bounds::INPUT_MAX_BYTES {
                continue;
            }
            match scenario::parse("m.ron", &m) {
                Ok(loaded) => {
                    accepted += 1;
                    let mut sys = loaded.system;
                    sys.limits.events_max = sys.limits.events_max.min(20_000);
                    let o = faultline::sim::run(&sys, sys.seed).unwrap_or_else(|e| {
                        panic!("mutant {i} of {}: checked, but does not set up: {e}", file.display())
                    });
                    assert!(!faultline::cli::render(&o, "", "m.ron", None).is_empty());
                }
                Err(e) => {
                    refused += 1;
                    let msg = e.to_string();
                    assert!(faultline::fuzz::positioned(&msg, "m.ron"), "mutant {i} of {}:\n{msg}", file.display());
                }
            }
        }
    }
    // The slice reaches both the checks and the simulation.
    assert!(accepted > 100 && refused > 1000, "{accepted} accepted, {refused} refused");
}

#[test]
fn no_mutant_of_sweep_results_panics() {
    let text = crate::support::scenario_text("poison-dlq.ron");
    let loaded = scenario::parse("poison-dlq.ron", &text).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let opts = Options { jobs: 1, progress: None, stop: &stop, each: None };
    let (tally, _) =
        sweep(&loaded.system, "poison-dlq.ron", "h", faultline::sweep::SeedRange { start: 0, end: 3 }, &opts).unwrap();
    let json = serde_json::to_string(&tally).unwrap();
    let (mut merged, mut refused) = (0, 0);
    for i in 0..1500 {
        let m = faultline::fuzz::mutant(&json, SEED, i);
        let Ok(t) = serde_json::from_str::<Tally>(&m) else {
            refused += 1;
            continue;
        };
        if t.check().is_err() {
            refused += 1;
            continue;
        }
        let Ok(all) = Tally::merge(vec![t.clone()]) else { continue };
        merged += 1;
        let summary = Summary::of(&all, true, None);
        assert!(!summary.render().is_empty());
        let _ = serde_json::to_string(&summary).unwrap();
    }
    assert!(merged > 20 && refused > 500, "{merged} merged, {refused} refused");
}
