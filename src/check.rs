//! Invariants and their checkers, kept apart from the system they check.
//!
//! The kernel reports three observations: an entity was accepted, it reached
//! a terminal state, an effect was applied to it. The checker keeps a few
//! bytes per entity (not per event), flags duplicate effects the moment they
//! happen (safety), and judges liveness (`no-lost-entities`) against each
//! entity's deadline at the end of the run.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::metrics::Histogram;
use crate::service::{EffectId, EntityId, Kind};
use crate::sim::{SimDuration, SimTime};
use crate::system::{Event, InvariantSpec, Names};
use crate::trace::{Record, RecordKind};

mod effects;
mod entities;
mod order;
mod rows;
mod rules;
mod versions;

#[derive(Clone, Copy)]
struct EntityRec {
    created_at: SimTime,
    accepted_at: SimTime,
    terminal_at: SimTime,
    /// One bit per tracked effect: applied at least once.
    effects_seen: u16,
    /// One bit per tracked effect: applied more than once.
    effects_dup: u16,
    /// Parked in a dead-letter queue: accounted for, not lost.
    dead_lettered: bool,
    /// The first thing on its path that went wrong and was counted: a
    /// message of it lost (the loss reason's code), ignored as stale
    /// ([`SETBACK_IGNORED`]), or a call that failed for good
    /// ([`SETBACK_CALL_FAILED`]); 0 for none.
    setback: u8,
    /// Its kind: the index of the workload that created it.
    kind: u8,
}

/// What a verdict says: the invariant held over what it judged, it was
/// violated, or it judged nothing (a pass that tested nothing is no pass).
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Nothing violated it, and it judged at least one case.
    Holds,
    /// At least one case violated it.
    Violated,
    /// Nothing violated it, and nothing was judged: no entity reached the
    /// point where the invariant speaks (see [`Verdict::inconclusive`]).
    Inconclusive,
}

/// [`Checker::setback`]: a message of the entity was ignored as stale.
pub const SETBACK_IGNORED: u8 = 100;
/// [`Checker::setback`]: a call of the entity failed for good.
pub const SETBACK_CALL_FAILED: u8 = 101;
/// [`Checker::setback`]: a message of the entity went to a topic nobody consumes.
pub const SETBACK_UNCONSUMED: u8 = 102;
/// [`Checker::setback`]: the entity's state machine moved on an instance
/// while another instance held its state (state per instance, split).
pub const SETBACK_SPLIT_STATE: u8 = 103;
/// [`Checker::setback`]: a message of the entity was of a schema version
/// its consumer's instance does not read (failed, skipped or misread).
pub const SETBACK_UNREADABLE: u8 = 104;

/// The verdict on one invariant.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Verdict {
    /// The invariant, e.g. `no-lost-entities(order)`.
    pub name: String,
    /// Held, violated or inconclusive.
    pub status: Status,
    /// Number of entities that violate it.
    pub violations: u64,
    /// Named counts that explain the verdict.
    pub counts: BTreeMap<&'static str, u64>,
    /// Why an inconclusive verdict judged nothing, in a sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inconclusive: Option<String>,
    /// The story of one violating entity.
    pub example: Option<Story>,
    #[serde(skip)]
    pub(crate) example_entity: Option<EntityId>,
    /// A second entity the example's story needs (the change whose version
    /// a replica holds instead of the newest).
    #[serde(skip)]
    pub(crate) example_other: Option<EntityId>,
}

impl Verdict {
    /// A verdict: violated if `violations` is above zero, else
    /// inconclusive (for the reason `why` gives) if it `judged` nothing,
    /// else held.
    fn new(
        name: String,
        violations: u64,
        counts: BTreeMap<&'static str, u64>,
        judged: u64,
        why: impl FnOnce() -> String,
        example: Option<EntityId>,
    ) -> Verdict {
        let (status, inconclusive) = if violations > 0 {
            (Status::Violated, None)
        } else if judged == 0 {
            (Status::Inconclusive, Some(why()))
        } else {
            (Status::Holds, None)
        };
        Verdict {
            name,
            status,
            violations,
            counts,
            inconclusive,
            example: None,
            example_entity: example,
            example_other: None,
        }
    }

