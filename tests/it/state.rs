//! State shared by a service's instances (its database) against state per
//! instance: an entity's state machine follows it when its partition moves
//! to another instance only if the instances share it.

use crate::support::system;

/// Orders are placed, then paid about 2 s later; each step publishes an
/// `Update` (one topic, so one partition and its order per order), and
/// fulfilment (two instances in one consumer group) moves the order from
/// `new` to `placed` on the first and to `done` on the second. fulfil-1
/// crashes at 1m for a minute and its partitions move to fulfil-2, which
/// then gets the second update of orders fulfil-1 placed.
fn fulfilment(state: &str) -> String {
    format!(
        r#"Scenario(
    name: "state-test",
    duration: "5m",
    bus: Log(partitions: 4, latency: Exp(mean: "2ms"), session_timeout: "5s"),
    services: [
        Service(name: "orders", workers: 8,
            on: [Accept(entity: "order", work: Const("1ms"), emit: ["Update", "Placed"])]),
        Service(name: "payments", workers: 64, consume: (topics: ["Placed"]),
            on: [Handle(event: "Placed", work: Exp(mean: "2s"), emit: ["Update"])]),
        Service(name: "fulfil", instances: 2, workers: 8, state: {state},
            consume: (topics: ["Update"]),
            machine: (terminal: ["done"]),
            on: [Handle(event: "Update", work: Const("1ms"), from: ["new"], to: "placed"),
                 Handle(event: "Update", work: Const("1ms"), from: ["placed"], to: "done")]),
    ],
    workload: Poisson(rate: "20/s", entity: "order", keys: Uniform(1000), stop: "3m"),
    faults: [Crash(node: "fulfil-1", at: "1m", down_for: "1m")],
    invariants: [NoLostEntities(entity: "order", deadline_after_heal: "1m")],
)"#
    )
}

#[test]
fn a_machine_in_a_shared_database_follows_its_entity_to_another_instance() {
    for seed in 0..5 {
        let o = faultline::sim::run(&system(&fulfilment("Shared")), seed).unwrap();
        assert!(o.all_hold(), "seed {seed}: {:?}", o.invariants);
        let per_instance = faultline::sim::run(&system(&fulfilment("Durable")), seed).unwrap();
        let v = &per_instance.invariants[0];
        // fulfil-2 finds those orders `new` in its own database: their second
        // update only places them, and they never end. The loss is
        // explained: the state was split between the instances.
        assert!(v.violated(), "seed {seed}: {v:?}");
        assert!(v.counts["lost"] > 10, "seed {seed}: {:?}", v.counts);
        assert!(!v.counts.contains_key("unexplained"), "seed {seed}: {:?}", v.counts);
        let story = v.example.as_ref().expect("a story");
        let split = "in its own database while fulfil-1 holds its state";
        assert!(story.lines.iter().any(|l| l.contains(split)), "seed {seed}: {:#?}", story.lines);
    }
}

#[test]
fn shared_state_survives_the_crash_of_every_instance() {
    // Both instances down at once: the shared database keeps every order's state.
    let src = fulfilment("Shared").replace(
        r#"faults: [Crash(node: "fulfil-1", at: "1m", down_for: "1m")],"#,
        r#"faults: [Crash(node: "fulfil-1", at: "1m", down_for: "30s"), Crash(node: "fulfil-2", at: "1m", down_for: "30s")],"#,
    );
    for seed in 0..3 {
        let o = faultline::sim::run(&system(&src), seed).unwrap();
        assert!(o.all_hold(), "seed {seed}: {:?}", o.invariants);
        let volatile = faultline::sim::run(&system(&src.replace("state: Shared", "state: Volatile")), seed).unwrap();
        assert!(volatile.invariants[0].violated(), "seed {seed}: memory dies with the instances");
    }
}
