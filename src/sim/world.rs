//! The event loop and the world it runs: nodes, the bus, the workload and
//! the fault plan.
//!
//! Why it is over 800 lines: it is the kernel's loop and a node's life (a
//! handler's completion, its commands, crash and restart as fixed sequences
//! of hooks), which every bus and pattern hooks into; each bus, the calls,
//! the faults, the links and the autoscaler are files in `world/`.
//!
//! One loop pops the earliest event (time, then insertion order; see
//! [`EventQueue`]) and dispatches it. Every random draw comes from a stream
//! of the concern that makes it ([`StreamKind`]). Events aimed at a node
//! carry the node's incarnation (`epoch`); a crash bumps it, so work and
//! deliveries addressed to the previous incarnation are recognised as stale.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;

use crate::bus::BusKind;
use crate::bus::log::LogSettings;
use crate::bus::queue::{Broker, Consumer, Queue, QueueSettings};
use crate::fault::compose::{Factors, Holds};
use crate::fault::network::{ANY, BUS};
use crate::fault::plan::{Names, Plan, PlanEntry, PlanKind, RANDOM_CRASHES_MAX, Target};
use arrivals::Arrivals;
use brokers::{BrokerNode, ProduceReq, Replica};

mod arrivals;
mod autoscale;
mod brokers;
mod calls;
mod channel;
mod ephemeral_bus;
mod event_sourced;
mod faults;
mod links;
mod log_bus;
mod queue_broker;
mod queue_bus;
mod quorum;
mod rehydrate;
mod versions;
use crate::check::{Checker, Rows};
use crate::metrics::Histogram;
use crate::outcome::{
    AppliedFault, Backlog, CallMetrics, InstanceMetrics, Metrics, Outcome, ServiceMetrics, StopReason,
};
use crate::service::{Command, Context, Control, EntityId, FIELDS, Kind, Message, MsgId, Out, Payload, Stores};
use crate::sim::{Dist, EventQueue, SimDuration, SimTime, Stream, StreamKind};
use crate::system::{CommitPolicy, FaultSpec, InvariantSpec, Routing, Seam, StateKind, System, WorkloadSpec};
use crate::trace::{Focused, LossReason, NO_NODE, Record, RecordKind, TraceSink, Tracer};
use calls::{CALL_NONE, Calls};
use channel::Channels;

/// What a run should produce besides its outcome.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Write every trace record here.
    pub trace: Option<&'a mut dyn TraceSink>,
    /// Measure throughput, latency and losses over simulated time
    /// ([`Outcome::series`]), for reports.
    pub series: bool,
    /// Stop the run soon after this becomes true (a SIGINT or SIGTERM):
    /// it ends as [`StopReason::Interrupted`], within 4,096 events.
    pub stop: Option<&'a std::sync::atomic::AtomicBool>,
}

/// Throughput, latency and losses per interval of simulated time, as a run goes.
struct SeriesAcc {
    every: SimDuration,
    completed: Vec<u64>,
    latency: Vec<Histogram>,
    lost: Vec<u64>,
    redelivered: Vec<u64>,
    duplicates: Vec<u64>,
}

impl SeriesAcc {
    fn new(duration: SimDuration) -> SeriesAcc {
        let n = SAMPLES as usize;
        SeriesAcc {
            every: SimDuration((duration.0 / SAMPLES).max(1)),
            completed: vec![0; n],
            latency: vec![Histogram::default(); n],
            lost: vec![0; n],
            redelivered: vec![0; n],
            duplicates: vec![0; n],
        }
    }

    fn slot(&self, now: SimTime) -> usize {
        ((now.0 / self.every.0) as usize).min(SAMPLES as usize - 1)
    }

    fn finish(self) -> crate::outcome::Series {
        let s = |ns: u64| ns as f64 / 1e9;
        crate::outcome::Series {
            interval_s: self.every.as_secs_f64(),
            completed: self.completed,
            e2e_p50_s: self.latency.iter().map(|h| s(h.quantile(0.5))).collect(),
            e2e_p99_s: self.latency.iter().map(|h| s(h.quantile(0.99))).collect(),
            lost: self.lost,
            redelivered: self.redelivered,
            duplicates_skipped: self.duplicates,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    /// Workload `workload`'s next entity arrives.
    Arrival { workload: u32 },
    /// An ephemeral message (in the in-flight slab) reaches a node.
    Deliver { node: u32, epoch: u32, slot: u32 },
    /// The next log record of group partition `gp` reaches the consumer
    /// that fetched it (records of one partition arrive in offset order, so
    /// the offset is the partition's `arrived` counter, not carried here).
    Fetch { node: u32, gp: u32, generation: u32 },
    /// A worker finishes its job.
    Done { node: u32, epoch: u32, worker: u32 },
    /// A timer (its message in the slab) fires.
    Timer { node: u32, epoch: u32, slot: u32 },
    /// Plan entry `fault` begins (a crash, a pause, a slowdown, a skew, a
    /// network fault).
    FaultBegins { fault: u32 },
    /// Fault `fault` heals.
    FaultHeals { fault: u32 },
    /// A consumer with auto-commit commits its fetch positions.
    AutoCommit { node: u32, epoch: u32 },
    /// A queue's delivery (broker slot and generation) reaches its consumer.
    QueueDeliver { slot: u32, generation: u32 },
    /// A manual-ack delivery's ack timeout.
    AckTimeout { slot: u32, generation: u32 },
    /// A queue consumer whose channel the broker closed opens a new one.
    QueueReconnect { node: u32, epoch: u32 },
    /// A publisher confirm reaches its producer.
    QueueConfirm { seq: u64 },
    /// The queue broker's clients are connected again after its restart.
    QueueBrokerBack { epoch: u32 },
    /// A service deployed late starts.
    Join { service: u32 },
    /// The group coordinator gives up on a crashed member (its session timed out).
    SessionExpired { node: u32, epoch: u32 },
    /// A produce request (slot, generation) reaches the partition's leader.
    Produce { req: u32, generation: u32 },
    /// A producer's wait for an acknowledgement ends.
    ProduceTimeout { req: u32, generation: u32, attempt: u32 },
    /// A produce request's acknowledgement reaches the producer.
    ProduceAck { req: u32, generation: u32 },
    /// A follower's fetch from its leader returns.
    ReplicaFetch { part: u32, replica: u32 },
    /// A broker writes its log to disk.
    Flush { broker: u32, epoch: u32 },
    /// Record the backlog of every queue and the lag of every consumer group.
    Sample,
    /// A node's outbox relay publishes what is waiting in the outbox.
    OutboxPoll { node: u32, epoch: u32 },
    /// An attempt of a synchronous call reaches the callee `node`.
    CallArrive { call: u32, generation: u32, node: u32 },
    /// The callee's reply reaches the caller.
    CallReply { call: u32, generation: u32, ok: bool },
    /// An attempt's timeout at the caller.
    CallTimeout { call: u32, generation: u32 },
    /// A call's backoff is over: the next attempt.
    CallRetry { call: u32, generation: u32 },
    /// A publish held on its producer's connection (a faulty link, a
    /// partition) reaches the broker.
    Publish { node: u32, epoch: u32, slot: u32 },
    /// Whether replica `replica` of partition `part`, cut off from its
    /// leader, has lagged long enough to leave the in-sync set.
    IsrCheck { part: u32, replica: u32 },
    /// Broker `broker`, cut off from the controller quorum, is fenced
    /// unless it has reconnected (or been checked again: `generation`).
    BrokerFence { broker: u32, generation: u32 },
    /// Service `service`'s autoscaler decides.
    Autoscale { service: u32 },
    /// An instance the autoscaler asked for is ready (its start-up is over).
    ScaledUp { node: u32, epoch: u32 },
    /// Service `service`'s consumer group rebalances for the members that
    /// joined at this instant (one rebalance for them all).
    Rebalance { service: u32 },
    /// A step of a node's re-hydration or rebuild (its incarnation and
    /// attempt; `step`, one of `rehydrate::STEP_*`): its snapshot request
    /// reaches the owner, the snapshot reaches it, the request times out,
    /// or its events are replayed.
    Hydration { node: u32, epoch: u32, attempt: u32, step: u8 },
    /// Bounded-lag invariant `check` (among them) samples its group's lag.
    LagSample { check: u32 },
    /// The warm-up is over: measurements start again from zero.
    Warmup,
    /// The workload has stopped: time-averages end here (the drain that
    /// follows would only dilute them).
    WindowEnd,
}

/// Events waiting at once, at most (16 MB of queue; the bundled scenarios
/// never have more than 4,000).
const EVENTS_PENDING_MAX: usize = 1_000_000;

/// Samples of backlog and lag taken over a run.
const SAMPLES: u64 = 100;

/// `World::topic_parts` of a topic on another bus than the log.
const NOT_ON_LOG: u32 = u32::MAX;

/// Topic `kind` travels on the log (`topic_parts`: each topic's first
/// partition and how many it has).
fn on_log(topic_parts: &[(u32, u32)], kind: Kind) -> bool {
    topic_parts.get(kind.0 as usize).is_some_and(|&(p, _)| p != NOT_ON_LOG)
}

/// `GroupPart::owner` of a partition no member holds.
const NO_OWNER: u32 = u32::MAX;

/// Table rows live in an instance's state: the version under
/// `table << ROW_BITS | row`, the value under the same key with
/// [`ROW_VALUE`] set.
const ROW_BITS: u32 = 48;
const ROW_MASK: u64 = (1 << ROW_BITS) - 1;
const ROW_VALUE: u64 = 1 << 63;

/// Table `table`'s rows in `store`: (row key, version, value).
fn rows_of(store: &BTreeMap<u64, i64>, table: u16) -> impl Iterator<Item = (u64, i64, i64)> + '_ {
    let lo = u64::from(table) << ROW_BITS;
    store.range(lo..=lo | ROW_MASK).map(|(&k, &v)| (k, v, store.get(&(ROW_VALUE | k)).copied().unwrap_or(v)))
}

/// `Source::Queue` slot of an auto-ack delivery: already settled on arrival.
const AUTO_ACKED: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
enum Source {
    Request,
    Push,
    Log {
        gp: u32,
        generation: u32,
        offset: u64,
    },
    Queue {
        slot: u32,
        generation: u32,
    },
    Timer,
    /// A synchronous call's request: the reply goes back to the caller.
    Call {
        call: u32,
        generation: u32,
    },
}

#[derive(Clone, Copy, Debug)]
struct Job {
    msg: Message,
    source: Source,
    /// When it reached the node: waiting and stage latency are measured from here.
    arrived: SimTime,
    /// A stock reservation's reading when the work started: value << 32 |
    /// version, or [`NO_SNAPSHOT`].
    snapshot: u64,
    /// Where the handler's synchronous call stands (`calls::CALL_*`).
    called: u8,
}

const NO_SNAPSHOT: u64 = u64::MAX;

/// One key's stock, shared by a service's instances.
#[derive(Default)]
struct StockRow {
    value: u32,
    version: u32,
    locked: bool,
    /// Reservations waiting for the lock: (node, epoch, job).
    waiters: VecDeque<(u32, u32, Job)>,
}

struct Node {
    service: u32,
    instance: u32,
    name: String,
    up: bool,
    /// False until the service is deployed (see `starts_at`).
    joined: bool,
    /// A member of its consumer group, as the group coordinator sees it:
    /// a crashed node stays one until its session times out.
    member: bool,
    epoch: u32,
    busy: Vec<Option<Job>>,
    free: Vec<u32>,
    fifo: VecDeque<Job>,
    /// Integral of the FIFO's length over time (length x ns), up to
    /// `fifo_since`, from the warm-up on.
    fifo_area: u128,
    /// `fifo_area` when the measurement window closed (the workload stopped).
    fifo_area_window: Option<u128>,
    /// Time-integral of the workers held (at work, or waiting for a call's
    /// reply), in worker-nanoseconds since the warm-up, of the workers
    /// given back (see [`Node::busy_until`]), and its value when the
    /// measurement window closed; when each worker was taken.
    busy_area: u128,
    taken_at: Vec<SimTime>,
    busy_area_window: Option<u128>,
    /// Messages it handled since the warm-up.
    handled: u64,
    fifo_since: SimTime,
    capacity: usize,
    stream: Stream,
    /// Its state in its database and in memory.
    durable: Stores,
    volatile: Stores,
    /// The node whose durable stores it uses: itself, or, when its
    /// service's state is shared, its service's first instance (the
    /// service's database).
    home: u32,
    /// Group partitions this node consumes (log bus).
    owned: Vec<u32>,
    /// An idempotent consumer's in-memory store (volatile dedup).
    dedup: Option<DedupStore>,
    /// Messages written with a state change, waiting for the relay
    /// (transactional outbox; durable).
    outbox: VecDeque<Message>,
    /// With durable timers: the timers set and not yet fired (due, timer
    /// message), re-armed when the node restarts.
    /// Keyed by the timer message's id: (due, message).
    timers: BTreeMap<u64, (SimTime, Message)>,
    /// Processing times are multiplied by the product of the slowdowns
    /// active now (a slow node: 1.0 normally).
    slow: Factors,
    /// Its timers last this many times what they ask (clock skew: 1.0
    /// normally): the product of the active skews' factors.
    skew: Factors,
    /// Crashes that hold the node down now: it restarts when the last heals.
    down: Holds,
    /// Pauses that hold it now: it resumes when the last heals.
    pause: Holds,
    /// Stalled until `paused_until`: up to the outside, doing nothing.
    paused: bool,
    paused_until: SimTime,
    /// Records fetched and not yet processed.
    outstanding: u32,
    /// A fetch stopped at `fetch_max` with records left: scan all owned
    /// partitions when room frees up.
    fetch_blocked: bool,
    cursor: usize,
    /// The last arrival of a delivery from its queue: the channel (queue,
    /// this consumer) delivers in order.
    queue_arrival: SimTime,
    /// Autoscaling: asked for and starting (not yet ready).
    starting: bool,
    /// Autoscaling: being removed; it takes nothing new and leaves once
    /// it holds nothing.
    draining: bool,
    /// Autoscaling: worker-time held (`busy_until`) at the autoscaler's last
    /// look, and when that was (or when it became ready, if later).
    scale_mark: (SimTime, i128),
    /// The epoch whose auto-commit timer is set, if one is.
    auto_commit_armed: Option<u32>,
    /// Re-hydrating: waiting for its snapshot, it works on nothing and
    /// does not poll.
    hydrating: bool,
    /// Re-hydrated and not yet caught up (see `rehydrate`).
    catching_up: bool,
    /// The schema version its code runs (0: unversioned) << 16 | the
    /// highest it reads ([`Context::versions`]); a rolling deploy raises both.
    versions: u32,
}

/// A consumer group's view of one partition.
struct GroupPart {
    part: u32,
    partition_in_topic: u32,
    /// The member that holds it, or [`NO_OWNER`].
    owner: u32,
    /// Bumped whenever the partition's consumer state is reset (its owner
    /// crashed, or it moved): fetches and jobs of an older generation are stale.
    generation: u32,
    /// Records the owner fetched and has not finished.
    outstanding: u32,
    /// Kept by the broker: survives the consumer's crash.
    committed: u64,
    /// Consumer-side (volatile): next offset to fetch.
    position: u64,
    /// Consumer-side: offsets fetched and still on their way, in order,
    /// with when each fetch was sent.
    in_flight: VecDeque<(u64, SimTime)>,
    /// Which offsets from `committed` on are done: the consumer's memory,
    /// or with a transactional policy its database (kept across crashes).
    done: VecDeque<bool>,
    /// Which offsets the group has processed at least once (their effects
    /// happened), whatever its members forgot since: a bit per offset, the
    /// ground truth of what a crash, retention or a truncation takes from
    /// it. Kept only where records can be lost (`World::track_processed`).
    processed: Vec<u64>,
    /// The consuming service.
    service: u32,
    /// One past the highest offset ever fetched: a fetch below it is a redelivery.
    high_water: u64,
    /// Keeps one partition's records arriving in order.
    last_arrival: SimTime,
    /// The consuming service's commit policy.
    policy: CommitPolicy,
}

impl GroupPart {
    /// Service `service`'s view of partition `part` (number `p` of its
    /// topic), before anyone holds it.
    fn new(part: u32, p: u32, service: u32, policy: CommitPolicy) -> GroupPart {
        GroupPart {
            part,
            partition_in_topic: p,
            owner: NO_OWNER,
            generation: 0,
            outstanding: 0,
            committed: 0,
            position: 0,
            in_flight: VecDeque::new(),
            done: VecDeque::new(),
            processed: Vec::new(),
            service,
            high_water: 0,
            last_arrival: SimTime::ZERO,
            policy,
        }
    }

