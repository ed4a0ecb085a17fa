//! The RON schema of scenario files, exactly as users write them.
//!
//! Why it is over 800 lines: it is the whole file format in one place, each
//! field with its doc comment (what the reference documents); types only.
//!
//! Durations, rates and names stay strings here; [`super::parse`] checks
//! them so that every error can point at the value in the file. No
//! `untagged` or `flatten`: they would ruin serde's error messages.

use serde::{Deserialize, Serialize};

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used in reports and commands.
    pub name: String,
    /// The question the scenario answers, in one sentence.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub question: String,
    /// The seed used when `--seed` is not given.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub seed: u64,
    /// End of simulated time, e.g. `"20m"`.
    pub duration: String,
    /// Discard this first stretch of the run from every metric and invariant count.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub warmup: Option<String>,
    /// The bus, when the system has one (it carries every topic).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub bus: Option<Bus>,
    /// The buses, when the system has several (at most one of each kind):
    /// each carries the topics it lists; the first also carries every topic
    /// no bus lists.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub buses: Vec<Bus>,
    /// The services.
    pub services: Vec<Service>,
    /// The workload, when the system has one.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub workload: Option<Workload>,
    /// The workloads, when entities of several kinds arrive at once (each
    /// its own entity kind, entry service and arrivals).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub workloads: Vec<Workload>,
    /// The fault plan.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub faults: Vec<Fault>,
    /// The invariants.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub invariants: Vec<Invariant>,
    /// Limits on the run.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub limits: Limits,
}

/// The bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Bus {
    /// Fire-and-forget pub/sub.
    Ephemeral {
        /// Its name, under `buses` (default `"broker"`): its broker nodes
        /// are `name-1`, `name-2`, ...
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        name: Option<String>,
        /// The topics it carries, under `buses`.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        topics: Vec<String>,
        /// Delivery latency.
        latency: Dist,
    },
    /// A partitioned log with consumer groups and committed offsets.
    Log {
        /// Its name, under `buses` (default `"broker"`): its broker nodes
        /// are `name-1`, `name-2`, ...
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        name: Option<String>,
        /// The topics it carries, under `buses`.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        topics: Vec<String>,
        /// Partitions per topic.
        #[serde(default = "one")]
        #[serde(skip_serializing_if = "is_one")]
        partitions: u32,
        /// Fetch latency.
        latency: Dist,
        /// Records fetched but not yet processed, per consumer instance.
        #[serde(default = "default_fetch_max")]
        #[serde(skip_serializing_if = "is_default_fetch_max")]
        fetch_max: u32,
        /// Records older than this are deleted.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        retention: Option<String>,
        /// Only this many newest records per partition are kept.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        retention_records: Option<u64>,
        /// Topics compacted to the newest record per key.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        compacted: Vec<String>,
        /// A crashed member's partitions move after this long (default 10s).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        session_timeout: Option<String>,
        /// Broker nodes, replication and producer settings.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        brokers: Option<Brokers>,
        /// An ideal broker's producers give a record up when they cannot
        /// deliver it for this long (default 2m).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        delivery_timeout: Option<String>,
        /// Topics with their own settings; the others have the bus's.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        per_topic: Vec<Topic>,
    },
    /// Durable queues with acknowledgements, as the broker `kind` keeps them.
    Queue {
        /// Its name, under `buses` (default `"broker"`): its broker nodes
        /// are `name-1`, `name-2`, ...
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        name: Option<String>,
        /// The topics it carries, under `buses`.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        topics: Vec<String>,
        /// Delivery latency.
        latency: Dist,
        /// Which broker's queue this models: requeue position, delivery-limit
        /// counting, what an ack timeout does and the default prefetch.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        kind: QueueKind,
        /// Unacknowledged deliveries are taken back after this long:
        /// RabbitMQ's `consumer_timeout` closes the consumer's channel
        /// (Classic, Quorum); JetStream's `AckWait` redelivers the message.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        ack_timeout: Option<String>,
        /// Dead-letter a message after this many deliveries, counted as the
        /// kind's broker counts: Quorum's `x-delivery-limit: N` allows N + 1
        /// deliveries, JetStream's `max_deliver: N` allows N.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        delivery_limit: Option<u32>,
        /// A connection blocked this long is closed, losing what it held (default 60s).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        heartbeat: Option<String>,
        /// Flow control: a consumer is sent at most this many bytes of
        /// messages it has not started on (on the wire and in its buffers):
        /// what an auto-ack consumer's crash loses (default `"4.4MB"`,
        /// measured on RabbitMQ 3.10 with pika on Linux).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        window: Option<String>,
        /// The size of a message, for the window (default `"1KB"`).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        message_size: Option<String>,
        /// A client whose connection closed (the broker closed its channel
        /// at an ack timeout, or the broker restarted) connects again after
        /// this long (default 5s, the Java client's recovery interval).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        reconnect: Option<String>,
        /// Queues survive a restart of the broker (`broker-1`) (default
        /// true); a transient queue is gone with everything in it. Quorum
        /// queues are always durable.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        durable: Option<bool>,
        /// Messages are written to disk and survive a restart in a durable
        /// queue (default true; RabbitMQ's delivery mode 2, JetStream's file
        /// storage); transient ones are lost.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        persistent: Option<bool>,
        /// Publisher confirms: a producer keeps each message until the
        /// broker confirms it, and resends what is unconfirmed when the
        /// broker is back (a confirm lost in a crash makes a duplicate).
        /// Without them a publish to a broker that is down is lost.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        confirms: bool,
        /// RedisStream: the stream keeps only this many newest entries
        /// (`XADD ... MAXLEN`); an entry trimmed before it was read, or while
        /// pending with a consumer that died, is lost.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        max_len: Option<u64>,
    },
}

