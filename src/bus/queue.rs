//! Durable queues with acknowledgements, as a RabbitMQ broker keeps them.
//!
//! Each consuming service reads from one queue: its own (fan-out: every
//! subscribing service gets every message) or one it shares with other
//! services (competing consumers: each message goes to one of them). A
//! queue delivers round robin to consumers that are up, connected, have
//! prefetch credit and room in their flow-control window (what is on the
//! wire to them or waiting in their buffers). With manual acks a delivered
//! message stays the consumer's until it acks (removed), nacks, crashes or
//! lets the ack timeout pass (requeued at the head or the tail, as the
//! queue's kind does, or dead-lettered at its delivery limit). With auto-ack
//! a message leaves the queue when it is sent.
//!
//! This module is pure bookkeeping; the event loop decides when things
//! happen and what the kind of queue does ([`crate::system::QueueKind`]).

use std::collections::VecDeque;

use crate::service::Message;
use crate::sim::{SimDuration, SimTime};
use crate::system::{BusSpec, QueueKind};

/// A queue bus's settings, from its spec (the defaults of a classic queue
/// that nothing reads, without a queue bus).
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueueSettings {
    /// The broker modelled.
    pub kind: QueueKind,
    pub ack_timeout: Option<SimDuration>,
    /// Deliveries a message gets before it is dead-lettered
    /// ([`QueueKind::deliveries_allowed`] of the delivery limit).
    pub deliveries_allowed: Option<u32>,
    /// Flow control, in messages.
    pub window: u32,
    /// A consumer whose channel was closed reconnects after this.
    pub reconnect: SimDuration,
    /// Queues and messages survive a broker restart.
    pub durable: bool,
    pub persistent: bool,
    /// Publisher confirms.
    pub confirms: bool,
    /// Redis: the stream keeps this many newest entries.
    pub max_len: Option<u64>,
    /// A producer's connection blocked longer than this closes.
    pub heartbeat: SimDuration,
}

impl QueueSettings {
    pub fn of(spec: Option<&BusSpec>) -> QueueSettings {
        match spec {
            Some(BusSpec::Queue {
                kind,
                ack_timeout,
                delivery_limit,
                heartbeat,
                window,
                reconnect,
                durable,
                persistent,
                confirms,
                max_len,
                ..
            }) => QueueSettings {
                kind: *kind,
                ack_timeout: *ack_timeout,
                deliveries_allowed: delivery_limit.map(|l| kind.deliveries_allowed(l)),
                window: *window,
                reconnect: *reconnect,
                durable: *durable,
                persistent: *persistent,
                confirms: *confirms,
                max_len: *max_len,
                heartbeat: *heartbeat,
            },
            _ => QueueSettings {
                kind: QueueKind::Classic,
                ack_timeout: None,
                deliveries_allowed: None,
                window: u32::MAX,
                reconnect: SimDuration::ZERO,
                durable: true,
                persistent: true,
                confirms: false,
                max_len: None,
                heartbeat: SimDuration::ZERO,
            },
        }
    }
}

/// A message waiting in a queue, with the number of times it was delivered.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    pub msg: Message,
    pub deliveries: u32,
    /// When it entered the queue: the consuming service's wait starts here.
    pub queued_at: SimTime,
    /// Its position in its kind's stream (1, 2, ...), for trimming.
    pub seq: u64,
    /// Its place in the order of arrival at the broker: a message put back
    /// at the head goes to its original position.
    pub order: u64,
}

/// One consumer (a node) of a queue and its settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Consumer {
    pub node: u32,
    pub auto_ack: bool,
    pub prefetch: u32,
}

/// A durable queue.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub name: String,
    pub consumers: Vec<Consumer>,
    pub ready: VecDeque<Pending>,
    rr: usize,
}

impl Queue {
    /// An empty queue called `name` with no consumers yet.
    pub fn named(name: String) -> Queue {
        Queue { name, ..Queue::default() }
    }
}

/// A message sent to a consumer and not yet settled.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Delivery {
    pub pending: Pending,
    pub queue: u32,
    pub node: u32,
    /// Tells a live delivery from an earlier use of its slot.
    pub generation: u32,
    /// Delivery order, so a crashed consumer's messages go back in order.
    pub seq: u64,
    pub live: bool,
    /// It reached its consumer (it is no longer on the wire).
    pub arrived: bool,
    pub auto_ack: bool,
    /// When the broker sent it.
    pub sent_at: SimTime,
}

