//! Compiling the invariants (each per-entity rule scoped to its entity
//! kind) and the static checks of what cannot work by construction.

use super::*;

impl Compiler<'_> {
    /// The invariants, by the names they judge.
    #[allow(clippy::too_many_arguments)]
    /// The index of the service called `name` (written at `at`).
    pub(super) fn service_named(&mut self, at: &[P], s: &Scenario, name: &str) -> Option<usize> {
        let found = s.services.iter().position(|x| x.name == name);
        if found.is_none() {
            let help =
                suggest(name, s.services.iter().map(|x| x.name.as_str())).map(|x| format!("did you mean `{x}`?"));
            self.err(at, format!("no service is called `{name}`"), help);
        }
        found
    }

    /// `e` is an entity kind some workload creates (of `entities`).
    pub(super) fn entity_kind(&mut self, at: &[P], e: &str, entities: &[&str]) {
        match entities {
            _ if entities.contains(&e) => {}
            [only] => self.err(
                at,
                format!("the workload creates `{only}`, not `{e}`"),
                Some(format!("did you mean `{only}`?")),
            ),
            _ => {
                let help = suggest(e, entities.iter().copied()).map(|x| format!("did you mean `{x}`?"));
                self.err(at, format!("no workload creates `{e}`"), help);
            }
        }
    }

    /// The entity kind a per-entity rule written at `here` judges: the one
    /// it names, which must exist; with several workloads it must name one.
    pub(super) fn scope(&mut self, here: &[P], entity: &Option<String>, entities: &[&str]) -> Option<String> {
        match entity {
            Some(e) => {
                self.entity_kind(&[here, &[P::F("entity")]].concat(), e, entities);
                Some(e.clone())
            }
            None if entities.len() > 1 => {
                let kinds: Vec<String> = entities.iter().map(|e| format!("`{e}`")).collect();
                let help = Some(format!("add `entity: \"...\"`, one of {}", kinds.join(", ")));
                self.err(here, "with several workloads, say which entity kind this rule judges", help);
                None
            }
            None => None,
        }
    }

    pub(super) fn invariants(
        &mut self,
        s: &Scenario,
        names: &mut Names,
        effects: &[&str],
        emitted: &[&str],
        entities: &[&str],
    ) -> Vec<InvariantSpec> {
        // Invariants.
        let mut invariants = Vec::new();
        for (i, inv) in s.invariants.iter().enumerate() {
            let iat = |f: &'static str| [P::F("invariants"), P::I(i), P::F(f)];
            let scoped =
                |this: &mut Self, entity: &Option<String>| this.scope(&[P::F("invariants"), P::I(i)], entity, entities);
            match inv {
                schema::Invariant::SagaAtomicity { steps, deadline_after_heal, entity } => {
                    let entity = scoped(self, entity);
                    if steps.is_empty() {
                        self.err(&iat("steps"), "a saga needs at least one step", None);
                    }
                    let mut pairs = Vec::new();
                    for (k, st) in steps.iter().enumerate() {
                        for (field, e) in [("effect", &st.effect), ("compensation", &st.compensation)] {
                            if !effects.contains(&e.as_str()) {
                                let help = suggest(e, effects.iter().copied()).map(|x| format!("did you mean `{x}`?"));
                                let at = [P::F("invariants"), P::I(i), P::F("steps"), P::I(k), P::F(field)];
                                self.err(&at, format!("no handler applies effect `{e}`"), help);
                            }
                        }
                        pairs.push((names.effect(&st.effect), names.effect(&st.compensation)));
                    }
                    if pairs.len() > 8 {
                        self.err(&iat("steps"), format!("{} steps", pairs.len()), Some("at most 8".into()));
                    }
                    if let Some(d) = self.duration(&iat("deadline_after_heal"), deadline_after_heal) {
                        invariants.push(InvariantSpec::SagaAtomicity { steps: pairs, deadline_after_heal: d, entity });
                    }
                }
                schema::Invariant::LeadsTo { from, to, within, entity } => {
                    let entity = scoped(self, entity);
                    let from = self.event(&iat("from"), from, s, emitted, effects, names);
                    let to: Vec<Option<Event>> = to
                        .iter()
                        .enumerate()
                        .map(|(k, e)| {
                            let at = [P::F("invariants"), P::I(i), P::F("to"), P::I(k)];
                            self.event(&at, e, s, emitted, effects, names)
                        })
                        .collect();
                    let within = self.duration(&iat("within"), within);
                    if let (Some(from), Some(to), Some(within)) = (from, to.into_iter().collect(), within) {
                        invariants.push(InvariantSpec::LeadsTo { from, to, within, entity });
                    }
                }
                schema::Invariant::NeverWithout { event, prior, entity } => {
                    let entity = scoped(self, entity);
                    let event = self.event(&iat("event"), event, s, emitted, effects, names);
                    let prior = self.event(&iat("prior"), prior, s, emitted, effects, names);
                    if let (Some(event), Some(prior)) = (event, prior) {
                        invariants.push(InvariantSpec::NeverWithout { event, prior, entity });
                    }
                }
                schema::Invariant::NoLostEntities { entity: e, deadline_after_heal: d }
                | schema::Invariant::TerminalWithin { entity: e, within: d } => {
                    self.entity_kind(&iat("entity"), e, entities);
                    let within = matches!(inv, schema::Invariant::TerminalWithin { .. });
                    let field = if within { "within" } else { "deadline_after_heal" };
                    if let Some(d) = self.duration(&iat(field), d) {
                        invariants.push(if within {
                            InvariantSpec::TerminalWithin { entity: e.clone(), within: d }
                        } else {
                            InvariantSpec::NoLostEntities { entity: e.clone(), deadline_after_heal: d }
                        });
                    }
                }
                schema::Invariant::NoDuplicateEffects { effect } => {
                    if !effects.contains(&effect.as_str()) {
                        let help = suggest(effect, effects.iter().copied()).map(|s| format!("did you mean `{s}`?"));
                        self.err(
                            &iat("effect"),
                            format!("no handler applies effect `{effect}`"),
                            help.or_else(|| Some("effects come from Handle(..., effect: \"name\")".into())),
                        );
                    }
                    invariants.push(InvariantSpec::NoDuplicateEffects { effect: names.effect(effect) });
                }
                schema::Invariant::BoundedAmplification { service, factor, entity } => {
                    let entity = scoped(self, entity);
                    if !(factor.is_finite() && *factor > 0.0) {
                        self.err(&iat("factor"), format!("factor {factor} must be above zero"), None);
                    }
                    if let Some(i) = self.service_named(&iat("service"), s, service) {
                        invariants.push(InvariantSpec::BoundedAmplification { service: i, factor: *factor, entity });
                    }
                }
                schema::Invariant::NoOversell { service } => {
                    if let Some(i) = self.service_named(&iat("service"), s, service) {
                        invariants.push(InvariantSpec::NoOversell { service: i });
                    }
                }
                // What a service holds, reads, writes or lags: `of_state`.
                _ => invariants.extend(self.of_state(&iat, s, inv, names)),
            }
        }
        invariants
    }

    /// An invariant on a service's state: what it holds, what it reads.
    fn of_state(
        &mut self,
        iat: &dyn Fn(&'static str) -> [P; 3],
        s: &Scenario,
        inv: &schema::Invariant,
        names: &mut Names,
    ) -> Option<InvariantSpec> {
        match inv {
            schema::Invariant::NoStateLoss { service, table } => {
                let si = self.writer(iat, s, (service, table))?;
                Some(InvariantSpec::NoStateLoss { service: si, table: names.table(table), name: service.clone() })
            }
            schema::Invariant::VersionCompatible { service } => self.version_compatible(&iat("service"), s, service),
            schema::Invariant::ReplicaConvergence { source, replica, table } => {
                let (source, replica) = self.replicated(iat, s, (source, replica, table))?;
                Some(InvariantSpec::ReplicaConvergence { source, replica, table: names.table(table) })
            }
            schema::Invariant::PerKeyOrder { service, table } => {
                let si = self.writer(iat, s, (service, table))?;
                Some(InvariantSpec::PerKeyOrder { service: si, table: names.table(table), name: service.clone() })
            }
            schema::Invariant::BoundedLag { service, max, after_heal, every } => {
                self.bounded_lag(iat, s, service, *max, (after_heal, every.as_ref()))
            }
            schema::Invariant::BoundedStaleness { source, replica, table, max, after_heal } => {
                let max = self.duration(&iat("max"), max);
                let after_heal = self.duration(&iat("after_heal"), after_heal);
                let (source, replica) = self.replicated(iat, s, (source, replica, table))?;
                let table = names.table(table);
                Some(InvariantSpec::BoundedStaleness { source, replica, table, max: max?, after_heal: after_heal? })
            }
            schema::Invariant::NoLostEntities { .. }
            | schema::Invariant::NoDuplicateEffects { .. }
            | schema::Invariant::BoundedAmplification { .. }
            | schema::Invariant::NoOversell { .. }
            | schema::Invariant::TerminalWithin { .. }
            | schema::Invariant::SagaAtomicity { .. }
            | schema::Invariant::LeadsTo { .. }
            | schema::Invariant::NeverWithout { .. } => {
                debug_assert!(false, "compiled by `invariants`");
                None
            }
        }
    }

    /// A bounded-lag invariant: the service consumes from a Log bus.
    fn bounded_lag(
        &mut self,
        iat: &dyn Fn(&'static str) -> [P; 3],
        s: &Scenario,
        service: &str,
        max: u64,
        (after_heal, every): (&String, Option<&String>),
    ) -> Option<InvariantSpec> {
        let si = self.service_named(&iat("service"), s, service);
        let consumes = si.is_some_and(|i| {
            let sv = &s.services[i];
            !sv.consume.topics.is_empty() && (reads_from(s, sv, true) || reads_from(s, sv, false))
        });
        if si.is_some() && !consumes {
            let help =
                Some("the lag of a consumer group or a queue: a service that consumes from a Log or a Queue bus");
            self.err(
                &iat("service"),
                format!("`{service}` consumes nothing from a Log or a Queue bus"),
                help.map(Into::into),
            );
        }
        let after_heal = self.duration(&iat("after_heal"), after_heal);
        let every = every.map_or(Some(SimDuration::SECOND), |e| self.duration(&iat("every"), e));
        if every.is_some_and(|e| e < SimDuration::MILLISECOND) {
            self.err(&iat("every"), "the lag is sampled at most every millisecond", None);
        }
        Some(InvariantSpec::BoundedLag {
            service: si?,
            name: service.to_string(),
            max,
            after_heal: after_heal?,
            every: every?,
        })
    }

    /// The service an invariant on `table` of `service` names, checked:
    /// it exists and one of its handlers writes the table.
    fn writer(
        &mut self,
        iat: &dyn Fn(&'static str) -> [P; 3],
        s: &Scenario,
        (service, table): (&str, &str),
    ) -> Option<usize> {
        let si = self.service_named(&iat("service"), s, service)?;
        if !s.services[si].on.iter().any(|h| h.writes() == Some(table)) {
            let writes = s.services[si].on.iter().filter_map(schema::Handler::writes);
            let help = suggest(table, writes).map(|x| format!("did you mean `{x}`?"));
            self.err(&iat("table"), format!("no handler of `{service}` writes table `{table}`"), help);
        }
        Some(si)
    }

    /// A version-compatible invariant: its service is versioned.
    fn version_compatible(&mut self, at: &[P], s: &Scenario, service: &str) -> Option<InvariantSpec> {
        let i = self.service_named(at, s, service)?;
        if s.services[i].version.is_none() && s.services[i].reads.is_none() {
            let help = format!("give `{service}` the `version` its code runs (or `reads`)");
            self.err(at, format!("`{service}` is unversioned: it reads every version"), Some(help));
        }
        Some(InvariantSpec::VersionCompatible { service: i, name: service.to_string() })
    }

    /// The source and the replica an invariant on a replicated table
    /// names, checked: both exist and some handler writes the table.
    fn replicated(
        &mut self,
        iat: &dyn Fn(&'static str) -> [P; 3],
        s: &Scenario,
        (source, replica, table): (&str, &str, &str),
    ) -> Option<(usize, usize)> {
        let src = self.service_named(&iat("source"), s, source);
        let rep = self.service_named(&iat("replica"), s, replica);
        let writers: Vec<&str> =
            s.services.iter().flat_map(|x| x.on.iter()).filter_map(schema::Handler::writes).collect();
        if !writers.contains(&table) {
            let help = suggest(table, writers.iter().copied()).map(|x| format!("did you mean `{x}`?"));
            let help = help.or_else(|| {
                Some("tables come from Accept(..., write: \"name\") or Handle(..., write: \"name\")".into())
            });
            self.err(&iat("table"), format!("no handler writes table `{table}`"), help);
        }
        Some((src?, rep?))
    }

    /// The static checks of what cannot work by construction: invariants
    /// that judge something no handler produces, settings with no effect,
    /// topics that go nowhere.
    pub(super) fn by_construction(&mut self, s: &Scenario) {
        let consumed: Vec<&str> =
            s.services.iter().flat_map(|sv| sv.consume.topics.iter()).map(String::as_str).collect();
        // A kind a compacted topic keeps or a business rule watches is used
        // even when no service consumes it.
        let mut used = read_back(s);
        for inv in &s.invariants {
            match inv {
                schema::Invariant::LeadsTo { from, to, .. } => {
                    used.push(from);
                    used.extend(to.iter().map(String::as_str));
                }
                schema::Invariant::NeverWithout { event, prior, .. } => used.extend([event.as_str(), prior.as_str()]),
                _ => {}
            }
        }
        let mut ends = false;
        for (i, sv) in s.services.iter().enumerate() {
            let terminal_states: Vec<&str> = sv.machine.iter().flat_map(|m| &m.terminal).map(String::as_str).collect();
            let ends_in = |to: &Option<String>| to.as_deref().is_some_and(|t| terminal_states.contains(&t));
            for (h, handler) in sv.on.iter().enumerate() {
                let (terminal, to, lists): (bool, &Option<String>, Vec<EmitList<'_>>) = match handler {
                    schema::Handler::Accept { terminal, to, emit, .. } => (*terminal, to, vec![("emit", emit)]),
                    schema::Handler::Handle { terminal, to, emit, rejected, decline, .. } => {
                        let mut l = vec![("emit", emit), ("rejected", rejected)];
                        if let Some(d) = decline {
                            l.push(("decline", &d.emit));
                        }
                        (*terminal, to, l)
                    }
                };
                ends |= terminal || ends_in(to);
                for (field, kinds) in lists {
                    for (k, kind) in kinds.iter().enumerate() {
                        if consumed.contains(&kind.as_str()) || used.contains(&kind.as_str()) {
                            continue;
                        }
                        let mut at = vec![P::F("services"), P::I(i), P::F("on"), P::I(h), P::F(field)];
                        if field == "decline" {
                            at.push(P::F("emit"));
                        }
                        at.push(P::I(k));
                        self.warn(
                            &at,
                            format!("`{kind}` is published but no service consumes it: its messages go nowhere"),
                            Some(format!("add `{kind}` to a service's consume topics, or stop emitting it")),
                        );
                    }
                }
            }
            if let Some(m) = &sv.machine {
                ends |= m.timeouts.iter().any(|t| terminal_states.contains(&t.to.as_str()));
            }
            if matches!(sv.consume.ack, Some(schema::Ack::Auto)) && sv.consume.prefetch.is_some() {
                self.err(
                    &[P::F("services"), P::I(i), P::F("consume"), P::F("prefetch")],
                    "`prefetch` has no effect with `ack: Auto`: the broker pushes without waiting for acks",
                    Some("remove `prefetch`, or use `ack: Manual`".into()),
                );
            }
        }
        for (i, inv) in s.invariants.iter().enumerate() {
            match inv {
                schema::Invariant::NoLostEntities { entity, .. } | schema::Invariant::TerminalWithin { entity, .. }
                    if !ends =>
                {
                    self.err(
                        &[P::F("invariants"), P::I(i), P::F("entity")],
                        format!("no handler ever ends entity `{entity}`: this invariant could never hold"),
                        Some("mark the last handler `terminal: true`, or move a machine to a terminal state".into()),
                    );
                }
                schema::Invariant::ReplicaConvergence { source, replica, table } => {
                    for (field, name) in [("source", source), ("replica", replica)] {
                        let Some(sv) = s.services.iter().find(|x| &x.name == name) else { continue };
                        let writes = sv.on.iter().any(|h| match h {
                            schema::Handler::Accept { write, .. } | schema::Handler::Handle { write, .. } => {
                                write.as_deref() == Some(table.as_str())
                            }
                        });
                        if !writes {
                            let what = if field == "source" { "nothing to copy" } else { "a copy that never changes" };
                            self.err(
                                &[P::F("invariants"), P::I(i), P::F(field)],
                                format!("`{name}` never writes table `{table}`: {what}"),
                                Some(format!("give one of `{name}`'s handlers `write: \"{table}\"`")),
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// The kinds read back whether or not a service consumes them: those a
/// compacted topic keeps, and an event-sourced service's own events.
fn read_back(s: &Scenario) -> Vec<&str> {
    let mut kinds: Vec<&str> = match s.log_bus() {
        Some(schema::Bus::Log { compacted, .. }) => compacted.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    kinds.extend(s.services.iter().filter_map(|sv| sv.event_sourced.as_ref()).map(|e| e.topic.as_str()));
    kinds
}