impl Bus {
    /// Its name and the topics it lists.
    pub fn binding(&self) -> (Option<&str>, &[String]) {
        match self {
            Bus::Ephemeral { name, topics, .. } | Bus::Log { name, topics, .. } | Bus::Queue { name, topics, .. } => {
                (name.as_deref(), topics)
            }
        }
    }

    /// Its kind, as the scenario spells it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Bus::Ephemeral { .. } => "Ephemeral",
            Bus::Log { .. } => "Log",
            Bus::Queue { .. } => "Queue",
        }
    }
}

impl Scenario {
    /// The broker nodes that can crash, in broker order: the log's
    /// (`name-1` ... of its bus, `broker-1` ... unnamed), then the queue
    /// broker.
    pub fn broker_names(&self) -> Vec<String> {
        let named = |b: &Bus, n: u32| {
            let name = b.binding().0.unwrap_or("broker").to_string();
            (1..=n).map(move |i| format!("{name}-{i}"))
        };
        let log = self.log_bus().and_then(|b| match b {
            Bus::Log { brokers: Some(spec), .. } => Some(named(b, spec.count.min(1_000))),
            _ => None,
        });
        let queue = self.queue_broker_name();
        log.into_iter().flatten().chain(queue).collect()
    }

    /// The queue broker's node, if the system has a Queue bus.
    pub fn queue_broker_name(&self) -> Option<String> {
        self.queue_bus().map(|b| format!("{}-1", b.binding().0.unwrap_or("broker")))
    }

    /// The bus that carries `topic`: the one that lists it, else the first.
    pub fn bus_of(&self, topic: &str) -> Option<&Bus> {
        let mut all = self.bus.iter().chain(&self.buses);
        all.clone().find(|b| b.binding().1.iter().any(|t| t == topic)).or_else(|| all.next())
    }

    /// Its Log bus, if any.
    pub fn log_bus(&self) -> Option<&Bus> {
        self.bus.iter().chain(&self.buses).find(|b| matches!(b, Bus::Log { .. }))
    }

    /// Its Queue bus, if any.
    pub fn queue_bus(&self) -> Option<&Bus> {
        self.bus.iter().chain(&self.buses).find(|b| matches!(b, Bus::Queue { .. }))
    }
}

/// One log topic's own settings: what it leaves out, it takes from its bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// The topic.
    pub name: String,
    /// Its partitions.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub partitions: Option<u32>,
    /// Its records older than this are deleted.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub retention: Option<String>,
    /// Only this many newest records per partition are kept.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub retention_records: Option<u64>,
    /// Compacted to the newest record per key.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub compacted: bool,
    /// Copies of each partition on the broker nodes.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub replication: Option<u32>,
    /// How producers choose a record's partition.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub key: TopicKey,
}

/// How producers choose a record's partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub enum TopicKey {
    /// By the message's key: one key, one partition, in order.
    #[default]
    Key,
    /// In turn, whatever the key (Kafka's null key): no order per key.
    RoundRobin,
}

/// The broker whose queues a Queue bus models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub enum QueueKind {
    /// A RabbitMQ classic queue: requeued at the head, no delivery limit,
    /// unlimited prefetch unless set.
    #[default]
    Classic,
    /// A RabbitMQ quorum queue: requeued at the tail, `x-delivery-limit`,
    /// unlimited prefetch unless set.
    Quorum,
    /// A NATS JetStream consumer: `max_deliver`, `AckWait` redelivers one
    /// message, `max_ack_pending` 1000 unless set.
    JetStream,
    /// A Redis stream's consumer group: pending entries stay with a crashed
    /// consumer until claimed (`ack_timeout`: the `XAUTOCLAIM` idle time) or
    /// re-read at its restart; `max_len` trims the stream.
    RedisStream,
}

fn one() -> u32 {
    1
}
fn default_fetch_max() -> u32 {
    500
}
fn default_queue() -> u32 {
    10_000
}

/// Broker nodes that keep a log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Brokers {
    /// Broker nodes (`broker-1`, ...).
    pub count: u32,
    /// Copies of each partition.
    #[serde(default = "one")]
    #[serde(skip_serializing_if = "is_one")]
    pub replication: u32,
    /// In-sync replicas required for `acks: All`.
    #[serde(default = "one")]
    #[serde(skip_serializing_if = "is_one")]
    pub min_insync: u32,
    /// When producers are acknowledged.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub acks: AcksSchema,
    /// Allow an out-of-sync replica to become leader.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub unclean_election: bool,
    /// Flush interval; absent: every append is on disk at once.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub flush: Option<String>,
    /// Follower fetch latency (default: the bus latency).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub replica_latency: Option<Dist>,
    /// Producer resends.
    #[serde(default = "three")]
    #[serde(skip_serializing_if = "is_three")]
    pub retries: u32,
    /// Producer acknowledgement timeout (default 5s).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub retry_after: Option<String>,
    /// Idempotent producers.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub idempotent: bool,
    /// A broker cut off from the controller quorum this long is fenced (default 9s).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub session_timeout: Option<String>,
    /// A follower that has not caught up for this long leaves the in-sync set (default 30s).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub replica_lag: Option<String>,
}

