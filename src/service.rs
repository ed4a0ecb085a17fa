//! Services: pure handlers that describe what they want done.
//!
//! A service never touches the bus, the clock or the random streams. The
//! kernel hands it a [`Context`] (the time, which instance it is, read access
//! to that instance's state) and a [`Message`], and the service pushes
//! [`Command`]s into an [`Out`] buffer: emit a message, apply an external
//! effect, write state, set a timer. The kernel applies them when the
//! handler's processing time has elapsed, all at one instant. Because
//! handlers only describe, faults can be injected around any of them.
//!
//! Scenario files use [`Declarative`], one implementation of [`Service`];
//! a Rust user can write their own (see the crate docs).

use std::collections::BTreeMap;
use std::fmt;

use crate::sim::{Dist, SimDuration, SimTime};

/// A message kind: an event type such as `OrderCreated`, interned. Every
/// kind is also the name of the topic it is published to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kind(pub u32);

impl Kind {
    /// The kind of a timer firing (see [`Out::timer`]); its key is the tag.
    pub const TIMER: Kind = Kind(u32::MAX);
}

/// An external side effect such as `invoice-sent`, interned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EffectId(pub u16);

/// A message id, unique within a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MsgId(pub u64);

/// The business entity (an order, a user) a message belongs to: its
/// correlation id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EntityId(pub u64);

/// Integer fields a message carries: named by the scenario, at most this
/// many in one scenario (slot `i` of every message is the same field).
pub const FIELDS: usize = 2;

/// What a message carries for its handlers: its schema version and its
/// fields (slots named by [`crate::system::Names::field`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payload {
    /// The schema version it was written in.
    pub version: u16,
    /// Its fields' values.
    pub fields: [i64; FIELDS],
}

impl Default for Payload {
    fn default() -> Self {
        Payload { version: 1, fields: [0; FIELDS] }
    }
}

/// A message as it travels: small and `Copy`, so the hot path never
/// allocates. The payload's parts are fields of their own so that the
/// message stays 64 bytes (a `Payload` inside it would be padded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// Unique id.
    pub id: MsgId,
    /// What it is; also its topic.
    pub kind: Kind,
    /// Routing key (partitioning, instance choice).
    pub key: u64,
    /// The entity it belongs to (correlation id).
    pub entity: EntityId,
    /// The message whose handling produced this one (causation id);
    /// `MsgId(0)` for a request from the workload.
    pub cause: MsgId,
    /// When it was created.
    pub sent_at: SimTime,
    /// The schema version it was written in.
    pub version: u16,
    /// Its fields' values.
    pub fields: [i64; FIELDS],
}

impl Message {
    /// Its schema version and fields.
    #[inline]
    pub fn payload(&self) -> Payload {
        Payload { version: self.version, fields: self.fields }
    }
}

/// A 64-bit mix of `seed`, `a` and `b` (splitmix64's finaliser): how a
/// per-entity value is chosen without drawing from a stream.
pub(crate) fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut x = seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xD1B5_4A32_D192_ED03);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// An instance's state of one durability: faultline's own rows (machine
/// states, table rows) and, apart, a custom service's keys ([`Out::put`]),
/// so that the two can never collide.
#[derive(Debug, Default)]
pub(crate) struct Stores {
    pub(crate) rows: BTreeMap<u64, i64>,
    pub(crate) user: BTreeMap<u64, i64>,
}

