//! A Kafka-like log's settings. Its partitions, consumer groups, replicas
//! and producers live with the event loop for now (`sim::world::log_bus`,
//! `brokers`, `quorum`).

use crate::sim::SimDuration;
use crate::system::{BrokerSpec, BusSpec, TopicSpec};

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
    /// Topics with their own settings.
    pub per_topic: Vec<TopicSpec>,
    /// Records can leave the log by retention or compaction ([`Self::gc`]).
    gc: bool,
}

impl LogSettings {
    pub fn of(spec: Option<&BusSpec>) -> LogSettings {
        let mut settings = LogSettings::from_spec(spec);
        settings.gc = settings.retention.is_some()
            || settings.retention_records.is_some()
            || !settings.compacted.is_empty()
            || settings.per_topic.iter().any(|t| t.retention.is_some() || t.retention_records.is_some() || t.compacted);
        settings
    }

    fn from_spec(spec: Option<&BusSpec>) -> LogSettings {
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
                per_topic,
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
                per_topic: per_topic.clone(),
                gc: false,
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
                per_topic: Vec::new(),
                gc: false,
            },
        }
    }

    /// Records can leave the log by retention or compaction: fetches check.
    #[inline]
    pub fn gc(&self) -> bool {
        self.gc
    }

    /// Topic `kind`'s own settings, if it has any.
    fn topic(&self, kind: u32) -> Option<&TopicSpec> {
        self.per_topic.iter().find(|t| t.kind.0 == kind)
    }

    /// Whether topic `kind` is compacted.
    pub fn compacted(&self, kind: u32) -> bool {
        self.compacted.contains(&kind) || self.topic(kind).is_some_and(|t| t.compacted)
    }

    /// Topic `kind`'s partitions.
    pub fn partitions_of(&self, kind: u32) -> u32 {
        self.topic(kind).map_or(self.partitions, |t| t.partitions.max(1))
    }

    /// Topic `kind`'s retention, in time and in records per partition.
    pub fn retention_of(&self, kind: u32) -> (Option<SimDuration>, Option<u64>) {
        self.topic(kind).map_or((self.retention, self.retention_records), |t| (t.retention, t.retention_records))
    }

    /// Copies of each of topic `kind`'s partitions, with broker nodes.
    pub fn replication_of(&self, kind: u32) -> u32 {
        let default = self.brokers.as_ref().map_or(1, |b| b.replication);
        self.topic(kind).and_then(|t| t.replication).unwrap_or(default)
    }

    /// Producers spread topic `kind` over its partitions in turn.
    pub fn round_robin(&self, kind: u32) -> bool {
        self.topic(kind).is_some_and(|t| t.round_robin)
    }
}
