//! Stories name the decisive step: the typical failure, the group a record
//! was lost for, what kept a node away, the rebalance behind a duplicate,
//! both changes behind a diverged replica.

use faultline::check::Story;
use faultline::outcome::Outcome;
use faultline::sim::run;

use crate::support::{scenario_text, system};

fn story(o: &Outcome, invariant: usize) -> &Story {
    o.invariants[invariant].example.as_ref().unwrap_or_else(|| panic!("a story: {:?}", o.invariants[invariant]))
}

fn text(s: &Story) -> String {
    s.lines.join("\n")
}

#[test]
fn the_example_is_an_entity_of_the_most_common_way_of_failing() {
    // 15,020 orders of the outage find no inventory up; one was in
    // inventory-1's hands at the crash. The story is one of the 15,020.
    let o = run(&system(&scenario_text("orders-ephemeral.ron")), 7).unwrap();
    let s = text(story(&o, 0));
    assert!(s.contains("no instance of inventory was up to receive it"), "{s}");
}

#[test]
fn a_retention_loss_names_the_group_that_had_not_processed_the_record() {
    let src = scenario_text("orders-log.ron").replace(
        r#"bus: Log(partitions: 4, latency: Exp(mean: "2ms")),"#,
        r#"bus: Log(partitions: 4, latency: Exp(mean: "2ms"), retention: "1m"),"#,
    );
    let o = run(&system(&src), 7).unwrap();
    assert!(o.metrics.lost_by_reason["retention"] > 1_000, "{:?}", o.metrics.lost_by_reason);
    let s = text(story(&o, 0));
    assert!(s.contains("retention deleted it from the log before the inventory group had processed it"), "{s}");
    assert!(!s.contains("?"), "{s}");
}

#[test]
fn a_slow_node_is_not_told_as_down() {
    // Inventory runs a hundred times slower for a minute: its FIFO of 10
    // overflows and pushed messages are lost. It was never down.
    let src = scenario_text("orders-ephemeral.ron")
        .replace("Service(name: \"inventory\", workers: 4,", "Service(name: \"inventory\", workers: 4, queue: 10,")
        .replace(
            r#"Crash(node: "inventory-1", at: "2m", down_for: "5m")"#,
            r#"Slow(node: "inventory-1", at: "2m", for: "1m", factor: 100.0)"#,
        );
    let o = run(&system(&src), 7).unwrap();
    assert!(o.metrics.lost_by_reason["queue-full"] > 100, "{:?}", o.metrics.lost_by_reason);
    let s = text(story(&o, 0));
    assert!(s.contains("inventory-1's queue was full"), "{s}");
    assert!(!s.contains("down from"), "{s}");
}

#[test]
fn a_zombie_consumer_s_duplicate_is_told_with_the_rebalance() {
    // invoice-1 stalls for 30 s, past its 10 s session, with work in hand
    // (each invoice takes 100 ms): its partitions move to invoice-2, which
    // processes the records again, while invoice-1, resuming, finishes what
    // it held. Invoices are sent twice.
    let src = scenario_text("orders-log.ron")
        .replace("Service(name: \"invoice\", workers: 4,", "Service(name: \"invoice\", instances: 2, workers: 4,")
        .replace(
            r#"Handle(event: "InventoryReserved", work: Exp(mean: "5ms"),"#,
            r#"Handle(event: "InventoryReserved", work: Exp(mean: "100ms"),"#,
        )
        .replace(
            r#"Crash(node: "inventory-1", at: "2m", down_for: "5m")"#,
            r#"Pause(node: "invoice-1", at: "2m", for: "30s")"#,
        );
    let o = run(&system(&src), 7).unwrap();
    let dup = &o.invariants[1];
    assert!(dup.violated(), "{dup:?}");
    let s = text(story(&o, 1));
    assert!(s.contains("invoice-1 PAUSED"), "{s}");
    assert!(s.contains("invoice-1 lost partition"), "{s}");
    assert!(s.contains("invoice-2 was assigned partition"), "{s}");
}

#[test]
fn a_diverged_replica_s_story_tells_both_changes() {
    let o = run(&system(&scenario_text("email-shared-queue.ron")), 7).unwrap();
    let s = story(&o, 0);
    let last = s.lines.last().unwrap();
    assert!(last.contains(&format!("change {} was the last change users made", s.entity)), "{last}");
    assert!(last.contains("billing's copy holds change"), "{last}");
    // The older change that billing holds is in the story, handled by billing.
    let held: String = last.split("holds change ").nth(1).unwrap().split('\'').next().unwrap().to_string();
    assert!(s.lines.iter().any(|l| l.contains(&format!("sent change {held} "))), "{s:?}");
    assert!(s.lines.iter().any(|l| l.contains("billing-1 handled")), "{s:?}");
}

#[test]
fn a_story_longer_than_its_bound_keeps_its_start_and_end_and_says_what_it_omitted() {
    // An hour of a poison message: 1.5 million records of order 200, more
    // than a story keeps. The story keeps the beginning and the end, says
    // how many steps lie between, and its memory stays bounded.
    let src = scenario_text("poison-no-dlq.ron").replace(r#"duration: "10m""#, r#"duration: "1h""#);
    let o = run(&system(&src), 7).unwrap();
    let s = text(story(&o, 0));
    let omitted = s.lines().find(|l| l.contains("steps omitted here")).unwrap_or_else(|| panic!("{s}"));
    assert!(omitted.contains("a story keeps the first 1,000,000 and the last 20,000 of a run"), "{s}");
    let n: u64 = omitted.split_whitespace().nth(1).unwrap().replace(',', "").parse().unwrap();
    assert!(n > 100_000, "{omitted}");
    // The start, and the end of the run.
    assert!(s.contains("client sent order 200"), "{s}");
    assert!(s.contains("the last at 59m59"), "{s}");
    assert!(s.contains("the run ended at 1h00m00.000s"), "{s}");
}

#[test]
fn a_run_stopped_at_a_limit_tells_no_story() {
    // The story would be a second run to the same limit; the run is an
    // error anyway (exit 2), told as such.
    let src =
        scenario_text("poison-no-dlq.ron").replace("invariants: [", "limits: (events_max: 100000),\n    invariants: [");
    let o = run(&system(&src), 7).unwrap();
    assert!(matches!(o.stopped_by, faultline::outcome::StopReason::EventsMax { limit: 100_000 }), "{:?}", o.stopped_by);
    assert!(o.invariants[0].violated(), "{:?}", o.invariants[0]);
    assert!(o.invariants.iter().all(|v| v.example.is_none()));
}

#[test]
fn stories_told_together_from_one_run_are_those_each_invariant_tells_alone() {
    // Every story of a run comes from one focused rerun with every example
    // entity in focus: the other entities' records must not leak into a story.
    let sys = system(&scenario_text("orders-autocommit-crash.ron"));
    let together = run(&sys, 1).unwrap();
    assert!(together.invariants.len() >= 2);
    for (i, v) in together.invariants.iter().enumerate() {
        let Some(told) = &v.example else { continue };
        let mut alone = sys.clone();
        alone.invariants = vec![sys.invariants[i].clone()];
        let o = run(&alone, 1).unwrap();
        assert_eq!(text(story(&o, 0)), text(told), "invariant {}", v.name);
    }
    assert!(together.invariants.iter().filter(|v| v.example.is_some()).count() >= 2, "two stories compared");
}
