//! Horizontal autoscaling, as Kubernetes' horizontal pod autoscaler does
//! it on CPU.
//!
//! A service that autoscales has `max` nodes (its slots); `initial` of them
//! start. Every `every` the autoscaler reads the utilisation of each ready
//! instance since its last look (the time-average of its workers held) and
//! recommends `ceil(sum / target)` instances, or the count now when the
//! average is within `tolerance` of the target; within `min..=max`, and at
//! most `max(2 x now, now + 4)` (the HPA's default scale-up policy). It
//! scales up at once, and down only to the highest recommendation of the
//! last `stabilization` (the HPA's scale-down window). Instances that are
//! starting count as asked for but are not measured.
//!
//! Scaling up takes the lowest free slot: after `startup` it is ready,
//! takes requests and calls, joins its consumer groups (a rebalance) and
//! its queues (a draining instance's slot is not free: a scale-up waits
//! for its drain to end). Scaling down cancels the newest starting instance first,
//! then drains the highest ready one: it takes nothing new (no routing, no
//! fetch, no queue delivery), finishes what it holds and what its outbox
//! waits to send, commits, and leaves its group (a rebalance). An instance
//! removed while it is down is gone at once; its session times out as a
//! crashed member's does. What a slot keeps in its database (durable state
//! and timers) waits for the slot's next start, as a Kubernetes
//! StatefulSet's volume does; what it held in memory is gone.
//!
//! Draws nothing: autoscaling never changes a random stream.

use super::{Ev, World};
use crate::outcome::{ScaleChange, ScalingMetrics};
use crate::sim::SimTime;
use crate::system::{Routing, ServiceSpec};
use crate::trace::{LossReason, RecordKind};
use std::collections::VecDeque;

/// One service's autoscaler.
pub(super) struct Scaler {
    /// Instances asked for: ready, or starting.
    provisioned: u32,
    /// Instances running (starting, ready or draining), and the
    /// time-integral of that count since `since`, from the warm-up on.
    running: u32,
    area: u128,
    since: SimTime,
    /// The fewest and most running, from the warm-up on.
    low: u32,
    high: u32,
    /// The recommendations of the last stabilization window.
    recent: VecDeque<(SimTime, u32)>,
    /// Each change of the count asked for: when, and to what; and the
    /// count last noted.
    changes: Vec<(SimTime, u32)>,
    noted: u32,
    /// The count asked for when `changes` began (the start or the warm-up).
    base: u32,
    /// When the measurement window began.
    start: SimTime,
}

impl Scaler {
    /// The autoscaler of service `s`, if it autoscales.
    pub(super) fn of(s: &ServiceSpec) -> Option<Scaler> {
        let a = s.autoscale?;
        let n = if s.starts_at == SimTime::ZERO { a.initial } else { 0 };
        Some(Scaler {
            provisioned: a.initial,
            running: n,
            area: 0,
            since: SimTime::ZERO,
            low: n,
            high: n,
            recent: VecDeque::new(),
            changes: Vec::new(),
            noted: a.initial,
            base: a.initial,
            start: SimTime::ZERO,
        })
    }

    /// The instances running change to `to`.
    fn run(&mut self, now: SimTime, to: u32) {
        self.area += u128::from(self.running) * u128::from((now - self.since).0);
        (self.running, self.since) = (to, now);
        (self.low, self.high) = (self.low.min(to), self.high.max(to));
    }

    /// The warm-up is over: the time-average starts again.
    pub(super) fn warmed_up(&mut self, now: SimTime) {
        (self.area, self.since, self.start) = (0, now, now);
        (self.low, self.high) = (self.running, self.running);
        self.changes.clear();
        self.base = self.noted;
    }

    /// What it did up to `end`.
    pub(super) fn metrics(&self, end: SimTime) -> ScalingMetrics {
        let end = end.max(self.since);
        let area = self.area + u128::from(self.running) * u128::from((end - self.since).0);
        let span = (end - self.start).0;
        let mut ups = 0;
        let mut last = self.base;
        for &(_, to) in &self.changes {
            ups += u32::from(to > last);
            last = to;
        }
        ScalingMetrics {
            instances_mean: if span == 0 { f64::from(self.running) } else { area as f64 / span as f64 },
            instances_min: self.low,
            instances_max: self.high,
            changes: self
                .changes
                .iter()
                .map(|&(at, instances)| ScaleChange { at_s: at.as_secs_f64(), instances })
                .collect(),
            scale_ups: ups,
        }
    }
}

