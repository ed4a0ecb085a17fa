//! Broker nodes behind the log: leaders and followers, in-sync replicas,
//! flushing, leader election, and the producers that write to them.
//!
//! Each partition has `replication` replicas on distinct brokers; the first
//! one up and in sync leads. A producer sends a record to the leader and
//! waits for its acknowledgement (`acks`): none, the leader's append, or
//! every in-sync replica's copy. It resends after `retry_after`, up to
//! `retries` times; an idempotent producer's resend is recognised. Followers
//! fetch from the leader; consumers see records up to the high watermark
//! (what every in-sync replica has). A crashed broker loses what it had not
//! flushed and leaves the in-sync set. When a leader fails, an in-sync
//! replica takes over and the log is cut to what it has; with
//! `unclean_election` an out-of-sync replica may take over when no in-sync
//! one is up, and acknowledged writes it lacks are gone.

use super::{Ev, World};
use crate::service::Message;
use crate::sim::{SimDuration, SimTime};
use crate::system::Acks;
use crate::trace::{LossReason, NO_NODE, Record, RecordKind};

/// A broker node.
pub(super) struct BrokerNode {
    pub up: bool,
    pub epoch: u32,
    /// Crashes that hold it down now (see `faults`).
    pub down: crate::fault::compose::Holds,
    /// Cut off from the controller quorum long enough to lose its session:
    /// it leads nothing and is in no in-sync set (see `quorum`).
    pub fenced: bool,
    /// Tells the pending fence check from older ones.
    pub fence_generation: u32,
}

/// One copy of a partition.
#[derive(Clone, Copy, Debug)]
pub(super) struct Replica {
    pub broker: u32,
    /// Records this copy holds (a prefix of the leader's log).
    pub len: u64,
    /// The most it has held since the log was last cut below it: what it
    /// had beyond `len` it lost to a crash before flushing.
    pub held_max: u64,
    /// Records of this copy that are on disk.
    pub flushed: u64,
    pub fetching: bool,
    pub in_sync: bool,
    /// Its fetches from the leader are blocked by the network, and an
    /// in-sync check is pending.
    pub stalled: bool,
}

impl BrokerNode {
    /// A broker node up, never crashed.
    pub fn up() -> BrokerNode {
        BrokerNode {
            up: true,
            epoch: 0,
            down: crate::fault::compose::Holds::default(),
            fenced: false,
            fence_generation: 0,
        }
    }
}

impl Replica {
    /// An empty, in-sync copy on broker `broker`.
    pub fn on(broker: u32) -> Replica {
        Replica { broker, len: 0, held_max: 0, flushed: 0, fetching: false, in_sync: true, stalled: false }
    }
}

/// A produce request waiting for its acknowledgement.
#[derive(Clone, Copy, Debug)]
pub(super) struct ProduceReq {
    pub msg: Message,
    /// The producing node.
    pub from: u32,
    pub part: u32,
    pub attempts: u32,
    pub live: bool,
    /// The offset of its last append, if any: a copy of it may be in the log.
    pub appended_at: Option<u64>,
    /// Its acknowledgement is on its way: the producer will not resend it.
    pub acked: bool,
    /// Tells this request from earlier users of its slot.
    pub generation: u32,
}

impl World<'_, '_> {
    /// Sends `msg` to the leader of partition `part` (first attempt).
    pub(super) fn produce(&mut self, msg: Message, part: u32, from: u32) {
        let req =
            ProduceReq { msg, from, part, attempts: 0, live: true, generation: 0, appended_at: None, acked: false };
        let id = match self.produce.free.pop() {
            Some(i) => {
                let generation = self.produce.reqs[i as usize].generation.wrapping_add(1);
                self.produce.reqs[i as usize] = ProduceReq { generation, ..req };
                i
            }
            None => {
                self.produce.reqs.push(req);
                self.produce.reqs.len() as u32 - 1
            }
        };
        self.send_produce(id);
    }