fn three() -> u32 {
    3
}

/// Producer acknowledgements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub enum AcksSchema {
    /// None.
    None,
    /// From the leader.
    Leader,
    /// From every in-sync replica.
    #[default]
    All,
}

/// A distribution of durations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Dist {
    /// Always this long.
    Const(String),
    /// Exponential.
    Exp {
        /// Mean.
        mean: String,
    },
    /// Uniform between two bounds.
    Uniform {
        /// Lower bound.
        min: String,
        /// Upper bound.
        max: String,
    },
    /// Log-normal.
    LogNormal {
        /// Median.
        median: String,
        /// Shape.
        sigma: f64,
    },
    /// One of the listed durations, each equally likely.
    Empirical(Vec<String>),
}

/// Where a service's state lives.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub enum State {
    /// Lost on crash.
    #[default]
    Volatile,
    /// Survives crashes (a database per instance).
    Durable,
    /// Survives crashes, in one database the service's instances share.
    Shared,
}

/// A service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Name; instances are `name-1`, `name-2`, ...
    pub name: String,
    /// Instances.
    #[serde(default = "one")]
    #[serde(skip_serializing_if = "is_one")]
    pub instances: u32,
    /// Concurrent workers per instance.
    #[serde(default = "one")]
    #[serde(skip_serializing_if = "is_one")]
    pub workers: u32,
    /// Capacity of each instance's queue of waiting messages.
    #[serde(default = "default_queue")]
    #[serde(skip_serializing_if = "is_default_queue")]
    pub queue: u32,
    /// Where state lives.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub state: State,
    /// What it consumes.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub consume: Consume,
    /// Skip messages already handled (an idempotent consumer).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub dedup: Option<Dedup>,
    /// Deployed at this time; its instances are down before.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub starts_at: Option<String>,
    /// Which instance takes a request, a call or a pushed message.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub routing: Routing,
    /// A transactional outbox instead of publishing directly.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub outbox: Option<Outbox>,
    /// A state machine per entity, with deadlines.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub machine: Option<MachineSchema>,
    /// Where its timers live: in memory (lost on crash) or in its database.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub timers: State,
    /// The schema version of the messages it publishes (default: the
    /// version of the message handled); with it, the version its code runs.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub version: Option<u16>,
    /// The highest schema version its code understands (default: its
    /// `version`; without either, it reads every version). A `RollingDeploy`
    /// raises both on each instance it upgrades.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub reads: Option<u16>,
    /// What it does with a message of a version above what it reads: `Fail`
    /// (its handler fails: retried, redelivered or dead-lettered as any
    /// failure), `Skip` (consumed, nothing done), `Park` (set aside until an
    /// instance that reads it takes it). Without it, it reads the message
    /// as its own version: the fields it does not know read as 0 (misread).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub unknown_version: Option<UnknownVersion>,
    /// Add and remove instances on utilisation, as Kubernetes' horizontal
    /// pod autoscaler does; `instances` is then the count it starts with.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub autoscale: Option<Autoscale>,
    /// "Hey, I'm back": on every start after the first (a restart, a late
    /// deployment, a new instance) ask the service that owns a table for a
    /// snapshot of it, and work on nothing until it is loaded; then resume
    /// from the stream.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub rehydrate: Option<Rehydrate>,
    /// Event-sourced state: its table lives in memory and is rebuilt, on
    /// every start after the first, by replaying its own events from the
    /// log (from its latest snapshot, if it takes them).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub event_sourced: Option<EventSourced>,
    /// Its handlers.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub on: Vec<Handler>,
}

/// What a consumer does with a message of a schema version it does not read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum UnknownVersion {
    /// Its handler fails.
    Fail,
    /// It is consumed and nothing is done.
    Skip,
    /// It is set aside (in the service's database) until an instance that
    /// reads it takes it.
    Park,
}

/// What a service consumes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Consume {
    /// Topics (message kinds).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub topics: Vec<String>,
    /// When log offsets are committed.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub commit: Commit,
    /// Queue bus: a queue shared with the services that name it.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub queue: Option<String>,
    /// Queue bus: when messages are acknowledged.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub ack: Option<Ack>,
    /// Queue bus: unacknowledged messages an instance may hold.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub prefetch: Option<u32>,
    /// Log: where a consumer group created later begins.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub start: Start,
}

/// Where a new log consumer group begins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub enum Start {
    /// The oldest record still kept.
    #[default]
    Earliest,
    /// The end of the log: only what is appended from now on.
    Latest,
}

/// When a queue consumer acknowledges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Ack {
    /// On delivery: at-most-once.
    Auto,
    /// After processing: at-least-once.
    Manual,
}

/// When a log consumer commits its offsets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub enum Commit {
    /// After processing (at-least-once).
    #[default]
    AfterProcess,
    /// On fetch, before processing (at-most-once).
    BeforeProcess,
    /// The fetch position, periodically.
    Auto {
        /// The interval.
        every: String,
    },
    /// With the consumer's own state, atomically (exactly-once effects).
    Transactional,
}

