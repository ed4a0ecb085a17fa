//! The command line: exit codes, JSON output, output files.

use crate::support::{faultline, parts, temp_dir};

#[test]
fn run_exit_codes_follow_the_verdict() {
    let (code, out, _) = parts(&faultline(&["run", "scenarios/orders-ephemeral.ron", "--seed", "7"]));
    assert_eq!(code, 1);
    assert!(out.contains("FAIL  no-lost-entities(order)"), "{out}");
    assert!(out.contains("LOST"), "{out}");
    assert!(out.contains("reproduce   faultline run scenarios/orders-ephemeral.ron --seed 7"));
    let (code, out, _) = parts(&faultline(&["run", "scenarios/orders-log.ron", "--seed", "7"]));
    assert_eq!(code, 0);
    assert!(out.contains("PASS  no-lost-entities(order)"), "{out}");
}

#[test]
fn run_json_has_the_documented_fields() {
    let (code, out, _) = parts(&faultline(&["run", "scenarios/orders-ephemeral.ron", "--seed", "7", "--json"]));
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(v["scenario"], "orders-ephemeral");
    assert_eq!(v["seed"], 7);
    assert!(v["fingerprint"].is_string());
    assert!(v["events"].as_u64().unwrap() > 100_000);
    assert_eq!(v["sim_time_ns"], 1_200_000_000_000u64);
    let inv = &v["invariants"][0];
    assert_eq!(inv["name"], "no-lost-entities(order)");
    assert_eq!(inv["status"], "violated");
    assert!(inv["violations"].as_u64().unwrap() > 0);
    assert!(inv["example"]["lines"].as_array().unwrap().len() >= 3);
    assert_eq!(v["invariants"][1]["status"], "holds");
    assert_eq!(v["reproduce"], "faultline run scenarios/orders-ephemeral.ron --seed 7");
    // Latencies in seconds: end to end, and per service.
    let e2e = &v["metrics"]["e2e_latency_s"];
    let (mean, p50, p99) = (e2e["mean"].as_f64().unwrap(), e2e["p50"].as_f64().unwrap(), e2e["p99"].as_f64().unwrap());
    assert!(0.001 < p50 && p50 < mean && mean < p99 && p99 < 1.0, "{e2e}");
    let inventory = &v["metrics"]["services"]["inventory"];
    assert!(inventory["latency_s"]["mean"].as_f64().unwrap() > 0.0);
    assert!(inventory["wait_s"]["mean"].is_f64());
    assert!(inventory["queue_len_mean"].is_f64());
    assert!(inventory["waited_fraction"].is_f64());
}

#[test]
fn check_accepts_bundled_scenarios_and_rejects_bad_ones_with_exit_2() {
    let (code, out, _) = parts(&faultline(&["check", "scenarios/orders-log.ron"]));
    assert_eq!(code, 0, "{out}");
    let dir = temp_dir("check");
    let bad = dir.join("bad.ron");
    std::fs::write(&bad, crate::support::scenario_text("orders-log.ron").replace("workers: 4", "workrs: 4")).unwrap();
    let (code, out, err) = parts(&faultline(&["check", &bad.to_string_lossy()]));
    assert_eq!(code, 2);
    assert!(out.is_empty());
    let text = crate::support::scenario_text("orders-log.ron");
    let line = 1 + text.lines().position(|l| l.contains("Service(name: \"inventory\", workers: 4")).unwrap();
    assert!(err.contains(&format!("bad.ron:{line}:36: error: unknown field `workrs`")), "{err}");
    assert!(err.contains("did you mean `workers`?"), "{err}");
    let (code, _, err) = parts(&faultline(&["run", &bad.to_string_lossy()]));
    assert_eq!(code, 2);
    assert!(!err.contains("panicked"));
}

