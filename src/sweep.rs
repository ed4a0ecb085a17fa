//! Many seeds of one scenario: run them on rayon, fold their verdicts in
//! seed order into a [`Tally`] of fixed size, and merge tallies of
//! contiguous seed ranges (shards) into exactly the tally one sweep over the
//! whole range gives.
//!
//! Nothing per seed is kept but the first failing seeds (capped): memory
//! stays flat however many seeds run. Results are folded in seed order
//! whatever the number of threads, and every aggregate is an integer sum or
//! a histogram merge, so a tally does not depend on `--jobs`.

use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::check::Verdict;
use crate::metrics::{Histogram, LatencySummary};
use crate::outcome::{Outcome, RunVerdict, StopReason};
use crate::sim::{SetupError, run_bare_until};
use crate::system::System;

/// Failing seeds listed per invariant.
pub const FIRST_FAILING: usize = 10;
/// Failing seeds kept in all (the count goes on past it).
pub const FAILING_KEPT: usize = 1_000;
/// Seeds folded at a time: enough to keep every thread busy, few enough
/// to answer an interrupt soon and to keep memory flat.
const CHUNK: u64 = 256;

/// A half-open range of seeds, `A..B`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedRange {
    /// The first seed.
    pub start: u64,
    /// One past the last seed.
    pub end: u64,
}

impl SeedRange {
    /// Number of seeds.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// True when it holds no seed.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The `k`-th (from 1) of `n` contiguous slices, as even as they can be.
    pub fn shard(&self, s: Shard) -> SeedRange {
        let len = u128::from(self.len());
        let at = |i: u64| self.start + (len * u128::from(i) / u128::from(s.n)) as u64;
        SeedRange { start: at(s.k - 1), end: at(s.k) }
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

impl FromStr for SeedRange {
    type Err = String;
    fn from_str(s: &str) -> Result<SeedRange, String> {
        let bad = || format!("expected a seed range such as 0..1000 (the end excluded), found {s:?}");
        let (a, b) = s.split_once("..").ok_or_else(bad)?;
        let start: u64 = a.trim().parse().map_err(|_| bad())?;
        let end: u64 = b.trim().parse().map_err(|_| bad())?;
        if end <= start {
            return Err(format!("the seed range {s} is empty: the end is excluded, so write {start}..{}", start + 1));
        }
        Ok(SeedRange { start, end })
    }
}

/// The `k`-th of `n` slices of a seed range, `K/N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// From 1.
    pub k: u64,
    /// Slices in all.
    pub n: u64,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("expected a shard such as 2/8 (the 2nd of 8, from 1), found {s:?}");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (u64, u64) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if n == 0 || k == 0 || k > n {
            return Err(format!("shard {s}: K must be from 1 to N"));
        }
        Ok(Shard { k, n })
    }
}

/// One invariant over the seeds of a tally.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvariantTally {
    /// Its name.
    pub name: String,
    /// Seeds under which it failed.
    pub failing: u64,
    /// The first of them, at most [`FIRST_FAILING`].
    pub first_failing: Vec<u64>,
    /// Seeds under which it judged nothing.
    #[serde(default)]
    pub inconclusive: u64,
}