    /// The verdict of a liveness-style check: `violations` entities broke
    /// it, `counts` explain it, `judged` entities were judged and
    /// `unresolved` could not be judged yet.
    fn judged(
        name: String,
        violations: u64,
        counts: &[(&'static str, u64)],
        judged: u64,
        unresolved: u64,
        example: Option<EntityId>,
    ) -> Verdict {
        let mut counts: BTreeMap<&'static str, u64> = counts.iter().copied().collect();
        counts.insert("unresolved_at_end", unresolved);
        let why = || {
            if unresolved > 0 {
                format!(
                    "no entity could be judged: all {unresolved} were still within their deadline when the run ended"
                )
            } else {
                "no entity reached the point where it is judged".to_string()
            }
        };
        Verdict::new(name, violations, counts, judged, why, example)
    }

    /// It held, and judged something.
    pub fn holds(&self) -> bool {
        self.status == Status::Holds
    }

    /// It was violated.
    pub fn violated(&self) -> bool {
        self.status == Status::Violated
    }

    /// It judged nothing.
    pub fn is_inconclusive(&self) -> bool {
        self.status == Status::Inconclusive
    }
}

/// The causal chain of one entity, in a few readable lines.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Story {
    /// The entity.
    pub entity: u64,
    /// One line per step, then a conclusion.
    pub lines: Vec<String>,
}

/// Checks every invariant of a run as it goes.
pub struct Checker {
    entities: Vec<EntityRec>,
    /// Entities created before this are left out of every verdict and
    /// count (the warm-up).
    warmup: SimTime,
    /// Bit index per effect id, for effects some invariant follows.
    effect_bits: Vec<Option<u8>>,
    duplicates_by_bit: Vec<(u64, u64)>,
    first_dup_by_bit: Vec<Option<EntityId>>,
    latency: Histogram,
    /// One per replica-convergence invariant, in invariant order.
    replications: Vec<Replication>,
    /// Units handed out per (service, key), and each oversold entity per service.
    reservations: BTreeMap<(usize, u64), u64>,
    oversold: BTreeMap<usize, Vec<EntityId>>,
    /// For each bounded-amplification invariant: (service, messages it
    /// handled, the entity with most of them and how many, the entity
    /// kind it judges).
    amplification: Vec<(usize, u64, EntityId, u32, Option<u8>)>,
    /// Per invariant, in order: the entity kind it judges (`None`: all).
    scopes: Vec<Option<u8>>,
    /// Messages the followed services handled per entity (index: entity - 1).
    per_entity: Vec<u32>,
    /// One per business rule, in invariant order: per entity, when its
    /// first and second event happened.
    rules: Vec<Rule>,
    /// Which rule slots each kind, effect and state feeds.
    watch_kinds: Vec<Vec<(u16, u8)>>,
    watch_effects: Vec<Vec<(u16, u8)>>,
    watch_states: Vec<Vec<(u16, u8)>>,
    watch_accepted: Vec<Vec<(u16, u8)>>,
    /// Some rule watches published kinds (the kernel asks before reporting them).
    pub watches_kinds: bool,
    /// The service of each node (index: the records' `node`), for the
    /// checks that follow a service's work.
    node_services: Vec<usize>,
    /// One per version-compatible invariant, in invariant order.
    versions: Vec<versions::VersionCheck>,
    /// Some check follows the messages a service handles (amplification, versions).
    follows_work: bool,
    /// One per no-state-loss invariant, in invariant order.
    state_checks: Vec<rows::StateCheck>,
    /// One per per-key-order, bounded-staleness and bounded-lag invariant.
    orders: Vec<order::OrderCheck>,
    stalenesses: Vec<order::StalenessCheck>,
    lags: Vec<order::LagCheck>,
}

/// A business rule's observations: per entity (index: entity - 1), when
/// its first event (`from`, or the `prior`) and its second (one of `to`,
/// or the `event`) happened.
#[derive(Default)]
struct Rule {
    times: Vec<[SimTime; 2]>,
    /// The second event counts only once the first happened (leads-to: an
    /// answer before the question answers nothing).
    after_first: bool,
}

/// What a replica-convergence checker follows as the run goes: the newest
/// version the source wrote per row, and how long the replica took to get it.
struct Replication {
    source: usize,
    replica: usize,
    table: u16,
    newest: BTreeMap<u64, (u64, SimTime)>,
    staleness: Histogram,
}

impl Replication {
    /// What a replica-convergence invariant follows; `None` for another.
    fn of(inv: &InvariantSpec) -> Option<Replication> {
        let InvariantSpec::ReplicaConvergence { source, replica, table } = *inv else { return None };
        Some(Replication { source, replica, table, newest: BTreeMap::new(), staleness: Histogram::default() })
    }
}

/// The rows of a table as one service holds them at the end of a run:
/// row -> (newest version held by any of its instances, the value written
/// with it).
pub type Rows = BTreeMap<u64, (u64, i64)>;

impl Checker {
    /// One step of the run, as the trace records it: every record the
    /// kernel emits comes here, in trace order, so a check whose facts are
    /// traced reads them here and needs nothing from the kernel (and the
    /// story, told from the same records, shows what the verdict saw).
    /// The facts the trace does not carry come through the few methods
    /// below that the kernel calls itself: an entity created and of which
    /// workload (`created`), its end and latency (`terminal`, whose answer
    /// the kernel's series needs), a kind meant to be published
    /// (`emitted`, at the handler's step, not the relay's), a stock unit
    /// handed out (`reserved`), a row written (`write`) and a topic nobody
    /// consumes (`setback`).
    #[inline(always)]
    pub fn observe(&mut self, r: &Record) {
        let entity = EntityId(r.entity);
        match r.kind {
            RecordKind::Accepted => self.accepted(entity, r.time),
            RecordKind::Effect => self.effect(entity, EffectId(r.aux as u16), r.time),
            RecordKind::Transition => self.state(entity, (r.aux & 0xFFFF_FFFF) as u16, r.time),
            RecordKind::Lost => self.setback(entity, (r.aux & 0xFF) as u8),
            RecordKind::SplitState => self.setback(entity, SETBACK_SPLIT_STATE),
            RecordKind::CallFailed => self.setback(entity, SETBACK_CALL_FAILED),
            RecordKind::DeadLettered => self.dead_lettered(entity),
            RecordKind::Handled | RecordKind::Failed | RecordKind::Skipped => self.handled_on(r.node, entity),
            RecordKind::Unreadable | RecordKind::Unparked => self.version_step(r),
            RecordKind::Ignored => {
                self.handled_on(r.node, entity);
                // A stale deadline (the entity moved on) explains nothing; a
                // message nothing expected may be why an entity never ends.
                if r.aux != u64::from(Kind::TIMER.0) {
                    self.setback(entity, SETBACK_IGNORED);
                }
            }
            _ => {}
        }
    }

