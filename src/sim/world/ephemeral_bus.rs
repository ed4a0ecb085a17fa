//! The ephemeral bus: fire-and-forget pub/sub (NATS core, Redis pub/sub).
//!
//! A publish crosses the producer's link to the bus and, for each
//! subscribing service, the bus's link to one instance up now (picked by
//! key); it is delivered after the bus latency. Nothing is kept: a message
//! is lost if no instance is up, if the network loses it, or if its
//! receiver crashes before it arrives. No acks, no redelivery.

use super::links::Crossing;
use super::{Ev, Source, World};
use crate::fault::network::BUS;
use crate::service::Message;
use crate::trace::LossReason;

impl World<'_, '_> {
    /// `msg` from `from` reaches the bus: pushed to one instance up now of
    /// each subscribing service.
    pub(super) fn ephemeral_publish(&mut self, from: u32, msg: Message) {
        let Some(subs) = self.subscribers.get(msg.kind.0 as usize).map(Vec::len) else { return };
        let up = self.cross(from, BUS);
        if up.lost {
            return self.lose(from, &msg, if up.partitioned { LossReason::Partitioned } else { LossReason::Dropped });
        }
        for i in 0..subs {
            let service = self.subscribers[msg.kind.0 as usize][i];
            match self.pick_up(service, msg.key) {
                None => {
                    let first = self.first_node[service as usize];
                    self.lose(first, &msg, LossReason::NoSubscriberUp);
                }
                Some(n) => {
                    let down = self.cross(BUS, n);
                    if down.lost {
                        let reason = if down.partitioned { LossReason::Partitioned } else { LossReason::Dropped };
                        self.lose(n, &msg, reason);
                        continue;
                    }
                    let copies = 1 + u32::from(up.duplicated || down.duplicated);
                    let c = Crossing { delay: up.delay + down.delay, held: up.held + down.held, ..up };
                    for _ in 0..copies {
                        let slot = self.inflight.insert(msg);
                        let latency = self.eph_latency.sample(&mut self.network);
                        let at = self.arrive_on(from, n, latency, &c);
                        let epoch = self.nodes[n as usize].epoch;
                        self.queue.push(at, Ev::Deliver { node: n, epoch, slot });
                    }
                }
            }
        }
    }

    /// An ephemeral message reaches node `n`, unless it crashed meanwhile.
    pub(super) fn deliver(&mut self, n: u32, epoch: u32, slot: u32) {
        let msg = self.inflight.take(slot);
        let node = &self.nodes[n as usize];
        if node.epoch != epoch || !node.up {
            let reason = if node.joined { LossReason::ReceiverCrashed } else { LossReason::ScaledIn };
            self.lose(n, &msg, reason);
            return;
        }
        self.enqueue(n, msg, Source::Push);
    }
}