    /// The group processed `offset` (its effects happened).
    fn mark_processed(&mut self, offset: u64) {
        let (word, bit) = ((offset / 64) as usize, offset % 64);
        if word >= self.processed.len() {
            self.processed.resize(word + 1, 0);
        }
        self.processed[word] |= 1 << bit;
    }

    /// True if the group has processed `offset` at least once.
    fn was_processed(&self, offset: u64) -> bool {
        self.processed.get((offset / 64) as usize).is_some_and(|w| w & 1 << (offset % 64) != 0)
    }

    /// Forgets what was processed at `keep` and after: those offsets will
    /// hold other records (the log was cut there).
    fn forget_processed_from(&mut self, keep: u64) {
        let (word, bit) = ((keep / 64) as usize, keep % 64);
        self.processed.truncate(word + 1);
        if let Some(w) = self.processed.get_mut(word) {
            *w &= (1u64 << bit) - 1;
        }
    }
}

/// The message ids an idempotent consumer has handled, the newest `window`.
#[derive(Clone, Debug, Default)]
struct DedupStore {
    order: VecDeque<u64>,
    set: BTreeSet<u64>,
    window: usize,
}

impl DedupStore {
    /// The durable dedup store of service `s`, if it has one.
    fn durable_of(s: &crate::system::ServiceSpec) -> Option<DedupStore> {
        s.dedup.filter(|d| d.durable).map(|d| DedupStore::new(d.window))
    }

    fn new(window: u32) -> DedupStore {
        DedupStore { window: window as usize, ..DedupStore::default() }
    }

    /// Forgets `id`, remembered last: its handling rolled back.
    fn forget(&mut self, id: u64) {
        if self.order.back() == Some(&id) {
            self.order.pop_back();
            self.set.remove(&id);
        }
    }

    /// True if `id` was handled before; otherwise remembers it.
    fn seen(&mut self, id: u64) -> bool {
        if self.set.contains(&id) {
            return true;
        }
        if self.order.len() == self.window
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(id);
        self.set.insert(id);
        false
    }
}

struct Partition {
    /// The log as its leader has it (with ideal brokers: the log).
    records: Vec<Message>,
    /// When each record became visible to consumers (appended, or below the
    /// high watermark): a consumer's wait for it starts there.
    visible_at: Vec<SimTime>,
    partition_in_topic: u32,
    /// Records consumers may read: the high watermark (with ideal brokers,
    /// every record).
    visible: u64,
    /// Copies on broker nodes; empty with ideal brokers.
    replicas: Vec<Replica>,
    /// The replica that leads, if any is up.
    leader: Option<usize>,
    /// The replica that led last (kept while the partition is offline).
    last_leader: Option<usize>,
    /// `acks: All` requests waiting for the high watermark: (offset, request).
    pending_acks: VecDeque<(u64, u32)>,
    /// Idempotent producers: message id -> offset of its record.
    appended_ids: BTreeMap<u64, u64>,
    groups: Vec<u32>,
    /// Records older than this are deleted (time retention).
    retention: Option<SimDuration>,
    /// Only this many newest records are kept (size retention).
    retention_records: Option<u64>,
    /// Compacted: a reader gets only the newest record of each key.
    compacted: bool,
    /// For compacted partitions: the offset of each key's newest record.
    newest_by_key: BTreeMap<u64, u64>,
}

impl Partition {
    /// Record `o` is deleted by retention at `now` (by its age, or because
    /// the partition keeps only its newest records).
    #[inline]
    fn expired(&self, o: u64, now: SimTime) -> bool {
        self.retention.is_some_and(|r| self.records[o as usize].sent_at + r <= now)
            || self.retention_records.is_some_and(|keep| self.records.len() as u64 - o > keep)
    }
}

/// A tiny slab for messages in flight, so events stay small and `Copy`.
#[derive(Default)]
struct Slab {
    items: Vec<Message>,
    free: Vec<u32>,
}

impl Slab {
    fn insert(&mut self, m: Message) -> u32 {
        if let Some(i) = self.free.pop() {
            self.items[i as usize] = m;
            i
        } else {
            self.items.push(m);
            self.items.len() as u32 - 1
        }
    }
    fn take(&mut self, i: u32) -> Message {
        self.free.push(i);
        self.items[i as usize]
    }

    /// The messages in it now.
    fn live(&self) -> impl Iterator<Item = &Message> {
        let mut free = vec![false; self.items.len()];
        for &i in &self.free {
            free[i as usize] = true;
        }
        self.items.iter().zip(free).filter(|(_, f)| !f).map(|(m, _)| m)
    }
}

impl Node {
    /// Instance `i` of service `s` (number `si`, its first node `first`),
    /// before the run.
    fn new(s: &crate::system::ServiceSpec, si: u32, i: u32, seed: u64, first: u32) -> Node {
        let name = s.node_name(i);
        let deployed = s.starts_at == SimTime::ZERO && i < s.initial_instances();
        Node {
            service: si,
            instance: i,
            stream: Stream::new(seed, StreamKind::Instance, &name),
            name,
            up: deployed,
            joined: deployed,
            member: deployed,
            epoch: 0,
            busy: vec![None; s.workers as usize],
            free: (0..s.workers).rev().collect(),
            fifo: VecDeque::new(),
            fifo_area: 0,
            fifo_area_window: None,
            busy_area: 0,
            taken_at: vec![SimTime::ZERO; s.workers as usize],
            busy_area_window: None,
            handled: 0,
            fifo_since: SimTime::ZERO,
            capacity: s.queue_capacity as usize,
            durable: Stores::default(),
            volatile: Stores::default(),
            home: if s.state == StateKind::Shared { first } else { first + i },
            owned: Vec::new(),
            dedup: s.dedup.filter(|d| !d.durable).map(|d| DedupStore::new(d.window)),
            outbox: VecDeque::new(),
            timers: BTreeMap::new(),
            slow: Factors::default(),
            skew: Factors::default(),
            down: Holds::default(),
            pause: Holds::default(),
            paused: false,
            paused_until: SimTime::ZERO,
            outstanding: 0,
            fetch_blocked: false,
            cursor: 0,
            queue_arrival: SimTime::ZERO,
            starting: false,
            draining: false,
            scale_mark: (SimTime::ZERO, 0),
            auto_commit_armed: None,
            hydrating: false,
            catching_up: false,
            versions: u32::from(s.version.unwrap_or(0)) << 16 | u32::from(s.reads),
        }
    }

    /// Adds the time since the last change to the time-averages of its
    /// queue's length and of its busy workers: called before either changes.
    #[inline]
    fn account_fifo(&mut self, now: SimTime) {
        self.fifo_area += self.fifo.len() as u128 * u128::from((now - self.fifo_since).0);
        self.fifo_since = now;
    }

    /// A free worker, taken now.
    #[inline(always)]
    fn take_worker(&mut self, now: SimTime) -> Option<u32> {
        let w = self.free.pop()?;
        self.taken_at[w as usize] = now;
        Some(w)
    }

    /// Worker `w` is free again.
    #[inline(always)]
    fn free_worker(&mut self, w: u32, now: SimTime) {
        self.busy_area += u128::from((now - self.taken_at[w as usize]).0);
        self.free.push(w);
    }

    /// What it has on its hands, for least-loaded routing: workers held
    /// and messages waiting.
    #[inline]
    fn load(&self) -> usize {
        self.busy.len() - self.free.len() + self.fifo.len()
    }

    /// The workers held (not free) now (not on the hot path: at a crash,
    /// the warm-up and the window's end; linear in the workers).
    fn held(&self) -> Vec<usize> {
        let mut free = vec![false; self.busy.len()];
        for &w in &self.free {
            free[w as usize] = true;
        }
        (0..free.len()).filter(|&w| !free[w]).collect()
    }

    /// Worker-time held so far, up to `now` (those still held counted to now).
    fn busy_until(&self, now: SimTime) -> u128 {
        self.busy_area + self.held().into_iter().map(|w| u128::from((now - self.taken_at[w]).0)).sum::<u128>()
    }
}

/// A service's load balancer: the instance it used last in turn (at first
/// the last instance, so the first turn is the first), and the stream
/// random routing draws from.
struct Route {
    turn: u32,
    stream: Stream,
}

impl Route {
    fn new(s: &crate::system::ServiceSpec, seed: u64) -> Route {
        Route { turn: s.instances.saturating_sub(1), stream: Stream::new(seed, StreamKind::Routing, &s.name) }
    }