    /// The checker of a run whose node `n` belongs to service `services[n]`.
    pub fn with_nodes(mut self, services: Vec<usize>) -> Checker {
        self.node_services = services;
        self
    }

    /// Node `node` handled (or failed, skipped or ignored) a message of `entity`.
    #[inline(always)]
    fn handled_on(&mut self, node: u32, entity: EntityId) {
        if self.follows_work {
            self.followed_handled(node, entity);
        }
    }

    /// [`Checker::handled_on`] where some check follows a service's work.
    #[inline(never)]
    fn followed_handled(&mut self, node: u32, entity: EntityId) {
        if let Some(&service) = self.node_services.get(node as usize) {
            self.handled_at(service, entity);
            self.versions.iter_mut().filter(|v| v.service == service).for_each(|v| v.handled += 1);
        }
    }

    /// A checker for `invariants`, with `effects` effect names interned;
    /// `entities` holds each workload's entity kind, in workload order.
    pub fn new(invariants: &[InvariantSpec], effects: usize, entities: &[&str]) -> Checker {
        let scopes = Self::scopes(invariants, entities);
        let mut effect_bits = vec![None; effects];
        let mut next = 0u8;
        for effect in invariants.iter().flat_map(InvariantSpec::followed_effects) {
            if let Some(slot) = effect_bits.get_mut(effect.0 as usize)
                && slot.is_none()
                && next < 16
            {
                *slot = Some(next);
                next += 1;
            }
        }
        let (mut watch_kinds, mut watch_effects, mut watch_states) = (Vec::new(), Vec::new(), Vec::new());
        let mut watch_accepted = Vec::new();
        let mut rules = Vec::new();
        for inv in invariants {
            let (first, second): (Vec<Event>, Vec<Event>) = match inv {
                InvariantSpec::LeadsTo { from, to, .. } => (vec![*from], to.clone()),
                InvariantSpec::NeverWithout { event, prior, .. } => (vec![*prior], vec![*event]),
                _ => continue,
            };
            let r = rules.len() as u16;
            for (slot, events) in [(0u8, first), (1u8, second)] {
                for e in events {
                    let (table, i): (&mut Vec<Vec<(u16, u8)>>, usize) = match e {
                        Event::Kind(k) => (&mut watch_kinds, k.0 as usize),
                        Event::Effect(x) => (&mut watch_effects, x.0 as usize),
                        Event::State(x) => (&mut watch_states, usize::from(x)),
                        Event::Accepted => (&mut watch_accepted, 0),
                    };
                    if table.len() <= i {
                        table.resize(i + 1, Vec::new());
                    }
                    table[i].push((r, slot));
                }
            }
            rules.push(Rule { times: Vec::new(), after_first: matches!(inv, InvariantSpec::LeadsTo { .. }) });
        }
        Checker {
            entities: Vec::new(),
            warmup: SimTime::ZERO,
            effect_bits,
            duplicates_by_bit: vec![(0, 0); usize::from(next)],
            first_dup_by_bit: vec![None; usize::from(next)],
            latency: Histogram::default(),
            replications: invariants.iter().filter_map(Replication::of).collect(),
            reservations: BTreeMap::new(),
            oversold: BTreeMap::new(),
            amplification: Self::amplification_of(invariants, &scopes),
            scopes,
            per_entity: Vec::new(),
            rules,
            watches_kinds: !watch_kinds.is_empty(),
            watch_kinds,
            watch_effects,
            watch_states,
            watch_accepted,
            node_services: Vec::new(),
            versions: invariants.iter().filter_map(versions::VersionCheck::of).collect(),
            state_checks: invariants.iter().filter_map(rows::StateCheck::of).collect(),
            orders: Self::order_checks(invariants),
            stalenesses: Self::staleness_checks(invariants),
            lags: Self::lag_checks(invariants),
            follows_work: invariants.iter().any(|i| {
                matches!(i, InvariantSpec::BoundedAmplification { .. } | InvariantSpec::VersionCompatible { .. })
            }),
        }
    }

