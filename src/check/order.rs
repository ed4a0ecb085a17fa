//! Order and timeliness: `per-key-order` (a service's writes to each row
//! come in the order the messages that caused them were published: their
//! ids, allocated as they are created), `bounded-staleness` (every source
//! write reaches the replica within a bound) and `bounded-lag` (a consumer
//! group's lag, sampled, stays under a bound after the last heal).

use std::collections::{BTreeSet, VecDeque};

use super::*;

/// What a per-key-order invariant follows.
pub(super) struct OrderCheck {
    service: usize,
    table: u16,
    /// Per row, the latest-published message whose write it took so far,
    /// and the version (entity) it wrote.
    newest: BTreeMap<u64, (u64, u64)>,
    writes: u64,
    /// Writes caused by a message published before one already written:
    /// (its version, the other's).
    out_of_order: Vec<(u64, u64)>,
    keys_affected: BTreeSet<u64>,
}

/// What a bounded-staleness invariant follows.
pub(super) struct StalenessCheck {
    source: usize,
    replica: usize,
    table: u16,
    max: SimDuration,
    after_heal: SimDuration,
    /// Per row, the source's writes the replica does not hold yet: (version, when).
    pending: BTreeMap<u64, VecDeque<(u64, SimTime)>>,
    writes: u64,
    /// Writes the replica held later than `max` after them: (version,
    /// written, held at).
    late: Vec<(u64, SimTime, SimTime)>,
}

/// What a bounded-lag invariant follows: its samples (when, records not
/// committed, the entity of the oldest of them).
pub(super) struct LagCheck {
    max: u64,
    after_heal: SimDuration,
    samples: Vec<(SimTime, u64, EntityId)>,
}

impl Checker {
    pub(super) fn order_checks(invariants: &[InvariantSpec]) -> Vec<OrderCheck> {
        let of = |inv: &InvariantSpec| match *inv {
            InvariantSpec::PerKeyOrder { service, table, .. } => Some(OrderCheck {
                service,
                table,
                newest: BTreeMap::new(),
                writes: 0,
                out_of_order: Vec::new(),
                keys_affected: BTreeSet::new(),
            }),
            _ => None,
        };
        invariants.iter().filter_map(of).collect()
    }

    pub(super) fn staleness_checks(invariants: &[InvariantSpec]) -> Vec<StalenessCheck> {
        let of = |inv: &InvariantSpec| match *inv {
            InvariantSpec::BoundedStaleness { source, replica, table, max, after_heal } => Some(StalenessCheck {
                source,
                replica,
                table,
                max,
                after_heal,
                pending: BTreeMap::new(),
                writes: 0,
                late: Vec::new(),
            }),
            _ => None,
        };
        invariants.iter().filter_map(of).collect()
    }

    pub(super) fn lag_checks(invariants: &[InvariantSpec]) -> Vec<LagCheck> {
        let of = |inv: &InvariantSpec| match *inv {
            InvariantSpec::BoundedLag { max, after_heal, .. } => {
                Some(LagCheck { max, after_heal, samples: Vec::new() })
            }
            _ => None,
        };
        invariants.iter().filter_map(of).collect()
    }

    /// A write the order and staleness checks follow: `service` wrote
    /// `version` to row `key` of `table` at `now`, from a handler or not.
    pub(super) fn ordered_write(
        &mut self,
        (service, table, key): (usize, u16, u64),
        version: u64,
        cause: Option<u64>,
        now: SimTime,
    ) {
        let handled = cause.is_some();
        for o in self.orders.iter_mut().filter(|o| o.service == service && o.table == table) {
            let Some(cause) = cause else { continue };
            o.writes += 1;
            let newest = o.newest.entry(key).or_insert((cause, version));
            if cause < newest.0 {
                o.out_of_order.push((version, newest.1));
                o.keys_affected.insert(key);
            } else {
                *newest = (cause, version);
            }
        }
        for st in self.stalenesses.iter_mut().filter(|st| st.table == table) {
            if service == st.source && handled {
                st.writes += 1;
                st.pending.entry(key).or_default().push_back((version, now));
            } else if service == st.replica
                && let Some(waiting) = st.pending.get_mut(&key)
            {
                while let Some(&(v, at)) = waiting.front().filter(|(v, _)| *v <= version) {
                    if now - at > st.max {
                        st.late.push((v, at, now));
                    }
                    waiting.pop_front();
                }
            }
        }
    }

