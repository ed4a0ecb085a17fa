//! The loss-accounting identity, for every bundled scenario (and every
//! conformance situation) over 20 seeds:
//!
//! 1. every entity that `no-lost-entities` (or `terminal-within`) counts as
//!    lost has a counted setback on its path (a message of it lost with a
//!    reason, ignored as stale, or a call of it that failed for good); an
//!    entity that never ended while something of it was still in the system
//!    is `stuck_at_end`, not lost; none is `unexplained`;
//! 2. every counted loss is real: the service a message was lost for never
//!    handles that message, before or after (and a message lost before it
//!    reached the bus is handled by no service at all).

use std::collections::BTreeSet;

use faultline::scenario;
use faultline::system::InvariantSpec;
use faultline::trace::{LossReason, RecordKind};

use crate::support::{Collect, bundled_files};

const SEEDS: std::ops::Range<u64> = 0..20;

fn bundled() -> Vec<(String, faultline::system::System)> {
    // The catalogue, and the conformance situations (each queue kind's
    // crashes, timeouts and flow control).
    let conformance = std::fs::read_dir(crate::support::root().join("conformance/scenarios"))
        .expect("conformance/scenarios/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"));
    let mut conformance: Vec<_> = conformance.collect();
    conformance.sort();
    bundled_files()
        .into_iter()
        .chain(conformance)
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, scenario::load(&p.to_string_lossy()).unwrap().system)
        })
        .collect()
}

#[test]
fn every_lost_entity_is_explained_and_every_counted_loss_is_real() {
    let mut judged_lost = 0u64;
    let mut losses = 0u64;
    for (name, sys) in bundled() {
        // Node index -> service index (brokers and the client have none).
        let service_of: Vec<usize> =
            sys.services.iter().enumerate().flat_map(|(i, s)| std::iter::repeat_n(i, s.instances as usize)).collect();
        for seed in SEEDS {
            let mut sink = Collect::default();
            let opts = faultline::sim::RunOptions { trace: Some(&mut sink), ..Default::default() };
            let o = faultline::sim::run_with(&sys, seed, opts).unwrap();
            let what = format!("{name} seed {seed}");
            for (v, inv) in o.invariants.iter().zip(&sys.invariants) {
                if matches!(inv, InvariantSpec::NoLostEntities { .. } | InvariantSpec::TerminalWithin { .. }) {
                    assert_eq!(v.counts.get("unexplained"), None, "{what}: {} {:?}", v.name, v.counts);
                    judged_lost += v.counts["lost"];
                }
            }
            // (message, service) pairs handled, and messages handled by anyone.
            let mut handled: BTreeSet<(u64, usize)> = BTreeSet::new();
            let mut by_anyone: BTreeSet<u64> = BTreeSet::new();
            for r in &sink.0 {
                if matches!(r.kind, RecordKind::Handled | RecordKind::Skipped | RecordKind::Ignored)
                    && let Some(&s) = service_of.get(r.node as usize)
                {
                    handled.insert((r.msg, s));
                    by_anyone.insert(r.msg);
                }
            }
            for r in sink.0.iter().filter(|r| r.kind == RecordKind::Lost) {
                losses += 1;
                let reason = faultline::trace::loss_of(r.aux).0.expect("a reason");
                let at_source = matches!(reason, LossReason::ProducerGaveUp | LossReason::Unpublished);
                match service_of.get(r.node as usize) {
                    Some(&s) if !at_source => assert!(
                        !handled.contains(&(r.msg, s)),
                        "{what}: message {} counted lost ({}) for {} but handled there",
                        r.msg,
                        reason.label(),
                        sys.services[s].name
                    ),
                    _ => assert!(
                        !by_anyone.contains(&r.msg),
                        "{what}: message {} counted lost ({}) at its source but handled",
                        r.msg,
                        reason.label()
                    ),
                }
            }
            assert_eq!(o.metrics.lost, sink.0.iter().filter(|r| r.kind == RecordKind::Lost).count() as u64);
        }
    }
    // The identity was exercised, not vacuous.
    assert!(judged_lost > 10_000, "{judged_lost}");
    assert!(losses > 10_000, "{losses}");
}