    /// What each bounded-amplification invariant follows, from nothing yet.
    fn amplification_of(
        invariants: &[InvariantSpec],
        scopes: &[Option<u8>],
    ) -> Vec<(usize, u64, EntityId, u32, Option<u8>)> {
        let follow = |(inv, scope): (&InvariantSpec, &Option<u8>)| match *inv {
            InvariantSpec::BoundedAmplification { service, .. } => Some((service, 0, EntityId(0), 0, *scope)),
            _ => None,
        };
        invariants.iter().zip(scopes).filter_map(follow).collect()
    }

    /// Per invariant: the entity kind it judges, by index in `entities`.
    fn scopes(invariants: &[InvariantSpec], entities: &[&str]) -> Vec<Option<u8>> {
        invariants
            .iter()
            .map(|inv| {
                let scope = inv.scope()?;
                let kind = entities.iter().position(|e| *e == scope);
                debug_assert!(kind.is_some(), "the compiler checked that `{scope}` is some workload's");
                // An unknown kind judges nothing (the compiler refuses it).
                Some(kind.map_or(u8::MAX, |k| k as u8))
            })
            .collect()
    }

    /// The warm-up is over: entities created from now on are the ones
    /// judged and counted.
    pub fn warm_up(&mut self, now: SimTime) {
        self.warmup = now;
        for d in &mut self.duplicates_by_bit {
            *d = (0, 0);
        }
        for f in &mut self.first_dup_by_bit {
            *f = None;
        }
        self.latency = Histogram::default();
        for a in &mut self.amplification {
            (a.1, a.2, a.3) = (0, EntityId(0), 0);
        }
    }

    /// True if `r` counts: created after the warm-up.
    #[inline]
    fn counted(&self, r: &EntityRec) -> bool {
        r.created_at >= self.warmup
    }

    /// True if the entity at index `i` counts.
    fn counted_at(&self, i: usize) -> bool {
        self.entities.get(i).is_some_and(|r| self.counted(r))
    }

    /// True if `r` counts and is of the kind `scope` judges.
    #[inline]
    fn judged(&self, r: &EntityRec, scope: Option<u8>) -> bool {
        self.counted(r) && scope.is_none_or(|k| r.kind == k)
    }

    /// True if the entity at index `i` counts and is of the kind `scope` judges.
    fn judged_at(&self, i: usize, scope: Option<u8>) -> bool {
        self.entities.get(i).is_some_and(|r| self.judged(r, scope))
    }

