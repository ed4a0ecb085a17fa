//! What a network fault covers: partitions and link faults, by endpoint.
//!
//! An endpoint is a service instance (its node index), the bus ([`BUS`]),
//! or every endpoint ([`ANY`]). Broker nodes are endpoints numbered after
//! the instances; a fault that names `"bus"` covers them too
//! (`NetworkFault::brokers_from`).

use crate::sim::{Dist, SimDuration, SimTime};

/// The bus as a link endpoint.
pub(crate) const BUS: u32 = u32::MAX - 1;

/// Every endpoint (an isolated node is cut off from all of them).
pub(crate) const ANY: u32 = u32::MAX - 2;

/// A network fault of the plan.
#[derive(Debug)]
pub(crate) struct NetworkFault {
    pub from: Vec<u32>,
    pub to: Vec<u32>,
    pub both_ways: bool,
    pub drop: f64,
    pub duplicate: f64,
    pub delay: Option<Dist>,
    /// Probability that a message is held back (and so overtaken), by a
    /// delay drawn from `reorder_by`.
    pub reorder: f64,
    pub reorder_by: Dist,
    pub blocked: bool,
    /// When it began (set when it does).
    pub began: SimTime,
    /// When it ends.
    pub heal: SimTime,
    /// Node index of the first broker node ([`NO_BROKERS`] without any):
    /// `"bus"` covers the broker nodes too.
    pub brokers_from: u32,
}

/// `NetworkFault::brokers_from` of a log without broker nodes.
pub(crate) const NO_BROKERS: u32 = u32::MAX - 3;

impl NetworkFault {
    /// A partition between two groups of endpoints, healing at `heal`.
    pub fn partition(from: Vec<u32>, to: Vec<u32>, both_ways: bool, heal: SimTime) -> NetworkFault {
        NetworkFault {
            from,
            to,
            both_ways,
            drop: 0.0,
            duplicate: 0.0,
            delay: None,
            reorder: 0.0,
            reorder_by: Dist::Const(SimDuration::ZERO),
            blocked: true,
            began: SimTime::ZERO,
            heal,
            brokers_from: NO_BROKERS,
        }
    }

    /// True if it acts on what travels from `from` to `to`.
    #[inline]
    pub(crate) fn covers(&self, from: u32, to: u32) -> bool {
        let broker = |x: u32| x >= self.brokers_from && x < NO_BROKERS;
        let has = |set: &[u32], x: u32| set.contains(&x) || set.contains(&ANY) || (broker(x) && set.contains(&BUS));
        (has(&self.from, from) && has(&self.to, to)) || (self.both_ways && has(&self.from, to) && has(&self.to, from))
    }
}