/// An idempotent consumer's store of handled message ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Dedup {
    /// In each instance's memory: lost on crash.
    Volatile {
        /// Ids remembered.
        window: u32,
    },
    /// In the service's database: survives crashes.
    Durable {
        /// Ids remembered.
        window: u32,
    },
}

/// A declarative handler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Handler {
    /// Accepts the workload's entity.
    Accept {
        /// The entity kind.
        entity: String,
        /// Processing time.
        work: Dist,
        /// Kinds to publish.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        emit: Vec<String>,
        /// The entity is done once accepted (a single-station system).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        terminal: bool,
        /// Record the entity under its key in this table (replicated data).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        write: Option<String>,
        /// Fields of what it publishes, set from constants or other fields
        /// (the rest are copied from the message handled).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        set: Vec<Set>,
        /// With `write`: the field whose value the row holds (default: the
        /// entity's id, which is also the row's version).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        write_value: Option<String>,
        /// A synchronous call to another service before completing.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        call: Option<CallSchema>,
        /// State machine: the state the entity enters.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        to: Option<String>,
    },
    /// Handles a consumed message kind.
    Handle {
        /// The kind.
        event: String,
        /// Processing time.
        work: Dist,
        /// Kinds to publish.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        emit: Vec<String>,
        /// External effect to apply.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        effect: Option<String>,
        /// The entity is done.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        terminal: bool,
        /// Messages with these keys make the handler fail (poison messages).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        fail_keys: Vec<u64>,
        /// Record the entity under the message's key in this table.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        write: Option<String>,
        /// Fields of what it publishes, set from constants or other fields
        /// (the rest are copied from the message handled).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        set: Vec<Set>,
        /// With `write`: the field whose value the row holds (default: the
        /// entity's id, which is also the row's version).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        write_value: Option<String>,
        /// Take one unit of stock per message key.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        reserve: Option<ReserveSchema>,
        /// Kinds to publish when no stock is left.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        rejected: Vec<String>,
        /// A synchronous call to another service before completing.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        call: Option<CallSchema>,
        /// A business refusal some entities meet.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        decline: Option<DeclineSchema>,
        /// Probability that an attempt fails for a passing reason (retried
        /// by a log or queue consumer).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        flaky: f64,
        /// State machine: the states in which the handler applies (any if empty).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        from: Vec<String>,
        /// State machine: the state the entity enters.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        to: Option<String>,
    },
}

impl Handler {
    /// Its synchronous call, if it makes one.
    pub fn call(&self) -> Option<&CallSchema> {
        match self {
            Handler::Accept { call, .. } | Handler::Handle { call, .. } => call.as_ref(),
        }
    }

    /// The table it writes, if it writes one.
    pub fn writes(&self) -> Option<&str> {
        match self {
            Handler::Accept { write, .. } | Handler::Handle { write, .. } => write.as_deref(),
        }
    }
}

/// A field of the messages a handler publishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Set {
    /// The field.
    pub field: String,
    /// Its new value.
    pub to: SetTo,
}

/// A field's new value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum SetTo {
    /// This value.
    Const(i64),
    /// The value of another field of the message handled.
    Copy(String),
    /// Its value in the message handled, plus this.
    Add(i64),
}

/// A field of a workload's requests and its value per entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Its name, e.g. `email`.
    pub name: String,
    /// Its value per entity.
    pub value: FieldValue,
}

/// A field's value in a workload's requests: the same for every seed and
/// every redelivery of an entity, and drawn from no random stream (adding a
/// field changes no arrival).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum FieldValue {
    /// This value.
    Const(i64),
    /// Uniform over `lo..=hi`, per entity (a hash of the seed and the entity).
    Uniform(i64, i64),
    /// The entity's number among its workload's arrivals (1, 2, ...): a new
    /// value per entity (a new email address per change).
    Sequential,
    /// The request's key.
    Key,
}

/// Messages held back on a link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReorderSchema {
    /// Probability that a message is held back.
    pub probability: f64,
    /// By how much.
    pub by: Dist,
}

/// A state machine per entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineSchema {
    /// States that end the entity.
    pub terminal: Vec<String>,
    /// Deadlines of states.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub timeouts: Vec<TimeoutSchema>,
}

/// A state's deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutSchema {
    /// The state.
    pub state: String,
    /// How long after entering it.
    pub after: String,
    /// The state entered when it passes.
    pub to: String,
    /// Kinds published when it passes.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub emit: Vec<String>,
    /// An effect applied when it passes.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub effect: Option<String>,
}

/// A saga step and its compensation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSchema {
    /// The step's effect.
    pub effect: String,
    /// The effect that undoes it.
    pub compensation: String,
}

/// A synchronous request/response call and the caller's defences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSchema {
    /// The service called.
    pub service: String,
    /// The request kind its handler handles.
    pub request: String,
    /// An attempt without a reply for this long has failed.
    pub timeout: String,
    /// One-way network latency (default 1ms).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub latency: Option<Dist>,
    /// Attempts after the first.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub retries: u32,
    /// The wait between attempts (default: none).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub backoff: Option<BackoffSchema>,
    /// A circuit breaker.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub breaker: Option<BreakerSchema>,
    /// A token bucket per caller instance.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub rate_limit: Option<RateLimitSchema>,
    /// Attempts in flight per caller instance, at most.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub bulkhead: Option<u32>,
    /// Kinds to publish when the call fails for good.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub on_failure: Vec<String>,
}

