//! Broker nodes that a network partition separates, as a KRaft-era Kafka
//! cluster handles it.
//!
//! - A follower cut off from its partition's leader stops fetching. If it
//!   has not caught up after `replica_lag`, the leader removes it from the
//!   in-sync set, provided the leader itself can reach the controller to
//!   say so; the high watermark then moves on without it, and `acks: All`
//!   writes are acknowledged by the smaller set (if it still has
//!   `min_insync` members).
//! - The controller is a quorum of the brokers: a broker that a partition
//!   cuts off from half of them or more (itself counted) loses its session
//!   after the brokers' `session_timeout` and is fenced. It leads nothing
//!   and leaves every in-sync set; each partition it led elects an in-sync
//!   replica on the quorum's side (or, with `unclean_election`, any there),
//!   and what the new leader lacks is cut from the log. Until it is fenced
//!   an isolated leader goes on taking writes that only it has.
//! - At the heal a fenced broker rejoins: its copies fetch from the
//!   leaders again and are in sync once caught up.
//!
//! Crashes do not fence: a crashed broker is simply down (see `brokers`).

use super::{Ev, World};

impl World<'_, '_> {
    /// True while the network blocks follower `i` of partition `p` from
    /// its leader, in either direction (a fetch and its answer).
    pub(super) fn replica_cut_off(&self, p: usize, i: usize) -> bool {
        if self.links.is_empty() {
            return false;
        }
        let part = &self.partitions[p];
        let Some(l) = part.leader else { return false };
        let (leader, follower) = (self.broker_node(part.replicas[l].broker), self.broker_node(part.replicas[i].broker));
        self.blocked(leader, follower) || self.blocked(follower, leader)
    }

    /// Follower `i` of partition `p` cannot fetch: check after
    /// `replica_lag` whether it has fallen out of sync.
    pub(super) fn replica_stalled(&mut self, p: usize, i: usize) {
        let r = &mut self.partitions[p].replicas[i];
        r.fetching = false;
        if r.stalled {
            return;
        }
        r.stalled = true;
        let lag = self.log_cfg.brokers.as_ref().expect("brokers configured").replica_lag;
        self.queue.push(self.now + lag, Ev::IsrCheck { part: p as u32, replica: i as u32 });
    }

    /// A stalled follower's lag is up: out of the in-sync set if it is
    /// still cut off and its leader can tell the controller; otherwise
    /// check again later while it stays cut off.
    pub(super) fn isr_check(&mut self, p: u32, i: u32) {
        let (p, i) = (p as usize, i as usize);
        if !self.partitions[p].replicas[i].stalled {
            return;
        }
        self.partitions[p].replicas[i].stalled = false;
        if !self.replica_cut_off(p, i) {
            return self.replicate(p); // reconnected: it fetches again
        }
        let leader_heard = self.partitions[p]
            .leader
            .is_some_and(|l| !self.brokers[self.partitions[p].replicas[l].broker as usize].fenced)
            && self.partitions[p].leader.is_some_and(|l| self.reaches_quorum(self.partitions[p].replicas[l].broker));
        if leader_heard && self.partitions[p].replicas[i].in_sync {
            self.partitions[p].replicas[i].in_sync = false;
            self.update_high_watermark(p);
        }
        if !leader_heard {
            self.replica_stalled(p, i);
        }
    }

    /// True if broker `b` can reach more than half of the brokers (itself
    /// counted) over the network: it keeps its session with the controller.
    fn reaches_quorum(&self, b: u32) -> bool {
        let count = self.brokers.len() as u32;
        let me = self.broker_node(b);
        let reached = (0..count)
            .filter(|&c| {
                let other = self.broker_node(c);
                c == b || (!self.blocked(me, other) && !self.blocked(other, me))
            })
            .count() as u32;
        reached * 2 > count
    }

    /// The network changed: brokers cut off from the quorum are fenced
    /// after the session timeout, those back in it rejoin, and followers
    /// that can reach their leader again fetch.
    pub(super) fn brokers_reconnect(&mut self) {
        let Some(session) = self.log_cfg.brokers.as_ref().map(|s| s.session_timeout) else { return };
        for b in 0..self.brokers.len() as u32 {
            let quorum = self.reaches_quorum(b);
            let broker = &mut self.brokers[b as usize];
            // Any pending check is stale now.
            broker.fence_generation = broker.fence_generation.wrapping_add(1);
            if !quorum && !broker.fenced {
                let generation = broker.fence_generation;
                self.queue.push(self.now + session, Ev::BrokerFence { broker: b, generation });
            } else if quorum && broker.fenced {
                broker.fenced = false;
                self.trace_node(crate::trace::RecordKind::Unfenced, self.broker_node(b), 0);
                self.broker_rejoined(b);
            }
        }
        for p in 0..self.partitions.len() {
            let mut freed = false;
            for i in 0..self.partitions[p].replicas.len() {
                if self.partitions[p].replicas[i].stalled && !self.replica_cut_off(p, i) {
                    self.partitions[p].replicas[i].stalled = false;
                    freed = true;
                }
            }
            if freed {
                self.replicate(p);
            }
        }
    }

    /// Broker `b`'s session has run out while it was cut off from the
    /// quorum: it is fenced, and the partitions it led elect new leaders.
    pub(super) fn broker_fence(&mut self, b: u32, generation: u32) {
        let broker = &self.brokers[b as usize];
        if broker.fence_generation != generation || broker.fenced || self.reaches_quorum(b) {
            return;
        }
        self.brokers[b as usize].fenced = true;
        self.trace_node(crate::trace::RecordKind::Fenced, self.broker_node(b), 0);
        for p in 0..self.partitions.len() {
            let Some(i) = self.partitions[p].replicas.iter().position(|r| r.broker == b) else { continue };
            // Out of the in-sync set, unless it is its last member (as at a crash).
            let r = self.partitions[p].replicas[i];
            let others = self.partitions[p].replicas.iter().enumerate().any(|(k, o)| {
                k != i && o.in_sync && self.brokers[o.broker as usize].up && !self.brokers[o.broker as usize].fenced
            });
            self.partitions[p].replicas[i].in_sync = r.in_sync && !others;
            if self.partitions[p].leader == Some(i) {
                self.elect(p);
            } else {
                self.update_high_watermark(p);
            }
        }
    }

    /// Fenced broker `b` is back in the quorum: its copies catch up, and a
    /// partition left without a leader may elect one.
    fn broker_rejoined(&mut self, b: u32) {
        for p in 0..self.partitions.len() {
            if !self.partitions[p].replicas.iter().any(|r| r.broker == b) {
                continue;
            }
            match self.partitions[p].leader {
                Some(_) => self.replicate(p),
                None => self.elect(p),
            }
        }
    }
}
