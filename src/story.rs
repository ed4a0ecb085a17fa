//! Turns the records of one entity into a short, readable causal chain.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::check::{Checker, Story};
use crate::outcome::AppliedFault;
use crate::service::{EntityId, Kind};
use crate::sim::SimTime;
use crate::system::{InvariantSpec, System};
use crate::trace::{Focused, LossReason, NO_NODE, Record, RecordKind, split_partition_offset};

/// The network faults (by their index in the plan) active at some time
/// while the entity was under way (records `first_own..=last_own`), even if
/// they began before it.
fn network_faults_active(records: &[Record], first_own: Option<usize>, last_own: usize) -> Vec<u64> {
    let mut began: BTreeMap<u64, usize> = BTreeMap::new();
    let mut active: Vec<u64> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        match r.kind {
            RecordKind::FaultBegan if r.node == NO_NODE => {
                began.insert(r.aux, i);
            }
            RecordKind::FaultHealed if r.node == NO_NODE => {
                let from = began.remove(&r.aux).unwrap_or(0);
                if first_own.is_some_and(|f| from <= last_own && i >= f) {
                    active.push(r.aux);
                }
            }
            _ => {}
        }
    }
    active.extend(began.into_keys().filter(|_| first_own.is_some()));
    active
}

/// The brokers (node numbers from `brokers_from` on) already down at record
/// `start`, with the index of the crash that took each down: a crash that
/// is part of the story when the entity's path begins during it (its
/// restart, under way, would otherwise be told without it).
fn brokers_down_at(records: &[Record], start: usize, brokers_from: u32) -> BTreeMap<u32, usize> {
    let mut down: BTreeMap<u32, usize> = BTreeMap::new();
    for (i, r) in records.iter().enumerate().take(start) {
        match r.kind {
            RecordKind::Crash if r.node != NO_NODE && r.node >= brokers_from => {
                down.insert(r.node, i);
            }
            RecordKind::Restart => {
                down.remove(&r.node);
            }
            _ => {}
        }
    }
    down
}

