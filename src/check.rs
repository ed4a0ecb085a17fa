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
use crate::service::{EffectId, EntityId};
use crate::sim::{SimDuration, SimTime};
use crate::system::{InvariantSpec, Names};

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
}

/// The verdict on one invariant.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Verdict {
    /// The invariant, e.g. `no-lost-entities(order)`.
    pub name: String,
    /// Whether it held.
    pub holds: bool,
    /// Number of entities that violate it.
    pub violations: u64,
    /// Named counts that explain the verdict.
    pub counts: BTreeMap<&'static str, u64>,
    /// The story of one violating entity.
    pub example: Option<Story>,
    #[serde(skip)]
    pub(crate) example_entity: Option<EntityId>,
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
    /// handled, the entity with most of them and how many).
    amplification: Vec<(usize, u64, EntityId, u32)>,
    /// Messages the followed services handled per entity (index: entity - 1).
    per_entity: Vec<u32>,
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

/// The rows of a table as one service holds them at the end of a run:
/// row -> newest version held by any of its instances.
pub type Rows = BTreeMap<u64, u64>;

impl Checker {
    /// A checker for `invariants`, with `effects` effect names interned.
    pub fn new(invariants: &[InvariantSpec], effects: usize) -> Checker {
        let mut effect_bits = vec![None; effects];
        let mut next = 0u8;
        for inv in invariants {
            if let InvariantSpec::NoDuplicateEffects { effect } = inv
                && let Some(slot) = effect_bits.get_mut(effect.0 as usize)
                && slot.is_none()
                && next < 16
            {
                *slot = Some(next);
                next += 1;
            }
        }
        Checker {
            entities: Vec::new(),
            effect_bits,
            duplicates_by_bit: vec![(0, 0); usize::from(next)],
            first_dup_by_bit: vec![None; usize::from(next)],
            latency: Histogram::default(),
            replications: invariants
                .iter()
                .filter_map(|inv| match *inv {
                    InvariantSpec::ReplicaConvergence { source, replica, table } => Some(Replication {
                        source,
                        replica,
                        table,
                        newest: BTreeMap::new(),
                        staleness: Histogram::default(),
                    }),
                    _ => None,
                })
                .collect(),
            reservations: BTreeMap::new(),
            oversold: BTreeMap::new(),
            amplification: invariants
                .iter()
                .filter_map(|inv| match *inv {
                    InvariantSpec::BoundedAmplification { service, .. } => Some((service, 0, EntityId(0), 0)),
                    _ => None,
                })
                .collect(),
            per_entity: Vec::new(),
        }
    }

    /// A node of service `service` handled a message of `entity`.
    #[inline]
    pub fn handled_at(&mut self, service: usize, entity: EntityId) {
        if self.amplification.is_empty() {
            return;
        }
        let i = (entity.0 as usize).wrapping_sub(1);
        for a in &mut self.amplification {
            if a.0 != service {
                continue;
            }
            a.1 += 1;
            if i < self.entities.len() {
                if self.per_entity.len() < self.entities.len() {
                    self.per_entity.resize(self.entities.len(), 0);
                }
                self.per_entity[i] += 1;
                if self.per_entity[i] > a.3 {
                    (a.2, a.3) = (entity, self.per_entity[i]);
                }
            }
        }
    }

    /// Service `service` handed out a unit of `key`'s stock (of `initial`) to `entity`.
    pub fn reserved(&mut self, service: usize, key: u64, initial: u32, entity: EntityId) {
        let n = self.reservations.entry((service, key)).or_insert(0);
        *n += 1;
        if *n > u64::from(initial) {
            self.oversold.entry(service).or_default().push(entity);
        }
    }

    /// Service `service` wrote `version` to row `key` of `table`.
    pub fn write(&mut self, service: usize, table: u16, key: u64, version: u64, now: SimTime) {
        for r in &mut self.replications {
            if r.table != table {
                continue;
            }
            if service == r.source {
                let newest = r.newest.entry(key).or_insert((version, now));
                if version >= newest.0 {
                    *newest = (version, now);
                }
            } else if service == r.replica
                && let Some(&(v, t)) = r.newest.get(&key)
                && v == version
            {
                r.staleness.record((now - t).0);
            }
        }
    }

    /// A new entity exists (ids are dense and start at 1).
    #[inline]
    pub fn created(&mut self, entity: EntityId, now: SimTime) {
        debug_assert_eq!(entity.0, self.entities.len() as u64 + 1);
        self.entities.push(EntityRec {
            created_at: now,
            accepted_at: SimTime::NEVER,
            terminal_at: SimTime::NEVER,
            effects_seen: 0,
            effects_dup: 0,
            dead_lettered: false,
        });
    }

    #[inline]
    fn rec(&mut self, entity: EntityId) -> Option<&mut EntityRec> {
        self.entities.get_mut((entity.0 as usize).wrapping_sub(1))
    }

    /// The entity was accepted (the first acceptance counts).
    #[inline]
    pub fn accepted(&mut self, entity: EntityId, now: SimTime) {
        if let Some(r) = self.rec(entity)
            && r.accepted_at == SimTime::NEVER
        {
            r.accepted_at = now;
        }
    }