    fn send_produce(&mut self, req: u32) {
        let spec = self.log_cfg.brokers.as_ref().expect("brokers configured");
        let (retry_after, acks) = (spec.retry_after, spec.acks);
        self.produce.reqs[req as usize].acked = false;
        let r = self.produce.reqs[req as usize];
        // The request goes to the partition's leader as the producer knows
        // it; one lost on the way is found out by the timeout below.
        let part = &self.partitions[r.part as usize];
        let broker = part.leader.or(part.last_leader).map_or(super::BUS, |l| {
            let b = part.replicas[l].broker;
            self.broker_node(b)
        });
        let c = self.cross(r.from, broker);
        if !c.lost {
            for _ in 0..1 + u32::from(c.duplicated) {
                let latency = self.log_latency.sample(&mut self.network);
                let at = self.arrive_on(r.from, broker, latency, &c);
                self.queue.push(at, Ev::Produce { req, generation: r.generation });
            }
        }
        if acks != Acks::None {
            let ev = Ev::ProduceTimeout { req, generation: r.generation, attempt: r.attempts };
            self.queue.push(self.now + retry_after, ev);
        }
    }

    fn settle_produce(&mut self, req: u32) {
        self.produce.reqs[req as usize].live = false;
        self.produce.free.push(req);
    }

    /// A produce request reaches the broker side.
    pub(super) fn produce_arrived(&mut self, req: u32, generation: u32) {
        let r = self.produce.reqs[req as usize];
        if !r.live || r.generation != generation {
            return;
        }
        let spec = self.log_cfg.brokers.as_ref().expect("brokers configured");
        let (acks, min_insync, idempotent) = (spec.acks, spec.min_insync, spec.idempotent);
        let p = r.part as usize;
        let Some(leader) = self.partitions[p].leader else { return }; // offline: the timeout resends
        if !self.brokers[self.partitions[p].replicas[leader].broker as usize].up {
            return;
        }
        let in_sync = self.in_sync_count(p);
        if acks == Acks::All && in_sync < min_insync {
            return; // not enough replicas: refused, the timeout resends
        }
        let offset = match self.partitions[p].appended_ids.get(&r.msg.id.0) {
            Some(&o) if idempotent => o,
            _ => {
                let offset = self.append(p, r.msg);
                if idempotent {
                    self.partitions[p].appended_ids.insert(r.msg.id.0, offset);
                }
                offset
            }
        };
        self.produce.reqs[req as usize].appended_at = Some(offset);
        match acks {
            Acks::None => self.settle_produce(req),
            Acks::Leader => self.send_ack(req),
            Acks::All if offset < self.partitions[p].visible => self.send_ack(req),
            Acks::All => {
                // Kept in offset order: a resent record may be older than the newest.
                let pending = &mut self.partitions[p].pending_acks;
                let at = pending.partition_point(|&(o, _)| o <= offset);
                pending.insert(at, (offset, req));
            }
        }
        self.replicate(p);
        self.update_high_watermark(p);
    }

    /// Appends to the leader's log (the partition's records).
    fn append(&mut self, p: usize, msg: Message) -> u64 {
        let flush_now = self.log_cfg.brokers.as_ref().is_some_and(|s| s.flush_every.is_none());
        let part = &mut self.partitions[p];
        let offset = part.records.len() as u64;
        part.records.push(msg);
        // Visible once below the high watermark (set then).
        part.visible_at.push(SimTime::NEVER);
        if part.compacted {
            part.newest_by_key.insert(msg.key, offset);
        }
        if let Some(l) = part.leader {
            let leader = &mut part.replicas[l];
            leader.len = offset + 1;
            leader.held_max = leader.len;
            if flush_now {
                leader.flushed = leader.len;
            }
        }
        let pip = part.partition_in_topic;
        self.trace(RecordKind::Appended, NO_NODE, &msg, u64::from(pip) << 40 | offset);
        offset
    }

    fn send_ack(&mut self, req: u32) {
        let r = self.produce.reqs[req as usize];
        let part = &self.partitions[r.part as usize];
        let broker = part.leader.map_or(super::BUS, |l| self.broker_node(part.replicas[l].broker));
        let c = self.cross(broker, r.from);
        if c.lost {
            return; // the producer times out and resends
        }
        self.produce.reqs[req as usize].acked = true;
        let latency = self.log_latency.sample(&mut self.network);
        let at = self.arrive_on(broker, r.from, latency, &c);
        self.queue.push(at, Ev::ProduceAck { req, generation: r.generation });
    }

    pub(super) fn produce_acked(&mut self, req: u32, generation: u32) {
        let r = self.produce.reqs[req as usize];
        if r.live && r.generation == generation {
            self.settle_produce(req);
        }
    }

