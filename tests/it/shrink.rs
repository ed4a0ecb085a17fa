//! Shrinking: a failing seed becomes the smallest scenario found that still
//! fails the same way under it.

use faultline::scenario;
use faultline::shrink::{ShrinkError, shrink};

use crate::support::{faultline, parts, system, temp_dir};

/// Orders on a fire-and-forget bus, and five crashes: only the one of
/// inventory-1 (on every order's path, and long) loses accepted orders.
/// The others hit the audit service (off the path to the terminal state)
/// and the entry service (whose requests are refused, never accepted).
const FIVE_CRASHES: &str = r#"Scenario(
    name: "five-crashes", seed: 3, duration: "2m",
    bus: Ephemeral(latency: Const("1ms")),
    services: [
        Service(name: "order", workers: 4,
            on: [Accept(entity: "order", work: Const("1ms"), emit: ["OrderCreated"])]),
        Service(name: "inventory", workers: 4, consume: (topics: ["OrderCreated"]),
            on: [Handle(event: "OrderCreated", work: Const("2ms"), terminal: true)]),
        Service(name: "audit", workers: 4, consume: (topics: ["OrderCreated"]),
            on: [Handle(event: "OrderCreated", work: Const("2ms"))]),
    ],
    workload: Poisson(rate: "20/s", entity: "order", keys: Sequential, stop: "90s"),
    faults: [
        Crash(node: "audit-1", at: "10s", down_for: "20s"),
        Crash(node: "order-1", at: "20s", down_for: "5s"),
        Crash(node: "inventory-1", at: "40s", down_for: "10s"),
        Crash(node: "audit-1", at: "60s", down_for: "10s"),
        Crash(node: "order-1", at: "70s", down_for: "5s"),
    ],
    invariants: [
        NoLostEntities(entity: "order", deadline_after_heal: "10s"),
        NoDuplicateEffects(effect: "never-applied"),
    ],
)"#;

fn five() -> scenario::Loaded {
    // The effect exists only so the second invariant compiles.
    let text = FIVE_CRASHES.replace(
        r#"on: [Handle(event: "OrderCreated", work: Const("2ms"))]"#,
        r#"on: [Handle(event: "OrderCreated", work: Const("2ms"), effect: "never-applied")]"#,
    );
    scenario::parse("five.ron", &text).unwrap()
}

#[test]
fn shrinking_keeps_exactly_the_crash_that_matters() {
    let loaded = five();
    let before = faultline::sim::run(&loaded.system, 3).unwrap();
    assert!(before.invariants[0].violated() && before.invariants[1].holds());
    let s = shrink(&loaded.scenario, 3, None).unwrap();
    assert_eq!(s.invariant, "no-lost-entities(order)");
    let faults = format!("{:?}", s.scenario.faults);
    assert_eq!(s.scenario.faults.len(), 1, "{faults}");
    assert!(faults.contains("inventory-1") && faults.contains("40s"), "{faults}");
    assert_eq!(s.scenario.invariants.len(), 1);
    // Audit is off the path: it goes too.
    let services: Vec<&str> = s.scenario.services.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(services, ["order", "inventory"]);
    assert!(s.kept.iter().any(|k| k.starts_with("removed Crash(")), "{:?}", s.kept);
    // Still a valid scenario, failing the same way under its seed.
    let again = faultline::sim::run(&system(&scenario::to_ron(&s.scenario)), s.scenario.seed).unwrap();
    assert!(again.invariants[0].violated());
    assert_eq!(s.scenario.seed, 3);
}

#[test]
fn a_seed_that_does_not_fail_has_nothing_to_shrink() {
    let loaded = five();
    let mut calm = loaded.scenario.clone();
    calm.faults.clear();
    assert_eq!(shrink(&calm, 3, None).unwrap_err(), ShrinkError::NoFailure { seed: 3 });
    let e = shrink(&loaded.scenario, 3, Some("no-duplicate-effects(never-applied)")).unwrap_err();
    assert!(e.to_string().contains("holds under seed 3"), "{e}");
}

#[test]
fn the_cli_writes_a_reproducer_that_fails_when_run() {
    let dir = temp_dir("shrink");
    let src = dir.join("five.ron");
    std::fs::write(
        &src,
        FIVE_CRASHES.replace(
            r#"on: [Handle(event: "OrderCreated", work: Const("2ms"))]"#,
            r#"on: [Handle(event: "OrderCreated", work: Const("2ms"), effect: "never-applied")]"#,
        ),
    )
    .unwrap();
    let out = dir.join("min.ron");
    let (src, out_s) = (src.to_string_lossy().into_owned(), out.to_string_lossy().into_owned());
    let (code, stdout, err) = parts(&faultline(&["shrink", &src, "--seed", "3", "--out", &out_s]));
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("reductions kept of") && stdout.contains("still fails no-lost-entities(order)"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.starts_with("// Shrunk by `faultline shrink` from "), "{text}");
    // Its default seed is the failing one.
    let (code, _, _) = parts(&faultline(&["run", &out_s]));
    assert_eq!(code, 1);
    // A seed under which everything holds: exit 2, nothing written.
    let calm = dir.join("calm.ron");
    let (code, _, err) =
        parts(&faultline(&["shrink", "scenarios/orders-log.ron", "--seed", "7", "--out", &calm.to_string_lossy()]));
    assert_eq!(code, 2);
    assert!(err.contains("no failure to shrink"), "{err}");
    assert!(
        !calm.exists()
            && std::fs::read_dir(&dir).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains("partial"))
    );
}

#[test]
fn the_first_failing_seed_of_the_autocommit_sweep_shrinks_to_a_failing_scenario() {
    let dir = temp_dir("shrink-ac");
    let out = dir.join("min.ron").to_string_lossy().into_owned();
    // Seed 0 is the first failing seed of `sweep --seeds 0..400` (see tests/it/sweep.rs).
    let (code, said, err) =
        parts(&faultline(&["shrink", "scenarios/orders-autocommit-crash.ron", "--seed", "0", "--out", &out]));
    assert_eq!(code, 0, "{err}");
    let invariant = said.lines().last().unwrap().split("still fails ").nth(1).unwrap().split(':').next().unwrap();
    let (code, stdout, _) = parts(&faultline(&["run", &out, "--seed", "0"]));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains(&format!("FAIL  {invariant}")), "{invariant}: {stdout}");
}