/// Exponential backoff with jitter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffSchema {
    /// The first wait.
    pub base: String,
    /// Growth per retry.
    #[serde(default = "two")]
    #[serde(skip_serializing_if = "is_two")]
    pub factor: f64,
    /// The longest wait.
    pub max: String,
    /// The random share of each wait, 0 to 1.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub jitter: f64,
}

fn two() -> f64 {
    2.0
}

/// A circuit breaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSchema {
    /// Consecutive failures that open it.
    pub failures: u32,
    /// How long it stays open before a trial call.
    pub open_for: String,
}

/// A token bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSchema {
    /// Attempts per second.
    pub per_second: f64,
    /// Attempts in a burst.
    pub burst: u32,
}

/// A business refusal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclineSchema {
    /// The share of entities refused.
    pub probability: f64,
    /// Kinds published instead of `emit`.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub emit: Vec<String>,
}

/// A stock reservation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReserveSchema {
    /// Units per key at the start.
    pub initial: u32,
    /// Concurrency control.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub control: Control,
}

/// Concurrency control for a shared counter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub enum Control {
    /// None (a race).
    #[default]
    None,
    /// A lock per key.
    Lock,
    /// A version check; the loser retries.
    Optimistic,
}

/// Keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Keys {
    /// Uniform over `0..n`.
    Uniform(u64),
    /// One key per entity: its number among the workload's arrivals (1, 2, ...).
    Sequential,
}

/// The workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Workload {
    /// Poisson arrivals.
    Poisson {
        /// Arrival rate, e.g. `"50/s"`.
        rate: String,
        /// Entity kind.
        entity: String,
        /// Fields of its requests, and their values.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        fields: Vec<Field>,
        /// The schema version of its requests (default 1).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        version: Option<u16>,
        /// Keys.
        keys: Keys,
        /// First arrival no earlier than this.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        start: Option<String>,
        /// No arrivals from this time on (default: the duration).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        stop: Option<String>,
        /// How the rate changes over time (default: constant).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        shape: Shape,
    },
    /// Arrivals exactly `1/rate` apart: a scripted load, or with `count` a
    /// batch of exactly that many (a backlog to drain).
    Regular {
        /// Arrival rate, e.g. `"1000/s"`.
        rate: String,
        /// Entity kind.
        entity: String,
        /// Fields of its requests, and their values.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        fields: Vec<Field>,
        /// The schema version of its requests (default 1).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        version: Option<u16>,
        /// Keys.
        keys: Keys,
        /// First arrival at this time.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        start: Option<String>,
        /// No arrivals from this time on (default: the duration).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        stop: Option<String>,
        /// At most this many arrivals.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        count: Option<u64>,
        /// How the rate changes over time (default: constant).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        shape: Shape,
    },
    /// Arrivals replayed from a recorded file: a CSV of `time,key` lines,
    /// times (`"1.5s"`, or seconds as a number) from the start of the run
    /// in order, keys unsigned integers; a first line `time,key` is a
    /// header.
    Replay {
        /// The CSV file, relative to the scenario file's directory.
        file: String,
        /// Entity kind.
        entity: String,
        /// Fields of its requests, and their values.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        fields: Vec<Field>,
        /// The schema version of its requests (default 1).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        version: Option<u16>,
        /// Every recorded time is shifted by this much.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        start: Option<String>,
        /// No arrivals from this time on (default: the duration).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        stop: Option<String>,
    },
}

impl Workload {
    /// The entity kind it creates.
    pub fn entity(&self) -> &str {
        match self {
            Workload::Poisson { entity, .. } | Workload::Regular { entity, .. } | Workload::Replay { entity, .. } => {
                entity
            }
        }
    }

    /// The fields of its requests and their schema version.
    pub fn payload(&self) -> (&[Field], Option<u16>) {
        match self {
            Workload::Poisson { fields, version, .. }
            | Workload::Regular { fields, version, .. }
            | Workload::Replay { fields, version, .. } => (fields, *version),
        }
    }

    /// Its start and stop.
    pub fn window_mut(&mut self) -> (&mut Option<String>, &mut Option<String>) {
        match self {
            Workload::Poisson { start, stop, .. }
            | Workload::Regular { start, stop, .. }
            | Workload::Replay { start, stop, .. } => (start, stop),
        }
    }

    /// Its rate, unless it replays a file.
    pub fn rate_mut(&mut self) -> Option<&mut String> {
        match self {
            Workload::Poisson { rate, .. } | Workload::Regular { rate, .. } => Some(rate),
            Workload::Replay { .. } => None,
        }
    }
}

/// Which of a service's instances takes a request, a call or a pushed
/// message (a load balancer's strategy). Each skips instances that are down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub enum Routing {
    /// The key's home instance (`key mod instances`), else the next one up:
    /// one key, one instance, while it is up.
    #[default]
    ByKey,
    /// Each instance in turn.
    RoundRobin,
    /// An instance drawn at random (its own stream per service).
    Random,
    /// The instance with the fewest messages at work or waiting (the lowest
    /// number among equals).
    LeastLoaded,
}

