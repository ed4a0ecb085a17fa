//! Shrinking a failing run: from a scenario and a seed under which an
//! invariant fails, remove and reduce what the failure does not need
//! (faults, services, fault durations, other invariants, the workload's
//! length and rate, the run's duration, instances and workers) while the same
//! invariant still fails under the same seed, in the manner of delta
//! debugging.
//!
//! Every candidate is a scenario file's text, parsed and compiled as a user
//! file is, so what comes out is a valid scenario. It works because every
//! concern draws from its own random stream: removing a fault does not
//! reshuffle the workload, so a smaller plan replays the same arrivals.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::scenario::schema::{Fault, Scenario, Workload};
use crate::scenario::{parse, to_ron};
use crate::sim::{SimDuration, parse_duration, run_bare_until};

/// Candidates tried, at most: a bound on the time a shrink takes.
pub const CANDIDATES_MAX: u32 = 2_000;

/// What a shrink found.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest failing scenario found.
    pub scenario: Scenario,
    /// The invariant that still fails.
    pub invariant: String,
    /// Candidates run.
    pub tried: u32,
    /// The reductions kept, in order, as readable lines.
    pub kept: Vec<String>,
}

/// Why there is nothing to shrink.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ShrinkError {
    /// The scenario does not fail under the seed.
    #[error("every invariant holds under seed {seed}: there is no failure to shrink")]
    NoFailure {
        /// The seed.
        seed: u64,
    },
    /// The named invariant does not fail under the seed.
    #[error("invariant `{name}` holds under seed {seed} (failing: {failing})")]
    Holds {
        /// The invariant asked for.
        name: String,
        /// The seed.
        seed: u64,
        /// The ones that fail.
        failing: String,
    },
    /// The scenario does not run.
    #[error("the scenario does not run: {0}")]
    Invalid(String),
    /// A SIGINT or SIGTERM stopped the shrink.
    #[error("interrupted: the shrink stopped before it finished")]
    Interrupted,
}

/// The names of the invariants that fail when `s` runs under `seed`, or
/// `None` if it does not compile or set up.
fn failing(s: &Scenario, seed: u64, stop: Option<&AtomicBool>) -> Option<Vec<String>> {
    let loaded = parse("candidate.ron", &to_ron(s)).ok()?;
    let (outcome, _) = run_bare_until(&loaded.system, seed, stop).ok()?;
    Some(outcome.invariants.iter().filter(|v| v.violated()).map(|v| v.name.clone()).collect())
}

struct Shrinker<'a> {
    /// Set by a signal: try no more candidates.
    stop: Option<&'a AtomicBool>,
    interrupted: bool,
    best: Scenario,
    seed: u64,
    invariant: String,
    tried: u32,
    kept: Vec<(String, String)>,
}

