//! Turns the records of one entity into a short, readable causal chain.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::check::{Checker, Story};
use crate::outcome::AppliedFault;
use crate::service::{EntityId, Kind};
use crate::sim::SimTime;
use crate::system::{InvariantSpec, System};
use crate::trace::{LossReason, NO_NODE, Record, RecordKind, split_partition_offset};

/// Tells the story of `entity` for the violated invariant `inv`, from the
/// records a focused run collected (the entity's own, plus every crash and
/// restart).
pub(crate) fn tell(
    sys: &System,
    faults: &[AppliedFault],
    inv: &InvariantSpec,
    entity: EntityId,
    records: &[Record],
    checker: &Checker,
    end: SimTime,
) -> Story {
    let node_names = sys.node_names();
    let node = |n: u32| if n == NO_NODE { "client" } else { node_names.get(n as usize).map_or("?", String::as_str) };
    let entity_name = &sys.workload.entity;
    // The kind of each message of the entity, from its first record.
    let mut kinds: Vec<(u64, u64)> = Vec::new();
    let mut involved: Vec<u32> = Vec::new();
    for r in records.iter().filter(|r| r.entity == entity.0) {
        if matches!(r.kind, RecordKind::Published | RecordKind::Enqueued | RecordKind::CallSent)
            && !kinds.iter().any(|(m, _)| *m == r.msg)
        {
            kinds.push((r.msg, r.aux & u64::from(u32::MAX)));
        }
        if r.node != NO_NODE && !involved.contains(&r.node) {
            involved.push(r.node);
        }
    }
    let msg_name = |msg: u64| {
        let kind = kinds.iter().find(|(m, _)| *m == msg).map_or(u64::MAX, |(_, k)| *k);
        let name = if kind == u64::MAX { "message" } else { sys.names.kind_name(Kind(kind as u32)) };
        format!("{name}#{msg}")
    };
    let mut lines = Vec::new();
    // A step that keeps repeating (a poison message failing, a redelivery
    // loop) is told three times, then summed up.
    let mut times_seen: BTreeMap<(u8, u32, u64), u32> = BTreeMap::new();
    let mut repeats: Option<(u64, SimTime)> = None;
    let flush = |lines: &mut Vec<String>, repeats: &mut Option<(u64, SimTime)>| {
        if let Some((n, last)) = repeats.take() {
            lines.push(format!("{:>12}  ... and {n} more steps like these, the last at {last}", ""));
        }
    };
    // Crashes and restarts of the nodes involved matter up to the entity's
    // last step, and the first one after it (the node coming back).
    let last_own = records.iter().rposition(|r| r.entity == entity.0).unwrap_or(0);
    let first_own = records.iter().position(|r| r.entity == entity.0);
    let mut after_last = 0;
    let mut previous: Option<&Record> = None;
    for (i, r) in records.iter().enumerate() {
        // Faults of the nodes involved; faults of the network while the entity was under way.
        let under_way = first_own.is_some_and(|f| f <= i) && i <= last_own;
        let relevant = r.entity == 0 && (involved.contains(&r.node) || (r.node == NO_NODE && under_way));
        if r.entity != entity.0 && !relevant {
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
        let seen = times_seen.entry((r.kind as u8, r.node, r.msg)).or_insert(0);
        *seen += 1;
        if *seen > 3 {
            let n = repeats.map_or(0, |(n, _)| n);
            repeats = Some((n + 1, r.time));
            continue;
        }
        flush(&mut lines, &mut repeats);
        let mut line = format!("{:>12}  ", r.time.to_string());
        let who = node(r.node);
        let _ = match r.kind {
            RecordKind::Request => write!(line, "client sent {entity_name} {} (key {})", entity.0, r.aux),
            RecordKind::Rejected => write!(line, "request refused: no instance of the entry service could take it"),
            RecordKind::Enqueued => write!(line, "{who} received {}", msg_name(r.msg)),
            RecordKind::Handled => write!(line, "{who} handled {}", msg_name(r.msg)),
            RecordKind::Failed => write!(line, "{who} FAILED on {}", msg_name(r.msg)),
            RecordKind::DeadLettered => {
                write!(line, "{} dead-lettered after {} deliveries", msg_name(r.msg), r.aux)
            }
            RecordKind::Redelivered => write!(line, "{} redelivered to {who} (delivery {})", msg_name(r.msg), r.aux),
            RecordKind::Skipped => {
                write!(line, "{who} skipped {}: already handled (idempotent consumer)", msg_name(r.msg))
            }
            RecordKind::Accepted => write!(line, "{who} accepted {entity_name} {}", entity.0),
            RecordKind::Published => write!(line, "{who} published {}", msg_name(r.msg)),
            RecordKind::Appended => {
                let (p, o) = split_partition_offset(r.aux);
                write!(line, "{} appended to partition {p} at offset {o}", msg_name(r.msg))
            }
            RecordKind::Lost => {
                let reason = LossReason::from_code(r.aux);
                write!(line, "{} LOST: {}", msg_name(r.msg), explain_loss(faults, &node_names, reason, r.node, r.time))
            }
            RecordKind::Effect => {
                write!(line, "{who} applied effect {}", sys.names.effect_name(crate::service::EffectId(r.aux as u16)))
            }
            RecordKind::Terminal => write!(line, "{who} completed {entity_name} {} (terminal)", entity.0),
            RecordKind::Committed => continue,
            RecordKind::Crash => write!(line, "{who} CRASHED"),
            RecordKind::Restart => write!(line, "{who} restarted"),
            RecordKind::Joined => write!(line, "{who} started (deployed)"),
            RecordKind::Assigned | RecordKind::Revoked => continue,
            RecordKind::CrashPoint => {
                let seam = crate::system::Seam::from_code(r.aux).map_or("?", |s| s.label());
                write!(line, "{who} CRASHED at seam {seam} while handling {}", msg_name(r.msg))
            }
            RecordKind::Paused => write!(line, "{who} PAUSED (stalled, still reachable)"),
            RecordKind::Resumed => write!(line, "{who} resumed"),
            RecordKind::Outboxed => write!(line, "{who} wrote {} to its outbox", msg_name(r.msg)),
            RecordKind::Dropped => {
                write!(line, "{who} crashed holding the request; {entity_name} {} was never accepted", entity.0)
            }
            RecordKind::CallSent => write!(line, "{who} called with {} (attempt {})", msg_name(r.msg), r.aux >> 32),
            RecordKind::CallRefused => {
                let why = crate::sim::refusal_label(r.aux);
                write!(line, "{who} did not send {}: {why}", msg_name(r.msg))
            }
            RecordKind::CallTimedOut => {
                write!(line, "{who} TIMED OUT waiting for the reply to {} (attempt {})", msg_name(r.msg), r.aux)
            }
            RecordKind::CallReplied => {
                let how = if r.aux == 1 { "success" } else { "an error" };
                write!(line, "{who} got {how} as the reply to {}", msg_name(r.msg))
            }
            RecordKind::CallFailed => {
                write!(line, "{who} GAVE UP on the call {} after {} attempts", msg_name(r.msg), r.aux)
            }
            RecordKind::FaultBegan | RecordKind::FaultHealed => {
                let f = faults.get(r.aux as usize);
                let what = f.map_or("a fault".to_string(), |f| format!("{} {}", f.kind, f.node));
                let verb = if r.kind == RecordKind::FaultBegan { "began" } else { "healed" };
                write!(line, "{what} {verb}")
            }
            RecordKind::Transition => {
                let (from, to) = ((r.aux >> 32) as u16, r.aux as u16);
                let (from, to) = (sys.names.state_name(from), sys.names.state_name(to));
                let why = if kinds.iter().any(|(m, k)| *m == r.msg && *k == u64::from(u32::MAX)) {
                    " (deadline passed)"
                } else {
                    ""
                };
                write!(line, "{who} moved {entity_name} {} from {from} to {to}{why}", entity.0)
            }
        };
        lines.push(line);
    }
    flush(&mut lines, &mut repeats);
    // Still too long to read: keep the beginning and the end.
    const HEAD: usize = 30;
    const TAIL: usize = 10;
    if lines.len() > HEAD + TAIL + 1 {
        let omitted = lines.len() - HEAD - TAIL;
        let tail = lines.split_off(lines.len() - TAIL);
        lines.truncate(HEAD);
        lines.push(format!("{:>12}  ... {omitted} steps omitted ...", ""));
        lines.extend(tail);
    }
    lines.push(conclusion(checker, sys, faults, inv, entity, end));
    Story { entity: entity.0, lines }
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
        Some(LossReason::LeaderFailover) => {
            "the partition's leader crashed before a follower copied it, and the new leader never had it".to_string()
        }
        Some(LossReason::UncleanElection) => {
            "an out-of-sync replica was elected leader (unclean election) without it: an acknowledged write is gone"
                .to_string()
        }
        Some(LossReason::Partitioned) => "a network partition separated it from its destination".to_string(),
        Some(LossReason::Dropped) => "a faulty link dropped it".to_string(),
        Some(LossReason::Unflushed) => {
            "its broker crashed before writing it to disk, and no other copy had it".to_string()
        }
        Some(LossReason::ProducerGaveUp) => {
            "the producer gave it up: never acknowledged within its retries or its delivery timeout, or its \
             connection to the broker closed behind a partition"
                .to_string()
        }
        Some(LossReason::Retention) => format!("retention deleted it before {name}'s group read it{window}"),
        Some(LossReason::FailedDropped) => format!("{name}'s handler failed and nothing retries it"),
        Some(LossReason::CommittedUnprocessed) => {
            format!(
                "{name} had committed its offset before processing it, then crashed{window}: it is never redelivered"
            )
        }
        None => "unknown reason".to_string(),
    }
}

