//! "Hey, I'm back": re-hydration from a snapshot the owner of the data
//! serves.
//!
//! An instance of a service with `rehydrate` that starts (restarts after a
//! crash, is deployed late, or is added by its autoscaler) first asks an
//! instance of the owning service for a snapshot of one table. Until the
//! snapshot is loaded it works on nothing: it is subscribed (pushed
//! messages, queue deliveries, requests and calls wait in its queue, and
//! overflow it as they would any time), but it does not poll the log. The
//! owner answers from its own state at the instant the request reaches it;
//! the reply takes the network latency plus `per_row` for each row. Each
//! row of the snapshot replaces the instance's own only if it is newer
//! (a higher version). Then the instance works through what waited and
//! resumes consuming from its committed offsets: what it replays over the
//! snapshot is older or equal, and the stream brings what is newer.
//!
//! A request unanswered after `timeout` (the owner is down, paused, or cut
//! off by a partition either way) is sent again, to the owner's next
//! instance. Once the owner answers, the snapshot is waited for however
//! long it takes; the owner's crash before it arrives breaks it off (asked
//! again at once). A crash of the instance while it waits drops the
//! request; its restart asks again. A partition that begins while the
//! snapshot travels does not stop it (it was sent).
//!
//! Measured per service: snapshots loaded and requests sent, the rows per
//! snapshot, the time from the start to the snapshot loaded, and the time
//! to catch up: from the start to the first moment the instance is idle
//! with nothing waiting and no record of its partitions unread.

use super::{Ev, NO_OWNER, ROW_MASK, World, rows_of};
use crate::outcome::RehydrationMetrics;
use crate::sim::{SimDuration, SimTime};
use crate::trace::RecordKind;

/// [`Ev::Hydration`] steps: the request reaches the owner; the snapshot
/// reaches the node; the request times out; the events are replayed.
pub(super) const STEP_ASKED: u8 = 0;
pub(super) const STEP_LOADED: u8 = 1;
pub(super) const STEP_TIMED_OUT: u8 = 2;
pub(super) const STEP_REBUILT: u8 = 3;

/// One instance's re-hydration in progress.
#[derive(Clone, Debug, Default)]
pub(super) struct Hydration {
    /// Bumped at each request: replies and timeouts of an older one are stale.
    pub(super) attempt: u32,
    /// When the instance started (what the load and catch-up times count from).
    pub(super) began: SimTime,
    /// The owner instance asked.
    owner: u32,
    /// The owner's incarnation when it answered, if it has: the snapshot is
    /// on its way (its timeout no longer applies; the owner's crash breaks it).
    answered: Option<u32>,
    /// The snapshot on its way.
    pub(super) rows: super::event_sourced::TableRows,
}

/// Every node's re-hydration and every service's figures.
pub(super) struct Hydrations {
    /// Per node (empty when no service re-hydrates).
    pub(super) nodes: Vec<Hydration>,
    /// Per service.
    pub(super) stats: Vec<HydrationStats>,
    /// Per service, its rebuilds (event sourcing).
    pub(super) rebuilds: Vec<super::event_sourced::RebuildStats>,
    /// Per node, its event-sourced snapshot and its writes since the start.
    pub(super) events: Vec<super::event_sourced::EventStore>,
}

impl Hydrations {
    /// For `sys`, of `nodes` nodes.
    pub(super) fn of(sys: &crate::system::System, nodes: usize) -> Hydrations {
        let any = sys.services.iter().any(|s| s.rehydrate.is_some() || s.event_sourced.is_some());
        let sourced = sys.services.iter().any(|s| s.event_sourced.is_some());
        Hydrations {
            nodes: if any { vec![Hydration::default(); nodes] } else { Vec::new() },
            stats: vec![HydrationStats::default(); sys.services.len()],
            rebuilds: vec![Default::default(); sys.services.len()],
            events: if sourced { (0..nodes).map(|_| Default::default()).collect() } else { Vec::new() },
        }
    }
}

/// What a service's re-hydrations did (over the whole run: they are rare
/// events, and the warm-up does not reset them).
#[derive(Clone, Debug, Default)]
pub(super) struct HydrationStats {
    requests: u64,
    snapshots: u64,
    rows_total: u64,
    rows_max: u64,
    load_total: SimDuration,
    load_max: SimDuration,
    caught_up: u64,
    catch_up_max: SimDuration,
}

