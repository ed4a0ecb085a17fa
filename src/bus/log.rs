//! A Kafka-like log's settings. Its partitions, consumer groups, replicas
//! and producers live with the event loop for now (`sim::world::log_bus`,
//! `brokers`, `quorum`).

use crate::sim::SimDuration;
use crate::system::{BrokerSpec, BusSpec};

/// A log bus's settings, from its spec (no partitions without a log bus).
#[derive(Clone, Debug)]
pub(crate) struct LogSettings {
    /// Partitions per topic (0: not a log).
    pub partitions: u32,
    /// Records a consumer instance holds fetched but not yet processed.
    pub fetch_max: u32,
    /// Time retention.
    pub retention: Option<SimDuration>,
    /// Size retention, in records per partition.
    pub retention_records: Option<u64>,
    /// Compacted topics, by kind.
    pub compacted: Vec<u32>,
    /// A crashed member's partitions move after this long.
    pub session_timeout: SimDuration,
    /// With an ideal broker: a producer gives a record up after this long.
    pub delivery_timeout: SimDuration,
    /// Broker nodes behind the log, if configured.
    pub brokers: Option<BrokerSpec>,
}

impl LogSettings {
    pub fn of(spec: Option<&BusSpec>) -> LogSettings {
        match spec {
            Some(BusSpec::Log {
                partitions,
                fetch_max,
                retention,
                retention_records,
                compacted,
                session_timeout,
                brokers,
                delivery_timeout,
                ..
            }) => LogSettings {
                partitions: (*partitions).max(1),
                fetch_max: (*fetch_max).max(1),
                retention: *retention,
                retention_records: *retention_records,
                compacted: compacted.iter().map(|k| k.0).collect(),
                session_timeout: *session_timeout,
                delivery_timeout: *delivery_timeout,
                brokers: brokers.clone(),
            },
            _ => LogSettings {
                partitions: 0,
                fetch_max: 0,
                retention: None,
                retention_records: None,
                compacted: Vec::new(),
                session_timeout: SimDuration::ZERO,
                delivery_timeout: SimDuration::ZERO,
                brokers: None,
            },
        }
    }

    /// Records can leave the log by retention or compaction: fetches check.
    pub fn gc(&self) -> bool {
        self.retention.is_some() || self.retention_records.is_some() || !self.compacted.is_empty()
    }

    /// Whether topic `kind` is compacted.
    pub fn compacted(&self, kind: u32) -> bool {
        self.compacted.contains(&kind)
    }
}