/// Tells the story of `entity` for the violated invariant `inv`, from the
/// records a focused run collected (the entity's own, plus every crash and
/// restart). `other` is a second entity the violation involves (the older
/// change that overwrote the newest one in a replica), told alongside.
///
/// A long story keeps its beginning, its end and every decisive step (a
/// loss, a crash, an effect, a redelivery, a rebalance, a message ignored
/// or skipped), and omits the rest.
#[expect(clippy::too_many_arguments, reason = "what one story needs, each from a different place")]
pub(crate) fn tell(
    sys: &System,
    faults: &[AppliedFault],
    inv: &InvariantSpec,
    entity: EntityId,
    other: Option<EntityId>,
    focused: &Focused,
    checker: &Checker,
    end: SimTime,
) -> Story {
    let records = focused.records.as_slice();
    let ours = |e: u64| e == entity.0 || other.is_some_and(|o| o.0 == e);
    let node_names = sys.node_names();
    let entity_name = sys.entity_name(checker.kind_of(entity));
    // The kind of each message of the entity, from its first record.
    let mut kinds: Vec<(u64, u64)> = Vec::new();
    let mut involved: Vec<u32> = Vec::new();
    for r in records.iter().filter(|r| ours(r.entity)) {
        if matches!(r.kind, RecordKind::Published | RecordKind::Enqueued | RecordKind::CallSent)
            && !kinds.iter().any(|(m, _)| *m == r.msg)
        {
            kinds.push((r.msg, r.aux & u64::from(u32::MAX)));
        }
        if r.kind == RecordKind::Lost && !kinds.iter().any(|(m, _)| *m == r.msg) {
            kinds.push((r.msg, crate::trace::loss_of(r.aux).1));
        }
        if r.node != NO_NODE && !involved.contains(&r.node) {
            involved.push(r.node);
        }
    }
    let teller = Teller { sys, faults, node_names: &node_names, kinds: &kinds, entity_name };
    let mut lines = Vec::new();
    // Per line: 2 the entity's decisive step, 1 a node's, 0 neither.
    let mut keep: Vec<u8> = Vec::new();
    // The rebalance told on the last line: kind, node, time, partitions.
    let mut rebalance: Option<(RecordKind, u32, SimTime, Vec<u64>)> = None;
    // A step that keeps repeating (a poison message failing, a redelivery
    // loop) is told three times, then summed up.
    let mut times_seen: BTreeMap<(u8, u32, u64), u32> = BTreeMap::new();
    let mut repeats: Option<(u64, SimTime)> = None;
    let flush = |lines: &mut Vec<String>, repeats: &mut Option<(u64, SimTime)>| {
        if let Some((n, last)) = repeats.take() {
            lines.push(format!("{:>12}  ... and {n} more steps like these, the last at {last}", ""));
        }
    };
    // `flush` adds lines that are not decisive: keep `keep` in step.
    let flush = |lines: &mut Vec<String>, repeats: &mut Option<(u64, SimTime)>, keep: &mut Vec<u8>| {
        flush(lines, repeats);
        keep.resize(lines.len(), 0);
    };
    // Crashes and restarts of the nodes involved matter up to the entity's
    // last step, and the first one after it (the node coming back).
    let last_own = records.iter().rposition(|r| ours(r.entity)).unwrap_or(0);
    let first_own = records.iter().position(|r| ours(r.entity));
    let mut after_last = 0;
    let mut previous: Option<&Record> = None;
    let active = network_faults_active(records, first_own, last_own);
    // Broker nodes come after every service instance.
    let brokers_from: u32 = sys.services.iter().map(|s| s.instances).sum();
    let down_at_start = brokers_down_at(records, first_own.unwrap_or(0), brokers_from);
    for (i, r) in records.iter().enumerate() {
        if focused.gap() == Some(i) {
            flush(&mut lines, &mut repeats, &mut keep);
            lines.push(format!(
                "{:>12}  ... {} steps omitted here (a story keeps the first {} and the last {} of a run)",
                "",
                crate::format::thousands(focused.omitted),
                crate::format::thousands(crate::trace::STORY_HEAD as u64),
                crate::format::thousands(crate::trace::STORY_TAIL as u64)
            ));
            keep.push(2);
            times_seen.clear();
        }
        // Faults of the nodes involved; faults of the network and of the
        // brokers while the entity was under way.
        let under_way = first_own.is_some_and(|f| f <= i) && i <= last_own;
        let network = r.node == NO_NODE && (under_way || active.contains(&r.aux));
        let broker =
            r.node != NO_NODE && r.node >= brokers_from && (under_way || down_at_start.get(&r.node) == Some(&i));
        let relevant = r.entity == 0 && (involved.contains(&r.node) || network || broker);
        if !ours(r.entity) && !relevant {
            continue;
        }
        // Rebalances matter while the entity is under way.
        if matches!(r.kind, RecordKind::Assigned | RecordKind::Revoked) && !under_way {
            continue;
        }
        if r.entity == 0 && i > last_own {
            after_last += 1;
            if after_last > 1 {
                continue;
            }
        }
        // "CRASHED at seam X" already said it.
        let told = previous.is_some_and(|p| {
            p.kind == RecordKind::CrashPoint && p.node == r.node && p.time == r.time && r.kind == RecordKind::Crash
        });
        previous = Some(r);
        if told {
            continue;
        }
        // One rebalance moves several partitions at once: one line.
        if matches!(r.kind, RecordKind::Assigned | RecordKind::Revoked) {
            match &mut rebalance {
                Some((kind, node, time, parts)) if *kind == r.kind && *node == r.node && *time == r.time => {
                    parts.push(r.aux);
                    let line = rebalance_line(&node_names, *kind, *node, *time, parts);
                    *lines.last_mut().expect("the rebalance's line") = line;
                    continue;
                }
                _ => {
                    flush(&mut lines, &mut repeats, &mut keep);
                    rebalance = Some((r.kind, r.node, r.time, vec![r.aux]));
                    lines.push(rebalance_line(&node_names, r.kind, r.node, r.time, &[r.aux]));
                    keep.push(1);
                    continue;
                }
            }
        }
        rebalance = None;
        let seen = times_seen.entry((r.kind as u8, r.node, r.msg)).or_insert(0);
        *seen += 1;
        if *seen > 3 {
            let n = repeats.map_or(0, |(n, _)| n);
            repeats = Some((n + 1, r.time));
            continue;
        }
        flush(&mut lines, &mut repeats, &mut keep);
        let mut line = format!("{:>12}  ", r.time.to_string());
        let Some(text) = teller.describe(r) else { continue };
        line.push_str(&text);
        let decisive = matches!(
            r.kind,
            RecordKind::Lost
                | RecordKind::CrashPoint
                | RecordKind::Crash
                | RecordKind::Effect
                | RecordKind::DeadLettered
                | RecordKind::Ignored
                | RecordKind::SplitState
                | RecordKind::Skipped
                | RecordKind::Redelivered
                | RecordKind::CallFailed
                | RecordKind::Revoked
                | RecordKind::Assigned
        );
        // The entity's own decisive steps are always told; a node's (its
        // crashes) as room allows.
        keep.push(if !decisive {
            0
        } else if r.entity != 0 {
            2
        } else {
            1
        });
        lines.push(line);
    }
    flush(&mut lines, &mut repeats, &mut keep);
    keep.resize(lines.len(), 0);
    let mut lines = shorten(lines, &keep);
    lines.push(conclusion(checker, sys, faults, inv, entity, other, end));
    Story { entity: entity.0, lines }
}

/// `inventory-1 lost partitions 0, 1 to a rebalance`.
fn rebalance_line(node_names: &[String], kind: RecordKind, node: u32, time: SimTime, parts: &[u64]) -> String {
    let who = node_names.get(node as usize).map_or("?", String::as_str);
    let list: Vec<String> = parts.iter().map(u64::to_string).collect();
    let (noun, list) = (if parts.len() == 1 { "partition" } else { "partitions" }, list.join(", "));
    let what = if kind == RecordKind::Assigned {
        format!("{who} was assigned {noun} {list} (a rebalance)")
    } else {
        format!("{who} lost {noun} {list} to a rebalance")
    };
    format!("{:>12}  {what}", time.to_string())
}

