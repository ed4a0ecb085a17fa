//! The trace: every observable step of a run, in order, and its fingerprint.
//!
//! Each step is a fixed-size [`Record`]. Its canonical bytes (little-endian,
//! 37 bytes: time, kind, node, message, entity, aux) are always hashed into
//! the run's **fingerprint** (XXH3-128), whether or not the trace is written,
//! so two runs can be compared without storing anything. Writing the trace
//! as JSON lines is optional and costs nothing when off.

use std::io::{self, Write};

use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use crate::sim::SimTime;

/// Node index meaning "no node" (the workload's client, the bus).
pub const NO_NODE: u32 = u32::MAX;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum RecordKind {
    /// The workload created an entity and sent its request (aux: key).
    Request = 1,
    /// No instance of the entry service could take the request (aux: 0 none up, 1 queue full).
    Rejected = 2,
    /// A message entered a node's queue (aux: kind).
    Enqueued = 3,
    /// A node finished handling a message (aux: kind).
    Handled = 4,
    /// The entity was accepted.
    Accepted = 5,
    /// A message was published (aux: kind).
    Published = 6,
    /// A message was appended to a log partition (aux: partition << 40 | offset).
    Appended = 7,
    /// A message was lost (aux: [`LossReason`] | its kind << 8; see [`loss_of`]).
    Lost = 8,
    /// An external effect was applied (aux: effect).
    Effect = 9,
    /// The entity reached a terminal state.
    Terminal = 10,
    /// A consumer group's committed offset advanced (aux: partition << 40 | offset).
    Committed = 11,
    /// A node crashed.
    Crash = 12,
    /// A node restarted.
    Restart = 13,
    /// A request died with the node that held it, before acceptance.
    Dropped = 14,
    /// An idempotent consumer skipped a message it had already handled (aux: kind).
    Skipped = 15,
    /// A handler failed on the message (aux: kind): nothing it asked for happened.
    Failed = 16,
    /// A message reached its delivery limit and went to the dead-letter queue.
    DeadLettered = 17,
    /// A queue delivered the message to a node again (aux: deliveries so far).
    Redelivered = 18,
    /// A node started for the first time (a service deployed late).
    Joined = 19,
    /// A log partition was assigned to the node by its group (aux: partition).
    Assigned = 20,
    /// A log partition was taken from the node by a rebalance (aux: partition).
    Revoked = 21,
    /// A crash point hit the node at a seam while it handled the message (aux: seam).
    CrashPoint = 22,
    /// A message was written to the node's outbox, with its state change.
    Outboxed = 23,
    /// The node stalled (a pause: up, but doing nothing).
    Paused = 24,
    /// The node resumed after a pause.
    Resumed = 25,
    /// The node sent an attempt of a synchronous call (aux: attempt << 32 | request kind).
    CallSent = 26,
    /// The caller's own defences refused an attempt (aux: 1 breaker open,
    /// 2 bulkhead full, 3 rate limited, 4 no instance up).
    CallRefused = 27,
    /// An attempt got no reply in time (aux: attempt).
    CallTimedOut = 28,
    /// The callee's reply reached the caller (aux: 1 success, 0 error).
    CallReplied = 29,
    /// The call failed for good (aux: attempts made).
    CallFailed = 30,
    /// The entity's state machine moved (aux: from << 32 | to, state indices).
    Transition = 31,
    /// A fault without records of its own began: a slowdown or clock skew
    /// of the node, or (no node) a partition or link fault (aux: its index
    /// in the run's fault plan, `Outcome::faults`).
    FaultBegan = 32,
    /// That fault healed (aux: its index in the fault plan).
    FaultHealed = 33,
    /// A node handled a message that did not apply: nothing expects it in
    /// its entity's current state, and nothing happened (aux: kind).
    Ignored = 34,
    /// A broker cut off from the controller quorum lost its session: it
    /// leads nothing and is in no in-sync set.
    Fenced = 35,
    /// A fenced broker is back in the quorum.
    Unfenced = 36,
    /// The broker closed the node's channel (a consumer timeout): its
    /// unacknowledged messages went back to the queue (aux: how many).
    ChannelClosed = 37,
    /// A consumer whose channel was closed opened a new one.
    Reconnected = 38,
    /// A producer with publisher confirms resent a message the queue broker
    /// never confirmed before going down (aux: kind).
    Resent = 39,
    /// A node moved an entity's state machine in its own database while
    /// another instance of its service (aux: its node) holds a state for the
    /// entity: state per instance, split by a rebalance or a re-route.
    SplitState = 40,
    /// The autoscaler asked for this instance: it starts, and is ready
    /// after its start-up (aux: the instances asked for now).
    Provisioned = 41,
    /// The instance is ready: it takes requests and joins its consumer
    /// groups and queues (aux: the instances asked for now).
    ScaledUp = 42,
    /// The autoscaler removes this instance: it takes nothing new and
    /// finishes what it holds (aux: the instances asked for now).
    Draining = 43,
    /// The instance left after its drain (or was removed while down),
    /// leaving its consumer group (aux: the instances asked for now).
    ScaledDown = 44,
    /// An operator reset the node's group on a partition (aux: the
    /// partition << 40 | the offset it resumes from).
    Rewound = 45,
    /// The node, re-hydrating, asked an instance of the data's owner for a
    /// snapshot (aux: the owner's node); it works on nothing until loaded.
    Hydrating = 46,
    /// The node loaded its snapshot (aux: its rows) and resumes.
    Rehydrated = 47,
    /// The node handled a message of a schema version above what its code
    /// reads (aux: what it did, a `service::UNREADABLE_*` code | the
    /// message's version << 8 | what it reads << 24).
    Unreadable = 48,
    /// The node, upgraded, took a parked message it now reads (aux: the
    /// version it reads).
    Unparked = 49,
    /// The node, event-sourced, rebuilt its table from its snapshot and
    /// its events (aux: the rows).
    Rebuilt = 50,
}