/// What a sweep over a contiguous range of seeds found: the state a shard
/// writes and a merge combines. Fixed in size but for the capped lists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tally {
    /// The scenario's name.
    pub scenario: String,
    /// The scenario file as given.
    pub file: String,
    /// Hash of the scenario text: shards of different texts do not merge.
    pub scenario_hash: String,
    /// The seeds covered.
    pub range: SeedRange,
    /// Per invariant, in scenario order.
    pub invariants: Vec<InvariantTally>,
    /// Seeds under which some invariant failed.
    pub failing: u64,
    /// The first of them, at most [`FAILING_KEPT`].
    pub failing_seeds: Vec<u64>,
    /// The fingerprints of the first [`REPRODUCE`] failing seeds' runs.
    pub failing_fingerprints: Vec<String>,
    /// Seeds under which nothing failed but the run was inconclusive (an
    /// invariant judged nothing, or a fault did not take effect).
    #[serde(default)]
    pub inconclusive: u64,
    /// The first of them, at most [`FIRST_FAILING`].
    #[serde(default)]
    pub inconclusive_seeds: Vec<u64>,
    /// Events processed, over all seeds.
    pub events: u64,
    /// Entities accepted and completed, over all seeds.
    pub accepted: u64,
    /// Entities that reached a terminal state.
    pub completed: u64,
    /// Messages lost, over all seeds.
    pub lost: u64,
    /// Extra applications of effects that must happen once, over all seeds.
    pub duplicated: u64,
    /// Messages delivered again, over all seeds.
    pub redelivered: u64,
    /// Seeds whose run stopped at a limit (`events_max`, `entities_max`).
    pub stopped_at_limit: u64,
    /// End-to-end latency of every completed entity of every seed (ns).
    pub e2e_ns: Histogram,
    /// Messages lost per seed.
    pub lost_per_seed: Histogram,
}

/// What one seed contributes to a tally.
struct SeedResult {
    seed: u64,
    fingerprint: String,
    failed: Vec<bool>,
    /// Per invariant: it judged nothing.
    empty: Vec<bool>,
    /// Nothing failed, but the run was inconclusive.
    inconclusive: bool,
    events: u64,
    accepted: u64,
    completed: u64,
    lost: u64,
    duplicated: u64,
    redelivered: u64,
    limit: bool,
    e2e: Histogram,
}

impl SeedResult {
    fn of(seed: u64, outcome: &Outcome, e2e: Histogram) -> SeedResult {
        let m = &outcome.metrics;
        SeedResult {
            seed,
            fingerprint: outcome.fingerprint.clone(),
            failed: outcome.invariants.iter().map(Verdict::violated).collect(),
            empty: outcome.invariants.iter().map(Verdict::is_inconclusive).collect(),
            inconclusive: outcome.verdict() == RunVerdict::Inconclusive,
            events: outcome.events,
            accepted: m.accepted,
            completed: m.completed,
            lost: m.lost,
            duplicated: outcome.invariants.iter().filter_map(|v| v.counts.get("extra_applications")).sum(),
            redelivered: m.redelivered,
            limit: outcome.stopped_by != StopReason::Completed,
            e2e,
        }
    }
}

impl Tally {
    /// An empty tally of `sys` starting at `start`.
    pub fn new(sys: &System, file: &str, scenario_hash: &str, start: u64) -> Tally {
        let names = &sys.names;
        Tally {
            scenario: sys.name.clone(),
            file: file.to_string(),
            scenario_hash: scenario_hash.to_string(),
            range: SeedRange { start, end: start },
            invariants: sys
                .invariants
                .iter()
                .map(|i| InvariantTally { name: i.name(names), failing: 0, first_failing: Vec::new(), inconclusive: 0 })
                .collect(),
            failing: 0,
            failing_seeds: Vec::new(),
            failing_fingerprints: Vec::new(),
            inconclusive: 0,
            inconclusive_seeds: Vec::new(),
            events: 0,
            accepted: 0,
            completed: 0,
            lost: 0,
            duplicated: 0,
            redelivered: 0,
            stopped_at_limit: 0,
            e2e_ns: Histogram::default(),
            lost_per_seed: Histogram::default(),
        }
    }

    /// Number of seeds covered.
    pub fn seeds(&self) -> u64 {
        self.range.len()
    }

    /// Whether a tally read from a file is one a sweep could have written:
    /// its counts of seeds fit its range (a file edited by hand, or cut
    /// short and patched, is refused rather than summed).
    pub fn check(&self) -> Result<(), String> {
        let seeds = self.seeds();
        let bad = |what: &str| Err(format!("inconsistent results ({what}, seeds {}): edited by hand?", self.range));
        if self.range.end < self.range.start {
            return bad("the range ends before it starts");
        }
        if self.failing > seeds || self.inconclusive > seeds || self.stopped_at_limit > seeds {
            return bad(&format!("{} failing, {} inconclusive", self.failing, self.inconclusive));
        }
        if self.invariants.iter().any(|i| i.failing > self.failing || i.inconclusive > seeds) {
            return bad("an invariant fails more often than the seeds do");
        }
        if self.lost_per_seed.count() != seeds {
            return bad(&format!("{} seeds counted in lost_per_seed", self.lost_per_seed.count()));
        }
        Ok(())
    }

