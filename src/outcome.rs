//! What a run produces: verdicts, metrics, the fingerprint.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::check::Verdict;
use crate::metrics::LatencySummary;

/// Why the run stopped.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum StopReason {
    /// Simulated time reached the scenario's duration, or nothing was left to do.
    Completed,
    /// The run processed `events_max` events before reaching its duration.
    EventsMax {
        /// The limit.
        limit: u64,
    },
    /// The workload created `entities_max` entities.
    EntitiesMax {
        /// The limit.
        limit: u64,
    },
    /// More than `limit` events were waiting at once (a storm of timers or
    /// redeliveries): the run stopped before its memory ran away.
    EventsPendingMax {
        /// The limit.
        limit: u64,
    },
    /// A SIGINT or SIGTERM stopped the run.
    Interrupted,
}

/// Counts that describe a run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Metrics {
    /// Entities the workload created (requests sent).
    pub requests: u64,
    /// Requests no instance could take (entry service down or full).
    pub rejected: u64,
    /// Entities accepted.
    pub accepted: u64,
    /// Entities that reached a terminal state.
    pub completed: u64,
    /// Messages published to the bus.
    pub published: u64,
    /// Messages handled by a service.
    pub handled: u64,
    /// Messages lost, in all.
    pub lost: u64,
    /// Messages lost, by reason.
    pub lost_by_reason: BTreeMap<&'static str, u64>,
    /// Log records fetched again by a consumer group that had fetched them
    /// before (after a crash): at-least-once at work.
    pub redelivered: u64,
    /// Messages an idempotent consumer recognised and skipped.
    pub duplicates_skipped: u64,
    /// Messages moved to a dead-letter queue after their delivery limit.
    pub dead_lettered: u64,
    /// Optimistic stock reservations refused (the key changed) and redone.
    pub conflicts: u64,
    /// Synchronous calls between services (absent when there are none).
    #[serde(skip_serializing_if = "CallMetrics::is_empty")]
    pub calls: CallMetrics,
    /// Over the run, per queue (`queue NAME`: messages waiting) and per
    /// consumer group and topic (`lag SERVICE/TOPIC`: records not committed).
    pub backlog: BTreeMap<String, Backlog>,
    /// End-to-end latency from the entity's creation (the client's request)
    /// to its terminal state, in seconds: of the `completed` entities only.
    pub e2e_latency_s: LatencySummary,
    /// Accepted entities that never completed (lost, stuck, or still under
    /// way at the end): what `e2e_latency_s` leaves out.
    pub e2e_not_completed: u64,
    /// Per service, by name.
    pub services: BTreeMap<String, ServiceMetrics>,
}

/// What synchronous calls cost and how they ended.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct CallMetrics {
    /// Attempts sent to a callee.
    pub attempts: u64,
    /// Attempts that got no reply in time.
    pub timeouts: u64,
    /// Attempts the caller's own defences refused (open breaker, full
    /// bulkhead, rate limit) or that found no callee up.
    pub refused: u64,
    /// Calls that failed for good (after their retries).
    pub failed: u64,
}

impl CallMetrics {
    /// True when no call was made.
    pub fn is_empty(&self) -> bool {
        *self == CallMetrics::default()
    }
}

/// A quantity sampled at a fixed interval over a run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Backlog {
    /// Seconds between samples (the first is at one interval).
    pub interval_s: f64,
    /// The largest sample.
    pub max: u64,
    /// The mean of the samples.
    pub mean: f64,
    /// The samples, in time order.
    pub samples: Vec<u64>,
}

/// What one service (all its instances) did.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ServiceMetrics {
    /// Messages handled.
    pub handled: u64,
    /// From the moment a message was available to the service (in its
    /// queue at the broker, visible in the log, or, on the ephemeral bus,
    /// arrived at an instance) to the end of its handling (waiting +
    /// processing), in seconds: the stage's sojourn time. Of the messages
    /// handled after the warm-up.
    pub latency_s: LatencySummary,
    /// From the same moment to the start of its handling, in seconds.
    pub wait_s: LatencySummary,
    /// Fraction of the messages that found every worker busy and waited.
    pub waited_fraction: f64,
    /// Time-average number of messages waiting in the instances' FIFOs
    /// (summed over instances), over the measurement window: from the
    /// warm-up to the workload's stop, leaving out the drain after it.
    pub queue_len_mean: f64,
    /// Each instance's share, in instance order.
    pub instances: Vec<InstanceMetrics>,
    /// What its autoscaler did, if it autoscales.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling: Option<ScalingMetrics>,
    /// What its re-hydrations did, if it re-hydrates (over the whole run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rehydration: Option<RehydrationMetrics>,
    /// What its rebuilds from its events did, if it is event-sourced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuild: Option<RebuildMetrics>,
}

/// An event-sourced service's rebuilds: how much they replayed, how long
/// they took, and how much history retention had taken.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RebuildMetrics {
    /// Rebuilds done.
    pub rebuilds: u64,
    /// Events replayed per rebuild, on average.
    pub events_mean: f64,
    /// The most events one rebuild replayed.
    pub events_max: u64,
    /// Rows of the largest snapshot a rebuild started from.
    pub snapshot_rows_max: u64,
    /// The most events a rebuild found deleted by retention (history it
    /// could not replay).
    pub expired_max: u64,
    /// From an instance's start to its table rebuilt, in seconds, on average.
    pub recovery_s_mean: f64,
    /// The same, at most.
    pub recovery_s_max: f64,
}

