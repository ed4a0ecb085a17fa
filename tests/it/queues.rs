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
    assert_eq!(sys.workload.count, Some(200));
}