    /// Adds the next seed's result (seeds come in order).
    fn add(&mut self, r: &SeedResult) {
        debug_assert_eq!(r.seed, self.range.end);
        self.range.end = r.seed + 1;
        for ((inv, &failed), &empty) in self.invariants.iter_mut().zip(&r.failed).zip(&r.empty) {
            if failed {
                inv.failing += 1;
                if inv.first_failing.len() < FIRST_FAILING {
                    inv.first_failing.push(r.seed);
                }
            }
            inv.inconclusive += u64::from(empty);
        }
        if r.inconclusive {
            self.inconclusive += 1;
            if self.inconclusive_seeds.len() < FIRST_FAILING {
                self.inconclusive_seeds.push(r.seed);
            }
        }
        if r.failed.iter().any(|f| *f) {
            self.failing += 1;
            if self.failing_seeds.len() < FAILING_KEPT {
                self.failing_seeds.push(r.seed);
            }
            if self.failing_fingerprints.len() < REPRODUCE {
                self.failing_fingerprints.push(r.fingerprint.clone());
            }
        }
        self.events += r.events;
        self.accepted += r.accepted;
        self.completed += r.completed;
        self.lost += r.lost;
        self.duplicated += r.duplicated;
        self.redelivered += r.redelivered;
        self.stopped_at_limit += u64::from(r.limit);
        self.e2e_ns.merge(&r.e2e);
        self.lost_per_seed.record(r.lost);
    }

    /// Appends `next`, the tally of the seeds right after these: the result
    /// is the tally one sweep over both ranges gives.
    pub fn append(&mut self, next: &Tally) -> Result<(), MergeError> {
        if next.scenario_hash != self.scenario_hash {
            return Err(MergeError::Different { a: self.file.clone(), b: next.file.clone() });
        }
        if next.range.start != self.range.end {
            return Err(MergeError::Gap { before: self.range, after: next.range });
        }
        self.range.end = next.range.end;
        for (a, b) in self.invariants.iter_mut().zip(&next.invariants) {
            a.failing = a.failing.saturating_add(b.failing);
            a.inconclusive = a.inconclusive.saturating_add(b.inconclusive);
            let room = FIRST_FAILING.saturating_sub(a.first_failing.len());
            a.first_failing.extend(b.first_failing.iter().take(room));
        }
        self.failing = self.failing.saturating_add(next.failing);
        let room = FAILING_KEPT.saturating_sub(self.failing_seeds.len());
        self.failing_seeds.extend(next.failing_seeds.iter().take(room));
        let room = REPRODUCE.saturating_sub(self.failing_fingerprints.len());
        self.failing_fingerprints.extend(next.failing_fingerprints.iter().take(room).cloned());
        self.inconclusive = self.inconclusive.saturating_add(next.inconclusive);
        let room = FIRST_FAILING.saturating_sub(self.inconclusive_seeds.len());
        self.inconclusive_seeds.extend(next.inconclusive_seeds.iter().take(room));
        self.events = self.events.saturating_add(next.events);
        self.accepted = self.accepted.saturating_add(next.accepted);
        self.completed = self.completed.saturating_add(next.completed);
        self.lost = self.lost.saturating_add(next.lost);
        self.duplicated = self.duplicated.saturating_add(next.duplicated);
        self.redelivered = self.redelivered.saturating_add(next.redelivered);
        self.stopped_at_limit = self.stopped_at_limit.saturating_add(next.stopped_at_limit);
        self.e2e_ns.merge(&next.e2e_ns);
        self.lost_per_seed.merge(&next.lost_per_seed);
        Ok(())
    }

