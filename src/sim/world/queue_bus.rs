//! The Queue bus on the event loop's side: sending a queue's messages to
//! its consumers (credit, flow-control window, trimming), their arrival,
//! ack timeouts (a closed channel or one message back), a consumer's
//! reconnection and crash, and where a returned message goes (its queue, or
//! the dead-letter queue at its delivery limit). The broker's bookkeeping is
//! `crate::bus::queue`; its own crashes and publisher confirms are
//! `queue_broker`.

use super::{AUTO_ACKED, Ev, Source, World};
use crate::service::Message;
use crate::sim::SimTime;
use crate::system::QueueKind;
use crate::trace::{LossReason, RecordKind};

impl World<'_, '_> {
    /// `msg` from `from` reaches the queue broker: stored in every queue
    /// bound to its kind (confirmed later, with confirms), each of which
    /// delivers what its consumers have room for. An unreachable broker
    /// refuses it.
    pub(super) fn queue_publish(&mut self, from: u32, msg: Message) {
        if !self.qlink.reachable {
            return self.queue_broker_unreachable(from, msg);
        }
        if self.queue_cfg.confirms {
            self.await_confirm(from, msg);
        }
        let bound = self.broker.publish(msg, self.now).len();
        for i in 0..bound {
            let q = self.broker.bindings[msg.kind.0 as usize][i];
            self.dispatch(q);
        }
    }

    /// Sends queue `q`'s waiting messages to consumers that are up and have
    /// credit, while the broker is up and its clients connected.
    pub(super) fn dispatch(&mut self, q: u32) {
        if !self.qlink.reachable {
            return;
        }
        loop {
            let nodes = &self.nodes;
            // A draining consumer has cancelled: it finishes what it holds.
            let up = |n: u32| nodes[n as usize].up && !nodes[n as usize].draining;
            let buffered = |n: u32| nodes[n as usize].fifo.len() as u32;
            let Some(slot) = self.broker.deliver_next(q, up, buffered) else { return };
            self.broker.sent(slot, self.now);
            let d = *self.broker.get(slot);
            if let Some(max_len) = self.queue_cfg.max_len
                && d.pending.seq.saturating_add(max_len) <= self.broker.appended[d.pending.msg.kind.0 as usize]
            {
                // Trimmed away: XREADGROUP skips it, XAUTOCLAIM reports it deleted.
                self.broker.settle(slot);
                self.lose(d.node, &d.pending.msg, LossReason::Trimmed);
                continue;
            }
            if d.pending.deliveries > 1 {
                self.counts.redelivered += 1;
                self.series_count(|s, i| s.redelivered[i] += 1);
                self.trace(RecordKind::Redelivered, d.node, &d.pending.msg, u64::from(d.pending.deliveries));
            }
            // One channel from the queue to each consumer: deliveries arrive in order.
            let c = self.transit(d.node);
            let sampled = self.now + self.queue_latency.sample(&mut self.network) + c.delay;
            let node = &mut self.nodes[d.node as usize];
            node.queue_arrival = node.queue_arrival.max(sampled);
            let at = node.queue_arrival + c.held;
            self.queue.push(at, Ev::QueueDeliver { slot, generation: d.generation });
            // A timeout past the end of the run never fires: not scheduled.
            if let Some(timeout) = self.queue_cfg.ack_timeout
                && !d.auto_ack
                && self.now + timeout <= self.end
            {
                self.queue.push(self.now + timeout, Ev::AckTimeout { slot, generation: d.generation });
            }
        }
    }

    pub(super) fn queue_delivered(&mut self, slot: u32, generation: u32) {
        if !self.broker.is_live(slot, generation) {
            return; // taken back (crash, timeout) while on its way
        }
        self.broker.arrived(slot);
        let d = *self.broker.get(slot);
        if !self.nodes[d.node as usize].up {
            // A JetStream consumer that crashed: the server still counts the
            // message pending; it comes back when its AckWait passes (an
            // auto-acked one is gone).
            if d.auto_ack {
                self.broker.settle(slot);
                self.lose(d.node, &d.pending.msg, LossReason::AutoAck);
            }
            return;
        }
        let source = if d.auto_ack {
            self.broker.settle(slot);
            Source::Queue { slot: AUTO_ACKED, generation: 0 }
        } else {
            Source::Queue { slot, generation }
        };
        // The service's wait counts the message's time in the queue, not
        // the delivery's time on the network.
        let available = SimTime(self.now.0 - (d.sent_at - d.pending.queued_at).0);
        self.enqueue_since(d.node, d.pending.msg, source, available);
        // Off the wire: if it started at once, its window has room.
        self.refill(d.node);
    }

    /// Node `n` made room in its flow-control window (a delivery started on
    /// arrival, or a buffered one started): if the window was what held its
    /// queue back, the queue sends more. Credit freed by an ack, a restart
    /// or a reconnection dispatch on their own.
    pub(super) fn refill(&mut self, n: u32) {
        let Some(q) = self.broker.queue_of[n as usize] else { return };
        let held = self.broker.wire[n as usize].saturating_add(self.nodes[n as usize].fifo.len() as u32);
        if held.saturating_add(1) >= self.broker.window {
            self.dispatch(q);
        }
    }