    /// The next instance in turn, of `n`.
    fn next(&mut self, n: u32) -> u32 {
        self.turn = (self.turn + 1) % n;
        self.turn
    }
}

/// Produce requests in flight, in slots reused once settled.
#[derive(Default)]
struct Produces {
    reqs: Vec<ProduceReq>,
    free: Vec<u32>,
}

/// Per-service measurements, fixed in size.
#[derive(Clone, Default)]
struct ServiceStats {
    handled: u64,
    /// Arrival at an instance to the end of handling.
    latency: Histogram,
    /// Arrival at an instance to the start of handling.
    wait: Histogram,
    /// Jobs that found every worker busy.
    waited: u64,
}

/// What happened over a run, counted (from the warm-up on).
#[derive(Default)]
struct Counts {
    requests: u64,
    rejected: u64,
    published: u64,
    handled: u64,
    lost: [u64; LossReason::ALL.len() + 1],
    redelivered: u64,
    duplicates_skipped: u64,
    /// Optimistic reservations refused and done again.
    conflicts: u64,
    dead_lettered: u64,
}

struct World<'s, 't> {
    sys: &'s System,
    now: SimTime,
    end: SimTime,
    queue: EventQueue<Ev>,
    /// Each workload's stream and count.
    arrivals: Vec<Arrivals>,
    network: Stream,
    nodes: Vec<Node>,
    /// First node of each service.
    first_node: Vec<u32>,
    /// Services subscribing to each kind.
    subscribers: Vec<Vec<u32>>,
    /// Each bus's latency to a consumer (a delivery, a fetch).
    eph_latency: Dist,
    log_latency: Dist,
    queue_latency: Dist,
    partitions: Vec<Partition>,
    /// The first partition of each topic on the log and how many it has,
    /// by kind ([`NOT_ON_LOG`] for a topic on another bus).
    topic_parts: Vec<(u32, u32)>,
    /// Per kind, for a topic producers spread over its partitions in turn:
    /// the partition they used last (`None`: by key).
    round_robin: Vec<Option<u32>>,
    gparts: Vec<GroupPart>,
    inflight: Slab,
    /// The fault plan as drawn for this seed (and, for crash points, as it
    /// happened).
    plan: Plan,
    /// Durable dedup stores, per service.
    dedup: Vec<Option<DedupStore>>,
    /// Stock per (service, key).
    stock: BTreeMap<(u32, u64), StockRow>,
    /// The plan's network faults active now (indices into `plan.network`),
    /// in activation order.
    links: Vec<u32>,
    /// The order of messages on each connection.
    channels: Channels,
    /// Queue bus: the broker's queues and deliveries.
    broker: Broker,
    /// The bus of each topic, by kind; `first_bus` for a kind past its end.
    topic_bus: Vec<BusKind>,
    first_bus: BusKind,
    /// The queue broker's index among the brokers, with a queue bus.
    queue_broker: Option<u32>,
    /// The brokers' node names, in broker order.
    broker_names: Vec<String>,
    /// Records can leave the log (retention, a truncation at an election):
    /// groups keep which records they processed, to tell a loss from a record
    /// whose effects happened.
    track_processed: bool,
    /// Per service, its group's partitions.
    service_gps: Vec<Vec<u32>>,
    /// Per service, whether its consumer group exists yet.
    group_started: Vec<bool>,
    /// Broker nodes: the log's, if configured, or the queue broker.
    brokers: Vec<BrokerNode>,
    /// The log's settings (no partitions for another bus).
    log_cfg: LogSettings,
    /// The queue bus's settings.
    queue_cfg: QueueSettings,
    /// The log's produce requests waiting for their acknowledgements.
    produce: Produces,
    /// Backlog per queue and lag per (group, topic), sampled: name, samples.
    backlog: Vec<(String, Vec<u64>)>,
    sample_every: SimDuration,
    /// Queue bus: the broker as its clients see it (reachable, confirms).
    qlink: queue_broker::ClientLink,
    /// Publishes held on their producers' connections, not yet at the broker.
    held_publishes: u32,
    checker: Checker,
    /// Per service: latency, waiting and queue figures.
    stats: Vec<ServiceStats>,
    tracer: Tracer<'t>,
    /// The handlers' out-buffer, reused (boxed, so that lending it to a
    /// handler moves a pointer, not the buffer).
    out: Option<Box<Out>>,
    next_msg: u64,
    next_entity: u64,
    events: u64,
    stop: StopReason,
    /// Set by a signal: stop at the next check.
    interrupt: Option<&'t std::sync::atomic::AtomicBool>,
    /// What happened, counted over the run.
    counts: Counts,
    /// Per service, its load balancer's state.
    routes: Vec<Route>,
    /// Synchronous calls in progress, and each caller's call sites.
    calls: Calls,
    seed: u64,
    /// Measurements over time, when asked for.
    series: Option<SeriesAcc>,
    /// Per service, its autoscaler's state, if it autoscales.
    scalers: Vec<Option<autoscale::Scaler>>,
    /// Per service, a rebalance for members that just joined is due now.
    rebalance_pending: Vec<bool>,
    /// Re-hydrations and rebuilds in progress, and what they did.
    hydration: rehydrate::Hydrations,
    /// Per service, the messages parked for a version its instances do not
    /// read yet, by id.
    parked: Vec<BTreeMap<u64, Message>>,
}

/// Why a [`System`] built in code cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A fault names a node that does not exist.
    #[error("fault names node `{0}`, which is not an instance of any service")]
    UnknownNode(String),
    /// The workload's target service index is out of range.
    #[error("the workload targets service #{0}, which does not exist")]
    UnknownTarget(usize),
    /// A service has no instances or no workers.
    #[error("service `{0}` needs at least one instance and one worker")]
    EmptyService(String),
    /// A service's autoscaler cannot work: its bounds, target, tolerance or
    /// period.
    #[error(
        "service `{0}`'s autoscaler needs 1 <= min <= initial <= instances, a target in (0, 1], a tolerance in [0, 1) and a period above zero"
    )]
    BadAutoscale(String),
    /// Writing the trace failed.
    #[error("writing the trace failed: {0}")]
    Trace(#[from] io::Error),
}

/// The words for a refused call attempt (a `CallRefused` record's aux).
pub(crate) fn refusal_label(code: u64) -> &'static str {
    calls::Refusal::from_code(code).map_or("refused", calls::Refusal::label)
}

