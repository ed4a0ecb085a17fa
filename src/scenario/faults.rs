//! Compiling the fault plan: scripted and random crashes, crash points,
//! pauses, slowdowns, clock skews, partitions and link faults, and the
//! network faults that could not act on what they name.

use super::*;
use crate::system::RewindTarget;

impl Compiler<'_> {
    /// The fault plan, by node names.
    pub(super) fn faults(
        &mut self,
        s: &Scenario,
        services: &[ServiceSpec],
        duration: Option<SimDuration>,
    ) -> Vec<FaultSpec> {
        // A Queue bus's broker can crash; partitions and links call it "bus".
        let brokers = s.broker_names();
        let queue_broker = s.queue_broker_name();
        let is_queue_broker = |node: &str| queue_broker.as_deref() == Some(node);
        let node_names: Vec<String> = all_node_names(services, &brokers);
        let mut faults = Vec::new();
        for (i, f) in s.faults.iter().enumerate() {
            let fat = |f: &'static str| [P::F("faults"), P::I(i), P::F(f)];
            let (node, down_for) = match f {
                schema::Fault::Crash { node, down_for, .. } | schema::Fault::CrashAt { node, down_for, .. } => {
                    (node, down_for)
                }
                schema::Fault::Rewind { .. } | schema::Fault::RollingDeploy { .. } => {
                    faults.extend(self.operation(i, s, services, f, duration));
                    continue;
                }
                schema::Fault::Slow { node, at, lasting, .. }
                | schema::Fault::Pause { node, at, lasting }
                | schema::Fault::ClockSkew { node, at, lasting, .. } => {
                    if !node_names.contains(node) || brokers.contains(node) {
                        let help = suggest(node, node_names.iter().map(String::as_str))
                            .map(|s| format!("did you mean `{s}`?"));
                        self.err(&fat("node"), format!("no service instance is called `{node}`"), help);
                    }
                    let (at_t, lasting) = (self.duration(&fat("at"), at), self.duration(&fat("for"), lasting));
                    if lasting == Some(SimDuration::ZERO) {
                        self.err(&fat("for"), "the fault must last more than zero", None);
                    }
                    self.not_after_end(&fat("at"), at_t, duration, s);
                    let range = match f {
                        schema::Fault::Slow { factor, .. } => Some((*factor, 1.0, 1000.0)),
                        schema::Fault::ClockSkew { factor, .. } => Some((*factor, 0.01, 100.0)),
                        _ => None,
                    };
                    if let Some((factor, lo, hi)) = range
                        && !(factor.is_finite() && (lo..=hi).contains(&factor))
                    {
                        let help = Some(format!("expected {lo} to {hi}"));
                        self.err(&fat("factor"), format!("factor {factor} is out of range"), help);
                    }
                    if let (Some(at_t), Some(lasting)) = (at_t, lasting) {
                        let (node, at) = (node.clone(), SimTime::ZERO + at_t);
                        faults.push(match f {
                            schema::Fault::Slow { factor, .. } => {
                                FaultSpec::Slow { node, at, lasting, factor: *factor }
                            }
                            schema::Fault::ClockSkew { factor, .. } => {
                                FaultSpec::ClockSkew { node, at, lasting, factor: *factor }
                            }
                            _ => FaultSpec::Pause { node, at, lasting },
                        });
                    }
                    continue;
                }
                schema::Fault::Partition { groups, one_way, at, lasting } => {
                    if groups.len() != 2 {
                        let help = Some("a partition separates two groups: [[\"a-1\"], [\"bus\"]]".into());
                        self.err(&fat("groups"), format!("{} groups given", groups.len()), help);
                        continue;
                    }
                    let mut resolved: [Vec<String>; 2] = [Vec::new(), Vec::new()];
                    for (g, group) in groups.iter().enumerate() {
                        for (k, node) in group.iter().enumerate() {
                            let at = [P::F("faults"), P::I(i), P::F("groups"), P::I(g), P::I(k)];
                            if node != "bus" && !node_names.contains(node) {
                                let help = suggest(node, node_names.iter().map(String::as_str))
                                    .map(|s| format!("did you mean `{s}`?"))
                                    .or_else(|| Some("name service instances, or \"bus\"".into()));
                                self.err(&at, format!("no node is called `{node}`"), help);
                            } else if is_queue_broker(node) {
                                let help = Some("use \"bus\"".into());
                                self.err(&at, "a partition names a Queue bus's broker `bus`", help);
                            }
                            resolved[g].push(node.clone());
                        }
                    }
                    let (at_t, lasting) = (self.duration(&fat("at"), at), self.duration(&fat("for"), lasting));
                    self.not_after_end(&fat("at"), at_t, duration, s);
                    if let (Some(at_t), Some(lasting)) = (at_t, lasting) {
                        let at = SimTime::ZERO + at_t;
                        faults.push(FaultSpec::Partition { groups: resolved, one_way: *one_way, at, lasting });
                    }
                    continue;
                }
                schema::Fault::Link { from, to, drop, duplicate, delay, reorder, at, lasting } => {
                    for (field, node) in [("from", from), ("to", to)] {
                        if node != "bus" && !node_names.contains(node) {
                            let help = suggest(node, node_names.iter().map(String::as_str))
                                .map(|s| format!("did you mean `{s}`?"));
                            self.err(&fat(field), format!("no node is called `{node}`"), help);
                        } else if is_queue_broker(node) {
                            let help = Some("use \"bus\"".into());
                            self.err(&fat(field), "a link names a Queue bus's broker `bus`", help);
                        }
                    }
                    for (field, p) in [("drop", drop), ("duplicate", duplicate)] {
                        if !(0.0..=1.0).contains(p) {
                            self.err(&fat(field), format!("probability {p} is not in [0, 1]"), None);
                        }
                    }
                    let delay = delay.as_ref().and_then(|d| self.dist(&fat("delay"), d));
                    let reorder = reorder.as_ref().and_then(|r| {
                        let rat = |f: &'static str| [&fat("reorder")[..], &[P::F(f)]].concat();
                        if !(0.0..=1.0).contains(&r.probability) {
                            let says = format!("probability {} is not in [0, 1]", r.probability);
                            self.err(&rat("probability"), says, None);
                        }
                        self.dist(&rat("by"), &r.by).map(|by| (r.probability, by))
                    });
                    let (at_t, lasting) = (self.duration(&fat("at"), at), self.duration(&fat("for"), lasting));
                    self.not_after_end(&fat("at"), at_t, duration, s);
                    if let (Some(at_t), Some(lasting)) = (at_t, lasting) {
                        faults.push(FaultSpec::Link {
                            from: from.clone(),
                            to: to.clone(),
                            drop: *drop,
                            duplicate: *duplicate,
                            delay,
                            reorder,
                            at: SimTime::ZERO + at_t,
                            lasting,
                        });
                    }
                    continue;
                }
                schema::Fault::RandomCrashes { nodes, mtbf, mttr, from, until }
                | schema::Fault::RandomPauses { nodes, mtbf, mttr, from, until }
                | schema::Fault::RandomPartitions { nodes, mtbf, mttr, from, until }
                | schema::Fault::RandomClockSkews { nodes, mtbf, mttr, from, until, .. }
                | schema::Fault::RandomLossyLinks { nodes, mtbf, mttr, from, until, .. }
                | schema::Fault::RandomSlowdowns { nodes, mtbf, mttr, from, until, .. } => {
                    let what = match f {
                        schema::Fault::RandomPauses { .. } => RandomFault::Pause,
                        schema::Fault::RandomPartitions { .. } => RandomFault::Isolate,
                        schema::Fault::RandomLossyLinks { drop, duplicate, delay, .. } => {
                            for (field, p) in [("drop", drop), ("duplicate", duplicate)] {
                                if !(0.0..=1.0).contains(p) {
                                    self.err(&fat(field), format!("probability {p} is not in [0, 1]"), None);
                                }
                            }
                            let delay = match delay {
                                Some(d) => self.duration(&fat("delay"), d).unwrap_or(SimDuration::ZERO),
                                None => SimDuration::ZERO,
                            };
                            RandomFault::Lossy { drop: *drop, duplicate: *duplicate, delay }
                        }
                        schema::Fault::RandomSlowdowns { factor, .. } => {
                            if !(factor.is_finite() && (1.0..=1000.0).contains(factor)) {
                                let help = Some("expected 1 to 1000".to_string());
                                self.err(&fat("factor"), format!("factor {factor} is out of range"), help);
                            }
                            RandomFault::Slow(*factor)
                        }
                        schema::Fault::RandomClockSkews { factor, .. } => {
                            if !(factor.is_finite() && (0.01..=100.0).contains(factor)) {
                                let help = Some("expected 0.01 to 100".to_string());
                                self.err(&fat("factor"), format!("factor {factor} is out of range"), help);
                            }
                            RandomFault::Skew(*factor)
                        }
                        _ => RandomFault::Crash,
                    };
                    for (k, node) in nodes.iter().enumerate() {
                        if what != RandomFault::Crash && brokers.contains(node) {
                            self.err(
                                &[P::F("faults"), P::I(i), P::F("nodes"), P::I(k)],
                                format!("`{node}` is a broker: only crashes can hit brokers"),
                                None,
                            );
                        }
                        if !node_names.contains(node) {
                            let help = suggest(node, node_names.iter().map(String::as_str))
                                .map(|s| format!("did you mean `{s}`?"));
                            self.err(
                                &[P::F("faults"), P::I(i), P::F("nodes"), P::I(k)],
                                format!("no node is called `{node}`"),
                                help,
                            );
                        }
                    }
                    let (mtbf, mttr) = (self.duration(&fat("mtbf"), mtbf), self.duration(&fat("mttr"), mttr));
                    for (field, d) in [("mtbf", mtbf), ("mttr", mttr)] {
                        if d == Some(SimDuration::ZERO) {
                            self.err(&fat(field), format!("{field} must be above zero"), None);
                        }
                    }
                    let from = from.as_deref().map_or(Some(SimDuration::ZERO), |t| self.duration(&fat("from"), t));
                    let until = until.as_deref().map_or(duration, |t| self.duration(&fat("until"), t));
                    if let (Some(a), Some(b)) = (from, until)
                        && a >= b
                    {
                        self.err(&fat("until"), "the window is empty: `until` is not after `from`", None);
                    } else if let (Some(a), Some(b), Some(up), Some(down)) = (from, until, mtbf, mttr)
                        && (b.0 - a.0) / (up.0.saturating_add(down.0)).max(1) > bounds::SPELLS_MAX / 2
                    {
                        let expected = (b.0 - a.0) / (up.0.saturating_add(down.0)).max(1);
                        let help = Some(format!("at most {} per node: raise mtbf or mttr", bounds::SPELLS_MAX / 2));
                        self.err(&fat("mtbf"), format!("about {expected} faulty spells per node in the window"), help);
                    } else if let (Some(a), Some(d)) = (from, duration)
                        && a >= d
                    {
                        let help = Some(format!("the run ends at {}", s.duration));
                        self.err(&fat("from"), "the window begins when the run has ended", help);
                    }
                    if let (Some(mtbf), Some(mttr), Some(from), Some(until)) = (mtbf, mttr, from, until) {
                        faults.push(FaultSpec::Random {
                            what,
                            nodes: nodes.clone(),
                            mtbf,
                            mttr,
                            from: SimTime::ZERO + from,
                            until: SimTime::ZERO + until,
                        });
                    }
                    continue;
                }
            };
            if !node_names.contains(node) {
                let help = if services.iter().any(|sv| &sv.name == node) {
                    Some(format!("faults name instances: did you mean `{node}-1`?"))
                } else {
                    suggest(node, node_names.iter().map(String::as_str)).map(|s| format!("did you mean `{s}`?"))
                };
                self.err(
                    &fat("node"),
                    format!("no node is called `{node}`"),
                    help.or_else(|| Some(format!("nodes are {}", node_names.join(", ")))),
                );
            }
            let down = self.duration(&fat("down_for"), down_for);
            if down == Some(SimDuration::ZERO) {
                self.err(&fat("down_for"), "down_for must be above zero", None);
            }
            let at = match f {
                schema::Fault::Crash { at, .. } => at,
                schema::Fault::RandomCrashes { .. }
                | schema::Fault::RandomPauses { .. }
                | schema::Fault::RandomPartitions { .. }
                | schema::Fault::RandomClockSkews { .. }
                | schema::Fault::RandomLossyLinks { .. }
                | schema::Fault::RandomSlowdowns { .. }
                | schema::Fault::ClockSkew { .. }
                | schema::Fault::Slow { .. }
                | schema::Fault::Pause { .. }
                | schema::Fault::Partition { .. }
                | schema::Fault::Rewind { .. }
                | schema::Fault::RollingDeploy { .. }
                | schema::Fault::Link { .. } => {
                    continue; // handled above
                }
                schema::Fault::CrashAt { seam, nth, probability, .. } => {
                    let seam = seam_of(seam);
                    let service = services.iter().find(|sv| (0..sv.instances).any(|k| sv.node_name(k) == *node));
                    if service.is_none() && node_names.contains(node) {
                        let help = Some(format!("crash it with Crash(node: \"{node}\", at: ..., down_for: ...)"));
                        self.err(&fat("node"), format!("`{node}` is a broker: seams are inside handlers"), help);
                    }
                    if seam == Seam::InOutboxRelay && service.is_some_and(|sv| sv.outbox.is_none()) {
                        self.err(&fat("seam"), format!("`{node}` has no outbox relay to crash in"), None);
                    }
                    if seam == Seam::AfterDedup && service.is_some_and(|sv| sv.dedup.is_none()) {
                        self.err(&fat("seam"), format!("`{node}` keeps no dedup store"), None);
                    }
                    let probability = match (nth, probability) {
                        (Some(0), _) => {
                            self.err(&fat("nth"), "nth counts from 1", None);
                            0.0
                        }
                        (Some(_), None) => 0.0,
                        (None, Some(p)) if (0.0..=1.0).contains(p) => *p,
                        (None, Some(p)) => {
                            self.err(&fat("probability"), format!("probability {p} is not in [0, 1]"), None);
                            0.0
                        }
                        _ => {
                            self.err(&fat("seam"), "give either `nth` or `probability`", None);
                            0.0
                        }
                    };
                    if let Some(down) = down {
                        faults.push(FaultSpec::CrashAt {
                            node: node.clone(),
                            seam,
                            nth: *nth,
                            probability,
                            down_for: down,
                        });
                    }
                    continue;
                }
            };
            let at_range = self.time_range(&fat("at"), at);
            if let (Some((_, at_max)), Some(d)) = (at_range, duration)
                && at_max > d
            {
                self.err(&fat("at"), format!("the crash at {at} is after the end of the run ({})", s.duration), None);
            }
            if let (Some((at_t, at_max)), Some(down)) = (at_range, down) {
                let jitter = SimDuration(at_max.0 - at_t.0);
                let spec = FaultSpec::Crash { node: node.clone(), at: SimTime::ZERO + at_t, jitter, down_for: down };
                faults.push(spec);
            }
        }
        faults
    }

    /// Every network fault must act on something: a partition must cut a
    /// connection that carries messages, a link fault must change what
    /// crosses its link. What would silently do nothing is refused.
    pub(super) fn network_faults_act(&mut self, s: &Scenario) {
        let service_of = |node: &str| -> Option<&schema::Service> {
            s.services.iter().find(|sv| {
                node.strip_prefix(sv.name.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|i| i.parse::<u32>().is_ok_and(|i| i >= 1 && i <= sv.instances))
            })
        };
        let broker_names = s.broker_names();
        let is_broker = |node: &str| broker_names.iter().any(|b| b == node) && service_of(node).is_none();
        let talks_to_bus = |sv: &schema::Service| {
            !sv.consume.topics.is_empty()
                || sv.on.iter().any(|h| match h {
                    schema::Handler::Accept { emit, call, .. } => {
                        !emit.is_empty() || call.as_ref().is_some_and(|c| !c.on_failure.is_empty())
                    }
                    schema::Handler::Handle { emit, rejected, decline, call, .. } => {
                        !emit.is_empty()
                            || !rejected.is_empty()
                            || decline.as_ref().is_some_and(|d| !d.emit.is_empty())
                            || call.as_ref().is_some_and(|c| !c.on_failure.is_empty())
                    }
                })
                || sv.machine.as_ref().is_some_and(|m| m.timeouts.iter().any(|t| !t.emit.is_empty()))
        };
        // Synchronous calls, and snapshot requests and their replies.
        let calls = |a: &schema::Service, b: &schema::Service| {
            a.rehydrate.as_ref().is_some_and(|r| r.from == b.name)
                || a.on.iter().any(|h| h.call().is_some_and(|c| c.service == b.name))
        };
        let brokers = matches!(s.log_bus(), Some(schema::Bus::Log { brokers: Some(b), .. }) if b.count >= 2);
        // Does anything travel between `a` and `b`, one way or the other?
        let carries = |a: &str, b: &str| -> bool {
            match (a == "bus" || is_broker(a), b == "bus" || is_broker(b)) {
                (true, true) => brokers && a != "bus" && b != "bus",
                (true, false) => service_of(b).is_some_and(talks_to_bus),
                (false, true) => service_of(a).is_some_and(talks_to_bus),
                (false, false) => match (service_of(a), service_of(b)) {
                    (Some(x), Some(y)) => calls(x, y) || calls(y, x),
                    _ => false,
                },
            }
        };
        let no_traffic_help = "only synchronous calls and snapshots travel between service instances, and \
            replication between brokers; cut an instance off from \"bus\" to stop what it publishes and consumes";
        for (i, f) in s.faults.iter().enumerate() {
            let fat = |f: &'static str| [P::F("faults"), P::I(i), P::F(f)];
            match f {
                schema::Fault::Partition { groups, .. } if groups.len() == 2 => {
                    let (a, b) = (&groups[0], &groups[1]);
                    if let Some((k, n)) = b.iter().enumerate().find(|(_, n)| a.contains(n)) {
                        let at = [P::F("faults"), P::I(i), P::F("groups"), P::I(1), P::I(k)];
                        self.err(&at, format!("`{n}` is on both sides of the partition"), None);
                        continue;
                    }
                    let bus_and_broker = (a.iter().any(|n| n == "bus") && b.iter().any(|n| is_broker(n)))
                        || (b.iter().any(|n| n == "bus") && a.iter().any(|n| is_broker(n)));
                    if bus_and_broker {
                        self.err(
                            &fat("groups"),
                            "\"bus\" stands for every broker: it cannot be cut off from one of them",
                            Some("name the brokers on each side instead".into()),
                        );
                        continue;
                    }
                    if !a.iter().any(|x| b.iter().any(|y| carries(x, y))) {
                        self.err(
                            &fat("groups"),
                            "nothing travels between these two groups: the partition would change nothing",
                            Some(no_traffic_help.into()),
                        );
                    }
                }
                schema::Fault::Link { from, to, drop, duplicate, delay, reorder, .. } => {
                    if from == to {
                        self.err(
                            &fat("to"),
                            format!("a link goes from one node to another, not from `{from}` to itself"),
                            None,
                        );
                        continue;
                    }
                    if *drop == 0.0 && *duplicate == 0.0 && delay.is_none() && reorder.is_none() {
                        let help = Some("give it `drop`, `duplicate`, `delay` or `reorder`".into());
                        self.err(&fat("from"), "this link fault changes nothing", help);
                        continue;
                    }
                    if !carries(from, to) {
                        let msg =
                            format!("nothing travels from `{from}` to `{to}`: the link fault would change nothing");
                        self.err(&fat("from"), msg, Some(no_traffic_help.into()));
                        continue;
                    }
                    // What crosses the link: a reliable connection (TCP) never
                    // duplicates, and log records arrive in offset order.
                    let to_bus = to == "bus" || is_broker(to);
                    let from_bus = from == "bus" || is_broker(from);
                    // With several buses, the link carries what each sends.
                    let (reliable, fetches) = link_semantics(s, from_bus, to_bus);
                    if *duplicate > 0.0 && reliable {
                        self.err(
                            &fat("duplicate"),
                            format!("`{from}` -> `{to}` is a reliable connection, which never duplicates"),
                            Some("duplicates arise from resends: crash a consumer, or use an ack timeout".into()),
                        );
                    }
                    if reorder.is_some() && (fetches || (to_bus && from_bus)) {
                        self.err(
                            &fat("reorder"),
                            format!("what crosses `{from}` -> `{to}` arrives in order (log records, replication)"),
                            Some("use `delay` to make it late".into()),
                        );
                    }
                }
                _ => {}
            }
        }
    }

    /// Fault `i`, an operation on a service (a rewind, a rolling deploy).
    fn operation(
        &mut self,
        i: usize,
        s: &Scenario,
        services: &[ServiceSpec],
        f: &schema::Fault,
        duration: Option<SimDuration>,
    ) -> Option<FaultSpec> {
        match f {
            schema::Fault::Rewind { service, to, at, drop_tables } => {
                let mut f = self.rewind(i, s, services, (service, to, at), duration)?;
                if let FaultSpec::Rewind { drop_tables: d, .. } = &mut f {
                    *d = *drop_tables;
                }
                Some(f)
            }
            schema::Fault::RollingDeploy { service, version, at, every, down } => {
                self.rolling_deploy(i, s, services, (service, *version, at, every, down.as_ref()), duration)
            }
            _ => None,
        }
    }

    /// Fault `i`, a rolling deploy of `service` to schema `version`: the
    /// service is versioned, and the version is not the one it runs.
    fn rolling_deploy(
        &mut self,
        i: usize,
        s: &Scenario,
        services: &[ServiceSpec],
        (service, version, at, every, down): (&String, u16, &String, &String, Option<&String>),
        duration: Option<SimDuration>,
    ) -> Option<FaultSpec> {
        let fat = |f: &'static str| [P::F("faults"), P::I(i), P::F(f)];
        let si = self.service_named(&fat("service"), s, service);
        if let Some(sv) = si.map(|k| &s.services[k]) {
            if sv.version.is_none() {
                let help = Some(format!("give `{service}` the `version` its code runs now"));
                self.err(
                    &fat("service"),
                    format!("`{service}` is unversioned: a rolling deploy changes its version"),
                    help,
                );
            } else if sv.version == Some(version) {
                self.err(&fat("version"), format!("`{service}` already runs version {version}"), None);
            }
        }
        if version == 0 {
            self.err(&fat("version"), "schema versions start at 1", None);
        }
        let at_t = self.duration(&fat("at"), at);
        self.not_after_end(&fat("at"), at_t, duration, s);
        let every = self.duration(&fat("every"), every);
        let down = down.map_or(Some(SimDuration::from_secs(5)), |d| self.duration(&fat("down"), d));
        if down == Some(SimDuration::ZERO) {
            self.err(&fat("down"), "an instance is down above zero to restart", None);
        }
        let si = si?;
        Some(FaultSpec::RollingDeploy {
            service: si,
            name: service.clone(),
            version,
            at: SimTime::ZERO + at_t?,
            every: every?,
            down: down?,
            instances: services[si].instances,
        })
    }

    /// Fault `i`, a rewind of `service`'s consumer group: the service must
    /// consume from a Log bus.
    fn rewind(
        &mut self,
        i: usize,
        s: &Scenario,
        services: &[ServiceSpec],
        (service, to, at): (&String, &schema::RewindTo, &String),
        duration: Option<SimDuration>,
    ) -> Option<FaultSpec> {
        let fat = |f: &'static str| [P::F("faults"), P::I(i), P::F(f)];
        let si = services.iter().position(|sv| sv.name == *service);
        let log_consumer = |sv: &&schema::Service| !sv.consume.topics.is_empty() && reads_from(s, sv, true);
        let on_log = s.services.iter().find(|sv| sv.name == *service).is_some_and(|sv| log_consumer(&sv));
        if si.is_none() || !on_log {
            let help = suggest(service, s.services.iter().filter(log_consumer).map(|sv| sv.name.as_str()))
                .map(|x| format!("did you mean `{x}`?"))
                .or_else(|| Some("a rewind resets a consumer group of a Log bus".into()));
            self.err(&fat("service"), format!("no service called `{service}` consumes from a Log bus"), help);
        }
        let at_t = self.duration(&fat("at"), at);
        self.not_after_end(&fat("at"), at_t, duration, s);
        let to = match to {
            schema::RewindTo::Earliest => RewindTarget::Earliest,
            schema::RewindTo::Latest => RewindTarget::Latest,
            schema::RewindTo::Offset(o) => RewindTarget::Offset(*o),
            schema::RewindTo::Time(t) => RewindTarget::Time(SimTime::ZERO + self.duration(&fat("to"), t)?),
        };
        Some(FaultSpec::Rewind {
            service: si?,
            group: service.clone(),
            to,
            at: SimTime::ZERO + at_t?,
            drop_tables: false,
        })
    }
}

/// Every node's name: each service's instances, then the brokers.
fn all_node_names(services: &[ServiceSpec], brokers: &[String]) -> Vec<String> {
    services
        .iter()
        .flat_map(|sv| (0..sv.instances).map(move |i| sv.node_name(i)))
        .chain(brokers.iter().cloned())
        .collect()
}

/// A crash point's seam, as the kernel names it.
fn seam_of(seam: &schema::Seam) -> Seam {
    match seam {
        schema::Seam::AfterDedup => Seam::AfterDedup,
        schema::Seam::AfterStateWrite => Seam::AfterStateWrite,
        schema::Seam::AfterPublish => Seam::AfterPublish,
        schema::Seam::InOutboxRelay => Seam::InOutboxRelay,
        schema::Seam::Any => Seam::Any,
    }
}
