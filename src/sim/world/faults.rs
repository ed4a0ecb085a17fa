//! Faults of the plan beginning and healing, and how they compose on one
//! node.
//!
//! How they compose is `crate::fault::compose`; here is what it means for a
//! node:
//! - A node is down while any crash holds it (a scripted crash, a random
//!   crash, a crash point): it restarts when the last of them heals. A
//!   broker node likewise.
//! - A node is paused while any pause holds it, whether or not it is down
//!   meanwhile: a node that restarts inside a pause stays stalled until the
//!   pause ends, and a pause that ends while the node is down changes
//!   nothing until it restarts.
//! - Network faults act together: each active one acts on what crosses the
//!   links it covers ([`super::links`]).

use super::{Ev, World};
use crate::fault::plan::{PlanKind, Target};
use crate::sim::SimTime;
use crate::trace::RecordKind;

impl World<'_, '_> {
    /// Plan entry `fault` begins.
    pub(super) fn fault_began(&mut self, fault: u32) {
        let e = self.plan.entries[fault as usize];
        self.trace_fault(RecordKind::FaultBegan, fault);
        match e.kind {
            PlanKind::Slow(n, factor) => self.nodes[n as usize].slow.begin(fault, factor),
            PlanKind::Skew(n, factor) => self.nodes[n as usize].skew.begin(fault, factor),
            PlanKind::Pause(n) => self.pause(n, e.heal),
            PlanKind::Network(i) => self.network_fault_began(i),
            PlanKind::Crash(t) => self.hold_down(t),
            PlanKind::CrashAt(n, _) => self.hold_down(Target::Node(n)),
            PlanKind::Rewind(service, to, drop_tables) => {
                if drop_tables {
                    self.drop_tables(service);
                }
                self.rewind(service, to);
            }
            PlanKind::Deploy(n, _) => self.hold_down(Target::Node(n)),
        }
    }

    /// Plan entry `fault` heals.
    pub(super) fn fault_healed(&mut self, fault: u32) {
        let e = self.plan.entries[fault as usize];
        self.trace_fault(RecordKind::FaultHealed, fault);
        match e.kind {
            PlanKind::Slow(n, _) => self.nodes[n as usize].slow.end(fault),
            PlanKind::Skew(n, _) => self.nodes[n as usize].skew.end(fault),
            PlanKind::Pause(n) => self.unpause(n),
            PlanKind::Network(i) => self.network_fault_healed(i),
            PlanKind::Crash(t) => self.release_down(t),
            PlanKind::CrashAt(n, _) => self.release_down(Target::Node(n)),
            PlanKind::Rewind(..) => {}
            PlanKind::Deploy(n, version) => {
                self.upgrade(n, version);
                self.release_down(Target::Node(n));
                self.unpark(n);
            }
        }
    }

    /// One more crash holds `target` down; the first one crashes it.
    pub(super) fn hold_down(&mut self, target: Target) {
        match target {
            Target::Node(n) => {
                if self.nodes[n as usize].down.hold() {
                    self.crash(n);
                }
            }
            Target::Broker(b) => {
                if self.brokers[b as usize].down.hold() {
                    self.broker_crash(b);
                }
            }
        }
    }

    /// A crash that held `target` down heals; the last one restarts it.
    fn release_down(&mut self, target: Target) {
        match target {
            Target::Node(n) => {
                if self.nodes[n as usize].down.release() {
                    self.restart(n);
                }
            }
            Target::Broker(b) => {
                if self.brokers[b as usize].down.release() {
                    self.broker_restart(b);
                }
            }
        }
    }

    /// One more pause holds node `n` until `until` (a long GC pause, a
    /// frozen VM). The first one stalls it: it stays up and reachable,
    /// works on nothing, stops heartbeating and may lose its partitions.
    fn pause(&mut self, n: u32, until: SimTime) {
        let node = &mut self.nodes[n as usize];
        node.paused_until = node.paused_until.max(until);
        if !node.pause.hold() {
            return;
        }
        node.paused = true;
        let (up, epoch) = (node.up, node.epoch);
        self.trace_node(RecordKind::Paused, n, 0);
        if up && !self.service_gps[self.nodes[n as usize].service as usize].is_empty() {
            self.queue.push(self.now + self.log_cfg.session_timeout, Ev::SessionExpired { node: n, epoch });
        }
    }

    /// A pause of node `n` heals; when the last one does, the node resumes.
    fn unpause(&mut self, n: u32) {
        if self.nodes[n as usize].pause.release() {
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
        self.work_waiting(n);
        self.try_fetch(n);
    }
}