#[inline]
fn mix(key: u64) -> u64 {
    // A fixed multiplicative hash so that neighbouring keys spread over partitions.
    (key ^ (key >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16
}

/// Whether log groups keep which records they processed: records can
/// leave the log (retention, compaction, a truncation at an election) or a
/// commit policy can commit what is not processed yet, so a record's loss
/// must be told from one whose effects happened.
fn tracks_processed(sys: &System, log: &LogSettings) -> bool {
    log.gc()
        || log.brokers.is_some()
        || sys.services.iter().any(|s| matches!(s.commit, CommitPolicy::BeforeProcess | CommitPolicy::Auto { .. }))
        // A group rewound forward skips records: which ones it had processed?
        || sys.faults.iter().any(|f| matches!(f, FaultSpec::Rewind { .. }))
}

/// The fault plan of `sys` for `seed` (`crate::fault::plan`), by the
/// names of its nodes and brokers.
fn draw_plan(
    sys: &System,
    seed: u64,
    nodes: &[Node],
    brokers: &[String],
    log_brokers: bool,
) -> Result<Plan, SetupError> {
    let nodes: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let brokers: Vec<&str> = brokers.iter().map(String::as_str).collect();
    let names = Names { nodes: &nodes, brokers: &brokers, bus_covers_brokers: log_brokers };
    Plan::draw(sys, seed, &names).map_err(SetupError::UnknownNode)
}

/// A bus's latency to a consumer (none without the bus).
/// Every service's instances, in service order, and each service's first;
/// refused if a service or a workload's target cannot run.
fn nodes_of(sys: &System, seed: u64) -> Result<(Vec<Node>, Vec<u32>), SetupError> {
    if let Some(w) = sys.workloads.iter().find(|w| w.target >= sys.services.len()) {
        return Err(SetupError::UnknownTarget(w.target));
    }
    let mut nodes = Vec::new();
    let mut first_node = Vec::new();
    for (si, s) in sys.services.iter().enumerate() {
        if s.instances == 0 || s.workers == 0 {
            return Err(SetupError::EmptyService(s.name.clone()));
        }
        if let Some(a) = s.autoscale
            && !(a.min >= 1
                && a.min <= a.initial
                && a.initial <= s.instances
                && a.target > 0.0
                && a.target <= 1.0
                && (0.0..1.0).contains(&a.tolerance)
                && a.every > SimDuration::ZERO)
        {
            return Err(SetupError::BadAutoscale(s.name.clone()));
        }
        first_node.push(nodes.len() as u32);
        nodes.extend((0..s.instances).map(|i| Node::new(s, si as u32, i, seed, first_node[si])));
    }
    Ok((nodes, first_node))
}

fn latency_of(bus: Option<&crate::system::BusSpec>) -> Dist {
    bus.map_or(Dist::Const(SimDuration::ZERO), |b| b.latency().clone())
}

/// Each workload's entity kind, in workload order.
fn entity_kinds(sys: &System) -> Vec<&str> {
    sys.workloads.iter().map(|w| w.entity.as_str()).collect()
}

/// The services subscribing to each kind, in service order.
fn subscribers(sys: &System) -> Vec<Vec<u32>> {
    let mut subscribers = vec![Vec::new(); sys.names.kind_count()];
    for (si, s) in sys.services.iter().enumerate() {
        for k in &s.consumes {
            if let Some(v) = subscribers.get_mut(k.0 as usize)
                && !v.contains(&(si as u32))
            {
                v.push(si as u32);
            }
        }
    }
    subscribers
}

/// A log's partitions (topic-major: partition `p` of topic `k` is
/// `topic_parts[k].0 + p`), each subscribing service's view of each as a
/// group partition, each service's group partitions, and each topic's
/// first partition. Empty without a log bus.
fn log_topology(sys: &System, subscribers: &[Vec<u32>], topic_bus: &[BusKind], cfg: &LogSettings) -> LogTopology {
    let mut partitions = Vec::new();
    let mut gparts = Vec::new();
    let mut service_gps = vec![Vec::new(); sys.services.len()];
    let mut topic_parts = vec![(NOT_ON_LOG, 0); subscribers.len()];
    for (kind, subs) in subscribers.iter().enumerate() {
        if !matches!(topic_bus[kind], BusKind::Log { .. }) {
            continue;
        }
        let k = kind as u32;
        topic_parts[kind] = (partitions.len() as u32, cfg.partitions_of(k));
        for p in 0..cfg.partitions_of(k) {
            let part = partitions.len() as u32;
            let mut groups = Vec::new();
            for &si in subs {
                groups.push(gparts.len() as u32);
                service_gps[si as usize].push(gparts.len() as u32);
                gparts.push(GroupPart::new(part, p, si, sys.services[si as usize].commit));
            }
            let replicas: Vec<Replica> = match &cfg.brokers {
                Some(b) => (0..cfg.replication_of(k)).map(|i| Replica::on((part + i) % b.count)).collect(),
                None => Vec::new(),
            };
            // A compacted topic keeps each key's newest record however old.
            let compacted = cfg.compacted(k);
            let (retention, retention_records) = cfg.retention_of(k);
            partitions.push(Partition {
                records: Vec::new(),
                visible_at: Vec::new(),
                partition_in_topic: p,
                visible: 0,
                leader: (!replicas.is_empty()).then_some(0),
                last_leader: (!replicas.is_empty()).then_some(0),
                replicas,
                pending_acks: VecDeque::new(),
                appended_ids: BTreeMap::new(),
                groups,
                retention: retention.filter(|_| !compacted),
                retention_records: retention_records.filter(|_| !compacted),
                compacted,
                newest_by_key: BTreeMap::new(),
            });
        }
    }
    let round_robin = (0..subscribers.len() as u32).map(|k| cfg.round_robin(k).then_some(0)).collect();
    LogTopology { partitions, gparts, service_gps, topic_parts, round_robin }
}

/// What [`log_topology`] lays out (see the fields of [`World`] by these names).
struct LogTopology {
    partitions: Vec<Partition>,
    gparts: Vec<GroupPart>,
    service_gps: Vec<Vec<u32>>,
    topic_parts: Vec<(u32, u32)>,
    round_robin: Vec<Option<u32>>,
}

/// The queue broker's queues, consumers and bindings: each consuming
/// service reads its own queue, or the one it names (shared by every
/// service naming it), bound to the topics it consumes that travel on the
/// queue bus. Only the window is set without a queue bus.
fn queue_topology(
    sys: &System,
    first_node: &[u32],
    topic_bus: &[BusKind],
    cfg: &QueueSettings,
    nodes: usize,
) -> Broker {
    let mut broker = Broker::new(nodes);
    broker.window = cfg.window;
    if sys.queue().is_none() {
        return broker;
    }
    let kinds = sys.names.kind_count();
    broker.bindings = vec![Vec::new(); kinds];
    broker.appended = vec![0; kinds];
    let on_queue = |k: &Kind| topic_bus.get(k.0 as usize) == Some(&BusKind::Queue);
    for (si, s) in sys.services.iter().enumerate() {
        if !s.consumes.iter().any(on_queue) {
            continue;
        }
        let name = s.queue.clone().unwrap_or_else(|| s.name.clone());
        let q = match broker.queues.iter().position(|q| q.name == name) {
            Some(q) => q,
            None => {
                broker.queues.push(Queue::named(name));
                broker.queues.len() - 1
            }
        };
        for i in 0..s.instances {
            let node = first_node[si] + i;
            broker.queues[q].consumers.push(Consumer { node, auto_ack: s.auto_ack, prefetch: s.prefetch });
            broker.queue_of[node as usize] = Some(q as u32);
        }
        for k in s.consumes.iter().filter(|k| on_queue(k)) {
            let bound = &mut broker.bindings[k.0 as usize];
            if !bound.contains(&(q as u32)) {
                bound.push(q as u32);
            }
        }
    }
    broker
}

impl<'s, 't> World<'s, 't> {
    /// The world of `sys` under `seed`, before anything happens: its nodes,
    /// the bus's topology, the fault plan drawn, nothing scheduled.
    fn new(sys: &'s System, seed: u64, tracer: Tracer<'t>) -> Result<Self, SetupError> {
        let (nodes, first_node) = nodes_of(sys, seed)?;
        let subscribers = subscribers(sys);
        let log_cfg = LogSettings::of(sys.log());
        let queue_cfg = QueueSettings::of(sys.queue());
        let topic_bus: Vec<BusKind> = (0..sys.names.kind_count() as u32).map(|k| sys.bus_kind_of(k)).collect();
        let log = log_topology(sys, &subscribers, &topic_bus, &log_cfg);
        let broker = queue_topology(sys, &first_node, &topic_bus, &queue_cfg, nodes.len());
        // The log's brokers, then the queue broker.
        let queue_broker = sys.queue().map(|_| log_cfg.brokers.as_ref().map_or(0, |b| b.count));
        let broker_names = sys.broker_names();
        let plan = draw_plan(sys, seed, &nodes, &broker_names, log_cfg.brokers.is_some())?;
        Ok(World {
            sys,
            now: SimTime::ZERO,
            end: SimTime::ZERO + sys.duration,
            queue: EventQueue::new(),
            arrivals: Arrivals::of(&sys.workloads, seed),
            network: Stream::new(seed, StreamKind::Network, ""),
            calls: Calls::new(nodes.len()),
            hydration: rehydrate::Hydrations::of(sys, nodes.len()),
            parked: vec![BTreeMap::new(); sys.services.len()],
            nodes,
            first_node,
            subscribers,
            eph_latency: latency_of(sys.ephemeral()),
            log_latency: latency_of(sys.log()),
            queue_latency: latency_of(sys.queue()),
            first_bus: BusKind::of(&sys.buses[0].spec),
            round_robin: log.round_robin,
            topic_parts: log.topic_parts,
            partitions: log.partitions,
            gparts: log.gparts,
            inflight: Slab::default(),
            plan,
            stock: BTreeMap::new(),
            links: Vec::new(),
            channels: Channels::default(),
            broker,
            topic_bus,
            queue_broker,
            track_processed: tracks_processed(sys, &log_cfg),
            group_started: sys.services.iter().map(|s| s.starts_at == SimTime::ZERO).collect(),
            service_gps: log.service_gps,
            brokers: broker_names.iter().map(|_| BrokerNode::up()).collect(),
            broker_names,
            log_cfg,
            queue_cfg,
            produce: Produces::default(),
            backlog: Vec::new(),
            sample_every: SimDuration((sys.duration.0 / SAMPLES).max(1)),
            qlink: queue_broker::ClientLink::new(),
            held_publishes: 0,
            dedup: sys.services.iter().map(DedupStore::durable_of).collect(),
            checker: Checker::new(&sys.invariants, sys.names.effect_count(), &entity_kinds(sys))
                .with_nodes(sys.node_services()),
            stats: vec![ServiceStats::default(); sys.services.len()],
            tracer,
            out: Some(Box::default()),
            next_msg: 1,
            next_entity: 1,
            events: 0,
            stop: StopReason::Completed,
            interrupt: None,
            counts: Counts::default(),
            routes: sys.services.iter().map(|s| Route::new(s, seed)).collect(),
            seed,
            series: None,
            scalers: sys.services.iter().map(autoscale::Scaler::of).collect(),
            rebalance_pending: vec![false; sys.services.len()],
        })
    }

    #[inline(always)]
    fn trace(&mut self, kind: RecordKind, node: u32, msg: &Message, aux: u64) {
        self.emit(Record { time: self.now, kind, node, msg: msg.id.0, entity: msg.entity.0, aux });
    }

    /// Every record goes to the trace and to the checker, in the same order.
    #[inline(always)]
    fn emit(&mut self, r: Record) {
        self.tracer.record(r);
        self.checker.observe(&r);
    }

    /// Traces the start or the heal of plan entry `fault`, for the kinds
    /// that leave no other record (crashes and pauses have their own).
    fn trace_fault(&mut self, kind: RecordKind, fault: u32) {
        let e = self.plan.entries[fault as usize];
        match e.kind {
            PlanKind::Slow(n, _) | PlanKind::Skew(n, _) | PlanKind::Deploy(n, _) => {
                self.trace_node(kind, n, u64::from(fault))
            }
            PlanKind::Network(_) | PlanKind::Rewind(..) => self.trace_node(kind, NO_NODE, u64::from(fault)),
            PlanKind::Crash(_) | PlanKind::CrashAt(..) | PlanKind::Pause(_) => {}
        }
    }

    /// Traces a step of a node that concerns no message (crash, restart, commit).
    fn trace_node(&mut self, kind: RecordKind, node: u32, aux: u64) {
        self.emit(Record { time: self.now, kind, node, msg: 0, entity: 0, aux });
    }

    fn setup(&mut self) {
        for (i, w) in self.sys.workloads.iter().enumerate() {
            if let Some(at) = Arrivals::first(w) {
                self.queue.push(at, Ev::Arrival { workload: i as u32 });
            }
        }
        for (si, s) in self.sys.services.iter().enumerate() {
            if s.starts_at > SimTime::ZERO {
                self.queue.push(s.starts_at, Ev::Join { service: si as u32 });
            }
            if let Some(a) = s.autoscale {
                self.queue.push(s.starts_at + a.every, Ev::Autoscale { service: si as u32 });
            }
        }
        for (i, e) in self.plan.entries.iter().enumerate() {
            self.queue.push(e.at, Ev::FaultBegins { fault: i as u32 });
            self.queue.push(e.heal, Ev::FaultHeals { fault: i as u32 });
        }
        for n in 0..self.nodes.len() as u32 {
            self.schedule_relay(n);
        }
        for si in 0..self.sys.services.len() {
            self.rebalance(si as u32);
        }
        for b in 0..self.brokers.len() as u32 {
            self.schedule_flush(b);
        }
        self.backlog = self.broker.queues.iter().map(|q| (format!("queue {}", q.name), Vec::new())).collect();
        for (si, gps) in self.service_gps.iter().enumerate() {
            for k in self.sys.services[si].consumes.iter().filter(|k| on_log(&self.topic_parts, **k)) {
                if !gps.is_empty() {
                    let name = format!("lag {}/{}", self.sys.services[si].name, self.sys.names.kind_name(*k));
                    self.backlog.push((name, Vec::new()));
                }
            }
        }
        if !self.backlog.is_empty() {
            self.queue.push(SimTime::ZERO + self.sample_every, Ev::Sample);
        }
        if self.sys.warmup > SimDuration::ZERO {
            self.queue.push(SimTime::ZERO + self.sys.warmup, Ev::Warmup);
        }
        self.lag_sample_first();
        if self.window_end() < self.end {
            self.queue.push(self.window_end(), Ev::WindowEnd);
        }
        for n in 0..self.nodes.len() as u32 {
            self.schedule_auto_commit(n);
        }
    }

    fn run(&mut self) {
        let events_max = self.sys.limits.events_max;
        while let Some((t, ev)) = self.queue.pop() {
            if t > self.end {
                // Still pending: what it carries is in flight at the end.
                self.queue.push(t, ev);
                break;
            }
            if self.events >= events_max {
                self.stop = StopReason::EventsMax { limit: events_max };
                return;
            }
            if self.events & 0xFFF == 0 {
                if self.queue.len() > EVENTS_PENDING_MAX {
                    self.stop = StopReason::EventsPendingMax { limit: EVENTS_PENDING_MAX as u64 };
                    return;
                }
                if self.interrupt.is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed)) {
                    self.stop = StopReason::Interrupted;
                    return;
                }
            }
            self.now = t;
            self.events += 1;
            match ev {
                Ev::Arrival { workload } => self.arrival(workload),
                Ev::Deliver { node, epoch, slot } => self.deliver(node, epoch, slot),
                Ev::Fetch { node, gp, generation } => self.fetched(node, gp, generation),
                Ev::Done { node, epoch, worker } => self.done(node, epoch, worker),
                Ev::Timer { node, epoch, slot } => self.timer(node, epoch, slot),
                Ev::FaultBegins { fault } => self.fault_began(fault),
                Ev::FaultHeals { fault } => self.fault_healed(fault),
                Ev::Produce { req, generation } => self.produce_arrived(req, generation),
                Ev::ProduceTimeout { req, generation, attempt } => self.produce_timed_out(req, generation, attempt),
                Ev::ProduceAck { req, generation } => self.produce_acked(req, generation),
                Ev::ReplicaFetch { part, replica } => self.replica_fetched(part, replica),
                Ev::Flush { broker, epoch } => self.flush(broker, epoch),
                Ev::Sample => self.sample(),
                Ev::OutboxPoll { node, epoch } => self.relay(node, epoch),
                Ev::CallArrive { call, generation, node } => self.call_arrived(call, generation, node),
                Ev::CallReply { call, generation, ok } => self.call_replied(call, generation, ok),
                Ev::CallTimeout { call, generation } => self.call_timed_out(call, generation),
                Ev::CallRetry { call, generation } => self.call_retry(call, generation),
                Ev::AutoCommit { node, epoch } => self.auto_commit(node, epoch),
                Ev::QueueDeliver { slot, generation } => self.queue_delivered(slot, generation),
                Ev::AckTimeout { slot, generation } => self.ack_timed_out(slot, generation),
                Ev::QueueReconnect { node, epoch } => self.queue_reconnect(node, epoch),
                Ev::QueueConfirm { seq } => self.confirmed(seq),
                Ev::QueueBrokerBack { epoch } => self.queue_broker_back(epoch),
                Ev::Join { service } => self.join(service),
                Ev::SessionExpired { node, epoch } => self.session_expired(node, epoch),
                Ev::Publish { node, epoch, slot } => self.publish_arrived(node, epoch, slot),
                Ev::IsrCheck { part, replica } => self.isr_check(part, replica),
                Ev::BrokerFence { broker, generation } => self.broker_fence(broker, generation),
                Ev::Autoscale { service } => self.autoscale(service),
                Ev::ScaledUp { node, epoch } => self.scaled_up(node, epoch),
                Ev::Rebalance { service } => self.joined_rebalance(service),
                Ev::Hydration { node, epoch, attempt, step } => self.hydration_event(node, (epoch, attempt), step),
                Ev::LagSample { check } => self.lag_sample(check),
                Ev::Warmup => self.warmed_up(),
                Ev::WindowEnd => self.window_ended(),
            }
            if !matches!(self.stop, StopReason::Completed) {
                return;
            }
        }
        self.now = self.end;
    }

    /// The instance of `service` that takes `key`, by the service's
    /// routing, skipping instances that are down: by key, the key's home
    /// instance if it is up, else the next one up (sticky, but avoiding the
    /// dead); round robin, the next in turn; at random, one drawn from the
    /// service's routing stream, else the next one up; least loaded, the
    /// one with the fewest messages at work or waiting (the next in turn
    /// among equals).
    #[inline]
    fn pick_up(&mut self, service: u32, key: u64) -> Option<u32> {
        let s = &self.sys.services[service as usize];
        if s.autoscale.is_some() {
            return self.pick_scaled(service, key);
        }
        let n = s.instances;
        let first = self.first_node[service as usize];
        let start = match s.routing {
            Routing::ByKey => (key % u64::from(n)) as u32,
            Routing::RoundRobin => self.routes[service as usize].next(n),
            Routing::Random => self.routes[service as usize].stream.below(u64::from(n)) as u32,
            Routing::LeastLoaded => {
                // Among equals, the next in turn (so ties spread evenly).
                let turn = self.routes[service as usize].next(n);
                let up = (0..n).map(|i| first + (turn + i) % n).filter(|&x| self.nodes[x as usize].up);
                return up.min_by_key(|&x| self.nodes[x as usize].load());
            }
        };
        (0..n).map(|i| first + (start + i) % n).find(|&x| self.nodes[x as usize].up)
    }

    /// The payload of the request that creates `entity` (the `nth` of
    /// workload `w`, keyed `key`).
    fn request_payload(&self, w: &WorkloadSpec, entity: EntityId, key: u64, nth: u64) -> Payload {
        let mut p = Payload { version: w.version, ..Payload::default() };
        for &(slot, value) in &w.fields {
            p.fields[usize::from(slot) % FIELDS] = value.of(self.seed, entity.0, nth, key, slot);
        }
        p
    }

    /// Workload `wi`'s next entity arrives at its entry service.
    fn arrival(&mut self, wi: u32) {
        let limit = self.sys.limits.entities_max;
        if self.next_entity > limit {
            self.stop = StopReason::EntitiesMax { limit };
            return;
        }
        let w = &self.sys.workloads[wi as usize];
        let entity = EntityId(self.next_entity);
        self.next_entity += 1;
        self.checker.created(entity, self.now, wi as u8);
        let key = self.arrivals[wi as usize].key(w);
        let payload = self.request_payload(w, entity, key, self.arrivals[wi as usize].arrived);
        let msg = self.new_message(w.request, key, entity, MsgId(0), payload);
        self.counts.requests += 1;
        self.trace(RecordKind::Request, NO_NODE, &msg, key);
        match self.pick_up(w.target as u32, key) {
            Some(n) => self.enqueue(n, msg, Source::Request),
            None => {
                self.counts.rejected += 1;
                self.trace(RecordKind::Rejected, NO_NODE, &msg, 0);
            }
        }
        if let Some(next) = self.arrivals[wi as usize].next(w, self.now) {
            self.queue.push(next, Ev::Arrival { workload: wi });
        }
    }

    #[inline]
    fn new_message(&mut self, kind: Kind, key: u64, entity: EntityId, cause: MsgId, payload: Payload) -> Message {
        let id = MsgId(self.next_msg);
        self.next_msg += 1;
        let Payload { version, fields } = payload;
        Message { id, kind, key, entity, cause, sent_at: self.now, version, fields }
    }

    /// A message arrives at node `n`: start it on a free worker, or queue it.
    fn enqueue(&mut self, n: u32, msg: Message, source: Source) {
        self.enqueue_since(n, msg, source, self.now);
    }

    /// [`World::enqueue`] of a message the service could have had since
    /// `available` (it waited in a broker's queue or in the log): the
    /// service's wait and latency count from then.
    fn enqueue_since(&mut self, n: u32, msg: Message, source: Source, available: SimTime) {
        let job = Job { msg, source, arrived: available, snapshot: NO_SNAPSHOT, called: CALL_NONE };
        self.trace(RecordKind::Enqueued, n, &job.msg, u64::from(job.msg.kind.0));
        let node = &mut self.nodes[n as usize];
        // A paused process takes messages into its buffers but works on none;
        // nor does one waiting for its snapshot.
        if !(node.paused | node.hydrating)
            && let Some(w) = node.take_worker(self.now)
        {
            self.start(n, w, job);
            return;
        }
        // Log records are bounded by fetch_max and timers by the handlers
        // that set them; only pushed messages and requests can overflow.
        let bounded = matches!(job.source, Source::Request | Source::Push);
        if !bounded || node.fifo.len() < node.capacity {
            node.account_fifo(self.now);
            node.fifo.push_back(job);
            return;
        }
        match job.source {
            Source::Request => {
                self.counts.rejected += 1;
                self.trace(RecordKind::Rejected, n, &job.msg, 1);
            }
            _ => self.lose(n, &job.msg, LossReason::QueueFull),
        }
    }

    #[inline]
    fn start(&mut self, n: u32, worker: u32, mut job: Job) {
        let si = self.nodes[n as usize].service;
        if self.sys.services[si as usize].reserves
            && let Some(r) = self.sys.services[si as usize].behaviour.reserve(&job.msg)
        {
            let epoch = self.nodes[n as usize].epoch;
            let row =
                self.stock.entry((si, job.msg.key)).or_insert(StockRow { value: r.initial, ..StockRow::default() });
            if r.control == Control::Lock {
                if row.locked {
                    // Wait for the lock without holding a worker.
                    row.waiters.push_back((n, epoch, job));
                    let node = &mut self.nodes[n as usize];
                    node.account_fifo(self.now);
                    match node.fifo.pop_front() {
                        Some(next) => self.start(n, worker, next),
                        None => node.free_worker(worker, self.now),
                    }
                    return;
                }
                row.locked = true;
            }
            job.snapshot = u64::from(row.value) << 32 | u64::from(row.version);
        }
        let node = &mut self.nodes[n as usize];
        let stats = &mut self.stats[node.service as usize];
        let wait = (self.now - job.arrived).0;
        stats.wait.record(wait);
        stats.waited += u64::from(wait > 0);
        let service = &self.sys.services[node.service as usize];
        let mut work = service.behaviour.work(&job.msg).sample(&mut node.stream);
        if node.slow.product() != 1.0 {
            work = SimDuration(crate::sim::dist::to_nanos(work.0 as f64 * node.slow.product()));
        }
        node.busy[worker as usize] = Some(job);
        let epoch = node.epoch;
        self.queue.push(self.now + work, Ev::Done { node: n, epoch, worker });
    }

    fn lose(&mut self, n: u32, msg: &Message, reason: LossReason) {
        self.counts.lost[reason as usize] += 1;
        if let Some(s) = self.series.as_mut() {
            let i = s.slot(self.now);
            s.lost[i] += 1;
        }
        self.trace(RecordKind::Lost, n, msg, crate::trace::loss_aux(reason, msg.kind.0));
    }

    fn done(&mut self, n: u32, epoch: u32, worker: u32) {
        let node = &mut self.nodes[n as usize];
        if node.epoch != epoch {
            return; // the worker died with its node; the job is already accounted for
        }
        if node.paused {
            // Stalled mid-work: it finishes when the process resumes.
            let at = node.paused_until;
            self.queue.push(at, Ev::Done { node: n, epoch, worker });
            return;
        }
        let Some(job) = node.busy[worker as usize].take() else { return };
        let si = node.service as usize;
        let service = &self.sys.services[si];
        if service.calls
            && job.called == CALL_NONE
            && service.behaviour.call(&job.msg).is_some()
            && !(service.dedup.is_some() && self.dedup_contains(n, si, job.msg.id.0))
        {
            return self.begin_call(n, worker, job);
        }
        // A passing failure (a deadlock, a database timeout), drawn per attempt.
        let flaked = service.flaky && {
            let p = service.behaviour.flaky(&job.msg);
            p > 0.0 && self.nodes[n as usize].stream.unit() < p
        };
        // An idempotent consumer checks and records the id in the same step
        // as the handler's effects: they commit together or not at all.
        let duplicate = service.dedup.is_some() && self.dedup_seen(n, si, job.msg.id.0);
        let reserved = if job.snapshot == NO_SNAPSHOT || duplicate {
            None
        } else {
            match self.settle_reservation(n, si, &job) {
                Some(got) => Some(got),
                None => {
                    // Optimistic conflict: the key changed since it was read; do it again.
                    self.counts.conflicts += 1;
                    return self.start(
                        n,
                        worker,
                        Job { arrived: self.now, snapshot: NO_SNAPSHOT, called: CALL_NONE, ..job },
                    );
                }
            }
        };
        let mut out = self.out.take().expect("the out-buffer is back after each handler");
        out.reset(job.msg.payload());
        if flaked {
            out.fail();
        } else if !duplicate {
            let called = calls::outcome(job.called);
            service.behaviour.handle(&self.context(n, reserved, called), &job.msg, &mut out);
        }
        self.count_handled(n, si, &job);
        let failed = out.failed;
        if failed && service.dedup.is_some() {
            // The handler's transaction rolls back, the id's record with it.
            self.dedup_forget(n, si, job.msg.id.0);
        }
        self.trace_outcome(n, &job.msg, duplicate, &out);
        // A crash point may cut the completion at its seam: the steps before
        // it happened, the ones after it did not.
        let hit = if self.plan.crash_points.is_empty() { None } else { self.crash_point_hit(n, &job.msg) };
        let seam = hit.map(|h| h.0);
        if seam == Some(Seam::AfterDedup) {
            self.out = Some(out);
            return self.crash_at(n, hit, &job.msg);
        }
        if !duplicate && !failed {
            let outbox = self.sys.services[si].outbox.is_some();
            for (k, &cmd) in out.commands.iter().enumerate() {
                if seam == Some(Seam::AfterStateWrite) && !outbox && matches!(cmd, Command::Emit { .. }) {
                    // Every message the handler meant to publish is never sent.
                    for &rest in &out.commands[k..] {
                        if let Command::Emit { kind, key, payload } = rest {
                            let msg = self.new_message(kind, key, job.msg.entity, job.msg.id, payload);
                            self.lose(n, &msg, LossReason::Unpublished);
                        }
                    }
                    self.out = Some(out);
                    return self.crash_at(n, hit, &job.msg);
                }
                self.apply(n, &job.msg, cmd);
            }
        }
        self.out = Some(out);
        if seam.is_some() {
            // After the state change with nothing published, or after
            // everything: either way before the input is acknowledged.
            return self.crash_at(n, hit, &job.msg);
        }
        if failed && self.failed(n, worker, job) {
            return;
        }
        self.settle(n, &job);
        let node = &mut self.nodes[n as usize];
        node.account_fifo(self.now);
        match node.fifo.pop_front() {
            Some(next) => {
                self.start(n, worker, next);
                self.refill(n);
            }
            None => node.free_worker(worker, self.now),
        }
        let node = &self.nodes[n as usize];
        if node.fetch_blocked | node.draining | node.catching_up {
            self.room_freed(n);
        }
    }

    /// How node `n`'s handling of `msg` ended, in the trace: skipped as a
    /// duplicate, failed, ignored (a stale deadline explains nothing: the
    /// checker tells them apart) or handled; after what was done about a
    /// version it does not read, if that was the case.
    #[inline(always)]
    fn trace_outcome(&mut self, n: u32, msg: &Message, duplicate: bool, out: &Out) {
        if out.unreadable != 0 {
            self.unreadable(n, msg, out.unreadable);
        }
        let kind = if duplicate {
            self.counts.duplicates_skipped += 1;
            self.series_count(|s, i| s.duplicates[i] += 1);
            RecordKind::Skipped
        } else if out.failed {
            RecordKind::Failed
        } else if out.ignored {
            RecordKind::Ignored
        } else {
            RecordKind::Handled
        };
        self.trace(kind, n, msg, u64::from(msg.kind.0));
    }

    /// A worker of node `n` is free and a fetch was blocked on room, or
    /// the node drains, or catches up after its re-hydration: fetch again,
    /// leave if nothing is left, or see whether it has caught up.
    #[inline(never)]
    fn room_freed(&mut self, n: u32) {
        if self.nodes[n as usize].fetch_blocked {
            self.try_fetch(n);
        }
        if self.nodes[n as usize].catching_up {
            self.check_caught_up(n);
        }
        if self.nodes[n as usize].draining {
            self.try_retire(n);
        }
    }

    /// Ends job's stock reservation: `Some(true)` if it took a unit,
    /// `Some(false)` if none was left, `None` on an optimistic conflict.
    /// Releases the lock and lets the next waiter start.
    fn settle_reservation(&mut self, n: u32, si: usize, job: &Job) -> Option<bool> {
        let r = self.sys.services[si].behaviour.reserve(&job.msg)?;
        let (value, version) = ((job.snapshot >> 32) as u32, job.snapshot as u32);
        let row = self.stock.get_mut(&(si as u32, job.msg.key))?;
        if r.control == Control::Optimistic && row.version != version {
            return None;
        }
        let got = value > 0;
        if got {
            // Without control this writes what was read minus one: a lost update.
            row.value = value - 1;
            row.version = row.version.wrapping_add(1);
            self.checker.reserved(si, job.msg.key, r.initial, job.msg.entity);
        }
        if r.control == Control::Lock {
            self.release_lock(si as u32, job.msg.key);
        }
        let _ = n;
        Some(got)
    }

    /// Releases a key's lock; the first waiter whose node is still the same
    /// incarnation takes it and starts.
    fn release_lock(&mut self, si: u32, key: u64) {
        let Some(row) = self.stock.get_mut(&(si, key)) else { return };
        row.locked = false;
        while let Some((n, epoch, job)) = row.waiters.pop_front() {
            if self.nodes[n as usize].epoch != epoch {
                continue; // died waiting
            }
            let node = &mut self.nodes[n as usize];
            match node.take_worker(self.now) {
                Some(w) => self.start(n, w, job),
                None => {
                    node.account_fifo(self.now);
                    node.fifo.push_front(job);
                }
            }
            return;
        }
    }

    /// The bus that carries topic `kind`.
    #[inline]
    fn bus_of(&self, kind: Kind) -> BusKind {
        self.topic_bus.get(kind.0 as usize).copied().unwrap_or(self.first_bus)
    }

    /// A plan entry as the outcome lists it.
    fn applied(&self, e: &PlanEntry) -> AppliedFault {
        let (kind, node) = match e.kind {
            PlanKind::Crash(t) => ("crash".to_string(), self.target_name(t)),
            PlanKind::CrashAt(n, seam) => (format!("crash at {}", seam.label()), self.nodes[n as usize].name.clone()),
            PlanKind::Slow(n, factor) => (format!("slow x{factor}"), self.nodes[n as usize].name.clone()),
            PlanKind::Skew(n, factor) => (format!("clock skew x{factor}"), self.nodes[n as usize].name.clone()),
            PlanKind::Pause(n) => ("pause".to_string(), self.nodes[n as usize].name.clone()),
            PlanKind::Deploy(n, v) => (format!("deploy of v{v}"), self.nodes[n as usize].name.clone()),
            PlanKind::Rewind(si, to, dropped) => {
                let dropped = if dropped { ", tables dropped" } else { "" };
                (format!("rewind to {}{dropped}", to.label()), self.sys.services[si as usize].name.clone())
            }
            PlanKind::Network(i) => {
                let kind = if self.plan.network[i as usize].blocked { "partition" } else { "link" };
                (kind.to_string(), self.describe_link(i))
            }
        };
        AppliedFault { kind, node, from_ns: e.at.0.min(self.now.0), until_ns: e.heal.0.min(self.now.0) }
    }

    /// A crash's target by name: `order-1`, `broker-2`.
    fn target_name(&self, t: Target) -> String {
        match t {
            Target::Node(n) => self.nodes[n as usize].name.clone(),
            Target::Broker(b) => self.broker_names[b as usize].clone(),
        }
    }

    /// `groups[0] -> groups[1]` for network fault `i`, by node names.
    fn describe_link(&self, i: u32) -> String {
        let l = &self.plan.network[i as usize];
        let name = |n: &u32| match *n {
            BUS => "bus".to_string(),
            ANY => "all".to_string(),
            n => match self.nodes.get(n as usize) {
                Some(node) => node.name.clone(),
                None => self.target_name(Target::Broker(n - self.nodes.len() as u32)),
            },
        };
        let side = |v: &Vec<u32>| v.iter().map(name).collect::<Vec<_>>().join(",");
        let arrow = if l.both_ways { "<->" } else { "->" };
        format!("{} {arrow} {}", side(&l.from), side(&l.to))
    }

    /// Counts message `msg` at node `n` for its crash points; the seam to
    /// crash at and for how long, if one fires.
    fn crash_point_hit(&mut self, n: u32, msg: &Message) -> Option<(Seam, SimDuration, u32)> {
        let hit = self.crash_point_hit_at(n, msg, |s| s != Seam::InOutboxRelay)?;
        if hit.0 != Seam::Any {
            return Some(hit);
        }
        // Any seam of the handler's completion that this node has.
        let dedup = self.sys.services[self.nodes[n as usize].service as usize].dedup.is_some();
        let seams: &[Seam] = if dedup {
            &[Seam::AfterDedup, Seam::AfterStateWrite, Seam::AfterPublish]
        } else {
            &[Seam::AfterStateWrite, Seam::AfterPublish]
        };
        Some((seams[self.plan.draws.below(seams.len() as u64) as usize], hit.1, hit.2))
    }

    fn crash_point_hit_at(
        &mut self,
        n: u32,
        _msg: &Message,
        seams: impl Fn(Seam) -> bool,
    ) -> Option<(Seam, SimDuration, u32)> {
        let mut hit = None;
        for i in 0..self.plan.crash_points.len() {
            let cp = &mut self.plan.crash_points[i];
            if cp.node != n || !seams(cp.seam) {
                continue;
            }
            cp.seen += 1;
            let fires = match cp.nth {
                Some(nth) => cp.seen == nth,
                None => cp.probability > 0.0 && self.plan.draws.unit() < cp.probability,
            };
            if fires && hit.is_none() {
                hit = Some(i);
            }
        }
        let i = hit?;
        let cp = &mut self.plan.crash_points[i];
        cp.fired += 1;
        Some((cp.seam, cp.down_for, cp.spec))
    }

    /// Node `n` crashes now, at `seam`, while handling `msg`; it restarts
    /// after its crash point's `down_for`.
    fn crash_at(&mut self, n: u32, hit: Option<(Seam, SimDuration, u32)>, msg: &Message) {
        let Some((seam, down_for, spec)) = hit else { return };
        self.trace(RecordKind::CrashPoint, n, msg, seam as u64);
        self.hold_down(Target::Node(n));
        let fault = self.plan.entries.len() as u32;
        let (at, heal) = (self.now, self.now + down_for);
        self.plan.entries.push(PlanEntry { at, heal, kind: PlanKind::CrashAt(n, seam), spec });
        self.queue.push(self.now + down_for, Ev::FaultHeals { fault });
    }

    /// Sets node `n`'s next outbox poll, if its service has an outbox.
    fn schedule_relay(&mut self, n: u32) {
        let node = &self.nodes[n as usize];
        if let Some(poll) = self.sys.services[node.service as usize].outbox
            && node.up
        {
            let epoch = node.epoch;
            self.queue.push(self.now + poll.max(SimDuration::NANOSECOND), Ev::OutboxPoll { node: n, epoch });
        }
    }

    /// The outbox relay publishes the waiting messages in order, marking each
    /// sent after publishing it (a crash between the two publishes it again
    /// after the restart: at-least-once).
    fn relay(&mut self, n: u32, epoch: u32) {
        let node = &self.nodes[n as usize];
        if node.epoch != epoch || !node.up {
            return;
        }
        while let Some(&msg) = self.nodes[n as usize].outbox.front() {
            self.publish(n, msg);
            if !self.plan.crash_points.is_empty()
                && let Some(hit) = self.crash_point_hit_at(n, &msg, |s| s == Seam::InOutboxRelay)
            {
                return self.crash_at(n, Some(hit), &msg);
            }
            self.nodes[n as usize].outbox.pop_front();
        }
        self.schedule_relay(n);
        if self.nodes[n as usize].draining {
            self.try_retire(n);
        }
    }

    /// The handler finished `job`: the ack verb, by where it came from. A
    /// call is answered; a queue delivery is acked (it leaves the queue and
    /// its credit frees up); a log record is processed, and committed by
    /// the policies that commit after processing.
    #[inline]
    fn settle(&mut self, n: u32, job: &Job) {
        match job.source {
            Source::Call { .. } => self.reply(n, job.source, true),
            Source::Queue { slot, generation } => {
                if slot != AUTO_ACKED && self.broker.is_live(slot, generation) {
                    let d = self.broker.settle(slot);
                    self.dispatch(d.queue);
                }
            }
            Source::Log { gp, generation, offset } => self.log_processed(n, gp, generation, offset),
            Source::Request | Source::Push | Source::Timer => {}
        }
    }

    /// The handler failed on `job`. A queue consumer nacks it (requeued at
    /// the head, or dead-lettered at the delivery limit); a log consumer
    /// retries it in place, so it returns true after restarting the job on
    /// the same worker; anything else drops it.
    fn failed(&mut self, n: u32, worker: u32, job: Job) -> bool {
        match job.source {
            Source::Queue { slot, generation } if slot != AUTO_ACKED => {
                if self.broker.is_live(slot, generation) {
                    let d = self.broker.settle(slot);
                    self.give_back(&d);
                    self.dispatch(d.queue);
                }
                false
            }
            Source::Log { gp, generation, .. } if self.gparts[gp as usize].generation == generation => {
                self.start(n, worker, Job { arrived: self.now, called: CALL_NONE, ..job });
                true
            }
            Source::Log { .. } => false,
            Source::Queue { .. } | Source::Push => {
                self.lose(n, &job.msg, LossReason::FailedDropped);
                false
            }
            Source::Call { .. } => {
                self.reply(n, job.source, false);
                false
            }
            Source::Request | Source::Timer => false,
        }
    }

    /// True if the idempotent consumer of service `si` (at node `n`) has
    /// handled message `id` before, without remembering it.
    fn dedup_contains(&self, n: u32, si: usize, id: u64) -> bool {
        match (&self.dedup[si], &self.nodes[n as usize].dedup) {
            (Some(store), _) | (None, Some(store)) => store.set.contains(&id),
            (None, None) => false,
        }
    }

    /// The idempotent consumer of service `si` (at node `n`) forgets `id`.
    fn dedup_forget(&mut self, n: u32, si: usize, id: u64) {
        match (&mut self.dedup[si], &mut self.nodes[n as usize].dedup) {
            (Some(store), _) | (None, Some(store)) => store.forget(id),
            (None, None) => {}
        }
    }

    /// True if the idempotent consumer of service `si` (at node `n`) has
    /// handled message `id` before; remembers it otherwise.
    fn dedup_seen(&mut self, n: u32, si: usize, id: u64) -> bool {
        let store = match &mut self.dedup[si] {
            Some(shared) => shared,
            None => match &mut self.nodes[n as usize].dedup {
                Some(own) => own,
                None => return false,
            },
        };
        store.seen(id)
    }

    fn apply(&mut self, n: u32, input: &Message, cmd: Command) {
        match cmd {
            Command::Accept => {
                self.trace(RecordKind::Accepted, n, input, 0);
            }
            Command::Emit { kind, key, payload } => {
                if self.checker.watches_kinds {
                    self.checker.emitted(input.entity, kind, self.now);
                }
                let msg = self.new_message(kind, key, input.entity, input.id, payload);
                if self.sys.services[self.nodes[n as usize].service as usize].outbox.is_some() {
                    self.nodes[n as usize].outbox.push_back(msg);
                    self.trace(RecordKind::Outboxed, n, &msg, u64::from(msg.kind.0));
                } else {
                    self.publish(n, msg);
                }
            }
            Command::Effect(e) => {
                self.trace(RecordKind::Effect, n, input, u64::from(e.0));
            }
            Command::Terminal => {
                let latency = self.checker.terminal(input.entity, self.now);
                if let (Some(latency), Some(s)) = (latency, self.series.as_mut()) {
                    let i = s.slot(self.now);
                    s.completed[i] += 1;
                    s.latency[i].record(latency.0);
                }
                self.trace(RecordKind::Terminal, n, input, 0);
            }
            Command::Put { durable, key, value } => self.put(n, (durable, false), key, value),
            Command::Row { durable, key, value } => self.put(n, (durable, true), key, value),
            Command::Write { table, key, version, value } => {
                self.write_row(n, (table, key), (version, value), Some(input.id.0))
            }
            Command::Timer { after, tag } => {
                let after = self.skewed(n, after);
                let msg = self.new_message(Kind::TIMER, tag, input.entity, input.id, input.payload());
                let slot = self.inflight.insert(msg);
                // Kept until it fires: durable ones are set again at a
                // restart, those in memory are lost with a crash.
                let node = &mut self.nodes[n as usize];
                node.timers.insert(msg.id.0, (self.now + after, msg));
                let epoch = node.epoch;
                self.queue.push(self.now + after, Ev::Timer { node: n, epoch, slot });
            }
            Command::Transition { from, to } => {
                self.trace(RecordKind::Transition, n, input, u64::from(from) << 32 | u64::from(to));
                if let Some(other) = self.state_elsewhere(n, input.entity) {
                    self.trace(RecordKind::SplitState, n, input, u64::from(other));
                }
            }
        }
    }

    fn publish(&mut self, from: u32, msg: Message) {
        self.counts.published += 1;
        self.trace(RecordKind::Published, from, &msg, u64::from(msg.kind.0));
        // A queue broker and an ideal log broker are reached over the
        // producer's connection: faults on it hold, delay or lose what it sends.
        // (No fault active, the usual case: nothing to ask.)
        if (!self.links.is_empty() || self.held_publishes > 0)
            && self.bus_of(msg.kind).connected()
            && self.held_on_connection(from, msg)
        {
            return;
        }
        self.publish_at_broker(from, msg);
    }

    /// `msg` from `from` crosses the producer's connection to the broker,
    /// a reliable one: a faulty link delays it (resent), a partition holds
    /// it until the heal, unless the connection does not outlive the
    /// partition (a queue's heartbeat) or the producer gives up first (a
    /// log's delivery timeout): then it is lost. It never overtakes an
    /// earlier publish on the connection. True if it is held or lost; false
    /// if it reaches the broker now.
    fn held_on_connection(&mut self, from: u32, msg: Message) -> bool {
        let (c, block) = self.reliable(from, BUS);
        if let Some((began, heal)) = block {
            let gives_up = match self.bus_of(msg.kind) {
                // The connection's heartbeat times out: it closes.
                BusKind::Queue => heal - began > self.queue_cfg.heartbeat,
                BusKind::Log { brokers: false } => heal - self.now > self.log_cfg.delivery_timeout,
                // Not reached over a connection (`BusKind::connected`).
                BusKind::Ephemeral | BusKind::Log { brokers: true } => false,
            };
            if gives_up {
                self.lose(from, &msg, LossReason::ProducerGaveUp);
                return true;
            }
        }
        let at = self.channels.arrival(from, BUS, self.now + c.delay) + c.held;
        if at == self.now {
            return false;
        }
        let slot = self.inflight.insert(msg);
        self.held_publishes += 1;
        let epoch = self.nodes[from as usize].epoch;
        self.queue.push(at, Ev::Publish { node: from, epoch, slot });
        true
    }

    /// A publish held on its producer's connection reaches the broker,
    /// unless the producer crashed meanwhile (its client's buffer died with it).
    fn publish_arrived(&mut self, n: u32, epoch: u32, slot: u32) {
        let msg = self.inflight.take(slot);
        self.held_publishes -= 1;
        if self.nodes[n as usize].epoch != epoch {
            return self.lose(n, &msg, LossReason::CrashedWhileHeld);
        }
        self.publish_at_broker(n, msg);
    }

    /// `msg` from `from` reaches the bus: queued, appended, or (ephemeral)
    /// pushed to the subscribers up now.
    fn publish_at_broker(&mut self, from: u32, msg: Message) {
        // A kind nobody consumes ends its entity's path here (`check` warns).
        if self.subscribers.get(msg.kind.0 as usize).is_none_or(Vec::is_empty) {
            self.checker.setback(msg.entity, crate::check::SETBACK_UNCONSUMED);
        }
        match self.bus_of(msg.kind) {
            BusKind::Ephemeral => self.ephemeral_publish(from, msg),
            BusKind::Log { brokers } => {
                if self.subscribers.get(msg.kind.0 as usize).is_none() {
                    return; // not a topic: nowhere to append it
                }
                let part = self.partition_of(&msg);
                if brokers { self.produce(msg, part, from) } else { self.log_append(msg, part) }
            }
            BusKind::Queue => self.queue_publish(from, msg),
        }
    }

    fn timer(&mut self, n: u32, epoch: u32, slot: u32) {
        let msg = self.inflight.take(slot);
        let node = &mut self.nodes[n as usize];
        if node.epoch == epoch && node.up {
            node.timers.remove(&msg.id.0);
            self.enqueue(n, msg, Source::Timer);
        }
    }

    /// A restarted node with durable timers sets again those that had not
    /// fired; one already due fires at once.
    fn rearm_timers(&mut self, n: u32) {
        let node = &self.nodes[n as usize];
        if node.timers.is_empty() {
            return;
        }
        // Due order, then id: the order in which they would have fired.
        let mut pending: Vec<(SimTime, Message)> = node.timers.values().copied().collect();
        pending.sort_by_key(|(due, m)| (*due, m.id));
        let epoch = node.epoch;
        for (due, msg) in pending {
            let slot = self.inflight.insert(msg);
            self.queue.push(due.max(self.now), Ev::Timer { node: n, epoch, slot });
        }
    }

    /// Counts something in the current interval of the series, if measured.
    #[inline]
    fn series_count(&mut self, count: impl FnOnce(&mut SeriesAcc, usize)) {
        if let Some(s) = self.series.as_mut() {
            let i = s.slot(self.now);
            count(s, i);
        }
    }

    /// Node `n` crashes. Each part of it goes down in this order, which
    /// fixes the trace and the random draws: the process (its work, its
    /// buffers, the stock locks its work held, its memory, its calls and
    /// connections), its consumer-group partitions, the crash record, its
    /// timers in memory, its queue connection, and last what it held, each
    /// message by where it came from.
    fn crash(&mut self, n: u32) {
        if !self.nodes[n as usize].up {
            return;
        }
        let held = self.crash_process(n);
        self.crash_log_consumer(n, &held);
        self.trace_node(RecordKind::Crash, n, 0);
        self.drop_volatile_timers(n, LossReason::CrashedWhileHeld);
        // Its log partitions were handed back above, before the crash record.
        if self.queue_broker.is_some() {
            self.crash_queue_consumer(n);
        }
        self.drop_held(n, held);
        if self.nodes[n as usize].draining {
            // Removed while it drained: it never comes back.
            self.retired(n);
        }
    }

    /// The process of node `n` dies: returns the jobs it was working on and
    /// those waiting in its buffers; releases the stock locks its work held
    /// and forgets its memory, its dedup window, its calls and its channels.
    fn crash_process(&mut self, n: u32) -> Vec<Job> {
        let node = &mut self.nodes[n as usize];
        node.up = false;
        node.epoch += 1;
        let mut held: Vec<Job> = node.busy.iter_mut().filter_map(Option::take).collect();
        let si = node.service;
        // Locks held by work in progress are released (a lease that ends).
        if self.sys.services[si as usize].reserves {
            for job in &held {
                if job.snapshot != NO_SNAPSHOT
                    && self.sys.services[si as usize]
                        .behaviour
                        .reserve(&job.msg)
                        .is_some_and(|r| r.control == Control::Lock)
                {
                    self.release_lock(si, job.msg.key);
                }
            }
        }
        let node = &mut self.nodes[n as usize];
        node.account_fifo(self.now);
        held.extend(node.fifo.drain(..));
        node.busy_area = node.busy_until(self.now);
        node.free = (0..node.busy.len() as u32).rev().collect();
        node.volatile = Stores::default();
        self.calls.sites[n as usize].clear();
        let node = &mut self.nodes[n as usize];
        if let Some(d) = &mut node.dedup {
            *d = DedupStore::new(d.window as u32);
        }
        node.outstanding = 0;
        node.fetch_blocked = false;
        node.queue_arrival = SimTime::ZERO;
        self.channels.close(n);
        held
    }

    /// Timers in memory die with node `n` (a crash, or its removal: `reason`);
    /// durable ones are set again when it starts again.
    fn drop_volatile_timers(&mut self, n: u32, reason: LossReason) {
        let si = self.nodes[n as usize].service;
        if !self.sys.services[si as usize].durable_timers {
            let timers = std::mem::take(&mut self.nodes[n as usize].timers);
            for (_, msg) in timers.values() {
                self.lose(n, msg, reason);
            }
        }
    }

    /// What node `n` held when it crashed, each by where it came from.
    fn drop_held(&mut self, n: u32, held: Vec<Job>) {
        for job in held {
            match job.source {
                Source::Push => self.lose(n, &job.msg, LossReason::CrashedWhileHeld),
                Source::Queue { slot: AUTO_ACKED, .. } => self.lose(n, &job.msg, LossReason::AutoAck),
                // Back in the broker's queue, or pending there.
                Source::Queue { .. } => {}
                Source::Request => self.trace(RecordKind::Dropped, n, &job.msg, 0),
                // Log records stay in the log (those committed unprocessed
                // were counted above); timers are volatile by contract.
                Source::Log { .. } | Source::Timer => {}
                // The caller times out.
                Source::Call { .. } => {}
            }
        }
    }

    /// A late service is deployed: its instances start, and a new consumer
    /// group begins at the start or the end of each partition.
    fn join(&mut self, service: u32) {
        let first = self.first_node[service as usize];
        if !self.group_started[service as usize] && self.sys.services[service as usize].start_latest {
            for &g in &self.service_gps[service as usize] {
                let gp = &mut self.gparts[g as usize];
                let end = self.partitions[gp.part as usize].visible;
                (gp.position, gp.committed, gp.high_water) = (end, end, end);
                gp.done.clear();
            }
        }
        self.group_started[service as usize] = true;
        for n in first..first + self.sys.services[service as usize].initial_instances() {
            let node = &mut self.nodes[n as usize];
            node.joined = true;
            // A crash that holds it now keeps it down until its heal.
            node.up = node.down.free();
            node.member = node.up;
            self.trace_node(RecordKind::Joined, n, 0);
            if self.nodes[n as usize].up {
                self.begin_hydration(n);
            }
        }
        self.rebalance(service);
        for n in first..first + self.sys.services[service as usize].initial_instances() {
            self.try_fetch(n);
            self.schedule_auto_commit(n);
            if let Some(q) = self.broker.queue_of[n as usize] {
                self.dispatch(q);
            }
        }
    }

    /// Sets each bounded-lag invariant's first sample.
    fn lag_sample_first(&mut self) {
        let lags = self.sys.invariants.iter().filter_map(|i| match i {
            InvariantSpec::BoundedLag { every, .. } => Some(*every),
            _ => None,
        });
        for (check, every) in lags.enumerate() {
            self.queue.push(SimTime::ZERO + every, Ev::LagSample { check: check as u32 });
        }
    }

    /// Bounded-lag invariant `check` samples its consumer's lag (records of
    /// the partitions its group reads, visible and not committed, and its
    /// queue's messages not yet settled) and the entity of the oldest of them,
    /// then sets its next sample.
    fn lag_sample(&mut self, check: u32) {
        let lag_of = |i: &InvariantSpec| match *i {
            InvariantSpec::BoundedLag { service, every, .. } => Some((service, every)),
            _ => None,
        };
        let Some((si, every)) = self.sys.invariants.iter().filter_map(lag_of).nth(check as usize) else { return };
        let (mut lag, mut oldest) = (0u64, (SimTime::NEVER, EntityId(0)));
        for &g in &self.service_gps[si] {
            let gp = &self.gparts[g as usize];
            let part = &self.partitions[gp.part as usize];
            lag += part.visible.saturating_sub(gp.committed);
            if gp.committed < part.visible {
                let rec = &part.records[gp.committed as usize];
                oldest = oldest.min((rec.sent_at, rec.entity));
            }
        }
        // A queue consumer's lag: its queue's messages not yet settled.
        let first = self.first_node[si];
        if let Some(q) = self.broker.queue_of.get(first as usize).copied().flatten() {
            for m in self.broker.unsettled(q) {
                lag += 1;
                oldest = oldest.min((m.sent_at, m.entity));
            }
        }
        self.checker.lag_sampled(check as usize, self.now, lag, oldest.1);
        self.queue.push(self.now + every, Ev::LagSample { check });
    }

    /// Records every queue's waiting messages and every group's lag (records
    /// in the log that it has not committed), then sets the next sample.
    fn sample(&mut self) {
        let mut i = 0;
        for q in &self.broker.queues {
            self.backlog[i].1.push(q.ready.len() as u64);
            i += 1;
        }
        for (si, gps) in self.service_gps.iter().enumerate() {
            if gps.is_empty() {
                continue;
            }
            for k in self.sys.services[si].consumes.iter().filter(|k| on_log(&self.topic_parts, **k)) {
                let (first, count) = self.topic_parts[k.0 as usize];
                let parts = first..first + count;
                let lag: u64 = gps
                    .iter()
                    .map(|&g| &self.gparts[g as usize])
                    .filter(|gp| parts.contains(&gp.part))
                    .map(|gp| self.partitions[gp.part as usize].visible.saturating_sub(gp.committed))
                    .sum();
                self.backlog[i].1.push(lag);
                i += 1;
            }
        }
        self.queue.push(self.now + self.sample_every, Ev::Sample);
    }

    /// Node `n` restarts (a new incarnation, its epoch bumped at the crash).
    /// Each component's restart hook runs in this order, which is part of
    /// the trace: the restart record; its consumer group (unless it is
    /// stalled inside a pause: it rejoins when it resumes) and its fetches;
    /// its auto-commit timer; its outbox relay; its durable timers; its
    /// queue connection.
    fn restart(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        if node.up || !node.joined {
            return;
        }
        node.up = true;
        let paused = node.paused;
        self.trace_node(RecordKind::Restart, n, 0);
        self.begin_hydration(n);
        // Restarted inside a pause, it is stalled: it rejoins when it resumes.
        if !paused {
            self.rejoin_group(n);
        }
        self.try_fetch(n);
        self.schedule_auto_commit(n);
        self.schedule_relay(n);
        self.rearm_timers(n);
        self.restart_queue_consumer(n);
    }

    /// Node `n` puts `value` under `key`: in its database or its memory
    /// (`durable`), among faultline's rows or the service's own keys (`row`).
    fn put(&mut self, n: u32, (durable, row): (bool, bool), key: u64, value: i64) {
        let home = self.durable_home(n) as usize;
        let stores = if durable { &mut self.nodes[home].durable } else { &mut self.nodes[n as usize].volatile };
        let store = if row { &mut stores.rows } else { &mut stores.user };
        store.insert(key, value);
    }

    /// Node `n` writes `version` and `value` to row `key` of `table`, in
    /// its service's state (last write wins, as a plain replica applies what
    /// it receives).
    /// `cause`: the id of the message whose handler wrote it (`None`: a
    /// restore, from a snapshot or a replay).
    fn write_row(&mut self, n: u32, (table, key): (u16, u64), (version, value): (u64, i64), cause: Option<u64>) {
        let si = self.nodes[n as usize].service as usize;
        let store = self.rows_mut(n);
        debug_assert!(table < 0x7FFD, "table ids come from Names::table, and stay below the machine rows");
        let row = u64::from(table) << ROW_BITS | (key & ROW_MASK);
        store.insert(row, version as i64);
        // The value is kept only when it is not the version (the default):
        // most rows hold their writer's id and need one entry.
        if value == version as i64 {
            store.remove(&(ROW_VALUE | row));
        } else {
            store.insert(ROW_VALUE | row, value);
        }
        self.checker.write((si, table, key & ROW_MASK), (version, value), cause, self.now);
        if cause.is_some() && self.sys.services[si].event_sourced.is_some() {
            self.wrote_event_sourced(n, si);
        }
    }

    /// Node `n` (of service `si`) handled `job`: counted for the run, the
    /// service, the instance and the checks.
    #[inline]
    fn count_handled(&mut self, n: u32, si: usize, job: &Job) {
        self.counts.handled += 1;
        let stats = &mut self.stats[si];
        stats.latency.record((self.now - job.arrived).0);
        stats.handled += 1;
        self.nodes[n as usize].handled += 1;
    }

    /// What a handler on node `n` sees besides its message.
    #[inline]
    fn context(&self, n: u32, reserved: Option<bool>, called: Option<bool>) -> Context<'_> {
        let node = &self.nodes[n as usize];
        let home = &self.nodes[self.durable_home(n) as usize];
        Context {
            now: self.now,
            node: &node.name,
            instance: node.instance,
            durable: &home.durable,
            volatile: &node.volatile,
            reserved,
            called,
            seed: self.seed,
            versions: node.versions,
        }
    }

    /// Another instance of node `n`'s service that holds a machine state
    /// for `entity` in its own state (never when the state is shared).
    fn state_elsewhere(&self, n: u32, entity: EntityId) -> Option<u32> {
        let si = self.nodes[n as usize].service as usize;
        let s = &self.sys.services[si];
        if s.instances == 1 || s.state == StateKind::Shared {
            return None;
        }
        let key = crate::service::machine_state_key(entity);
        let first = self.first_node[si];
        (first..first + s.instances).filter(|&o| o != n).find(|&o| {
            let node = &self.nodes[o as usize];
            node.durable.rows.contains_key(&key) || node.volatile.rows.contains_key(&key)
        })
    }

    /// The node whose durable store node `n` uses: its own, or, when its
    /// service's state is shared, its service's first instance's (the
    /// service's database).
    #[inline]
    fn durable_home(&self, n: u32) -> u32 {
        self.nodes[n as usize].home
    }

    /// Node `n`'s table rows: in its service's database (its home's) or
    /// in its memory, as its service's state is.
    fn rows(&self, n: u32) -> &BTreeMap<u64, i64> {
        let node = &self.nodes[n as usize];
        if self.sys.services[node.service as usize].state.durable() {
            &self.nodes[node.home as usize].durable.rows
        } else {
            &node.volatile.rows
        }
    }

    /// [`World::rows`], to write.
    fn rows_mut(&mut self, n: u32) -> &mut BTreeMap<u64, i64> {
        let (si, home) = (self.nodes[n as usize].service as usize, self.nodes[n as usize].home as usize);
        if self.sys.services[si].state.durable() {
            &mut self.nodes[home].durable.rows
        } else {
            &mut self.nodes[n as usize].volatile.rows
        }
    }

    /// Table `table` as service `service` holds it now: per row, the newest
    /// version any of its instances has, and the value written with it.
    fn table_rows(&self, service: usize, table: u16) -> Rows {
        let mut rows = Rows::new();
        let first = self.first_node[service];
        for n in first..first + self.sys.services[service].instances {
            for (k, v, value) in rows_of(self.rows(n), table) {
                let held = (v as u64, value);
                let row = rows.entry(k & ROW_MASK).or_insert(held);
                if held.0 > row.0 {
                    *row = held;
                }
            }
        }
        rows
    }

    /// The faults of the scenario that did not do what the plan asked: a
    /// crash point never reached or never fired, a random plan that drew
    /// nothing, a fault that begins at or heals after the end of the run
    /// (what follows its heal is not judged). One warning per fault.
    fn fault_warnings(&self) -> Vec<String> {
        let end = self.end;
        let mut warnings = Vec::new();
        for (i, f) in self.sys.faults.iter().enumerate() {
            let label = f.label();
            let mut entries = self.plan.entries.iter().filter(|e| e.spec as usize == i);
            if let Some(cp) = self.plan.crash_points.iter().find(|c| c.spec as usize == i) {
                if cp.seen == 0 {
                    warnings.push(format!("{label} never took effect: no message reached its seam"));
                    continue;
                }
                if cp.fired == 0 {
                    let n = cp.seen;
                    warnings
                        .push(format!("{label} never took effect: it fired on none of the {n} messages at its seam"));
                    continue;
                }
            } else if let FaultSpec::Random { from, until, .. } = f
                && entries.clone().next().is_none()
            {
                warnings.push(format!(
                    "{label} never took effect: it drew no fault between {from} and {until} under this seed"
                ));
                continue;
            }
            if let Some(&(_, n)) = self.plan.capped.iter().find(|c| c.0 as usize == i) {
                let node = self.target_name(n);
                warnings.push(format!(
                    "{label} stopped drawing at {RANDOM_CRASHES_MAX} spells for {node}: the rest of its window has none"
                ));
                continue;
            }
            if let Some(e) = entries.clone().find(|e| e.at >= end) {
                warnings
                    .push(format!("{label} never took effect: it begins at {}, when the run has ended ({end})", e.at));
            } else if let Some(e) = entries.find(|e| e.heal > end) {
                warnings.push(format!(
                    "{label} heals at {}, after the run ends at {end}: the system after the heal is not judged",
                    e.heal
                ));
            }
        }
        warnings
    }

    /// Per entity (index: id - 1), whether something of it is still in the
    /// system: a message waiting or under way at a node, in flight on the
    /// network, in a queue or unread by some group in a log, in an outbox,
    /// a producer's buffer, a call, a lock's queue or a timer.
    fn in_flight_entities(&self) -> Vec<bool> {
        let mut v = vec![false; self.next_entity.saturating_sub(1) as usize];
        let mut mark = |m: &Message| {
            if let Some(x) = v.get_mut((m.entity.0 as usize).wrapping_sub(1)) {
                *x = true;
            }
        };
        for node in &self.nodes {
            node.fifo.iter().for_each(|j| mark(&j.msg));
            node.busy.iter().flatten().for_each(|j| mark(&j.msg));
            node.outbox.iter().for_each(&mut mark);
            node.timers.values().for_each(|(_, m)| mark(m));
        }
        self.inflight.live().for_each(&mut mark);
        for row in self.stock.values() {
            row.waiters.iter().for_each(|(_, _, j)| mark(&j.msg));
        }
        self.broker.in_flight().for_each(&mut mark);
        self.qlink.resend.iter().for_each(|u| mark(&u.msg));
        for gp in &self.gparts {
            let records = &self.partitions[gp.part as usize].records;
            records.iter().skip(gp.committed as usize).for_each(&mut mark);
        }
        self.produce.reqs.iter().filter(|r| r.live).for_each(|r| mark(&r.msg));
        self.calls.in_flight().for_each(&mut mark);
        self.still_parked().for_each(&mut mark);
        v
    }

    /// Where time-averages stop: when the workload stops, or the end.
    fn window_end(&self) -> SimTime {
        self.sys
            .workloads
            .iter()
            .map(|w| w.stop)
            .max()
            .unwrap_or(SimTime::ZERO)
            .min(self.end)
            .max(SimTime::ZERO + self.sys.warmup)
    }

    /// The workload has stopped: the time-averages end here.
    fn window_ended(&mut self) {
        for node in &mut self.nodes {
            node.account_fifo(self.now);
            node.fifo_area_window = Some(node.fifo_area);
            node.busy_area_window = Some(node.busy_until(self.now));
        }
    }

    /// The warm-up is over: every measurement starts again from zero (the
    /// checker leaves out the entities created before now).
    fn warmed_up(&mut self) {
        (self.counts.requests, self.counts.rejected, self.counts.published, self.counts.handled) = (0, 0, 0, 0);
        self.counts.lost = [0; LossReason::ALL.len() + 1];
        (self.counts.redelivered, self.counts.duplicates_skipped, self.counts.dead_lettered, self.counts.conflicts) =
            (0, 0, 0, 0);
        self.calls.reset_counts();
        self.stats = vec![ServiceStats::default(); self.sys.services.len()];
        let now = self.now;
        for node in &mut self.nodes {
            node.account_fifo(now);
            // The autoscaler's window goes on across the reset.
            node.scale_mark.1 -= node.busy_until(now) as i128;
            (node.fifo_area, node.busy_area, node.handled) = (0, 0, 0);
            for w in node.held() {
                node.taken_at[w] = now;
            }
        }
        for sc in self.scalers.iter_mut().flatten() {
            sc.warmed_up(now);
        }
        self.checker.warm_up(now);
    }

    fn service_metrics(&self, i: usize) -> ServiceMetrics {
        let st = &self.stats[i];
        let area: u128 = self
            .nodes
            .iter()
            .filter(|n| n.service as usize == i)
            .map(|n| n.fifo_area_window.unwrap_or(n.fifo_area))
            .sum();
        let window = (self.window_end().min(self.now) - (SimTime::ZERO + self.sys.warmup)).0;
        let started = st.wait.count();
        let per_window = |area: u128| if window == 0 { 0.0 } else { area as f64 / window as f64 };
        let workers = f64::from(self.sys.services[i].workers);
        let instances = self.nodes.iter().filter(|n| n.service as usize == i).map(|n| InstanceMetrics {
            node: n.name.clone(),
            handled: n.handled,
            utilisation: per_window(n.busy_area_window.unwrap_or_else(|| n.busy_until(self.now))) / workers,
            queue_len_mean: per_window(n.fifo_area_window.unwrap_or(n.fifo_area)),
        });
        ServiceMetrics {
            handled: st.handled,
            latency_s: st.latency.summary_s(),
            wait_s: st.wait.summary_s(),
            waited_fraction: if started == 0 { 0.0 } else { st.waited as f64 / started as f64 },
            queue_len_mean: per_window(area),
            instances: instances.collect(),
            scaling: self.scalers[i].as_ref().map(|sc| sc.metrics(self.window_end().min(self.now))),
            rehydration: self.sys.services[i].rehydrate.as_ref().map(|_| self.hydration.stats[i].metrics()),
            rebuild: self.sys.services[i].event_sourced.as_ref().map(|_| self.hydration.rebuilds[i].metrics()),
        }
    }

    fn finish(mut self) -> (Outcome, Checker, Focused, io::Result<()>) {
        let now = self.now;
        for node in &mut self.nodes {
            node.account_fifo(now);
        }
        let sys = self.sys;
        let last_heal = self.plan.entries.iter().map(|p| p.heal).max().unwrap_or(SimTime::ZERO);
        let rows = |service: usize, table: u16| self.table_rows(service, table);
        let judges_ends = sys
            .invariants
            .iter()
            .any(|i| matches!(i, InvariantSpec::NoLostEntities { .. } | InvariantSpec::TerminalWithin { .. }));
        let in_flight = if judges_ends { self.in_flight_entities() } else { Vec::new() };
        let verdicts = self.checker.verdicts(&sys.invariants, &sys.names, last_heal, self.now, &rows, &in_flight);
        let (_, accepted, completed) = self.checker.totals();
        let lost_by_reason: BTreeMap<&'static str, u64> =
            LossReason::ALL.iter().map(|r| (r.label(), self.counts.lost[*r as usize])).collect();
        let metrics = Metrics {
            requests: self.counts.requests,
            rejected: self.counts.rejected,
            accepted,
            completed,
            published: self.counts.published,
            handled: self.counts.handled,
            lost: self.counts.lost.iter().sum(),
            lost_by_reason,
            redelivered: self.counts.redelivered,
            duplicates_skipped: self.counts.duplicates_skipped,
            dead_lettered: self.counts.dead_lettered,
            conflicts: self.counts.conflicts,
            calls: CallMetrics {
                attempts: self.calls.attempts,
                timeouts: self.calls.timeouts,
                refused: self.calls.refused,
                failed: self.calls.failed,
            },
            backlog: self
                .backlog
                .iter()
                .map(|(name, samples)| {
                    // Sample k was taken at (k + 1) intervals. The maximum
                    // is over the run after the warm-up, the mean over the
                    // measurement window (the drain left out).
                    let warmup = SimTime::ZERO + sys.warmup;
                    let at = |k: usize| SimTime((k as u64 + 1) * self.sample_every.0);
                    let after = |k: &usize| at(*k) >= warmup;
                    let max = (0..samples.len()).filter(after).map(|k| samples[k]).max().unwrap_or(0);
                    let window = (0..samples.len()).filter(after).filter(|&k| at(k) <= self.window_end());
                    let (sum, n) = window.fold((0u64, 0u64), |(s, n), k| (s + samples[k], n + 1));
                    let mean = sum as f64 / n.max(1) as f64;
                    let series =
                        Backlog { interval_s: self.sample_every.as_secs_f64(), max, mean, samples: samples.clone() };
                    (name.clone(), series)
                })
                .collect(),
            e2e_latency_s: self.checker.latency().summary_s(),
            e2e_not_completed: accepted - completed,
            services: sys.services.iter().enumerate().map(|(i, s)| (s.name.clone(), self.service_metrics(i))).collect(),
        };
        let faults = self.plan.entries.iter().map(|e| self.applied(e)).collect();
        let warnings = self.fault_warnings();
        let trace_records = self.tracer.count();
        let (fingerprint, story, io) = self.tracer.finish();
        let outcome = Outcome {
            scenario: sys.name.clone(),
            seed: 0,
            fingerprint,
            events: self.events,
            trace_records,
            sim_time_ns: self.now.0,
            stopped_by: self.stop,
            invariants: verdicts,
            metrics,
            faults,
            warnings,
            series: self.series.map(SeriesAcc::finish),
        };
        (outcome, self.checker, story, io)
    }
}

