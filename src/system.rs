//! The description of a system the kernel runs: services, bus, workload,
//! faults, invariants and limits. Scenario files are compiled into this; a
//! Rust user can also build one in code (see the crate docs).
//!
//! Why it is over 800 lines: these are the kernel's input types, every
//! setting of every bus, service, fault and invariant with its documentation;
//! it holds no behaviour beyond small lookups.

use std::sync::Arc;

use crate::service::{Declarative, EffectId, Kind, Service};
use crate::sim::{Dist, SimDuration, SimTime};

/// Interned names: message kinds (topics), effects, nodes.
#[derive(Clone, Debug, Default)]
pub struct Names {
    kinds: Vec<String>,
    effects: Vec<String>,
    tables: Vec<String>,
    states: Vec<String>,
    fields: Vec<String>,
}

impl Names {
    /// The kind called `name`, interned on first use.
    pub fn kind(&mut self, name: &str) -> Kind {
        if let Some(i) = self.kinds.iter().position(|k| k == name) {
            return Kind(i as u32);
        }
        self.kinds.push(name.to_string());
        Kind(self.kinds.len() as u32 - 1)
    }

    /// The kind called `name`, if it has been interned.
    pub fn find_kind(&self, name: &str) -> Option<Kind> {
        self.kinds.iter().position(|k| k == name).map(|i| Kind(i as u32))
    }

    /// The effect called `name`, interned on first use.
    pub fn effect(&mut self, name: &str) -> EffectId {
        if let Some(i) = self.effects.iter().position(|k| k == name) {
            return EffectId(i as u16);
        }
        self.effects.push(name.to_string());
        EffectId(self.effects.len() as u16 - 1)
    }

    /// The table called `name` (replicated state, see
    /// [`InvariantSpec::ReplicaConvergence`]), interned on first use.
    pub fn table(&mut self, name: &str) -> u16 {
        if let Some(i) = self.tables.iter().position(|k| k == name) {
            return i as u16;
        }
        self.tables.push(name.to_string());
        self.tables.len() as u16 - 1
    }

    /// The message field called `name`, interned on first use: its slot in
    /// every message's payload (the compiler allows at most
    /// [`crate::service::FIELDS`]).
    pub fn field(&mut self, name: &str) -> u8 {
        if let Some(i) = self.fields.iter().position(|k| k == name) {
            return i as u8;
        }
        self.fields.push(name.to_string());
        self.fields.len() as u8 - 1
    }

    /// The name of field slot `slot`.
    pub fn field_name(&self, slot: u8) -> &str {
        self.fields.get(usize::from(slot)).map_or("?", String::as_str)
    }

    /// How many fields are named.
    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// The state-machine state called `name`, interned on first use. State
    /// 0 is every machine's initial state, `new`.
    pub fn state(&mut self, name: &str) -> u16 {
        if self.states.is_empty() {
            self.states.push("new".to_string());
        }
        if let Some(i) = self.states.iter().position(|k| k == name) {
            return i as u16;
        }
        self.states.push(name.to_string());
        self.states.len() as u16 - 1
    }

    /// The name of state `state`.
    pub fn state_name(&self, state: u16) -> &str {
        if state == 0 {
            return "new";
        }
        self.states.get(usize::from(state)).map_or("?", String::as_str)
    }

    /// Number of states.
    pub fn state_count(&self) -> usize {
        self.states.len().max(1)
    }

    /// The name of table `table`.
    pub fn table_name(&self, table: u16) -> &str {
        self.tables.get(usize::from(table)).map_or("?", String::as_str)
    }

    /// The name of `kind`.
    pub fn kind_name(&self, kind: Kind) -> &str {
        if kind == Kind::TIMER {
            return "timer";
        }
        self.kinds.get(kind.0 as usize).map_or("?", String::as_str)
    }

    /// The name of `effect`.
    pub fn effect_name(&self, effect: EffectId) -> &str {
        self.effects.get(effect.0 as usize).map_or("?", String::as_str)
    }

    /// Number of kinds.
    pub fn kind_count(&self) -> usize {
        self.kinds.len()
    }

    /// Number of effects.
    pub fn effect_count(&self) -> usize {
        self.effects.len()
    }
}

/// Where a service keeps its state, and so what a crash takes away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StateKind {
    /// In memory: gone when the instance crashes.
    #[default]
    Volatile,
    /// In a database per instance: survives crashes.
    Durable,
    /// In the service's database, shared by its instances: survives
    /// crashes, and every instance reads what any of them wrote (an
    /// entity's state follows it when its partition moves).
    Shared,
}

impl StateKind {
    /// It survives a crash.
    pub fn durable(self) -> bool {
        self != StateKind::Volatile
    }
}

/// When a log consumer commits its offsets, and so what a crash costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CommitPolicy {
    /// Commit a record's offset once it and every record before it are
    /// processed (at-least-once: a crash redelivers what was processed after
    /// the first unfinished record, so effects may repeat).
    #[default]
    AfterProcess,
    /// Commit a record's offset as soon as it is fetched, before processing
    /// (at-most-once: a crash loses what was fetched but not processed).
    BeforeProcess,
    /// Commit the fetch position every `every`, whatever was processed, as
    /// Kafka's `enable.auto.commit` does: a crash loses fetched records the
    /// last commit covered and redelivers those processed since it.
    Auto {
        /// The commit interval.
        every: SimDuration,
    },
    /// Store which offsets are processed in the consumer's own database, in
    /// the same transaction as its state change and effect (exactly-once
    /// effects: a restarted consumer skips what it already did).
    Transactional,
}

/// An idempotent consumer's store of the message ids it has handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dedup {
    /// In the service's database (shared by its instances, survives crashes)
    /// or in each instance's memory (lost on crash).
    pub durable: bool,
    /// Ids remembered, at most; the oldest is forgotten first.
    pub window: u32,
}

