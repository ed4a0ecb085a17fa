//! Workloads: when each one's next entity arrives, and with which key.
//!
//! Each workload draws from its own stream (the first from the stream every
//! scenario has always used, so one workload draws exactly as before), and
//! counts its own arrivals. A replayed workload draws nothing: its times and
//! keys are the recorded ones, shifted by its start.

use crate::sim::dist::to_nanos;
use crate::sim::{SimDuration, SimTime, Stream, StreamKind};
use crate::system::{KeyDist, RateShape, WorkloadSpec};

/// One workload's progress.
pub(super) struct Arrivals {
    stream: Stream,
    /// Entities it has created.
    pub(super) arrived: u64,
}

impl Arrivals {
    /// The workloads of a run from `seed`, in order.
    pub(super) fn of(workloads: &[WorkloadSpec], seed: u64) -> Vec<Arrivals> {
        workloads
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let label = if i == 0 { "" } else { w.entity.as_str() };
                Arrivals { stream: Stream::new(seed, StreamKind::Workload, label), arrived: 0 }
            })
            .collect()
    }

    /// When the first entity of `w` arrives, if before its stop.
    pub(super) fn first(w: &WorkloadSpec) -> Option<SimTime> {
        let at = match w.replay.first() {
            Some(&(t, _)) => w.start + t,
            None => w.start,
        };
        (at < w.stop).then_some(at)
    }

    /// The key of the entity that arrives now: recorded, drawn, or (for
    /// sequential keys) its number among the workload's arrivals, which is
    /// its entity id when there is one workload.
    pub(super) fn key(&mut self, w: &WorkloadSpec) -> u64 {
        self.arrived += 1;
        if let Some(&(_, key)) = w.replay.get(self.arrived as usize - 1) {
            return key;
        }
        match w.keys {
            KeyDist::Uniform(n) => self.stream.below(n.max(1)),
            KeyDist::Sequential => self.arrived,
        }
    }

    /// When the next entity of `w` arrives after one arrived at `now`, if
    /// before its stop. A Poisson workload whose rate changes over time is
    /// thinned (Lewis and Shedler): candidates at the shape's largest rate,
    /// each kept with probability factor(t) / largest, one draw each; a
    /// constant one draws only its gaps. A regular one's gap is divided by
    /// the factor now.
    pub(super) fn next(&mut self, w: &WorkloadSpec, now: SimTime) -> Option<SimTime> {
        if w.count.is_some_and(|c| self.arrived >= c) {
            return None;
        }
        if !w.replay.is_empty() {
            let &(t, _) = w.replay.get(self.arrived as usize)?;
            return (w.start + t < w.stop).then_some(w.start + t);
        }
        let mean = w.interarrival_mean.0 as f64;
        let constant = w.shape == RateShape::Constant;
        let next = match (w.regular, constant) {
            (true, true) => now + w.interarrival_mean,
            (true, false) => now + SimDuration(to_nanos(mean / w.shape.factor(now)).max(1)),
            (false, true) => now + SimDuration(to_nanos(self.stream.exp(mean))),
            (false, false) => {
                let most = w.shape.max();
                let mut t = now;
                loop {
                    t += SimDuration(to_nanos(self.stream.exp(mean / most)));
                    if t >= w.stop || self.stream.unit() * most < w.shape.factor(t) {
                        break t;
                    }
                }
            }
        };
        (next < w.stop).then_some(next)
    }
}
