//! The network between nodes and the bus: partitions and link faults.
//!
//! Messages travel on directed links: from a node to the bus when it
//! publishes (or produces to a broker) and from the bus to a node when it is
//! delivered (or acknowledged). The bus is one endpoint, [`BUS`], whatever
//! brokers stand behind it. While a partition separates two groups, nothing
//! crosses between them (in one direction only, if one-way); a link fault
//! drops, duplicates or delays what crosses one link. Drops and duplicates
//! are drawn from the network stream.

use super::{Ev, World};
use crate::fault::network::BUS;
use crate::sim::{SimDuration, SimTime};

/// A transfer the network lost is sent again this much later (TCP
/// retransmission, a consumer's fetch retry).
const RETRANSMIT_AFTER: SimDuration = SimDuration(200_000_000);

/// Retransmissions of one transfer, at most, before it waits for the heal.
const RETRANSMITS_MAX: u32 = 100;

/// What the network does to one message on one link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Crossing {
    /// It does not arrive: a partition, or a drop.
    pub lost: bool,
    /// By a partition (else by a drop).
    pub partitioned: bool,
    /// It arrives twice.
    pub duplicated: bool,
    /// Added to its latency; later messages on the channel wait behind it.
    pub delay: SimDuration,
    /// Held back by a reorder fault on top of its arrival: later messages
    /// on the channel may overtake it (the only way one does).
    pub held: SimDuration,
}

impl World<'_, '_> {
    /// What happens to a message crossing from `from` to `to` now.
    #[inline]
    pub(super) fn cross(&mut self, from: u32, to: u32) -> Crossing {
        if self.links.is_empty() {
            return Crossing::default();
        }
        self.cross_faulty(from, to)
    }

    fn cross_faulty(&mut self, from: u32, to: u32) -> Crossing {
        let mut c = Crossing::default();
        for k in 0..self.links.len() {
            let l = &self.plan.network[self.links[k] as usize];
            if !l.covers(from, to) {
                continue;
            }
            if l.blocked {
                c.lost = true;
                c.partitioned = true;
                continue;
            }
            if l.drop > 0.0 && self.network.unit() < l.drop {
                c.lost = true;
            }
            if l.duplicate > 0.0 && self.network.unit() < l.duplicate {
                c.duplicated = true;
            }
            if let Some(d) = &l.delay {
                c.delay = c.delay + d.sample(&mut self.network);
            }
            if l.reorder > 0.0 && self.network.unit() < l.reorder {
                c.held = c.held + l.reorder_by.sample(&mut self.network);
            }
        }
        c
    }

    /// True while a partition blocks what travels from `from` to `to`.
    pub(super) fn blocked(&self, from: u32, to: u32) -> bool {
        self.links.iter().any(|&i| {
            let l = &self.plan.network[i as usize];
            l.blocked && l.covers(from, to)
        })
    }

    /// What a transfer from the bus to node `n` meets over a reliable
    /// connection (a queue delivery, a log fetch): see [`World::reliable`].
    pub(super) fn transit(&mut self, n: u32) -> Crossing {
        self.reliable(BUS, n).0
    }

    /// What a transfer from `from` to `to` meets over a reliable connection
    /// (TCP): it is never lost while the connection lives, but what a
    /// faulty link drops is sent again after [`RETRANSMIT_AFTER`], and
    /// behind a partition it waits for the heal (both in `delay`). Judged
    /// by the faults active now. Behind a partition, also when the block
    /// began and when it heals (the caller decides whether the connection
    /// outlives it).
    pub(super) fn reliable(&mut self, from: u32, to: u32) -> (Crossing, Option<(SimTime, SimTime)>) {
        if self.links.is_empty() {
            return (Crossing::default(), None);
        }
        let mut extra = SimDuration::ZERO;
        for _ in 0..RETRANSMITS_MAX {
            let c = self.cross_faulty(from, to);
            if !c.lost {
                return (Crossing { delay: extra + c.delay, ..c }, None);
            }
            if c.partitioned {
                break;
            }
            extra = extra + RETRANSMIT_AFTER;
        }
        // Behind a partition (or a link that drops everything): after the heal.
        let blocking = || {
            self.links
                .iter()
                .map(|&i| &self.plan.network[i as usize])
                .filter(|l| l.covers(from, to) && (l.blocked || l.drop >= 1.0))
        };
        let heal = blocking().map(|l| l.heal).max().unwrap_or(self.now);
        let began = blocking().map(|l| l.began).min().unwrap_or(self.now);
        let c = Crossing { delay: (heal - self.now).max(extra) + RETRANSMIT_AFTER, ..Crossing::default() };
        (c, Some((began, heal)))
    }

    /// Network fault `i` begins: a consumer it cuts off from the bus stops
    /// heartbeating, and its group may move its partitions away.
    pub(super) fn network_fault_began(&mut self, i: u32) {
        self.plan.network[i as usize].began = self.now;
        self.links.push(i);
        self.brokers_reconnect();
        if self.log_cfg.session_timeout == SimDuration::ZERO {
            return;
        }
        for n in 0..self.nodes.len() as u32 {
            let node = &self.nodes[n as usize];
            if node.up && !self.service_gps[node.service as usize].is_empty() && self.blocked(n, BUS) {
                let epoch = node.epoch;
                self.queue.push(self.now + self.log_cfg.session_timeout, Ev::SessionExpired { node: n, epoch });
            }
        }
    }

    /// Network fault `i` heals: consumers that lost their membership while
    /// cut off rejoin their group.
    pub(super) fn network_fault_healed(&mut self, i: u32) {
        if let Some(k) = self.links.iter().position(|&x| x == i) {
            self.links.remove(k);
        }
        self.brokers_reconnect();
        for n in 0..self.nodes.len() as u32 {
            let node = &self.nodes[n as usize];
            if node.up && !node.paused && node.joined && !self.blocked(n, BUS) {
                self.rejoin_group(n);
            }
        }
    }
}