/// One service: a behaviour and its deployment (instances, workers, queue).
#[derive(Clone, Debug)]
pub struct ServiceSpec {
    /// Name, e.g. `inventory`; its instances are `inventory-1`, `inventory-2`, ...
    pub name: String,
    /// Which instance takes a request, a call or a pushed message.
    pub routing: Routing,
    /// Number of instances (nodes).
    pub instances: u32,
    /// Concurrent workers per instance.
    pub workers: u32,
    /// Capacity of each instance's FIFO of waiting messages. Overflow: a
    /// request is rejected, a pushed (ephemeral) message is lost; a log
    /// consumer never fetches past it.
    pub queue_capacity: u32,
    /// Where state lives.
    pub state: StateKind,
    /// The topics it consumes.
    pub consumes: Vec<Kind>,
    /// When it commits log offsets.
    pub commit: CommitPolicy,
    /// Skip messages whose id it has already handled.
    pub dedup: Option<Dedup>,
    /// Queue bus: the queue it reads, shared with every service that names
    /// the same one; `None` for a queue of its own.
    pub queue: Option<String>,
    /// Queue bus: acknowledge on delivery (at-most-once) instead of after processing.
    pub auto_ack: bool,
    /// Queue bus: unacknowledged messages an instance may hold (`u32::MAX`: no limit).
    pub prefetch: u32,
    /// The service is deployed at this time (its instances are down before).
    pub starts_at: SimTime,
    /// Log: a group created when the service starts reads from the end of
    /// each partition (`latest`) instead of its beginning (`earliest`).
    pub start_latest: bool,
    /// Some handler of the service reserves stock ([`crate::service::Service::reserve`]).
    pub reserves: bool,
    /// Some handler of the service makes a synchronous call ([`crate::service::Service::call`]).
    pub calls: bool,
    /// Some handler of the service fails now and then ([`crate::service::Service::flaky`]).
    pub flaky: bool,
    /// Its timers are kept in its database: a restart sets them again
    /// (otherwise they die with the instance).
    pub durable_timers: bool,
    /// Transactional outbox: messages are written with the state change and
    /// a relay publishes them this often; `None` publishes directly (a dual
    /// write).
    pub outbox: Option<SimDuration>,
    /// Horizontal autoscaling; `instances` is then its most instances
    /// (the nodes there are), of which `initial` start.
    pub autoscale: Option<Autoscale>,
    /// "Hey, I'm back": on every start after the first (a restart, a late
    /// deployment, a new instance) it asks another service for a snapshot
    /// of a table and works on nothing until it has loaded it.
    pub rehydrate: Option<Rehydrate>,
    /// Event-sourced: its table is rebuilt from its own events on every
    /// start after the first.
    pub event_sourced: Option<EventSourced>,
    /// The schema version its code runs at the start (what it publishes),
    /// if it is versioned.
    pub version: Option<u16>,
    /// The highest schema version its code reads at the start (`u16::MAX`:
    /// every version).
    pub reads: u16,
    /// The behaviour.
    pub behaviour: Arc<dyn Service>,
}

/// Event-sourced state: which events rebuild which table, and at what cost.
#[derive(Clone, Debug, PartialEq)]
pub struct EventSourced {
    /// The kind (topic) of its events.
    pub kind: Kind,
    /// The table they rebuild.
    pub table: u16,
    /// The field of an event that is the row's value (else the entity's id).
    pub value_field: Option<u8>,
    /// A snapshot every this many writes (0: none).
    pub snapshot_every: u32,
    /// Replay time per event, and load time per snapshot row.
    pub per_event: SimDuration,
}

/// Re-hydration from a snapshot: where it comes from and what it costs.
#[derive(Clone, Debug, PartialEq)]
pub struct Rehydrate {
    /// The service that owns the data (an instance of it that is up answers).
    pub from: u32,
    /// The table copied.
    pub table: u16,
    /// One-way network latency of the request and of the reply.
    pub latency: Dist,
    /// Transfer and load time per row of the snapshot.
    pub per_row: SimDuration,
    /// A request without a snapshot for this long is sent again (to the
    /// owner's next instance).
    pub timeout: SimDuration,
}

/// Where a rewound consumer group resumes, per partition.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RewindTarget {
    /// Offset 0: the first record the log still has (retention skips the rest).
    Earliest,
    /// The log's end (its high watermark).
    Latest,
    /// This offset, or the end if past it.
    Offset(u64),
    /// The first record visible at or after this time.
    Time(SimTime),
}

impl RewindTarget {
    /// How a summary names it, e.g. `earliest`, `offset 40`, `1m30.000s`.
    pub fn label(&self) -> String {
        match self {
            RewindTarget::Earliest => "earliest".into(),
            RewindTarget::Latest => "latest".into(),
            RewindTarget::Offset(o) => format!("offset {o}"),
            RewindTarget::Time(t) => {
                format!("the records of {}", crate::format::secs((*t - SimTime::ZERO).as_secs_f64()))
            }
        }
    }
}

/// A horizontal autoscaler (see `scenario::schema::Autoscale`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Autoscale {
    /// Fewest instances.
    pub min: u32,
    /// Instances at the start.
    pub initial: u32,
    /// Target utilisation of the workers, in (0, 1].
    pub target: f64,
    /// How often it decides.
    pub every: SimDuration,
    /// From the decision to a new instance taking work.
    pub startup: SimDuration,
    /// Scale-in goes no lower than the highest recommendation this recent.
    pub stabilization: SimDuration,
    /// Relative change in utilisation ignored.
    pub tolerance: f64,
}

impl ServiceSpec {
    /// The instances it starts with: all of them, unless it autoscales.
    pub fn initial_instances(&self) -> u32 {
        self.autoscale.map_or(self.instances, |a| a.initial)
    }
}

impl ServiceSpec {
    /// A service with one instance, one worker, a queue of 10,000 and no behaviour yet.
    pub fn new(name: &str) -> ServiceSpec {
        ServiceSpec {
            name: name.to_string(),
            routing: Routing::ByKey,
            instances: 1,
            workers: 1,
            queue_capacity: 10_000,
            state: StateKind::Volatile,
            consumes: Vec::new(),
            commit: CommitPolicy::AfterProcess,
            dedup: None,
            queue: None,
            auto_ack: false,
            prefetch: u32::MAX,
            starts_at: SimTime::ZERO,
            start_latest: false,
            outbox: None,
            reserves: false,
            calls: false,
            flaky: false,
            durable_timers: false,
            autoscale: None,
            rehydrate: None,
            event_sourced: None,
            version: None,
            reads: u16::MAX,
            behaviour: Arc::new(Declarative::default()),
        }
    }

    /// The node name of instance `i` (from 0): `name-(i+1)`.
    pub fn node_name(&self, i: u32) -> String {
        format!("{}-{}", self.name, i + 1)
    }
}