/// Keeps a story short enough to read: the first lines, the last ones,
/// the entity's decisive steps, and as many of the nodes' as fit; each run
/// of lines left out becomes one `... N steps omitted ...` line.
fn shorten(lines: Vec<String>, keep: &[u8]) -> Vec<String> {
    const HEAD: usize = 30;
    const TAIL: usize = 10;
    const NODE_STEPS_MAX: usize = 20;
    if lines.len() <= HEAD + TAIL + 1 {
        return lines;
    }
    let n = lines.len();
    let mut node_steps = 0;
    let kept: Vec<bool> = (0..n)
        .map(|i| {
            if i < HEAD || i >= n - TAIL || keep[i] == 2 {
                return true;
            }
            node_steps += usize::from(keep[i] == 1);
            keep[i] == 1 && node_steps <= NODE_STEPS_MAX
        })
        .collect();
    let mut out = Vec::new();
    let mut omitted = 0;
    for (line, k) in lines.into_iter().zip(kept) {
        if k {
            if omitted > 0 {
                out.push(format!("{:>12}  ... {omitted} steps omitted ...", ""));
                omitted = 0;
            }
            out.push(line);
        } else {
            omitted += 1;
        }
    }
    if omitted > 0 {
        out.push(format!("{:>12}  ... {omitted} steps omitted ...", ""));
    }
    out
}

fn explain_loss(
    faults: &[AppliedFault],
    node_names: &[String],
    reason: Option<LossReason>,
    n: u32,
    at: SimTime,
) -> String {
    let name = node_names.get(n as usize).map_or("?", String::as_str);
    let window = down_window(faults, name, at);
    match reason {
        Some(LossReason::NoSubscriberUp) => {
            let service = name.rsplit_once('-').map_or(name, |(s, _)| s);
            format!("the bus is fire-and-forget and no instance of {service} was up to receive it{window}")
        }
        Some(LossReason::ReceiverCrashed) => format!("{name} crashed while it was in flight{window}"),
        Some(LossReason::QueueFull) => format!("{name}'s queue was full"),
        Some(LossReason::CrashedWhileHeld) => format!("{name} crashed while holding it{window}"),
        Some(LossReason::AutoAck) => {
            format!("it was auto-acknowledged when {name} received it, and {name} crashed before handling it{window}")
        }
        Some(LossReason::LeaderFailover) => "the partition's leader failed (crashed, or was fenced behind a \
             partition) before a follower copied it, and the new leader never had it"
            .to_string(),
        Some(LossReason::UncleanElection) => {
            "an out-of-sync replica was elected leader (unclean election) without it: an acknowledged write is gone"
                .to_string()
        }
        Some(LossReason::Partitioned) => "a network partition separated it from its destination".to_string(),
        Some(LossReason::Dropped) => "a faulty link dropped it".to_string(),
        Some(LossReason::Unpublished) => {
            format!("{name} crashed after its state write and before publishing it (the dual-write gap){window}")
        }
        Some(LossReason::Unflushed) => {
            "its broker crashed before writing it to disk, and no other copy had it".to_string()
        }
        Some(LossReason::ProducerGaveUp) => {
            "the producer gave it up: never acknowledged within its retries or its delivery timeout, or its \
             connection to the broker closed behind a partition"
                .to_string()
        }
        Some(LossReason::Retention) => {
            let service = name.rsplit_once('-').map_or(name, |(s, _)| s);
            format!("retention deleted it from the log before the {service} group had processed it{window}")
        }
        Some(LossReason::FailedDropped) => format!("{name}'s handler failed and nothing retries it"),
        Some(LossReason::BrokerDown) => format!(
            "{name} published it while the queue broker was down or not yet reconnected, and without publisher \
             confirms nothing told it to resend"
        ),
        Some(LossReason::Trimmed) => {
            format!("the stream was trimmed (MAXLEN) past it before {name} read it or claimed it back")
        }
        Some(LossReason::ScaledIn) => format!("the autoscaler removed {name} while it held it or it was on its way"),
        Some(LossReason::RewoundPast) => REWOUND_PAST.to_string(),
        Some(LossReason::BrokerRestart) => "the queue broker restarted, and it was a transient message or in a \
             transient queue"
            .to_string(),
        Some(LossReason::CommittedUnprocessed) => {
            format!(
                "{name} had committed its offset before processing it, then crashed{window}: it is never redelivered"
            )
        }
        None => "unknown reason".to_string(),
    }
}