/// What a handler sees besides the message.
pub struct Context<'a> {
    /// Virtual time at which the handler's work completes.
    pub now: SimTime,
    /// The instance's node name, e.g. `inventory-1`.
    pub node: &'a str,
    /// The instance's index within its service, from 0.
    pub instance: u32,
    pub(crate) durable: &'a Stores,
    pub(crate) volatile: &'a Stores,
    /// For a handler that reserves stock ([`Service::reserve`]): whether it
    /// got a unit.
    pub reserved: Option<bool>,
    /// For a handler that makes a synchronous call ([`Service::call`]):
    /// whether it succeeded (within its retries, timeouts and breaker).
    pub called: Option<bool>,
    /// The run's seed: a handler may derive per-entity decisions from it
    /// (see [`Context::chance`]), the same on every redelivery.
    pub seed: u64,
    /// The schema version the instance's code runs (what it publishes;
    /// 0: unversioned) << 16 | the highest it reads: see
    /// [`Context::version`] and [`Context::reads`].
    pub(crate) versions: u32,
}

impl Context<'_> {
    /// The schema version the instance's code runs (what it publishes), if
    /// it is versioned; a rolling deploy changes it.
    #[inline]
    pub fn version(&self) -> Option<u16> {
        Some((self.versions >> 16) as u16).filter(|&v| v > 0)
    }

    /// The highest schema version the instance's code reads.
    #[inline]
    pub fn reads(&self) -> u16 {
        self.versions as u16
    }

    /// A value the service put ([`Out::put`]) in its durable state
    /// (survives crashes; shared by the instances under `state: Shared`).
    /// Any key is the service's own: faultline's rows live apart.
    pub fn durable(&self, key: u64) -> Option<i64> {
        self.durable.user.get(&key).copied()
    }

    /// A value the service put in the instance's volatile state (lost on crash).
    pub fn volatile(&self, key: u64) -> Option<i64> {
        self.volatile.user.get(&key).copied()
    }

    /// One of faultline's own rows (a machine's state), durable or not.
    fn own(&self, durable: bool, key: u64) -> Option<i64> {
        if durable { self.durable.rows.get(&key).copied() } else { self.volatile.rows.get(&key).copied() }
    }

    /// A number in `[0, 1)` fixed by the seed, the entity and `salt`: a
    /// business outcome (a card declined, a buyer who never signs) that is a
    /// property of the entity, so a redelivered or retried message meets the
    /// same outcome, and the outcome does not depend on timing.
    pub fn chance(&self, entity: EntityId, salt: u64) -> f64 {
        (mix(self.seed, entity.0, salt) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One thing a handler wants done.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Command {
    /// The entity of the message is accepted: from now on the system owes it
    /// a terminal state (`no-lost-entities` follows it).
    Accept,
    /// Publish a message of `kind` for the same entity, caused by this one.
    Emit {
        /// The kind (and topic).
        kind: Kind,
        /// Its routing key.
        key: u64,
        /// What it carries.
        payload: Payload,
    },
    /// Apply an external side effect once (send an invoice, charge a card).
    Effect(EffectId),
    /// The entity reached a terminal state.
    Terminal,
    /// One of faultline's own rows (a state machine's state), apart from
    /// the service's keys; only faultline's declarative services write it.
    Row {
        /// Durable or volatile.
        durable: bool,
        /// The key.
        key: u64,
        /// The value.
        value: i64,
    },
    /// Write `value` under the service's own `key` in durable or volatile
    /// state (never one of faultline's rows, whatever the key).
    Put {
        /// Durable (survives crashes) or volatile.
        durable: bool,
        /// The key.
        key: u64,
        /// The value.
        value: i64,
    },
    /// Deliver a [`Kind::TIMER`] message with key `tag` to this instance after
    /// `after`, unless it crashes first (timers are volatile).
    Timer {
        /// The delay.
        after: SimDuration,
        /// Comes back as the timer message's key.
        tag: u64,
    },
    /// The entity's state machine moves from state `from` to state `to`
    /// (ids from [`crate::system::Names::state`]); traced, and followed by
    /// business rules. Declarative machines keep the state in a [`Command::Row`].
    Transition {
        /// The state left.
        from: u16,
        /// The state entered.
        to: u16,
    },
    /// Write `version` under `key` in `table` of this instance's state
    /// (durable or volatile as the service's state is): replicated data that
    /// a replica-convergence invariant compares across services.
    Write {
        /// The table.
        table: u16,
        /// The row.
        key: u64,
        /// The version written; a newer write has a higher version.
        version: u64,
        /// The value written.
        value: i64,
    },
}

/// The out-buffer a handler pushes its commands into. Reused across
/// messages, so handling allocates nothing once warm.
#[derive(Default, Debug)]
pub struct Out {
    pub(crate) commands: Vec<Command>,
    /// The payload of the message handled: what [`Out::emit`] publishes.
    pub(crate) carry: Payload,
    pub(crate) failed: bool,
    pub(crate) ignored: bool,
    /// The message's version was above what the instance reads: what was
    /// done about it (one of the `UNREADABLE_*` codes), else 0.
    pub(crate) unreadable: u8,
}

/// [`Out::unreadable`]: the handler failed on purpose.
pub const UNREADABLE_FAILED: u8 = 1;
/// [`Out::unreadable`]: consumed, nothing done.
pub const UNREADABLE_SKIPPED: u8 = 2;
/// [`Out::unreadable`]: set aside until an instance that reads it takes it.
pub const UNREADABLE_PARKED: u8 = 3;
/// [`Out::unreadable`]: read as the instance's own version (unknown fields as 0).
pub const UNREADABLE_MISREAD: u8 = 4;

/// A few words on an [`Out::unreadable`] code, for stories.
pub fn unreadable_label(code: u8) -> &'static str {
    match code {
        UNREADABLE_FAILED => "failed",
        UNREADABLE_SKIPPED => "skipped",
        UNREADABLE_PARKED => "parked",
        _ => "misread",
    }
}

impl Out {
    /// Empties it for a handler of a message carrying `carry`.
    #[inline]
    pub(crate) fn reset(&mut self, carry: Payload) {
        self.commands.clear();
        self.failed = false;
        self.ignored = false;
        self.unreadable = 0;
        self.carry = carry;
    }

    /// Accept the message's entity.
    pub fn accept(&mut self) {
        self.commands.push(Command::Accept);
    }
    /// Publish a message of `kind` with routing key `key`, carrying the
    /// payload of the message handled.
    pub fn emit(&mut self, kind: Kind, key: u64) {
        self.commands.push(Command::Emit { kind, key, payload: self.carry });
    }
    /// Publish a message of `kind` with routing key `key` carrying `payload`.
    pub fn emit_with(&mut self, kind: Kind, key: u64, payload: Payload) {
        self.commands.push(Command::Emit { kind, key, payload });
    }
    /// Write row `key` of `table` (an id from
    /// [`crate::system::Names::table`]; durable or volatile as the service's
    /// state is): `value` under `version` (a newer write has a higher one).
    /// Replica-convergence invariants compare such rows across services.
    pub fn write(&mut self, table: u16, key: u64, version: u64, value: i64) {
        self.commands.push(Command::Write { table, key, version, value });
    }
    /// Apply an external side effect.
    pub fn effect(&mut self, effect: EffectId) {
        self.commands.push(Command::Effect(effect));
    }
    /// Mark the entity terminal.
    pub fn terminal(&mut self) {
        self.commands.push(Command::Terminal);
    }
    /// Write durable (`true`) or volatile state, under the service's own
    /// key (read back with [`Context::durable`] and [`Context::volatile`]).
    pub fn put(&mut self, durable: bool, key: u64, value: i64) {
        self.commands.push(Command::Put { durable, key, value });
    }
    /// The entity's state machine moved from state `from` to `to` (ids from
    /// [`crate::system::Names::state`]): traced, told in stories, and
    /// followed by business rules (`state NAME` events). Where the state
    /// itself lives is the service's business ([`Out::put`]).
    pub fn transition(&mut self, from: u16, to: u16) {
        self.commands.push(Command::Transition { from, to });
    }
    /// One of faultline's own rows.
    fn row(&mut self, durable: bool, key: u64, value: i64) {
        self.commands.push(Command::Row { durable, key, value });
    }
    /// Set a timer.
    pub fn timer(&mut self, after: SimDuration, tag: u64) {
        self.commands.push(Command::Timer { after, tag });
    }
    /// The handler failed (a poison message, a bug): none of the commands
    /// take effect. A queue consumer nacks the message (requeued, or
    /// dead-lettered after the delivery limit), a log consumer retries it in
    /// place, an ephemeral or auto-ack consumer drops it.
    pub fn fail(&mut self) {
        self.failed = true;
    }

    /// The message does not apply (a state machine expects nothing of its
    /// kind in the entity's current state: it is stale): nothing happens,
    /// and the trace says it was ignored rather than handled.
    pub fn ignore(&mut self) {
        self.ignored = true;
    }

    /// True once [`Out::fail`] was called.
    pub fn failed(&self) -> bool {
        self.failed
    }
    /// The commands pushed so far.
    pub fn commands(&self) -> &[Command] {
        &self.commands
    }
}

/// A service's behaviour. One value serves every instance of the service:
/// per-instance state lives in the kernel (see [`Context`]), so that crashes
/// can wipe exactly what is volatile.
pub trait Service: Send + Sync + fmt::Debug {
    /// How long handling `msg` takes. The kernel draws from it with the
    /// instance's own stream.
    fn work(&self, msg: &Message) -> &Dist;

    /// Handle `msg`: push what should happen into `out`.
    fn handle(&self, ctx: &Context<'_>, msg: &Message, out: &mut Out);

    /// If handling `msg` takes one unit of a stock shared by the service's
    /// instances (keyed by the message key), how. The kernel reads the stock
    /// when the work starts and writes it when the work ends, under the
    /// given concurrency control, and tells the handler the result in
    /// [`Context::reserved`].
    fn reserve(&self, _msg: &Message) -> Option<Reserve> {
        None
    }

    /// If handling `msg` needs a synchronous call to another service before
    /// it can complete, which. The kernel holds the worker, makes the call
    /// (with its timeout, retries, breaker, rate limit and bulkhead), and
    /// then runs [`Service::handle`] with the result in [`Context::called`].
    fn call(&self, _msg: &Message) -> Option<&Call> {
        None
    }

    /// The probability that handling `msg` fails for a passing reason (a
    /// deadlock, a timeout to the database): the kernel draws it from the
    /// instance's stream each time, and a failed attempt is handled as
    /// [`Out::fail`] is (retried by a log or queue consumer).
    fn flaky(&self, _msg: &Message) -> f64 {
        0.0
    }
}

/// A synchronous request/response call to another service, and how the
/// caller protects itself: a timeout per attempt, retries with exponential
/// backoff and jitter, a circuit breaker, a rate limit and a bulkhead.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// Index of the service called.
    pub service: usize,
    /// The kind of the request message its handler handles.
    pub request: Kind,
    /// One-way network latency of a request or a reply.
    pub latency: Dist,
    /// An attempt without a reply for this long has failed (the caller's
    /// clock: skew stretches or shrinks it).
    pub timeout: SimDuration,
    /// Attempts after the first, at most.
    pub retries: u32,
    /// Wait before retry `k` (from 1): `min(max, base * factor^(k-1))`,
    /// of which a random part (`jitter`, 0 to 1) is taken off.
    pub backoff: Backoff,
    /// Open the circuit after this many failures in a row: calls then fail
    /// at once, until a trial call after `open_for` succeeds.
    pub breaker: Option<Breaker>,
    /// At most this many attempts per second from one caller instance
    /// (a token bucket); an attempt over it fails at once.
    pub rate_limit: Option<RateLimit>,
    /// At most this many attempts in flight from one caller instance; one
    /// over it fails at once (a bulkhead keeps a slow dependency from
    /// taking every worker).
    pub bulkhead: Option<u32>,
    /// Kinds the handler publishes when the call fails for good (instead
    /// of its normal `emit`).
    pub on_failure: Vec<Kind>,
}

/// Exponential backoff with jitter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The first wait.
    pub base: SimDuration,
    /// Growth per retry.
    pub factor: f64,
    /// The longest wait.
    pub max: SimDuration,
    /// The random share of each wait (0: none, 1: "full jitter").
    pub jitter: f64,
}