/// The message bus and its delivery semantics.
#[derive(Clone, Debug, PartialEq)]
pub enum BusSpec {
    /// Pub/sub that flows straight through: a message reaches, for each
    /// subscribing service, one instance that is up when it is published and
    /// still up (same incarnation) when it arrives; otherwise it is gone.
    Ephemeral {
        /// Publish-to-delivery latency.
        latency: Dist,
    },
    /// An append-only log per topic, split into partitions by key; each
    /// consuming service is a consumer group whose committed offsets are
    /// kept by the broker and survive the consumer's crash. Offsets are
    /// committed after processing; a restarted consumer resumes from them.
    Log {
        /// Partitions per topic. Partition `p` of a topic is consumed by
        /// instance `p mod instances` of each consuming service.
        partitions: u32,
        /// Fetch latency from the log to a consumer.
        latency: Dist,
        /// Records a consumer instance holds fetched but not yet processed, at most.
        fetch_max: u32,
        /// Records older than this are deleted: a group that had not read
        /// them loses them.
        retention: Option<SimDuration>,
        /// Only this many newest records per partition are kept.
        retention_records: Option<u64>,
        /// Compacted topics: a reader gets only the newest record of each key.
        compacted: Vec<Kind>,
        /// Topics with their own settings (the others have the bus's).
        per_topic: Vec<TopicSpec>,
        /// A crashed group member's partitions move to the live members this
        /// long after it stopped answering.
        session_timeout: SimDuration,
        /// Broker nodes that keep the log; `None` for an ideal broker that
        /// never fails (every append durable at once).
        brokers: Option<BrokerSpec>,
        /// With an ideal broker: a producer cut off from the log (behind a
        /// partition) gives a record up once it has waited this long
        /// (Kafka's `delivery.timeout.ms`); a shorter cut delays it.
        delivery_timeout: SimDuration,
    },
    /// Durable queues with acknowledgements, as the broker `kind` keeps
    /// them: each consuming service reads its own queue (fan-out) or one it
    /// shares (competing consumers); unacknowledged messages go back to the
    /// queue when their consumer crashes, nacks, or lets the ack timeout pass.
    Queue {
        /// Delivery latency from the broker to a consumer.
        latency: Dist,
        /// The broker modelled: requeue position, delivery-limit counting,
        /// what an ack timeout does.
        kind: QueueKind,
        /// Unacknowledged for this long, a delivery is taken back: the
        /// consumer's whole channel ([`QueueKind::closes_channel_on_timeout`])
        /// or the one message.
        ack_timeout: Option<SimDuration>,
        /// The delivery limit as the kind's broker names it; see
        /// [`QueueKind::deliveries_allowed`]. `None` retries forever.
        delivery_limit: Option<u32>,
        /// A producer's connection blocked by a partition for longer than
        /// this is closed (AMQP's heartbeat timeout): what it was sending
        /// while blocked is lost; a shorter cut only delays it.
        heartbeat: SimDuration,
        /// Flow control: a consumer holds at most this many messages it has
        /// not started on (on the wire and in its buffers); a scenario gives
        /// it in bytes, over the message size.
        window: u32,
        /// A client whose connection closed (its channel closed by the
        /// broker, or the broker restarted) connects again after this long.
        reconnect: SimDuration,
        /// Queues survive a broker restart.
        durable: bool,
        /// Messages survive a broker restart (in a durable queue).
        persistent: bool,
        /// Publisher confirms: producers resend what the broker did not
        /// confirm when it is back; without them a publish to a broker that
        /// is down is lost.
        confirms: bool,
        /// Redis: the stream keeps only this many newest entries (`MAXLEN`),
        /// whether read, pending or acknowledged.
        max_len: Option<u64>,
    },
}

impl BusSpec {
    /// The latency from the bus to a consumer (a delivery, or a fetch).
    pub fn latency(&self) -> &Dist {
        match self {
            BusSpec::Ephemeral { latency } | BusSpec::Log { latency, .. } | BusSpec::Queue { latency, .. } => latency,
        }
    }
}

/// The broker whose queue semantics a Queue bus reproduces. Each difference
/// is checked against the real broker by the conformance suite
/// (`conformance/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum QueueKind {
    /// A RabbitMQ classic queue.
    #[default]
    Classic,
    /// A RabbitMQ quorum queue.
    Quorum,
    /// A NATS JetStream stream read by a consumer with explicit acks.
    JetStream,
    /// A Redis stream read by a consumer group: delivered entries stay in
    /// the consumer's pending-entries list until acknowledged, and come
    /// back only when claimed (`XAUTOCLAIM` after `ack_timeout` idle) or
    /// re-read by the same consumer after its restart.
    RedisStream,
}

impl QueueKind {
    /// Where a nacked or returned message goes: the head of the queue
    /// (classic queues put it back at its old position, which for the
    /// oldest message is the head) or the tail (quorum queues).
    pub fn requeue_at_head(self) -> bool {
        match self {
            QueueKind::Classic | QueueKind::JetStream | QueueKind::RedisStream => true,
            QueueKind::Quorum => false,
        }
    }

    /// Deliveries a message gets under a delivery limit of `limit` before it
    /// is dead-lettered (RabbitMQ) or given up on (JetStream): a quorum
    /// queue's `x-delivery-limit` counts returns, so it allows `limit + 1`;
    /// JetStream's `max_deliver` counts deliveries, as does a Redis
    /// consumer that dead-letters by `XPENDING`'s delivery count.
    pub fn deliveries_allowed(self, limit: u32) -> u32 {
        match self {
            QueueKind::Quorum => limit.saturating_add(1),
            QueueKind::Classic | QueueKind::JetStream | QueueKind::RedisStream => limit,
        }
    }

    /// True if an ack timeout closes the consumer's channel, returning all
    /// it holds (RabbitMQ's `consumer_timeout`), rather than redelivering
    /// the one message (JetStream's `AckWait`).
    pub fn closes_channel_on_timeout(self) -> bool {
        matches!(self, QueueKind::Classic | QueueKind::Quorum)
    }

    /// True if a consumer's crash returns its unacknowledged messages at
    /// once (RabbitMQ sees the connection close); JetStream and Redis keep
    /// them pending for the consumer.
    pub fn returns_on_crash(self) -> bool {
        matches!(self, QueueKind::Classic | QueueKind::Quorum)
    }

    /// Unacknowledged messages a consumer may hold when it sets no prefetch:
    /// unlimited for RabbitMQ (no `basic.qos`), `max_ack_pending` 1000 for
    /// JetStream.
    pub fn default_prefetch(self) -> u32 {
        match self {
            QueueKind::Classic | QueueKind::Quorum | QueueKind::RedisStream => u32::MAX,
            QueueKind::JetStream => 1000,
        }
    }

    /// The ack timeout when none is set: RabbitMQ's `consumer_timeout`
    /// (30 minutes since 3.8.15), JetStream's `AckWait` (30 seconds); Redis
    /// claims nothing unless a consumer runs `XAUTOCLAIM`.
    pub fn default_ack_timeout(self) -> Option<SimDuration> {
        match self {
            QueueKind::Classic | QueueKind::Quorum => Some(SimDuration::from_secs(30 * 60)),
            QueueKind::JetStream => Some(SimDuration::from_secs(30)),
            QueueKind::RedisStream => None,
        }
    }