    /// The entity reached a terminal state (the first time counts).
    #[inline]
    pub fn terminal(&mut self, entity: EntityId, now: SimTime) {
        let Some(r) = self.rec(entity) else { return };
        if r.terminal_at != SimTime::NEVER {
            return;
        }
        r.terminal_at = now;
        let latency = now - r.created_at;
        self.latency.record(latency.0);
    }

    /// A message of the entity went to a dead-letter queue: an operator will
    /// see it, so if the entity does not finish it is parked, not lost.
    pub fn dead_lettered(&mut self, entity: EntityId) {
        if let Some(r) = self.rec(entity) {
            r.dead_lettered = true;
        }
    }

    /// An effect was applied to the entity.
    #[inline]
    pub fn effect(&mut self, entity: EntityId, effect: EffectId) {
        let Some(Some(bit)) = self.effect_bits.get(effect.0 as usize).copied() else { return };
        let mask = 1u16 << bit;
        let Some(r) = self.rec(entity) else { return };
        if r.effects_seen & mask == 0 {
            r.effects_seen |= mask;
            return;
        }
        let newly = r.effects_dup & mask == 0;
        r.effects_dup |= mask;
        let d = &mut self.duplicates_by_bit[usize::from(bit)];
        d.1 += 1;
        if newly {
            d.0 += 1;
            self.first_dup_by_bit[usize::from(bit)].get_or_insert(entity);
        }
    }

    /// End-to-end latency (created to terminal) of the entities that finished.
    pub fn latency(&self) -> &Histogram {
        &self.latency
    }

    /// Entities created, accepted and terminal.
    pub fn totals(&self) -> (u64, u64, u64) {
        let accepted = self.entities.iter().filter(|r| r.accepted_at != SimTime::NEVER).count();
        let terminal = self.entities.iter().filter(|r| r.terminal_at != SimTime::NEVER).count();
        (self.entities.len() as u64, accepted as u64, terminal as u64)
    }

    /// The verdicts, judged at the end of a run that reached `end`.
    pub fn verdicts(
        &self,
        invariants: &[InvariantSpec],
        names: &Names,
        last_heal: SimTime,
        end: SimTime,
        rows: &dyn Fn(usize, u16) -> Rows,
    ) -> Vec<Verdict> {
        let mut replications = self.replications.iter();
        invariants
            .iter()
            .map(|inv| match inv {
                InvariantSpec::BoundedAmplification { service, factor } => {
                    let &(_, handled, worst, most) =
                        self.amplification.iter().find(|a| a.0 == *service).expect("tracked");
                    let accepted = self.entities.iter().filter(|r| r.accepted_at != SimTime::NEVER).count() as u64;
                    let ratio = handled as f64 / accepted.max(1) as f64;
                    let holds = ratio <= *factor;
                    let mut counts = BTreeMap::new();
                    counts.insert("handled", handled);
                    counts.insert("accepted", accepted);
                    counts.insert("per_entity_x1000", (ratio * 1000.0).round() as u64);
                    counts.insert("most_for_one_entity", u64::from(most));
                    Verdict {
                        name: inv.name(names),
                        holds,
                        violations: u64::from(!holds),
                        counts,
                        example: None,
                        example_entity: (!holds && worst.0 > 0).then_some(worst),
                    }
                }
                InvariantSpec::NoOversell { service } => {
                    let oversold = self.oversold.get(service).map_or(&[][..], Vec::as_slice);
                    let keys = self.reservations.keys().filter(|(s, _)| s == service).count() as u64;
                    let units: u64 = self.reservations.iter().filter(|((s, _), _)| s == service).map(|(_, n)| n).sum();
                    let mut counts = BTreeMap::new();
                    counts.insert("keys", keys);
                    counts.insert("units_handed_out", units);
                    counts.insert("oversold", oversold.len() as u64);
                    Verdict {
                        name: inv.name(names),
                        holds: oversold.is_empty(),
                        violations: oversold.len() as u64,
                        counts,
                        example: None,
                        example_entity: oversold.first().copied(),
                    }
                }
                InvariantSpec::ReplicaConvergence { source, replica, table } => {
                    let r = replications.next().expect("one replication per convergence invariant");
                    Self::judge_convergence(inv.name(names), &rows(*source, *table), &rows(*replica, *table), r)
                }
                InvariantSpec::NoLostEntities { deadline_after_heal, .. } => {
                    self.judge_lost(inv.name(names), *deadline_after_heal, last_heal, end)
                }
                InvariantSpec::NoDuplicateEffects { effect } => {
                    let bit = self.effect_bits.get(effect.0 as usize).copied().flatten();
                    let (entities, extra) = bit.map_or((0, 0), |b| self.duplicates_by_bit[usize::from(b)]);
                    let mut counts = BTreeMap::new();
                    counts.insert("entities_affected", entities);
                    counts.insert("extra_applications", extra);
                    Verdict {
                        name: inv.name(names),
                        holds: entities == 0,
                        violations: entities,
                        counts,
                        example: None,
                        example_entity: bit.and_then(|b| self.first_dup_by_bit[usize::from(b)]),
                    }
                }
            })
            .collect()
    }