    /// No acknowledgement in time: resend, or give up.
    pub(super) fn produce_timed_out(&mut self, req: u32, generation: u32, attempt: u32) {
        let r = self.produce.reqs[req as usize];
        if !r.live || r.generation != generation || r.attempts != attempt {
            return;
        }
        let retries = self.log_cfg.brokers.as_ref().map_or(0, |s| s.retries);
        if r.attempts < retries {
            self.produce.reqs[req as usize].attempts += 1;
            self.send_produce(req);
        } else {
            self.settle_produce(req);
            // Unacknowledged is not lost: an attempt may have been appended
            // (its acknowledgement lost or still waiting), and its readers get it.
            let in_log = r.appended_at.is_some_and(|o| {
                self.partitions[r.part as usize].records.get(o as usize).is_some_and(|m| m.id == r.msg.id)
            });
            if !in_log {
                self.lose(r.from, &r.msg, LossReason::ProducerGaveUp);
            }
        }
    }

    pub(super) fn in_sync_count(&self, p: usize) -> u32 {
        let part = &self.partitions[p];
        part.replicas.iter().filter(|r| r.in_sync && self.brokers[r.broker as usize].up).count() as u32
    }

    /// Followers that are up and idle fetch from the leader.
    pub(super) fn replicate(&mut self, p: usize) {
        let Some(leader) = self.partitions[p].leader else { return };
        for i in 0..self.partitions[p].replicas.len() {
            let r = self.partitions[p].replicas[i];
            let broker = &self.brokers[r.broker as usize];
            // A fenced broker is out of the in-sync sets until it rejoins.
            if i == leader || r.fetching || !broker.up || broker.fenced {
                continue;
            }
            if self.replica_cut_off(p, i) {
                self.replica_stalled(p, i);
                continue;
            }
            if r.len >= self.partitions[p].records.len() as u64 {
                // Caught up with nothing to fetch (a restarted follower of an
                // idle partition): in sync again.
                if !r.in_sync {
                    self.partitions[p].replicas[i].in_sync = true;
                }
                continue;
            }
            self.partitions[p].replicas[i].fetching = true;
            // Over the connection between the two brokers: a faulty link
            // delays the fetch (resent), and so does a slow one.
            let (from, to) = (self.broker_node(self.partitions[p].replicas[leader].broker), self.broker_node(r.broker));
            let c = self.reliable(from, to).0;
            let latency = &self.log_cfg.brokers.as_ref().expect("brokers configured").replica_latency;
            let at = self.now + latency.sample(&mut self.network) + c.delay + c.held;
            self.queue.push(at, Ev::ReplicaFetch { part: p as u32, replica: i as u32 });
        }
    }

    /// A follower's fetch returns: it copies the leader's log and is in sync.
    pub(super) fn replica_fetched(&mut self, p: u32, i: u32) {
        let p = p as usize;
        let i = i as usize;
        self.partitions[p].replicas[i].fetching = false;
        let r = self.partitions[p].replicas[i];
        let Some(leader) = self.partitions[p].leader else { return };
        let broker = &self.brokers[r.broker as usize];
        if !broker.up || broker.fenced || leader == i {
            return;
        }
        if self.replica_cut_off(p, i) {
            return self.replica_stalled(p, i); // the fetch did not get through
        }
        let flush_now = self.log_cfg.brokers.as_ref().is_some_and(|s| s.flush_every.is_none());
        let len = self.partitions[p].records.len() as u64;
        let r = &mut self.partitions[p].replicas[i];
        r.len = len;
        r.held_max = r.held_max.max(len);
        if flush_now {
            r.flushed = len;
        }
        r.in_sync = true;
        self.update_high_watermark(p);
        self.replicate(p);
    }

    /// The high watermark: what every in-sync replica that is up holds.
    /// Consumers see records below it; `acks: All` waits for it.
    pub(super) fn update_high_watermark(&mut self, p: usize) {
        let part = &self.partitions[p];
        let hw = part
            .replicas
            .iter()
            .filter(|r| r.in_sync && self.brokers[r.broker as usize].up)
            .map(|r| r.len)
            .min()
            .unwrap_or(0);
        if hw <= part.visible {
            return;
        }
        let part = &mut self.partitions[p];
        for t in &mut part.visible_at[part.visible as usize..hw as usize] {
            *t = self.now;
        }
        part.visible = hw;
        // `acks: All` answers only while enough replicas are in sync.
        let min_insync = self.log_cfg.brokers.as_ref().map_or(1, |s| s.min_insync);
        let enough = self.in_sync_count(p) >= min_insync;
        while enough && let Some(&(offset, req)) = self.partitions[p].pending_acks.front() {
            if offset >= hw {
                break;
            }
            self.partitions[p].pending_acks.pop_front();
            self.send_ack(req);
        }
        for i in 0..self.partitions[p].groups.len() {
            let gp = self.partitions[p].groups[i];
            self.fetch_from(gp);
        }
    }

