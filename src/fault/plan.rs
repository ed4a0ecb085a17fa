//! The fault plan of one seed, drawn before the run starts.
//!
//! Scripted faults become one entry each (a crash's jitter drawn); a
//! random fault becomes the spells it draws for each of its nodes, up to
//! [`RANDOM_CRASHES_MAX`], every spell over by the fault's `until` (after
//! which the system is fault-free and liveness is judged). Every random
//! part comes from the faults stream, drawn in the order of the specs and
//! of their nodes, and from nothing else: the order is part of the
//! determinism contract. Crash points are kept as points: the run counts
//! the messages that reach them and adds an entry when one fires.

use super::network::{ANY, BUS, NetworkFault};
use crate::sim::{Dist, SimDuration, SimTime, Stream, StreamKind};
use crate::system::{FaultSpec, RandomFault, RewindTarget, Seam, System};

/// Crashes one random plan may draw per node, at most.
pub(crate) const RANDOM_CRASHES_MAX: usize = 10_000;

/// What a crash takes down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A service instance, by node index.
    Node(u32),
    /// A broker node (of the log, or the queue broker), by broker index.
    Broker(u32),
}

/// What a plan entry does between its start and its heal, and to whom.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum PlanKind {
    Crash(Target),
    /// A crash point fired on this node at this seam.
    CrashAt(u32, Seam),
    /// The node works this many times slower.
    Slow(u32, f64),
    Pause(u32),
    /// Activates `Plan::network[i]` (a partition or a link fault).
    Network(u32),
    /// The node's timers last this many times what they ask.
    Skew(u32, f64),
    /// An operator resets this service's consumer group (at the entry's
    /// start; its heal is the same instant and does nothing).
    Rewind(u32, RewindTarget, bool),
    /// The node is down for its upgrade, and comes back running this
    /// schema version.
    Deploy(u32, u16),
}

/// One fault of the plan: when it begins and heals, and what it was.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlanEntry {
    pub at: SimTime,
    pub heal: SimTime,
    pub kind: PlanKind,
    /// The fault of the scenario it comes from (index into `System::faults`).
    pub spec: u32,
}

/// A crash point: node `node` crashes at `seam` of its `nth` message
/// there, or of each with `probability`.
pub(crate) struct CrashPoint {
    pub node: u32,
    pub seam: Seam,
    pub nth: Option<u64>,
    pub probability: f64,
    pub down_for: SimDuration,
    /// Messages that reached its seam.
    pub seen: u64,
    /// Times it crashed the node.
    pub fired: u64,
    /// Its fault in `System::faults`.
    pub spec: u32,
}

/// The fault plan as drawn for one seed (and, for crash points, as it
/// happened).
pub(crate) struct Plan {
    pub entries: Vec<PlanEntry>,
    pub crash_points: Vec<CrashPoint>,
    /// The network faults the entries activate.
    pub network: Vec<NetworkFault>,
    /// Random plans that stopped drawing at [`RANDOM_CRASHES_MAX`] spells:
    /// (fault, target).
    pub capped: Vec<(u32, Target)>,
    /// The faults stream, after the plan's draws: probabilistic crash
    /// points draw from it during the run.
    pub draws: Stream,
}

/// Where the plan's names point: the service instances' names, in node
/// order, and the broker nodes' names, in broker order.
pub(crate) struct Names<'a> {
    pub nodes: &'a [&'a str],
    pub brokers: &'a [&'a str],
    /// A network fault naming `"bus"` covers the broker nodes too (the
    /// log's brokers stand behind it; the queue broker is the bus itself).
    pub bus_covers_brokers: bool,
}

impl Names<'_> {
    /// A fault's target by name: an instance, or (where allowed) a broker.
    fn target(&self, name: &str, brokers_too: bool) -> Result<Target, String> {
        if let Some(n) = self.nodes.iter().position(|x| *x == name) {
            return Ok(Target::Node(n as u32));
        }
        let broker = self.brokers.iter().position(|b| *b == name).filter(|_| brokers_too);
        broker.map(|b| Target::Broker(b as u32)).ok_or_else(|| name.to_string())
    }

    /// A node by name (faults that only a service instance can suffer).
    fn node(&self, name: &str) -> Result<u32, String> {
        match self.target(name, false)? {
            Target::Node(n) => Ok(n),
            Target::Broker(_) => Err(name.to_string()),
        }
    }

    /// A link endpoint by name: an instance, a broker (numbered after the
    /// instances), or the bus.
    fn endpoint(&self, name: &str) -> Result<u32, String> {
        if name == "bus" {
            return Ok(BUS);
        }
        Ok(match self.target(name, true)? {
            Target::Node(n) => n,
            Target::Broker(b) => self.nodes.len() as u32 + b,
        })
    }
}

impl Plan {
    /// Draws the plan of `sys` for `seed`; an unknown name is the error.
    pub fn draw(sys: &System, seed: u64, names: &Names<'_>) -> Result<Plan, String> {
        let mut plan = Plan {
            entries: Vec::new(),
            crash_points: Vec::new(),
            network: Vec::new(),
            capped: Vec::new(),
            draws: Stream::new(seed, StreamKind::Faults, ""),
        };
        for (spec, f) in sys.faults.iter().enumerate() {
            plan.add(f, spec as u32, names)?;
        }
        // "bus" covers the broker nodes behind it.
        if names.bus_covers_brokers {
            for f in &mut plan.network {
                f.brokers_from = names.nodes.len() as u32;
            }
        }
        Ok(plan)
    }

    fn push(&mut self, at: SimTime, heal: SimTime, kind: PlanKind, spec: u32) {
        self.entries.push(PlanEntry { at, heal, kind, spec });
    }