impl Backoff {
    /// No wait between attempts: the retry storm's recipe.
    pub const NONE: Backoff = Backoff { base: SimDuration::ZERO, factor: 1.0, max: SimDuration::ZERO, jitter: 0.0 };

    /// The wait before retry `k` (from 1), given a uniform draw `u` in [0, 1).
    pub fn wait(&self, k: u32, u: f64) -> SimDuration {
        let grown = self.base.0 as f64 * self.factor.powi(k.saturating_sub(1).min(64) as i32);
        let capped = grown.min(self.max.0 as f64);
        SimDuration(crate::sim::dist::to_nanos(capped * (1.0 - self.jitter * u)))
    }
}

/// A circuit breaker's thresholds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Breaker {
    /// Consecutive failures that open the circuit.
    pub failures: u32,
    /// How long it stays open before one trial call (half-open).
    pub open_for: SimDuration,
}

/// A token bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_second: f64,
    /// Tokens the bucket holds, at most.
    pub burst: u32,
}

/// A stock reservation: one unit of a counter per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reserve {
    /// Units each key starts with.
    pub initial: u32,
    /// How concurrent reservations of one key are kept apart.
    pub control: Control,
}

/// Concurrency control for a shared counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// None: read when the work starts, write what was read minus one when it
    /// ends. Two reservations that overlap both see the last unit (a race).
    None,
    /// A lock per key, taken before reading and released after writing
    /// (pessimistic): reservations of one key wait for each other.
    Lock,
    /// A version check (optimistic): a write whose key changed since it
    /// was read is refused, and the work is done again.
    Optimistic,
}