/// ` (inventory-1 down from 2m00.000s to 7m00.000s)` for each crash or
/// pause of an instance of `node`'s service that covers `at`: what kept
/// the service from the message. Slowdowns and skews keep nobody away.
fn down_window(faults: &[AppliedFault], node: &str, at: SimTime) -> String {
    let service = node.rsplit_once('-').map_or(node, |(s, _)| s);
    let mut out = String::new();
    for f in faults {
        let (from, until) = (SimTime(f.from_ns), SimTime(f.until_ns));
        let same_service = f.node.rsplit_once('-').is_some_and(|(s, _)| s == service);
        let state = if f.kind.starts_with("crash") {
            "down"
        } else if f.kind == "pause" {
            "paused"
        } else {
            continue;
        };
        if same_service && from <= at && at <= until {
            let _ = write!(out, " ({} {state} from {from} to {until})", f.node);
        }
    }
    out
}

/// The index of business rule `inv` among the scenario's rules.
fn rule_index(sys: &System, inv: &InvariantSpec) -> usize {
    sys.invariants
        .iter()
        .filter(|i| matches!(i, InvariantSpec::LeadsTo { .. } | InvariantSpec::NeverWithout { .. }))
        .position(|i| std::ptr::eq(i, inv))
        .unwrap_or(0)
}

/// The index of invariant `inv` among the scenario's invariants of its
/// kind: which of the checker's per-kind records is its.
fn same_kind_index(sys: &System, inv: &InvariantSpec) -> usize {
    let kind = std::mem::discriminant(inv);
    sys.invariants.iter().filter(|i| std::mem::discriminant(*i) == kind).take_while(|i| !std::ptr::eq(*i, inv)).count()
}

fn conclusion(
    checker: &Checker,
    sys: &System,
    faults: &[AppliedFault],
    inv: &InvariantSpec,
    entity: EntityId,
    other: Option<EntityId>,
    end: SimTime,
) -> String {
    let entity_name = sys.entity_name(checker.kind_of(entity));
    let (accepted, terminal) = checker.times(entity).unwrap_or((SimTime::NEVER, SimTime::NEVER));
    match inv {
        InvariantSpec::NoLostEntities { deadline_after_heal, .. }
        | InvariantSpec::TerminalWithin { within: deadline_after_heal, .. } => {
            let last_heal = SimTime(faults.iter().map(|f| f.until_ns).max().unwrap_or(0));
            let deadline = Checker::deadline(accepted, last_heal, *deadline_after_heal);
            if terminal == SimTime::NEVER {
                format!(
                    "=> {entity_name} {} was accepted at {accepted} and never reached a terminal state \
                     (deadline {deadline}; the run ended at {end})",
                    entity.0
                )
            } else {
                format!(
                    "=> {entity_name} {} reached a terminal state at {terminal}, after its deadline {deadline}",
                    entity.0
                )
            }
        }
        InvariantSpec::BoundedAmplification { service, factor, .. } => format!(
            "=> {} handled more messages for {entity_name} {} than any other entity, and {} handled more than \
             {factor} messages per accepted {entity_name} in all",
            sys.services[*service].name, entity.0, sys.services[*service].name
        ),
        InvariantSpec::ReplicaConvergence { source, replica, table } => {
            diverged(sys, (*source, *replica, *table), entity_name, entity, other)
        }
        InvariantSpec::SagaAtomicity { steps, .. } => half_done(checker, sys, steps, entity_name, entity),
        InvariantSpec::LeadsTo { from, to, within, .. } => {
            let rule = rule_index(sys, inv);
            let [first, second] = checker.rule_times(rule, entity);
            let to: Vec<String> = to.iter().map(|e| e.name(&sys.names)).collect();
            let last_heal = SimTime(faults.iter().map(|f| f.until_ns).max().unwrap_or(0));
            let deadline = first.max(last_heal) + *within;
            if second == SimTime::NEVER {
                format!(
                    "=> {} happened to {entity_name} {} at {first}, and {} never followed (deadline {deadline})",
                    from.name(&sys.names),
                    entity.0,
                    to.join(" or ")
                )
            } else {
                format!(
                    "=> {} happened to {entity_name} {} at {first}; {} followed only at {second}, after the deadline \
                     {deadline}",
                    from.name(&sys.names),
                    entity.0,
                    to.join(" or ")
                )
            }
        }
        InvariantSpec::NeverWithout { event, prior, .. } => {
            let rule = rule_index(sys, inv);
            let [before, at] = checker.rule_times(rule, entity);
            let when = if before == SimTime::NEVER { "never".to_string() } else { format!("only at {before}") };
            format!(
                "=> {} happened to {entity_name} {} at {at}, and {} {when}",
                event.name(&sys.names),
                entity.0,
                prior.name(&sys.names)
            )
        }
        InvariantSpec::NoDuplicateEffects { effect } => {
            format!(
                "=> effect {} was applied more than once to {entity_name} {}",
                sys.names.effect_name(*effect),
                entity.0
            )
        }
        // What a service kept, read or wrote, and when: `kept`.
        _ => kept(checker, sys, faults, inv, entity_name, (entity, other)),
    }
}