    /// The network fault `fault`, activated between `at` and `heal`.
    fn push_network(&mut self, fault: NetworkFault, at: SimTime, heal: SimTime, spec: u32) {
        self.network.push(fault);
        self.push(at, heal, PlanKind::Network(self.network.len() as u32 - 1), spec);
    }

    fn add(&mut self, f: &FaultSpec, spec: u32, names: &Names<'_>) -> Result<(), String> {
        match f {
            FaultSpec::Crash { node, at, jitter, down_for } => {
                let t = names.target(node, true)?;
                let at = *at + Dist::Uniform { min: SimDuration::ZERO, max: *jitter }.sample(&mut self.draws);
                self.push(at, at + *down_for, PlanKind::Crash(t), spec);
            }
            FaultSpec::Random { what, nodes, mtbf, mttr, from, until } => {
                for name in nodes {
                    let t = names.target(name, matches!(what, RandomFault::Crash))?;
                    self.random(what, t, (*mtbf, *mttr), (*from, *until), spec);
                }
            }
            FaultSpec::Slow { node, at, lasting, factor } => {
                self.push(*at, *at + *lasting, PlanKind::Slow(names.node(node)?, *factor), spec);
            }
            FaultSpec::ClockSkew { node, at, lasting, factor } => {
                self.push(*at, *at + *lasting, PlanKind::Skew(names.node(node)?, *factor), spec);
            }
            FaultSpec::Rewind { service, to, at, drop_tables, .. } => {
                self.push(*at, *at, PlanKind::Rewind(*service as u32, *to, *drop_tables), spec)
            }
            FaultSpec::RollingDeploy { name, version, at, every, down, instances, .. } => {
                for i in 0..*instances {
                    let n = names.node(&format!("{name}-{}", i + 1))?;
                    let at = *at + SimDuration(every.0.saturating_mul(u64::from(i)));
                    self.push(at, at + *down, PlanKind::Deploy(n, *version), spec);
                }
            }
            FaultSpec::Pause { node, at, lasting } => {
                self.push(*at, *at + *lasting, PlanKind::Pause(names.node(node)?), spec);
            }
            FaultSpec::Partition { groups, one_way, at, lasting } => {
                let side = |g: &Vec<String>| g.iter().map(|n| names.endpoint(n)).collect::<Result<Vec<_>, _>>();
                let (from, to) = (side(&groups[0])?, side(&groups[1])?);
                let heal = *at + *lasting;
                self.push_network(NetworkFault::partition(from, to, !one_way, heal), *at, heal, spec);
            }
            FaultSpec::Link { from, to, drop, duplicate, delay, reorder, at, lasting } => {
                let heal = *at + *lasting;
                let fault = NetworkFault {
                    drop: *drop,
                    duplicate: *duplicate,
                    delay: delay.clone(),
                    reorder: reorder.as_ref().map_or(0.0, |r| r.0),
                    reorder_by: reorder.as_ref().map_or(Dist::Const(SimDuration::ZERO), |r| r.1.clone()),
                    blocked: false,
                    ..NetworkFault::partition(vec![names.endpoint(from)?], vec![names.endpoint(to)?], false, heal)
                };
                self.push_network(fault, *at, heal, spec);
            }
            FaultSpec::CrashAt { node, seam, nth, probability, down_for } => {
                self.crash_points.push(CrashPoint {
                    node: names.node(node)?,
                    seam: *seam,
                    nth: *nth,
                    probability: *probability,
                    down_for: *down_for,
                    seen: 0,
                    fired: 0,
                    spec,
                });
            }
        }
        Ok(())
    }

    /// The spells of a random fault on one target: up for an exponential
    /// time of mean `mtbf`, then down (or faulty) for one of mean `mttr`,
    /// from `window.0`; every spell is over by `window.1`.
    fn random(
        &mut self,
        what: &RandomFault,
        t: Target,
        (mtbf, mttr): (SimDuration, SimDuration),
        (from, until): (SimTime, SimTime),
        spec: u32,
    ) {
        let (up, down) = (Dist::Exp { mean: mtbf }, Dist::Exp { mean: mttr });
        let mut at = from;
        // A limit, so an absurd ratio of run to MTBF cannot explode the
        // plan (`check` refuses plans that would come near it; hitting it
        // is a warning).
        for k in 0..=RANDOM_CRASHES_MAX {
            if k == RANDOM_CRASHES_MAX {
                self.capped.push((spec, t));
                break;
            }
            at += up.sample(&mut self.draws);
            if at >= until {
                break;
            }
            let heal = (at + down.sample(&mut self.draws).max(SimDuration::NANOSECOND)).min(until);
            let node = || match t {
                Target::Node(n) => n,
                Target::Broker(_) => unreachable!("only crashes reach a broker"),
            };
            match *what {
                RandomFault::Crash => self.push(at, heal, PlanKind::Crash(t), spec),
                RandomFault::Pause => self.push(at, heal, PlanKind::Pause(node()), spec),
                RandomFault::Slow(factor) => self.push(at, heal, PlanKind::Slow(node(), factor), spec),
                RandomFault::Skew(factor) => self.push(at, heal, PlanKind::Skew(node(), factor), spec),
                RandomFault::Isolate | RandomFault::Lossy { .. } => {
                    // Every link of the node, both ways: cut, or lossy.
                    let mut fault = NetworkFault::partition(vec![node()], vec![ANY], true, heal);
                    if let RandomFault::Lossy { drop, duplicate, delay } = *what {
                        fault.blocked = false;
                        (fault.drop, fault.duplicate) = (drop, duplicate);
                        fault.delay = (delay > SimDuration::ZERO).then_some(Dist::Exp { mean: delay });
                    }
                    self.push_network(fault, at, heal, spec);
                }
            }
            at = heal;
        }
    }
}
