//! Same scenario and seed: the same trace, byte for byte. Another seed: another fingerprint.

use crate::support::{faultline, parts, temp_dir};

#[test]
fn one_seed_twice_gives_identical_trace_files() {
    let dir = temp_dir("det");
    let (a, b) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    for t in [&a, &b] {
        let o = faultline(&["run", "scenarios/orders-ephemeral.ron", "--seed", "7", "--trace", &t.to_string_lossy()]);
        assert_eq!(parts(&o).0, 1);
    }
    let (x, y) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(x.len() > 1_000_000, "the trace holds the whole run");
    assert!(x == y, "trace files differ");
    // No temporary file is left beside the trace.
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

fn fingerprint(seed: &str) -> String {
    let o = faultline(&["run", "scenarios/orders-log.ron", "--seed", seed, "--json"]);
    let (code, out, _) = parts(&o);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["fingerprint"].as_str().unwrap().to_string()
}

#[test]
fn seeds_seven_and_eight_differ_and_each_is_stable() {
    let (a, b, c) = (fingerprint("7"), fingerprint("8"), fingerprint("7"));
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
    assert_eq!(a, c);
}

#[test]
fn tracing_does_not_change_the_fingerprint() {
    let loaded =
        faultline::scenario::load(&crate::support::root().join("scenarios/orders-ephemeral.ron").to_string_lossy())
            .unwrap();
    let plain = faultline::sim::run(&loaded.system, 3).unwrap();
    let mut sink = crate::support::Collect::default();
    let traced = faultline::sim::run_with(
        &loaded.system,
        3,
        faultline::sim::RunOptions { trace: Some(&mut sink), ..Default::default() },
    )
    .unwrap();
    assert_eq!(plain, traced);
    assert_eq!(sink.0.len() as u64, plain.trace_records);
}