/// How a workload's rate changes over time: the rate at time `t` is the
/// workload's `rate` times the shape's factor at `t`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub enum Shape {
    /// Factor 1 all along.
    #[default]
    Constant,
    /// Factor `factor` for `lasting` every `every`, the first at `at`
    /// (default: `every`); 1 between bursts.
    Burst {
        /// Time between the starts of two bursts.
        every: String,
        /// How long a burst lasts.
        lasting: String,
        /// The rate's factor during a burst.
        factor: f64,
        /// The first burst starts here (default: `every`).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        at: Option<String>,
    },
    /// Factor 1 until the first step, then each step's from its time on.
    Steps(Vec<Step>),
    /// Factor `from` (default 1) until `at` (default 0), then linearly to
    /// `to` over `over`, then `to`.
    Ramp {
        /// The factor at the end of the ramp.
        to: f64,
        /// How long the ramp takes.
        over: String,
        /// The factor before the ramp (default 1).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        from: Option<f64>,
        /// When the ramp starts (default 0).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        at: Option<String>,
    },
    /// A daily cycle: the factor goes from `low` to `high` and back once
    /// per `period` (default 24h), a cosine peaking at `peak_at` (default
    /// 12h).
    Daily {
        /// The factor at the trough.
        low: f64,
        /// The factor at the peak.
        high: f64,
        /// When the peak is, within the period (default 12h).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        peak_at: Option<String>,
        /// The cycle's length (default 24h).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        period: Option<String>,
    },
}

/// One step of a `Steps` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// From this time on.
    pub at: String,
    /// The rate's factor.
    pub factor: f64,
}

/// Where a rewound consumer group resumes, per partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum RewindTo {
    /// The first record the log still has (`--to-earliest`).
    Earliest,
    /// The end of the log (`--to-latest`): what is not processed is skipped.
    Latest,
    /// This offset, or the log's end if it is past it (`--to-offset`).
    Offset(u64),
    /// The first record appended at or after this time (`--to-datetime`).
    Time(String),
}

/// A horizontal autoscaler (Kubernetes' HPA on CPU): every `every` it
/// sets the instances to `ceil(sum of the ready instances' utilisation /
/// target)` within `min..=max`, unless that is within `tolerance` of the
/// count now; it scales in only to the highest count it asked for over the
/// last `stabilization`. A new instance is ready `startup` after it is
/// asked for: it then takes requests, joins its consumer groups (a
/// rebalance) and its queues. An instance removed drains: it takes nothing
/// new, finishes what it holds, commits, and leaves its group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Autoscale {
    /// Fewest instances.
    pub min: u32,
    /// Most instances (the service's nodes are `name-1` to `name-max`).
    pub max: u32,
    /// Target utilisation of the workers, in (0, 1], e.g. `0.6`.
    pub target: f64,
    /// How often it decides (default `"15s"`, the HPA's sync period).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub every: Option<String>,
    /// From the decision to a new instance taking work (default `"10s"`).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub startup: Option<String>,
    /// Scale-in waits for this long a window of lower recommendations
    /// (default `"5m"`, the HPA's).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub stabilization: Option<String>,
    /// Relative change in utilisation ignored (default `0.1`, the HPA's).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub tolerance: Option<f64>,
}

/// A service whose state is the fold of its own events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSourced {
    /// The topic of its events (one of its handlers writes `table` and
    /// emits it; it travels on a Log bus).
    pub topic: String,
    /// The table the events rebuild.
    pub table: String,
    /// Take a snapshot of the table (in its database) every this many
    /// writes; a rebuild starts from the latest (default: none).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub snapshot_every: Option<u32>,
    /// Replay time per event (default `"20us"`); loading a snapshot takes
    /// as long per row.
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub per_event: Option<String>,
}

/// Re-hydration from a snapshot the owner of the data serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rehydrate {
    /// The service that owns the data; one of its instances that is up
    /// answers from its own state.
    pub from: String,
    /// The table copied (one `from` writes).
    pub table: String,
    /// One-way network latency of the request and of the reply (default
    /// `Const("1ms")`).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub latency: Option<Dist>,
    /// Transfer and load time per row (default `"10us"`).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub per_row: Option<String>,
    /// A request unanswered this long is sent again, to the owner's next
    /// instance (default `"1s"`).
    #[serde(default)]
    #[serde(skip_serializing_if = "is_default")]
    pub timeout: Option<String>,
}

/// A transactional outbox and its relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outbox {
    /// How often the relay publishes what is waiting.
    pub poll: String,
}

/// A seam inside a handler's completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Seam {
    /// After the dedup-store write, before the state change and effects.
    AfterDedup,
    /// After the state write, before the publish.
    AfterStateWrite,
    /// After the publish, before the input is acknowledged.
    AfterPublish,
    /// In the outbox relay, after publishing, before marking sent.
    InOutboxRelay,
    /// Any seam of the handler, drawn per hit.
    Any,
}

