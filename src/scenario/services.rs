//! Compiling the services: instances and their autoscaler, workers,
//! state, what they consume and how they commit, their handlers (accept,
//! handle, calls, payloads, state machines) and the events business rules
//! name.

use super::*;

impl Compiler<'_> {
    /// The services, and which of them accept which workload's entity
    /// (service, workload); `entry` holds each workload's entity kind and
    /// request.
    pub(super) fn services(
        &mut self,
        s: &Scenario,
        names: &mut Names,
        emitted: &[&str],
        requests: &[&str],
        entry: &[(&str, Kind)],
    ) -> (Vec<ServiceSpec>, Vec<(usize, usize)>) {
        if s.services.is_empty() {
            self.err(&[P::F("services")], "a scenario needs at least one service", None);
        }
        let mut services = Vec::new();
        let mut accepting: Vec<(usize, usize)> = Vec::new();
        let (mut node_count, mut worker_count, mut consumed_topics) = (0u64, 0u64, 0u64);
        for (i, sv) in s.services.iter().enumerate() {
            let at = |f: &'static str| [P::F("services"), P::I(i), P::F(f)];
            if !valid_name(&sv.name) {
                self.err(
                    &at("name"),
                    format!("service name {:?} is not usable", sv.name),
                    Some("use letters, digits, '_' and '-'".into()),
                );
            }
            if s.services[..i].iter().any(|o| o.name == sv.name) {
                self.err(&at("name"), format!("service `{}` is declared twice", sv.name), None);
            }
            let (instances, autoscale) = self.instances(i, sv);
            let workers = self.bounded(&at("workers"), "workers", sv.workers, 1, bounds::WORKERS_MAX);
            // A queue of 0 is a loss system: what finds every worker busy is refused.
            let queue = self.bounded(&at("queue"), "queue", sv.queue, 0, bounds::QUEUE_MAX);
            node_count += u64::from(instances.min(bounds::INSTANCES_MAX));
            worker_count += u64::from(instances) * u64::from(workers);
            let before = worker_count - u64::from(instances) * u64::from(workers);
            if worker_count > bounds::WORKERS_TOTAL_MAX && before <= bounds::WORKERS_TOTAL_MAX {
                self.err(
                    &at("workers"),
                    format!("{worker_count} workers in all (instances × workers, summed over the services so far)"),
                    Some(format!("at most {} in a scenario", bounds::WORKERS_TOTAL_MAX)),
                );
            }
            consumed_topics += sv.consume.topics.len() as u64;
            let mut consumes = Vec::new();
            for (t, topic) in sv.consume.topics.iter().enumerate() {
                if !emitted.contains(&topic.as_str()) {
                    let help = suggest(topic, emitted.iter().copied()).map(|s| format!("did you mean `{s}`?"));
                    self.err(
                        &[P::F("services"), P::I(i), P::F("consume"), P::F("topics"), P::I(t)],
                        format!("topic `{topic}` is never emitted by any service"),
                        help.or_else(|| Some("a topic exists when some handler emits it".into())),
                    );
                }
                consumes.push(names.kind(topic));
            }
            let mut handlers = Vec::new();
            let mut reserves = false;
            let mut spec_flaky = false;
            for (h, handler) in sv.on.iter().enumerate() {
                let here = [P::F("services"), P::I(i), P::F("on"), P::I(h)];
                let handler = match handler {
                    schema::Handler::Accept { entity, .. } => {
                        let w =
                            self.accepted_workload(&[&here[..], &[P::F("entity")]].concat(), &sv.name, entity, entry);
                        accepting.push((i, w));
                        self.accept_handler(&here, s, sv, handler, entry.get(w).map_or(Kind(0), |e| e.1), names)
                    }
                    schema::Handler::Handle { .. } => {
                        self.handle_handler(&here, s, sv, handler, names, emitted, requests, &handlers)
                    }
                };
                spec_flaky |= handler.flaky > 0.0;
                reserves |= handler.reserve.is_some();
                handlers.push(handler);
            }
            let mut spec = ServiceSpec::new(&sv.name);
            (spec.instances, spec.autoscale) = (instances, autoscale);
            spec.workers = workers;
            spec.queue_capacity = queue;
            spec.state = state_kind(sv.state);
            spec.consumes = consumes;
            spec.commit = self.commit_policy(i, sv);
            let is_log = reads_from(s, sv, true);
            if spec.commit != CommitPolicy::AfterProcess && !is_log {
                self.err(
                    &[P::F("services"), P::I(i), P::F("consume"), P::F("commit")],
                    "commit policies apply to consumers of a Log bus",
                    Some("remove `commit`, or use bus: Log(...)".into()),
                );
            }
            let is_queue = reads_from(s, sv, false);
            let cat = |f: &'static str| [P::F("services"), P::I(i), P::F("consume"), P::F(f)];
            if !is_queue {
                for (field, set) in [
                    ("queue", sv.consume.queue.is_some()),
                    ("ack", sv.consume.ack.is_some()),
                    ("prefetch", sv.consume.prefetch.is_some()),
                ] {
                    if set {
                        self.err(
                            &cat(field),
                            format!("`{field}` applies to consumers of a Queue bus"),
                            Some(format!("remove `{field}`, or use bus: Queue(...)")),
                        );
                    }
                }
            }
            spec.queue = sv.consume.queue.clone();
            spec.start_latest = matches!(sv.consume.start, schema::Start::Latest);
            if let Some(o) = &sv.outbox {
                let at = [P::F("services"), P::I(i), P::F("outbox"), P::F("poll")];
                let poll = self.duration(&at, &o.poll);
                if poll == Some(SimDuration::ZERO) {
                    self.err(&at, "the outbox poll interval must be above zero", None);
                }
                spec.outbox = Some(poll.unwrap_or(SimDuration::SECOND));
            }
            spec.starts_at = self.starts_at(i, sv);
            spec.routing = routing(sv.routing);
            spec.auto_ack = matches!(sv.consume.ack, Some(schema::Ack::Auto));
            spec.prefetch = match sv.consume.prefetch {
                Some(p) => self.bounded(&cat("prefetch"), "prefetch", p, 1, 1_000_000),
                // Only a Queue bus reads it.
                None => match s.queue_bus() {
                    Some(schema::Bus::Queue { kind, .. }) => queue_kind(*kind).default_prefetch(),
                    _ => u32::MAX,
                },
            };
            let unknown = self.recovery_and_versions(&mut spec, (i, &handlers), s, sv, names);
            spec.calls = handlers.iter().any(|h| h.call.is_some());
            let machine = self.machine(i, sv, names);
            spec.durable_timers = sv.timers != schema::State::Volatile;
            spec.behaviour = Arc::new(Declarative { handlers, machine, version: sv.version, unknown });
            spec.reserves = reserves;
            spec.flaky = spec_flaky;
            services.push(spec);
        }
        if node_count > bounds::NODES_MAX {
            self.err(
                &[P::F("services")],
                format!("{node_count} instances in all is absurd"),
                Some(format!("at most {}", bounds::NODES_MAX)),
            );
        }
        self.log_size_bound(s, names, consumed_topics);
        (services, accepting)
    }

    /// Service `i`'s state machine, if it has one.
    pub(super) fn machine(&mut self, i: usize, sv: &schema::Service, names: &mut Names) -> Option<Machine> {
        sv.machine.as_ref().map(|m| {
            let mat = |f: &'static str| [P::F("services"), P::I(i), P::F("machine"), P::F(f)];
            let terminal: Vec<u16> = m.terminal.iter().map(|t| names.state(t)).collect();
            let mut timeouts = Vec::new();
            for (k, t) in m.timeouts.iter().enumerate() {
                let tat = |f: &'static str| [&mat("timeouts")[..], &[P::I(k), P::F(f)]].concat();
                let state = usize::from(names.state(&t.state));
                let to = names.state(&t.to);
                let after = self.duration(&tat("after"), &t.after);
                if after == Some(SimDuration::ZERO) {
                    self.err(&tat("after"), "a deadline must be above zero", None);
                }
                if timeouts.len() <= state {
                    timeouts.resize(state + 1, None);
                }
                if timeouts[state].is_some() {
                    self.err(&tat("state"), format!("state `{}` has two deadlines", t.state), None);
                }
                timeouts[state] = Some(Timeout {
                    after: after.unwrap_or(SimDuration::SECOND),
                    to,
                    emit: t.emit.iter().map(|k| names.kind(k)).collect(),
                    effect: t.effect.as_deref().map(|e| names.effect(e)),
                });
            }
            let mut term = vec![false; names.state_count()];
            for t in terminal {
                term[usize::from(t)] = true;
            }
            Machine { terminal: term, timeouts, durable: sv.state != schema::State::Volatile }
        })
    }

    /// The fields a handler at `here` sets on what it publishes, and the
    /// field its `write` puts in the row.
    pub(super) fn payload_of(
        &mut self,
        here: &[P],
        set: &[schema::Set],
        write: &Option<String>,
        write_value: &Option<String>,
        names: &mut Names,
    ) -> (Vec<(u8, SetTo)>, Option<u8>) {
        let mut out = Vec::new();
        for (k, st) in set.iter().enumerate() {
            let at = |f: &'static str| [here, &[P::F("set"), P::I(k), P::F(f)]].concat();
            let slot = self.field(&at("field"), &st.field, names);
            let to = match &st.to {
                schema::SetTo::Const(v) => SetTo::Const(*v),
                schema::SetTo::Copy(from) => SetTo::Copy(self.field(&at("to"), from, names)),
                schema::SetTo::Add(by) => SetTo::Add(*by),
            };
            if set[..k].iter().any(|o| o.field == st.field) {
                self.err(&at("field"), format!("field `{}` is set twice", st.field), None);
            }
            out.push((slot, to));
        }
        let value = write_value.as_ref().map(|f| {
            let at = [here, &[P::F("write_value")]].concat();
            if write.is_none() {
                let help = Some("add `write: \"table\"`, or remove `write_value`".into());
                self.err(&at, "`write_value` names the value a `write` puts in its row, and there is no `write`", help);
            }
            self.field(&at, f, names)
        });
        (out, value)
    }

    /// The slot of message field `name` (written at `at`): at most
    /// [`FIELDS`] distinct fields in a scenario.
    pub(super) fn field(&mut self, at: &[P], name: &str, names: &mut Names) -> u8 {
        if !valid_name(name) {
            self.err(at, format!("field name {name:?} is not usable"), Some("use letters, digits, '_' and '-'".into()));
        }
        let slot = names.field(name);
        if usize::from(slot) >= FIELDS {
            let named: Vec<String> = (0..FIELDS as u8).map(|f| format!("`{}`", names.field_name(f))).collect();
            let help =
                Some(format!("messages carry at most {FIELDS} fields; this scenario names {} first", named.join(", ")));
            self.err(at, format!("field `{name}` is one field too many"), help);
        }
        slot
    }

    /// The entry handler `handler` (an `Accept`, at `here`) of service `sv`,
    /// for the workload whose requests are `request`.
    pub(super) fn accept_handler(
        &mut self,
        here: &[P],
        s: &Scenario,
        sv: &schema::Service,
        handler: &schema::Handler,
        request: Kind,
        names: &mut Names,
    ) -> KHandler {
        let schema::Handler::Accept { work, emit, terminal, write, call, to, set, write_value, .. } = handler else {
            unreachable!("an Accept handler")
        };
        let hat = |f: &'static str| [here, &[P::F(f)]].concat();
        let work = self.dist(&hat("work"), work);
        let (set, write_value) = self.payload_of(here, set, write, write_value, names);
        KHandler {
            accept: true,
            emit: emit.iter().map(|k| names.kind(k)).collect(),
            terminal: *terminal,
            write: write.as_deref().map(|t| names.table(t)),
            write_value,
            set,
            call: call.as_ref().and_then(|c| self.call(&hat("call"), c, s, names)),
            to: to.as_deref().map(|t| self.state(&hat("to"), sv, t, names)),
            ..KHandler::new(request, work.unwrap_or(Dist::Const(SimDuration::ZERO)))
        }
    }

    /// The handler `handler` (a `Handle`, at `here`) of service `sv`, after
    /// its handlers so far, `handlers`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_handler(
        &mut self,
        here: &[P],
        s: &Scenario,
        sv: &schema::Service,
        handler: &schema::Handler,
        names: &mut Names,
        emitted: &[&str],
        requests: &[&str],
        handlers: &[KHandler],
    ) -> KHandler {
        let schema::Handler::Handle {
            event,
            work,
            emit,
            effect,
            terminal,
            fail_keys,
            write,
            reserve,
            rejected,
            call,
            decline,
            flaky,
            from,
            to,
            set,
            write_value,
        } = handler
        else {
            unreachable!("a Handle handler")
        };
        let hat = |f: &'static str| [here, &[P::F(f)]].concat();
        let kind = self.handled_kind(&hat("event"), sv, event, from, names, (emitted, requests), handlers);
        let work = self.dist(&hat("work"), work);
        let (set, write_value) = self.payload_of(here, set, write, write_value, names);
        KHandler {
            on: kind,
            work: work.unwrap_or(Dist::Const(SimDuration::ZERO)),
            accept: false,
            emit: emit.iter().map(|k| names.kind(k)).collect(),
            effect: effect.as_deref().map(|e| names.effect(e)),
            terminal: *terminal,
            fail_keys: fail_keys.clone(),
            write: write.as_deref().map(|t| names.table(t)),
            write_value,
            set,
            reserve: reserve.as_ref().map(reserve_of),
            rejected: rejected.iter().map(|k| names.kind(k)).collect(),
            call: call.as_ref().and_then(|c| self.call(&hat("call"), c, s, names)),
            decline: decline.as_ref().map(|d| self.decline(&hat("decline"), d, names)),
            flaky: self.flaky(&hat("flaky"), *flaky),
            from: from
                .iter()
                .enumerate()
                .map(|(k, st)| {
                    let at = [&hat("from")[..], &[P::I(k)]].concat();
                    self.state(&at, sv, st, names)
                })
                .collect(),
            to: to.as_deref().map(|t| self.state(&hat("to"), sv, t, names)),
        }
    }

    /// The kind a `Handle(event, from)` of service `sv` handles (at `at`):
    /// one the service consumes (or a call's request, of `known`), and not
    /// handled twice in one state by `handlers`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn handled_kind(
        &mut self,
        at: &[P],
        sv: &schema::Service,
        event: &str,
        from: &[String],
        names: &mut Names,
        (emitted, requests): (&[&str], &[&str]),
        handlers: &[KHandler],
    ) -> Kind {
        // A misspelt consume topic is reported once, at the topic.
        let topics_valid = sv.consume.topics.iter().all(|t| emitted.contains(&t.as_str()));
        if topics_valid && !sv.consume.topics.iter().any(|t| t == event) && !requests.contains(&event) {
            let help = match suggest(event, sv.consume.topics.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("add `{event}` to this service's consume topics"),
            };
            self.err(at, format!("service `{}` handles `{event}` but does not consume it", sv.name), Some(help));
        }
        let kind = names.kind(event);
        // With a machine, one handler per state is fine.
        let states: Vec<u16> = from.iter().map(|st| names.state(st)).collect();
        let overlaps = |x: &KHandler| {
            sv.machine.is_none()
                || x.from.is_empty()
                || states.is_empty()
                || x.from.iter().any(|st| states.contains(st))
        };
        if handlers.iter().any(|x: &KHandler| x.on == kind && overlaps(x)) {
            self.err(at, format!("service `{}` has two handlers for `{event}`", sv.name), None);
        }
        kind
    }

    /// A handler's business refusal (at `at`).
    pub(super) fn decline(&mut self, at: &[P], d: &schema::DeclineSchema, names: &mut Names) -> Decline {
        let p = d.probability;
        if !(0.0..=1.0).contains(&p) {
            self.err(&[at, &[P::F("probability")]].concat(), format!("probability {p} is not in [0, 1]"), None);
        }
        Decline { probability: p, emit: d.emit.iter().map(|k| names.kind(k)).collect() }
    }

    /// A handler's probability of failing for a passing reason (at `at`).
    pub(super) fn flaky(&mut self, at: &[P], flaky: f64) -> f64 {
        if !(0.0..1.0).contains(&flaky) {
            let help = Some("below 1, or the handler never succeeds".to_string());
            self.err(at, format!("probability {flaky} is not in [0, 1)"), help);
        }
        flaky
    }

    /// When service `i` is deployed (time zero unless `starts_at` says).
    /// Service `i`'s commit policy.
    pub(super) fn commit_policy(&mut self, i: usize, sv: &schema::Service) -> CommitPolicy {
        match &sv.consume.commit {
            schema::Commit::AfterProcess => CommitPolicy::AfterProcess,
            schema::Commit::BeforeProcess => CommitPolicy::BeforeProcess,
            schema::Commit::Transactional => CommitPolicy::Transactional,
            schema::Commit::Auto { every } => {
                let at = [P::F("services"), P::I(i), P::F("consume"), P::F("commit"), P::F("every")];
                let every = self.duration(&at, every).unwrap_or(SimDuration::SECOND);
                if every == SimDuration::ZERO {
                    self.err(&at, "the auto-commit interval must be above zero", None);
                }
                CommitPolicy::Auto { every }
            }
        }
    }

    /// Service `i`'s nodes (its most instances) and its autoscaler, if any.
    pub(super) fn instances(&mut self, i: usize, sv: &schema::Service) -> (u32, Option<crate::system::Autoscale>) {
        let at = |f: &'static str| [P::F("services"), P::I(i), P::F(f)];
        let instances = self.bounded(&at("instances"), "instances", sv.instances, 1, bounds::INSTANCES_MAX);
        let Some(a) = &sv.autoscale else { return (instances, None) };
        let here = |f: &'static str| [P::F("services"), P::I(i), P::F("autoscale"), P::F(f)];
        let min = self.bounded(&here("min"), "min", a.min, 1, bounds::INSTANCES_MAX);
        let max = self.bounded(&here("max"), "max", a.max, min.max(1), bounds::INSTANCES_MAX);
        if !(min..=max).contains(&instances) {
            self.err(
                &at("instances"),
                format!("an autoscaled service starts with {instances} instances, outside its {min}..={max}"),
                Some("`instances` is the count it starts with, between `min` and `max`".into()),
            );
        }
        if !(a.target > 0.0 && a.target <= 1.0) {
            self.err(&here("target"), format!("target utilisation {} is not in (0, 1]", a.target), None);
        }
        let tolerance = a.tolerance.unwrap_or(0.1);
        if !(0.0..1.0).contains(&tolerance) {
            self.err(&here("tolerance"), format!("tolerance {tolerance} is not in [0, 1)"), None);
        }
        let mut duration = |f: &'static str, v: &Option<String>, default: SimDuration| {
            v.as_ref().and_then(|t| self.duration(&here(f), t)).unwrap_or(default)
        };
        let every = duration("every", &a.every, SimDuration::from_secs(15));
        let startup = duration("startup", &a.startup, SimDuration::from_secs(10));
        let stabilization = duration("stabilization", &a.stabilization, SimDuration::from_secs(300));
        if every < SimDuration::SECOND {
            let help = Some("Kubernetes' autoscaler decides every 15s by default; a second is the least here".into());
            self.err(&here("every"), format!("the autoscaler's period {every} is under a second"), help);
        }
        let initial = instances.clamp(min, max);
        let scale =
            crate::system::Autoscale { min, initial, target: a.target, every, startup, stabilization, tolerance };
        (max, Some(scale))
    }

    /// Service `i`'s dedup store, re-hydration and versions, into `spec`;
    /// what it does with a version it does not read.
    fn recovery_and_versions(
        &mut self,
        spec: &mut ServiceSpec,
        (i, handlers): (usize, &[KHandler]),
        s: &Scenario,
        sv: &schema::Service,
        names: &mut Names,
    ) -> Option<crate::service::UnknownVersion> {
        spec.dedup = self.dedup(i, sv);
        spec.rehydrate = self.rehydrate(i, s, sv, names);
        spec.event_sourced = self.event_sourced(i, s, sv, handlers, names);
        (spec.version, spec.reads) = self.versions(i, sv);
        sv.unknown_version.map(unknown_version)
    }

    /// Service `i`'s event sourcing, checked: one of its handlers writes the
    /// table and emits the topic, which travels on a Log bus, and it keeps
    /// no other copy of its state.
    fn event_sourced(
        &mut self,
        i: usize,
        s: &Scenario,
        sv: &schema::Service,
        handlers: &[KHandler],
        names: &mut Names,
    ) -> Option<crate::system::EventSourced> {
        let e = sv.event_sourced.as_ref()?;
        let at = |f: &'static str| [P::F("services"), P::I(i), P::F("event_sourced"), P::F(f)];
        let (kind, table) = (names.kind(&e.topic), names.table(&e.table));
        let writer = handlers.iter().find(|h| h.write == Some(table) && h.emit.contains(&kind));
        if writer.is_none() {
            let help = format!("give one of `{}`'s handlers write: {:?} and emit: [{:?}]", sv.name, e.table, e.topic);
            self.err(
                &at("topic"),
                format!("no handler of `{}` writes `{}` and emits `{}`", sv.name, e.table, e.topic),
                Some(help),
            );
        }
        if s.log_bus().is_none() {
            self.err(&at("topic"), "events are replayed from a Log bus: the scenario has none", None);
        }
        if sv.state != schema::State::Volatile || sv.rehydrate.is_some() {
            let help = Some("its state is the fold of its events: leave `state` Volatile and drop `rehydrate`".into());
            self.err(&at("table"), "an event-sourced service keeps its state only in memory", help);
        }
        if e.snapshot_every == Some(0) {
            self.err(&at("snapshot_every"), "a snapshot every 0 writes", Some("leave it out for none".into()));
        }
        let per_event = e.per_event.as_ref().map_or(Some(SimDuration(20_000)), |t| self.duration(&at("per_event"), t));
        Some(crate::system::EventSourced {
            kind,
            table,
            value_field: writer.and_then(|h| h.write_value),
            snapshot_every: e.snapshot_every.unwrap_or(0),
            per_event: per_event?,
        })
    }

    /// Service `i`'s schema version (what it publishes) and the highest it
    /// reads (`u16::MAX`: every one).
    fn versions(&mut self, i: usize, sv: &schema::Service) -> (Option<u16>, u16) {
        let at = |f: &'static str| [P::F("services"), P::I(i), P::F(f)];
        for (field, v) in [("version", sv.version), ("reads", sv.reads)] {
            if v == Some(0) {
                self.err(&at(field), "schema versions start at 1", None);
            }
        }
        if let (Some(v), Some(r)) = (sv.version, sv.reads)
            && r < v
        {
            let help = Some("code reads the version it writes: raise `reads` or leave it out".into());
            self.err(&at("reads"), format!("it publishes version {v} but reads only up to {r}"), help);
        }
        if sv.unknown_version.is_some() && sv.version.is_none() && sv.reads.is_none() {
            let help = Some("give the service the `version` its code runs (or `reads`)".into());
            self.err(&at("unknown_version"), "an unversioned service reads every version", help);
        }
        (sv.version, sv.reads.or(sv.version).unwrap_or(u16::MAX))
    }

    /// Service `i`'s idempotent-consumer store, if it has one.
    fn dedup(&mut self, i: usize, sv: &schema::Service) -> Option<Dedup> {
        let d = sv.dedup.as_ref()?;
        let (durable, window) = match d {
            schema::Dedup::Volatile { window } => (false, *window),
            schema::Dedup::Durable { window } => (true, *window),
        };
        let at = [P::F("services"), P::I(i), P::F("dedup"), P::F("window")];
        let window = self.bounded(&at, "window", window, 1, bounds::DEDUP_WINDOW_MAX);
        Some(Dedup { durable, window })
    }

    /// Service `i`'s re-hydration, checked: the owner exists, is another
    /// service, and writes the table.
    fn rehydrate(
        &mut self,
        i: usize,
        s: &Scenario,
        sv: &schema::Service,
        names: &mut Names,
    ) -> Option<crate::system::Rehydrate> {
        let r = sv.rehydrate.as_ref()?;
        let at = |f: &'static str| [P::F("services"), P::I(i), P::F("rehydrate"), P::F(f)];
        let from = self.service_named(&at("from"), s, &r.from);
        if from == Some(i) {
            self.err(
                &at("from"),
                "a service cannot re-hydrate from itself",
                Some("name the service that owns the data".into()),
            );
        }
        if let Some(f) = from {
            let writes: Vec<&str> = s.services[f].on.iter().filter_map(schema::Handler::writes).collect();
            if !writes.contains(&r.table.as_str()) {
                let help = suggest(&r.table, writes.iter().copied()).map(|x| format!("did you mean `{x}`?"));
                let help =
                    help.or_else(|| Some(format!("`{}` writes no table: give one of its handlers `write:`", r.from)));
                self.err(&at("table"), format!("service `{}` writes no table `{}`", r.from, r.table), help);
            }
        }
        let latency = match &r.latency {
            Some(d) => self.dist(&at("latency"), d),
            None => Some(Dist::Const(SimDuration::MILLISECOND)),
        };
        let per_row = r.per_row.as_ref().map_or(Some(SimDuration(10_000)), |t| self.duration(&at("per_row"), t));
        let timeout = r.timeout.as_ref().map_or(Some(SimDuration::SECOND), |t| self.duration(&at("timeout"), t));
        if timeout == Some(SimDuration::ZERO) {
            self.err(&at("timeout"), "the timeout must be above zero", None);
        }
        Some(crate::system::Rehydrate {
            from: from? as u32,
            table: names.table(&r.table),
            latency: latency?,
            per_row: per_row?,
            timeout: timeout?,
        })
    }

    pub(super) fn starts_at(&mut self, i: usize, sv: &schema::Service) -> SimTime {
        let at = [P::F("services"), P::I(i), P::F("starts_at")];
        let d = sv.starts_at.as_ref().and_then(|t| self.duration(&at, t));
        SimTime::ZERO + d.unwrap_or(SimDuration::ZERO)
    }

    /// A handler's synchronous call, checked: the callee exists and handles the request.
    pub(super) fn call(&mut self, path: &[P], c: &schema::CallSchema, s: &Scenario, names: &mut Names) -> Option<Call> {
        let at = |f: &'static str| [path, &[P::F(f)]].concat();
        let service = s.services.iter().position(|x| x.name == c.service);
        match service {
            None => {
                let help = suggest(&c.service, s.services.iter().map(|x| x.name.as_str()))
                    .map(|x| format!("did you mean `{x}`?"));
                self.err(&at("service"), format!("no service is called `{}`", c.service), help);
            }
            Some(i) => {
                let handles = s.services[i]
                    .on
                    .iter()
                    .any(|h| matches!(h, schema::Handler::Handle { event, .. } if *event == c.request));
                if !handles {
                    self.err(
                        &at("request"),
                        format!("service `{}` has no handler for `{}`", c.service, c.request),
                        Some(format!("give `{}` a handler Handle(event: \"{}\", ...)", c.service, c.request)),
                    );
                }
            }
        }
        let timeout = self.duration(&at("timeout"), &c.timeout);
        if timeout == Some(SimDuration::ZERO) {
            self.err(&at("timeout"), "the timeout must be above zero", None);
        }
        let latency = match &c.latency {
            Some(d) => self.dist(&at("latency"), d),
            None => Some(Dist::Const(SimDuration::MILLISECOND)),
        };
        let retries = self.bounded(&at("retries"), "retries", c.retries, 0, 1_000);
        let backoff = match &c.backoff {
            None => Some(Backoff::NONE),
            Some(b) => {
                let bat = |f: &'static str| [path, &[P::F("backoff"), P::F(f)]].concat();
                let base = self.duration(&bat("base"), &b.base);
                let max = self.duration(&bat("max"), &b.max);
                if !(b.factor.is_finite() && (1.0..=100.0).contains(&b.factor)) {
                    self.err(
                        &bat("factor"),
                        format!("factor {} is out of range", b.factor),
                        Some("expected 1 to 100".into()),
                    );
                }
                if !(0.0..=1.0).contains(&b.jitter) {
                    self.err(&bat("jitter"), format!("jitter {} is not in [0, 1]", b.jitter), None);
                }
                Some(Backoff { base: base?, factor: b.factor, max: max?, jitter: b.jitter })
            }
        };
        let breaker = match &c.breaker {
            None => Some(None),
            Some(b) => {
                let bat = |f: &'static str| [path, &[P::F("breaker"), P::F(f)]].concat();
                let failures = self.bounded(&bat("failures"), "failures", b.failures, 1, 1_000_000);
                let open_for = self.duration(&bat("open_for"), &b.open_for);
                if open_for == Some(SimDuration::ZERO) {
                    self.err(&bat("open_for"), "open_for must be above zero", None);
                }
                open_for.map(|open_for| Some(Breaker { failures, open_for }))
            }
        };
        let rate_limit = c.rate_limit.as_ref().map(|r| {
            let rat = |f: &'static str| [path, &[P::F("rate_limit"), P::F(f)]].concat();
            if !(r.per_second.is_finite() && r.per_second > 0.0 && r.per_second <= bounds::RATE_MAX_PER_S) {
                self.err(&rat("per_second"), format!("rate {} is out of range", r.per_second), None);
            }
            let burst = self.bounded(&rat("burst"), "burst", r.burst, 1, 1_000_000);
            RateLimit { per_second: r.per_second, burst }
        });
        let bulkhead = c.bulkhead.map(|b| self.bounded(&at("bulkhead"), "bulkhead", b, 1, bounds::WORKERS_MAX));
        Some(Call {
            service: service?,
            request: names.kind(&c.request),
            latency: latency?,
            timeout: timeout?,
            retries,
            backoff: backoff?,
            breaker: breaker?,
            rate_limit,
            bulkhead,
            on_failure: c.on_failure.iter().map(|k| names.kind(k)).collect(),
        })
    }

    /// A business rule's event: `state NAME` of some machine, a kind some
    /// handler publishes, or an effect some handler applies.
    pub(super) fn event(
        &mut self,
        path: &[P],
        name: &str,
        s: &Scenario,
        emitted: &[&str],
        effects: &[&str],
        names: &mut Names,
    ) -> Option<Event> {
        let states: Vec<&str> = s
            .services
            .iter()
            .flat_map(|sv| {
                let handlers = sv.on.iter().flat_map(|h| match h {
                    schema::Handler::Accept { to, .. } => to.iter().map(String::as_str).collect::<Vec<_>>(),
                    schema::Handler::Handle { from, to, .. } => {
                        from.iter().chain(to.iter()).map(String::as_str).collect::<Vec<_>>()
                    }
                });
                let machine = sv.machine.iter().flat_map(|m| {
                    m.terminal.iter().chain(m.timeouts.iter().flat_map(|t| [&t.state, &t.to])).map(String::as_str)
                });
                handlers.chain(machine).collect::<Vec<_>>()
            })
            .collect();
        if name == "accepted" {
            return Some(Event::Accepted);
        }
        if let Some(state) = name.strip_prefix("state ") {
            if states.contains(&state) {
                return Some(Event::State(names.state(state)));
            }
            let help = suggest(state, states.iter().copied()).map(|x| format!("did you mean `state {x}`?"));
            self.err(path, format!("no state machine has a state `{state}`"), help);
            return None;
        }
        if emitted.contains(&name) {
            return Some(Event::Kind(names.kind(name)));
        }
        if effects.contains(&name) {
            return Some(Event::Effect(names.effect(name)));
        }
        let known = emitted.iter().chain(effects).copied();
        let help = suggest(name, known)
            .map(|x| format!("did you mean `{x}`?"))
            .unwrap_or_else(|| "name a kind some handler emits, an effect, `state NAME` or `accepted`".into());
        self.err(path, format!("`{name}` is neither a published kind nor an effect"), Some(help));
        None
    }

    /// The id of state `name`, which a handler of `sv` names: the service needs a machine.
    pub(super) fn state(&mut self, path: &[P], sv: &schema::Service, name: &str, names: &mut Names) -> u16 {
        let message = format!("service `{}` moves a state machine but declares none", sv.name);
        // Said once per service, at its first state.
        if sv.machine.is_none() && !self.problems.iter().any(|d| d.message == message) {
            self.err(path, message, Some("add machine: (terminal: [...], timeouts: [...]) to the service".into()));
        }
        names.state(name)
    }
}

fn unknown_version(u: schema::UnknownVersion) -> crate::service::UnknownVersion {
    match u {
        schema::UnknownVersion::Fail => crate::service::UnknownVersion::Fail,
        schema::UnknownVersion::Skip => crate::service::UnknownVersion::Skip,
        schema::UnknownVersion::Park => crate::service::UnknownVersion::Park,
    }
}
