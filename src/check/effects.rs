//! Effects and work per entity: `no-duplicate-effects` (an effect applied
//! twice to one entity, flagged the moment it happens) and
//! `bounded-amplification` (the messages a service handled per accepted
//! entity).

use super::*;

impl Checker {
    pub(super) fn judge_duplicates(&self, name: String, names: &Names, effect: EffectId) -> Verdict {
        let bit = self.effect_bits.get(effect.0 as usize).copied().flatten();
        let (entities, extra) = bit.map_or((0, 0), |b| self.duplicates_by_bit[usize::from(b)]);
        let mask = bit.map_or(0, |b| 1u16 << b);
        let applied = self.entities.iter().filter(|r| self.counted(r) && r.effects_seen & mask != 0).count() as u64;
        let mut counts = BTreeMap::new();
        counts.insert("entities_applied", applied);
        counts.insert("entities_affected", entities);
        counts.insert("extra_applications", extra);
        let why = || format!("effect {} was never applied", names.effect_name(effect));
        let example = bit.and_then(|b| self.first_dup_by_bit[usize::from(b)]);
        Verdict::new(name, entities, counts, applied, why, example)
    }

    /// An effect was applied to the entity.
    #[inline]
    pub fn effect(&mut self, entity: EntityId, effect: EffectId, now: SimTime) {
        if !self.watch_effects.is_empty() {
            Self::feed_rules(&mut self.rules, &self.watch_effects, effect.0 as usize, entity, now);
        }
        let Some(Some(bit)) = self.effect_bits.get(effect.0 as usize).copied() else { return };
        let mask = 1u16 << bit;
        let warmup = self.warmup;
        let Some(r) = self.rec(entity) else { return };
        if r.effects_seen & mask == 0 {
            r.effects_seen |= mask;
            return;
        }
        if r.created_at < warmup {
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

    /// Which saga effects `entity` had applied (bit per tracked effect).
    pub fn effects_applied(&self, entity: EntityId, effect: EffectId) -> bool {
        let Some(Some(bit)) = self.effect_bits.get(effect.0 as usize).copied() else { return false };
        self.entities.get((entity.0 as usize).wrapping_sub(1)).is_some_and(|r| r.effects_seen & (1 << bit) != 0)
    }

    /// A node of service `service` handled a message of `entity`.
    #[inline]
    pub fn handled_at(&mut self, service: usize, entity: EntityId) {
        if self.amplification.is_empty() {
            return;
        }
        let i = (entity.0 as usize).wrapping_sub(1);
        let Some(&r) = self.entities.get(i) else { return };
        if !self.counted(&r) {
            return;
        }
        for a in &mut self.amplification {
            if a.0 != service || a.4.is_some_and(|k| k != r.kind) {
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

    pub(super) fn judge_amplification(
        &self,
        name: String,
        &(_, handled, worst, most, _): &(usize, u64, EntityId, u32, Option<u8>),
        factor: f64,
        scope: Option<u8>,
    ) -> Verdict {
        let accepted =
            self.entities.iter().filter(|r| self.judged(r, scope) && r.accepted_at != SimTime::NEVER).count() as u64;
        let ratio = handled as f64 / accepted.max(1) as f64;
        let holds = ratio <= factor;
        let mut counts = BTreeMap::new();
        counts.insert("handled", handled);
        counts.insert("accepted", accepted);
        counts.insert("per_entity_x1000", (ratio * 1000.0).round() as u64);
        counts.insert("most_for_one_entity", u64::from(most));
        let why = || {
            if accepted == 0 {
                "no entity was accepted".to_string()
            } else {
                "the service handled no message".to_string()
            }
        };
        let example = (!holds && worst.0 > 0).then_some(worst);
        Verdict::new(name, u64::from(!holds), counts, accepted.min(handled), why, example)
    }
}
