//! The Queue bus's kinds (RabbitMQ classic and quorum queues, JetStream)
//! on the conformance situations: the counts the real brokers gave
//! (`conformance/`, run by `.ci/run` against RabbitMQ and NATS) are pinned
//! here on faultline's side, so a change to the model that breaks them
//! fails `cargo test` even where no broker is installed.

use faultline::system::System;
use faultline::trace::{Record, RecordKind};

use crate::support::{records, root, system};

/// The conformance scenario `name`, its system and its trace under seed 1.
fn situation(name: &str) -> (System, Vec<Record>) {
    let path = root().join("conformance/scenarios").join(format!("{name}.ron"));
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let sys = system(&src);
    let rs = records(&sys, 1);
    (sys, rs)
}

/// Node index of `name` (`consumer-1`, ...).
fn node(sys: &System, name: &str) -> u32 {
    sys.node_names().iter().position(|n| n == name).unwrap_or_else(|| panic!("no node {name}")) as u32
}

/// Entities delivered to `consumer`, in delivery order.
fn delivered(rs: &[Record], consumer: u32) -> Vec<u64> {
    rs.iter().filter(|r| r.kind == RecordKind::Enqueued && r.node == consumer).map(|r| r.entity).collect()
}

fn count(rs: &[Record], kind: RecordKind) -> usize {
    rs.iter().filter(|r| r.kind == kind).count()
}

fn position(rs: &[Record], kind: RecordKind) -> usize {
    rs.iter().position(|r| r.kind == kind).unwrap_or_else(|| panic!("no {kind:?} record"))
}

#[test]
fn a_killed_manual_ack_consumer_gets_its_messages_back_at_the_head_in_order() {
    let (sys, rs) = situation("rabbit-manual-ack-kill");
    let c = node(&sys, "consumer-1");
    let restart = position(&rs, RecordKind::Restart);
    let after = delivered(&rs[restart..], c);
    assert_eq!(&after[..12], &[31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42]);
    let redelivered: Vec<u64> = rs.iter().filter(|r| r.kind == RecordKind::Redelivered).map(|r| r.entity).collect();
    assert_eq!(redelivered, (31..=40).collect::<Vec<_>>(), "the prefetch window of 10, flagged redelivered");
    assert_eq!(count(&rs, RecordKind::Lost), 0);
}

#[test]
fn an_auto_ack_consumer_loses_its_flow_control_window_not_the_backlog() {
    let (sys, rs) = situation("rabbit-auto-ack-kill");
    let o = faultline::sim::run(&sys, 1).unwrap();
    // 5,000 waiting, 100 handled, the default window of 4.4 MB (1,074
    // messages of 4 KiB) on the wire and in its buffers when it dies; the
    // rest still queued.
    assert_eq!(o.metrics.lost, 4_400_000 / 4096);
    assert_eq!(o.invariants[0].counts["unresolved_at_end"], 5000 - 100 - 1074);
    let c = node(&sys, "consumer-1");
    assert_eq!(rs.iter().filter(|r| r.kind == RecordKind::Handled && r.node == c).count(), 100);

    // A smaller window loses less; the window is what a crash can take.
    let src = std::fs::read_to_string(root().join("conformance/scenarios/rabbit-auto-ack-kill.ron")).unwrap();
    let small = src.replace("message_size: \"4KiB\")", "message_size: \"4KiB\", window: \"200KiB\")");
    assert_ne!(small, src);
    let o = faultline::sim::run(&system(&small), 1).unwrap();
    assert_eq!(o.metrics.lost, 50);
    // Flow control bounds bytes: with 100-byte messages all 4,900 were on their way.
    let (_, rs) = situation("rabbit-auto-ack-kill-small");
    assert_eq!(count(&rs, RecordKind::Lost), 4900);

    let bad = src.replace("message_size: \"4KiB\"", "message_size: \"4 parsecs\"");
    let e = faultline::scenario::parse("bad.ron", &bad).unwrap_err().to_string();
    assert!(e.contains("bad.ron:11:") && e.contains("\"4 parsecs\" is not a size"), "{e}");
}

#[test]
fn a_classic_queue_requeues_at_the_head_and_a_quorum_queue_at_the_tail() {
    let (sys, rs) = situation("rabbit-requeue-classic");
    let order = delivered(&rs, node(&sys, "consumer-1"));
    assert!(order.len() > 100 && order.iter().all(|&e| e == 1), "head-of-line blocking: only the poison message");

    let (sys, rs) = situation("rabbit-requeue-quorum");
    let order = delivered(&rs, node(&sys, "consumer-1"));
    assert_eq!(&order[..11], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1], "back at the tail: the others get through");
    assert!(order[10..].iter().all(|&e| e == 1));
}