/// ` (inventory-1 down from 2m00.000s to 7m00.000s)` for the crash of any
/// instance of `node`'s service that covers `at`.
fn down_window(faults: &[AppliedFault], node: &str, at: SimTime) -> String {
    let service = node.rsplit_once('-').map_or(node, |(s, _)| s);
    let mut out = String::new();
    for f in faults {
        let (from, until) = (SimTime(f.from_ns), SimTime(f.until_ns));
        let same_service = f.node.rsplit_once('-').is_some_and(|(s, _)| s == service);
        if same_service && from <= at && at <= until {
            let _ = write!(out, " ({} down from {from} to {until})", f.node);
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

fn conclusion(
    checker: &Checker,
    sys: &System,
    faults: &[AppliedFault],
    inv: &InvariantSpec,
    entity: EntityId,
    end: SimTime,
) -> String {
    let entity_name = &sys.workload.entity;
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
        InvariantSpec::BoundedAmplification { service, factor } => format!(
            "=> {} handled more messages for {entity_name} {} than any other entity, and {} handled more than \
             {factor} messages per accepted {entity_name} in all",
            sys.services[*service].name, entity.0, sys.services[*service].name
        ),
        InvariantSpec::NoOversell { service } => format!(
            "=> {} handed {entity_name} {} a unit that was no longer there: the stock of its key went below zero",
            sys.services[*service].name, entity.0
        ),
        InvariantSpec::ReplicaConvergence { source, replica, table } => {
            let (source, replica) = (&sys.services[*source].name, &sys.services[*replica].name);
            format!(
                "=> this was the last change {source} made to its row in `{}`; after the run {replica}'s copy \
                 does not hold it",
                sys.names.table_name(*table)
            )
        }
        InvariantSpec::SagaAtomicity { steps, .. } => {
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
        InvariantSpec::LeadsTo { from, to, within } => {
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
        InvariantSpec::NeverWithout { event, prior } => {
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
    }
}