    /// Merges the tallies of contiguous shards, in any order, into one.
    pub fn merge(mut parts: Vec<Tally>) -> Result<Tally, MergeError> {
        parts.sort_by_key(|t| (t.range.start, t.range.end));
        let mut parts = parts.into_iter();
        let mut all = parts.next().ok_or(MergeError::Nothing)?;
        for p in parts {
            all.append(&p)?;
        }
        Ok(all)
    }
}

/// Why tallies do not merge.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    /// There were none.
    #[error("no shard results to merge")]
    Nothing,
    /// They come from different scenario texts.
    #[error("{a} and {b} are results of different scenarios (or versions of one): they do not merge")]
    Different {
        /// One file.
        a: String,
        /// The other.
        b: String,
    },
    /// Their ranges leave a gap or overlap.
    #[error("the shards do not cover one range: {before} is followed by {after}")]
    Gap {
        /// The range before.
        before: SeedRange,
        /// The range after.
        after: SeedRange,
    },
}

/// The 95% Wilson score interval of `k` successes in `n` trials.
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054_f64;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    // At the ends the bound is exact: no failure, no lower bound above 0.
    let lo = if k == 0.0 { 0.0 } else { (center - half).max(0.0) };
    let hi = if k == n { 1.0 } else { (center + half).min(1.0) };
    (lo, hi)
}

/// A hook called with each seed and its outcome.
pub type EachSeed<'a> = dyn Fn(u64, &Outcome) + Sync + 'a;

/// How a sweep runs: threads, progress and interruption.
pub struct Options<'a> {
    /// Threads (rayon's pool).
    pub jobs: usize,
    /// Called after each seed with (seeds done, failing so far); from any thread.
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
    /// Set to stop: seeds under way stop within a few thousand events and
    /// count for nothing, seeds not started are skipped, and the tally covers
    /// the seeds finished before the first skipped one.
    pub stop: &'a AtomicBool,
    /// Called with each seed's outcome (no stories), from any thread, in any order.
    pub each: Option<&'a EachSeed<'a>>,
}

/// Runs `sys` under every seed of `range` and folds the results in seed
/// order. An interrupted sweep returns the tally of the seeds finished (a
/// prefix of the range) and `false`.
pub fn sweep(
    sys: &System,
    file: &str,
    scenario_hash: &str,
    range: SeedRange,
    opts: &Options<'_>,
) -> Result<(Tally, bool), SetupError> {
    let mut tally = Tally::new(sys, file, scenario_hash, range.start);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(opts.jobs.max(1)).build().expect("a thread pool");
    let (done, failing) = (AtomicU64::new(0), AtomicU64::new(0));
    let mut at = range.start;
    while at < range.end {
        let end = at.saturating_add(CHUNK).min(range.end);
        let results: Vec<Option<Result<SeedResult, SetupError>>> = pool.install(|| {
            (at..end)
                .into_par_iter()
                .map(|seed| {
                    if opts.stop.load(Ordering::Relaxed) {
                        return None;
                    }
                    let r = run_bare_until(sys, seed, Some(opts.stop));
                    // A seed cut short by the stop is not a result.
                    if r.as_ref().is_ok_and(|(o, _)| o.stopped_by == StopReason::Interrupted) {
                        return None;
                    }
                    let r = r.map(|(o, e2e)| {
                        if let Some(each) = opts.each {
                            each(seed, &o);
                        }
                        SeedResult::of(seed, &o, e2e)
                    });
                    let failed = r.as_ref().is_ok_and(|r| r.failed.iter().any(|f| *f));
                    let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                    let f = failing.fetch_add(u64::from(failed), Ordering::Relaxed) + u64::from(failed);
                    if let Some(p) = opts.progress {
                        p(d, f);
                    }
                    Some(r)
                })
                .collect()
        });
        for r in results {
            match r {
                Some(r) => tally.add(&r?),
                None => return Ok((tally, false)),
            }
        }
        at = end;
    }
    Ok((tally, true))
}