    /// The name a scenario uses.
    pub fn name(self) -> &'static str {
        match self {
            QueueKind::Classic => "Classic",
            QueueKind::Quorum => "Quorum",
            QueueKind::JetStream => "JetStream",
            QueueKind::RedisStream => "RedisStream",
        }
    }
}

/// When a broker acknowledges a produced record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acks {
    /// Never: the producer does not wait (fire and forget, no retries).
    None,
    /// When the leader has appended it (lost if the leader fails before a
    /// follower copies it).
    Leader,
    /// When every in-sync replica has it (and at least `min_insync` are in sync).
    All,
}

/// One log topic's settings, its bus's defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicSpec {
    /// The topic.
    pub kind: Kind,
    /// Its partitions.
    pub partitions: u32,
    /// Time retention.
    pub retention: Option<SimDuration>,
    /// Size retention, in records per partition.
    pub retention_records: Option<u64>,
    /// Compacted to the newest record per key.
    pub compacted: bool,
    /// Copies of each partition (with broker nodes).
    pub replication: Option<u32>,
    /// Producers spread its records over its partitions in turn, whatever
    /// the key (else by key).
    pub round_robin: bool,
}

/// Broker nodes, replication and the producers' settings (Kafka-like).
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerSpec {
    /// Broker nodes, named `broker-1`, `broker-2`, ...; faults can name them.
    pub count: u32,
    /// Copies of each partition, on distinct brokers.
    pub replication: u32,
    /// With `acks: All`, a write is refused unless this many replicas are in sync.
    pub min_insync: u32,
    /// When the producer is acknowledged.
    pub acks: Acks,
    /// Let an out-of-sync replica become leader when no in-sync one is up
    /// (the partition stays available, and loses what that replica lacked).
    pub unclean_election: bool,
    /// Brokers write their log to disk this often; a crash loses the rest
    /// of its copy. `None`: every append is on disk at once.
    pub flush_every: Option<SimDuration>,
    /// Latency of a follower's fetch from the leader.
    pub replica_latency: Dist,
    /// A producer resends an unacknowledged record this many times.
    pub retries: u32,
    /// ... after waiting this long for the acknowledgement.
    pub retry_after: SimDuration,
    /// The broker recognises a resent record and does not append it twice.
    pub idempotent: bool,
    /// A broker that a partition cuts off from the controller quorum (more
    /// than half of the brokers, itself included) for this long is fenced:
    /// it stops leading, and its partitions elect new leaders.
    pub session_timeout: SimDuration,
    /// A follower that has not caught up with its leader for this long
    /// leaves the in-sync set (Kafka's `replica.lag.time.max.ms`), if the
    /// leader can reach the controller to say so.
    pub replica_lag: SimDuration,
}

/// How the workload picks entity keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDist {
    /// Uniform over `0..n`.
    Uniform(u64),
    /// The entity's number among its workload's arrivals (1, 2, ...): every
    /// entity has its own key.
    Sequential,
}

/// The workload: entities arriving at the service that accepts them.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadSpec {
    /// The entity kind, e.g. `order` (each workload its own).
    pub entity: String,
    /// The request kind the entry service handles.
    pub request: Kind,
    /// Index of the service that receives the requests.
    pub target: usize,
    /// Mean time between arrivals (Poisson process), or the exact gap.
    pub interarrival_mean: SimDuration,
    /// Arrivals exactly `interarrival_mean` apart instead of a Poisson process.
    pub regular: bool,
    /// At most this many arrivals.
    pub count: Option<u64>,
    /// Keys.
    pub keys: KeyDist,
    /// First arrival no earlier than this.
    pub start: SimTime,
    /// No arrival at or after this.
    pub stop: SimTime,
    /// How the rate changes over time.
    pub shape: RateShape,
    /// Recorded arrivals (time after `start`, key), in order: when not
    /// empty they replace the drawn ones (rate, keys and shape unused).
    pub replay: Vec<(SimDuration, u64)>,
    /// The fields of its requests (slot, value per entity); the others are 0.
    pub fields: Vec<(u8, FieldValue)>,
    /// The schema version of its requests.
    pub version: u16,
}

/// A request field's value per entity: drawn from no stream, so adding a
/// field changes no arrival, and the same for every redelivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValue {
    /// This value.
    Const(i64),
    /// Uniform over `lo..=hi`: a hash of the seed, the entity and the slot.
    Uniform(i64, i64),
    /// The entity's number among its workload's arrivals (1, 2, ...).
    Sequential,
    /// The request's key.
    Key,
}

impl FieldValue {
    /// The value for the `nth` arrival (from 1), entity `entity`, with
    /// `key`, in slot `slot`, under `seed`.
    pub fn of(self, seed: u64, entity: u64, nth: u64, key: u64, slot: u8) -> i64 {
        match self {
            FieldValue::Const(v) => v,
            FieldValue::Uniform(lo, hi) => {
                let span = (hi as i128 - lo as i128 + 1) as u128;
                let x = crate::service::mix(seed, entity, 0xF1E1_D000 | u64::from(slot));
                (lo as i128 + (u128::from(x) % span) as i128) as i64
            }
            FieldValue::Sequential => nth as i64,
            FieldValue::Key => key as i64,
        }
    }
}

/// Which of a service's instances takes a request, a call or a pushed
/// message; each skips instances that are down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Routing {
    /// The key's home instance, else the next one up.
    #[default]
    ByKey,
    /// Each instance in turn.
    RoundRobin,
    /// An instance drawn from the service's routing stream.
    Random,
    /// The instance with the fewest messages at work or waiting.
    LeastLoaded,
}

/// How a workload's rate changes over time: at time `t` it is the
/// workload's rate times [`RateShape::factor`]`(t)`, a factor above zero.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum RateShape {
    /// Factor 1 all along.
    #[default]
    Constant,
    /// `factor` during `[at + k * every, at + k * every + lasting)`, else 1.
    Burst {
        /// Between two bursts' starts.
        every: SimDuration,
        /// A burst's length.
        lasting: SimDuration,
        /// The factor during a burst.
        factor: f64,
        /// The first burst's start.
        at: SimTime,
    },
    /// 1 until the first step, then each step's factor from its time on
    /// (sorted by time).
    Steps(Vec<(SimTime, f64)>),
    /// `from` until `at`, then linearly to `to` over `over`, then `to`.
    Ramp {
        /// The factor before.
        from: f64,
        /// The factor after.
        to: f64,
        /// The ramp's start.
        at: SimTime,
        /// Its length.
        over: SimDuration,
    },
    /// `low + (high - low) * (1 + cos(2 pi (t - peak_at) / period)) / 2`.
    Daily {
        /// The factor at the trough.
        low: f64,
        /// The factor at the peak.
        high: f64,
        /// The peak's time within the period.
        peak_at: SimDuration,
        /// The cycle's length.
        period: SimDuration,
    },
}