impl World<'_, '_> {
    /// Service `si`'s autoscaler looks at its instances and sets the count.
    pub(super) fn autoscale(&mut self, si: u32) {
        let s = &self.sys.services[si as usize];
        let a = s.autoscale.expect("only a service that autoscales has an autoscaler");
        let (first, slots, workers) = (self.first_node[si as usize], s.instances, f64::from(s.workers));
        self.queue.push(self.now + a.every, Ev::Autoscale { service: si });
        for n in first..first + slots {
            // A revoked fetch leaves nothing else to notice the drain is over.
            self.try_retire(n);
        }
        let now = self.now;
        let (mut sum, mut ready) = (0.0, 0u32);
        for node in &mut self.nodes[first as usize..(first + slots) as usize] {
            let busy = node.busy_until(now) as i128;
            let (since, mark) = std::mem::replace(&mut node.scale_mark, (now, busy));
            let span = (now - since).0;
            if node.up && node.joined && !node.draining && span > 0 {
                sum += (busy - mark) as f64 / (workers * span as f64);
                ready += 1;
            }
        }
        if ready == 0 {
            return; // no instance to measure: the HPA leaves the count alone
        }
        let sc = self.scalers[si as usize].as_mut().expect("an autoscaler per service that autoscales");
        let now_asked = sc.provisioned;
        let ratio = sum / (f64::from(ready) * a.target);
        let recommended = if (ratio - 1.0).abs() <= a.tolerance {
            now_asked
        } else {
            ((sum / a.target).ceil() as u32).clamp(a.min, slots).min(now_asked.saturating_mul(2).max(now_asked + 4))
        };
        sc.recent.push_back((now, recommended));
        while sc.recent.front().is_some_and(|&(t, _)| t + a.stabilization < now) {
            sc.recent.pop_front();
        }
        let highest = sc.recent.iter().map(|r| r.1).max().unwrap_or(recommended);
        let desired = if recommended < now_asked { highest.min(now_asked) } else { recommended };
        if desired > now_asked {
            self.scale_up(si, desired - now_asked);
        } else if desired < now_asked {
            self.scale_down(si, now_asked - desired);
        }
    }

    /// Service `si` asks for `more` instances: the lowest free slots start.
    fn scale_up(&mut self, si: u32, more: u32) {
        let (first, slots) = (self.first_node[si as usize], self.sys.services[si as usize].instances);
        let startup = self.sys.services[si as usize].autoscale.map(|a| a.startup).unwrap_or_default();
        let mut left = more;
        for n in first..first + slots {
            let node = &mut self.nodes[n as usize];
            if left == 0 {
                break;
            }
            if node.joined || node.starting || node.draining {
                continue;
            }
            left -= 1;
            node.starting = true;
            node.epoch += 1;
            let epoch = node.epoch;
            self.queue.push(self.now + startup, Ev::ScaledUp { node: n, epoch });
            let sc = self.scalers[si as usize].as_mut().expect("it autoscales");
            sc.provisioned += 1;
            let running = sc.running + 1;
            sc.run(self.now, running);
            let asked = sc.provisioned;
            self.trace_node(RecordKind::Provisioned, n, u64::from(asked));
        }
        self.note_change(si);
    }

    /// Service `si` asks for `fewer` instances: the newest starting ones
    /// are cancelled, then the highest ready ones drain.
    fn scale_down(&mut self, si: u32, fewer: u32) {
        let (first, slots) = (self.first_node[si as usize], self.sys.services[si as usize].instances);
        let mut left = fewer;
        for starting in [true, false] {
            for n in (first..first + slots).rev() {
                let node = &self.nodes[n as usize];
                let eligible = if starting { node.starting } else { node.joined && !node.draining };
                if left == 0 || !eligible {
                    continue;
                }
                left -= 1;
                let sc = self.scalers[si as usize].as_mut().expect("it autoscales");
                sc.provisioned -= 1;
                let asked = u64::from(sc.provisioned);
                if starting {
                    let node = &mut self.nodes[n as usize];
                    node.starting = false;
                    node.epoch += 1; // its start-up never ends
                    self.trace_node(RecordKind::ScaledDown, n, asked);
                    self.stopped_running(si);
                } else {
                    self.nodes[n as usize].draining = true;
                    self.trace_node(RecordKind::Draining, n, asked);
                    if self.nodes[n as usize].up {
                        self.try_retire(n);
                    } else {
                        self.retired(n);
                    }
                }
            }
        }
        self.note_change(si);
    }

    /// Records service `si`'s count asked for, if it changed (a scale-up
    /// finds no free slot while instances drain).
    fn note_change(&mut self, si: u32) {
        let now = self.now;
        let sc = self.scalers[si as usize].as_mut().expect("it autoscales");
        if sc.provisioned != sc.noted {
            sc.noted = sc.provisioned;
            sc.changes.push((now, sc.provisioned));
        }
    }

    /// One fewer instance of service `si` runs.
    fn stopped_running(&mut self, si: u32) {
        let now = self.now;
        let sc = self.scalers[si as usize].as_mut().expect("it autoscales");
        let running = sc.running.saturating_sub(1);
        sc.run(now, running);
    }