/// The conclusion of a saga stopped half way: what it has done, never
/// done and undone without doing.
fn half_done(
    checker: &Checker,
    sys: &System,
    steps: &[(crate::service::EffectId, crate::service::EffectId)],
    entity_name: &str,
    entity: EntityId,
) -> String {
    let (mut done, mut undone, mut missing) = (Vec::new(), Vec::new(), Vec::new());
    for (d, u) in steps {
        let (d_applied, u_applied) = (checker.effects_applied(entity, *d), checker.effects_applied(entity, *u));
        let (d_name, u_name) = (sys.names.effect_name(*d), sys.names.effect_name(*u));
        match (d_applied, u_applied) {
            (true, false) => done.push(format!("{d_name} (never compensated by {u_name})")),
            (false, true) => undone.push(format!("{u_name} without {d_name}")),
            (false, false) => missing.push(d_name.to_string()),
            (true, true) => {}
        }
    }
    let mut parts = Vec::new();
    if !done.is_empty() {
        parts.push(format!("it has {}", done.join(", ")));
    }
    if !missing.is_empty() {
        parts.push(format!("never {}", missing.join(", ")));
    }
    if !undone.is_empty() {
        parts.push(format!("it has {}", undone.join(", ")));
    }
    format!(
        "=> the saga of {entity_name} {} stopped half way: {}; it is neither done nor compensated",
        entity.0,
        parts.join("; ")
    )
}

/// The conclusion of what a service kept wrong: a row it lost, a message
/// it could not read, a unit of stock it did not have.
fn kept(
    checker: &Checker,
    sys: &System,
    faults: &[AppliedFault],
    inv: &InvariantSpec,
    entity_name: &str,
    (entity, other): (EntityId, Option<EntityId>),
) -> String {
    let last_heal = SimTime(faults.iter().map(|f| f.until_ns).max().unwrap_or(0));
    match inv {
        InvariantSpec::PerKeyOrder { name, table, .. } => format!(
            "=> {name} wrote {entity_name} {}'s change to its row in `{}` after {entity_name} {}'s, whose message \
             was published later: out of order",
            entity.0,
            sys.names.table_name(*table),
            other.map_or(0, |o| o.0)
        ),
        InvariantSpec::BoundedLag { name, max, after_heal, .. } => {
            let i = same_kind_index(sys, inv);
            let (at, lag) = checker.lag_over(i, last_heal + *after_heal).unwrap_or((SimTime::NEVER, 0));
            format!(
                "=> {name}'s lag was {lag} records at {at} (the last heal was at {last_heal}), above {max}; \
                 {entity_name} {} was the oldest record it had not committed",
                entity.0
            )
        }
        InvariantSpec::BoundedStaleness { source, replica, max, .. } => {
            let i = same_kind_index(sys, inv);
            let (written, held) = checker.stale_of(i, entity.0).unwrap_or((SimTime::NEVER, SimTime::NEVER));
            let held = if held == SimTime::NEVER { "never".to_string() } else { format!("only at {held}") };
            format!(
                "=> {} wrote {entity_name} {} at {written}; {} held it (or a newer change of its row) {held}: later \
                 than {max} after the write (and than the heal's grace, for a write before it)",
                sys.services[*source].name, entity.0, sys.services[*replica].name
            )
        }
        InvariantSpec::NoStateLoss { name, table, .. } => state_lost(sys, (name, *table), entity_name, entity, other),
        InvariantSpec::VersionCompatible { name, .. } => unread(checker, sys, inv, name, entity_name, entity),
        InvariantSpec::NoOversell { service } => format!(
            "=> {} handed {entity_name} {} a unit that was no longer there: the stock of its key went below zero",
            sys.services[*service].name, entity.0
        ),
        _ => String::new(),
    }
}

/// The conclusion of a row a service lost: its last write is not what it holds.
fn state_lost(
    sys: &System,
    (name, table): (&str, u16),
    entity_name: &str,
    entity: EntityId,
    other: Option<EntityId>,
) -> String {
    let table = sys.names.table_name(table);
    let held = match other {
        Some(o) => format!("holds {entity_name} {}'s, older", o.0),
        None => "holds no row there".to_string(),
    };
    format!(
        "=> {entity_name} {} was the last that {name} wrote to its row in `{table}`; after the run it {held}",
        entity.0
    )
}

/// The conclusion of a message its consumer's instance could not read.
fn unread(
    checker: &Checker,
    sys: &System,
    inv: &InvariantSpec,
    name: &str,
    entity_name: &str,
    entity: EntityId,
) -> String {
    let i = same_kind_index(sys, inv);
    let Some((code, version, reads)) = checker.unread_of(i, entity) else {
        return format!("=> {name} could not read a message of {entity_name} {}", entity.0);
    };
    let what = match code {
        crate::service::UNREADABLE_PARKED => "parked it, and no instance that reads it took it by the end",
        c => crate::service::unreadable_label(c),
    };
    format!(
        "=> {name}, reading up to v{reads}, could not read {entity_name} {}'s message of v{version}: it {what}",
        entity.0
    )
}