/// A sweep's summary, as `--json` prints it: every field but the
/// wall-clock ones (`wall_ms`, `jobs`, `seeds_per_s`, `events_per_s`) is
/// the same for any number of jobs and for the merge of its shards.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The scenario's name.
    pub scenario: String,
    /// The scenario file.
    pub file: String,
    /// The seeds, `A..B`.
    pub range: String,
    /// How many.
    pub seeds: u64,
    /// False when the sweep was interrupted: it covers the seeds finished.
    pub complete: bool,
    /// Per invariant.
    pub invariants: Vec<InvariantSummary>,
    /// Seeds under which some invariant failed.
    pub failing: u64,
    /// The first of them (at most 1,000).
    pub failing_seeds: Vec<u64>,
    /// Seeds under which nothing failed but the run was inconclusive.
    pub inconclusive: u64,
    /// The first of them (at most 10).
    pub inconclusive_seeds: Vec<u64>,
    /// Aggregates over all seeds.
    pub metrics: SweepMetrics,
    /// How to reproduce the first failing seeds, and what their runs' fingerprints were.
    pub reproduce: Vec<Reproduce>,
    /// Wall-clock and machine figures (absent from a merge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<u64>,
    /// Threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<usize>,
    /// Seeds per second of wall time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seeds_per_s: Option<f64>,
    /// Events per second of wall time, all threads together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_per_s: Option<f64>,
}

/// A failing seed, the command that reruns it, and the fingerprint the rerun gives.
#[derive(Clone, Debug, Serialize)]
pub struct Reproduce {
    /// The seed.
    pub seed: u64,
    /// `faultline run FILE --seed N`.
    pub command: String,
    /// The run's fingerprint.
    pub fingerprint: String,
}

/// One invariant over a sweep.
#[derive(Clone, Debug, Serialize)]
pub struct InvariantSummary {
    /// Its name.
    pub name: String,
    /// Seeds under which it failed.
    pub failing: u64,
    /// `failing / seeds`.
    pub rate: f64,
    /// The 95% Wilson interval of the rate.
    pub ci95: [f64; 2],
    /// The first failing seeds.
    pub first_failing: Vec<u64>,
    /// Seeds under which it judged nothing.
    pub inconclusive: u64,
}

/// Aggregates over the seeds of a sweep.
#[derive(Clone, Debug, Serialize)]
pub struct SweepMetrics {
    /// Events, in all.
    pub events: u64,
    /// Entities accepted, in all.
    pub accepted: u64,
    /// Entities completed, in all.
    pub completed: u64,
    /// Messages lost, in all.
    pub lost: u64,
    /// Messages lost per seed: mean, p50, p99, max.
    pub lost_per_seed: SpreadSummary,
    /// Extra applications of once-only effects, in all.
    pub duplicated: u64,
    /// Messages delivered again, in all.
    pub redelivered: u64,
    /// Seeds whose run stopped at a limit.
    pub stopped_at_limit: u64,
    /// End-to-end latency over every completed entity of every seed.
    pub e2e_latency_s: LatencySummary,
}

/// A count's spread over seeds.
#[derive(Clone, Debug, Serialize)]
pub struct SpreadSummary {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

/// Wall-clock figures of a sweep.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Wall time.
    pub wall_ms: u64,
    /// Threads.
    pub jobs: usize,
}

/// Failing seeds whose reproducing command a summary shows.
pub const REPRODUCE: usize = 5;