/// One declarative handler, as scenario files write them.
#[derive(Clone, Debug, PartialEq)]
pub struct Handler {
    /// The message kind it handles.
    pub on: Kind,
    /// Processing time.
    pub work: Dist,
    /// Accept the entity (the entry point of a workload).
    pub accept: bool,
    /// Kinds to publish, in order, keyed like the input.
    pub emit: Vec<Kind>,
    /// An external effect to apply.
    pub effect: Option<EffectId>,
    /// The entity is done after this handler.
    pub terminal: bool,
    /// Messages with these keys make the handler fail (poison messages).
    pub fail_keys: Vec<u64>,
    /// Record the entity (its id is the version) under the message's key in this table.
    pub write: Option<u16>,
    /// With `write`: the field whose value the row holds (else the entity's id).
    pub write_value: Option<u8>,
    /// Fields of what it publishes: (field slot, new value); the rest are copied.
    pub set: Vec<(u8, SetTo)>,
    /// Take a unit of stock per message key; `emit` on success, `rejected` when none is left.
    pub reserve: Option<Reserve>,
    /// Kinds to publish when the reservation finds no stock.
    pub rejected: Vec<Kind>,
    /// A synchronous call to make before completing.
    pub call: Option<Call>,
    /// A business refusal that some entities meet (a declined card).
    pub decline: Option<Decline>,
    /// Probability that an attempt fails for a passing reason (see [`Service::flaky`]).
    pub flaky: f64,
    /// With a state machine: the handler applies only in these states (any
    /// if empty); in another state the message is stale and ignored.
    pub from: Vec<u16>,
    /// With a state machine: the state the entity enters.
    pub to: Option<u16>,
}