/// What one story needs to put a record into words.
struct Teller<'a> {
    sys: &'a System,
    faults: &'a [AppliedFault],
    node_names: &'a [String],
    /// The kind of each message of the story, from its first record.
    kinds: &'a [(u64, u64)],
    entity_name: &'a str,
}

impl Teller<'_> {
    /// A node's name (`client` for none).
    fn node(&self, n: u32) -> &str {
        if n == NO_NODE { "client" } else { self.node_names.get(n as usize).map_or("?", String::as_str) }
    }

    /// A message's name: its kind and id, e.g. `OrderPlaced#12`.
    fn msg_name(&self, msg: u64) -> String {
        let kind = self.kinds.iter().find(|(m, _)| *m == msg).map_or(u64::MAX, |(_, k)| *k);
        let name = if kind == u64::MAX { "message" } else { self.sys.names.kind_name(Kind(kind as u32)) };
        format!("{name}#{msg}")
    }

    /// Record `r` in words, after its time; `None` for a record a story
    /// does not tell on its own line.
    fn describe(&self, r: &Record) -> Option<String> {
        let who = self.node(r.node);
        let entity_name = self.entity_name;
        let mut line = String::new();
        let _ = match r.kind {
            RecordKind::Request => write!(line, "client sent {entity_name} {} (key {})", r.entity, r.aux),
            RecordKind::Rejected => write!(line, "request refused: no instance of the entry service could take it"),
            RecordKind::Enqueued => write!(line, "{who} received {}", self.msg_name(r.msg)),
            RecordKind::Handled => write!(line, "{who} handled {}", self.msg_name(r.msg)),
            RecordKind::Published => write!(line, "{who} published {}", self.msg_name(r.msg)),
            RecordKind::Appended => {
                let (p, o) = split_partition_offset(r.aux);
                write!(line, "{} appended to partition {p} at offset {o}", self.msg_name(r.msg))
            }
            RecordKind::Committed => return None,
            RecordKind::Failed
            | RecordKind::DeadLettered
            | RecordKind::Redelivered
            | RecordKind::Ignored
            | RecordKind::Skipped
            | RecordKind::Lost => return self.trouble_step(r),
            RecordKind::Accepted
            | RecordKind::Effect
            | RecordKind::Terminal
            | RecordKind::SplitState
            | RecordKind::Dropped
            | RecordKind::Transition => return self.entity_step(r),
            RecordKind::Assigned | RecordKind::Revoked => return None, // told by `tell`
            RecordKind::Unreadable | RecordKind::Unparked => return Some(self.version_step(r)),
            RecordKind::Crash
            | RecordKind::Restart
            | RecordKind::Joined
            | RecordKind::Provisioned
            | RecordKind::ScaledUp
            | RecordKind::Draining
            | RecordKind::ScaledDown
            | RecordKind::Rewound
            | RecordKind::Hydrating
            | RecordKind::Rehydrated
            | RecordKind::Rebuilt
            | RecordKind::CrashPoint
            | RecordKind::Paused
            | RecordKind::Fenced
            | RecordKind::Unfenced
            | RecordKind::ChannelClosed
            | RecordKind::Reconnected
            | RecordKind::Resent
            | RecordKind::Resumed
            | RecordKind::CallSent
            | RecordKind::CallRefused
            | RecordKind::CallTimedOut
            | RecordKind::CallReplied
            | RecordKind::CallFailed
            | RecordKind::FaultBegan
            | RecordKind::FaultHealed => return self.node_step(r),
            RecordKind::Outboxed => write!(line, "{who} wrote {} to its outbox", self.msg_name(r.msg)),
        };
        Some(line)
    }

    /// A message that failed, went back, was passed over or was lost (see [`Teller::describe`]).
    fn trouble_step(&self, r: &Record) -> Option<String> {
        let who = self.node(r.node);
        let entity_name = self.entity_name;
        let mut line = String::new();
        let _ = match r.kind {
            RecordKind::Failed => write!(line, "{who} FAILED on {}", self.msg_name(r.msg)),
            RecordKind::DeadLettered => {
                write!(line, "{} dead-lettered after {} deliveries", self.msg_name(r.msg), r.aux)
            }
            RecordKind::Redelivered => {
                write!(line, "{} redelivered to {who} (delivery {})", self.msg_name(r.msg), r.aux)
            }
            RecordKind::Ignored if r.aux == u64::from(u32::MAX) => {
                write!(
                    line,
                    "{who} ignored {}: {entity_name} {} had left the state it was set for",
                    self.msg_name(r.msg),
                    r.entity
                )
            }
            RecordKind::Ignored => {
                write!(
                    line,
                    "{who} ignored {}: nothing expects it in {entity_name} {}'s state",
                    self.msg_name(r.msg),
                    r.entity
                )
            }
            RecordKind::Skipped => {
                write!(line, "{who} skipped {}: already handled (idempotent consumer)", self.msg_name(r.msg))
            }
            RecordKind::Lost => {
                let reason = crate::trace::loss_of(r.aux).0;
                write!(
                    line,
                    "{} LOST: {}",
                    self.msg_name(r.msg),
                    explain_loss(self.faults, self.node_names, reason, r.node, r.time)
                )
            }
            _ => {
                debug_assert!(false, "{:?} is told by `describe`", r.kind);
                return None;
            }
        };
        Some(line)
    }

    /// A step of the entity itself: accepted, an effect, an end, a move of its state (see [`Teller::describe`]).
    /// A message of a schema version its instance does not read, or one
    /// taken from the parking lot.
    fn version_step(&self, r: &Record) -> String {
        let (who, msg) = (self.node(r.node), self.msg_name(r.msg));
        if r.kind == RecordKind::Unparked {
            return format!("{who}, now reading up to v{}, took {msg} from the parking lot", r.aux);
        }
        let (code, version, reads) = ((r.aux & 0xFF) as u8, (r.aux >> 8) as u16, (r.aux >> 24) as u16);
        let what = match code {
            crate::service::UNREADABLE_FAILED => "its handler FAILED",
            crate::service::UNREADABLE_SKIPPED => "it SKIPPED it (consumed, nothing done)",
            crate::service::UNREADABLE_PARKED => "it PARKED it for an instance that reads it",
            _ => "it MISREAD it as its own version (the fields it does not know read as 0)",
        };
        format!("{who}, reading up to v{reads}, got {msg} of v{version}: {what}")
    }

    fn entity_step(&self, r: &Record) -> Option<String> {
        let who = self.node(r.node);
        let entity_name = self.entity_name;
        let mut line = String::new();
        let _ = match r.kind {
            RecordKind::Accepted => write!(line, "{who} accepted {entity_name} {}", r.entity),
            RecordKind::Effect => {
                write!(
                    line,
                    "{who} applied effect {}",
                    self.sys.names.effect_name(crate::service::EffectId(r.aux as u16))
                )
            }
            RecordKind::Terminal => write!(line, "{who} completed {entity_name} {} (terminal)", r.entity),
            RecordKind::SplitState => write!(
                line,
                "{who} moved {entity_name} {} in its own database while {} holds its state: \
             state per instance, split between them",
                r.entity,
                self.node(r.aux as u32)
            ),
            RecordKind::Dropped => {
                write!(line, "{who} crashed holding the request; {entity_name} {} was never accepted", r.entity)
            }
            RecordKind::Transition => {
                let (from, to) = ((r.aux >> 32) as u16, r.aux as u16);
                let (from, to) = (self.sys.names.state_name(from), self.sys.names.state_name(to));
                let why = if self.kinds.iter().any(|(m, k)| *m == r.msg && *k == u64::from(u32::MAX)) {
                    " (deadline passed)"
                } else {
                    ""
                };
                write!(line, "{who} moved {entity_name} {} from {from} to {to}{why}", r.entity)
            }
            _ => {
                debug_assert!(false, "{:?} is told by `describe`", r.kind);
                return None;
            }
        };
        Some(line)
    }

    /// A step of a node, a fault or a call (see [`Teller::describe`]).
    fn node_step(&self, r: &Record) -> Option<String> {
        let who = self.node(r.node);
        let mut line = String::new();
        let _ = match r.kind {
            RecordKind::Crash => write!(line, "{who} CRASHED"),
            RecordKind::Restart => write!(line, "{who} restarted"),
            RecordKind::Joined => write!(line, "{who} started (deployed)"),
            RecordKind::Provisioned
            | RecordKind::ScaledUp
            | RecordKind::Draining
            | RecordKind::ScaledDown
            | RecordKind::Rewound
            | RecordKind::Rehydrated
            | RecordKind::Rebuilt => return Some(operated(who, r)),
            RecordKind::Hydrating => write!(
                line,
                "{who} asked {} for a snapshot (re-hydration): it works on nothing until it has it",
                self.node(r.aux as u32)
            ),
            RecordKind::CrashPoint => {
                let seam = crate::system::Seam::from_code(r.aux).map_or("?", |s| s.label());
                write!(line, "{who} CRASHED at seam {seam} while handling {}", self.msg_name(r.msg))
            }
            RecordKind::Paused => write!(line, "{who} PAUSED (stalled, still reachable)"),
            RecordKind::Fenced => {
                write!(line, "{who} FENCED: cut off from the controller quorum, it leads nothing")
            }
            RecordKind::Unfenced => write!(line, "{who} back in the controller quorum"),
            RecordKind::ChannelClosed => write!(
                line,
                "{who}'s CHANNEL CLOSED by the broker (consumer timeout): {} unacknowledged back in the queue",
                r.aux
            ),
            RecordKind::Reconnected => write!(line, "{who} reconnected to the broker"),
            RecordKind::Resent => write!(
                line,
                "{who} resent {}: the broker never confirmed it before going down (publisher confirms)",
                self.msg_name(r.msg)
            ),
            RecordKind::Resumed => write!(line, "{who} resumed"),
            RecordKind::CallSent => {
                write!(line, "{who} called with {} (attempt {})", self.msg_name(r.msg), r.aux >> 32)
            }
            RecordKind::CallRefused => {
                let why = crate::sim::refusal_label(r.aux);
                write!(line, "{who} did not send {}: {why}", self.msg_name(r.msg))
            }
            RecordKind::CallTimedOut => {
                write!(line, "{who} TIMED OUT waiting for the reply to {} (attempt {})", self.msg_name(r.msg), r.aux)
            }
            RecordKind::CallReplied => {
                let how = if r.aux == 1 { "success" } else { "an error" };
                write!(line, "{who} got {how} as the reply to {}", self.msg_name(r.msg))
            }
            RecordKind::CallFailed => {
                write!(line, "{who} GAVE UP on the call {} after {} attempts", self.msg_name(r.msg), r.aux)
            }
            RecordKind::FaultBegan | RecordKind::FaultHealed => {
                let f = self.faults.get(r.aux as usize);
                let what = f.map_or("a fault".to_string(), |f| format!("{} {}", f.kind, f.node));
                let verb = if r.kind == RecordKind::FaultBegan { "began" } else { "healed" };
                write!(line, "{what} {verb}")
            }
            _ => {
                debug_assert!(false, "{:?} is told by `describe`", r.kind);
                return None;
            }
        };
        Some(line)
    }
}