    #[inline]
    fn rec(&mut self, entity: EntityId) -> Option<&mut EntityRec> {
        self.entities.get_mut((entity.0 as usize).wrapping_sub(1))
    }

    /// End-to-end latency (created to terminal) of the entities that finished.
    pub fn latency(&self) -> &Histogram {
        &self.latency
    }

    /// Entities created, accepted and terminal.
    pub fn totals(&self) -> (u64, u64, u64) {
        let counted = || self.entities.iter().filter(|r| self.counted(r));
        let accepted = counted().filter(|r| r.accepted_at != SimTime::NEVER).count();
        let terminal = counted().filter(|r| r.terminal_at != SimTime::NEVER).count();
        (counted().count() as u64, accepted as u64, terminal as u64)
    }

    /// The verdicts, judged at the end of a run that reached `end`.
    ///
    /// `in_flight[e - 1]` says whether something of entity `e` was still in
    /// the system at the end (waiting in a queue, a log, a buffer, a timer):
    /// an entity that never ended is then stuck, not lost.
    pub fn verdicts(
        &self,
        invariants: &[InvariantSpec],
        names: &Names,
        last_heal: SimTime,
        end: SimTime,
        rows: &dyn Fn(usize, u16) -> Rows,
        in_flight: &[bool],
    ) -> Vec<Verdict> {
        let mut replications = self.replications.iter();
        let mut rules = self.rules.iter();
        let mut amplification = self.amplification.iter();
        let mut versions = self.versions.iter();
        let mut state_checks = self.state_checks.iter();
        let (mut orders, mut stalenesses, mut lags) = (self.orders.iter(), self.stalenesses.iter(), self.lags.iter());
        invariants
            .iter()
            .zip(&self.scopes)
            .map(|(inv, &scope)| match inv {
                InvariantSpec::TerminalWithin { within, .. } => {
                    self.judge_lost(inv.name(names), *within, last_heal, end, in_flight, scope)
                }
                InvariantSpec::SagaAtomicity { steps, deadline_after_heal, .. } => {
                    self.judge_saga(inv.name(names), steps, *deadline_after_heal, last_heal, end, scope)
                }
                InvariantSpec::LeadsTo { within, .. } => {
                    let rule = rules.next().expect("one rule per business rule");
                    self.judge_leads_to(inv.name(names), rule, *within, last_heal, end, scope)
                }
                InvariantSpec::NeverWithout { .. } => {
                    let rule = rules.next().expect("one rule per business rule");
                    self.judge_never_without(inv.name(names), rule, scope)
                }
                InvariantSpec::BoundedAmplification { factor, .. } => {
                    let a = amplification.next().expect("one per bounded-amplification");
                    self.judge_amplification(inv.name(names), a, *factor, scope)
                }
                InvariantSpec::NoOversell { service } => self.judge_oversell(inv.name(names), *service),
                InvariantSpec::PerKeyOrder { .. } => {
                    Self::judge_order(inv.name(names), orders.next().expect("one each"))
                }
                InvariantSpec::BoundedStaleness { .. } => {
                    Self::judge_staleness(inv.name(names), stalenesses.next().expect("one each"), last_heal, end)
                }
                InvariantSpec::BoundedLag { .. } => {
                    Self::judge_lag(inv.name(names), lags.next().expect("one each"), last_heal)
                }
                InvariantSpec::NoStateLoss { service, table, .. } => {
                    let sc = state_checks.next().expect("one per no-state-loss");
                    Self::judge_state_loss(inv.name(names), &rows(*service, *table), sc)
                }
                InvariantSpec::VersionCompatible { .. } => {
                    Self::judge_versions(inv.name(names), versions.next().expect("one per version-compatible"))
                }
                InvariantSpec::ReplicaConvergence { source, replica, table } => {
                    let r = replications.next().expect("one replication per convergence invariant");
                    Self::judge_convergence(inv.name(names), &rows(*source, *table), &rows(*replica, *table), r)
                }
                InvariantSpec::NoLostEntities { deadline_after_heal, .. } => {
                    self.judge_lost(inv.name(names), *deadline_after_heal, last_heal, end, in_flight, scope)
                }
                InvariantSpec::NoDuplicateEffects { effect } => self.judge_duplicates(inv.name(names), names, *effect),
            })
            .collect()
    }

    /// The entity's kind: the index of the workload that created it.
    pub fn kind_of(&self, entity: EntityId) -> usize {
        self.entities.get((entity.0 as usize).wrapping_sub(1)).map_or(0, |r| usize::from(r.kind))
    }