/// Why a message was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum LossReason {
    /// Ephemeral bus: no instance of a subscribing service was up at publish time.
    NoSubscriberUp = 1,
    /// Ephemeral bus: the receiving instance crashed while the message was in flight.
    ReceiverCrashed = 2,
    /// The receiving instance's queue was full.
    QueueFull = 3,
    /// The instance crashed while the message waited in its queue or was being handled.
    CrashedWhileHeld = 4,
    /// Log: the consumer committed the record's offset before processing it,
    /// then crashed; the record is never fetched again.
    CommittedUnprocessed = 5,
    /// Queue with auto-ack: the message left the queue when it was sent and
    /// died with its consumer.
    AutoAck = 6,
    /// The handler failed and nothing retries it (ephemeral bus or auto-ack).
    FailedDropped = 7,
    /// Log: retention deleted the record before the consumer group read it.
    Retention = 8,
    /// Log: the partition's leader failed before a follower copied the
    /// record; the new leader does not have it.
    LeaderFailover = 9,
    /// Log: an out-of-sync replica became leader without the record.
    UncleanElection = 10,
    /// The producer gave the record up: unacknowledged after its retries or
    /// its delivery timeout, or lost with its connection to the broker
    /// (blocked by a partition for longer than the heartbeat).
    ProducerGaveUp = 11,
    /// Log: the only copy's broker crashed before writing it to disk.
    Unflushed = 12,
    /// A network partition separated its sender from its receiver.
    Partitioned = 13,
    /// A faulty link dropped it.
    Dropped = 14,
    /// Its handler's node crashed after the state write and before the
    /// publish (the dual-write gap): it was never sent.
    Unpublished = 15,
    /// Queue: published while the broker was down (or its clients not yet
    /// reconnected), without publisher confirms to tell the producer.
    BrokerDown = 16,
    /// Queue: a transient message, or one in a transient queue, when the
    /// broker restarted.
    BrokerRestart = 17,
    /// Redis stream: trimmed (`MAXLEN`) before a consumer read it, or while
    /// it was pending with a consumer that never acknowledged it.
    Trimmed = 18,
    /// The autoscaler removed its instance: a timer in its memory, or a
    /// pushed message still on its way to it.
    ScaledIn = 19,
    /// Log: an operator rewound its consumer group forward past it before
    /// the group processed it.
    RewoundPast = 20,
}

