//! Event-sourced state: a service whose table is the fold of its own
//! events.
//!
//! The service's handlers write the table in memory and publish the event
//! that says so, on a Log bus: the log is its store. On every start after
//! the first (a restart, a late deployment, a new instance) it rebuilds the
//! table before it works on anything: from its latest snapshot, if it
//! takes them (`snapshot_every` writes, kept in its database with the log
//! positions they cover), then every event of its topic the log still
//! holds from there, in log order, the last per row winning. What
//! retention deleted is not there to replay: a row whose only events are
//! gone comes back older, or not at all (`no-state-loss` says which).
//! The rebuild takes `per_event` per event replayed and per snapshot row
//! loaded; meanwhile the instance works on nothing, as a re-hydrating one.

use std::collections::BTreeMap;

use super::{Ev, ROW_BITS, ROW_MASK, World};
use crate::outcome::RebuildMetrics;
use crate::sim::SimDuration;
use crate::trace::RecordKind;

/// Rows of a table: (row key, version, value).
pub(super) type TableRows = Vec<(u64, i64, i64)>;

/// A node's event-sourced snapshot, in its database, and its writes.
#[derive(Clone, Debug, Default)]
pub(super) struct EventStore {
    /// Handler writes to its table since it was deployed.
    writes: u64,
    /// The latest snapshot: its rows (row key, version, value) and, per
    /// partition of the topic, the log's end when it was taken.
    snapshot: Option<(TableRows, Vec<u64>)>,
}

/// What a service's rebuilds did (over the whole run).
#[derive(Clone, Debug, Default)]
pub(super) struct RebuildStats {
    rebuilds: u64,
    events_total: u64,
    events_max: u64,
    snapshot_rows_max: u64,
    expired_max: u64,
    recovery_max: SimDuration,
    recovery_total: SimDuration,
}

impl RebuildStats {
    pub(super) fn metrics(&self) -> RebuildMetrics {
        let per = |total: f64| if self.rebuilds == 0 { 0.0 } else { total / self.rebuilds as f64 };
        RebuildMetrics {
            rebuilds: self.rebuilds,
            events_mean: per(self.events_total as f64),
            events_max: self.events_max,
            snapshot_rows_max: self.snapshot_rows_max,
            expired_max: self.expired_max,
            recovery_s_mean: per(self.recovery_total.as_secs_f64()),
            recovery_s_max: self.recovery_max.as_secs_f64(),
        }
    }
}

impl World<'_, '_> {
    /// Node `n`'s handler wrote its table: every `snapshot_every` writes it
    /// snapshots the table, with the log's end per partition.
    pub(super) fn wrote_event_sourced(&mut self, n: u32, si: usize) {
        let es = self.sys.services[si].event_sourced.as_ref().expect("event-sourced");
        let store = &mut self.hydration.events[n as usize];
        store.writes += 1;
        if es.snapshot_every == 0 || !store.writes.is_multiple_of(u64::from(es.snapshot_every)) {
            return;
        }
        let rows = super::rows_of(&self.nodes[n as usize].volatile.rows, es.table).collect();
        let (first, count) = self.topic_parts[es.kind.0 as usize];
        let ends = (first..first + count).map(|p| self.partitions[p as usize].visible).collect();
        self.hydration.events[n as usize].snapshot = Some((rows, ends));
    }

    /// Node `n` starts: it replays its events (from its latest snapshot)
    /// and works on nothing until the rebuild is done.
    pub(super) fn rebuild(&mut self, n: u32) {
        let si = self.nodes[n as usize].service as usize;
        let es = self.sys.services[si].event_sourced.as_ref().expect("event-sourced");
        let (kind, table, value_field, per_event) = (es.kind, es.table, es.value_field, es.per_event);
        let (first, count) = self.topic_parts[kind.0 as usize];
        let snapshot = self.hydration.events[n as usize].snapshot.clone();
        let (rows, from) = snapshot.unwrap_or_else(|| (Vec::new(), vec![0; count as usize]));
        let snapshot_rows = rows.len() as u64;
        let mut fold: BTreeMap<u64, (i64, i64)> = rows.into_iter().map(|(k, v, val)| (k, (v, val))).collect();
        let (mut replayed, mut expired) = (0u64, 0u64);
        for (i, p) in (first..first + count).enumerate() {
            let part = &self.partitions[p as usize];
            for o in from[i]..part.visible {
                let rec = &part.records[o as usize];
                if part.expired(o, self.now) {
                    expired += 1;
                    continue;
                }
                let value =
                    value_field.map_or(rec.entity.0 as i64, |f| rec.fields[usize::from(f) % crate::service::FIELDS]);
                fold.insert(u64::from(table) << ROW_BITS | (rec.key & ROW_MASK), (rec.entity.0 as i64, value));
                replayed += 1;
            }
        }
        let node = &mut self.nodes[n as usize];
        node.hydrating = true;
        node.catching_up = false;
        let epoch = node.epoch;
        let h = &mut self.hydration.nodes[n as usize];
        h.began = self.now;
        h.attempt = h.attempt.wrapping_add(1);
        h.rows = fold.into_iter().map(|(k, (v, val))| (k, v, val)).collect();
        let attempt = h.attempt;
        let st = &mut self.hydration.rebuilds[si];
        st.events_max = st.events_max.max(replayed);
        st.events_total += replayed;
        st.snapshot_rows_max = st.snapshot_rows_max.max(snapshot_rows);
        st.expired_max = st.expired_max.max(expired);
        let took = SimDuration(per_event.0.saturating_mul(replayed + snapshot_rows));
        self.queue
            .push(self.now + took, Ev::Hydration { node: n, epoch, attempt, step: super::rehydrate::STEP_REBUILT });
    }

    /// Node `n` has replayed its events: its table is the fold, and it resumes.
    pub(super) fn rebuilt(&mut self, n: u32, epoch: u32, attempt: u32) {
        let node = &self.nodes[n as usize];
        if node.epoch != epoch || !node.hydrating || self.hydration.nodes[n as usize].attempt != attempt {
            return;
        }
        let si = node.service as usize;
        let table = self.sys.services[si].event_sourced.as_ref().expect("event-sourced").table;
        let rows = std::mem::take(&mut self.hydration.nodes[n as usize].rows);
        for &(k, version, value) in &rows {
            self.write_row(n, (table, k & ROW_MASK), (version as u64, value), None);
        }
        let took = self.now - self.hydration.nodes[n as usize].began;
        let st = &mut self.hydration.rebuilds[si];
        st.rebuilds += 1;
        st.recovery_max = st.recovery_max.max(took);
        st.recovery_total = st.recovery_total + took;
        self.trace_node(RecordKind::Rebuilt, n, rows.len() as u64);
        self.hydrated(n);
    }
}