    /// When the entity was accepted and reached a terminal state.
    pub fn times(&self, entity: EntityId) -> Option<(SimTime, SimTime)> {
        self.entities.get((entity.0 as usize).wrapping_sub(1)).map(|r| (r.accepted_at, r.terminal_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_with(effect: &str) -> (Names, EffectId) {
        let mut n = Names::default();
        let e = n.effect(effect);
        (n, e)
    }

    #[test]
    fn duplicate_effects_are_counted_per_entity() {
        let (names, e) = names_with("invoice-sent");
        let invs = [InvariantSpec::NoDuplicateEffects { effect: e }];
        let mut c = Checker::new(&invs, names.effect_count(), &["order"]);
        for i in 1..=3 {
            c.created(EntityId(i), SimTime::ZERO, 0);
        }
        for i in [1, 2, 2, 2, 3] {
            c.effect(EntityId(i), e, SimTime::ZERO);
        }
        let v = &c.verdicts(&invs, &names, SimTime::ZERO, SimTime(10), &|_, _| Rows::new(), &[])[0];
        assert!(v.violated());
        assert_eq!(v.violations, 1);
        assert_eq!(v.counts["extra_applications"], 2);
        assert_eq!(v.example_entity, Some(EntityId(2)));
        assert_eq!(v.name, "no-duplicate-effects(invoice-sent)");
    }

    #[test]
    fn lost_stuck_late_and_unresolved_are_told_apart() {
        let names = Names::default();
        let grace = SimDuration(10);
        let invs = [InvariantSpec::NoLostEntities { entity: "order".into(), deadline_after_heal: grace }];
        let mut c = Checker::new(&invs, 0, &["order"]);
        for i in 1..=7 {
            c.created(EntityId(i), SimTime::ZERO, 0);
        }
        let heal = SimTime(50);
        // 1: done in time (deadline 60). 2: never done, a message of it
        // lost. 3: done late. 4: accepted near the end, deadline past it.
        // 5: never accepted. 6: never done, still in a queue at the end.
        // 7: never done, with nothing to say why (a faultline bug).
        c.accepted(EntityId(1), SimTime(1));
        c.terminal(EntityId(1), SimTime(60));
        c.accepted(EntityId(2), SimTime(2));
        c.setback(EntityId(2), 1);
        c.accepted(EntityId(3), SimTime(3));
        c.terminal(EntityId(3), SimTime(61));
        c.accepted(EntityId(4), SimTime(95));
        c.accepted(EntityId(6), SimTime(4));
        c.accepted(EntityId(7), SimTime(5));
        // 4 is still under way at the end: not judged. 8 has its deadline
        // past the end too, but nothing of it is left: it can never end.
        c.created(EntityId(8), SimTime::ZERO, 0);
        c.accepted(EntityId(8), SimTime(96));
        c.setback(EntityId(8), 1);
        let in_flight = [false, false, false, true, false, true, false, false];
        let v = &c.verdicts(&invs, &names, heal, SimTime(100), &|_, _| Rows::new(), &in_flight)[0];
        assert_eq!(
            v.counts,
            BTreeMap::from([
                ("accepted", 7),
                ("completed_in_time", 1),
                ("lost", 2),
                ("late", 1),
                ("stuck_at_end", 1),
                ("unexplained", 1),
                ("unresolved_at_end", 1)
            ])
        );
        assert_eq!(v.violations, 5);
        assert_eq!(v.example_entity, Some(EntityId(2)));
        assert_eq!(c.latency().count(), 2);
    }

    #[test]
    fn a_saga_is_done_compensated_half_done_or_still_running() {
        let mut names = Names::default();
        let (reserve, release) = (names.effect("reserved"), names.effect("released"));
        let (charge, refund) = (names.effect("charged"), names.effect("refunded"));
        let grace = SimDuration(10);
        let invs = [InvariantSpec::SagaAtomicity {
            steps: vec![(reserve, release), (charge, refund)],
            deadline_after_heal: grace,
            entity: None,
        }];
        let mut c = Checker::new(&invs, names.effect_count(), &["order"]);
        let t = SimTime::ZERO;
        for i in 1..=6 {
            c.created(EntityId(i), t, 0);
            c.accepted(EntityId(i), SimTime(1));
        }
        // 1 done; 2 compensated after a declined charge; 3 compensated after
        // a charge; 4 reserved and never released (half done, past its
        // deadline); 5 the same but still within it; 6 released what it never reserved.
        for (e, effect) in [(1, reserve), (1, charge), (2, reserve), (2, release), (3, reserve), (3, charge)]
            .into_iter()
            .chain([(3, refund), (3, release), (4, reserve), (5, reserve), (6, release)])
        {
            c.effect(EntityId(e), effect, t);
        }
        for e in [1, 2, 3, 6] {
            c.terminal(EntityId(e), SimTime(5));
        }
        // Entity 5 was accepted late: its deadline (95 + 10) is after the end.
        c.entities[4].accepted_at = SimTime(95);
        let v = &c.verdicts(&invs, &names, SimTime::ZERO, SimTime(100), &|_, _| Rows::new(), &[])[0];
        assert_eq!(
            v.counts,
            BTreeMap::from([("done", 1), ("compensated", 2), ("half_done", 2), ("unresolved_at_end", 1)])
        );
        assert_eq!(v.example_entity, Some(EntityId(4)));
        assert!(c.effects_applied(EntityId(4), reserve) && !c.effects_applied(EntityId(4), release));
        assert_eq!(v.name, "saga-atomicity(reserved/released, charged/refunded)");
    }

    #[test]
    fn business_rules_judge_order_and_deadlines_per_entity() {
        let mut names = Names::default();
        let (placed, shipped) = (names.kind("Placed"), names.kind("Shipped"));
        let refund = names.effect("refunded");
        let charge = names.effect("charged");
        let invs = [
            InvariantSpec::LeadsTo {
                from: Event::Kind(placed),
                to: vec![Event::Kind(shipped)],
                within: SimDuration(10),
                entity: None,
            },
            InvariantSpec::NeverWithout { event: Event::Effect(refund), prior: Event::Effect(charge), entity: None },
        ];
        let mut c = Checker::new(&invs, names.effect_count(), &["order"]);
        assert!(c.watches_kinds);
        for i in 1..=5 {
            c.created(EntityId(i), SimTime::ZERO, 0);
        }
        // Leads-to: 1 in time, 2 late, 3 never, 4 shipped before it was
        // placed (does not count) and never after, 5 placed near the end.
        c.emitted(EntityId(1), placed, SimTime(1));
        c.emitted(EntityId(1), shipped, SimTime(5));
        c.emitted(EntityId(2), placed, SimTime(1));
        c.emitted(EntityId(2), shipped, SimTime(30));
        c.emitted(EntityId(3), placed, SimTime(1));
        c.emitted(EntityId(4), shipped, SimTime(1));
        c.emitted(EntityId(4), placed, SimTime(2));
        c.emitted(EntityId(5), placed, SimTime(95));
        // Never-without: 1 charged then refunded, 2 refunded alone, 3
        // refunded before it was charged.
        c.effect(EntityId(1), charge, SimTime(1));
        c.effect(EntityId(1), refund, SimTime(2));
        c.effect(EntityId(2), refund, SimTime(2));
        c.effect(EntityId(3), refund, SimTime(2));
        c.effect(EntityId(3), charge, SimTime(3));
        let vs = c.verdicts(&invs, &names, SimTime::ZERO, SimTime(100), &|_, _| Rows::new(), &[]);
        assert_eq!(
            vs[0].counts,
            BTreeMap::from([
                ("started", 5),
                ("followed_in_time", 1),
                ("late", 1),
                ("never", 2),
                ("unresolved_at_end", 1)
            ])
        );
        assert_eq!(vs[0].example_entity, Some(EntityId(2)));
        assert_eq!(vs[0].name, "Placed leads-to Shipped within 10ns");
        assert_eq!(vs[1].counts, BTreeMap::from([("happened", 3), ("without_prior", 2)]));
        assert_eq!(vs[1].example_entity, Some(EntityId(2)));
        assert_eq!(c.rule_times(1, EntityId(3)), [SimTime(3), SimTime(2)]);
    }

    #[test]
    fn a_rule_scoped_to_one_entity_kind_never_judges_another() {
        let mut names = Names::default();
        let charge = names.effect("charged");
        let invs = [
            InvariantSpec::NoLostEntities { entity: "order".into(), deadline_after_heal: SimDuration(10) },
            InvariantSpec::LeadsTo {
                from: Event::Accepted,
                to: vec![Event::Effect(charge)],
                within: SimDuration(10),
                entity: Some("order".into()),
            },
            InvariantSpec::NoLostEntities { entity: "change".into(), deadline_after_heal: SimDuration(10) },
            InvariantSpec::BoundedAmplification { service: 0, factor: 1.0, entity: Some("change".into()) },
        ];
        let mut c = Checker::new(&invs, names.effect_count(), &["order", "change"]);
        // Orders 1 and 3 are charged and end; changes 2 and 4 never end.
        for (e, kind) in [(1, 0), (2, 1), (3, 0), (4, 1)] {
            c.created(EntityId(e), SimTime::ZERO, kind);
            c.accepted(EntityId(e), SimTime(1));
            c.handled_at(0, EntityId(e));
        }
        for e in [1, 3] {
            c.effect(EntityId(e), charge, SimTime(2));
            c.terminal(EntityId(e), SimTime(3));
        }
        c.handled_at(0, EntityId(1));
        let v = c.verdicts(&invs, &names, SimTime::ZERO, SimTime(100), &|_, _| Rows::new(), &[false; 4]);
        assert!(v[0].holds(), "the orders all ended: {:?}", v[0].counts);
        assert_eq!(v[0].counts["accepted"], 2);
        assert!(v[1].holds(), "the changes are never charged, and not judged: {:?}", v[1].counts);
        assert_eq!(v[1].counts["started"], 2);
        assert_eq!(v[1].name, "order: accepted leads-to charged within 10ns");
        assert!(v[2].violated());
        assert_eq!(v[2].example_entity, Some(EntityId(2)));
        assert_eq!((v[3].counts["handled"], v[3].counts["accepted"]), (2, 2), "only the changes' messages count");
        assert_eq!(c.kind_of(EntityId(4)), 1);
    }

    #[test]
    fn the_checker_reads_its_facts_from_the_records() {
        use crate::trace::{LossReason, Record, RecordKind, loss_aux};
        let (names, e) = names_with("invoice-sent");
        let invs = [
            InvariantSpec::NoLostEntities { entity: "order".into(), deadline_after_heal: SimDuration(10) },
            InvariantSpec::NoDuplicateEffects { effect: e },
            InvariantSpec::BoundedAmplification { entity: None, service: 1, factor: 1.0 },
        ];
        // Node 0 is service 0's; nodes 1 and 2 are service 1's.
        let mut c = Checker::new(&invs, names.effect_count(), &["order"]).with_nodes(vec![0, 1, 1]);
        for i in 1..=3 {
            c.created(EntityId(i), SimTime::ZERO, 0);
        }
        let rec = |kind, node, entity, aux| Record { time: SimTime(5), kind, node, msg: 0, entity, aux };
        let stream = [
            rec(RecordKind::Accepted, 0, 1, 0),
            rec(RecordKind::Accepted, 0, 2, 0),
            rec(RecordKind::Accepted, 0, 3, 0),
            // Entity 1's invoice twice, at service 1 on both its nodes.
            rec(RecordKind::Handled, 1, 1, 0),
            rec(RecordKind::Effect, 1, 1, u64::from(e.0)),
            rec(RecordKind::Skipped, 2, 1, 0),
            rec(RecordKind::Effect, 2, 1, u64::from(e.0)),
            // Work at service 0 is not service 1's.
            rec(RecordKind::Handled, 0, 1, 0),
            // Entity 2 lost: its setback; entity 3 ignored a stale timer only.
            rec(RecordKind::Lost, 1, 2, loss_aux(LossReason::CrashedWhileHeld, 0)),
            rec(RecordKind::Ignored, 1, 3, u64::from(Kind::TIMER.0)),
            rec(RecordKind::Published, 1, 3, 0),
        ];
        for r in &stream {
            c.observe(r);
        }
        c.terminal(EntityId(1), SimTime(6));
        let v = c.verdicts(&invs, &names, SimTime::ZERO, SimTime(100), &|_, _| Rows::new(), &[]);
        assert_eq!((v[0].counts["lost"], v[0].counts["unexplained"]), (1, 1), "{:?}", v[0].counts);
        assert_eq!((v[1].violations, v[1].example_entity), (1, Some(EntityId(1))));
        assert_eq!(v[2].counts["handled"], 3, "handled, skipped and ignored on service 1's nodes");
        assert_eq!(v[2].counts["most_for_one_entity"], 2);
    }
}