/// The aux of a `Lost` record: the reason and the lost message's kind.
pub fn loss_aux(reason: LossReason, kind: u32) -> u64 {
    reason as u64 | u64::from(kind) << 8
}

/// The reason and the kind (as `Kind`'s number) of a `Lost` record's aux.
pub fn loss_of(aux: u64) -> (Option<LossReason>, u64) {
    (LossReason::from_code(aux & 0xFF), aux >> 8)
}

impl LossReason {
    /// All reasons, in code order.
    pub const ALL: [LossReason; 20] = [
        LossReason::NoSubscriberUp,
        LossReason::ReceiverCrashed,
        LossReason::QueueFull,
        LossReason::CrashedWhileHeld,
        LossReason::CommittedUnprocessed,
        LossReason::AutoAck,
        LossReason::FailedDropped,
        LossReason::Retention,
        LossReason::LeaderFailover,
        LossReason::UncleanElection,
        LossReason::ProducerGaveUp,
        LossReason::Unflushed,
        LossReason::Partitioned,
        LossReason::Dropped,
        LossReason::Unpublished,
        LossReason::BrokerDown,
        LossReason::BrokerRestart,
        LossReason::Trimmed,
        LossReason::ScaledIn,
        LossReason::RewoundPast,
    ];

    /// The reason with code `code`.
    pub fn from_code(code: u64) -> Option<LossReason> {
        LossReason::ALL.into_iter().find(|r| *r as u64 == code)
    }

    /// A short name for summaries.
    pub fn label(self) -> &'static str {
        match self {
            LossReason::NoSubscriberUp => "no-subscriber-up",
            LossReason::ReceiverCrashed => "receiver-crashed",
            LossReason::QueueFull => "queue-full",
            LossReason::CrashedWhileHeld => "crashed-while-held",
            LossReason::CommittedUnprocessed => "committed-unprocessed",
            LossReason::AutoAck => "auto-ack",
            LossReason::FailedDropped => "failed-dropped",
            LossReason::Retention => "retention",
            LossReason::LeaderFailover => "leader-failover",
            LossReason::UncleanElection => "unclean-election",
            LossReason::ProducerGaveUp => "producer-gave-up",
            LossReason::Unflushed => "unflushed",
            LossReason::Partitioned => "partitioned",
            LossReason::Dropped => "dropped",
            LossReason::Unpublished => "unpublished",
            LossReason::BrokerDown => "broker-down",
            LossReason::BrokerRestart => "broker-restart",
            LossReason::Trimmed => "trimmed",
            LossReason::ScaledIn => "scaled-in",
            LossReason::RewoundPast => "rewound-past",
        }
    }
}

/// One step of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// When.
    pub time: SimTime,
    /// What.
    pub kind: RecordKind,
    /// Where (node index), or [`NO_NODE`].
    pub node: u32,
    /// The message involved, or 0.
    pub msg: u64,
    /// The entity involved, or 0.
    pub entity: u64,
    /// Kind-specific detail (see [`RecordKind`]).
    pub aux: u64,
}

const RECORD_BYTES: usize = 37;
const BUF_BYTES: usize = RECORD_BYTES * 256;

/// Turns records into JSON lines; given names so the file is readable.
pub trait TraceSink {
    /// Writes one record.
    fn write(&mut self, seq: u64, record: &Record) -> io::Result<()>;
    /// Flushes buffered output.
    fn flush(&mut self) -> io::Result<()>;
}

/// Hashes every record; optionally writes them and collects those of one entity.
pub struct Tracer<'a> {
    hasher: Xxh3,
    buf: [u8; BUF_BYTES],
    len: usize,
    count: u64,
    sink: Option<&'a mut dyn TraceSink>,
    sink_error: Option<io::Error>,
    /// The entities whose records stories need, sorted.
    focus: Option<Vec<u64>>,
    /// The first [`STORY_HEAD`] records of a focused run, then the last
    /// [`STORY_TAIL`]: a story's memory is bounded however long the run.
    story: Vec<Record>,
    story_tail: std::collections::VecDeque<Record>,
    /// Records dropped from the middle of the story.
    story_omitted: u64,
}

