//! Compiling the buses: each bus of `bus` or `buses`, its settings and
//! brokers, the topics bound to it and each topic's own settings, with the
//! bounds that keep a log's size sane.

use super::*;

impl Compiler<'_> {
    /// The buses and the bus of each topic (by kind): `bus` alone carries
    /// every topic; under `buses` (at most one of each kind, each named),
    /// each carries the topics it lists and the first one every topic that
    /// none lists.
    pub(super) fn buses(&mut self, s: &Scenario, names: &mut Names, emitted: &[&str]) -> Option<(Vec<Bus>, Vec<u32>)> {
        match (&s.bus, s.buses.is_empty()) {
            (None, true) => {
                let help = "add `bus: Log(...)`, `Queue(...)` or `Ephemeral(...)`, or `buses: [...]` for several";
                self.err(&[], "the scenario has no bus", Some(help.into()));
                return None;
            }
            (Some(_), false) => {
                let help = "one bus: `bus: ...`; several: `buses: [...]` alone";
                self.err(&[P::F("buses")], "both `bus` and `buses` are given", Some(help.into()));
                return None;
            }
            _ => {}
        }
        let single = s.bus.is_some();
        let mut buses = Vec::new();
        let mut topic_bus: Vec<u32> = Vec::new();
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (i, (here, b)) in all_buses(s).into_iter().enumerate() {
            let at = |f: &'static str| [here.as_slice(), &[P::F(f)]].concat();
            let (name, topics) = b.binding();
            if single && !topics.is_empty() {
                let help = Some("list topics only under `buses: [...]`, where there are several".into());
                self.err(&at("topics"), "the only bus carries every topic", help);
            }
            let name = match name {
                Some(n) => n,
                None if single => "broker",
                None => {
                    let help = Some(format!("give it a name: {}(name: \"...\", ...)", b.kind_name()));
                    self.err(&here, "each of several buses needs a name", help);
                    "broker"
                }
            };
            if !valid_name(name) {
                let help = Some("use letters, digits, '_' and '-'".into());
                self.err(&at("name"), format!("bus name {name:?} is not usable"), help);
            }
            if s.services.iter().any(|sv| sv.name == name) {
                let help = Some("its broker nodes would share the service's node names: rename one".into());
                self.err(&at("name"), format!("a service is also called `{name}`"), help);
            }
            if let Some((_, other)) = seen.iter().find(|(n, _)| *n == name) {
                self.err(&at("name"), format!("two buses are called `{name}` (the other is a {other})"), None);
            }
            if let Some((other, _)) = seen.iter().find(|(_, k)| *k == b.kind_name()) {
                let help = Some("one bus of each kind: Log, Queue, Ephemeral".into());
                self.err(&here, format!("a second {} bus (`{other}` is one)", b.kind_name()), help);
            }
            seen.push((name, b.kind_name()));
            self.bind_topics(&here, topics, i as u32, emitted, names, &mut topic_bus);
            self.topics_carried(s, &here, b);
            let spec = self.bus(&here, b, names, emitted);
            buses.push(spec.map(|spec| Bus { name: name.to_string(), spec }));
        }
        // Every topic no bus lists travels on the first.
        for b in &mut topic_bus {
            if *b == u32::MAX {
                *b = 0;
            }
        }
        Some((buses.into_iter().collect::<Option<Vec<_>>>()?, topic_bus))
    }

    /// The topics a log bus (at `here`) gives settings must travel on it.
    pub(super) fn topics_carried(&mut self, s: &Scenario, here: &[P], b: &schema::Bus) {
        let schema::Bus::Log { per_topic, .. } = b else { return };
        for (i, t) in per_topic.iter().enumerate() {
            if let Some(other) = s.bus_of(&t.name).filter(|o| !matches!(o, schema::Bus::Log { .. })) {
                let on = other.binding().0.unwrap_or("another bus");
                let at = [here, &[P::F("per_topic"), P::I(i), P::F("name")]].concat();
                self.err(&at, format!("topic `{}` travels on `{on}`, not on this log", t.name), None);
            }
        }
    }

    /// Bus `bus` (written at `here`) carries `topics`: each must be emitted
    /// by some handler and listed by no other bus.
    pub(super) fn bind_topics(
        &mut self,
        here: &[P],
        topics: &[String],
        bus: u32,
        emitted: &[&str],
        names: &mut Names,
        topic_bus: &mut Vec<u32>,
    ) {
        for (t, topic) in topics.iter().enumerate() {
            let tat = [here, &[P::F("topics"), P::I(t)]].concat();
            if !emitted.contains(&topic.as_str()) {
                let help = suggest(topic, emitted.iter().copied()).map(|s| format!("did you mean `{s}`?"));
                self.err(&tat, format!("no handler emits `{topic}`"), help);
                continue;
            }
            let k = names.kind(topic).0 as usize;
            if topic_bus.len() <= k {
                topic_bus.resize(k + 1, u32::MAX);
            }
            if topic_bus[k] != u32::MAX {
                self.err(&tat, format!("topic `{topic}` is listed by two buses"), None);
            }
            topic_bus[k] = bus;
        }
    }

    /// One bus, checked against the topics that exist; `here` is where it
    /// is written.
    pub(super) fn bus(&mut self, here: &[P], b: &schema::Bus, names: &mut Names, emitted: &[&str]) -> Option<BusSpec> {
        match b {
            schema::Bus::Ephemeral { latency, .. } => {
                self.dist(&[here, &[P::F("latency")]].concat(), latency).map(|latency| BusSpec::Ephemeral { latency })
            }
            schema::Bus::Queue { .. } => self.queue_bus_spec(here, b),
            schema::Bus::Log { .. } => self.log_bus_spec(here, b, names, emitted),
        }
    }

    /// A Queue bus (at `here`).
    pub(super) fn queue_bus_spec(&mut self, here: &[P], b: &schema::Bus) -> Option<BusSpec> {
        let schema::Bus::Queue {
            latency,
            kind,
            ack_timeout,
            delivery_limit,
            heartbeat,
            window,
            message_size,
            reconnect,
            durable,
            persistent,
            confirms,
            max_len,
            ..
        } = b
        else {
            return None;
        };
        let heartbeat = self.positive(&[here, &[P::F("heartbeat")]].concat(), heartbeat, 60);
        let reconnect = self.positive(&[here, &[P::F("reconnect")]].concat(), reconnect, 5);
        let ack_timeout = match ack_timeout {
            Some(t) => {
                let at = [here, &[P::F("ack_timeout")]].concat();
                let d = self.duration(&at, t);
                if d == Some(SimDuration::ZERO) {
                    self.err(&at, "the ack timeout must be above zero", None);
                }
                d
            }
            None => None,
        };
        let kind = queue_kind(*kind);
        if kind == QueueKind::RedisStream && ack_timeout.is_none() {
            self.warn(
                &[here, &[P::F("kind")]].concat(),
                "no `ack_timeout` on a Redis stream: nothing claims a dead consumer's pending entries \
                 (no XAUTOCLAIM); they wait for that consumer's restart",
                Some("set `ack_timeout` to the idle time of your consumers' XAUTOCLAIM loop".into()),
            );
        }
        let ack_timeout = ack_timeout.or(kind.default_ack_timeout());
        if let Some(n) = max_len {
            let at = [here, &[P::F("max_len")]].concat();
            if kind != QueueKind::RedisStream {
                self.err(&at, "`max_len` trims a Redis stream", Some("use kind: RedisStream".into()));
            }
            self.bounded(&at, "max_len", *n, 1, u64::MAX);
        }
        if let Some(m) = delivery_limit {
            let at = [here, &[P::F("delivery_limit")]].concat();
            if kind == QueueKind::Classic {
                self.err(
                    &at,
                    "classic queues have no delivery limit: RabbitMQ ignores `x-delivery-limit` on them, \
                     and a nacked message is delivered again for ever",
                    Some("use kind: Quorum (x-delivery-limit) or kind: JetStream (max_deliver)".into()),
                );
            }
            let low = if kind == QueueKind::Quorum { 0 } else { 1 };
            self.bounded(&at, "delivery_limit", *m, low, 1_000_000);
        }
        // The window in messages: its bytes over a message's, at least one.
        let window_bytes = match window {
            Some(w) => self.bytes(&[here, &[P::F("window")]].concat(), w),
            None => Some(4_400_000),
        };
        let size = match message_size {
            Some(s) => self.bytes(&[here, &[P::F("message_size")]].concat(), s),
            None => Some(1000),
        };
        let window = match (window_bytes, size) {
            (Some(w), Some(s)) if s > 0 => (w / s).clamp(1, u64::from(u32::MAX)) as u32,
            (_, Some(0)) => {
                self.err(&[here, &[P::F("message_size")]].concat(), "a message of no bytes", None);
                1
            }
            _ => 1,
        };
        if kind == QueueKind::Quorum {
            for (field, v) in [("durable", durable), ("persistent", persistent)] {
                if *v == Some(false) {
                    self.err(
                        &[here, &[P::F(field)]].concat(),
                        "quorum queues are always durable and keep every message on disk",
                        Some(format!("remove `{field}`, or use kind: Classic")),
                    );
                }
            }
        }
        if kind == QueueKind::JetStream && *durable == Some(false) {
            self.err(
                &[here, &[P::F("durable")]].concat(),
                "a JetStream stream survives a server restart; its storage decides what its messages do",
                Some("use `persistent: false` for memory storage".into()),
            );
        }
        self.dist(&[here, &[P::F("latency")]].concat(), latency).map(|latency| BusSpec::Queue {
            latency,
            kind,
            ack_timeout,
            delivery_limit: *delivery_limit,
            heartbeat,
            window,
            reconnect,
            durable: durable.unwrap_or(true),
            persistent: persistent.unwrap_or(true),
            confirms: *confirms,
            max_len: *max_len,
        })
    }

    /// A Log bus (at `here`), its compacted topics among those emitted.
    pub(super) fn log_bus_spec(
        &mut self,
        here: &[P],
        b: &schema::Bus,
        names: &mut Names,
        emitted: &[&str],
    ) -> Option<BusSpec> {
        let schema::Bus::Log {
            partitions,
            latency,
            fetch_max,
            retention,
            retention_records,
            compacted,
            session_timeout,
            brokers,
            delivery_timeout,
            per_topic,
            ..
        } = b
        else {
            return None;
        };
        let delivery_timeout = self.positive(&[here, &[P::F("delivery_timeout")]].concat(), delivery_timeout, 120);
        let session_timeout = match session_timeout {
            Some(t) => self.duration(&[here, &[P::F("session_timeout")]].concat(), t).unwrap_or(SimDuration::ZERO),
            None => SimDuration::from_secs(10),
        };
        let retention = retention.as_deref().and_then(|r| self.duration(&[here, &[P::F("retention")]].concat(), r));
        if let Some(n) = retention_records {
            self.bounded(&[here, &[P::F("retention_records")]].concat(), "retention_records", *n, 1, u64::MAX);
        }
        let mut compacted_kinds = Vec::new();
        for (t, topic) in compacted.iter().enumerate() {
            if !emitted.contains(&topic.as_str()) {
                let help = suggest(topic, emitted.iter().copied()).map(|x| format!("did you mean `{x}`?"));
                self.err(
                    &[here, &[P::F("compacted"), P::I(t)]].concat(),
                    format!("topic `{topic}` is never emitted by any service"),
                    help,
                );
            }
            compacted_kinds.push(names.kind(topic));
        }
        let retention_records = *retention_records;
        let brokers = brokers.as_ref().map(|b| self.broker_spec(here, b, latency));
        let partitions =
            self.bounded(&[here, &[P::F("partitions")]].concat(), "partitions", *partitions, 1, bounds::PARTITIONS_MAX);
        let fetch_max =
            self.bounded(&[here, &[P::F("fetch_max")]].concat(), "fetch_max", *fetch_max, 1, bounds::FETCH_MAX);
        let defaults = (partitions, retention, retention_records, brokers.as_ref().map(|b| b.count));
        let per_topic = self.topic_specs(here, per_topic, defaults, names, emitted);
        self.dist(&[here, &[P::F("latency")]].concat(), latency).map(|latency| BusSpec::Log {
            partitions,
            latency,
            fetch_max,
            retention,
            retention_records,
            compacted: compacted_kinds,
            per_topic,
            session_timeout,
            brokers,
            delivery_timeout,
        })
    }

    /// The log keeps every partition of every topic, each with its replicas,
    /// and each consuming service (a group) its progress in every partition
    /// it reads: refused when absurd.
    pub(super) fn log_size_bound(&mut self, s: &Scenario, names: &Names, consumed_topics: u64) {
        if let Some(schema::Bus::Log { partitions, brokers, per_topic, .. }) = s.log_bus() {
            // At most: the largest topic's partitions for every topic.
            let largest = per_topic.iter().filter_map(|t| t.partitions).fold(*partitions, u32::max);
            let partitions = u64::from(largest.min(bounds::PARTITIONS_MAX));
            let replication = brokers.as_ref().map_or(1, |b| u64::from(b.replication.clamp(1, 100)));
            let (topics, groups) = (names.kind_count() as u64, consumed_topics * partitions);
            let kept = topics * partitions * (1 + replication);
            if kept > bounds::LOG_PARTITIONS_MAX || groups > bounds::LOG_PARTITIONS_MAX {
                self.err(
                    &[P::F("bus"), P::F("partitions")],
                    format!(
                        "{topics} topics × {partitions} partitions: {kept} partition replicas to keep and {groups} \
                         consumer positions to track"
                    ),
                    Some(format!("at most {} of each: fewer partitions or fewer topics", bounds::LOG_PARTITIONS_MAX)),
                );
            }
        }
    }

    /// A log's broker nodes (the log at `here`; `latency`: its fetch
    /// latency, the default between replicas).
    pub(super) fn broker_spec(&mut self, here: &[P], b: &schema::Brokers, latency: &schema::Dist) -> BrokerSpec {
        let at = |f: &'static str| [here, &[P::F("brokers"), P::F(f)]].concat();
        let count = self.bounded(&at("count"), "count", b.count, 1, 100);
        let replication = self.bounded(&at("replication"), "replication", b.replication, 1, count.max(1));
        let min_insync = self.bounded(&at("min_insync"), "min_insync", b.min_insync, 1, replication.max(1));
        let flush_every = b.flush.as_deref().and_then(|f| self.duration(&at("flush"), f));
        if flush_every == Some(SimDuration::ZERO) {
            self.err(&at("flush"), "the flush interval must be above zero", None);
        }
        let replica_latency = match &b.replica_latency {
            Some(d) => self.dist(&at("replica_latency"), d),
            None => self.dist(&[here, &[P::F("latency")]].concat(), latency),
        }
        .unwrap_or(Dist::Const(SimDuration::ZERO));
        let retry_after = match &b.retry_after {
            Some(t) => self.duration(&at("retry_after"), t).unwrap_or(SimDuration::SECOND),
            None => SimDuration::from_secs(5),
        };
        if retry_after == SimDuration::ZERO {
            self.err(&at("retry_after"), "retry_after must be above zero", None);
        }
        let retries = self.bounded(&at("retries"), "retries", b.retries, 0, 1_000);
        let broker_session = self.positive(&at("session_timeout"), &b.session_timeout, 9);
        let replica_lag = self.positive(&at("replica_lag"), &b.replica_lag, 30);
        BrokerSpec {
            count,
            replication,
            min_insync,
            acks: match b.acks {
                schema::AcksSchema::None => Acks::None,
                schema::AcksSchema::Leader => Acks::Leader,
                schema::AcksSchema::All => Acks::All,
            },
            unclean_election: b.unclean_election,
            flush_every,
            replica_latency,
            retries,
            retry_after,
            idempotent: b.idempotent,
            session_timeout: broker_session,
            replica_lag,
        }
    }

    /// A log's topics with their own settings (at `here`), each taking what
    /// it leaves out from its bus: (partitions, retention, size retention,
    /// broker nodes).
    pub(super) fn topic_specs(
        &mut self,
        here: &[P],
        topics: &[schema::Topic],
        (partitions, retention, retention_records, brokers): (u32, Option<SimDuration>, Option<u64>, Option<u32>),
        names: &mut Names,
        emitted: &[&str],
    ) -> Vec<TopicSpec> {
        let mut out: Vec<TopicSpec> = Vec::new();
        for (i, t) in topics.iter().enumerate() {
            let at = |f: &'static str| [here, &[P::F("per_topic"), P::I(i), P::F(f)]].concat();
            if !emitted.contains(&t.name.as_str()) {
                let help = suggest(&t.name, emitted.iter().copied()).map(|x| format!("did you mean `{x}`?"));
                self.err(&at("name"), format!("topic `{}` is never emitted by any service", t.name), help);
                continue;
            }
            let kind = names.kind(&t.name);
            if out.iter().any(|o| o.kind == kind) {
                self.err(&at("name"), format!("topic `{}` has its settings twice", t.name), None);
            }
            let replication = t.replication.map(|r| match brokers {
                Some(count) => self.bounded(&at("replication"), "replication", r, 1, count),
                None => {
                    let help = Some("replication needs broker nodes: `brokers: (count: N)`".into());
                    self.err(&at("replication"), "an ideal broker keeps one copy", help);
                    1
                }
            });
            out.push(TopicSpec {
                kind,
                partitions: t.partitions.map_or(partitions, |p| {
                    self.bounded(&at("partitions"), "partitions", p, 1, bounds::PARTITIONS_MAX)
                }),
                retention: t.retention.as_deref().and_then(|r| self.duration(&at("retention"), r)).or(retention),
                retention_records: t
                    .retention_records
                    .map(|n| self.bounded(&at("retention_records"), "retention_records", n, 1, u64::MAX))
                    .or(retention_records),
                compacted: t.compacted,
                replication,
                round_robin: t.key == schema::TopicKey::RoundRobin,
            });
        }
        out
    }
}
