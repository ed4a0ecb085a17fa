//! Every class of bad input gets a positioned, explained error (exit 2 from
//! the CLI), never a panic. Each case mutates a bundled scenario and pins
//! the full message.

use faultline::scenario::{self, ScenarioError};

use crate::support::scenario_text;

/// `(case, text to replace, replacement)` applied to orders-log.ron.
const CASES: &[(&str, &str, &str)] = &[
    ("misspelt_field", "Service(name: \"inventory\", workers: 4", "Service(name: \"inventory\", workrs: 4"),
    ("misspelt_variant", "bus: Log(", "bus: Lgo("),
    ("missing_field", "    duration: \"20m\",\n", ""),
    ("dangling_topic", "consume: (topics: [\"OrderCreated\"])", "consume: (topics: [\"OrderCreatd\"])"),
    ("dangling_node", "node: \"inventory-1\"", "node: \"inventory\""),
    ("misspelt_node", "node: \"inventory-1\"", "node: \"invetnory-1\""),
    ("dangling_effect", "NoDuplicateEffects(effect: \"invoice-sent\")", "NoDuplicateEffects(effect: \"invoice-send\")"),
    ("unconsumed_event", "Handle(event: \"InventoryReserved\"", "Handle(event: \"InventoryReservd\""),
    ("bad_duration", "at: \"2m\"", "at: \"2 minutes\""),
    ("duration_overflow", "duration: \"20m\"", "duration: \"99999999999d\""),
    ("absurd_duration", "duration: \"20m\"", "duration: \"9999d\""),
    ("absurd_rate", "rate: \"50/s\"", "rate: \"50000000/s\""),
    ("zero_rate", "rate: \"50/s\"", "rate: \"0/s\""),
    ("bad_rate", "rate: \"50/s\"", "rate: \"fifty\""),
    ("too_many_entities", "rate: \"50/s\"", "rate: \"1000000/s\""),
    ("zero_workers", "workers: 8", "workers: 0"),
    ("negative_workers", "workers: 8", "workers: -8"),
    (
        "absurd_instances",
        "Service(name: \"invoice\", workers: 4",
        "Service(name: \"invoice\", instances: 100000, workers: 4",
    ),
    ("zero_partitions", "partitions: 4", "partitions: 0"),
    ("fault_after_end", "at: \"2m\"", "at: \"30m\""),
    ("uniform_reversed", "latency: Exp(mean: \"2ms\")", "latency: Uniform(min: \"5ms\", max: \"1ms\")"),
    (
        "commit_on_ephemeral",
        "consume: (topics: [\"OrderCreated\"])",
        "consume: (topics: [\"OrderCreated\"], commit: BeforeProcess)",
    ),
    (
        "zero_autocommit",
        "consume: (topics: [\"OrderCreated\"])",
        "consume: (topics: [\"OrderCreated\"], commit: Auto(every: \"0s\"))",
    ),
    (
        "misspelt_commit",
        "consume: (topics: [\"OrderCreated\"])",
        "consume: (topics: [\"OrderCreated\"], commit: AfterProces)",
    ),
    ("reversed_range", "at: \"2m\"", "at: \"3m..2m\""),
    (
        "zero_dedup_window",
        "Service(name: \"invoice\", workers: 4,",
        "Service(name: \"invoice\", workers: 4, dedup: Durable(window: 0),",
    ),
    (
        "convergence_unknown_service",
        "NoDuplicateEffects(effect: \"invoice-sent\"),",
        "ReplicaConvergence(source: \"order\", replica: \"invoce\", table: \"orders\"),",
    ),
    (
        "crash_point_without_outbox",
        "faults: [Crash(node: \"inventory-1\", at: \"2m\", down_for: \"5m\")]",
        "faults: [CrashAt(node: \"inventory-1\", seam: InOutboxRelay, nth: 3, down_for: \"5s\")]",
    ),
    (
        "crash_point_nth_zero",
        "faults: [Crash(node: \"inventory-1\", at: \"2m\", down_for: \"5m\")]",
        "faults: [CrashAt(node: \"inventory-1\", seam: AfterPublish, nth: 0, down_for: \"5s\")]",
    ),
    (
        "crash_point_no_trigger",
        "faults: [Crash(node: \"inventory-1\", at: \"2m\", down_for: \"5m\")]",
        "faults: [CrashAt(node: \"inventory-1\", seam: AfterPublish, down_for: \"5s\")]",
    ),
    (
        "crash_point_bad_probability",
        "faults: [Crash(node: \"inventory-1\", at: \"2m\", down_for: \"5m\")]",
        "faults: [CrashAt(node: \"inventory-1\", seam: AfterPublish, probability: 1.5, down_for: \"5s\")]",
    ),
    (
        "misspelt_seam",
        "faults: [Crash(node: \"inventory-1\", at: \"2m\", down_for: \"5m\")]",
        "faults: [CrashAt(node: \"inventory-1\", seam: AfterStateWirte, nth: 3, down_for: \"5s\")]",
    ),
    ("empty_empirical", "latency: Exp(mean: \"2ms\")", "latency: Empirical([])"),
    ("bad_empirical_value", "latency: Exp(mean: \"2ms\")", "latency: Empirical([\"1ms\", \"2 ms\", \"3xs\"])"),
    ("wrong_entity", "NoLostEntities(entity: \"order\"", "NoLostEntities(entity: \"ordr\""),
    ("no_entry_service", "Accept(entity: \"order\"", "Accept(entity: \"user\""),
    ("wrong_type", "seed: 7", "seed: \"seven\""),
    ("workload_after_end", "stop: \"15m\"", "start: \"25m\", stop: \"30m\""),
    (
        "random_window_empty",
        "faults: [Crash(node: \"inventory-1\", at: \"2m\", down_for: \"5m\")]",
        "faults: [RandomCrashes(nodes: [\"inventory-1\"], mtbf: \"1m\", mttr: \"5s\", from: \"5m\", until: \"3m\")]",
    ),
    (
        "pause_after_end",
        "faults: [Crash(node: \"inventory-1\", at: \"2m\", down_for: \"5m\")]",
        "faults: [Pause(node: \"inventory-1\", at: \"25m\", for: \"1m\")]",
    ),
    ("no_terminal", "effect: \"invoice-sent\", terminal: true", "effect: \"invoice-sent\""),
    (
        "partition_no_traffic",
        "faults: [Crash(node: \"inventory-1\", at: \"2m\", down_for: \"5m\")]",
        "faults: [Partition(groups: [[\"order-1\"], [\"inventory-1\"]], at: \"2m\", for: \"1m\")]",
    ),
    (
        "partition_both_sides",
        "faults: [Crash(node: \"inventory-1\", at: \"2m\", down_for: \"5m\")]",
        "faults: [Partition(groups: [[\"order-1\", \"bus\"], [\"bus\"]], at: \"2m\", for: \"1m\")]",
    ),
    (
        "link_does_nothing",
        "faults: [Crash(node: \"inventory-1\", at: \"2m\", down_for: \"5m\")]",
        "faults: [Link(from: \"order-1\", to: \"bus\", at: \"2m\", for: \"1m\")]",
    ),
    (
        "link_duplicate_reliable",
        "faults: [Crash(node: \"inventory-1\", at: \"2m\", down_for: \"5m\")]",
        "faults: [Link(from: \"bus\", to: \"inventory-1\", duplicate: 0.1, at: \"2m\", for: \"1m\")]",
    ),
    (
        "link_reorder_fetch",
        "faults: [Crash(node: \"inventory-1\", at: \"2m\", down_for: \"5m\")]",
        "faults: [Link(from: \"bus\", to: \"inventory-1\", reorder: (probability: 0.1, by: Const(\"5ms\")), at: \"2m\", for: \"1m\")]",
    ),
    // Limits: each checked before anything is built from the number.
    (
        "huge_instances",
        "Service(name: \"invoice\", workers: 4",
        "Service(name: \"invoice\", instances: 1000000000, workers: 4",
    ),
    ("huge_broker_count", "bus: Log(partitions: 4,", "bus: Log(partitions: 4, brokers: (count: 1000000000),"),
    (
        "too_many_workers_in_all",
        "Service(name: \"invoice\", workers: 4",
        "Service(name: \"invoice\", instances: 1000, workers: 5000",
    ),
    (
        "random_plan_too_dense",
        "faults: [Crash(node: \"inventory-1\", at: \"2m\", down_for: \"5m\")]",
        "faults: [RandomCrashes(nodes: [\"inventory-1\"], mtbf: \"1ms\", mttr: \"1ms\")]",
    ),
    ("too_many_partitions", "", ""),
    ("overlong_name", "", ""),
    ("too_many_problems", "", ""),
    // ron's own errors, explained.
    ("number_for_a_variant", "keys: Uniform(1000)", "keys: 500"),
    ("truncated", "", ""),
    ("empty", "", ""),
    ("not_ron", "", ""),
];

