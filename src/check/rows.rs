//! State that must agree: `replica-convergence` (a replica ends with the
//! source's newest version of each row, and how stale it was on the way),
//! `no-state-loss` (a service ends holding the last version its handlers
//! wrote of each row: a crash, a rebuild or retention took nothing) and
//! `no-oversell` (a key's stock never hands out more units than it
//! started with).

use super::*;

/// What a no-state-loss invariant follows: the last version and value the
/// service's handlers wrote of each row of the table.
pub(super) struct StateCheck {
    pub(super) service: usize,
    pub(super) table: u16,
    last: BTreeMap<u64, (u64, i64)>,
}

impl StateCheck {
    pub(super) fn of(inv: &InvariantSpec) -> Option<StateCheck> {
        let InvariantSpec::NoStateLoss { service, table, .. } = *inv else { return None };
        Some(StateCheck { service, table, last: BTreeMap::new() })
    }
}

impl Checker {
    /// Service `service` wrote `version` and `value` to row `key` of
    /// `table` at `now`: from a handler, of the message published as
    /// `cause` (its id, in publish order), or restoring its state (a
    /// snapshot, a replay: `None`).
    pub fn write(
        &mut self,
        (service, table, key): (usize, u16, u64),
        (version, value): (u64, i64),
        cause: Option<u64>,
        now: SimTime,
    ) {
        let handled = cause.is_some();
        if handled {
            for sc in self.state_checks.iter_mut().filter(|sc| sc.service == service && sc.table == table) {
                sc.last.insert(key, (version, value));
            }
        }
        self.replicated(service, table, key, version, now);
        if !(self.orders.is_empty() && self.stalenesses.is_empty()) {
            self.ordered_write((service, table, key), version, cause, now);
        }
    }

    fn replicated(&mut self, service: usize, table: u16, key: u64, version: u64, now: SimTime) {
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
                && now >= self.warmup
                && let Some(&(v, t)) = r.newest.get(&key)
                && v == version
            {
                r.staleness.record((now - t).0);
            }
        }
    }

    /// Service `service` handed out a unit of `key`'s stock (of `initial`) to `entity`.
    pub fn reserved(&mut self, service: usize, key: u64, initial: u32, entity: EntityId) {
        let counted = self.counted_at((entity.0 as usize).wrapping_sub(1));
        let n = self.reservations.entry((service, key)).or_insert(0);
        *n += 1;
        if *n > u64::from(initial) && counted {
            self.oversold.entry(service).or_default().push(entity);
        }
    }

    pub(super) fn judge_state_loss(name: String, held: &Rows, sc: &StateCheck) -> Verdict {
        let lost: Vec<(u64, (u64, i64))> =
            sc.last.iter().filter(|(k, v)| held.get(k) != Some(v)).map(|(k, v)| (*k, *v)).collect();
        let rolled_back = lost.iter().filter(|(k, _)| held.contains_key(k)).count() as u64;
        let mut counts = BTreeMap::new();
        counts.insert("rows", sc.last.len() as u64);
        counts.insert("lost", lost.len() as u64 - rolled_back);
        counts.insert("rolled_back", rolled_back);
        let why = || "the service's handlers wrote no row of the table".to_string();
        let example = lost.first().map(|&(_, (version, _))| EntityId(version));
        let mut v = Verdict::new(name, lost.len() as u64, counts, sc.last.len() as u64, why, example);
        v.example_other = lost.first().and_then(|(row, _)| held.get(row)).map(|&(h, _)| EntityId(h));
        v
    }

    pub(super) fn judge_oversell(&self, name: String, service: usize) -> Verdict {
        let oversold = self.oversold.get(&service).map_or(&[][..], Vec::as_slice);
        let keys = self.reservations.keys().filter(|(s, _)| *s == service).count() as u64;
        let units: u64 = self.reservations.iter().filter(|((s, _), _)| *s == service).map(|(_, n)| n).sum();
        let mut counts = BTreeMap::new();
        counts.insert("keys", keys);
        counts.insert("units_handed_out", units);
        counts.insert("oversold", oversold.len() as u64);
        let why = || "no unit of stock was handed out".to_string();
        Verdict::new(name, oversold.len() as u64, counts, units, why, oversold.first().copied())
    }

    pub(super) fn judge_convergence(name: String, source: &Rows, replica: &Rows, r: &Replication) -> Verdict {
        let diverged: Vec<(u64, (u64, i64))> =
            source.iter().filter(|(k, v)| replica.get(k) != Some(v)).map(|(k, v)| (*k, *v)).collect();
        let wrong_value = diverged.iter().filter(|(k, v)| replica.get(k).is_some_and(|r| r.0 == v.0)).count();
        let ms = |ns: f64| (ns / 1e6).round() as u64;
        let mut counts = BTreeMap::new();
        counts.insert("rows", source.len() as u64);
        counts.insert("converged", (source.len() - diverged.len()) as u64);
        counts.insert("diverged", diverged.len() as u64);
        if wrong_value > 0 {
            // The newest version, with another value: misread, not late.
            counts.insert("diverged_same_version", wrong_value as u64);
        }
        counts.insert("staleness_mean_ms", ms(r.staleness.mean()));
        counts.insert(
            "staleness_max_ms",
            ms(if r.staleness.count() == 0 { 0.0 } else { r.staleness.quantile(1.0) as f64 }),
        );
        let why = || "the source wrote no row of the table".to_string();
        // The version is the id of the change that wrote it.
        let example = diverged.first().map(|&(_, (version, _))| EntityId(version));
        let mut v = Verdict::new(name, diverged.len() as u64, counts, source.len() as u64, why, example);
        v.example_other = diverged.first().and_then(|(row, _)| replica.get(row)).map(|&(held, _)| EntityId(held));
        v
    }
}
