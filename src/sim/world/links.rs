//! The network between nodes and the bus: partitions and link faults.
//!
//! Messages travel on directed links: from a node to the bus when it
//! publishes (or produces to a broker) and from the bus to a node when it is
//! delivered (or acknowledged). The bus is one endpoint, [`BUS`], whatever
//! brokers stand behind it. While a partition separates two groups, nothing
//! crosses between them (in one direction only, if one-way); a link fault
//! drops, duplicates or delays what crosses one link. Drops and duplicates
//! are drawn from the network stream.

use super::World;
use crate::sim::{Dist, SimDuration};

/// The bus as a link endpoint.
pub(super) const BUS: u32 = u32::MAX - 1;

/// A network fault of the plan.
#[derive(Debug)]
pub(super) struct NetworkFault {
    pub from: Vec<u32>,
    pub to: Vec<u32>,
    pub both_ways: bool,
    pub drop: f64,
    pub duplicate: f64,
    pub delay: Option<Dist>,
    pub blocked: bool,
}

/// What the network does to one message on one link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Crossing {
    /// It does not arrive: a partition, or a drop.
    pub lost: bool,
    /// By a partition (else by a drop).
    pub partitioned: bool,
    /// It arrives twice.
    pub duplicated: bool,
    /// Added to its latency.
    pub delay: SimDuration,
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
            let l = &self.network_faults[self.links[k] as usize];
            let forward = l.from.contains(&from) && l.to.contains(&to);
            let backward = l.both_ways && l.from.contains(&to) && l.to.contains(&from);
            if !(forward || backward) {
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
        }
        c
    }
}