/// Records a focused run keeps from its start, at most (40 MB).
pub const STORY_HEAD: usize = 1_000_000;
/// ... and from its end.
pub const STORY_TAIL: usize = 20_000;

/// The records a focused run kept: the first [`STORY_HEAD`], then (if
/// there were more) the last [`STORY_TAIL`], `omitted` dropped between.
#[derive(Debug, Default)]
pub struct Focused {
    /// The records kept, in order.
    pub records: Vec<Record>,
    /// How many were dropped between the first and the last ones kept.
    pub omitted: u64,
}

impl Focused {
    /// Index of the first record after the omitted ones, if any were.
    pub fn gap(&self) -> Option<usize> {
        (self.omitted > 0).then_some(STORY_HEAD)
    }
}

impl<'a> Tracer<'a> {
    /// A tracer that only fingerprints.
    pub fn new() -> Tracer<'a> {
        Tracer {
            hasher: Xxh3::new(),
            buf: [0; BUF_BYTES],
            len: 0,
            count: 0,
            sink: None,
            sink_error: None,
            focus: None,
            story: Vec::new(),
            story_tail: std::collections::VecDeque::new(),
            story_omitted: 0,
        }
    }

    /// Also write every record to `sink`.
    pub fn with_sink(mut self, sink: &'a mut dyn TraceSink) -> Tracer<'a> {
        self.sink = Some(sink);
        self
    }

    /// Also keep the records of `entity` and every crash and restart (for a story).
    pub fn with_focus(self, entity: u64) -> Tracer<'a> {
        self.with_focus_on(&[entity])
    }

    /// Also keep the records of these entities (the stories of every
    /// violated invariant of a run, some of which involve two entities, such
    /// as a newer change overwritten by an older one) and every crash,
    /// restart, pause, fault and rebalance.
    pub fn with_focus_on(mut self, entities: &[u64]) -> Tracer<'a> {
        let mut focus = entities.to_vec();
        focus.sort_unstable();
        focus.dedup();
        self.focus = Some(focus);
        self
    }

    /// Records one step.
    #[inline(always)]
    pub fn record(&mut self, r: Record) {
        if self.len + RECORD_BYTES > BUF_BYTES {
            self.hasher.update(&self.buf[..self.len]);
            self.len = 0;
        }
        // A fixed-size view: the writes below need no bounds checks.
        let b: &mut [u8; RECORD_BYTES] =
            (&mut self.buf[self.len..self.len + RECORD_BYTES]).try_into().expect("room checked above");
        b[0..8].copy_from_slice(&r.time.0.to_le_bytes());
        b[8] = r.kind as u8;
        b[9..13].copy_from_slice(&r.node.to_le_bytes());
        b[13..21].copy_from_slice(&r.msg.to_le_bytes());
        b[21..29].copy_from_slice(&r.entity.to_le_bytes());
        b[29..37].copy_from_slice(&r.aux.to_le_bytes());
        self.len += RECORD_BYTES;
        if self.sink.is_some() || self.focus.is_some() {
            self.slow_path(&r);
        }
        self.count += 1;
    }

    #[cold]
    fn slow_path(&mut self, r: &Record) {
        if let Some(sink) = self.sink.as_mut()
            && self.sink_error.is_none()
            && let Err(e) = sink.write(self.count, r)
        {
            self.sink_error = Some(e);
        }
        if let Some(focus) = &self.focus
            && (focus.binary_search(&r.entity).is_ok()
                || matches!(
                    r.kind,
                    RecordKind::Crash
                        | RecordKind::Restart
                        | RecordKind::Paused
                        | RecordKind::Resumed
                        | RecordKind::FaultBegan
                        | RecordKind::FaultHealed
                        | RecordKind::Assigned
                        | RecordKind::Revoked
                        | RecordKind::Fenced
                        | RecordKind::Unfenced
                        | RecordKind::ChannelClosed
                        | RecordKind::Reconnected
                        | RecordKind::ScaledUp
                        | RecordKind::Draining
                        | RecordKind::ScaledDown
                        | RecordKind::Rewound
                        | RecordKind::Hydrating
                        | RecordKind::Rehydrated
                        | RecordKind::Rebuilt
                ))
        {
            if self.story.len() < STORY_HEAD {
                self.story.push(*r);
            } else {
                if self.story_tail.len() == STORY_TAIL {
                    self.story_tail.pop_front();
                    self.story_omitted += 1;
                }
                self.story_tail.push_back(*r);
            }
        }
    }

    /// Number of records so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Finishes: the fingerprint (32 hex digits), the focused records, and
    /// the first error the sink reported, if any.
    pub fn finish(mut self) -> (String, Focused, io::Result<()>) {
        self.hasher.update(&self.buf[..self.len]);
        let fp = format!("{:032x}", self.hasher.digest128());
        let result = match (self.sink_error.take(), self.sink.as_mut()) {
            (Some(e), _) => Err(e),
            (None, Some(sink)) => sink.flush(),
            (None, None) => Ok(()),
        };
        let mut records = self.story;
        records.extend(self.story_tail);
        (fp, Focused { records, omitted: self.story_omitted }, result)
    }
}