impl Summary {
    /// The summary of `t`; `timing` for a sweep, `None` for a merge.
    pub fn of(t: &Tally, complete: bool, timing: Option<Timing>) -> Summary {
        let n = t.seeds();
        let secs = timing.map(|x| (x.wall_ms as f64 / 1e3).max(1e-3));
        let h = &t.lost_per_seed;
        Summary {
            scenario: t.scenario.clone(),
            file: t.file.clone(),
            range: t.range.to_string(),
            seeds: n,
            complete,
            invariants: t
                .invariants
                .iter()
                .map(|i| {
                    let (lo, hi) = wilson(i.failing, n);
                    InvariantSummary {
                        name: i.name.clone(),
                        failing: i.failing,
                        rate: if n == 0 { 0.0 } else { i.failing as f64 / n as f64 },
                        ci95: [lo, hi],
                        first_failing: i.first_failing.clone(),
                        inconclusive: i.inconclusive,
                    }
                })
                .collect(),
            failing: t.failing,
            failing_seeds: t.failing_seeds.clone(),
            inconclusive: t.inconclusive,
            inconclusive_seeds: t.inconclusive_seeds.clone(),
            metrics: SweepMetrics {
                events: t.events,
                accepted: t.accepted,
                completed: t.completed,
                lost: t.lost,
                lost_per_seed: SpreadSummary {
                    mean: h.mean(),
                    p50: h.quantile(0.5),
                    p99: h.quantile(0.99),
                    max: if h.count() == 0 { 0 } else { h.quantile(1.0) },
                },
                duplicated: t.duplicated,
                redelivered: t.redelivered,
                stopped_at_limit: t.stopped_at_limit,
                e2e_latency_s: t.e2e_ns.summary_s(),
            },
            reproduce: t
                .failing_seeds
                .iter()
                .zip(&t.failing_fingerprints)
                .map(|(&seed, fp)| Reproduce {
                    seed,
                    command: format!("faultline run {} --seed {seed}", t.file),
                    fingerprint: fp.clone(),
                })
                .collect(),
            wall_ms: timing.map(|x| x.wall_ms),
            jobs: timing.map(|x| x.jobs),
            seeds_per_s: secs.map(|s| n as f64 / s),
            events_per_s: secs.map(|s| t.events as f64 / s),
        }
    }

    /// What the sweep says as a whole: violated if a seed failed, else
    /// inconclusive if a seed was, else held.
    pub fn verdict(&self) -> RunVerdict {
        if self.failing > 0 {
            RunVerdict::Violated
        } else if self.inconclusive > 0 {
            RunVerdict::Inconclusive
        } else {
            RunVerdict::Holds
        }
    }