    /// Broker `b` crashes: its copies lose what was not flushed and leave
    /// the in-sync set; partitions it led elect a new leader.
    pub(super) fn broker_crash(&mut self, b: u32) {
        if !self.brokers[b as usize].up {
            return;
        }
        if self.queue_broker == Some(b) {
            return self.queue_broker_crash(b);
        }
        self.brokers[b as usize].up = false;
        self.brokers[b as usize].epoch += 1;
        self.emit(Record {
            time: self.now,
            kind: RecordKind::Crash,
            node: self.broker_node(b),
            msg: 0,
            entity: 0,
            aux: 0,
        });
        for p in 0..self.partitions.len() {
            let leader = self.partitions[p].leader;
            let Some(i) = self.partitions[p].replicas.iter().position(|r| r.broker == b) else { continue };
            // It leaves the in-sync set, unless it was the last member: then
            // the set keeps it, and the partition waits for it (or, with
            // unclean elections, takes a replica that is not in it).
            let others = self.in_sync_count(p) > 0;
            let r = &mut self.partitions[p].replicas[i];
            r.len = r.flushed;
            r.in_sync &= !others;
            r.fetching = false;
            if leader == Some(i) {
                self.elect(p);
            }
        }
    }

    /// Broker `b` restarts: its copies drop any tail the current leader does
    /// not have and fetch the rest; an offline partition may get a leader.
    pub(super) fn broker_restart(&mut self, b: u32) {
        if self.brokers[b as usize].up {
            return;
        }
        if self.queue_broker == Some(b) {
            return self.queue_broker_restart(b);
        }
        self.brokers[b as usize].up = true;
        self.emit(Record {
            time: self.now,
            kind: RecordKind::Restart,
            node: self.broker_node(b),
            msg: 0,
            entity: 0,
            aux: 0,
        });
        for p in 0..self.partitions.len() {
            let Some(i) = self.partitions[p].replicas.iter().position(|r| r.broker == b) else { continue };
            match self.partitions[p].leader {
                Some(_) => {
                    let len = self.partitions[p].records.len() as u64;
                    let r = &mut self.partitions[p].replicas[i];
                    r.len = r.len.min(len);
                    r.held_max = r.held_max.min(len);
                    r.flushed = r.flushed.min(r.len);
                    self.replicate(p);
                }
                // If it was the last replica in sync, it leads again.
                None => self.elect(p),
            }
        }
        self.schedule_flush(b);
    }