/// The conclusion of a replica-convergence story: `entity` made the row's
/// newest change at the source; the replica holds `other`'s, or that
/// version with another value, or nothing.
fn diverged(
    sys: &System,
    (source, replica, table): (usize, usize, u16),
    entity_name: &str,
    entity: EntityId,
    other: Option<EntityId>,
) -> String {
    let (source, replica) = (&sys.services[source].name, &sys.services[replica].name);
    let table = sys.names.table_name(table);
    match other {
        Some(same) if same == entity => format!(
            "=> {entity_name} {} was the last change {source} made to its row in `{table}`; after the run \
             {replica}'s copy holds that version with another value: the change was misread, not missed",
            entity.0
        ),
        Some(older) => format!(
            "=> {entity_name} {} was the last change {source} made to its row in `{table}`; after the run \
             {replica}'s copy holds {entity_name} {}'s version instead, written last",
            entity.0, older.0
        ),
        None => format!(
            "=> {entity_name} {} was the last change {source} made to its row in `{table}`; after the run \
             {replica}'s copy does not hold it",
            entity.0
        ),
    }
}

/// A step an operator or the autoscaler took on node `who` (see
/// [`Teller::describe`]).
fn operated(who: &str, r: &Record) -> String {
    match r.kind {
        RecordKind::Provisioned => format!("{who} asked for by the autoscaler ({} instances), starting", r.aux),
        RecordKind::ScaledUp => format!("{who} ready (scaled up to {}): it takes work from now on", r.aux),
        RecordKind::Draining => {
            format!("{who} DRAINING (scaled down to {}): takes nothing new, finishes what it holds", r.aux)
        }
        RecordKind::ScaledDown => format!("{who} gone (scaled down to {}), out of its consumer group", r.aux),
        RecordKind::Rehydrated => format!("{who} loaded a snapshot of {} rows, then works through what waited", r.aux),
        RecordKind::Rebuilt => {
            format!("{who} rebuilt its table from its events ({} rows), then works through what waited", r.aux)
        }
        _ => format!(
            "{who}'s group REWOUND by an operator: partition {} resumes at offset {}",
            r.aux >> 40,
            r.aux & ((1 << 40) - 1)
        ),
    }
}