    /// The human summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        // Small rates keep their digits: an upper bound of 0.02% is not 0.0%.
        let pct =
            |x: f64| if x > 0.0 && x < 0.001 { format!("{:.3}%", x * 100.0) } else { format!("{:.1}%", x * 100.0) };
        let _ = writeln!(s, "scenario    {}", self.scenario);
        let _ = write!(s, "seeds       {} ({} seeds)", self.range, thousands(self.seeds));
        if let (Some(ms), Some(jobs), Some(sps)) = (self.wall_ms, self.jobs, self.seeds_per_s) {
            let _ = write!(s, " in {:.1} s wall on {jobs} jobs, {sps:.1} seeds/s", ms as f64 / 1e3);
        }
        s.push('\n');
        if !self.complete {
            let _ = writeln!(s, "INTERRUPTED: the figures below cover the {} seeds finished", thousands(self.seeds));
        }
        s.push('\n');
        for i in &self.invariants {
            let verdict = match (i.failing, i.inconclusive) {
                (0, 0) => "PASS",
                (0, _) => "INCONCLUSIVE",
                _ => "FAIL",
            };
            let _ = write!(
                s,
                "{verdict}  {}: {} of {} seeds ({}, 95% CI {} to {})",
                i.name,
                thousands(i.failing),
                thousands(self.seeds),
                pct(i.rate),
                pct(i.ci95[0]),
                pct(i.ci95[1])
            );
            if !i.first_failing.is_empty() {
                let first: Vec<String> = i.first_failing.iter().map(u64::to_string).collect();
                let _ = write!(s, "; first: {}", first.join(", "));
            }
            if i.inconclusive > 0 {
                let _ = write!(s, "; judged nothing under {} seeds", thousands(i.inconclusive));
            }
            s.push('\n');
        }
        let m = &self.metrics;
        s.push('\n');
        let _ = writeln!(
            s,
            "entities    {} accepted, {} completed, over all seeds",
            thousands(m.accepted),
            thousands(m.completed)
        );
        let _ = writeln!(
            s,
            "messages    {} lost (per seed: mean {:.1}, p50 {}, p99 {}, max {}), {} duplicated effects, {} redelivered",
            thousands(m.lost),
            m.lost_per_seed.mean,
            m.lost_per_seed.p50,
            m.lost_per_seed.p99,
            m.lost_per_seed.max,
            thousands(m.duplicated),
            thousands(m.redelivered)
        );
        let l = &m.e2e_latency_s;
        let never = m.accepted.saturating_sub(m.completed);
        let left_out = if never > 0 {
            format!("; {} accepted never completed and are not in it", thousands(never))
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "latency     end to end over all seeds, of the {} completed{left_out}: mean {}, p50 {}, p99 {}, max {}",
            thousands(m.completed),
            secs(l.mean),
            secs(l.p50),
            secs(l.p99),
            secs(l.max)
        );
        let _ = writeln!(s, "events      {}", thousands(m.events));
        if m.stopped_at_limit > 0 {
            let _ = writeln!(s, "limits      {} seeds stopped at a limit", thousands(m.stopped_at_limit));
        }
        if self.inconclusive > 0 {
            let shown: Vec<String> = self.inconclusive_seeds.iter().map(u64::to_string).collect();
            let more = if self.inconclusive > shown.len() as u64 { ", ..." } else { "" };
            let _ = writeln!(
                s,
                "inconclusive {} seeds: {}{more} (an invariant judged nothing, or a fault did not take effect: \
                 run one to see why)",
                thousands(self.inconclusive),
                shown.join(", ")
            );
        }
        if self.failing > 0 {
            let shown: Vec<String> = self.failing_seeds.iter().take(20).map(u64::to_string).collect();
            let more = if self.failing > 20 { ", ..." } else { "" };
            let _ = writeln!(s, "failing     {} seeds: {}{more}", thousands(self.failing), shown.join(", "));
            for (i, r) in self.reproduce.iter().enumerate() {
                let lead = if i == 0 { "reproduce   " } else { "            " };
                let _ = writeln!(s, "{lead}{}    (fingerprint {})", r.command, r.fingerprint);
            }
        }
        s
    }
}

use crate::format::{secs, thousands};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_shards_parse_and_split_evenly() {
        let r: SeedRange = "10..20".parse().unwrap();
        assert_eq!((r.start, r.end, r.len()), (10, 20, 10));
        assert!("5..5".parse::<SeedRange>().unwrap_err().contains("empty"));
        assert!("a..b".parse::<SeedRange>().is_err());
        assert!("0/3".parse::<Shard>().is_err());
        assert!("4/3".parse::<Shard>().is_err());
        let parts: Vec<SeedRange> = (1..=3).map(|k| r.shard(Shard { k, n: 3 })).collect();
        assert_eq!(parts.iter().map(|p| (p.start, p.end)).collect::<Vec<_>>(), [(10, 13), (13, 16), (16, 20)]);
        // More shards than seeds: some are empty, and together they cover it.
        let tiny = SeedRange { start: 0, end: 2 };
        let lens: Vec<u64> = (1..=4).map(|k| tiny.shard(Shard { k, n: 4 }).len()).collect();
        assert_eq!(lens.iter().sum::<u64>(), 2);
    }

    #[test]
    fn the_wilson_interval_matches_known_values() {
        // Reference values (Wilson 1927; e.g. Newcombe 1998, table I).
        let (lo, hi) = wilson(81, 263);
        assert!((lo - 0.2553).abs() < 1e-4 && (hi - 0.3662).abs() < 1e-4, "{lo} {hi}");
        let (lo, hi) = wilson(0, 10);
        assert!(lo == 0.0 && (hi - 0.2775).abs() < 1e-4, "{hi}");
        let (lo, hi) = wilson(10, 10);
        assert!((lo - 0.7225).abs() < 1e-4 && hi == 1.0, "{lo}");
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }
}