impl RateShape {
    /// The rate's factor at time `t`.
    pub fn factor(&self, t: SimTime) -> f64 {
        match self {
            RateShape::Constant => 1.0,
            RateShape::Burst { every, lasting, factor, at } => {
                if t < *at {
                    return 1.0;
                }
                let into = (t.0 - at.0) % every.0.max(1);
                if into < lasting.0 { *factor } else { 1.0 }
            }
            RateShape::Steps(steps) => steps.iter().rev().find(|(at, _)| *at <= t).map_or(1.0, |s| s.1),
            RateShape::Ramp { from, to, at, over } => {
                if t <= *at {
                    *from
                } else if t.0 - at.0 >= over.0 {
                    *to
                } else {
                    from + (to - from) * ((t.0 - at.0) as f64 / over.0.max(1) as f64)
                }
            }
            RateShape::Daily { low, high, peak_at, period } => {
                let period = period.0.max(1);
                let phase = ((t.0 + period - peak_at.0 % period) % period) as f64 / period as f64;
                low + (high - low) * (1.0 + libm::cos(2.0 * std::f64::consts::PI * phase)) / 2.0
            }
        }
    }

    /// The largest factor it ever takes (the thinning bound).
    pub fn max(&self) -> f64 {
        match self {
            RateShape::Constant => 1.0,
            RateShape::Burst { factor, .. } => factor.max(1.0),
            RateShape::Steps(steps) => steps.iter().map(|s| s.1).fold(1.0, f64::max),
            RateShape::Ramp { from, to, .. } => from.max(*to),
            RateShape::Daily { low, high, .. } => low.max(*high),
        }
    }
}

/// A fault in the plan.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultSpec {
    /// Node `node` crashes at `at` (plus a uniformly random part of
    /// `jitter`, drawn from the faults stream, so that each seed gets its own
    /// schedule) and restarts `down_for` later. Volatile state and in-flight
    /// work are lost; durable state is kept.
    Crash {
        /// Node name, e.g. `inventory-1`.
        node: String,
        /// When it crashes, at the earliest.
        at: SimTime,
        /// How much later it may crash; zero for a fixed time.
        jitter: SimDuration,
        /// How long it stays down.
        down_for: SimDuration,
    },
    /// From `at` for `lasting`, nothing crosses between the nodes of
    /// `groups[0]` and those of `groups[1]` (only from the first to the
    /// second if `one_way`). `"bus"` names the message bus as a node.
    Partition {
        /// Two groups of node names.
        groups: [Vec<String>; 2],
        /// Block only from the first group to the second.
        one_way: bool,
        /// When.
        at: SimTime,
        /// For how long.
        lasting: SimDuration,
    },
    /// From `at` for `lasting`, messages from `from` to `to` (node names or
    /// `"bus"`) are dropped with probability `drop`, duplicated with
    /// probability `duplicate`, and delayed by `delay`.
    Link {
        /// Sending end.
        from: String,
        /// Receiving end.
        to: String,
        /// Probability that a message is lost.
        drop: f64,
        /// Probability that a message arrives twice.
        duplicate: f64,
        /// Extra latency.
        delay: Option<Dist>,
        /// Probability that a message is held back by a delay drawn from
        /// the distribution, so that later ones overtake it.
        reorder: Option<(f64, Dist)>,
        /// When.
        at: SimTime,
        /// For how long.
        lasting: SimDuration,
    },
    /// An operator resets service `service`'s consumer group at `at`: each
    /// partition's committed offset and its consumer's position go to `to`
    /// (records skipped forward and never processed are lost; records
    /// rewound over are delivered again).
    Rewind {
        /// The consuming service (index).
        service: usize,
        /// Its name (the group's).
        group: String,
        /// Where each partition resumes.
        to: RewindTarget,
        /// When.
        at: SimTime,
        /// Its tables are dropped first (a read model rebuilt from scratch).
        drop_tables: bool,
    },
    /// Service `service`'s instances restart one at a time, instance `i`
    /// at `at + i * every`, each down for `down`, and come back running
    /// schema `version` (publishing it, and reading every version up to it).
    RollingDeploy {
        /// The service (index).
        service: usize,
        /// Its name.
        name: String,
        /// The schema version of the new code.
        version: u16,
        /// When the first instance restarts.
        at: SimTime,
        /// Between two instances' restarts.
        every: SimDuration,
        /// How long each is down.
        down: SimDuration,
        /// Its instances (nodes), at most.
        instances: u32,
    },
    /// Node `node`'s clock runs off from `at` for `lasting`: a timer it sets
    /// for `d` fires after `d * factor` (below 1, deadlines fire early;
    /// above 1, late).
    ClockSkew {
        /// Node name.
        node: String,
        /// How long its timers really last, relative to what they ask.
        factor: f64,
        /// When.
        at: SimTime,
        /// For how long.
        lasting: SimDuration,
    },
    /// Node `node` works `factor` times slower from `at` for `lasting`: a
    /// gray failure, up and answering, but late.
    Slow {
        /// Node name.
        node: String,
        /// When.
        at: SimTime,
        /// For how long.
        lasting: SimDuration,
        /// Processing-time multiplier.
        factor: f64,
    },
    /// Node `node` stalls from `at` for `lasting` (a long garbage-collection
    /// pause, a frozen VM): reachable but doing nothing, it stops
    /// heartbeating and may lose its partitions, then resumes with the stale
    /// work it held.
    Pause {
        /// Node name.
        node: String,
        /// When.
        at: SimTime,
        /// For how long.
        lasting: SimDuration,
    },
    /// Each of `nodes` suffers `what` again and again between `from` and
    /// `until`: fine for an exponential time of mean `mtbf`, then faulty for
    /// one of mean `mttr`, drawn from the faults stream, so each seed has its
    /// own schedule (swarm testing). Crashes may hit brokers too.
    Random {
        /// What happens to a node in its faulty spells.
        what: RandomFault,
        /// Node names.
        nodes: Vec<String>,
        /// Mean time between failures.
        mtbf: SimDuration,
        /// Mean time to repair.
        mttr: SimDuration,
        /// No fault before this.
        from: SimTime,
        /// No fault at or after this: a spell still under way heals then,
        /// so the system is fault-free after it.
        until: SimTime,
    },
    /// Node `node` crashes at `seam` while handling a message: on its
    /// `nth` message there (counting from 1), or on each with `probability`
    /// (drawn from the faults stream); it restarts `down_for` later.
    CrashAt {
        /// Node name.
        node: String,
        /// Where in the handler.
        seam: Seam,
        /// On the nth message handled at the seam, if set.
        nth: Option<u64>,
        /// Otherwise with this probability per message.
        probability: f64,
        /// How long it stays down.
        down_for: SimDuration,
    },
}

