//! Entities that must end: `no-lost-entities` and `terminal-within`.
//!
//! Each entity's record (created, accepted, terminal, parked in a
//! dead-letter queue, the first setback on its path) and the judgement of
//! each accepted entity against its deadline: done in time, late, lost
//! (with what explains it), stuck at the end, or still under way.

use super::*;

impl Checker {
    /// A new entity of kind `kind` (its workload's index) exists (ids are
    /// dense and start at 1).
    #[inline]
    pub fn created(&mut self, entity: EntityId, now: SimTime, kind: u8) {
        debug_assert_eq!(entity.0, self.entities.len() as u64 + 1);
        self.entities.push(EntityRec {
            created_at: now,
            accepted_at: SimTime::NEVER,
            terminal_at: SimTime::NEVER,
            effects_seen: 0,
            effects_dup: 0,
            dead_lettered: false,
            setback: 0,
            kind,
        });
    }

    /// The entity was accepted (the first acceptance counts).
    #[inline]
    pub fn accepted(&mut self, entity: EntityId, now: SimTime) {
        if let Some(r) = self.rec(entity)
            && r.accepted_at == SimTime::NEVER
        {
            r.accepted_at = now;
            if !self.watch_accepted.is_empty() {
                Self::feed_rules(&mut self.rules, &self.watch_accepted, 0, entity, now);
            }
        }
    }

    /// The entity reached a terminal state (the first time counts).
    #[inline]
    /// Returns the entity's end-to-end latency the first time.
    pub fn terminal(&mut self, entity: EntityId, now: SimTime) -> Option<SimDuration> {
        let warmup = self.warmup;
        let r = self.rec(entity)?;
        if r.terminal_at != SimTime::NEVER {
            return None;
        }
        r.terminal_at = now;
        let latency = now - r.created_at;
        if r.created_at < warmup {
            return None;
        }
        self.latency.record(latency.0);
        Some(latency)
    }

    /// A message of the entity went to a dead-letter queue: an operator will
    /// see it, so if the entity does not finish it is parked, not lost.
    pub fn dead_lettered(&mut self, entity: EntityId) {
        if let Some(r) = self.rec(entity) {
            r.dead_lettered = true;
        }
    }

    /// Something on the entity's path was counted as going wrong (a
    /// message lost or ignored, a call that failed): what explains an
    /// entity that never ends.
    /// `what` is a loss reason's code, [`SETBACK_IGNORED`] or
    /// [`SETBACK_CALL_FAILED`]; the first one counts.
    #[inline]
    pub fn setback(&mut self, entity: EntityId, what: u8) {
        if let Some(r) = self.rec(entity)
            && r.setback == 0
        {
            r.setback = what;
        }
    }

    /// The deadline of an entity accepted at `accepted`.
    pub fn deadline(accepted: SimTime, last_heal: SimTime, grace: SimDuration) -> SimTime {
        accepted.max(last_heal) + grace
    }

    /// Entities that never ended by their deadline are `lost` when a
    /// setback on their path explains it, `stuck` when something of them is
    /// still in the system at the end (late, not gone), and `unexplained`
    /// otherwise: faultline's own accounting failed, which a test forbids.
    pub(super) fn judge_lost(
        &self,
        name: String,
        grace: SimDuration,
        last_heal: SimTime,
        end: SimTime,
        in_flight: &[bool],
        scope: Option<u8>,
    ) -> Verdict {
        let (mut accepted, mut completed, mut lost, mut late, mut unresolved, mut parked) = (0, 0, 0, 0, 0, 0);
        let (mut stuck, mut unexplained) = (0, 0);
        let mut example = None;
        // The example is the first entity of the most common way of failing
        // (a loss reason, stuck, late), so that it tells the typical story.
        let mut ways = [0u64; 256];
        let mut first_of = [None::<EntityId>; 256];
        const LATE: usize = 254;
        const STUCK: usize = 253;
        const UNEXPLAINED: usize = 252;
        for (i, r) in self.entities.iter().enumerate() {
            if r.accepted_at == SimTime::NEVER || !self.judged(r, scope) {
                continue;
            }
            accepted += 1;
            let deadline = Self::deadline(r.accepted_at, last_heal, grace);
            if r.terminal_at <= deadline {
                completed += 1;
            } else if r.dead_lettered && r.terminal_at == SimTime::NEVER {
                parked += 1;
            } else if deadline > end && (r.terminal_at != SimTime::NEVER || in_flight.get(i).copied().unwrap_or(true)) {
                // Its deadline is after the end, and it has ended or may
                // still end: not judged. One with nothing of it left in the
                // system can never end, whatever its deadline: it is judged.
                unresolved += 1;
            } else {
                let way = if r.terminal_at != SimTime::NEVER {
                    late += 1;
                    LATE
                } else if in_flight.get(i).copied().unwrap_or(false) {
                    stuck += 1;
                    STUCK
                } else if r.setback != 0 {
                    lost += 1;
                    usize::from(r.setback)
                } else {
                    unexplained += 1;
                    UNEXPLAINED
                };
                ways[way] += 1;
                first_of[way].get_or_insert(EntityId(i as u64 + 1));
            }
        }
        // Ties go to the way that came first in the run.
        let typical = (0..256).filter(|&w| ways[w] > 0).max_by_key(|&w| (ways[w], std::cmp::Reverse(first_of[w])));
        if let Some(w) = typical {
            example = first_of[w];
        }
        let counts = [("accepted", accepted), ("completed_in_time", completed), ("lost", lost), ("late", late)];
        let judged = completed + lost + late + parked + stuck + unexplained;
        let violations = lost + late + stuck + unexplained;
        let mut v = Verdict::judged(name, violations, &counts, judged, unresolved, example);
        for (what, n) in [("dead_lettered", parked), ("stuck_at_end", stuck), ("unexplained", unexplained)] {
            if n > 0 {
                v.counts.insert(what, n);
            }
        }
        if accepted == 0 {
            v.inconclusive = v.inconclusive.map(|_| "no entity was accepted".to_string());
        }
        v
    }
}