/// A fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Fault {
    /// A crash and its restart.
    Crash {
        /// Node name.
        node: String,
        /// When: a time, or a range `"2m..3m"` to draw from per seed.
        at: String,
        /// For how long.
        down_for: String,
    },
    /// A network partition between two groups of nodes (`"bus"` is one).
    Partition {
        /// The two groups.
        groups: Vec<Vec<String>>,
        /// Block only from the first group to the second.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        one_way: bool,
        /// When.
        at: String,
        /// For how long.
        #[serde(rename = "for")]
        lasting: String,
    },
    /// A faulty link from one node to another (`"bus"` is one).
    Link {
        /// Sending end.
        from: String,
        /// Receiving end.
        to: String,
        /// Probability that a message is lost.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        drop: f64,
        /// Probability that a message arrives twice.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        duplicate: f64,
        /// Extra latency.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        delay: Option<Dist>,
        /// Messages held back, so that later ones overtake them.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        reorder: Option<ReorderSchema>,
        /// When.
        at: String,
        /// For how long.
        #[serde(rename = "for")]
        lasting: String,
    },
    /// An operator resets a consumer group's committed offsets (Kafka's
    /// `kafka-consumer-groups --reset-offsets`): every partition of
    /// `service`'s group resumes from `to`.
    Rewind {
        /// The consuming service whose group is reset.
        service: String,
        /// Where each partition resumes.
        to: RewindTo,
        /// When.
        at: String,
        /// Drop the service's tables first: a read model rebuilt from
        /// scratch (a new projection deployed, a corrupted one replaced).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        drop_tables: bool,
    },
    /// A rolling deploy: the service's instances are restarted one at a
    /// time, `every` apart from `at`, each down for `down`, and come back
    /// running (publishing and reading up to) schema `version`.
    RollingDeploy {
        /// The service.
        service: String,
        /// The schema version its new code runs.
        version: u16,
        /// When the first instance restarts.
        at: String,
        /// Between one instance's restart and the next's.
        every: String,
        /// How long each instance is down (default `"5s"`).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        down: Option<String>,
    },
    /// A node's clock runs fast or slow: its timers last `factor` times what they ask.
    ClockSkew {
        /// Node name.
        node: String,
        /// Real duration of its timers, relative to what they ask.
        factor: f64,
        /// When.
        at: String,
        /// For how long.
        #[serde(rename = "for")]
        lasting: String,
    },
    /// A slow node (gray failure).
    Slow {
        /// Node name.
        node: String,
        /// When.
        at: String,
        /// For how long.
        #[serde(rename = "for")]
        lasting: String,
        /// Processing-time multiplier.
        factor: f64,
    },
    /// A stalled process.
    Pause {
        /// Node name.
        node: String,
        /// When.
        at: String,
        /// For how long.
        #[serde(rename = "for")]
        lasting: String,
    },
    /// Crashes and restarts drawn per seed.
    RandomCrashes {
        /// Node names.
        nodes: Vec<String>,
        /// Mean time between failures.
        mtbf: String,
        /// Mean time to repair.
        mttr: String,
        /// No crash before this (default 0s).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        from: Option<String>,
        /// No crash at or after this (default: the end of the run).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        until: Option<String>,
    },
    /// Pauses drawn per seed.
    RandomPauses {
        /// Node names.
        nodes: Vec<String>,
        /// Mean time between pauses.
        mtbf: String,
        /// Mean length of a pause.
        mttr: String,
        /// No pause before this (default 0s).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        from: Option<String>,
        /// No pause at or after this (default: the end of the run).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        until: Option<String>,
    },
    /// Slowdowns drawn per seed.
    RandomSlowdowns {
        /// Node names.
        nodes: Vec<String>,
        /// Processing-time multiplier while slow.
        factor: f64,
        /// Mean time between slowdowns.
        mtbf: String,
        /// Mean length of a slowdown.
        mttr: String,
        /// No slowdown before this (default 0s).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        from: Option<String>,
        /// No slowdown at or after this (default: the end of the run).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        until: Option<String>,
    },
    /// Each node is cut off from everything (other nodes and the bus, both
    /// ways) again and again: random network partitions around it.
    RandomPartitions {
        /// Node names.
        nodes: Vec<String>,
        /// Mean time between partitions.
        mtbf: String,
        /// Mean length of a partition.
        mttr: String,
        /// No partition before this (default 0s).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        from: Option<String>,
        /// No partition at or after this (default: the end of the run).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        until: Option<String>,
    },
    /// Each node's links (to everything, both ways) turn lossy again and again.
    RandomLossyLinks {
        /// Node names.
        nodes: Vec<String>,
        /// Probability that a message is lost.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        drop: f64,
        /// Probability that a message arrives twice.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        duplicate: f64,
        /// Mean extra latency (exponential), default none.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        delay: Option<String>,
        /// Mean time between lossy spells.
        mtbf: String,
        /// Mean length of a lossy spell.
        mttr: String,
        /// No spell before this (default 0s).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        from: Option<String>,
        /// No spell at or after this (default: the end of the run).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        until: Option<String>,
    },
    /// Each node's clock runs off again and again.
    RandomClockSkews {
        /// Node names.
        nodes: Vec<String>,
        /// How long timers really last, relative to what they ask.
        factor: f64,
        /// Mean time between skews.
        mtbf: String,
        /// Mean length of a skew.
        mttr: String,
        /// No skew before this (default 0s).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        from: Option<String>,
        /// No skew at or after this (default: the end of the run).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        until: Option<String>,
    },
    /// A crash at a seam inside a handler.
    CrashAt {
        /// Node name.
        node: String,
        /// Where.
        seam: Seam,
        /// On the nth message there.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        nth: Option<u64>,
        /// Or with this probability per message.
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        probability: Option<f64>,
        /// For how long.
        down_for: String,
    },
}