/// All queues, their bindings and the deliveries in progress.
#[derive(Debug, Default)]
pub(crate) struct Broker {
    pub queues: Vec<Queue>,
    /// Per message kind, the queues bound to it.
    pub bindings: Vec<Vec<u32>>,
    /// Per node, the queue it consumes, if any.
    pub queue_of: Vec<Option<u32>>,
    /// Per message kind, the messages published so far (its stream's length
    /// before any trimming).
    pub appended: Vec<u64>,
    /// Messages published so far, of all kinds.
    arrivals: u64,
    /// Per node, manual-ack deliveries not yet settled.
    pub unacked: Vec<u32>,
    /// Per node, live deliveries still on the wire to it.
    pub wire: Vec<u32>,
    /// Per node, true while the broker has closed its channel (it gets
    /// nothing until it reconnects).
    pub detached: Vec<bool>,
    /// Flow control: deliveries on the wire plus messages buffered at a
    /// consumer stay below this.
    pub window: u32,
    deliveries: Vec<Delivery>,
    free: Vec<u32>,
    seq: u64,
}

impl Broker {
    /// A broker for `nodes` nodes, with no queues yet.
    pub fn new(nodes: usize) -> Broker {
        Broker {
            unacked: vec![0; nodes],
            wire: vec![0; nodes],
            detached: vec![false; nodes],
            queue_of: vec![None; nodes],
            window: u32::MAX,
            ..Broker::default()
        }
    }

    /// Appends `msg`, arriving `now`, to every queue bound to its kind;
    /// returns those queues.
    pub fn publish(&mut self, msg: Message, now: SimTime) -> &[u32] {
        let Some(bound) = self.bindings.get(msg.kind.0 as usize) else { return &[] };
        let appended = &mut self.appended[msg.kind.0 as usize];
        *appended += 1;
        let seq = *appended;
        self.arrivals += 1;
        let order = self.arrivals;
        for &q in bound {
            self.queues[q as usize].ready.push_back(Pending { msg, deliveries: 0, queued_at: now, seq, order });
        }
        bound
    }

    /// Takes the next message of queue `q` for a consumer that is up (per
    /// `up`), connected, has credit and room in its window (`buffered`: the
    /// messages waiting in its buffers), round robin; records the delivery
    /// and returns its slot.
    pub fn deliver_next(&mut self, q: u32, up: impl Fn(u32) -> bool, buffered: impl Fn(u32) -> u32) -> Option<u32> {
        let queue = &mut self.queues[q as usize];
        if queue.ready.is_empty() || queue.consumers.is_empty() {
            return None;
        }
        let k = queue.consumers.len();
        let (unacked, wire, detached, window) = (&self.unacked, &self.wire, &self.detached, self.window);
        let pick = (0..k).map(|i| (queue.rr + i) % k).find(|&i| {
            let c = queue.consumers[i];
            let n = c.node as usize;
            up(c.node)
                && !detached[n]
                && (c.auto_ack || unacked[n] < c.prefetch)
                && wire[n].saturating_add(buffered(c.node)) < window
        })?;
        queue.rr = pick + 1;
        let c = queue.consumers[pick];
        let mut pending = queue.ready.pop_front()?;
        pending.deliveries += 1;
        if !c.auto_ack {
            self.unacked[c.node as usize] += 1;
        }
        self.wire[c.node as usize] += 1;
        self.seq += 1;
        let d = Delivery {
            pending,
            queue: q,
            node: c.node,
            generation: 0,
            seq: self.seq,
            live: true,
            arrived: false,
            auto_ack: c.auto_ack,
            sent_at: SimTime::ZERO,
        };
        Some(match self.free.pop() {
            Some(slot) => {
                let generation = self.deliveries[slot as usize].generation.wrapping_add(1);
                self.deliveries[slot as usize] = Delivery { generation, ..d };
                slot
            }
            None => {
                self.deliveries.push(d);
                self.deliveries.len() as u32 - 1
            }
        })
    }

    /// Queue `q`'s messages not yet settled (RabbitMQ's ready plus
    /// unacknowledged): ready, or delivered and neither acked nor back.
    pub fn unsettled(&self, q: u32) -> impl Iterator<Item = &Message> {
        let ready = self.queues[q as usize].ready.iter().map(|p| &p.msg);
        ready.chain(self.deliveries.iter().filter(move |d| d.live && d.queue == q).map(|d| &d.pending.msg))
    }