fn run_once<'t>(
    sys: &System,
    seed: u64,
    tracer: Tracer<'t>,
    series: bool,
    interrupt: Option<&'t std::sync::atomic::AtomicBool>,
) -> Result<(Outcome, Checker, Focused), SetupError> {
    let mut world = World::new(sys, seed, tracer)?;
    world.interrupt = interrupt;
    if series {
        world.series = Some(SeriesAcc::new(sys.duration));
    }
    world.setup();
    world.run();
    let (mut outcome, checker, story, io) = world.finish();
    io?;
    outcome.seed = seed;
    Ok((outcome, checker, story))
}

/// The trace records of `entity` in a run of `sys` under `seed`, with every
/// crash, restart, pause and fault of the run: what stories and timelines
/// are drawn from (a second run, so the first keeps nothing per event).
/// A run longer than a story keeps drops records from its middle (see
/// [`Focused`]).
pub fn focused_records(sys: &System, seed: u64, entities: &[u64]) -> Result<Focused, SetupError> {
    Ok(run_once(sys, seed, Tracer::new().with_focus_on(entities), false, None)?.2)
}

/// Runs `sys` under `seed` with no story and no trace: the outcome (its
/// verdicts name an example entity but carry no story) and the histogram of
/// end-to-end latencies, for sweeps over many seeds.
pub fn run_bare(sys: &System, seed: u64) -> Result<(Outcome, crate::metrics::Histogram), SetupError> {
    run_bare_until(sys, seed, None)
}

