//! The Log bus on the event loop's side: appending to an ideal broker's
//! partitions, and its consumers: fetching records
//! (skipping what retention, compaction or a truncation removed), commit
//! policies and the auto-commit timer, consumer-group membership (a crashed
//! member's session, rebalancing, rejoining) and what a consumer's crash
//! does to its partitions. The partitions, their replicas and the producers
//! that write to them are `brokers` and `quorum`.

use super::*;

impl World<'_, '_> {
    /// The partition `msg` goes to: its topic's partition of its key, or
    /// the topic's next one in turn (a round-robin topic).
    pub(super) fn partition_of(&mut self, msg: &Message) -> u32 {
        let k = msg.kind.0 as usize;
        let (first, count) = self.topic_parts[k];
        let p = match &mut self.round_robin[k] {
            Some(last) => {
                *last = (*last + 1) % count;
                *last
            }
            None => (mix(msg.key) % u64::from(count)) as u32,
        };
        first + p
    }

    /// Node `n` processed record `offset` of group partition `gp`, fetched
    /// under `generation`: its effects happened; it is committed now by the
    /// policies that commit after processing. A record of a partition that
    /// moved away meanwhile has its commit refused (the new owner does it
    /// again).
    pub(super) fn log_processed(&mut self, n: u32, gp: u32, generation: u32, offset: u64) {
        if self.track_processed {
            self.gparts[gp as usize].mark_processed(offset);
        }
        if self.gparts[gp as usize].generation != generation {
            return;
        }
        match self.gparts[gp as usize].policy {
            CommitPolicy::AfterProcess | CommitPolicy::Transactional => self.complete(gp, offset),
            // Committed at fetch, or by the auto-commit timer.
            CommitPolicy::BeforeProcess | CommitPolicy::Auto { .. } => {}
        }
        self.gparts[gp as usize].outstanding -= 1;
        self.nodes[n as usize].outstanding -= 1;
    }

    /// The ideal broker appends `msg` to partition `part` (visible at once)
    /// and every group reading it fetches what it has room for.
    pub(super) fn log_append(&mut self, msg: Message, part: u32) {
        let partition = &mut self.partitions[part as usize];
        let offset = partition.records.len() as u64;
        partition.records.push(msg);
        partition.visible_at.push(self.now);
        partition.visible = offset + 1;
        if partition.compacted {
            partition.newest_by_key.insert(msg.key, offset);
        }
        let p = partition.partition_in_topic;
        self.trace(RecordKind::Appended, NO_NODE, &msg, u64::from(p) << 40 | offset);
        for i in 0..self.partitions[part as usize].groups.len() {
            let gp = self.partitions[part as usize].groups[i];
            self.fetch_from(gp);
        }
    }

    /// Fetch records for node `n` while it has room, round-robin over its
    /// partitions (after a restart, or when room frees up after a block).
    pub(super) fn try_fetch(&mut self, n: u32) {
        let node = &self.nodes[n as usize];
        if !node.up || node.paused || node.draining || node.hydrating {
            return;
        }
        self.nodes[n as usize].fetch_blocked = false;
        let k = self.nodes[n as usize].owned.len();
        while self.nodes[n as usize].outstanding < self.log_cfg.fetch_max {
            if self.log_cfg.gc() {
                for i in 0..k {
                    let g = self.nodes[n as usize].owned[i];
                    self.skip_unreadable(g);
                }
            }
            let node = &mut self.nodes[n as usize];
            let found = (0..k).map(|i| (node.cursor + i) % k).find(|&i| {
                let gp = &self.gparts[node.owned[i] as usize];
                gp.position < self.partitions[gp.part as usize].visible
            });
            let Some(i) = found else { return };
            node.cursor = i + 1;
            let gp_id = node.owned[i];
            self.fetch_one(gp_id);
        }
        let node = &self.nodes[n as usize];
        let left = node.owned.iter().any(|&g| {
            let gp = &self.gparts[g as usize];
            gp.position < self.partitions[gp.part as usize].visible
        });
        self.nodes[n as usize].fetch_blocked = left;
    }

    /// A record was appended to the partition of `gp_id`: its owner fetches
    /// it if it is up and has room (the common case touches one partition).
    #[inline]
    pub(super) fn fetch_from(&mut self, gp_id: u32) {
        loop {
            // With retention or compaction, step over records a reader can
            // no longer get before each fetch.
            if self.log_cfg.gc() {
                self.skip_unreadable(gp_id);
            }
            if !self.fetch_one(gp_id) {
                return;
            }
        }
    }

