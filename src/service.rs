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

/// A message as it travels: small and `Copy`, so the hot path never allocates.
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
}

/// What a handler sees besides the message.
pub struct Context<'a> {
    /// Virtual time at which the handler's work completes.
    pub now: SimTime,
    /// The instance's node name, e.g. `inventory-1`.
    pub node: &'a str,
    /// The instance's index within its service, from 0.
    pub instance: u32,
    pub(crate) durable: &'a BTreeMap<u64, i64>,
    pub(crate) volatile: &'a BTreeMap<u64, i64>,
    /// For a handler that reserves stock ([`Service::reserve`]): whether it
    /// got a unit.
    pub reserved: Option<bool>,
}

impl Context<'_> {
    /// A value in the instance's durable state (survives crashes).
    pub fn durable(&self, key: u64) -> Option<i64> {
        self.durable.get(&key).copied()
    }

    /// A value in the instance's volatile state (lost on crash).
    pub fn volatile(&self, key: u64) -> Option<i64> {
        self.volatile.get(&key).copied()
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
    },
    /// Apply an external side effect once (send an invoice, charge a card).
    Effect(EffectId),
    /// The entity reached a terminal state.
    Terminal,
    /// Write `value` under `key` in durable or volatile state.
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
    },
}

/// The out-buffer a handler pushes its commands into. Reused across
/// messages, so handling allocates nothing once warm.
#[derive(Default, Debug)]
pub struct Out {
    pub(crate) commands: Vec<Command>,
    pub(crate) failed: bool,
}

impl Out {
    /// Accept the message's entity.
    pub fn accept(&mut self) {
        self.commands.push(Command::Accept);
    }
    /// Publish a message of `kind` with routing key `key`.
    pub fn emit(&mut self, kind: Kind, key: u64) {
        self.commands.push(Command::Emit { kind, key });
    }
    /// Apply an external side effect.
    pub fn effect(&mut self, effect: EffectId) {
        self.commands.push(Command::Effect(effect));
    }
    /// Mark the entity terminal.
    pub fn terminal(&mut self) {
        self.commands.push(Command::Terminal);
    }
    /// Write durable (`true`) or volatile state.
    pub fn put(&mut self, durable: bool, key: u64, value: i64) {
        self.commands.push(Command::Put { durable, key, value });
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
    /// Take a unit of stock per message key; `emit` on success, `rejected` when none is left.
    pub reserve: Option<Reserve>,
    /// Kinds to publish when the reservation finds no stock.
    pub rejected: Vec<Kind>,
}

/// A service made of declarative handlers: for each incoming kind, do the
/// listed things. Kinds without a handler take no time and do nothing.
#[derive(Clone, Debug, Default)]
pub struct Declarative {
    /// The handlers, looked up by kind.
    pub handlers: Vec<Handler>,
}

static NO_WORK: Dist = Dist::Const(SimDuration::ZERO);

impl Declarative {
    #[inline]
    fn find(&self, kind: Kind) -> Option<&Handler> {
        self.handlers.iter().find(|h| h.on == kind)
    }
}

impl Service for Declarative {
    fn work(&self, msg: &Message) -> &Dist {
        self.find(msg.kind).map_or(&NO_WORK, |h| &h.work)
    }

    fn reserve(&self, msg: &Message) -> Option<Reserve> {
        self.find(msg.kind).and_then(|h| h.reserve)
    }

    fn handle(&self, ctx: &Context<'_>, msg: &Message, out: &mut Out) {
        let Some(h) = self.find(msg.kind) else { return };
        if !h.fail_keys.is_empty() && h.fail_keys.contains(&msg.key) {
            out.fail();
            return;
        }
        if h.accept {
            out.accept();
        }
        if ctx.reserved == Some(false) {
            // Out of stock: the order ends here, rejected.
            for &kind in &h.rejected {
                out.emit(kind, msg.key);
            }
            if h.terminal {
                out.terminal();
            }
            return;
        }
        if let Some(table) = h.write {
            out.commands.push(Command::Write { table, key: msg.key, version: msg.entity.0 });
        }
        for &kind in &h.emit {
            out.emit(kind, msg.key);
        }
        if let Some(e) = h.effect {
            out.effect(e);
        }
        if h.terminal {
            out.terminal();
        }
    }
}