    /// Chooses a leader for partition `p`: an in-sync replica that is up,
    /// else (if allowed) the longest out-of-sync one. The log is cut to the
    /// new leader's copy; what is cut is lost.
    pub(super) fn elect(&mut self, p: usize) {
        let unclean_allowed = self.log_cfg.brokers.as_ref().is_some_and(|s| s.unclean_election);
        let part = &self.partitions[p];
        // A fenced broker is not a candidate: the controller cannot reach it.
        let up = |r: &Replica| self.brokers[r.broker as usize].up && !self.brokers[r.broker as usize].fenced;
        let clean = part.replicas.iter().position(|r| r.in_sync && up(r));
        let (choice, unclean) = match clean {
            Some(i) => (Some(i), false),
            None if unclean_allowed => {
                let best = part
                    .replicas
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| up(r))
                    .max_by_key(|(i, r)| (r.len, usize::MAX - i));
                (best.map(|(i, _)| i), true)
            }
            None => (None, false),
        };
        self.partitions[p].leader = choice;
        let Some(l) = choice else { return }; // offline until a replica comes back
        self.partitions[p].last_leader = Some(l);
        self.partitions[p].replicas[l].in_sync = true;
        let (keep, had) = (self.partitions[p].replicas[l].len, self.partitions[p].replicas[l].held_max);
        // What the new leader once had and lost to a crash before writing
        // it to disk is unflushed; what it never had, the election lost.
        let reason = if unclean { LossReason::UncleanElection } else { LossReason::LeaderFailover };
        self.truncate(p, keep, had, reason);
        // The requests waited on the old leader, which will never answer:
        // their producers time out and resend, and a resend of a record the
        // new leader has is a duplicate unless the producer is idempotent.
        self.partitions[p].pending_acks.clear();
        for r in &mut self.partitions[p].replicas {
            r.len = r.len.min(keep);
            r.flushed = r.flushed.min(keep);
            r.held_max = r.held_max.min(keep);
        }
        self.replicate(p);
        self.update_high_watermark(p);
    }

    /// Cuts partition `p`'s log to `keep` records: consumer groups past the
    /// cut go back to it, and pending acknowledgements for the cut records
    /// are dropped (their producers will resend). A cut record is lost for
    /// each group that had not processed it (nor holds it), unless its
    /// producer still waits for an acknowledgement and will send it again.
    fn truncate(&mut self, p: usize, keep: u64, unflushed_below: u64, reason: LossReason) {
        let len = self.partitions[p].records.len() as u64;
        if keep >= len {
            return;
        }
        for o in keep..len {
            let msg = self.partitions[p].records[o as usize];
            // Its producer still waits for an acknowledgement: it will send it again.
            if self.produce.reqs.iter().any(|r| r.live && !r.acked && r.msg.id == msg.id) {
                continue;
            }
            for k in 0..self.partitions[p].groups.len() {
                let g = self.partitions[p].groups[k];
                let gp = &self.gparts[g as usize];
                let held = gp.owner != super::NO_OWNER && self.holds_record(gp.owner, g, o);
                // Below the committed offset, an unprocessed record was
                // counted when it was lost (a crash, a discarded fetch).
                if o >= gp.committed && !gp.was_processed(o) && !held {
                    let reader = self.group_node(g);
                    let why = if o < unflushed_below { LossReason::Unflushed } else { reason };
                    self.lose(reader, &msg, why);
                }
            }
        }
        let part = &mut self.partitions[p];
        part.records.truncate(keep as usize);
        part.visible_at.truncate(keep as usize);
        part.visible = part.visible.min(keep);
        part.pending_acks.retain(|&(o, _)| o < keep);
        part.appended_ids.retain(|_, o| *o < keep);
        if part.compacted {
            part.newest_by_key.clear();
            for (o, m) in part.records.iter().enumerate() {
                part.newest_by_key.insert(m.key, o as u64);
            }
        }
        for i in 0..self.partitions[p].groups.len() {
            let g = self.partitions[p].groups[i] as usize;
            let owner = self.gparts[g].owner;
            let gp = &mut self.gparts[g];
            // What the group knows of offsets past the cut is of records
            // that are gone: the offsets will hold new ones.
            if gp.committed > keep {
                gp.done.clear();
            } else {
                gp.done.truncate((keep - gp.committed) as usize);
            }
            gp.forget_processed_from(keep);
            if gp.position > keep || gp.committed > keep {
                self.discard_fetches(g as u32);
                let gp = &mut self.gparts[g];
                gp.committed = gp.committed.min(keep);
                gp.high_water = gp.high_water.min(keep);
                if owner != super::NO_OWNER {
                    let node = &mut self.nodes[owner as usize];
                    node.outstanding = node.outstanding.saturating_sub(gp.outstanding);
                }
                Self::reset_consumer_state(gp);
            }
        }
    }

    /// The trace's node index of broker `b` (after every service instance).
    pub(super) fn broker_node(&self, b: u32) -> u32 {
        self.nodes.len() as u32 + b
    }

    /// Sets broker `b`'s next flush, if flushing is periodic.
    pub(super) fn schedule_flush(&mut self, b: u32) {
        if let Some(every) = self.log_cfg.brokers.as_ref().and_then(|s| s.flush_every) {
            let epoch = self.brokers[b as usize].epoch;
            self.queue.push(self.now + every.max(SimDuration::NANOSECOND), Ev::Flush { broker: b, epoch });
        }
    }

    /// Broker `b` writes its copies to disk.
    pub(super) fn flush(&mut self, b: u32, epoch: u32) {
        if !self.brokers[b as usize].up || self.brokers[b as usize].epoch != epoch {
            return;
        }
        for part in &mut self.partitions {
            for r in part.replicas.iter_mut().filter(|r| r.broker == b) {
                r.flushed = r.len;
            }
        }
        self.schedule_flush(b);
    }
}