/// A published field's new value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetTo {
    /// This value.
    Const(i64),
    /// The value of this field of the message handled.
    Copy(u8),
    /// Its value in the message handled, plus this.
    Add(i64),
}

impl Handler {
    /// The payload of what it publishes for `msg`: its fields set, the rest
    /// copied; stamped with `version` when the service has one.
    pub fn payload(&self, msg: &Message, version: Option<u16>) -> Payload {
        let mut p = msg.payload();
        for &(slot, to) in &self.set {
            let i = usize::from(slot) % FIELDS;
            p.fields[i] = match to {
                SetTo::Const(v) => v,
                SetTo::Copy(from) => msg.fields[usize::from(from) % FIELDS],
                SetTo::Add(by) => msg.fields[i].wrapping_add(by),
            };
        }
        if let Some(v) = version {
            p.version = v;
        }
        p
    }

    /// Writes its table's row for `msg`: the entity's id is the version,
    /// the value is `write_value`'s field (else the id).
    fn write_row(&self, msg: &Message, out: &mut Out) {
        if let Some(table) = self.write {
            let value = self.write_value.map_or(msg.entity.0 as i64, |f| msg.fields[usize::from(f) % FIELDS]);
            out.write(table, msg.key, msg.entity.0, value);
        }
    }

    /// Publishes its `emit` kinds for `msg`, keyed like it.
    #[inline(always)]
    fn publish(&self, msg: &Message, version: impl FnOnce() -> Option<u16>, out: &mut Out) {
        if !self.emit.is_empty() {
            let payload = self.payload(msg, version());
            for &kind in &self.emit {
                out.emit_with(kind, msg.key, payload);
            }
        }
    }