    /// A delivery stayed unacknowledged too long. JetStream (`AckWait`)
    /// takes that message back; RabbitMQ (`consumer_timeout`) closes the
    /// consumer's channel: everything it holds goes back, what waits in its
    /// buffers is dropped, and it gets nothing until it reconnects. Either
    /// way the consumer may still finish what it was working on, and then
    /// its effects happen twice.
    pub(super) fn ack_timed_out(&mut self, slot: u32, generation: u32) {
        if !self.broker.is_live(slot, generation) {
            return;
        }
        if !self.queue_cfg.kind.closes_channel_on_timeout() {
            let d = self.broker.settle(slot);
            self.give_back(&d);
            self.dispatch(d.queue);
            return;
        }
        let n = self.broker.get(slot).node;
        self.drop_buffered(n);
        self.broker.detached[n as usize] = true;
        let epoch = self.nodes[n as usize].epoch;
        self.queue.push(self.now + self.queue_cfg.reconnect, Ev::QueueReconnect { node: n, epoch });
        let returned = self.close_channel(n);
        self.trace_node(RecordKind::ChannelClosed, n, returned);
    }

    /// The broker sees node `n`'s channel close (a crash, a consumer
    /// timeout): its unacknowledged messages go back, in the order they
    /// were delivered, and its queue delivers to the others.
    pub(super) fn close_channel(&mut self, n: u32) -> u64 {
        let returned = self.broker.take_node(n);
        returned.iter().for_each(|d| self.give_back(d));
        let mut touched: Vec<u32> = returned.iter().map(|d| d.queue).collect();
        touched.sort_unstable();
        touched.dedup();
        for q in touched {
            self.dispatch(q);
        }
        returned.len() as u64
    }

    /// Node `n` opens a new channel after the broker closed its last one.
    pub(super) fn queue_reconnect(&mut self, n: u32, epoch: u32) {
        if self.nodes[n as usize].epoch != epoch || !self.broker.detached[n as usize] {
            return; // crashed meanwhile: its restart reconnects
        }
        self.broker.detached[n as usize] = false;
        self.trace_node(RecordKind::Reconnected, n, 0);
        if let Some(q) = self.broker.queue_of[n as usize] {
            self.dispatch(q);
        }
    }

    /// A delivery comes back to the broker unacknowledged (a nack, an ack
    /// timeout, its consumer's crash): back to the head or the tail of its
    /// queue, as its kind does, or, once it has had the deliveries its
    /// delivery limit allows, to the dead-letter queue (RabbitMQ) or given
    /// up on (JetStream's `max_deliver`). Every delivery counts, however it
    /// ended, so a message that kills its consumer is parked too.
    pub(super) fn give_back(&mut self, d: &crate::bus::queue::Delivery) {
        if self.queue_cfg.deliveries_allowed.is_some_and(|m| d.pending.deliveries >= m) {
            self.counts.dead_lettered += 1;
            self.trace(RecordKind::DeadLettered, d.node, &d.pending.msg, u64::from(d.pending.deliveries));
        } else {
            self.broker.requeue(d, self.queue_cfg.kind.requeue_at_head());
        }
    }

    /// The queue broker sees node `n`'s connection drop: auto-acked
    /// messages on their way are gone. RabbitMQ puts the unacknowledged
    /// ones back now; a JetStream or Redis consumer is durable, so its
    /// pending messages wait (for their AckWait, a claim, or its restart).
    pub(super) fn crash_queue_consumer(&mut self, n: u32) {
        self.lose_auto_acked_on_wire(n);
        if self.queue_cfg.kind.returns_on_crash() {
            self.close_channel(n);
        }
        self.broker.detached[n as usize] = false;
    }

    /// Node `n` restarted: a queue consumer opens a new connection, whatever
    /// closed the last one, and is sent what its credit allows.
    pub(super) fn restart_queue_consumer(&mut self, n: u32) {
        let Some(q) = self.broker.queue_of[n as usize] else { return };
        self.broker.detached[n as usize] = false;
        if self.queue_cfg.kind == QueueKind::RedisStream {
            // It reads its own pending entries first (XREADGROUP from 0).
            self.close_channel(n);
        }
        self.dispatch(q);
    }

    /// Messages on their way to node `n` with auto-ack, when its connection
    /// drops: the broker forgot them when it sent them, so they are gone.
    pub(super) fn lose_auto_acked_on_wire(&mut self, n: u32) {
        for (slot, d) in self.broker.live_auto_acked_to(n) {
            self.broker.settle(slot);
            self.lose(n, &d.pending.msg, LossReason::AutoAck);
        }
    }

    /// Node `n`'s channel closed under it while it lives (a consumer
    /// timeout, the broker's crash): the client drops the deliveries waiting
    /// in its buffers, which the broker takes back.
    pub(super) fn drop_buffered(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        node.account_fifo(self.now);
        node.fifo.retain(|j| !matches!(j.source, Source::Queue { slot, .. } if slot != AUTO_ACKED));
    }
}