fn mutate(case: &str, from: &str, to: &str) -> String {
    let base = scenario_text("orders-log.ron");
    match case {
        "truncated" => base[..base.find("faults:").unwrap()].to_string(),
        "empty" => String::new(),
        "not_ron" => "{\"name\": \"this is json\"}".to_string(),
        // 1,000 topics of 1,024 partitions each.
        "too_many_partitions" => {
            let topics: Vec<String> = (0..1000).map(|i| format!("\"T{i}\"")).collect();
            base.replacen("partitions: 4", "partitions: 1024", 1).replacen(
                "emit: [\"InventoryReserved\"]",
                &format!("emit: [\"InventoryReserved\", {}]", topics.join(", ")),
                1,
            )
        }
        "overlong_name" => base.replacen("name: \"invoice\"", &format!("name: \"{}\"", "x".repeat(30_000)), 1),
        // 9,000 problems: the first 50 are shown, the rest counted.
        "too_many_problems" => {
            let bad: Vec<String> =
                (0..9000).map(|i| format!("Crash(node: \"nobody-{i}\", at: \"1m\", down_for: \"1s\")")).collect();
            base.replacen(
                "faults: [Crash(node: \"inventory-1\", at: \"2m\", down_for: \"5m\")]",
                &format!("faults: [{}]", bad.join(",\n        ")),
                1,
            )
        }
        "commit_on_ephemeral" => base.replacen(from, to, 1).replacen(
            "bus: Log(partitions: 4, latency: Exp(mean: \"2ms\"))",
            "bus: Ephemeral(latency: Exp(mean: \"2ms\"))",
            1,
        ),
        _ => {
            assert!(base.contains(from), "{case}: {from:?} not in the base scenario");
            base.replacen(from, to, 1)
        }
    }
}