    /// Every message still in the broker: waiting in a queue, or delivered
    /// and not settled.
    pub fn in_flight(&self) -> impl Iterator<Item = &Message> {
        let waiting = self.queues.iter().flat_map(|q| q.ready.iter().map(|p| &p.msg));
        waiting.chain(self.deliveries.iter().filter(|d| d.live).map(|d| &d.pending.msg))
    }

    /// The delivery in `slot` was sent at `now`.
    pub fn sent(&mut self, slot: u32, now: SimTime) {
        self.deliveries[slot as usize].sent_at = now;
    }

    /// The delivery in `slot`.
    pub fn get(&self, slot: u32) -> &Delivery {
        &self.deliveries[slot as usize]
    }

    /// True if `slot` still holds the live delivery of `generation`.
    pub fn is_live(&self, slot: u32, generation: u32) -> bool {
        let d = &self.deliveries[slot as usize];
        d.live && d.generation == generation
    }

    /// The delivery in `slot` reached its consumer: off the wire.
    pub fn arrived(&mut self, slot: u32) {
        let d = &mut self.deliveries[slot as usize];
        if d.live && !d.arrived {
            d.arrived = true;
            self.wire[d.node as usize] -= 1;
        }
    }

    /// Settles a delivery: frees its slot, the consumer's credit and its
    /// place on the wire.
    pub fn settle(&mut self, slot: u32) -> Delivery {
        let d = &mut self.deliveries[slot as usize];
        let settled = *d;
        if d.live && !d.auto_ack {
            self.unacked[d.node as usize] -= 1;
        }
        if d.live && !d.arrived {
            self.wire[d.node as usize] -= 1;
        }
        d.live = false;
        self.free.push(slot);
        settled
    }

    /// Puts a settled delivery's message back in its queue: at the tail,
    /// or at the head, in its original position among the messages put back
    /// there (RabbitMQ's classic queues; JetStream and Redis redeliver the
    /// oldest first), so that several returned at once keep their order.
    pub fn requeue(&mut self, d: &Delivery, at_head: bool) {
        let ready = &mut self.queues[d.queue as usize].ready;
        if at_head {
            let i = ready.iter().position(|p| p.order > d.pending.order).unwrap_or(ready.len());
            ready.insert(i, d.pending);
        } else {
            ready.push_back(d.pending);
        }
    }

    /// Live auto-ack deliveries on their way to `node`, with their slots.
    pub fn live_auto_acked_to(&self, node: u32) -> Vec<(u32, Delivery)> {
        self.deliveries
            .iter()
            .enumerate()
            .filter(|(_, d)| d.live && d.node == node && d.auto_ack)
            .map(|(i, d)| (i as u32, *d))
            .collect()
    }