    /// Fetches the next record of `gp_id` for its owner if it is up, has
    /// room, and the record is visible; false when it did not.
    #[inline]
    pub(super) fn fetch_one(&mut self, gp_id: u32) -> bool {
        let gp = &mut self.gparts[gp_id as usize];
        let n = gp.owner;
        if n == NO_OWNER {
            return false;
        }
        let node = &mut self.nodes[n as usize];
        // A node not yet deployed is down too; a paused or draining one
        // does not poll.
        if !node.up
            || node.paused
            || node.draining
            || node.hydrating
            || gp.position >= self.partitions[gp.part as usize].visible
        {
            return false;
        }
        if node.outstanding >= self.log_cfg.fetch_max {
            node.fetch_blocked = true;
            return false;
        }
        // Records of a partition arrive in offset order whatever the
        // network does: a reorder fault only delays them. They come from
        // the partition's leader.
        let extra = if self.links.is_empty() {
            SimDuration::ZERO
        } else {
            let part = &self.partitions[gp.part as usize];
            let from = match part.leader {
                Some(l) => self.broker_node(part.replicas[l].broker),
                None => BUS,
            };
            let c = self.reliable(from, n).0;
            c.delay + c.held
        };
        let gp = &mut self.gparts[gp_id as usize];
        let node = &mut self.nodes[n as usize];
        let redelivery = Self::fetch_next(
            gp,
            node,
            gp_id,
            n,
            self.now,
            // A fetch across a faulty link arrives as if sent later.
            self.now + extra,
            &self.log_latency,
            &mut self.network,
            &mut self.queue,
        );
        if redelivery {
            self.counts.redelivered += 1;
            self.series_count(|s, i| s.redelivered[i] += 1);
        }
        true
    }

    /// Moves `gp_id`'s position past records a reader can no longer get:
    /// deleted by retention (lost, for a group that had not read them) or
    /// superseded by a newer record with the same key in a compacted topic.
    pub(super) fn skip_unreadable(&mut self, gp_id: u32) {
        let gp = &self.gparts[gp_id as usize];
        let part = &self.partitions[gp.part as usize];
        let mut expired_any = false;
        let mut o = gp.position;
        while o < part.visible {
            let rec = &part.records[o as usize];
            let expired = part.expired(o, self.now);
            let superseded = part.compacted && part.newest_by_key.get(&rec.key).is_some_and(|&newest| newest > o);
            if !(expired || superseded) {
                break;
            }
            expired_any |= expired;
            o += 1;
        }
        if o == gp.position {
            return;
        }
        let (from, reader) = (gp.position, self.group_node(gp_id));
        for offset in from..o {
            let g = &mut self.gparts[gp_id as usize];
            g.position = offset + 1;
            let i = (offset - g.committed) as usize;
            if i == g.done.len() {
                g.done.push_back(false);
            }
            g.high_water = g.high_water.max(offset + 1);
            let processed = g.was_processed(offset);
            let part = &self.partitions[g.part as usize];
            let rec = part.records[offset as usize];
            let compacted_away = part.compacted && part.newest_by_key.get(&rec.key).is_some_and(|&n| n > offset);
            // Deleted before the group processed it, whether or not a member
            // had fetched it (one that crashed holding it, say): lost.
            if expired_any && !compacted_away && !processed {
                self.lose(reader, &rec, LossReason::Retention);
            }
            self.complete(gp_id, offset);
        }
    }

    /// Fetches the record at `gp`'s position for `node`. Records of one
    /// partition arrive in order: a record never overtakes the previous one.
    /// A record a transactional consumer has already done is skipped. True
    /// if the record had been fetched before (a redelivery).
    #[expect(clippy::too_many_arguments, reason = "split borrows of the world's fields on the hot path")]
    #[inline]
    pub(super) fn fetch_next(
        gp: &mut GroupPart,
        node: &mut Node,
        gp_id: u32,
        n: u32,
        sent: SimTime,
        now: SimTime,
        latency: &Dist,
        network: &mut Stream,
        queue: &mut EventQueue<Ev>,
    ) -> bool {
        let offset = gp.position;
        gp.position += 1;
        let i = (offset - gp.committed) as usize;
        if i == gp.done.len() {
            gp.done.push_back(false);
        } else if gp.done[i] {
            return false;
        }
        let redelivery = offset < gp.high_water;
        if !redelivery {
            gp.high_water = offset + 1;
        }
        node.outstanding += 1;
        gp.outstanding += 1;
        gp.in_flight.push_back((offset, sent));
        let at = (now + latency.sample(network)).max(gp.last_arrival);
        gp.last_arrival = at;
        queue.push(at, Ev::Fetch { node: n, gp: gp_id, generation: gp.generation });
        redelivery
    }