#[test]
fn each_bad_input_is_explained_with_its_position() {
    for &(case, from, to) in CASES {
        let src = mutate(case, from, to);
        let err = match scenario::parse("scenarios/bad.ron", &src) {
            Ok(_) => panic!("{case}: accepted"),
            Err(e) => e,
        };
        let ScenarioError::Invalid { diagnostics, .. } = &err else { panic!("{case}: {err}") };
        assert!(!diagnostics.is_empty(), "{case}");
        let text = err.to_string();
        assert!(text.starts_with("scenarios/bad.ron:"), "{case}: {text}");
        insta::assert_snapshot!(format!("bad_{case}"), text);
    }
}

#[test]
fn a_misspelt_field_is_located_and_corrected() {
    let src = mutate("misspelt_field", CASES[0].1, CASES[0].2);
    let err = scenario::parse("x.ron", &src).unwrap_err();
    let d = &err.diagnostics()[0];
    let line = src.lines().nth(d.line - 1).unwrap();
    assert!(line[d.col - 1..].starts_with("workrs"), "{line:?} at {}", d.col);
    assert!(d.help.as_deref().unwrap().starts_with("did you mean `workers`?"));
}

#[test]
fn a_truncated_file_says_so_at_its_end() {
    let src = mutate("truncated", "", "");
    let err = scenario::parse("x.ron", &src).unwrap_err();
    let d = &err.diagnostics()[0];
    assert!(d.message.contains("unexpected end of file"), "{}", d.message);
    assert_eq!(d.line, src.lines().count() + usize::from(src.ends_with('\n')));
}

#[test]
fn several_problems_are_reported_together_in_file_order() {
    let src = mutate("x", "rate: \"50/s\"", "rate: \"0/s\"").replace("node: \"inventory-1\"", "node: \"nobody\"");
    let err = scenario::parse("x.ron", &src).unwrap_err();
    let ds = err.diagnostics();
    assert_eq!(ds.len(), 2, "{err}");
    assert!(ds[0].line < ds[1].line);
}

#[test]
fn no_mutation_of_a_scenario_makes_it_panic() {
    for (file, mutants) in [
        ("orders-ephemeral.ron", 1500),
        ("circuit-breaker.ron", 200),
        ("escrow-deadlines.ron", 200),
        ("saga-compensation.ron", 200),
    ] {
        mutate_and_run(file, mutants);
    }
}