    /// Bounded-lag check `i` sampled `lag` records not committed at `now`,
    /// the oldest of `oldest`.
    pub fn lag_sampled(&mut self, i: usize, now: SimTime, lag: u64, oldest: EntityId) {
        if let Some(l) = self.lags.get_mut(i) {
            l.samples.push((now, lag, oldest));
        }
    }

    pub(super) fn judge_order(name: String, o: &OrderCheck) -> Verdict {
        let mut counts = BTreeMap::new();
        counts.insert("writes", o.writes);
        counts.insert("rows", o.newest.len() as u64);
        counts.insert("out_of_order", o.out_of_order.len() as u64);
        counts.insert("rows_affected", o.keys_affected.len() as u64);
        let why = || "the service wrote no row of the table".to_string();
        let first = o.out_of_order.first();
        let mut v =
            Verdict::new(name, o.out_of_order.len() as u64, counts, o.writes, why, first.map(|f| EntityId(f.0)));
        v.example_other = first.map(|f| EntityId(f.1));
        v
    }

    /// The deadline of a write at `at`: `max` after it, or for a write
    /// before the last heal, `after_heal` after the heal if later.
    fn staleness_deadline(st: &StalenessCheck, at: SimTime, last_heal: SimTime) -> SimTime {
        let heal = if at < last_heal { last_heal + st.after_heal } else { SimTime::ZERO };
        (at + st.max).max(heal)
    }

    pub(super) fn judge_staleness(name: String, st: &StalenessCheck, last_heal: SimTime, end: SimTime) -> Verdict {
        let never = st.pending.values().flatten().map(|&(v, at)| (v, at, SimTime::NEVER));
        let (mut violations, mut unresolved, mut example) = (0u64, 0u64, None);
        let mut worst = SimDuration::ZERO;
        for (v, at, held) in st.late.iter().copied().chain(never) {
            let deadline = Self::staleness_deadline(st, at, last_heal);
            if held == SimTime::NEVER && deadline >= end {
                unresolved += 1;
                continue;
            }
            if held > deadline {
                violations += 1;
                example = example.or(Some(EntityId(v)));
                worst = worst.max(if held == SimTime::NEVER { end - at } else { held - at });
            }
        }
        let mut counts = BTreeMap::new();
        counts.insert("writes", st.writes);
        counts.insert("late", violations);
        counts.insert("unresolved_at_end", unresolved);
        counts.insert("worst_ms", worst.0 / 1_000_000);
        let why = || "the source wrote no row of the table".to_string();
        Verdict::new(name, violations, counts, st.writes.saturating_sub(unresolved), why, example)
    }

    pub(super) fn judge_lag(name: String, l: &LagCheck, last_heal: SimTime) -> Verdict {
        let from = last_heal + l.after_heal;
        let judged: Vec<&(SimTime, u64, EntityId)> = l.samples.iter().filter(|s| s.0 >= from).collect();
        let over: Vec<&&(SimTime, u64, EntityId)> = judged.iter().filter(|s| s.1 > l.max).collect();
        let mut counts = BTreeMap::new();
        counts.insert("samples", judged.len() as u64);
        counts.insert("samples_over", over.len() as u64);
        counts.insert("lag_max_judged", judged.iter().map(|s| s.1).max().unwrap_or(0));
        counts.insert("lag_max", l.samples.iter().map(|s| s.1).max().unwrap_or(0));
        let why = || format!("no sample was taken from {from} (the last heal and its grace) on");
        Verdict::new(name, over.len() as u64, counts, judged.len() as u64, why, over.first().map(|s| s.2))
    }

    /// For the story: bounded-lag check `i`'s first sample over its bound
    /// from `from` on: (when, the lag).
    pub fn lag_over(&self, i: usize, from: SimTime) -> Option<(SimTime, u64)> {
        let l = self.lags.get(i)?;
        l.samples.iter().find(|s| s.0 >= from && s.1 > l.max).map(|s| (s.0, s.1))
    }

    /// For the story: when bounded-staleness check `i`'s source wrote
    /// `version`, and when the replica held it (`NEVER`: not by the end).
    pub fn stale_of(&self, i: usize, version: u64) -> Option<(SimTime, SimTime)> {
        let st = self.stalenesses.get(i)?;
        let late = st.late.iter().find(|l| l.0 == version).map(|l| (l.1, l.2));
        late.or_else(|| st.pending.values().flatten().find(|p| p.0 == version).map(|p| (p.1, SimTime::NEVER)))
    }
}