/// A re-hydrating service's snapshots: how many, how big, how long.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RehydrationMetrics {
    /// Snapshot requests sent (a request unanswered in time is sent again).
    pub requests: u64,
    /// Snapshots loaded.
    pub snapshots: u64,
    /// Rows per snapshot loaded, on average.
    pub rows_mean: f64,
    /// Rows of the largest snapshot loaded.
    pub rows_max: u64,
    /// From an instance's start to its snapshot loaded, in seconds, on average.
    pub load_s_mean: f64,
    /// The same, at most.
    pub load_s_max: f64,
    /// Instances that caught up after loading: idle, nothing waiting, no
    /// record of their partitions unread.
    pub caught_up: u64,
    /// From an instance's start to its catching up, at most, in seconds.
    pub catch_up_s_max: f64,
}

/// What a service's autoscaler did over the measurement window.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ScalingMetrics {
    /// Time-average of the instances running (starting, ready or
    /// draining): what the service costs, in instances.
    pub instances_mean: f64,
    /// The fewest instances running at once.
    pub instances_min: u32,
    /// The most instances running at once.
    pub instances_max: u32,
    /// Decisions that raised the count asked for.
    pub scale_ups: u32,
    /// Each change of the count asked for, in time order.
    pub changes: Vec<ScaleChange>,
}

/// A change of an autoscaled service's instance count.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct ScaleChange {
    /// When (seconds).
    pub at_s: f64,
    /// The instances asked for from then on.
    pub instances: u32,
}

/// What one instance of a service did, over the same measurement window.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct InstanceMetrics {
    /// Its node, e.g. `inventory-2`.
    pub node: String,
    /// Messages it handled.
    pub handled: u64,
    /// Time-average fraction of its workers held (at work, or waiting for
    /// a call's reply): the M/M/c utilisation `rho` in steady state.
    pub utilisation: f64,
    /// Time-average number of messages waiting in its FIFO.
    pub queue_len_mean: f64,
}

/// A fault as it was applied.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AppliedFault {
    /// What, e.g. `crash`, `crash at after-state-write`, `slow x5`, `pause`.
    pub kind: String,
    /// Which node.
    pub node: String,
    /// From (ns).
    pub from_ns: u64,
    /// Until (ns); the end of the run if it had not healed by then.
    pub until_ns: u64,
}

/// The result of one run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Outcome {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Hash of the canonical trace: same scenario and seed, same fingerprint.
    pub fingerprint: String,
    /// Events processed by the loop.
    pub events: u64,
    /// Records in the trace.
    pub trace_records: u64,
    /// Simulated time at the end, in nanoseconds.
    pub sim_time_ns: u64,
    /// Why it stopped.
    pub stopped_by: StopReason,
    /// One verdict per invariant, in scenario order.
    pub invariants: Vec<Verdict>,
    /// Counts and latencies.
    pub metrics: Metrics,
    /// The fault plan as applied.
    pub faults: Vec<AppliedFault>,
    /// Faults that did not do what the plan asked (a crash point never
    /// reached, a fault that heals after the end, a random plan that drew
    /// nothing): the run did not test them, so its verdict is inconclusive.
    pub warnings: Vec<String>,
    /// Measurements over simulated time (runs for reports only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<Series>,
}

/// Throughput, latency and losses per interval of simulated time.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Series {
    /// Seconds per interval; the intervals start at time zero.
    pub interval_s: f64,
    /// Entities that reached a terminal state in each interval.
    pub completed: Vec<u64>,
    /// Median end-to-end latency of those entities, in seconds.
    pub e2e_p50_s: Vec<f64>,
    /// Their 99th percentile, in seconds.
    pub e2e_p99_s: Vec<f64>,
    /// Messages lost in each interval.
    pub lost: Vec<u64>,
    /// Messages delivered again in each interval.
    pub redelivered: Vec<u64>,
    /// Messages an idempotent consumer skipped in each interval.
    pub duplicates_skipped: Vec<u64>,
}

/// What a run says as a whole, and so its exit code.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RunVerdict {
    /// Every invariant held and judged something, and every fault took effect.
    Holds,
    /// Some invariant was violated.
    Violated,
    /// Nothing was violated, but some invariant judged nothing or some
    /// fault did not take effect.
    Inconclusive,
}

impl Outcome {
    /// True when every invariant held, judged something, and every fault
    /// took effect.
    pub fn all_hold(&self) -> bool {
        self.verdict() == RunVerdict::Holds
    }

    /// Violated if any invariant was; else inconclusive if any judged
    /// nothing or any fault did not take effect; else held.
    pub fn verdict(&self) -> RunVerdict {
        if self.invariants.iter().any(Verdict::violated) {
            RunVerdict::Violated
        } else if self.invariants.iter().any(Verdict::is_inconclusive) || !self.warnings.is_empty() {
            RunVerdict::Inconclusive
        } else {
            RunVerdict::Holds
        }
    }
}
