//! The buses: which one a system uses ([`BusKind`], the closed set the
//! event loop's verbs match), their settings, and the broker-side state of
//! those that keep messages: durable queues with acknowledgements
//! (RabbitMQ-like, [`queue`]) and the log ([`log`]). The ephemeral bus
//! keeps nothing.

pub(crate) mod log;
pub(crate) mod queue;

use crate::service::Kind;
use crate::system::{BusSpec, System};

impl System {
    /// The kind of bus topic `kind` travels on.
    pub(crate) fn bus_kind_of(&self, kind: u32) -> BusKind {
        BusKind::of(self.bus_of(Kind(kind)))
    }
}

/// The bus a system's messages travel on: a closed set. Each verb of the
/// event loop (publish, ack, nack, what a crash or a restart means, what is
/// sampled) matches it exhaustively, so a new bus is a file plus one
/// compiler-checked arm per verb.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BusKind {
    /// Fire-and-forget pub/sub: pushed to the subscribers up now, kept nowhere.
    Ephemeral,
    /// A partitioned log with consumer groups and offsets; `brokers`: its
    /// partitions are replicated on broker nodes that fail (else an ideal
    /// broker that never does).
    Log { brokers: bool },
    /// Queues with acknowledgements on one broker node.
    Queue,
}

impl BusKind {
    pub fn of(spec: &BusSpec) -> BusKind {
        match spec {
            BusSpec::Ephemeral { .. } => BusKind::Ephemeral,
            BusSpec::Log { brokers, .. } => BusKind::Log { brokers: brokers.is_some() },
            BusSpec::Queue { .. } => BusKind::Queue,
        }
    }

    /// A producer reaches the broker over its own reliable connection:
    /// faults on it hold, delay or lose what it sends (a queue broker, an
    /// ideal log broker). Replicated logs have their own produce requests;
    /// the ephemeral bus has no connection to hold anything.
    pub fn connected(self) -> bool {
        match self {
            BusKind::Queue | BusKind::Log { brokers: false } => true,
            BusKind::Ephemeral | BusKind::Log { brokers: true } => false,
        }
    }
}