    pub(super) fn fetched(&mut self, n: u32, gp: u32, generation: u32) {
        let g = &mut self.gparts[gp as usize];
        if g.generation != generation {
            return; // fetched before its owner crashed or lost it; fetched again from the committed offset
        }
        let Some((offset, sent)) = g.in_flight.pop_front() else { return };
        let part = &self.partitions[g.part as usize];
        // The service's wait counts the record's time in the log (visible,
        // not yet fetched), not the fetch's time on the network.
        let msg = part.records[offset as usize];
        let available = SimTime(self.now.0 - (sent - part.visible_at[offset as usize].min(sent)).0);
        if g.policy == CommitPolicy::BeforeProcess {
            self.complete(gp, offset);
        }
        self.enqueue_since(n, msg, Source::Log { gp, generation, offset }, available);
    }

    /// An auto-committing consumer's timer: commit every fetch position.
    pub(super) fn auto_commit(&mut self, n: u32, epoch: u32) {
        let node = &mut self.nodes[n as usize];
        if node.epoch != epoch || !node.up {
            return;
        }
        node.auto_commit_armed = None;
        self.commit_positions(n);
        self.schedule_auto_commit(n);
    }

    /// Node `n` commits the fetch position of each auto-committing
    /// partition it owns (its timer, or its `close()` when it leaves).
    pub(super) fn commit_positions(&mut self, n: u32) {
        for i in 0..self.nodes[n as usize].owned.len() {
            let g = self.nodes[n as usize].owned[i];
            let gp = &mut self.gparts[g as usize];
            if let CommitPolicy::Auto { .. } = gp.policy
                && gp.position > gp.committed
            {
                for _ in gp.committed..gp.position {
                    gp.done.pop_front();
                }
                gp.committed = gp.position;
                let aux = u64::from(gp.partition_in_topic) << 40 | gp.committed;
                self.trace_node(RecordKind::Committed, n, aux);
            }
        }
    }

    /// Sets node `n`'s next auto-commit, if it has an auto-committing
    /// partition and none is set.
    pub(super) fn schedule_auto_commit(&mut self, n: u32) {
        let node = &self.nodes[n as usize];
        if node.auto_commit_armed == Some(node.epoch) {
            return;
        }
        let every = node.owned.iter().find_map(|&g| match self.gparts[g as usize].policy {
            CommitPolicy::Auto { every } => Some(every),
            _ => None,
        });
        if let Some(every) = every {
            let epoch = node.epoch;
            self.nodes[n as usize].auto_commit_armed = Some(epoch);
            self.queue.push(self.now + every.max(SimDuration::NANOSECOND), Ev::AutoCommit { node: n, epoch });
        }
    }

    /// Offset `offset` is processed: commit every contiguous done offset.
    pub(super) fn complete(&mut self, gp_id: u32, offset: u64) {
        let gp = &mut self.gparts[gp_id as usize];
        let Some(i) = offset.checked_sub(gp.committed) else { return };
        if let Some(d) = gp.done.get_mut(i as usize) {
            *d = true;
        }
        let before = gp.committed;
        while gp.done.front() == Some(&true) {
            gp.done.pop_front();
            gp.committed += 1;
        }
        // A transactional consumer remembers what it did before a crash: the
        // commit can pass records it has not fetched again yet (nor needs to).
        gp.position = gp.position.max(gp.committed);
        if gp.committed != before {
            let aux = u64::from(gp.partition_in_topic) << 40 | gp.committed;
            let owner = gp.owner;
            self.trace_node(RecordKind::Committed, owner, aux);
        }
    }

    /// Node `n`'s log consumer dies: records it committed before processing
    /// them are lost, its partitions' fetches are dropped, and its group
    /// hears of it when its session times out.
    pub(super) fn crash_log_consumer(&mut self, n: u32, held: &[Job]) {
        // Records committed before they were processed are never fetched
        // again: lost, unless processed already (a redelivery) or held by
        // the partition's owner now.
        for job in held {
            if let Source::Log { gp, offset, .. } = job.source
                && self.committed_unprocessed(gp, offset, n)
            {
                self.lose(n, &job.msg, LossReason::CommittedUnprocessed);
            }
        }
        for i in 0..self.nodes[n as usize].owned.len() {
            let g = self.nodes[n as usize].owned[i];
            self.discard_fetches(g);
            Self::reset_consumer_state(&mut self.gparts[g as usize]);
        }
        if !self.service_gps[self.nodes[n as usize].service as usize].is_empty() {
            let epoch = self.nodes[n as usize].epoch;
            self.queue.push(self.now + self.log_cfg.session_timeout, Ev::SessionExpired { node: n, epoch });
        }
    }

