//! Faults of the plan beginning and healing, and how they compose on one
//! node.
//!
//! - A node is down while any crash holds it (a scripted crash, a random
//!   crash, a crash point): it restarts when the last of them heals. A
//!   broker node likewise.
//! - A node is paused while any pause holds it, whether or not it is down
//!   meanwhile: a node that restarts inside a pause stays stalled until the
//!   pause ends, and a pause that ends while the node is down changes
//!   nothing until it restarts.
//! - Slowdowns multiply: while two overlap, the node works `f1 * f2` times
//!   slower; clock skews multiply the same way.
//! - Network faults act together: each active one acts on what crosses the
//!   links it covers ([`super::links`]).

use super::{Ev, PlanKind, World};
use crate::sim::SimTime;
use crate::trace::RecordKind;

impl World<'_, '_> {
    /// Plan entry `fault` begins.
    pub(super) fn fault_began(&mut self, fault: u32) {
        let e = self.plan[fault as usize];
        self.trace_fault(RecordKind::FaultBegan, fault);
        match e.kind {
            PlanKind::Slow(factor) => {
                let node = &mut self.nodes[e.target as usize];
                node.slow.push((fault, factor));
                node.slowdown = node.slow.iter().map(|s| s.1).product();
            }
            PlanKind::Skew(factor) => {
                let node = &mut self.nodes[e.target as usize];
                node.skew.push((fault, factor));
                node.clock = node.skew.iter().map(|s| s.1).product();
            }
            PlanKind::Pause => self.pause(e.target, e.heal),
            PlanKind::Network(i) => self.network_fault_began(i),
            PlanKind::Crash | PlanKind::CrashAt(_) => self.hold_down(e.target),
        }
    }

    /// Plan entry `fault` heals.
    pub(super) fn fault_healed(&mut self, fault: u32) {
        let e = self.plan[fault as usize];
        self.trace_fault(RecordKind::FaultHealed, fault);
        match e.kind {
            PlanKind::Slow(_) => {
                let node = &mut self.nodes[e.target as usize];
                node.slow.retain(|s| s.0 != fault);
                node.slowdown = node.slow.iter().map(|s| s.1).product();
            }
            PlanKind::Skew(_) => {
                let node = &mut self.nodes[e.target as usize];
                node.skew.retain(|s| s.0 != fault);
                node.clock = node.skew.iter().map(|s| s.1).product();
            }
            PlanKind::Pause => self.unpause(e.target),
            PlanKind::Network(i) => self.network_fault_healed(i),
            PlanKind::Crash | PlanKind::CrashAt(_) => self.release_down(e.target),
        }
    }

    /// One more crash holds `target` (a node, or a broker numbered after
    /// the nodes) down; the first one crashes it.
    pub(super) fn hold_down(&mut self, target: u32) {
        let nodes = self.nodes.len() as u32;
        if target < nodes {
            let node = &mut self.nodes[target as usize];
            node.down_holds += 1;
            if node.down_holds == 1 {
                self.crash(target);
            }
        } else {
            let b = &mut self.brokers[(target - nodes) as usize];
            b.down_holds += 1;
            if b.down_holds == 1 {
                self.broker_crash(target - nodes);
            }
        }
    }

    /// A crash that held `target` down heals; the last one restarts it.
    fn release_down(&mut self, target: u32) {
        let nodes = self.nodes.len() as u32;
        if target < nodes {
            let node = &mut self.nodes[target as usize];
            debug_assert!(node.down_holds > 0, "a heal without its crash");
            node.down_holds = node.down_holds.saturating_sub(1);
            if node.down_holds == 0 {
                self.restart(target);
            }
        } else {
            let b = &mut self.brokers[(target - nodes) as usize];
            debug_assert!(b.down_holds > 0, "a heal without its crash");
            b.down_holds = b.down_holds.saturating_sub(1);
            if b.down_holds == 0 {
                self.broker_restart(target - nodes);
            }
        }
    }

    /// One more pause holds node `n` until `until` (a long GC pause, a
    /// frozen VM). The first one stalls it: it stays up and reachable,
    /// works on nothing, stops heartbeating and may lose its partitions.
    fn pause(&mut self, n: u32, until: SimTime) {
        let node = &mut self.nodes[n as usize];
        node.pause_holds += 1;
        node.paused_until = node.paused_until.max(until);
        if node.pause_holds > 1 {
            return;
        }
        node.paused = true;
        let (up, epoch) = (node.up, node.epoch);
        self.trace_node(RecordKind::Paused, n, 0);
        if up && !self.service_gps[self.nodes[n as usize].service as usize].is_empty() {
            self.queue.push(self.now + self.session_timeout, Ev::SessionExpired { node: n, epoch });
        }
    }

    /// A pause of node `n` heals; when the last one does, the node resumes.
    fn unpause(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        debug_assert!(node.pause_holds > 0, "a heal without its pause");
        node.pause_holds = node.pause_holds.saturating_sub(1);
        if node.pause_holds == 0 {
            self.resume(n);
        }
    }

    /// Node `n` resumes: it rejoins its group if it was dropped and picks up
    /// its waiting work (work it held finishes now, stale or not). A node
    /// that is down resumes nothing: its restart does.
    fn resume(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        if !node.paused {
            return;
        }
        node.paused = false;
        let up = node.up;
        self.trace_node(RecordKind::Resumed, n, 0);
        if !up {
            return;
        }
        self.rejoin_group(n);
        loop {
            let node = &mut self.nodes[n as usize];
            if node.free.is_empty() || node.fifo.is_empty() {
                break;
            }
            node.account_fifo(self.now);
            let (Some(w), Some(job)) = (node.free.pop(), node.fifo.pop_front()) else { break };
            self.start(n, w, job);
        }
        self.try_fetch(n);
    }
}
