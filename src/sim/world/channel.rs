//! Channels: the connection between two endpoints, and its order.
//!
//! Messages on one channel arrive in the order they were sent, as on a TCP
//! connection (AMQP channels, Kafka fetches and produce requests, NATS and
//! every client library over TCP): each message draws its own latency, but
//! it arrives at the later of its sampled time and the previous arrival on
//! the channel. Only a reorder fault ([`super::links::Crossing::held`])
//! holds one message back so that later ones overtake it; a requeue, which
//! sends an older message again, is the only other way an older message
//! comes later.
//!
//! The channels and their keys:
//! - queue deliveries: per (queue, consumer instance), kept on the node,
//!   which consumes one queue ([`super::Node::queue_arrival`]);
//! - log fetches: per (partition, consumer group), kept on the group's
//!   partition ([`super::GroupPart::last_arrival`]);
//! - ephemeral deliveries: per (publisher instance, subscriber instance);
//! - produce requests and their acknowledgements: per (producer, broker)
//!   and (broker, producer);
//! - call requests and replies: per (caller, callee) and (callee, caller);
//! - publishes to the bus over a faulty link: per (producer, bus).
//!
//! The last four are kept here, in a map from the pair to its last arrival.

use std::collections::BTreeMap;

use super::World;
use super::links::Crossing;
use crate::sim::SimTime;

/// The last arrival on each channel that has carried something.
#[derive(Debug, Default)]
pub(super) struct Channels {
    last: BTreeMap<u64, SimTime>,
}

impl Channels {
    /// A message sampled to arrive at `at` on the channel `from -> to`
    /// arrives at the later of `at` and the channel's previous arrival.
    #[inline]
    pub(super) fn arrival(&mut self, from: u32, to: u32, at: SimTime) -> SimTime {
        let last = self.last.entry(u64::from(from) << 32 | u64::from(to)).or_insert(SimTime::ZERO);
        *last = (*last).max(at);
        *last
    }

    /// Forgets every channel into or out of `n` (its connections closed
    /// with a crash): a new connection is held back by nothing of the old.
    pub(super) fn close(&mut self, n: u32) {
        self.last.retain(|&k, _| (k >> 32) as u32 != n && k as u32 != n);
    }
}

impl World<'_, '_> {
    /// When a message sent now from `from` to `to`, with `sampled` latency
    /// and what the network did to it (`c`), arrives: in order behind the
    /// channel's previous message, unless a reorder fault holds it back.
    #[inline]
    pub(super) fn arrive_on(&mut self, from: u32, to: u32, latency: crate::sim::SimDuration, c: &Crossing) -> SimTime {
        let at = self.channels.arrival(from, to, self.now + latency + c.delay);
        at + c.held
    }
}