    /// Node `n` is back in its consumer group if its session had expired
    /// (after a crash, a pause or a partition): the group rebalances.
    pub(super) fn rejoin_group(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        if !node.member {
            node.member = true;
            let service = node.service;
            self.rebalance(service);
        }
    }

    /// True if the record at `offset` of `gp_id`, which node `n` drops (a
    /// crash, a discarded fetch), is committed and was never processed by
    /// the group, nor is held by its owner: nothing will fetch it again.
    pub(super) fn committed_unprocessed(&self, gp_id: u32, offset: u64, n: u32) -> bool {
        let gp = &self.gparts[gp_id as usize];
        let owner_holds = gp.owner != NO_OWNER && gp.owner != n && self.holds_record(gp.owner, gp_id, offset);
        self.track_processed && offset < gp.committed && !gp.was_processed(offset) && !owner_holds
    }

    /// The fetches of `gp_id` on their way are discarded (its consumer
    /// state is reset): those of records already committed are lost.
    pub(super) fn discard_fetches(&mut self, gp_id: u32) {
        let gp = &self.gparts[gp_id as usize];
        if !self.track_processed || gp.in_flight.is_empty() {
            return;
        }
        let reader = self.group_node(gp_id);
        for k in 0..gp.in_flight.len() {
            let gp = &self.gparts[gp_id as usize];
            let o = gp.in_flight[k].0;
            if self.committed_unprocessed(gp_id, o, NO_OWNER) {
                let msg = self.partitions[gp.part as usize].records[o as usize];
                self.lose(reader, &msg, LossReason::CommittedUnprocessed);
            }
        }
    }

    /// The node that stands for `gp_id`'s group in a loss record: its
    /// owner, or the service's first instance while no member holds it.
    pub(super) fn group_node(&self, gp_id: u32) -> u32 {
        let gp = &self.gparts[gp_id as usize];
        if gp.owner == NO_OWNER { self.first_node[gp.service as usize] } else { gp.owner }
    }

    /// True if node `n` holds a record of `gp_id` at `offset` (waiting or
    /// under way): it will process it, whatever happens to the log.
    pub(super) fn holds_record(&self, n: u32, gp_id: u32, offset: u64) -> bool {
        let node = &self.nodes[n as usize];
        let held = |j: &Job| matches!(j.source, Source::Log { gp, offset: o, .. } if gp == gp_id && o == offset);
        node.busy.iter().flatten().any(held) || node.fifo.iter().any(held)
    }

    /// Forgets a partition's consumer-side state: the next owner (or the
    /// same one after a restart) resumes from the committed offset.
    pub(super) fn reset_consumer_state(gp: &mut GroupPart) {
        gp.generation = gp.generation.wrapping_add(1);
        gp.outstanding = 0;
        gp.position = gp.committed;
        gp.in_flight.clear();
        // A new connection: nothing of the old one's fetches holds it back.
        gp.last_arrival = SimTime::ZERO;
        // A transactional consumer's record of what it did is in its
        // database; anyone else's was in memory.
        if gp.policy != CommitPolicy::Transactional {
            gp.done.clear();
        }
    }

    /// The group coordinator stops waiting for crashed member `n` and
    /// moves its partitions to the live members.
    pub(super) fn session_expired(&mut self, n: u32, epoch: u32) {
        let node = &self.nodes[n as usize];
        let heartbeating = node.up && !node.paused && !self.blocked(n, BUS);
        if node.epoch != epoch || heartbeating || !node.member {
            return;
        }
        let node = &mut self.nodes[n as usize];
        node.member = false;
        let service = node.service;
        self.rebalance(service);
    }

