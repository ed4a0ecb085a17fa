//! Sweeps over many seeds: the same summary for any number of jobs, shards
//! that merge into the summary of one sweep, interruption, reproduction.

use std::sync::atomic::{AtomicBool, Ordering};

use faultline::sweep::{Options, SeedRange, Shard, Summary, Tally, sweep};
use faultline::system::System;

use crate::support::{faultline, parts, scenario_text, system, temp_dir};

const FILE: &str = "scenarios/orders-autocommit-crash.ron";

fn autocommit() -> System {
    system(&scenario_text("orders-autocommit-crash.ron"))
}

fn tally(sys: &System, range: SeedRange, jobs: usize) -> Tally {
    let stop = AtomicBool::new(false);
    let (t, complete) =
        sweep(sys, FILE, "h", range, &Options { jobs, progress: None, stop: &stop, each: None }).unwrap();
    assert!(complete);
    t
}

/// The summary without its wall-clock fields.
fn deterministic(s: &Summary) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap();
    for k in ["wall_ms", "jobs", "seeds_per_s", "events_per_s"] {
        v.as_object_mut().unwrap().remove(k);
    }
    v
}

#[test]
fn a_sweep_gives_the_same_tally_on_one_thread_or_two_and_shards_merge_into_it() {
    let sys = autocommit();
    let range = SeedRange { start: 0, end: 12 };
    let one = tally(&sys, range, 1);
    let two = tally(&sys, range, 2);
    assert_eq!(one, two);
    assert_eq!(one.seeds(), 12);
    // The scenario's header: most seeds lose orders, some duplicate instead.
    let lost = &one.invariants[0];
    assert_eq!(lost.name, "no-lost-entities(order)");
    assert!(lost.failing > 0 && lost.failing < 12, "{}", lost.failing);
    assert!(one.failing_seeds.contains(&1), "the default seed fails: {:?}", one.failing_seeds);
    assert_eq!(one.failing_seeds[0], 0, "the seed tests/it/shrink.rs shrinks");
    // Three uneven shards, merged in any order.
    let shards: Vec<Tally> = (1..=3).rev().map(|k| tally(&sys, range.shard(Shard { k, n: 3 }), 2)).collect();
    let merged = Tally::merge(shards).unwrap();
    assert_eq!(merged, one);
    assert_eq!(deterministic(&Summary::of(&merged, true, None)), deterministic(&Summary::of(&one, true, None)));
}

#[test]
fn shards_with_a_gap_or_of_another_scenario_do_not_merge() {
    let sys = autocommit();
    let a = tally(&sys, SeedRange { start: 0, end: 2 }, 2);
    let c = tally(&sys, SeedRange { start: 3, end: 4 }, 2);
    assert!(Tally::merge(vec![a.clone(), c]).unwrap_err().to_string().contains("do not cover one range"));
    let mut other = tally(&sys, SeedRange { start: 2, end: 3 }, 2);
    other.scenario_hash = "another".into();
    assert!(Tally::merge(vec![a, other]).unwrap_err().to_string().contains("different scenarios"));
}

#[test]
fn an_interrupted_sweep_covers_the_seeds_it_finished() {
    let sys = autocommit();
    let stop = AtomicBool::new(false);
    let progress = |done: u64, _failing: u64| {
        if done >= 3 {
            stop.store(true, Ordering::Relaxed);
        }
    };
    let range = SeedRange { start: 0, end: 40 };
    let (t, complete) =
        sweep(&sys, FILE, "h", range, &Options { jobs: 1, progress: Some(&progress), stop: &stop, each: None })
            .unwrap();
    assert!(!complete);
    assert_eq!(t.range, SeedRange { start: 0, end: 3 });
    assert_eq!(t, tally(&sys, SeedRange { start: 0, end: 3 }, 1));
}

#[test]
fn a_failing_seed_reruns_with_the_fingerprint_the_sweep_saw() {
    let sys = autocommit();
    let t = tally(&sys, SeedRange { start: 0, end: 4 }, 2);
    let s = Summary::of(&t, true, None);
    assert!(!s.reproduce.is_empty());
    for r in &s.reproduce {
        assert_eq!(r.command, format!("faultline run {FILE} --seed {}", r.seed));
        assert_eq!(faultline::sim::run(&sys, r.seed).unwrap().fingerprint, r.fingerprint);
    }
}