/// An invariant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Invariant {
    /// Every accepted entity reaches a terminal state in time.
    NoLostEntities {
        /// The entity kind.
        entity: String,
        /// Grace after acceptance or the last heal.
        deadline_after_heal: String,
    },
    /// No effect applied twice to one entity.
    NoDuplicateEffects {
        /// The effect.
        effect: String,
    },
    /// A service handles at most `factor` messages per accepted entity.
    BoundedAmplification {
        /// The entity kind it judges (needed when there are several workloads).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        entity: Option<String>,
        /// The downstream service.
        service: String,
        /// Messages per accepted entity, at most.
        factor: f64,
    },
    /// A stock never hands out more than it had.
    NoOversell {
        /// The service that keeps the stock.
        service: String,
    },
    /// Every accepted entity is terminal within a bound after the last heal.
    TerminalWithin {
        /// The entity kind.
        entity: String,
        /// The bound, after acceptance or the last heal.
        within: String,
    },
    /// Every saga ends fully done or fully compensated.
    SagaAtomicity {
        /// The entity kind it judges (needed when there are several workloads).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        entity: Option<String>,
        /// The steps and their compensations.
        steps: Vec<StepSchema>,
        /// Grace after acceptance or the last heal before a running saga is judged.
        deadline_after_heal: String,
    },
    /// Every `from` is followed by one of `to` within a bound.
    LeadsTo {
        /// The entity kind it judges (needed when there are several workloads).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        entity: Option<String>,
        /// A kind, an effect, or `state NAME`.
        from: String,
        /// Kinds, effects, or states.
        to: Vec<String>,
        /// The bound, after `from` or the last heal.
        within: String,
    },
    /// No `event` without an earlier `prior` for the same entity.
    NeverWithout {
        /// The entity kind it judges (needed when there are several workloads).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        entity: Option<String>,
        /// A kind, an effect, or `state NAME`.
        event: String,
        /// A kind, an effect, or `state NAME`.
        prior: String,
    },
    /// The service's writes to each row of its table come in the order the
    /// messages that caused them were published: no write for a message
    /// after one for a message published later.
    PerKeyOrder {
        /// The service.
        service: String,
        /// Its table.
        table: String,
    },
    /// A log consumer's lag (records in its topics' partitions not yet
    /// committed) stays at most `max`, sampled every `every`, from
    /// `after_heal` after the last heal on.
    BoundedLag {
        /// The consuming service (its consumer group).
        service: String,
        /// Records, at most.
        max: u64,
        /// Grace after the last heal.
        after_heal: String,
        /// How often the lag is sampled (default `"1s"`).
        #[serde(default)]
        #[serde(skip_serializing_if = "is_default")]
        every: Option<String>,
    },
    /// Every row the source writes reaches the replica within `max`: a
    /// write at `t` is held (or overtaken) by the replica by `t + max`, or,
    /// for writes made before the last heal, by the heal + `after_heal`.
    BoundedStaleness {
        /// The service that owns the data.
        source: String,
        /// The service that keeps a copy.
        replica: String,
        /// The table both write.
        table: String,
        /// The bound.
        max: String,
        /// Grace after the last heal for the writes made before it.
        after_heal: String,
    },
    /// The service's table holds, at the end, the last version it wrote
    /// of every row: nothing lost to a crash, a rebuild or retention.
    NoStateLoss {
        /// The service.
        service: String,
        /// Its table.
        table: String,
    },
    /// Every message the service handles is read by an instance that
    /// understands its schema version: none failed, skipped, left parked
    /// or misread because of its version.
    VersionCompatible {
        /// The consuming service.
        service: String,
    },
    /// A replica's copy of a table equals the source's after the run.
    ReplicaConvergence {
        /// The service that owns the data.
        source: String,
        /// The service that keeps a copy.
        replica: String,
        /// The table both write.
        table: String,
    },
}

/// Limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Events, at most.
    #[serde(default = "events_max")]
    #[serde(skip_serializing_if = "is_events_max")]
    pub events_max: u64,
    /// Entities, at most.
    #[serde(default = "entities_max")]
    #[serde(skip_serializing_if = "is_entities_max")]
    pub entities_max: u64,
}

fn events_max() -> u64 {
    crate::system::Limits::default().events_max
}
fn entities_max() -> u64 {
    crate::system::Limits::default().entities_max
}

impl Default for Limits {
    fn default() -> Self {
        Limits { events_max: events_max(), entities_max: entities_max() }
    }
}

/// True for a field's default value: such fields are left out when a
/// scenario is written back (by `faultline shrink`).
fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn is_one(v: &u32) -> bool {
    *v == one()
}
fn is_two(v: &f64) -> bool {
    *v == two()
}
fn is_three(v: &u32) -> bool {
    *v == three()
}
fn is_default_queue(v: &u32) -> bool {
    *v == default_queue()
}
fn is_default_fetch_max(v: &u32) -> bool {
    *v == default_fetch_max()
}
fn is_events_max(v: &u64) -> bool {
    *v == events_max()
}
fn is_entities_max(v: &u64) -> bool {
    *v == entities_max()
}