impl FaultSpec {
    /// A short name for warnings and summaries: the kind and its target,
    /// e.g. `Crash(inventory-1)`, `RandomPauses(inventory-1, inventory-2)`.
    pub fn label(&self) -> String {
        match self {
            FaultSpec::Crash { node, .. } => format!("Crash({node})"),
            FaultSpec::CrashAt { node, seam, .. } => format!("CrashAt({node}, {})", seam.label()),
            FaultSpec::Slow { node, .. } => format!("Slow({node})"),
            FaultSpec::Pause { node, .. } => format!("Pause({node})"),
            FaultSpec::ClockSkew { node, .. } => format!("ClockSkew({node})"),
            FaultSpec::Rewind { group, .. } => format!("Rewind({group})"),
            FaultSpec::RollingDeploy { name, version, .. } => format!("RollingDeploy({name} to v{version})"),
            FaultSpec::Partition { groups, one_way, .. } => {
                let arrow = if *one_way { "->" } else { "<->" };
                format!("Partition({} {arrow} {})", groups[0].join(","), groups[1].join(","))
            }
            FaultSpec::Link { from, to, .. } => format!("Link({from} -> {to})"),
            FaultSpec::Random { what, nodes, .. } => {
                let kind = match what {
                    RandomFault::Crash => "RandomCrashes",
                    RandomFault::Pause => "RandomPauses",
                    RandomFault::Slow(_) => "RandomSlowdowns",
                    RandomFault::Skew(_) => "RandomClockSkews",
                    RandomFault::Isolate => "RandomPartitions",
                    RandomFault::Lossy { .. } => "RandomLossyLinks",
                };
                format!("{kind}({})", nodes.join(", "))
            }
        }
    }

    /// When the fault ends at the latest (the node is back); time zero for a
    /// crash point, whose time depends on the run.
    pub fn heals_at(&self) -> SimTime {
        match self {
            FaultSpec::Crash { at, jitter, down_for, .. } => *at + *jitter + *down_for,
            FaultSpec::Rewind { at, .. } => *at,
            FaultSpec::RollingDeploy { at, every, down, instances, .. } => {
                *at + SimDuration(every.0.saturating_mul(u64::from(instances.saturating_sub(1)))) + *down
            }
            FaultSpec::Slow { at, lasting, .. }
            | FaultSpec::Pause { at, lasting, .. }
            | FaultSpec::Partition { at, lasting, .. }
            | FaultSpec::ClockSkew { at, lasting, .. }
            | FaultSpec::Link { at, lasting, .. } => *at + *lasting,
            FaultSpec::CrashAt { .. } | FaultSpec::Random { .. } => SimTime::ZERO,
        }
    }
}

/// The fault of a random plan's faulty spells.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RandomFault {
    /// The node is down.
    Crash,
    /// The node is stalled (see [`FaultSpec::Pause`]).
    Pause,
    /// The node works this many times slower.
    Slow(f64),
    /// The node's timers last this many times what they ask (clock skew).
    Skew(f64),
    /// The node is cut off from every other node and the bus, both ways (a
    /// network partition around it).
    Isolate,
    /// Everything the node sends or receives is dropped with probability
    /// `drop`, duplicated with probability `duplicate`, and delayed by an
    /// exponential time of mean `delay` (zero for none).
    Lossy {
        /// Probability that a message is lost.
        drop: f64,
        /// Probability that a message arrives twice.
        duplicate: f64,
        /// Mean extra latency.
        delay: SimDuration,
    },
}

/// A named point inside the completion of a handler, where a crash hits
/// between two steps that a design may or may not make atomic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seam {
    /// After the idempotent consumer recorded the message id, before the
    /// handler's state change, effect and messages.
    AfterDedup = 1,
    /// After the state change (the database write), before the messages are
    /// published: the dual-write gap. With an outbox the messages are part
    /// of the state change, so nothing is in the gap.
    AfterStateWrite = 2,
    /// After everything the handler did, before its input is acknowledged
    /// (the log offset committed, the queue message acked).
    AfterPublish = 3,
    /// In an outbox relay: after publishing a message, before marking it sent.
    InOutboxRelay = 4,
    /// Any of the handler's seams (after the dedup write if the node keeps
    /// a dedup store, after the state write, after the publish), drawn per
    /// hit from the faults stream; never a crash's recorded place.
    Any = 5,
}

impl Seam {
    /// The seam's name as scenario files and stories write it.
    pub fn label(self) -> &'static str {
        match self {
            Seam::AfterDedup => "after-dedup",
            Seam::AfterStateWrite => "after-state-write",
            Seam::AfterPublish => "after-publish",
            Seam::InOutboxRelay => "in-outbox-relay",
            Seam::Any => "any",
        }
    }

    /// The seam with code `code`.
    pub fn from_code(code: u64) -> Option<Seam> {
        [Seam::AfterDedup, Seam::AfterStateWrite, Seam::AfterPublish, Seam::InOutboxRelay]
            .into_iter()
            .find(|s| *s as u64 == code)
    }
}

