//! Every file in `scenarios/` is a test case: it must load, and its outcome
//! under its default seed is pinned by a snapshot (no wall-clock figures).

use faultline::cli::render;
use faultline::scenario;

use crate::support::{bundled_files, root};

#[test]
fn every_bundled_scenario_has_a_pinned_outcome() {
    let files = bundled_files();
    assert!(files.len() >= 2, "{files:?}");
    for path in files {
        let rel = format!("scenarios/{}", path.file_name().unwrap().to_string_lossy());
        let loaded = scenario::load(&path.to_string_lossy()).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let outcome = faultline::sim::run(&loaded.system, loaded.system.seed).expect("runs");
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(name, render(&outcome, &loaded.scenario.question, &rel, None));
    }
}

#[test]
fn the_ephemeral_bus_loses_the_orders_of_the_outage_and_the_log_does_not() {
    let run = |f: &str| {
        let loaded = scenario::load(&root().join("scenarios").join(f).to_string_lossy()).unwrap();
        faultline::sim::run(&loaded.system, 7).unwrap()
    };
    let eph = run("orders-ephemeral.ron");
    let log = run("orders-log.ron");
    // The same workload reaches both systems.
    assert_eq!(eph.metrics.requests, log.metrics.requests);
    assert_eq!(eph.metrics.accepted, log.metrics.accepted);
    let lost = &eph.invariants[0];
    assert_eq!(lost.name, "no-lost-entities(order)");
    assert!(lost.violated());
    // 50 orders/s for the 5 minutes Inventory was down: about 15,000.
    assert!((14_000..16_000).contains(&lost.violations), "{}", lost.violations);
    // Each lost order lost its one OrderCreated, almost all of them because
    // no inventory was up to receive it.
    assert_eq!(eph.metrics.lost, lost.violations);
    assert!(eph.metrics.lost_by_reason["no-subscriber-up"] * 100 > lost.violations * 99);
    let story = lost.example.as_ref().expect("a story");
    assert!(
        story.lines.iter().any(|l| l.contains("LOST") && l.contains("inventory-1 down from 2m00.000s to 7m00.000s"))
    );
    assert!(log.all_hold());
    assert_eq!(log.metrics.lost, 0);
    assert_eq!(log.metrics.completed, log.metrics.accepted);
}

#[test]
fn the_lost_orders_pair_differs_only_in_the_bus() {
    // The catalogue's pairs differ only in the design choice, so that a
    // difference in outcome is the design's doing.
    let body = |f: &str| -> Vec<String> {
        crate::support::scenario_text(f)
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .filter(|l| !l.trim_start().starts_with("name:") && !l.trim_start().starts_with("question:"))
            .map(str::to_string)
            .collect()
    };
    let (a, b) = (body("orders-ephemeral.ron"), body("orders-log.ron"));
    assert_eq!(a.len(), b.len());
    let differing: Vec<(&String, &String)> = a.iter().zip(&b).filter(|(x, y)| x != y).collect();
    assert_eq!(differing.len(), 1, "{differing:?}");
    assert!(differing[0].0.trim_start().starts_with("bus: Ephemeral("));
    assert!(differing[0].1.trim_start().starts_with("bus: Log("));
}

#[test]
fn every_scenario_gives_the_exit_code_its_header_promises() {
    for path in bundled_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let header: String = text.lines().take_while(|l| l.starts_with("//")).collect::<Vec<_>>().join(" ");
        let expected = if header.contains("(exit 1)") {
            false
        } else if header.contains("(exit 0)") {
            true
        } else {
            panic!("{}: the header must say (exit 0) or (exit 1)", path.display());
        };
        let loaded = scenario::load(&path.to_string_lossy()).unwrap();
        let outcome = faultline::sim::run(&loaded.system, loaded.system.seed).unwrap();
        assert_eq!(outcome.all_hold(), expected, "{}", path.display());
    }
}

#[test]
fn every_bundled_scenario_survives_being_written_back() {
    for path in bundled_files() {
        let loaded = scenario::load(&path.to_string_lossy()).unwrap();
        let text = scenario::to_ron(&loaded.scenario);
        let back = scenario::parse("back.ron", &text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
        // The same scenario, so the same system and the same runs.
        assert_eq!(back.scenario, loaded.scenario, "{}", path.display());
    }
}