#[test]
fn environment_problems_exit_2_and_write_nothing() {
    let (code, _, err) = parts(&faultline(&["run", "scenarios/no-such-file.ron"]));
    assert_eq!(code, 2);
    assert!(err.contains("no-such-file.ron: cannot read the scenario"), "{err}");

    let dir = temp_dir("unwritable");
    let target = dir.join("missing-dir").join("trace.jsonl");
    let (code, out, err) =
        parts(&faultline(&["run", "scenarios/orders-log.ron", "--trace", &target.to_string_lossy()]));
    assert_eq!(code, 2);
    assert!(out.is_empty(), "no summary for a run that could not write its trace");
    assert!(err.contains("cannot write"), "{err}");
    let (code, _, err) = parts(&faultline(&["run", "scenarios/orders-log.ron", "--trace", &dir.to_string_lossy()]));
    assert_eq!(code, 2, "{err}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing half-written");

    let (code, _, err) = parts(&faultline(&["run", "scenarios/orders-log.ron", "--seed", "-3"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = parts(&faultline(&["frobnicate"]));
    assert_eq!(code, 2);
}

#[test]
fn a_run_that_hits_a_limit_exits_2_and_says_why() {
    let dir = temp_dir("limit");
    let f = dir.join("limited.ron");
    let src = crate::support::scenario_text("orders-log.ron")
        .replace("    ],\n)", "    ],\n    limits: (events_max: 5000),\n)");
    assert!(src.contains("events_max"));
    std::fs::write(&f, src).unwrap();
    let (code, out, err) = parts(&faultline(&["run", &f.to_string_lossy()]));
    assert_eq!(code, 2);
    assert!(out.contains("STOPPED EARLY"), "{out}");
    assert!(err.contains("events_max = 5000 reached"), "{err}");
}

#[test]
fn run_writes_a_trace_that_perfetto_and_chrome_tracing_open() {
    use std::collections::BTreeMap;
    let dir = temp_dir("perfetto");
    let (chrome, lines) = (dir.join("run.json"), dir.join("run.jsonl"));
    // The bundled outage, with a tenth of the orders: a smaller file.
    let scenario = dir.join("orders.ron");
    std::fs::write(&scenario, crate::support::scenario_text("orders-ephemeral.ron").replace("\"50/s\"", "\"5/s\""))
        .unwrap();
    let (code, _, err) = parts(&faultline(&[
        "run",
        &scenario.to_string_lossy(),
        "--perfetto",
        &chrome.to_string_lossy(),
        "--trace",
        &lines.to_string_lossy(),
    ]));
    assert_eq!(code, 1, "{err}");
    assert!(lines.exists(), "both files at once");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&chrome).unwrap()).unwrap();
    assert_eq!(v["displayTimeUnit"], "ms");
    let events = v["traceEvents"].as_array().unwrap();
    let of = |ph: &'static str| events.iter().filter(move |e| e["ph"] == ph);
    // Every node is a named process.
    let names: Vec<&str> =
        of("M").filter(|e| e["name"] == "process_name").map(|e| e["args"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["client and bus", "order-1", "inventory-1", "invoice-1"]);
    // Every flow that ends has begun; slices begin and end in pairs.
    let starts: std::collections::BTreeSet<u64> = of("s").map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(of("f").all(|e| starts.contains(&e["id"].as_u64().unwrap())));
    assert!(of("f").count() > 5_000);
    let mut balance: BTreeMap<(u64, u64, String), i64> = BTreeMap::new();
    for e in events.iter().filter(|e| e["ph"] == "b" || e["ph"] == "e") {
        let key = (e["pid"].as_u64().unwrap(), e["id"].as_u64().unwrap(), e["cat"].as_str().unwrap().to_string());
        *balance.entry(key).or_default() += if e["ph"] == "b" { 1 } else { -1 };
    }
    assert!(balance.values().all(|n| *n == 0));
    // The outage: inventory-1 (pid 2) is down from 2m to 7m; what it lost is marked.
    let down: Vec<(&str, f64)> = events
        .iter()
        .filter(|e| e["name"] == "down" && e["pid"] == 2)
        .map(|e| (e["ph"].as_str().unwrap(), e["ts"].as_f64().unwrap()))
        .collect();
    assert_eq!(down, [("b", 120e6), ("e", 420e6)]);
    assert!(of("i").any(|e| e["name"].as_str().unwrap().starts_with("LOST message #")));
}