/// An invariant to check.
#[derive(Clone, Debug, PartialEq)]
pub enum InvariantSpec {
    /// Every accepted entity reaches a terminal state by its deadline:
    /// `max(accepted at, last fault healed) + deadline_after_heal`. Entities
    /// whose deadline falls after the end of the run are not judged.
    NoLostEntities {
        /// The entity kind.
        entity: String,
        /// Grace period after acceptance or the last heal.
        deadline_after_heal: SimDuration,
    },
    /// No entity has `effect` applied more than once.
    NoDuplicateEffects {
        /// The effect.
        effect: EffectId,
    },
    /// Service `service` handles at most `factor` messages per accepted
    /// entity: retries and redeliveries do not multiply its load (a retry
    /// storm breaks it).
    BoundedAmplification {
        /// The entity kind it judges; `None`: every entity (one workload).
        entity: Option<String>,
        /// Index of the downstream service.
        service: usize,
        /// Messages per accepted entity, at most.
        factor: f64,
    },
    /// Service `service` never hands out more units of a key's stock than
    /// the key started with (the counter never goes below zero).
    NoOversell {
        /// Index of the service that keeps the stock.
        service: usize,
    },
    /// Every accepted entity reaches a terminal state within `within` of its
    /// acceptance or of the last fault's heal, whichever is later: the
    /// liveness phase of a run. (`no-lost-entities` is the same check under
    /// the name users ask it by.)
    TerminalWithin {
        /// The entity kind.
        entity: String,
        /// The bound.
        within: SimDuration,
    },
    /// Every saga ends fully done (every step's effect applied, no
    /// compensation) or fully compensated (every applied step undone, and
    /// nothing undone that was not done). An entity is judged once it is
    /// terminal, or once `deadline_after_heal` has passed (see
    /// `no-lost-entities`); before that its saga may still be running.
    SagaAtomicity {
        /// The entity kind it judges; `None`: every entity (one workload).
        entity: Option<String>,
        /// The steps: (effect of the step, effect of its compensation).
        steps: Vec<(EffectId, EffectId)>,
        /// Grace after acceptance or the last heal.
        deadline_after_heal: SimDuration,
    },
    /// A business rule: for every entity, the first `from` is followed by
    /// one of `to` within `within` (counted from the later of `from` and
    /// the last heal).
    LeadsTo {
        /// The entity kind it judges; `None`: every entity (one workload).
        entity: Option<String>,
        /// What starts the clock.
        from: Event,
        /// What must follow.
        to: Vec<Event>,
        /// How soon.
        within: SimDuration,
    },
    /// A business rule: no entity has `event` without an earlier `prior`.
    NeverWithout {
        /// The entity kind it judges; `None`: every entity (one workload).
        entity: Option<String>,
        /// What must not happen alone.
        event: Event,
        /// What must come first.
        prior: Event,
    },
    /// At the end of the run, service `replica`'s copy of `table` equals
    /// service `source`'s, key by key (the newest version written); the
    /// staleness of the copy (source write to replica write) is measured.
    ReplicaConvergence {
        /// Index of the service that owns the data.
        source: usize,
        /// Index of the service that keeps a copy.
        replica: usize,
        /// The table.
        table: u16,
    },
    /// Service `service`'s handlers write each row of `table` in the order
    /// the messages that caused the writes were published.
    PerKeyOrder {
        /// Index of the service.
        service: usize,
        /// The table.
        table: u16,
        /// The service's name.
        name: String,
    },
    /// Service `service`'s consumer-group lag is at most `max` records at
    /// every sample (every `every`) from the last heal + `after_heal` on.
    BoundedLag {
        /// Index of the consuming service.
        service: usize,
        /// Its name.
        name: String,
        /// Records, at most.
        max: u64,
        /// Grace after the last heal.
        after_heal: SimDuration,
        /// The sampling period.
        every: SimDuration,
    },
    /// Each write of `source` to `table` is held (or overtaken) by
    /// `replica` within `max`, or by the last heal + `after_heal` for the
    /// writes made before it.
    BoundedStaleness {
        /// Index of the source.
        source: usize,
        /// Index of the replica.
        replica: usize,
        /// The table.
        table: u16,
        /// The bound.
        max: SimDuration,
        /// Grace after the last heal.
        after_heal: SimDuration,
    },
    /// At the end, service `service`'s `table` holds the last version it
    /// wrote (from a handler) of every row.
    NoStateLoss {
        /// Index of the service.
        service: usize,
        /// The table.
        table: u16,
        /// The service's name.
        name: String,
    },
    /// Every message service `service` handles is read by an instance
    /// whose code understands its schema version: none failed, skipped,
    /// left parked or misread because of its version.
    VersionCompatible {
        /// Index of the consuming service.
        service: usize,
        /// Its name.
        name: String,
    },
}

impl InvariantSpec {
    /// The effects whose applications per entity the checker follows for
    /// this invariant (a bit each; 16 at most across a scenario).
    pub fn followed_effects(&self) -> Vec<EffectId> {
        match self {
            InvariantSpec::NoDuplicateEffects { effect } => vec![*effect],
            InvariantSpec::SagaAtomicity { steps, .. } => steps.iter().flat_map(|(d, u)| [*d, *u]).collect(),
            _ => Vec::new(),
        }
    }

    /// The invariant's name as users see it.
    pub fn name(&self, names: &Names) -> String {
        let base = self.base_name(names);
        match self.scope() {
            Some(entity)
                if !matches!(self, InvariantSpec::NoLostEntities { .. } | InvariantSpec::TerminalWithin { .. }) =>
            {
                format!("{entity}: {base}")
            }
            _ => base,
        }
    }

    /// The entity kind it judges, if it judges one kind only.
    pub fn scope(&self) -> Option<&str> {
        match self {
            InvariantSpec::NoLostEntities { entity, .. } | InvariantSpec::TerminalWithin { entity, .. } => Some(entity),
            InvariantSpec::BoundedAmplification { entity, .. }
            | InvariantSpec::SagaAtomicity { entity, .. }
            | InvariantSpec::LeadsTo { entity, .. }
            | InvariantSpec::NeverWithout { entity, .. } => entity.as_deref(),
            InvariantSpec::NoDuplicateEffects { .. }
            | InvariantSpec::NoOversell { .. }
            | InvariantSpec::ReplicaConvergence { .. }
            | InvariantSpec::VersionCompatible { .. }
            | InvariantSpec::NoStateLoss { .. }
            | InvariantSpec::PerKeyOrder { .. }
            | InvariantSpec::BoundedLag { .. }
            | InvariantSpec::BoundedStaleness { .. } => None,
        }
    }

    fn base_name(&self, names: &Names) -> String {
        match self {
            InvariantSpec::NoLostEntities { entity, .. } => format!("no-lost-entities({entity})"),
            InvariantSpec::NoDuplicateEffects { effect } => {
                format!("no-duplicate-effects({})", names.effect_name(*effect))
            }
            InvariantSpec::NoOversell { .. } => "no-oversell".to_string(),
            InvariantSpec::BoundedAmplification { factor, .. } => format!("bounded-amplification(x{factor})"),
            InvariantSpec::ReplicaConvergence { table, .. } => {
                format!("replica-convergence({})", names.table_name(*table))
            }
            InvariantSpec::VersionCompatible { name, .. } => format!("version-compatible({name})"),
            InvariantSpec::PerKeyOrder { name, table, .. } => {
                format!("per-key-order({name}.{})", names.table_name(*table))
            }
            InvariantSpec::BoundedLag { name, max, .. } => format!("bounded-lag({name}, {max})"),
            InvariantSpec::BoundedStaleness { table, max, .. } => {
                format!("bounded-staleness({}, {max})", names.table_name(*table))
            }
            InvariantSpec::NoStateLoss { name, table, .. } => {
                format!("no-state-loss({name}.{})", names.table_name(*table))
            }
            InvariantSpec::TerminalWithin { entity, within, .. } => format!("terminal-within({entity}, {within})"),
            InvariantSpec::SagaAtomicity { steps, .. } => {
                let steps: Vec<String> =
                    steps.iter().map(|(d, u)| format!("{}/{}", names.effect_name(*d), names.effect_name(*u))).collect();
                format!("saga-atomicity({})", steps.join(", "))
            }
            InvariantSpec::LeadsTo { from, to, within, .. } => {
                let to: Vec<String> = to.iter().map(|e| e.name(names)).collect();
                format!("{} leads-to {} within {within}", from.name(names), to.join(" or "))
            }
            InvariantSpec::NeverWithout { event, prior, .. } => {
                format!("never {} without {}", event.name(names), prior.name(names))
            }
        }
    }
}