impl Shrinker<'_> {
    /// Keeps `candidate` if the invariant still fails under it. Successive
    /// reductions of one thing (`key`) are told as one line.
    fn try_keep(&mut self, candidate: Scenario, key: &str, what: String) -> bool {
        self.interrupted |= self.stop.is_some_and(|s| s.load(Ordering::Relaxed));
        if self.interrupted || self.tried >= CANDIDATES_MAX || candidate == self.best {
            return false;
        }
        self.tried += 1;
        let still = failing(&candidate, self.seed, self.stop).is_some_and(|f| f.contains(&self.invariant));
        if still {
            self.best = candidate;
            match self.kept.last_mut() {
                Some((k, last)) if k == key && !key.is_empty() => *last = what,
                _ => self.kept.push((key.to_string(), what)),
            }
        }
        still
    }

    /// Removes faults: halves, then quarters, ... then one at a time.
    fn faults(&mut self) -> bool {
        let mut progress = false;
        let mut chunk = self.best.faults.len().div_ceil(2);
        while chunk >= 1 && !self.best.faults.is_empty() {
            let mut i = 0;
            while i < self.best.faults.len() {
                let end = (i + chunk).min(self.best.faults.len());
                let mut c = self.best.clone();
                let removed: Vec<String> = c.faults.drain(i..end).map(|f| describe(&f)).collect();
                let what = format!("removed {}", removed.join(", "));
                if self.try_keep(c, "", what) {
                    progress = true;
                } else {
                    i = end;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
        progress
    }

    /// Halves a duration field of each fault while the failure stays.
    fn fault_durations(&mut self) -> bool {
        let mut progress = false;
        for i in 0..self.best.faults.len() {
            loop {
                let mut c = self.best.clone();
                let Some((field, slot)) = duration_of(&mut c.faults[i]) else { break };
                let Some(half) = halve(slot) else { break };
                *slot = half.clone();
                let key = format!("{field} of {}", describe(&self.best.faults[i]));
                let what = format!("{key} down to {half}");
                if !self.try_keep(c, &key, what) {
                    break;
                }
                progress = true;
            }
        }
        progress
    }

    /// Keeps only the failing invariant.
    fn invariants(&mut self) -> bool {
        let Ok(loaded) = parse("best.ron", &to_ron(&self.best)) else { return false };
        let names: Vec<String> = loaded.system.invariants.iter().map(|i| i.name(&loaded.system.names)).collect();
        let Some(keep) = names.iter().position(|n| *n == self.invariant) else { return false };
        if names.len() == 1 {
            return false;
        }
        let mut c = self.best.clone();
        c.invariants = vec![c.invariants[keep].clone()];
        let what = format!("removed the other invariants ({})", names.len() - 1);
        self.try_keep(c, "", what)
    }

    /// Shortens the workload (its last arrival, then its rate) and the run.
    fn workload_and_duration(&mut self) -> bool {
        let mut progress = false;
        loop {
            let mut c = self.best.clone();
            let duration = c.duration.clone();
            let Some(w) = c.workload.as_mut().or(c.workloads.first_mut()) else { break };
            let (start, stop) = w.window_mut();
            let from = start.as_deref().map_or(Some(SimDuration::ZERO), |t| parse_duration(t).ok());
            let until = stop.as_deref().or(Some(duration.as_str())).and_then(|t| parse_duration(t).ok());
            let (Some(from), Some(until)) = (from, until) else { break };
            if until.0 <= from.0 + 1_000_000_000 {
                break;
            }
            let mid = SimDuration(from.0 + (until.0 - from.0) / 2).to_string();
            *stop = Some(mid.clone());
            if !self.try_keep(c, "stop", format!("workload stops at {mid}")) {
                break;
            }
            progress = true;
        }
        loop {
            let mut c = self.best.clone();
            let Some(rate) = c.workload.as_mut().or(c.workloads.first_mut()).and_then(Workload::rate_mut) else {
                break;
            };
            let Some(half) = halve_rate(rate) else { break };
            *rate = half.clone();
            if !self.try_keep(c, "rate", format!("workload rate down to {half}")) {
                break;
            }
            progress = true;
        }
        loop {
            let mut c = self.best.clone();
            let Some(half) = halve(&c.duration) else { break };
            c.duration = half.clone();
            if !self.try_keep(c, "duration", format!("the run ends at {half}")) {
                break;
            }
            progress = true;
        }
        progress
    }

    /// Removes services the failure does not need. A service that others
    /// depend on (a topic only it emits, a call to it, a fault or invariant
    /// that names it) leaves a candidate that does not compile, so it stays.
    fn services(&mut self) -> bool {
        let mut progress = false;
        let mut i = self.best.services.len();
        while i > 0 {
            i -= 1;
            if self.best.services.len() == 1 {
                break;
            }
            let mut c = self.best.clone();
            let gone = c.services.remove(i);
            if self.try_keep(c, "", format!("removed service {}", gone.name)) {
                progress = true;
            }
        }
        progress
    }

    /// Fewer instances and workers per service.
    fn deployment(&mut self) -> bool {
        let mut progress = false;
        for i in 0..self.best.services.len() {
            for which in ["instances", "workers"] {
                loop {
                    let mut c = self.best.clone();
                    let sv = &mut c.services[i];
                    let n = if which == "instances" { &mut sv.instances } else { &mut sv.workers };
                    if *n <= 1 {
                        break;
                    }
                    *n /= 2;
                    let key = format!("{} {which}", sv.name);
                    let what = format!("{} has {} {which}", sv.name, *n);
                    if !self.try_keep(c, &key, what) {
                        break;
                    }
                    progress = true;
                }
            }
        }
        progress
    }
}

/// Shrinks `original` while `invariant` (default: the first that fails)
/// still fails under `seed`.
pub fn shrink(original: &Scenario, seed: u64, invariant: Option<&str>) -> Result<Shrunk, ShrinkError> {
    shrink_until(original, seed, invariant, None)
}

/// [`shrink`] that gives up with [`ShrinkError::Interrupted`] soon after
/// `stop` becomes true.
pub fn shrink_until(
    original: &Scenario,
    seed: u64,
    invariant: Option<&str>,
    stop: Option<&AtomicBool>,
) -> Result<Shrunk, ShrinkError> {
    let loaded = parse("original.ron", &to_ron(original)).map_err(|e| ShrinkError::Invalid(e.to_string()))?;
    let (outcome, _) = run_bare_until(&loaded.system, seed, stop).map_err(|e| ShrinkError::Invalid(e.to_string()))?;
    if outcome.stopped_by == crate::outcome::StopReason::Interrupted {
        return Err(ShrinkError::Interrupted);
    }
    let failing: Vec<String> = outcome.invariants.iter().filter(|v| v.violated()).map(|v| v.name.clone()).collect();
    let invariant = match invariant {
        None => failing.first().cloned().ok_or(ShrinkError::NoFailure { seed })?,
        Some(name) if failing.iter().any(|f| f == name) => name.to_string(),
        Some(name) => {
            return Err(ShrinkError::Holds { name: name.to_string(), seed, failing: failing.join(", ") });
        }
    };
    let mut s =
        Shrinker { stop, interrupted: false, best: original.clone(), seed, invariant, tried: 0, kept: Vec::new() };
    s.best.seed = seed;
    s.invariants();
    // Until a whole round keeps nothing: each reduction can open the way to another.
    loop {
        let mut progress = s.faults();
        progress |= s.services();
        progress |= s.fault_durations();
        progress |= s.workload_and_duration();
        progress |= s.deployment();
        if !progress || s.tried >= CANDIDATES_MAX || s.interrupted {
            break;
        }
    }
    if s.interrupted {
        return Err(ShrinkError::Interrupted);
    }
    let kept = s.kept.into_iter().map(|(_, what)| what).collect();
    Ok(Shrunk { scenario: s.best, invariant: s.invariant, tried: s.tried, kept })
}

/// The shrunk scenario as a file: a header that says where it comes from
/// and what still fails, then the scenario.
pub fn render(shrunk: &Shrunk, from_file: &str, out_file: &str, seed: u64, secs: f64) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "// Shrunk by `faultline shrink` from {from_file} under seed {seed}:");
    let _ = writeln!(
        text,
        "// {} reductions kept of {} candidates tried, in {secs:.1} s.",
        shrunk.kept.len(),
        shrunk.tried
    );
    let _ = writeln!(text, "// It still fails {} under seed {seed}, its default seed:", shrunk.invariant);
    let _ = writeln!(text, "//     faultline run {out_file}");
    if !shrunk.kept.is_empty() {
        let _ = writeln!(text, "// What was taken away:");
        for k in &shrunk.kept {
            let _ = writeln!(text, "//   - {k}");
        }
    }
    text.push_str(&to_ron(&shrunk.scenario));
    text.push('\n');
    text
}