    /// Assigns service `si`'s partitions to its members, round robin in
    /// partition order (Kafka's round-robin assignor); a partition that moves
    /// is revoked from its old owner and resumes from its committed offset.
    pub(super) fn rebalance(&mut self, si: u32) {
        let first = self.first_node[si as usize];
        let members: Vec<u32> = (first..first + self.sys.services[si as usize].instances)
            .filter(|&n| self.nodes[n as usize].member)
            .collect();
        let mut gained = Vec::new();
        for i in 0..self.service_gps[si as usize].len() {
            let g = self.service_gps[si as usize][i];
            let new_owner = if members.is_empty() { NO_OWNER } else { members[i % members.len()] };
            let gp = &mut self.gparts[g as usize];
            let old = gp.owner;
            if old == new_owner {
                continue;
            }
            let aux = u64::from(gp.partition_in_topic);
            if old != NO_OWNER {
                self.discard_fetches(g);
                let outstanding = self.gparts[g as usize].outstanding;
                let node = &mut self.nodes[old as usize];
                node.owned.retain(|&x| x != g);
                node.outstanding = node.outstanding.saturating_sub(outstanding);
                self.trace_node(RecordKind::Revoked, old, aux);
            }
            let gp = &mut self.gparts[g as usize];
            Self::reset_consumer_state(gp);
            gp.owner = new_owner;
            if new_owner != NO_OWNER {
                self.nodes[new_owner as usize].owned.push(g);
                self.trace_node(RecordKind::Assigned, new_owner, aux);
                if !gained.contains(&new_owner) {
                    gained.push(new_owner);
                }
            }
        }
        for n in gained {
            self.try_fetch(n);
            // One that owned no auto-committing partition had no timer set.
            if self.nodes[n as usize].up {
                self.schedule_auto_commit(n);
            }
        }
    }

    /// An operator resets service `si`'s consumer group to `to`: each
    /// partition's committed offset and its consumer's position go there,
    /// fetches under way are dropped, and the owner fetches from there.
    /// Records skipped forward that the group never processed and its
    /// owner does not hold are lost; records rewound over come again.
    /// An operator drops service `si`'s tables (every instance's rows, in
    /// memory and in its database), to rebuild them from the log.
    pub(super) fn drop_tables(&mut self, si: u32) {
        // Table rows sit below the machine rows, with their values above ROW_VALUE.
        let tables = |k: &u64| (k & !ROW_VALUE) >> ROW_BITS < 0x7FFD;
        for n in self.first_node[si as usize]..self.first_node[si as usize] + self.sys.services[si as usize].instances {
            let home = self.nodes[n as usize].home as usize;
            self.nodes[n as usize].volatile.rows.retain(|k, _| !tables(k));
            self.nodes[home].durable.rows.retain(|k, _| !tables(k));
        }
    }

    pub(super) fn rewind(&mut self, si: u32, to: crate::system::RewindTarget) {
        use crate::system::RewindTarget;
        for i in 0..self.service_gps[si as usize].len() {
            let g = self.service_gps[si as usize][i];
            let gp = &self.gparts[g as usize];
            let part = &self.partitions[gp.part as usize];
            let end = part.visible;
            let target = match to {
                RewindTarget::Earliest => 0,
                RewindTarget::Latest => end,
                RewindTarget::Offset(o) => o.min(end),
                RewindTarget::Time(t) => part.visible_at[..end as usize].partition_point(|&v| v < t) as u64,
            };
            let (from, owner) = (gp.committed, gp.owner);
            // What the owner holds of this partition, found once (not per offset).
            let mut held: Vec<u64> = Vec::new();
            if owner != NO_OWNER && target > from {
                let node = &self.nodes[owner as usize];
                let of_g = |j: &Job| match j.source {
                    Source::Log { gp, offset, .. } if gp == g => Some(offset),
                    _ => None,
                };
                held = node.busy.iter().flatten().chain(node.fifo.iter()).filter_map(of_g).collect();
                held.sort_unstable();
            }
            for o in from..target {
                let gp = &self.gparts[g as usize];
                let done = gp.done.get((o - from) as usize) == Some(&true);
                if !(done || gp.was_processed(o) || held.binary_search(&o).is_ok()) {
                    let msg = self.partitions[gp.part as usize].records[o as usize];
                    let reader = self.group_node(g);
                    self.lose(reader, &msg, crate::trace::LossReason::RewoundPast);
                }
            }
            let outstanding = self.gparts[g as usize].outstanding;
            if owner != NO_OWNER {
                let node = &mut self.nodes[owner as usize];
                node.outstanding = node.outstanding.saturating_sub(outstanding);
            }
            let gp = &mut self.gparts[g as usize];
            gp.committed = target;
            Self::reset_consumer_state(gp);
            gp.done.clear();
            let aux = u64::from(gp.partition_in_topic) << 40 | target;
            let reader = self.group_node(g);
            self.trace_node(RecordKind::Rewound, reader, aux);
        }
        let first = self.first_node[si as usize];
        for n in first..first + self.sys.services[si as usize].instances {
            self.try_fetch(n);
        }
    }
}