/// Why a message skipped by an offset reset is lost.
const REWOUND_PAST: &str =
    "an operator rewound its consumer group forward past it (an offset reset) before it was processed";

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn a_long_story_keeps_its_ends_and_every_decisive_step() {
        let lines: Vec<String> = (0..200).map(|i| format!("step {i}")).collect();
        let mut keep = vec![0u8; 200];
        keep[100] = 2; // the loss: always told
        for k in keep.iter_mut().skip(50).take(30) {
            *k = 1; // node crashes: 20 of them fit
        }
        let out = shorten(lines, &keep);
        assert!(out.contains(&"step 0".to_string()) && out.contains(&"step 29".to_string()));
        assert!(out.contains(&"step 100".to_string()));
        assert!(out.contains(&"step 190".to_string()) && out.contains(&"step 199".to_string()));
        assert!(out.contains(&"step 69".to_string()) && !out.contains(&"step 70".to_string()));
        assert!(!out.contains(&"step 99".to_string()) && !out.contains(&"step 101".to_string()));
        let omitted: Vec<&String> = out.iter().filter(|l| l.contains("steps omitted")).collect();
        assert_eq!(omitted.len(), 3, "{out:?}");
        assert!(omitted[0].contains("... 20 steps omitted ..."), "{out:?}");
        // A short story is told whole.
        let short: Vec<String> = (0..40).map(|i| format!("s{i}")).collect();
        assert_eq!(shorten(short.clone(), &[0; 40]), short);
    }
}