fn mutate_and_run(file: &str, mutants: usize) {
    // Byte-level mutations (deterministic): parse errors or valid systems, never a panic.
    let base = scenario_text(file).into_bytes();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"()[]{},:\"0123456789-./aemsz_ \n";
    for _ in 0..mutants {
        let mut bytes = base.clone();
        for _ in 0..=(next() % 3) {
            let i = (next() as usize) % bytes.len();
            match next() % 3 {
                0 => bytes[i] = alphabet[(next() as usize) % alphabet.len()],
                1 => {
                    bytes.remove(i);
                }
                _ => bytes.insert(i, alphabet[(next() as usize) % alphabet.len()]),
            }
        }
        let src = String::from_utf8_lossy(&bytes);
        if let Ok(loaded) = scenario::parse("m.ron", &src) {
            // Valid mutants are runnable (shortened so the test stays fast).
            let mut sys = loaded.system;
            sys.limits.events_max = 20_000;
            let _ = faultline::sim::run(&sys, 1).expect("a valid scenario sets up");
        }
    }
}

/// `(scenario, case, text to replace, replacement)`: cases of the patterns' settings.
const PATTERN_CASES: &[(&str, &str, &str, &str)] = &[
    ("circuit-breaker.ron", "call_unknown_service", "call: (service: \"payment\"", "call: (service: \"paymnet\""),
    ("circuit-breaker.ron", "call_unhandled_request", "request: \"Charge\"", "request: \"Charg\""),
    ("circuit-breaker.ron", "call_zero_timeout", "timeout: \"300ms\"", "timeout: \"0s\""),
    ("circuit-breaker.ron", "call_bad_jitter", "jitter: 1.0", "jitter: 1.5"),
    ("circuit-breaker.ron", "call_zero_breaker", "failures: 5", "failures: 0"),
    ("circuit-breaker.ron", "breaker_not_settings", "breaker: (failures: 5, open_for: \"5s\")", "breaker: 5"),
    ("circuit-breaker.ron", "call_absurd_retries", "retries: 2", "retries: 5000"),
    ("saga-compensation.ron", "machine_missing", "machine: (terminal: [\"completed\", \"compensated\"]),", ""),
    ("escrow-deadlines.ron", "machine_two_deadlines", "(state: \"awaiting-seller\"", "(state: \"awaiting-buyer\""),
    ("escrow-deadlines.ron", "machine_zero_deadline", "after: \"2d\"", "after: \"0s\""),
    ("escrow-deadlines.ron", "rule_unknown_event", "from: \"funds-held\"", "from: \"funds-hold\""),
    ("escrow-deadlines.ron", "rule_unknown_state", "prior: \"state awaiting-funds\"", "prior: \"state awaiting-fund\""),
    ("escrow-deadlines.ron", "decline_bad_probability", "probability: 0.1", "probability: 1.1"),
    (
        "saga-compensation.ron",
        "saga_unknown_effect",
        "compensation: \"stock-released\"",
        "compensation: \"stock-release\"",
    ),
    (
        "saga-compensation.ron",
        "saga_no_steps",
        "steps: [(effect: \"stock-reserved\", compensation: \"stock-released\"),\n                              (effect: \"card-charged\", compensation: \"card-refunded\")]",
        "steps: []",
    ),
    ("saga-compensation.ron", "flaky_certain", "flaky: 0.3", "flaky: 1.0"),
    ("email-fanout.ron", "prefetch_auto_ack", "ack: Manual)", "ack: Auto, prefetch: 5)"),
    (
        "broker-acks-all.ron",
        "partition_bus_broker",
        "faults: [Crash(node: \"broker-1\", at: \"2m\", down_for: \"1m\")]",
        "faults: [Partition(groups: [[\"bus\"], [\"broker-1\"]], at: \"2m\", for: \"1m\")]",
    ),
    (
        "email-fanout.ron",
        "source_never_writes",
        "work: Exp(mean: \"2ms\"), write: \"email\",",
        "work: Exp(mean: \"2ms\"),",
    ),
];

#[test]
fn each_bad_pattern_setting_is_explained_with_its_position() {
    for &(file, case, from, to) in PATTERN_CASES {
        let base = scenario_text(file);
        assert!(base.contains(from), "{case}: {from:?} not in {file}");
        let err = scenario::parse("scenarios/bad.ron", &base.replacen(from, to, 1))
            .err()
            .unwrap_or_else(|| panic!("{case}: accepted"));
        insta::assert_snapshot!(format!("bad_{case}"), err.to_string());
    }
}