    /// A handler of `on` that takes `work` and does nothing else.
    pub fn new(on: Kind, work: Dist) -> Handler {
        Handler {
            on,
            work,
            accept: false,
            emit: Vec::new(),
            effect: None,
            terminal: false,
            fail_keys: Vec::new(),
            write: None,
            write_value: None,
            set: Vec::new(),
            reserve: None,
            rejected: Vec::new(),
            call: None,
            decline: None,
            flaky: 0.0,
            from: Vec::new(),
            to: None,
        }
    }
}

/// A state machine per entity, with deadlines: each state may have a
/// timeout that moves the entity on by itself (the escrow of a purchase:
/// awaiting the buyer's signature, then the seller's, then the payment;
/// closed, or cancelled and refunded when a deadline passes).
///
/// The state lives in the instance's state (durable or volatile as the
/// service's is), keyed by entity; a deadline is a timer set on entering
/// the state, and it only acts if the entity is still in that same visit of
/// the state when it fires.
#[derive(Clone, Debug, PartialEq)]
pub struct Machine {
    /// Per state id ([`crate::system::Names::state`]): it ends the entity.
    pub terminal: Vec<bool>,
    /// Per state id: its deadline, if any.
    pub timeouts: Vec<Option<Timeout>>,
    /// The state survives crashes.
    pub durable: bool,
}

/// A state's deadline and what happens when it passes.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeout {
    /// How long after entering the state.
    pub after: SimDuration,
    /// The state entered when it passes.
    pub to: u16,
    /// Kinds published when it passes.
    pub emit: Vec<Kind>,
    /// An effect applied when it passes (a refund).
    pub effect: Option<EffectId>,
}

/// An entity's machine state lives under `MACHINE_STATE | entity`, its
/// routing key under `MACHINE_KEY | entity`.
const MACHINE_STATE: u64 = 0xFFFE << 48;
const MACHINE_KEY: u64 = 0xFFFD << 48;
const ENTITY_MASK: u64 = (1 << 48) - 1;

/// Where an entity's machine state lives in its instance's state.
pub(crate) fn machine_state_key(entity: EntityId) -> u64 {
    MACHINE_STATE | (entity.0 & ENTITY_MASK)
}