#[test]
fn delivery_limits_count_as_their_brokers_do() {
    // x-delivery-limit 5 counts returns: 6 deliveries; max_deliver 5 counts deliveries: 5.
    for (name, deliveries) in
        [("rabbit-delivery-limit-quorum", 6), ("js-max-deliver", 5), ("js-max-deliver-ackwait", 5)]
    {
        let (sys, rs) = situation(name);
        assert_eq!(delivered(&rs, node(&sys, "consumer-1")).len(), deliveries, "{name}");
        assert_eq!(count(&rs, RecordKind::DeadLettered), 1, "{name}");
    }
    // A message that kills its consumer: returns by the crash count too.
    let (sys, rs) = situation("rabbit-crashing-consumer-quorum");
    assert_eq!(delivered(&rs, node(&sys, "consumer-1")).len(), 3);
    assert_eq!(count(&rs, RecordKind::DeadLettered), 1);
    let (sys, rs) = situation("rabbit-crashing-consumer-classic");
    assert!(delivered(&rs, node(&sys, "consumer-1")).len() > 10, "no limit on a classic queue");
    assert_eq!(count(&rs, RecordKind::DeadLettered), 0);
}

#[test]
fn a_classic_queue_refuses_a_delivery_limit() {
    let src = std::fs::read_to_string(root().join("conformance/scenarios/rabbit-delivery-limit-quorum.ron")).unwrap();
    let src = src.replace("kind: Quorum, delivery_limit: 5", "kind: Classic, delivery_limit: 5");
    let e = faultline::scenario::parse("classic.ron", &src).unwrap_err().to_string();
    assert!(e.contains("classic queues have no delivery limit"), "{e}");
    assert!(e.contains("classic.ron:9:"), "{e}");
}