/// Something that happens to an entity, as business rules name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A message of this kind is published for it.
    Kind(Kind),
    /// This effect is applied to it.
    Effect(EffectId),
    /// Its state machine enters this state.
    State(u16),
    /// It is accepted (the workload's entry service took it).
    Accepted,
}

impl Event {
    /// The event's name as the scenario wrote it.
    pub fn name(&self, names: &Names) -> String {
        match *self {
            Event::Kind(k) => names.kind_name(k).to_string(),
            Event::Effect(e) => names.effect_name(e).to_string(),
            Event::State(s) => format!("state {}", names.state_name(s)),
            Event::Accepted => "accepted".to_string(),
        }
    }
}

/// Limits on a run: hitting one stops the run with a clear message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Events processed, at most.
    pub events_max: u64,
    /// Entities created by the workload, at most.
    pub entities_max: u64,
}

impl Default for Limits {
    fn default() -> Self {
        // Twenty million events take seconds; the bundled scenarios need
        // under three million.
        Limits { events_max: 10_000_000, entities_max: 10_000_000 }
    }
}

/// Everything the kernel needs to run.
#[derive(Clone, Debug)]
pub struct System {
    /// The scenario's name.
    pub name: String,
    /// Interned names.
    pub names: Names,
    /// The buses: one, or several of different kinds.
    pub buses: Vec<Bus>,
    /// The bus of each topic, by kind (an index into `buses`); a kind past
    /// its end travels on the first bus.
    pub topic_bus: Vec<u32>,
    /// The services, in declaration order.
    pub services: Vec<ServiceSpec>,
    /// The workloads: one or more, each of its own entity kind.
    pub workloads: Vec<WorkloadSpec>,
    /// The fault plan.
    pub faults: Vec<FaultSpec>,
    /// The invariants.
    pub invariants: Vec<InvariantSpec>,
    /// The end of simulated time.
    pub duration: SimDuration,
    /// The start of the run that every metric and invariant count leaves
    /// out: entities created before it are not judged, and time-averages
    /// start here.
    pub warmup: SimDuration,
    /// The seed used when none is given.
    pub seed: u64,
    /// Limits.
    pub limits: Limits,
}

impl System {
    /// The workload that creates entities of kind `entity`.
    pub fn workload_of(&self, entity: &str) -> Option<usize> {
        self.workloads.iter().position(|w| w.entity == entity)
    }

    /// The entity kind of workload `w` (`entity` when out of range).
    pub fn entity_name(&self, w: usize) -> &str {
        self.workloads.get(w).map_or("entity", |w| w.entity.as_str())
    }

    /// When the last fault heals (time zero without faults).
    pub fn last_heal(&self) -> SimTime {
        self.faults.iter().map(FaultSpec::heals_at).max().unwrap_or(SimTime::ZERO)
    }
}

impl System {
    /// Every node's name, in node order: services in order, then their
    /// instances, then broker nodes.
    pub fn node_names(&self) -> Vec<String> {
        self.services
            .iter()
            .flat_map(|s| (0..s.instances).map(move |i| s.node_name(i)))
            .chain(self.broker_names())
            .collect()
    }

    /// The service of each service instance, in node order.
    pub fn node_services(&self) -> Vec<usize> {
        self.services.iter().enumerate().flat_map(|(i, s)| std::iter::repeat_n(i, s.instances as usize)).collect()
    }

    /// The broker nodes that can crash, in broker order: the log's
    /// (`name-1` ... of its bus), then the queue broker (`name-1`).
    pub fn broker_names(&self) -> Vec<String> {
        let log = self.buses.iter().find_map(|b| match &b.spec {
            BusSpec::Log { brokers: Some(spec), .. } => Some((b, spec.count)),
            _ => None,
        });
        // The queue broker, which can crash (partitions call it "bus").
        let queue = self.buses.iter().find(|b| matches!(b.spec, BusSpec::Queue { .. })).map(|b| (b, 1));
        log.into_iter().chain(queue).flat_map(|(b, n)| (1..=n).map(move |i| format!("{}-{i}", b.name))).collect()
    }

    /// The bus of topic `kind`.
    pub fn bus_of(&self, kind: Kind) -> &BusSpec {
        let i = self.topic_bus.get(kind.0 as usize).copied().unwrap_or(0);
        &self.buses[i as usize].spec
    }

    /// Its Log bus, if any.
    pub fn log(&self) -> Option<&BusSpec> {
        self.buses.iter().map(|b| &b.spec).find(|b| matches!(b, BusSpec::Log { .. }))
    }

    /// Its Queue bus, if any.
    pub fn queue(&self) -> Option<&BusSpec> {
        self.buses.iter().map(|b| &b.spec).find(|b| matches!(b, BusSpec::Queue { .. }))
    }

    /// Its Ephemeral bus, if any.
    pub fn ephemeral(&self) -> Option<&BusSpec> {
        self.buses.iter().map(|b| &b.spec).find(|b| matches!(b, BusSpec::Ephemeral { .. }))
    }
}

/// One bus of a system: its name (its broker nodes are `name-1`, ...) and
/// its delivery semantics.
#[derive(Clone, Debug, PartialEq)]
pub struct Bus {
    /// Its name: its broker nodes are `name-1`, `name-2`, ...
    pub name: String,
    /// What it keeps and how it delivers.
    pub spec: BusSpec,
}

impl Bus {
    /// The only bus of a system, carrying every topic (named `broker`, so
    /// its broker nodes are `broker-1`, ...).
    pub fn only(spec: BusSpec) -> Vec<Bus> {
        vec![Bus { name: "broker".to_string(), spec }]
    }
}