    /// Node `n`'s start-up is over: it is ready, unless a crash holds it
    /// down (then its restart makes it ready).
    pub(super) fn scaled_up(&mut self, n: u32, epoch: u32) {
        let now = self.now;
        let node = &mut self.nodes[n as usize];
        if node.epoch != epoch || !node.starting {
            return; // cancelled while starting
        }
        node.starting = false;
        node.joined = true;
        node.up = node.down.free();
        node.member = node.up;
        node.scale_mark = (now, node.busy_until(now) as i128);
        let (si, up) = (node.service, node.up);
        let asked = self.scalers[si as usize].as_ref().map_or(0, |sc| sc.provisioned);
        self.trace_node(RecordKind::ScaledUp, n, u64::from(asked));
        if !up {
            return;
        }
        self.begin_hydration(n);
        if !self.service_gps[si as usize].is_empty()
            && !std::mem::replace(&mut self.rebalance_pending[si as usize], true)
        {
            self.queue.push(self.now, Ev::Rebalance { service: si });
        }
        self.schedule_relay(n);
        self.rearm_timers(n);
        self.restart_queue_consumer(n);
    }

    /// The members of service `si` that joined at this instant are in one
    /// rebalance; then each starts its auto-commit timer, if it needs one.
    pub(super) fn joined_rebalance(&mut self, si: u32) {
        self.rebalance_pending[si as usize] = false;
        self.rebalance(si);
        let (first, slots) = (self.first_node[si as usize], self.sys.services[si as usize].instances);
        for n in first..first + slots {
            if self.nodes[n as usize].up {
                self.schedule_auto_commit(n);
            }
        }
    }

    /// Draining node `n` leaves if it holds nothing any more: no job at
    /// work or waiting, no record fetched, no delivery on its way, nothing
    /// in its outbox.
    pub(super) fn try_retire(&mut self, n: u32) {
        let node = &self.nodes[n as usize];
        let idle = node.free.len() == node.busy.len()
            && node.fifo.is_empty()
            && node.outstanding == 0
            && node.outbox.is_empty()
            && self.broker.wire[n as usize] == 0;
        if node.draining && node.up && idle {
            self.retired(n);
        }
    }

    /// Node `n` is removed. If it is up (drained), it commits what it
    /// processed and leaves its consumer group and its queue, its memory
    /// gone with its process; if it is down, it just never restarts.
    pub(super) fn retired(&mut self, n: u32) {
        let si = self.nodes[n as usize].service;
        let asked = self.scalers[si as usize].as_ref().map_or(0, |sc| sc.provisioned);
        self.trace_node(RecordKind::ScaledDown, n, u64::from(asked));
        if self.nodes[n as usize].up {
            // Kafka's `close()`: an auto-committing consumer commits its positions.
            self.commit_positions(n);
            self.nodes[n as usize].member = false;
            self.rebalance(si);
            self.drop_volatile_timers(n, LossReason::ScaledIn);
            let held = self.crash_process(n);
            debug_assert!(held.is_empty(), "a node leaves only once it holds nothing");
            if self.broker.queue_of[n as usize].is_some() {
                self.close_channel(n);
            }
        }
        let node = &mut self.nodes[n as usize];
        (node.joined, node.draining) = (false, false);
        self.stopped_running(si);
    }

    /// The instance of autoscaled `service` that takes `key`, among those
    /// ready and not draining: by key, the key's share of the ready ones
    /// (`key % ready`); round robin, the next ready one after the last;
    /// at random, one of the ready ones drawn; least loaded, the ready one
    /// with the least at work or waiting (the next in turn among equals).
    pub(super) fn pick_scaled(&mut self, service: u32, key: u64) -> Option<u32> {
        let s = &self.sys.services[service as usize];
        let (first, slots, routing) = (self.first_node[service as usize], s.instances, s.routing);
        let ready = |nodes: &[super::Node], x: u32| nodes[x as usize].up && !nodes[x as usize].draining;
        let count = (first..first + slots).filter(|&x| ready(&self.nodes, x)).count() as u64;
        if count == 0 {
            return None;
        }
        let nth = match routing {
            Routing::ByKey => key % count,
            Routing::Random => self.routes[service as usize].stream.below(count),
            Routing::RoundRobin | Routing::LeastLoaded => {
                let turn = self.routes[service as usize].next(slots);
                let mut order = (0..slots).map(|i| first + (turn + i) % slots).filter(|&x| ready(&self.nodes, x));
                if routing == Routing::LeastLoaded {
                    return order.min_by_key(|&x| self.nodes[x as usize].load());
                }
                let picked = order.next()?;
                self.routes[service as usize].turn = picked - first;
                return Some(picked);
            }
        };
        (first..first + slots).filter(|&x| ready(&self.nodes, x)).nth(nth as usize)
    }
}