impl Default for Tracer<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes records as JSON lines with names resolved.
pub struct JsonLines<W: Write> {
    out: W,
    nodes: Vec<String>,
    kinds: Vec<String>,
    effects: Vec<String>,
}

impl<W: Write> JsonLines<W> {
    /// A writer to `out`, naming nodes, message kinds and effects by index.
    pub fn new(out: W, nodes: Vec<String>, kinds: Vec<String>, effects: Vec<String>) -> Self {
        JsonLines { out, nodes, kinds, effects }
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[derive(Serialize)]
struct Line<'a> {
    seq: u64,
    t_ns: u64,
    kind: RecordKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
    #[serde(skip_serializing_if = "is_zero")]
    msg: u64,
    #[serde(skip_serializing_if = "is_zero")]
    entity: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    partition: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    effect: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<LossReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u64>,
    /// Redelivered, dead-lettered: the message's deliveries so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    deliveries: Option<u64>,
    /// Channel closed: the unacknowledged messages it returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    returned: Option<u64>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Splits an `Appended`/`Committed` aux into (partition, offset).
pub fn split_partition_offset(aux: u64) -> (u64, u64) {
    (aux >> 40, aux & ((1 << 40) - 1))
}

impl<W: Write> TraceSink for JsonLines<W> {
    fn write(&mut self, seq: u64, r: &Record) -> io::Result<()> {
        fn name(v: &[String], i: u64) -> Option<&str> {
            v.get(i as usize).map(String::as_str)
        }
        let mut line = Line {
            seq,
            t_ns: r.time.0,
            kind: r.kind,
            node: if r.node == NO_NODE { None } else { name(&self.nodes, u64::from(r.node)) },
            msg: r.msg,
            entity: r.entity,
            topic: None,
            partition: None,
            offset: None,
            effect: None,
            reason: None,
            key: None,
            attempt: None,
            deliveries: None,
            returned: None,
        };
        match r.kind {
            RecordKind::Enqueued
            | RecordKind::Handled
            | RecordKind::Published
            | RecordKind::Skipped
            | RecordKind::Ignored
            | RecordKind::Failed => {
                line.topic =
                    Some(if r.aux == u64::from(u32::MAX) { "timer" } else { name(&self.kinds, r.aux).unwrap_or("?") });
            }
            RecordKind::Appended | RecordKind::Committed => {
                let (p, o) = split_partition_offset(r.aux);
                line.partition = Some(p);
                line.offset = Some(o);
            }
            RecordKind::Lost => {
                let (reason, kind) = loss_of(r.aux);
                line.reason = reason;
                line.topic =
                    Some(if kind == u64::from(u32::MAX) { "timer" } else { name(&self.kinds, kind).unwrap_or("?") });
            }
            RecordKind::Effect => line.effect = name(&self.effects, r.aux),
            RecordKind::Request => line.key = Some(r.aux),
            RecordKind::CallSent => {
                line.attempt = Some(r.aux >> 32);
                line.topic = name(&self.kinds, r.aux & u64::from(u32::MAX));
            }
            RecordKind::CallTimedOut | RecordKind::CallFailed => line.attempt = Some(r.aux),
            RecordKind::Redelivered | RecordKind::DeadLettered => line.deliveries = Some(r.aux),
            RecordKind::ChannelClosed => line.returned = Some(r.aux),
            _ => {}
        }
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t: u64, kind: RecordKind) -> Record {
        Record { time: SimTime(t), kind, node: 1, msg: 2, entity: 3, aux: 4 }
    }

    #[test]
    fn fingerprint_depends_on_every_field_and_order() {
        let fp = |rs: &[Record]| {
            let mut t = Tracer::new();
            for r in rs {
                t.record(*r);
            }
            t.finish().0
        };
        let a = rec(1, RecordKind::Request);
        let b = rec(2, RecordKind::Enqueued);
        assert_eq!(fp(&[a, b]), fp(&[a, b]));
        assert_ne!(fp(&[a, b]), fp(&[b, a]));
        assert_ne!(fp(&[a]), fp(&[Record { aux: 5, ..a }]));
        assert_ne!(fp(&[a]), fp(&[Record { node: 9, ..a }]));
        // Crossing the internal buffer boundary changes nothing.
        let many: Vec<Record> = (0..1000).map(|i| rec(i, RecordKind::Handled)).collect();
        let mut one_by_one = Tracer::new();
        for r in &many {
            one_by_one.record(*r);
        }
        assert_eq!(one_by_one.finish().0, fp(&many));
    }

    #[test]
    fn focus_keeps_the_entity_and_crashes_only() {
        let mut t = Tracer::new().with_focus(3);
        t.record(rec(1, RecordKind::Request));
        t.record(Record { entity: 4, ..rec(2, RecordKind::Request) });
        t.record(Record { entity: 0, ..rec(3, RecordKind::Crash) });
        t.record(Record { entity: 0, ..rec(4, RecordKind::Committed) });
        let (_, story, _) = t.finish();
        assert_eq!(story.records.len(), 2);
        assert_eq!(story.omitted, 0);
        let mut t = Tracer::new().with_focus_on(&[3, 4]);
        t.record(rec(1, RecordKind::Request));
        t.record(Record { entity: 4, ..rec(2, RecordKind::Request) });
        t.record(Record { entity: 5, ..rec(2, RecordKind::Request) });
        assert_eq!(t.finish().1.records.len(), 2);
    }

    #[test]
    fn a_focused_run_keeps_its_first_and_last_records_and_counts_those_between() {
        let mut t = Tracer::new().with_focus(3);
        let total = (STORY_HEAD + STORY_TAIL + 5) as u64;
        for i in 0..total {
            t.record(rec(i, RecordKind::Handled));
        }
        let (_, story, _) = t.finish();
        assert_eq!(story.records.len(), STORY_HEAD + STORY_TAIL);
        assert_eq!(story.omitted, 5);
        assert_eq!(story.gap(), Some(STORY_HEAD));
        // The head ends at STORY_HEAD - 1; the tail starts after the five dropped.
        assert_eq!(story.records[STORY_HEAD - 1].time.0, STORY_HEAD as u64 - 1);
        assert_eq!(story.records[STORY_HEAD].time.0, STORY_HEAD as u64 + 5);
        assert_eq!(story.records.last().unwrap().time.0, total - 1);
    }

    #[test]
    fn json_lines_name_things() {
        let mut sink = JsonLines::new(Vec::new(), vec!["a-1".into(), "b-1".into()], vec!["X".into()], vec![]);
        {
            let mut t = Tracer::new().with_sink(&mut sink);
            t.record(Record { time: SimTime(5), kind: RecordKind::Published, node: 1, msg: 7, entity: 3, aux: 0 });
            t.finish().2.unwrap();
        }
        let text = String::from_utf8(sink.into_inner()).unwrap();
        assert_eq!(
            text,
            "{\"seq\":0,\"t_ns\":5,\"kind\":\"published\",\"node\":\"b-1\",\"msg\":7,\"entity\":3,\"topic\":\"X\"}\n"
        );
    }
}