/// [`run_bare`] that stops soon after `stop` becomes true (its outcome then
/// says [`StopReason::Interrupted`]).
pub fn run_bare_until(
    sys: &System,
    seed: u64,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> Result<(Outcome, crate::metrics::Histogram), SetupError> {
    let (outcome, checker, _) = run_once(sys, seed, Tracer::new(), false, stop)?;
    Ok((outcome, checker.latency().clone()))
}

/// Runs `sys` under `seed`: the outcome, with a story for each violated
/// invariant (told from a second, focused run of the same seed, so the first
/// run keeps nothing per event).
pub fn run(sys: &System, seed: u64) -> Result<Outcome, SetupError> {
    run_with(sys, seed, RunOptions::default())
}

/// [`run`] with options (a trace sink).
pub fn run_with(sys: &System, seed: u64, opts: RunOptions<'_>) -> Result<Outcome, SetupError> {
    let mut tracer = Tracer::new();
    if let Some(sink) = opts.trace {
        tracer = tracer.with_sink(sink);
    }
    let (mut outcome, checker, _) = run_once(sys, seed, tracer, opts.series, opts.stop)?;
    // A run stopped at a limit is an error, told as such: a second run to
    // the same limit for its story would double the wait for it.
    if !matches!(outcome.stopped_by, crate::outcome::StopReason::Completed) {
        return Ok(outcome);
    }
    // Every story from one focused run: a scenario with many violated
    // invariants costs two runs, not one per invariant.
    let focus: Vec<u64> = outcome
        .invariants
        .iter()
        .filter(|v| v.example_entity.is_some())
        .flat_map(|v| [v.example_entity, v.example_other])
        .flatten()
        .map(|e| e.0)
        .collect();
    if focus.is_empty() {
        return Ok(outcome);
    }
    let (told, _, records) = run_once(sys, seed, Tracer::new().with_focus_on(&focus), false, opts.stop)?;
    if told.stopped_by == crate::outcome::StopReason::Interrupted {
        // Interrupted while telling: no half-told stories.
        outcome.stopped_by = told.stopped_by;
        return Ok(outcome);
    }
    let end = SimTime(outcome.sim_time_ns);
    for i in 0..outcome.invariants.len() {
        let Some(entity) = outcome.invariants[i].example_entity else { continue };
        let other = outcome.invariants[i].example_other;
        let inv = &sys.invariants[i];
        let story = crate::story::tell(sys, &outcome.faults, inv, entity, other, &records, &checker, end);
        outcome.invariants[i].example = Some(story);
    }
    Ok(outcome)
}

// Events are copied in and out of the heap millions of times a second.
const _: () = assert!(std::mem::size_of::<Ev>() <= 16);
