//! Every bundled scenario claims its verdicts over a range of seeds, in its
//! header, and this test checks each claim with a sweep:
//!
//! ```text
//! // Claims over seeds 0..100, checked by tests/it/claims.rs:
//! //   no-lost-entities(order): fails on every seed
//! //   no-duplicate-effects(invoice-sent): holds on every seed
//! ```
//!
//! A claim is `holds on every seed` (it held and judged something under
//! each), `fails on every seed`, `fails on most seeds` (more than half) or
//! `fails on some seeds` (at least one, and it holds under the others). No
//! seed may be inconclusive: a bundled scenario tests what it says.

use std::sync::atomic::AtomicBool;

use faultline::scenario;
use faultline::sweep::{Options, SeedRange, sweep};

use crate::support::bundled_files;

#[derive(Debug, PartialEq)]
enum Claim {
    Holds,
    FailsEvery,
    FailsMost,
    FailsSome,
}

/// The seed range and the per-invariant claims of a scenario's header.
fn claims(text: &str) -> Option<(SeedRange, Vec<(String, Claim)>)> {
    let header: Vec<&str> = text.lines().take_while(|l| l.starts_with("//")).collect();
    let at = header.iter().position(|l| l.starts_with("// Claims over seeds "))?;
    let range = header[at]["// Claims over seeds ".len()..].split(',').next()?.parse().ok()?;
    let mut out = Vec::new();
    for line in &header[at + 1..] {
        let Some(claim) = line.strip_prefix("//   ") else { break };
        let (name, what) = claim.rsplit_once(": ")?;
        let claim = match what {
            "holds on every seed" => Claim::Holds,
            "fails on every seed" => Claim::FailsEvery,
            "fails on most seeds" => Claim::FailsMost,
            "fails on some seeds" => Claim::FailsSome,
            _ => return None,
        };
        out.push((name.to_string(), claim));
    }
    Some((range, out))
}

#[test]
fn every_bundled_scenario_s_claims_hold_over_their_seeds() {
    let files = bundled_files();
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut checked = 0;
    for path in files {
        let file = path.to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let (range, claims) = claims(&text).unwrap_or_else(|| panic!("{file}: no readable claims in its header"));
        assert!(range.len() >= 50, "{file}: claims over {} seeds; at least 50", range.len());
        let sys = scenario::parse(&file, &text).unwrap().system;
        let names: Vec<String> = sys.invariants.iter().map(|i| i.name(&sys.names)).collect();
        let claimed: Vec<&String> = claims.iter().map(|(n, _)| n).collect();
        assert_eq!(claimed, names.iter().collect::<Vec<_>>(), "{file}: one claim per invariant, in order");
        let stop = AtomicBool::new(false);
        let opts = Options { jobs, progress: None, stop: &stop, each: None };
        let (tally, complete) = sweep(&sys, &file, "", range, &opts).unwrap();
        assert!(complete);
        let n = range.len();
        assert_eq!(tally.inconclusive, 0, "{file}: inconclusive under seeds {:?}", tally.inconclusive_seeds);
        for ((name, claim), inv) in claims.iter().zip(&tally.invariants) {
            let failing = inv.failing;
            let what = format!("{file}: {name} is claimed to {claim:?} but fails under {failing} of {n} seeds");
            assert_eq!(inv.inconclusive, 0, "{what}; it judged nothing under {}", inv.inconclusive);
            match claim {
                Claim::Holds => assert_eq!(failing, 0, "{what}: {:?}", inv.first_failing),
                Claim::FailsEvery => assert_eq!(failing, n, "{what}"),
                Claim::FailsMost => assert!(failing * 2 > n && failing < n, "{what}"),
                Claim::FailsSome => assert!(failing > 0 && failing * 2 <= n, "{what}"),
            }
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked}");
}

#[test]
fn a_header_s_claims_are_read_as_written() {
    let text = "// A scenario.\n//\n// Claims over seeds 0..100, checked by tests/it/claims.rs:\n\
                //   no-lost-entities(order): fails on most seeds\n\
                //   accepted leads-to Paid within 2m00.000s: holds on every seed\nScenario(";
    let (range, c) = claims(text).unwrap();
    assert_eq!((range.start, range.end), (0, 100));
    assert_eq!(c[0], ("no-lost-entities(order)".to_string(), Claim::FailsMost));
    assert_eq!(c[1], ("accepted leads-to Paid within 2m00.000s".to_string(), Claim::Holds));
    assert!(claims("// Claims over seeds 0..100:\n//   x: fails sometimes\nS(").is_none());
}