#[test]
fn the_cli_sweeps_shards_and_merges_with_exit_codes() {
    let dir = temp_dir("sweep");
    let out = dir.to_string_lossy().into_owned();
    let run = |args: &[&str]| parts(&faultline(args));
    let (code, whole, _) = run(&["sweep", FILE, "--seeds", "0..6", "--jobs", "2", "--json", "--out", &out]);
    assert_eq!(code, 1, "{whole}");
    let whole: serde_json::Value = serde_json::from_str(&whole).unwrap();
    assert_eq!(whole["seeds"], 6);
    assert_eq!(whole["jobs"], 2);
    assert!(whole["failing_seeds"].as_array().unwrap().len() > 1);
    // Two shards into another directory, merged: the same summary.
    let shards = temp_dir("shards");
    let sh = shards.to_string_lossy().into_owned();
    for k in ["1/2", "2/2"] {
        let (code, _, err) = run(&["sweep", FILE, "--seeds", "0..6", "--shard", k, "--jobs", "1", "--out", &sh]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("written to"), "{err}");
    }
    let (code, merged, _) = run(&["merge", &sh, "--json"]);
    assert_eq!(code, 1);
    let mut merged: serde_json::Value = serde_json::from_str(&merged).unwrap();
    let mut whole = whole;
    for k in ["wall_ms", "jobs", "seeds_per_s", "events_per_s"] {
        whole.as_object_mut().unwrap().remove(k);
        merged.as_object_mut().unwrap().remove(k);
    }
    assert_eq!(merged, whole);
    // The whole sweep's own results merge to the same, too.
    let (_, again, _) = run(&["merge", &out, "--json"]);
    let mut again: serde_json::Value = serde_json::from_str(&again).unwrap();
    again.as_object_mut().unwrap().remove("jobs");
    assert_eq!(again, whole);
    // Human summary: the verdicts with their intervals and the commands to rerun.
    let (_, human, _) = run(&["merge", &sh]);
    assert!(human.contains("95% CI") && human.contains("reproduce   faultline run"), "{human}");
}

#[test]
fn bad_sweep_arguments_and_merge_inputs_exit_2() {
    let run = |args: &[&str]| parts(&faultline(args));
    for args in [
        vec!["sweep", FILE, "--seeds", "5..5"],
        vec!["sweep", FILE, "--seeds", "0..10", "--shard", "3/2"],
        vec!["sweep", "scenarios/nope.ron", "--seeds", "0..2"],
        vec!["merge", "scenarios"],
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.is_empty());
    }
    let dir = temp_dir("badmerge");
    let bad = dir.join("x.tally.json");
    std::fs::write(&bad, "{\"scenario\": 3}").unwrap();
    let (code, _, err) = run(&["merge", &bad.to_string_lossy()]);
    assert_eq!(code, 2);
    assert!(err.contains("x.tally.json:1:") && err.contains("not the results"), "{err}");
    // Well-formed JSON, impossible numbers: refused, not a panic.
    let sys = autocommit();
    let mut t = tally(&sys, SeedRange { start: 0, end: 1 }, 1);
    t.range = SeedRange { start: 5, end: 2 };
    std::fs::write(&bad, serde_json::to_string(&t).unwrap()).unwrap();
    let (code, _, err) = run(&["merge", &bad.to_string_lossy()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("inconsistent results"), "{err}");
}

#[test]
fn ctrl_c_prints_the_summary_of_the_seeds_finished_and_writes_no_results() {
    use std::process::{Command, Stdio};
    let dir = temp_dir("sigint");
    let out = dir.to_string_lossy().into_owned();
    let child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["sweep", "bench/sweep/orders-small.ron", "--seeds", "0..1000000", "--jobs", "2", "--out", &out])
        .current_dir(crate::support::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Time to start and register the handler, even on a loaded machine.
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let o = child.wait_with_output().unwrap();
    let (code, stdout, stderr) = parts(&o);
    assert_eq!(code, 130, "{stdout}{stderr}");
    assert!(stdout.contains("INTERRUPTED: the figures below cover the"), "{stdout}");
    assert!(stderr.contains("interrupted: no results written"), "{stderr}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn a_tally_whose_counts_do_not_fit_its_range_is_refused() {
    let sys = autocommit();
    let good = tally(&sys, SeedRange { start: 0, end: 4 }, 1);
    assert_eq!(good.check(), Ok(()));
    assert!(good.failing > 0 && good.invariants.iter().any(|i| i.failing > 0), "the cases below need failures");
    type Change = fn(&mut Tally);
    let cases: [(&str, Change); 7] = [
        ("reversed range", |t| t.range = SeedRange { start: 5, end: 2 }),
        ("more failing seeds than seeds", |t| t.failing = 5),
        ("more inconclusive seeds than seeds", |t| t.inconclusive = 5),
        ("more seeds stopped than seeds", |t| t.stopped_at_limit = 5),
        ("an invariant failing more often than any seed", |t| t.invariants[0].failing = t.failing + 1),
        ("an invariant inconclusive on more seeds than there are", |t| t.invariants[0].inconclusive = 5),
        ("a seed missing from lost_per_seed", |t| t.range.end += 1),
    ];
    for (what, change) in cases {
        let mut t = good.clone();
        change(&mut t);
        let e = t.check().expect_err(what);
        assert!(e.starts_with("inconsistent results ("), "{what}: {e}");
    }
    // At the edges: every seed failing, inconclusive and stopped is a tally a sweep can write.
    let mut t = good.clone();
    (t.failing, t.inconclusive, t.stopped_at_limit) = (4, 4, 4);
    t.invariants[0].failing = 4;
    t.invariants[0].inconclusive = 4;
    assert_eq!(t.check(), Ok(()));
}