/// A fault in a few words.
fn describe(f: &Fault) -> String {
    match f {
        Fault::Crash { node, at, .. } => format!("Crash({node} at {at})"),
        Fault::CrashAt { node, seam, .. } => format!("CrashAt({node}, {seam:?})"),
        Fault::Partition { groups, at, .. } => format!("Partition({groups:?} at {at})"),
        Fault::Link { from, to, at, .. } => format!("Link({from} -> {to} at {at})"),
        Fault::ClockSkew { node, at, .. } => format!("ClockSkew({node} at {at})"),
        Fault::Slow { node, at, .. } => format!("Slow({node} at {at})"),
        Fault::Pause { node, at, .. } => format!("Pause({node} at {at})"),
        Fault::Rewind { service, at, .. } => format!("Rewind({service} at {at})"),
        Fault::RollingDeploy { service, version, at, .. } => format!("RollingDeploy({service} to v{version} at {at})"),
        Fault::RandomCrashes { nodes, .. } => format!("RandomCrashes({})", nodes.join(", ")),
        Fault::RandomPauses { nodes, .. } => format!("RandomPauses({})", nodes.join(", ")),
        Fault::RandomSlowdowns { nodes, .. } => format!("RandomSlowdowns({})", nodes.join(", ")),
        Fault::RandomPartitions { nodes, .. } => format!("RandomPartitions({})", nodes.join(", ")),
        Fault::RandomLossyLinks { nodes, .. } => format!("RandomLossyLinks({})", nodes.join(", ")),
        Fault::RandomClockSkews { nodes, .. } => format!("RandomClockSkews({})", nodes.join(", ")),
    }
}

/// The duration field of a fault that shrinking shortens: how long it lasts.
fn duration_of(f: &mut Fault) -> Option<(&'static str, &mut String)> {
    match f {
        Fault::Crash { down_for, .. } | Fault::CrashAt { down_for, .. } => Some(("down_for", down_for)),
        Fault::Rewind { .. } => None,
        Fault::RollingDeploy { .. } => None,
        Fault::Partition { lasting, .. }
        | Fault::Link { lasting, .. }
        | Fault::ClockSkew { lasting, .. }
        | Fault::Slow { lasting, .. }
        | Fault::Pause { lasting, .. } => Some(("for", lasting)),
        Fault::RandomCrashes { mttr, .. }
        | Fault::RandomPauses { mttr, .. }
        | Fault::RandomSlowdowns { mttr, .. }
        | Fault::RandomPartitions { mttr, .. }
        | Fault::RandomLossyLinks { mttr, .. }
        | Fault::RandomClockSkews { mttr, .. } => Some(("mttr", mttr)),
    }
}

/// Half of a duration, written as faultline writes durations; `None` below a millisecond.
fn halve(text: &str) -> Option<String> {
    let d = parse_duration(text).ok()?;
    (d.0 >= 2_000_000).then(|| SimDuration(d.0 / 2).to_string())
}

/// Half of a rate such as `"50/s"`; `None` below one per unit.
fn halve_rate(text: &str) -> Option<String> {
    let (n, unit) = text.split_once('/')?;
    let n: f64 = n.trim().parse().ok()?;
    (n >= 2.0).then(|| format!("{}/{}", (n / 2.0 * 1000.0).round() / 1000.0, unit.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates_halve_as_faultline_writes_them() {
        assert_eq!(halve("5m").as_deref(), Some("2m30.000s"));
        assert_eq!(halve("1ms"), None);
        assert_eq!(halve_rate("50/s").as_deref(), Some("25/s"));
        assert_eq!(halve_rate("3/m").as_deref(), Some("1.5/m"));
        assert_eq!(halve_rate("1/s"), None);
    }
}