    fn judge_convergence(name: String, source: &Rows, replica: &Rows, r: &Replication) -> Verdict {
        let diverged: Vec<(u64, u64)> =
            source.iter().filter(|(k, v)| replica.get(k) != Some(v)).map(|(k, v)| (*k, *v)).collect();
        let ms = |ns: f64| (ns / 1e6).round() as u64;
        let mut counts = BTreeMap::new();
        counts.insert("rows", source.len() as u64);
        counts.insert("converged", (source.len() - diverged.len()) as u64);
        counts.insert("diverged", diverged.len() as u64);
        counts.insert("staleness_mean_ms", ms(r.staleness.mean()));
        counts.insert(
            "staleness_max_ms",
            ms(if r.staleness.count() == 0 { 0.0 } else { r.staleness.quantile(1.0) as f64 }),
        );
        Verdict {
            name,
            holds: diverged.is_empty(),
            violations: diverged.len() as u64,
            counts,
            example: None,
            // The version is the id of the change that wrote it.
            example_entity: diverged.first().map(|&(_, version)| EntityId(version)),
        }
    }

    /// The deadline of an entity accepted at `accepted`.
    pub fn deadline(accepted: SimTime, last_heal: SimTime, grace: SimDuration) -> SimTime {
        accepted.max(last_heal) + grace
    }

    fn judge_lost(&self, name: String, grace: SimDuration, last_heal: SimTime, end: SimTime) -> Verdict {
        let (mut accepted, mut completed, mut lost, mut late, mut unresolved, mut parked) = (0, 0, 0, 0, 0, 0);
        let mut example = None;
        for (i, r) in self.entities.iter().enumerate() {
            if r.accepted_at == SimTime::NEVER {
                continue;
            }
            accepted += 1;
            let deadline = Self::deadline(r.accepted_at, last_heal, grace);
            if r.terminal_at <= deadline {
                completed += 1;
            } else if r.dead_lettered && r.terminal_at == SimTime::NEVER {
                parked += 1;
            } else if deadline > end {
                unresolved += 1;
            } else {
                if r.terminal_at == SimTime::NEVER {
                    lost += 1;
                } else {
                    late += 1;
                }
                example.get_or_insert(EntityId(i as u64 + 1));
            }
        }
        let mut counts = BTreeMap::new();
        counts.insert("accepted", accepted);
        counts.insert("completed_in_time", completed);
        counts.insert("lost", lost);
        counts.insert("late", late);
        counts.insert("unresolved_at_end", unresolved);
        if parked > 0 {
            counts.insert("dead_lettered", parked);
        }
        Verdict {
            name,
            holds: lost + late == 0,
            violations: lost + late,
            counts,
            example: None,
            example_entity: example,
        }
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
        let mut c = Checker::new(&invs, names.effect_count());
        for i in 1..=3 {
            c.created(EntityId(i), SimTime::ZERO);
        }
        c.effect(EntityId(1), e);
        c.effect(EntityId(2), e);
        c.effect(EntityId(2), e);
        c.effect(EntityId(2), e);
        c.effect(EntityId(3), e);
        let v = &c.verdicts(&invs, &names, SimTime::ZERO, SimTime(10), &|_, _| Rows::new())[0];
        assert!(!v.holds);
        assert_eq!(v.violations, 1);
        assert_eq!(v.counts["extra_applications"], 2);
        assert_eq!(v.example_entity, Some(EntityId(2)));
        assert_eq!(v.name, "no-duplicate-effects(invoice-sent)");
    }

    #[test]
    fn lost_late_and_unresolved_are_told_apart() {
        let names = Names::default();
        let grace = SimDuration(10);
        let invs = [InvariantSpec::NoLostEntities { entity: "order".into(), deadline_after_heal: grace }];
        let mut c = Checker::new(&invs, 0);
        for i in 1..=5 {
            c.created(EntityId(i), SimTime::ZERO);
        }
        let heal = SimTime(50);
        // 1: done in time (deadline 60). 2: never done. 3: done late.
        // 4: accepted near the end, deadline past it. 5: never accepted.
        c.accepted(EntityId(1), SimTime(1));
        c.terminal(EntityId(1), SimTime(60));
        c.accepted(EntityId(2), SimTime(2));
        c.accepted(EntityId(3), SimTime(3));
        c.terminal(EntityId(3), SimTime(61));
        c.accepted(EntityId(4), SimTime(95));
        let v = &c.verdicts(&invs, &names, heal, SimTime(100), &|_, _| Rows::new())[0];
        assert_eq!(
            v.counts,
            BTreeMap::from([
                ("accepted", 4),
                ("completed_in_time", 1),
                ("lost", 1),
                ("late", 1),
                ("unresolved_at_end", 1)
            ])
        );
        assert_eq!(v.violations, 2);
        assert_eq!(v.example_entity, Some(EntityId(2)));
        assert_eq!(c.latency().count(), 2);
    }
}