impl Machine {
    /// The entity's state: visits << 16 | state id (0, the initial state, before any move).
    fn current(&self, ctx: &Context<'_>, entity: EntityId) -> u64 {
        ctx.own(self.durable, machine_state_key(entity)).unwrap_or(0) as u64
    }

    /// Moves the entity from `current` to `to`: writes the state, ends the
    /// entity in a terminal state, and sets the new state's deadline.
    fn enter(&self, entity: EntityId, key: u64, current: u64, to: u16, out: &mut Out) {
        let next = ((current >> 16) + 1) << 16 | u64::from(to);
        let e = entity.0 & ENTITY_MASK;
        out.row(self.durable, MACHINE_STATE | e, next as i64);
        out.row(self.durable, MACHINE_KEY | e, key as i64);
        out.commands.push(Command::Transition { from: current as u16, to });
        if self.terminal.get(usize::from(to)).copied().unwrap_or(false) {
            out.terminal();
        }
        if let Some(Some(t)) = self.timeouts.get(usize::from(to)) {
            out.timer(t.after, next);
        }
    }

    /// A deadline set on entering a state fired: if the entity is still in
    /// that visit of the state, take the timeout's transition.
    fn expire(&self, ctx: &Context<'_>, msg: &Message, out: &mut Out) {
        let current = self.current(ctx, msg.entity);
        if current != msg.key {
            return out.ignore(); // the entity moved on: a deadline of a state it left
        }
        let Some(Some(t)) = self.timeouts.get((current & 0xFFFF) as usize) else { return };
        let e = msg.entity.0 & ENTITY_MASK;
        let stored = ctx.own(self.durable, MACHINE_KEY | e);
        let key = stored.unwrap_or(0) as u64;
        self.enter(msg.entity, key, current, t.to, out);
        for &kind in &t.emit {
            out.emit(kind, key);
        }
        if let Some(effect) = t.effect {
            out.effect(effect);
        }
    }
}

/// A business refusal: for a share of the entities (fixed per entity, see
/// [`Context::chance`]), the handler publishes `emit` instead of its normal
/// messages and applies no effect. It is an answer, not a failure: nothing
/// is retried.
#[derive(Clone, Debug, PartialEq)]
pub struct Decline {
    /// The share of entities refused.
    pub probability: f64,
    /// Kinds published instead.
    pub emit: Vec<Kind>,
}

/// A service made of declarative handlers: for each incoming kind, do the
/// listed things. Kinds without a handler take no time and do nothing.
#[derive(Clone, Debug, Default)]
pub struct Declarative {
    /// The handlers, looked up by kind.
    pub handlers: Vec<Handler>,
    /// A state machine per entity, if the handlers move one.
    pub machine: Option<Machine>,
    /// The schema version it stamps on what it publishes (else the
    /// handled message's); the instance's own version comes first.
    pub version: Option<u16>,
    /// What it does with a message above the version its instance reads
    /// (`None`: it misreads it).
    pub unknown: Option<UnknownVersion>,
}

/// What a consumer does with a message of a schema version it does not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownVersion {
    /// Its handler fails.
    Fail,
    /// Consumed, nothing done.
    Skip,
    /// Set aside until an instance that reads it takes it.
    Park,
}

static NO_WORK: Dist = Dist::Const(SimDuration::ZERO);

impl Declarative {
    #[inline]
    fn find(&self, kind: Kind) -> Option<&Handler> {
        self.handlers.iter().find(|h| h.on == kind)
    }
}