#[test]
fn a_consumer_timeout_closes_the_channel_and_an_ack_wait_redelivers_one_message() {
    // RabbitMQ: at the timeout all 10 unacknowledged come back at once, the
    // consumer gets nothing until it reconnects, and the stalled message,
    // finished late, is handled twice.
    let (sys, rs) = situation("rabbit-consumer-timeout");
    let c = node(&sys, "consumer-1");
    let closed = position(&rs, RecordKind::ChannelClosed);
    assert_eq!(rs[closed].aux, 10);
    let reconnected = position(&rs, RecordKind::Reconnected);
    assert!(reconnected > closed);
    assert!(delivered(&rs[closed..reconnected], c).is_empty(), "nothing on a closed channel");
    assert_eq!(delivered(&rs[reconnected..], c)[..10], [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    let handled_3 = rs.iter().filter(|r| r.kind == RecordKind::Handled && r.node == c && r.entity == 3).count();
    assert_eq!(handled_3, 2);
    assert_eq!(count(&rs, RecordKind::Redelivered), 10);

    // JetStream: no channel closes; each message comes back on its own and
    // the consumer stays subscribed.
    let (sys, rs) = situation("js-ackwait");
    let c = node(&sys, "consumer-1");
    assert_eq!(count(&rs, RecordKind::ChannelClosed), 0);
    let first = position(&rs, RecordKind::Redelivered);
    assert_eq!(rs[first].entity, 3);
    assert!(!delivered(&rs[first..], c).is_empty());
}

#[test]
fn default_prefetch_is_unlimited_on_rabbitmq_and_1000_on_jetstream() {
    // Without basic.qos, RabbitMQ sends the whole 200 before the first ack.
    let held = |name: &str| {
        let (sys, rs) = situation(name);
        let c = node(&sys, "consumer-1");
        let first = rs.iter().position(|r| r.kind == RecordKind::Handled && r.node == c).unwrap();
        delivered(&rs[..first], c).len()
    };
    assert_eq!(held("rabbit-default-prefetch"), 200);
    assert_eq!(held("rabbit-prefetch-10"), 10);
    let sys = system(
        &std::fs::read_to_string(root().join("conformance/scenarios/rabbit-default-prefetch.ron"))
            .unwrap()
            .replace("kind: Classic", "kind: JetStream"),
    );
    assert_eq!(sys.services[1].prefetch, 1000, "JetStream's max_ack_pending");
}

#[test]
fn competing_consumers_share_round_robin_among_those_with_credit() {
    let (sys, rs) = situation("rabbit-competing-auto");
    assert_eq!(delivered(&rs, node(&sys, "consumer-1")).len(), 50);
    assert_eq!(delivered(&rs, node(&sys, "consumer-2")).len(), 50);
    let (sys, rs) = situation("rabbit-competing-manual");
    let (fast, slow) = (delivered(&rs, node(&sys, "fast-1")).len(), delivered(&rs, node(&sys, "slow-1")).len());
    assert_eq!(fast + slow, 200);
    assert!(fast > 3 * slow, "the consumer that acks sooner has credit sooner: {fast} vs {slow}");
}

#[test]
fn a_crashed_jetstream_consumer_s_messages_wait_for_their_ack_wait() {
    // RabbitMQ returns a dead consumer's messages at once; a JetStream
    // consumer is durable, so its pending messages come back when their
    // AckWait passes, not at the crash.
    let src = std::fs::read_to_string(root().join("conformance/scenarios/rabbit-manual-ack-kill.ron"))
        .unwrap()
        .replace("kind: Classic)", "kind: JetStream, ack_timeout: \"5s\")");
    let sys = system(&src);
    let rs = records(&sys, 1);
    let crash = position(&rs, RecordKind::Crash);
    let first = position(&rs, RecordKind::Redelivered);
    assert!(rs[first].time.0 >= rs[crash].time.0 + 4_000_000_000, "{:?} vs {:?}", rs[first].time, rs[crash].time);
    assert_eq!(count(&rs, RecordKind::Lost), 0);
}

#[test]
fn a_regular_workload_with_a_count_makes_exactly_that_many() {
    let (sys, rs) = situation("rabbit-prefetch-10");
    assert_eq!(count(&rs, RecordKind::Request), 200);
    let times: Vec<u64> = rs.iter().filter(|r| r.kind == RecordKind::Request).map(|r| r.time.0).collect();
    assert!(times.windows(2).all(|w| w[1] - w[0] == 1_000_000), "1000/s: exactly 1 ms apart");
    assert_eq!(sys.workloads[0].count, Some(200));
}

/// Conformance scenario `name`'s text.
fn text(name: &str) -> String {
    std::fs::read_to_string(root().join("conformance/scenarios").join(format!("{name}.ron"))).unwrap()
}

/// Entities delivered to consumer-1 after the queue broker's restart.
fn delivered_after_restart(sys: &System, rs: &[Record]) -> Vec<u64> {
    let broker = node(sys, "broker-1");
    let back = rs.iter().position(|r| r.kind == RecordKind::Restart && r.node == broker).expect("a broker restart");
    delivered(&rs[back..], node(sys, "consumer-1"))
}

fn lost_for(rs: &[Record], reason: faultline::trace::LossReason) -> usize {
    rs.iter().filter(|r| r.kind == RecordKind::Lost && faultline::trace::loss_of(r.aux).0 == Some(reason)).count()
}

#[test]
fn a_broker_restart_keeps_persistent_messages_of_durable_queues_only() {
    use faultline::trace::LossReason::BrokerRestart;
    let (sys, rs) = situation("rabbit-restart-durable-persistent");
    assert_eq!(delivered_after_restart(&sys, &rs), (1..=100).collect::<Vec<_>>());
    assert_eq!(count(&rs, RecordKind::Lost), 0);
    for name in ["rabbit-restart-durable-transient", "rabbit-restart-transient-queue"] {
        let (sys, rs) = situation(name);
        assert!(delivered_after_restart(&sys, &rs).is_empty(), "{name}");
        assert_eq!(lost_for(&rs, BrokerRestart), 100, "{name}: every message lost to the restart");
    }
}

#[test]
fn a_broker_restart_returns_a_consumer_s_unacknowledged_messages_at_the_head() {
    let (sys, rs) = situation("rabbit-restart-unacked");
    let after = delivered_after_restart(&sys, &rs);
    assert_eq!(after.len(), 70);
    assert_eq!(&after[..11], &[31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41]);
    let redelivered: Vec<u64> = rs.iter().filter(|r| r.kind == RecordKind::Redelivered).map(|r| r.entity).collect();
    assert_eq!(redelivered, (31..=40).collect::<Vec<_>>());
    assert_eq!(count(&rs, RecordKind::Lost), 0);
    // What waited in its buffers (32..40) died with the connection: handled
    // once, after the restart. Only 31, under way at the crash, twice.
    let c = node(&sys, "consumer-1");
    for e in 1..=100 {
        let handled = rs.iter().filter(|r| r.kind == RecordKind::Handled && r.node == c && r.entity == e).count();
        assert_eq!(handled, if e == 31 { 2 } else { 1 }, "message {e}");
    }
}

#[test]
fn a_broker_that_crashes_again_before_its_clients_reconnect_keeps_them_away_until_the_second_restart() {
    // Down 1s-2s (clients would reconnect at 7s), down again 3s-6s: they
    // reconnect at 11s, 5 s after the second restart, not at 7 s.
    let src = text("rabbit-restart-durable-persistent").replace(
        r#"faults: [Crash(node: "broker-1", at: "500ms", down_for: "2s")]"#,
        r#"faults: [Crash(node: "broker-1", at: "1s", down_for: "1s"), Crash(node: "broker-1", at: "3s", down_for: "3s")]"#,
    );
    // Messages all along (10/s), the consumer there from the start.
    let src = src
        .replace("Service(name: \"consumer\", starts_at: \"10s\",", "Service(name: \"consumer\",")
        .replace("rate: \"1000/s\"", "rate: \"10/s\"");
    let sys = system(&src);
    let rs = records(&sys, 1);
    let c = node(&sys, "consumer-1");
    let crash = position(&rs, RecordKind::Crash);
    let first_after = rs[crash..].iter().find(|r| r.kind == RecordKind::Enqueued && r.node == c).unwrap();
    assert_eq!(first_after.time.0, 11_000_000_000 + 1_000_000, "reconnected at 11 s, delivered 1 ms later");
    let reconnected: Vec<u64> =
        rs.iter().filter(|r| r.kind == RecordKind::Reconnected && r.node == c).map(|r| r.time.0).collect();
    assert_eq!(reconnected, [11_000_000_000]);
}

#[test]
fn publisher_confirms_resend_every_unconfirmed_message_of_a_live_producer_only() {
    // Confirms take 50 ms: at the crash (45 ms) messages 1..5 are stored
    // and unconfirmed. All five are resent: five duplicates.
    let base = text("rabbit-publish-while-down-confirms")
        .replace("latency: Const(\"1ms\")", "latency: Const(\"50ms\")")
        .replace("at: \"495ms\"", "at: \"45ms\"");
    let sys = system(&base);
    let rs = records(&sys, 1);
    let got = delivered(&rs, node(&sys, "consumer-1"));
    for e in 1..=5 {
        assert_eq!(got.iter().filter(|&&x| x == e).count(), 2, "message {e}");
    }
    assert_eq!(got.len(), 105);

    // The producer crashes at 100 ms, while the broker is down, and is
    // back before the broker: what it kept (6..10, published while the
    // broker was down) died with it; 1..5, which the broker stored, are
    // not lost and not resent by its new incarnation.
    let src = base.replace(
        r#"faults: [Crash(node: "broker-1", at: "45ms", down_for: "1s")]"#,
        r#"faults: [Crash(node: "broker-1", at: "45ms", down_for: "1s"), Crash(node: "producer-1", at: "100ms", down_for: "50ms")]"#,
    );
    let sys = system(&src);
    let rs = records(&sys, 1);
    let got = delivered(&rs, node(&sys, "consumer-1"));
    for e in 1..=5 {
        assert_eq!(got.iter().filter(|&&x| x == e).count(), 1, "message {e}: in the queue once");
    }
    let lost: Vec<u64> = rs
        .iter()
        .filter(|r| {
            r.kind == RecordKind::Lost
                && faultline::trace::loss_of(r.aux).0 == Some(faultline::trace::LossReason::CrashedWhileHeld)
        })
        .map(|r| r.entity)
        .collect();
    assert_eq!(lost, (6..=10).collect::<Vec<_>>());
}

#[test]
fn publishes_while_the_broker_is_down_are_lost_without_confirms_and_resent_with_them() {
    use faultline::trace::LossReason::BrokerDown;
    let (sys, rs) = situation("rabbit-publish-while-down");
    assert_eq!(lost_for(&rs, BrokerDown), 50);
    assert_eq!(delivered(&rs, node(&sys, "consumer-1")), (1..=50).collect::<Vec<_>>());
    let (sys, rs) = situation("rabbit-publish-while-down-confirms");
    assert_eq!(count(&rs, RecordKind::Lost), 0);
    assert_eq!(delivered(&rs, node(&sys, "consumer-1")), (1..=100).collect::<Vec<_>>());
}

#[test]
fn a_confirm_lost_in_a_broker_crash_makes_a_duplicate() {
    // Confirms take 10 ms to come back; the broker crashes 4 ms after
    // message 5 was stored: its producer never hears of it and resends it.
    let src = text("rabbit-publish-while-down-confirms")
        .replace("latency: Const(\"1ms\")", "latency: Const(\"10ms\")")
        .replace("at: \"495ms\"", "at: \"45ms\"")
        .replace("invariants: [", "invariants: [NoDuplicateEffects(effect: \"handled\"), ");
    let sys = system(&src);
    let rs = records(&sys, 1);
    let got = delivered(&rs, node(&sys, "consumer-1"));
    assert_eq!(got.iter().filter(|&&e| e == 5).count(), 2, "message 5 twice");
    assert_eq!(got.len(), 101);
    let resent: Vec<u64> = rs.iter().filter(|r| r.kind == RecordKind::Resent).map(|r| r.entity).collect();
    // The one whose confirm the crash cut off, then those published while it was down.
    assert_eq!(resent, (5..=100).collect::<Vec<_>>());
    assert_eq!(count(&rs, RecordKind::Lost), 0);
    let o = faultline::sim::run(&sys, 1).unwrap();
    assert_eq!(o.invariants[0].counts["extra_applications"], 1);

    // In a transient queue the crash takes every message but the unconfirmed
    // one, which its producer resends: 4 lost, none twice.
    let transient = src.replace("confirms: true", "confirms: true, durable: false");
    let sys = system(&transient);
    let rs = records(&sys, 1);
    let got = delivered(&rs, node(&sys, "consumer-1"));
    assert_eq!(lost_for(&rs, faultline::trace::LossReason::BrokerRestart), 4);
    assert_eq!(got.iter().filter(|&&e| e == 5).count(), 1);
    assert_eq!(got.len(), 96);
}

#[test]
fn the_queue_broker_is_named_for_crashes_only() {
    let base = text("rabbit-restart-durable-persistent");
    for (fault, message) in [
        (
            r#"Partition(groups: [["broker-1"], ["consumer-1"]], at: "1s", for: "1s")"#,
            "a partition names a Queue bus's broker `bus`",
        ),
        (
            r#"Link(from: "producer-1", to: "broker-1", drop: 0.5, at: "1s", for: "1s")"#,
            "a link names a Queue bus's broker `bus`",
        ),
        (
            r#"CrashAt(node: "broker-1", seam: AfterPublish, nth: 1, down_for: "1s")"#,
            "`broker-1` is a broker: seams are inside handlers",
        ),
        (r#"Pause(node: "broker-1", at: "1s", for: "1s")"#, "no service instance is called `broker-1`"),
    ] {
        let src = base.replace(r#"Crash(node: "broker-1", at: "500ms", down_for: "2s")"#, fault);
        let e = faultline::scenario::parse("b.ron", &src).unwrap_err().to_string();
        assert!(e.contains(message) && e.contains("b.ron:17:"), "{fault}: {e}");
    }
    for (setting, message) in [
        ("kind: Quorum, durable: false", "quorum queues are always durable"),
        ("kind: Quorum, persistent: false", "quorum queues are always durable"),
        ("kind: JetStream, durable: false", "a JetStream stream survives a server restart"),
    ] {
        let src = base.replace("kind: Classic, confirms: true", setting);
        let e = faultline::scenario::parse("b.ron", &src).unwrap_err().to_string();
        assert!(e.contains(message) && e.contains("b.ron:8:"), "{setting}: {e}");
    }
    // Random crashes may hit it.
    let src = base.replace(
        r#"Crash(node: "broker-1", at: "500ms", down_for: "2s")"#,
        r#"RandomCrashes(nodes: ["broker-1"], mtbf: "2s", mttr: "500ms", until: "8s")"#,
    );
    let sys = system(&src);
    let rs = records(&sys, 1);
    assert!(count(&rs, RecordKind::Crash) > 1);
}

#[test]
fn a_dead_redis_consumer_s_pending_entries_wait_for_a_claim_in_order() {
    let (sys, rs) = situation("redis-pending-after-crash");
    let claimer = node(&sys, "claimer-1");
    let claimed: Vec<(u64, u64)> =
        rs.iter().filter(|r| r.kind == RecordKind::Redelivered).map(|r| (r.entity, r.aux)).collect();
    assert_eq!(claimed, (1..=10).map(|e| (e, 2)).collect::<Vec<_>>(), "oldest first, delivery count 2");
    assert_eq!(delivered(&rs, claimer), (1..=20).collect::<Vec<_>>());
    assert_eq!(count(&rs, RecordKind::Lost), 0);

    // Without a claimer's XAUTOCLAIM (no ack_timeout), nothing comes back
    // until the consumer itself restarts and reads its pending entries.
    let src = text("redis-pending-after-crash")
        .replace(", ack_timeout: \"1s\"", "")
        .replace("down_for: \"1h\"", "down_for: \"5s\"")
        .replace("Service(name: \"claimer\", starts_at: \"3s\",", "Service(name: \"claimer\", starts_at: \"19s\",");
    let loaded = faultline::scenario::parse("r.ron", &src).unwrap();
    assert!(loaded.warnings.iter().any(|w| w.to_string().contains("nothing claims a dead consumer's pending entries")));
    assert!(faultline::scenario::parse("r.ron", &text("redis-pending-after-crash")).unwrap().warnings.is_empty());
    let sys = loaded.system;
    let rs = records(&sys, 1);
    let c = node(&sys, "consumer-1");
    let restart = position(&rs, RecordKind::Restart);
    assert_eq!(count(&rs[..restart], RecordKind::Redelivered), 0, "pending, not redelivered, while it is down");
    assert_eq!(&delivered(&rs[restart..], c)[..10], &(1..=10).collect::<Vec<_>>()[..]);
}

#[test]
fn trimming_a_redis_stream_loses_the_pending_entries_of_a_dead_consumer() {
    use faultline::trace::LossReason::Trimmed;
    let (sys, rs) = situation("redis-trim-with-pending");
    let read: Vec<u64> = delivered(&rs, node(&sys, "consumer-1"));
    assert_eq!(read, (1..=10).collect::<Vec<_>>());
    let mut trimmed: Vec<u64> = rs
        .iter()
        .filter(|r| r.kind == RecordKind::Lost && faultline::trace::loss_of(r.aux).0 == Some(Trimmed))
        .map(|r| r.entity)
        .collect();
    trimmed.sort_unstable();
    assert_eq!(trimmed, (1..=15).collect::<Vec<_>>(), "the 10 pending and the 5 nobody read");
    assert_eq!(delivered(&rs, node(&sys, "claimer-1")), (16..=20).collect::<Vec<_>>());

    // A consumer that acknowledges in time loses nothing to trimming.
    let src = text("redis-trim-with-pending").replace("work: Const(\"10s\")", "work: Const(\"1ms\")");
    let rs = records(&system(&src), 1);
    assert_eq!(count(&rs[..position(&rs, RecordKind::Crash)], RecordKind::Lost), 0);

    let bad = text("redis-trim-with-pending").replace("kind: RedisStream", "kind: JetStream");
    let e = faultline::scenario::parse("t.ron", &bad).unwrap_err().to_string();
    assert!(e.contains("`max_len` trims a Redis stream") && e.contains("t.ron:12:"), "{e}");
}

#[test]
fn a_consumer_at_its_flow_control_window_is_sent_more_as_it_makes_room() {
    // A window of one message: each delivery that starts on arrival opens
    // it again. Without a new publish to wake the queue, the backlog still
    // drains, auto-ack and manual alike.
    for ack in ["Auto", "Manual"] {
        let src = text("rabbit-default-prefetch")
            .replace("kind: Classic)", "kind: Classic, window: \"1KB\", message_size: \"1KB\")")
            .replace("ack: Manual)", &format!("ack: {ack})"));
        let sys = system(&src);
        assert_eq!(sys.services[1].auto_ack, ack == "Auto");
        let rs = records(&sys, 1);
        assert_eq!(delivered(&rs, node(&sys, "consumer-1")), (1..=200).collect::<Vec<_>>(), "ack {ack}");
    }
}

#[test]
fn every_conformance_situation_gives_the_same_counts_under_every_seed() {
    // Constant latencies, scripted arrivals and faults: nothing is drawn,
    // so what the table compares holds for seeds 0..8, not only seed 1.
    let dir = root().join("conformance/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 26);
    for path in files {
        let sys = system(&std::fs::read_to_string(&path).unwrap());
        let counts = |seed| {
            let m = faultline::sim::run(&sys, seed).unwrap().metrics;
            (m.lost, m.redelivered, m.dead_lettered, m.handled, m.completed, m.duplicates_skipped)
        };
        let first = counts(0);
        for seed in 1..8 {
            assert_eq!(counts(seed), first, "{} under seed {seed}", path.display());
        }
    }
}