    /// Settles every live manual-ack delivery to `node` (its connection
    /// closed) and returns them in the order they were delivered; the
    /// caller puts each back ([`Broker::requeue`]: the last first at the
    /// head, the first first at the tail) or dead-letters it.
    pub fn take_node(&mut self, node: u32) -> Vec<Delivery> {
        let mut held: Vec<(u64, u32)> = self
            .deliveries
            .iter()
            .enumerate()
            .filter(|(_, d)| d.live && d.node == node && !d.auto_ack)
            .map(|(i, d)| (d.seq, i as u32))
            .collect();
        held.sort_unstable();
        held.into_iter().map(|(_, slot)| self.settle(slot)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{EntityId, Kind, MsgId};

    fn msg(id: u64) -> Message {
        Message {
            id: MsgId(id),
            kind: Kind(0),
            key: id,
            entity: EntityId(id),
            cause: MsgId(0),
            sent_at: SimTime::ZERO,
            version: 1,
            fields: [0; crate::service::FIELDS],
        }
    }

    fn broker(consumers: &[Consumer]) -> Broker {
        Broker {
            queues: vec![Queue { name: "q".into(), consumers: consumers.to_vec(), ..Queue::default() }],
            bindings: vec![vec![0]],
            appended: vec![0],
            queue_of: vec![Some(0); 3],
            unacked: vec![0; 3],
            wire: vec![0; 3],
            detached: vec![false; 3],
            window: u32::MAX,
            ..Broker::default()
        }
    }

    #[test]
    fn prefetch_limits_unacked_and_round_robin_shares() {
        let c = |node| Consumer { node, auto_ack: false, prefetch: 2 };
        let mut b = broker(&[c(0), c(1)]);
        for i in 1..=6 {
            b.publish(msg(i), SimTime::ZERO);
        }
        let slots: Vec<u32> = std::iter::from_fn(|| b.deliver_next(0, |_| true, |_| 0)).collect();
        let nodes: Vec<u32> = slots.iter().map(|&s| b.get(s).node).collect();
        assert_eq!(nodes, [0, 1, 0, 1], "two each, then no credit");
        assert_eq!(b.queues[0].ready.len(), 2);
    }

    #[test]
    fn a_crashed_consumer_s_messages_go_back_in_order() {
        let mut b = broker(&[Consumer { node: 0, auto_ack: false, prefetch: 10 }]);
        for i in 1..=4 {
            b.publish(msg(i), SimTime::ZERO);
        }
        let slots: Vec<u32> = (0..3).filter_map(|_| b.deliver_next(0, |_| true, |_| 0)).collect();
        let acked = b.settle(slots[1]);
        assert_eq!(acked.pending.msg.id, MsgId(2));
        let back = b.take_node(0);
        assert_eq!(back.iter().map(|d| d.pending.msg.id.0).collect::<Vec<_>>(), [1, 3]);
        for d in back.iter().rev() {
            b.requeue(d, true);
        }
        let order: Vec<u64> = b.queues[0].ready.iter().map(|p| p.msg.id.0).collect();
        assert_eq!(order, [1, 3, 4]);
        assert_eq!(b.queues[0].ready[0].deliveries, 1);
        assert_eq!(b.unacked[0], 0);
    }

    #[test]
    fn down_consumers_get_nothing_and_auto_ack_ignores_credit() {
        let mut b = broker(&[
            Consumer { node: 0, auto_ack: true, prefetch: 1 },
            Consumer { node: 1, auto_ack: true, prefetch: 1 },
        ]);
        for i in 1..=3 {
            b.publish(msg(i), SimTime::ZERO);
        }
        let slots: Vec<u32> = std::iter::from_fn(|| b.deliver_next(0, |n| n == 1, |_| 0)).collect();
        let nodes: Vec<u32> = slots.iter().map(|&s| b.get(s).node).collect();
        assert_eq!(nodes, [1, 1, 1]);
        assert_eq!(b.unacked, [0, 0, 0]);
    }

    #[test]
    fn messages_put_back_at_the_head_go_to_their_original_positions() {
        let mut b = broker(&[Consumer { node: 0, auto_ack: false, prefetch: 10 }]);
        for i in 1..=6 {
            b.publish(msg(i), SimTime::ZERO);
        }
        let slots: Vec<u32> = (0..4).filter_map(|_| b.deliver_next(0, |_| true, |_| 0)).collect();
        // Back one by one, in any order (timeouts of one instant, nacks):
        // 1, 2, 3, 4 ahead of 5 and 6, as first delivered.
        for &s in &[slots[2], slots[0], slots[3], slots[1]] {
            let d = b.settle(s);
            b.requeue(&d, true);
        }
        let order: Vec<u64> = b.queues[0].ready.iter().map(|p| p.msg.id.0).collect();
        assert_eq!(order, [1, 2, 3, 4, 5, 6]);
        // At the tail (a quorum queue), in the order they come back.
        let s = b.deliver_next(0, |_| true, |_| 0).unwrap();
        let d = b.settle(s);
        b.requeue(&d, false);
        let order: Vec<u64> = b.queues[0].ready.iter().map(|p| p.msg.id.0).collect();
        assert_eq!(order, [2, 3, 4, 5, 6, 1]);
    }

    #[test]
    fn a_reused_slot_has_a_new_generation() {
        let mut b = broker(&[Consumer { node: 0, auto_ack: false, prefetch: 10 }]);
        b.publish(msg(1), SimTime::ZERO);
        b.publish(msg(2), SimTime::ZERO);
        let s1 = b.deliver_next(0, |_| true, |_| 0).unwrap();
        let g1 = b.get(s1).generation;
        b.settle(s1);
        let s2 = b.deliver_next(0, |_| true, |_| 0).unwrap();
        assert_eq!(s1, s2);
        assert!(!b.is_live(s1, g1));
        assert!(b.is_live(s2, b.get(s2).generation));
    }
}