impl Declarative {
    /// `msg` is of a version above what the instance reads: it fails,
    /// skips or parks it ([`Out::unreadable`] says which), or misreads it
    /// as its own version (the fields it does not know are 0).
    #[cold]
    #[inline(never)]
    fn unreadable(&self, ctx: &Context<'_>, msg: &Message, out: &mut Out) {
        out.unreadable = match self.unknown {
            Some(UnknownVersion::Fail) => UNREADABLE_FAILED,
            Some(UnknownVersion::Skip) => UNREADABLE_SKIPPED,
            Some(UnknownVersion::Park) => UNREADABLE_PARKED,
            None => UNREADABLE_MISREAD,
        };
        match self.unknown {
            Some(UnknownVersion::Fail) => out.fail(),
            Some(_) => {}
            None => self.handle_read(ctx, &Message { fields: [0; FIELDS], ..*msg }, out),
        }
    }
}

impl Handler {
    /// What it publishes instead of its `emit` when the entity's path ends
    /// here: out of stock (its `rejected`), a call that failed for good
    /// (the call's `on_failure`), a business refusal (the decline's `emit`).
    #[inline]
    fn refused(&self, ctx: &Context<'_>, msg: &Message) -> Option<&[Kind]> {
        if ctx.reserved == Some(false) {
            return Some(&self.rejected);
        }
        if ctx.called == Some(false) {
            return Some(self.call.as_ref().map_or(&[][..], |c| &c.on_failure));
        }
        match &self.decline {
            Some(d) if ctx.chance(msg.entity, u64::from(self.on.0)) < d.probability => Some(&d.emit),
            _ => None,
        }
    }
}

impl Service for Declarative {
    fn work(&self, msg: &Message) -> &Dist {
        self.find(msg.kind).map_or(&NO_WORK, |h| &h.work)
    }

    fn reserve(&self, msg: &Message) -> Option<Reserve> {
        self.find(msg.kind).and_then(|h| h.reserve)
    }

    fn call(&self, msg: &Message) -> Option<&Call> {
        self.find(msg.kind).and_then(|h| h.call.as_ref())
    }

    fn flaky(&self, msg: &Message) -> f64 {
        self.find(msg.kind).map_or(0.0, |h| h.flaky)
    }

    fn handle(&self, ctx: &Context<'_>, msg: &Message, out: &mut Out) {
        if msg.kind == Kind::TIMER {
            if let Some(m) = &self.machine {
                m.expire(ctx, msg, out);
            }
            return;
        }
        if msg.version > ctx.reads() {
            return self.unreadable(ctx, msg, out);
        }
        self.handle_read(ctx, msg, out);
    }
}

impl Declarative {
    /// [`Service::handle`] of a message the instance reads (not a timer).
    #[inline(always)]
    fn handle_read(&self, ctx: &Context<'_>, msg: &Message, out: &mut Out) {
        let (h, current) = match &self.machine {
            None => match self.find(msg.kind) {
                Some(h) => (h, 0),
                None => return,
            },
            // With a machine, a kind may have a handler per state; a message
            // no handler expects in the entity's state is stale and ignored.
            Some(m) => {
                let current = m.current(ctx, msg.entity);
                let state = (current & 0xFFFF) as u16;
                let found =
                    self.handlers.iter().find(|h| h.on == msg.kind && (h.from.is_empty() || h.from.contains(&state)));
                match found {
                    Some(h) => (h, current),
                    None => return out.ignore(),
                }
            }
        };
        if !h.fail_keys.is_empty() && h.fail_keys.contains(&msg.key) {
            out.fail();
            return;
        }
        if h.accept {
            out.accept();
        }
        if let Some(instead) = h.refused(ctx, msg) {
            for &kind in instead {
                out.emit(kind, msg.key);
            }
            if h.terminal {
                out.terminal();
            }
            return;
        }
        h.write_row(msg, out);
        // The state is written first, then published: a crash between the
        // two (the dual-write gap) keeps the one without the other.
        if let (Some(m), Some(to)) = (&self.machine, h.to) {
            m.enter(msg.entity, msg.key, current, to, out);
        }
        h.publish(msg, || ctx.version().or(self.version), out);
        if let Some(e) = h.effect {
            out.effect(e);
        }
        if h.terminal {
            out.terminal();
        }
    }
}