impl HydrationStats {
    pub(super) fn metrics(&self) -> RehydrationMetrics {
        let per = |total: f64, n: u64| if n == 0 { 0.0 } else { total / n as f64 };
        RehydrationMetrics {
            requests: self.requests,
            snapshots: self.snapshots,
            rows_mean: per(self.rows_total as f64, self.snapshots),
            rows_max: self.rows_max,
            load_s_mean: per(self.load_total.as_secs_f64(), self.snapshots),
            load_s_max: self.load_max.as_secs_f64(),
            caught_up: self.caught_up,
            catch_up_s_max: self.catch_up_max.as_secs_f64(),
        }
    }
}

impl<'s> World<'s, '_> {
    /// Step `step` of node `n`'s re-hydration or rebuild.
    pub(super) fn hydration_event(&mut self, n: u32, (epoch, attempt): (u32, u32), step: u8) {
        match step {
            STEP_ASKED => self.snapshot_asked(n, epoch, attempt),
            STEP_LOADED => self.snapshot_loaded(n, epoch, attempt),
            STEP_TIMED_OUT => self.snapshot_timed_out(n, epoch, attempt),
            _ => self.rebuilt(n, epoch, attempt),
        }
    }

    /// Node `n` starts: if its service re-hydrates, it asks for a snapshot
    /// and works on nothing until it is loaded.
    pub(super) fn begin_hydration(&mut self, n: u32) {
        let si = self.nodes[n as usize].service as usize;
        if self.sys.services[si].event_sourced.is_some() {
            return self.rebuild(n);
        }
        if self.sys.services[si].rehydrate.is_none() {
            return;
        }
        let node = &mut self.nodes[n as usize];
        node.hydrating = true;
        node.catching_up = false;
        self.hydration.nodes[n as usize].began = self.now;
        self.ask_snapshot(n);
    }

    /// Node `n` sends a snapshot request to the owner's next instance that
    /// is up, and sets its timeout.
    fn ask_snapshot(&mut self, n: u32) {
        let si = self.nodes[n as usize].service as usize;
        let r = self.sys.services[si].rehydrate.as_ref().expect("it re-hydrates");
        let (from, timeout) = (r.from as usize, r.timeout);
        let epoch = self.nodes[n as usize].epoch;
        let h = &mut self.hydration.nodes[n as usize];
        h.attempt = h.attempt.wrapping_add(1);
        h.answered = None;
        let attempt = h.attempt;
        let (first, count) = (self.first_node[from], self.sys.services[from].instances);
        let owner = (0..count)
            .map(|i| first + (attempt + i) % count)
            .find(|&o| self.nodes[o as usize].up && self.nodes[o as usize].joined);
        self.queue.push(self.now + timeout, Ev::Hydration { node: n, epoch, attempt, step: STEP_TIMED_OUT });
        self.hydration.stats[si].requests += 1;
        let Some(owner) = owner else { return }; // connection refused: wait for the timeout
        self.hydration.nodes[n as usize].owner = owner;
        self.trace_node(RecordKind::Hydrating, n, u64::from(owner));
        if self.blocked(n, owner) {
            return;
        }
        let at = self.now + self.spec_of(n).latency.sample(&mut self.nodes[n as usize].stream);
        self.queue.push(at, Ev::Hydration { node: n, epoch, attempt, step: STEP_ASKED });
    }

    /// Node `n`'s service's re-hydration: borrowed from the system, not
    /// from the world, so the world's streams stay free to use.
    fn spec_of(&self, n: u32) -> &'s crate::system::Rehydrate {
        let sys: &'s crate::system::System = self.sys;
        sys.services[self.nodes[n as usize].service as usize].rehydrate.as_ref().expect("it re-hydrates")
    }

    /// True unless node `n` is still in incarnation `epoch` and waits for
    /// the answer to request `attempt`.
    fn stale_hydration(&self, n: u32, epoch: u32, attempt: u32) -> bool {
        let node = &self.nodes[n as usize];
        node.epoch != epoch || !node.hydrating || self.hydration.nodes[n as usize].attempt != attempt
    }

    /// Node `n`'s snapshot request reaches the owner, which answers from
    /// its state now (if it is up and working, and the way back is open).
    pub(super) fn snapshot_asked(&mut self, n: u32, epoch: u32, attempt: u32) {
        if self.stale_hydration(n, epoch, attempt) {
            return;
        }
        let owner = self.hydration.nodes[n as usize].owner;
        let o = &self.nodes[owner as usize];
        if !o.up || o.paused || self.blocked(owner, n) {
            return; // no answer: the timeout sends the request again
        }
        let r = self.spec_of(n);
        let rows: Vec<(u64, i64, i64)> = rows_of(self.rows(owner), r.table).collect();
        let transfer = SimDuration(r.per_row.0.saturating_mul(rows.len() as u64));
        let h = &mut self.hydration.nodes[n as usize];
        h.rows = rows;
        h.answered = Some(o.epoch);
        let at = self.now + r.latency.sample(&mut self.nodes[n as usize].stream) + transfer;
        self.queue.push(at, Ev::Hydration { node: n, epoch, attempt, step: STEP_LOADED });
    }

    /// Node `n`'s request went unanswered: ask again (a snapshot on its
    /// way is waited for, however long it takes).
    pub(super) fn snapshot_timed_out(&mut self, n: u32, epoch: u32, attempt: u32) {
        if !self.stale_hydration(n, epoch, attempt) && self.hydration.nodes[n as usize].answered.is_none() {
            self.ask_snapshot(n);
        }
    }

    /// Node `n` has its snapshot: it loads the rows newer than its own,
    /// works through what waited and starts consuming.
    pub(super) fn snapshot_loaded(&mut self, n: u32, epoch: u32, attempt: u32) {
        if self.stale_hydration(n, epoch, attempt) {
            return;
        }
        let h = &self.hydration.nodes[n as usize];
        if h.answered != Some(self.nodes[h.owner as usize].epoch) {
            // The owner crashed while sending: the transfer broke off.
            self.ask_snapshot(n);
            return;
        }
        let si = self.nodes[n as usize].service as usize;
        let table = self.sys.services[si].rehydrate.as_ref().expect("it re-hydrates").table;
        let rows = std::mem::take(&mut self.hydration.nodes[n as usize].rows);
        for &(k, version, value) in &rows {
            if self.rows(n).get(&k).is_none_or(|&held| held < version) {
                self.write_row(n, (table, k & ROW_MASK), (version as u64, value), None);
            }
        }
        let loaded = self.now - self.hydration.nodes[n as usize].began;
        let st = &mut self.hydration.stats[si];
        st.snapshots += 1;
        st.rows_total += rows.len() as u64;
        st.rows_max = st.rows_max.max(rows.len() as u64);
        st.load_total = st.load_total + loaded;
        st.load_max = st.load_max.max(loaded);
        self.trace_node(RecordKind::Rehydrated, n, rows.len() as u64);
        self.hydrated(n);
    }

    /// Node `n` has its state back: it works through what waited and
    /// starts consuming.
    pub(super) fn hydrated(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        node.hydrating = false;
        node.catching_up = true;
        if !node.paused {
            self.work_waiting(n);
        }
        self.try_fetch(n);
        self.check_caught_up(n);
    }

    /// Node `n` starts what waits in its queue on its free workers (none
    /// while it waits for its snapshot).
    pub(super) fn work_waiting(&mut self, n: u32) {
        loop {
            let node = &mut self.nodes[n as usize];
            if node.hydrating || node.free.is_empty() || node.fifo.is_empty() {
                break;
            }
            node.account_fifo(self.now);
            let (Some(w), Some(job)) = (node.take_worker(self.now), node.fifo.pop_front()) else { break };
            self.start(n, w, job);
        }
    }

    /// Node `n`, re-hydrated, has caught up once it is idle, nothing waits
    /// in its queue and it has read every record of its partitions.
    pub(super) fn check_caught_up(&mut self, n: u32) {
        let node = &self.nodes[n as usize];
        if !node.catching_up || !node.fifo.is_empty() || node.free.len() < node.busy.len() || node.outstanding > 0 {
            return;
        }
        let unread = node.owned.iter().any(|&g| {
            let gp = &self.gparts[g as usize];
            gp.owner != NO_OWNER && gp.position < self.partitions[gp.part as usize].visible
        });
        if unread {
            return;
        }
        let si = node.service as usize;
        let took = self.now - self.hydration.nodes[n as usize].began;
        self.nodes[n as usize].catching_up = false;
        let st = &mut self.hydration.stats[si];
        st.caught_up += 1;
        st.catch_up_max = st.catch_up_max.max(took);
    }
}
