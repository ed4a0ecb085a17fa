//! Business rules over each entity's events: `leads-to` (an event is
//! followed by another within a time), `never-without` (an event never
//! happens without a prior one) and `saga-atomicity` (every saga ends
//! fully done or fully compensated).

use super::*;

impl Checker {
    /// Feeds the rules that watch an event of `entity` (found in `watch`).
    pub(super) fn feed_rules(rules: &mut [Rule], watch: &[Vec<(u16, u8)>], i: usize, entity: EntityId, now: SimTime) {
        let Some(slots) = watch.get(i) else { return };
        let e = (entity.0 as usize).wrapping_sub(1);
        for &(r, slot) in slots {
            let rule = &mut rules[usize::from(r)];
            let after_first = rule.after_first;
            let times = &mut rule.times;
            if times.len() <= e {
                if e > 1 << 32 {
                    continue;
                }
                times.resize(e + 1, [SimTime::NEVER; 2]);
            }
            let t = &mut times[e];
            if slot == 1 && after_first && t[0] == SimTime::NEVER {
                continue;
            }
            if t[usize::from(slot)] == SimTime::NEVER {
                t[usize::from(slot)] = now;
            }
        }
    }

    /// A message of `kind` was published for `entity`.
    #[inline]
    pub fn emitted(&mut self, entity: EntityId, kind: Kind, now: SimTime) {
        Self::feed_rules(&mut self.rules, &self.watch_kinds, kind.0 as usize, entity, now);
    }

    /// The entity's state machine entered `state`.
    pub fn state(&mut self, entity: EntityId, state: u16, now: SimTime) {
        Self::feed_rules(&mut self.rules, &self.watch_states, usize::from(state), entity, now);
    }

    pub(super) fn judge_saga(
        &self,
        name: String,
        steps: &[(EffectId, EffectId)],
        grace: SimDuration,
        last_heal: SimTime,
        end: SimTime,
        scope: Option<u8>,
    ) -> Verdict {
        let bit = |e: EffectId| self.effect_bits.get(e.0 as usize).copied().flatten().map_or(0u16, |b| 1 << b);
        let (mut done, mut compensated, mut partial, mut unresolved) = (0, 0, 0, 0);
        let mut example = None;
        for (i, r) in self.entities.iter().enumerate() {
            if r.accepted_at == SimTime::NEVER || !self.judged(r, scope) {
                continue;
            }
            let seen = r.effects_seen;
            let all_done = steps.iter().all(|(d, u)| seen & bit(*d) != 0 && seen & bit(*u) == 0);
            let undone = steps.iter().all(|(d, u)| (seen & bit(*d) != 0) == (seen & bit(*u) != 0));
            let deadline = Self::deadline(r.accepted_at, last_heal, grace);
            if r.terminal_at == SimTime::NEVER && deadline > end && !(all_done || undone) {
                unresolved += 1;
            } else if all_done {
                done += 1;
            } else if undone {
                compensated += 1;
            } else {
                partial += 1;
                example.get_or_insert(EntityId(i as u64 + 1));
            }
        }
        let counts = [("done", done), ("compensated", compensated), ("half_done", partial)];
        Verdict::judged(name, partial, &counts, done + compensated + partial, unresolved, example)
    }

    pub(super) fn judge_leads_to(
        &self,
        name: String,
        rule: &Rule,
        within: SimDuration,
        last_heal: SimTime,
        end: SimTime,
        scope: Option<u8>,
    ) -> Verdict {
        let (mut started, mut followed, mut late, mut never, mut unresolved) = (0, 0, 0, 0, 0);
        let mut example = None;
        for (i, [first, second]) in rule.times.iter().enumerate() {
            if *first == SimTime::NEVER || !self.judged_at(i, scope) {
                continue;
            }
            started += 1;
            let deadline = (*first).max(last_heal) + within;
            let answered = *second != SimTime::NEVER && *second >= *first;
            if answered && *second <= deadline {
                followed += 1;
            } else if deadline > end {
                unresolved += 1;
            } else {
                if answered {
                    late += 1
                } else {
                    never += 1
                }
                example.get_or_insert(EntityId(i as u64 + 1));
            }
        }
        let counts = [("started", started), ("followed_in_time", followed), ("late", late), ("never", never)];
        Verdict::judged(name, late + never, &counts, followed + late + never, unresolved, example)
    }

    pub(super) fn judge_never_without(&self, name: String, rule: &Rule, scope: Option<u8>) -> Verdict {
        let (mut happened, mut alone) = (0, 0);
        let mut example = None;
        for (i, [prior, event]) in rule.times.iter().enumerate() {
            if *event == SimTime::NEVER || !self.judged_at(i, scope) {
                continue;
            }
            happened += 1;
            if *prior == SimTime::NEVER || *prior > *event {
                alone += 1;
                example.get_or_insert(EntityId(i as u64 + 1));
            }
        }
        let counts = BTreeMap::from([("happened", happened), ("without_prior", alone)]);
        let why = || "the event never happened".to_string();
        Verdict::new(name, alone, counts, happened, why, example)
    }

    /// When a business rule's two events happened to `entity` (for stories).
    pub fn rule_times(&self, rule: usize, entity: EntityId) -> [SimTime; 2] {
        self.rules
            .get(rule)
            .and_then(|r| r.times.get((entity.0 as usize).wrapping_sub(1)))
            .copied()
            .unwrap_or([SimTime::NEVER; 2])
    }
}
