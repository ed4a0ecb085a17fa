//! Synchronous request/response between services, and the caller's
//! defences: a timeout per attempt, retries with exponential backoff and
//! jitter, a circuit breaker, a rate limit and a bulkhead.
//!
//! A handler that calls holds its worker for the whole call, as a thread
//! blocked on a socket does. The request travels over the network (link
//! faults and partitions apply), waits in the callee's queue like any other
//! message, and the callee's reply travels back. An attempt that times out
//! is not cancelled at the callee: it still does the work, and its late
//! reply is ignored. That is what turns plain retries against a slow service
//! into a retry storm.

use super::{Ev, Job, Source, World};
use crate::service::{Call, Message};
use crate::sim::{SimDuration, SimTime};
use crate::system::System;
use crate::trace::RecordKind;

/// `Job::called`: no call made (or none needed).
pub(super) const CALL_NONE: u8 = 0;
/// The call is under way; the worker waits.
pub(super) const CALL_PENDING: u8 = 1;
/// The call succeeded.
pub(super) const CALL_OK: u8 = 2;
/// The call failed for good.
pub(super) const CALL_FAILED: u8 = 3;

/// A job's call outcome as its handler sees it ([`crate::service::Context::called`]).
pub(super) fn outcome(called: u8) -> Option<bool> {
    match called {
        CALL_OK => Some(true),
        CALL_FAILED => Some(false),
        _ => None,
    }
}

/// Why an attempt was refused by the caller itself (trace aux).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Refusal {
    /// The circuit breaker is open.
    BreakerOpen = 1,
    /// The bulkhead is full.
    Bulkhead = 2,
    /// The rate limit is used up.
    RateLimited = 3,
    /// No instance of the callee is up (connection refused).
    NoInstance = 4,
}

impl Refusal {
    /// The refusal with code `code`.
    pub(crate) fn from_code(code: u64) -> Option<Refusal> {
        [Refusal::BreakerOpen, Refusal::Bulkhead, Refusal::RateLimited, Refusal::NoInstance]
            .into_iter()
            .find(|r| *r as u64 == code)
    }

    /// A few words for stories.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Refusal::BreakerOpen => "the circuit breaker is open",
            Refusal::Bulkhead => "the bulkhead is full",
            Refusal::RateLimited => "the rate limit is used up",
            Refusal::NoInstance => "no instance is up (connection refused)",
        }
    }
}

/// One call in progress.
#[derive(Clone, Copy, Debug)]
pub(super) struct CallState {
    /// The caller, its incarnation and the worker that waits.
    node: u32,
    epoch: u32,
    worker: u32,
    /// The request; every attempt sends the same id (an idempotency key).
    msg: Message,
    /// The message whose handler calls.
    input: Message,
    /// Attempts made so far (sent, or refused by the caller's defences).
    attempt: u32,
    /// Bumped at each attempt and when one ends: replies and timeouts of an
    /// older attempt are stale. Never reset, so a reused slot stays unique.
    pub(super) generation: u32,
    live: bool,
}

/// What one caller instance keeps per called request kind (volatile).
#[derive(Clone, Copy, Debug)]
pub(super) struct Site {
    request: u32,
    /// Consecutive failures (closed), or the trial in flight (half-open).
    failures: u32,
    open_until: SimTime,
    state: BreakerState,
    tokens: f64,
    tokens_at: SimTime,
    in_flight: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

/// Calls in progress, and the per-node call sites.
#[derive(Default)]
pub(super) struct Calls {
    slots: Vec<CallState>,
    free: Vec<u32>,
    /// Per node, its sites (few: one per request kind it calls).
    pub(super) sites: Vec<Vec<Site>>,
    /// Attempts sent, refused locally, and timed out; calls that failed for good.
    pub(super) attempts: u64,
    pub(super) refused: u64,
    pub(super) timeouts: u64,
    pub(super) failed: u64,
}

impl Calls {
    /// No calls yet, and no sites for `nodes` nodes.
    pub(super) fn new(nodes: usize) -> Calls {
        Calls { sites: vec![Vec::new(); nodes], ..Calls::default() }
    }

    /// Forgets the counts (the warm-up is over).
    pub(super) fn reset_counts(&mut self) {
        (self.attempts, self.refused, self.timeouts, self.failed) = (0, 0, 0, 0);
    }

    /// The requests of the calls in progress.
    pub(super) fn in_flight(&self) -> impl Iterator<Item = &Message> {
        self.slots.iter().filter(|c| c.live).map(|c| &c.msg)
    }
}

impl<'s> World<'s, '_> {
    /// The spec of the call node `n` makes for `msg`: borrowed from the
    /// system, not from the world, so the world's streams stay free to use.
    fn call_spec(&self, n: u32, msg: &Message) -> &'s Call {
        let si = self.nodes[n as usize].service as usize;
        let sys: &'s System = self.sys;
        sys.services[si].behaviour.call(msg).expect("a pending call has a spec")
    }

    /// Node `n`'s worker `worker` finished the work of `job`, whose handler
    /// calls another service: send the first attempt and keep the worker.
    pub(super) fn begin_call(&mut self, n: u32, worker: u32, mut job: Job) {
        let request = self.call_spec(n, &job.msg).request;
        let msg = self.new_message(request, job.msg.key, job.msg.entity, job.msg.id, job.msg.payload());
        job.called = CALL_PENDING;
        self.nodes[n as usize].busy[worker as usize] = Some(job);
        let state = CallState {
            node: n,
            epoch: self.nodes[n as usize].epoch,
            worker,
            msg,
            input: job.msg,
            attempt: 0,
            generation: 0,
            live: true,
        };
        let slot = match self.calls.free.pop() {
            Some(i) => {
                let generation = self.calls.slots[i as usize].generation;
                self.calls.slots[i as usize] = CallState { generation, ..state };
                i
            }
            None => {
                self.calls.slots.push(state);
                self.calls.slots.len() as u32 - 1
            }
        };
        self.attempt(slot);
    }

    /// The call's caller is gone (crashed since): forget the call.
    fn call_orphaned(&mut self, slot: u32) -> bool {
        let c = self.calls.slots[slot as usize];
        if !c.live {
            return true;
        }
        if self.nodes[c.node as usize].epoch != c.epoch {
            self.free_call(slot);
            return true;
        }
        false
    }

    fn free_call(&mut self, slot: u32) {
        let c = &mut self.calls.slots[slot as usize];
        c.live = false;
        c.generation = c.generation.wrapping_add(1);
        self.calls.free.push(slot);
    }

    /// The site of node `n` for `request`, created on first use.
    fn site(&mut self, n: u32, request: u32, burst: f64) -> usize {
        let sites = &mut self.calls.sites[n as usize];
        match sites.iter().position(|s| s.request == request) {
            Some(i) => i,
            None => {
                sites.push(Site {
                    request,
                    failures: 0,
                    open_until: SimTime::ZERO,
                    state: BreakerState::Closed,
                    tokens: burst,
                    tokens_at: self.now,
                    in_flight: 0,
                });
                sites.len() - 1
            }
        }
    }

    /// Sends the next attempt of call `slot`, unless the caller's own
    /// defences refuse it.
    fn attempt(&mut self, slot: u32) {
        if self.call_orphaned(slot) {
            return;
        }
        self.calls.slots[slot as usize].attempt += 1;
        let c = self.calls.slots[slot as usize];
        let n = c.node;
        let spec = self.call_spec(n, &c.input);
        let (breaker, rate, bulkhead) = (spec.breaker, spec.rate_limit, spec.bulkhead);
        let (target, latency, timeout) = (spec.service as u32, &spec.latency, spec.timeout);
        let burst = rate.map_or(0.0, |r| f64::from(r.burst));
        let i = self.site(n, c.msg.kind.0, burst);
        let now = self.now;
        let site = &mut self.calls.sites[n as usize][i];
        let mut refusal = None;
        if breaker.is_some() {
            if site.state == BreakerState::Open && now >= site.open_until {
                site.state = BreakerState::HalfOpen;
                site.failures = 0;
            }
            let trial_busy = site.state == BreakerState::HalfOpen && site.failures > 0;
            if site.state == BreakerState::Open || trial_busy {
                refusal = Some(Refusal::BreakerOpen);
            } else if site.state == BreakerState::HalfOpen {
                site.failures = 1; // the trial is in flight
            }
        }
        if refusal.is_none()
            && let Some(limit) = bulkhead
            && site.in_flight >= limit
        {
            refusal = Some(Refusal::Bulkhead);
        }
        if refusal.is_none()
            && let Some(r) = rate
        {
            let elapsed = (now - site.tokens_at).0 as f64 / 1e9;
            site.tokens = (site.tokens + elapsed * r.per_second).min(f64::from(r.burst));
            site.tokens_at = now;
            if site.tokens >= 1.0 {
                site.tokens -= 1.0;
            } else {
                refusal = Some(Refusal::RateLimited);
            }
        }
        let callee = if refusal.is_none() { self.pick_up(target, c.msg.key) } else { None };
        if refusal.is_none() && callee.is_none() {
            refusal = Some(Refusal::NoInstance);
        }
        let (Some(callee), None) = (callee, refusal) else {
            let refusal = refusal.expect("refused");
            self.calls.refused += 1;
            self.trace(RecordKind::CallRefused, n, &c.msg, refusal as u64);
            if refusal == Refusal::NoInstance {
                // Connection refused: a failure the breaker counts.
                self.breaker_learns(slot, false);
            }
            // An open breaker fails the call at once: retrying into it is pointless.
            return if refusal == Refusal::BreakerOpen {
                self.call_done(slot, false)
            } else {
                self.retry_or_fail(slot)
            };
        };
        self.calls.sites[n as usize][i].in_flight += 1;
        self.calls.attempts += 1;
        let c = &mut self.calls.slots[slot as usize];
        c.generation = c.generation.wrapping_add(1);
        let (generation, attempt, msg) = (c.generation, c.attempt, c.msg);
        self.trace(RecordKind::CallSent, n, &msg, u64::from(attempt) << 32 | u64::from(msg.kind.0));
        let crossing = self.cross(n, callee);
        if !crossing.lost {
            // A duplicating link delivers the request twice: the callee does
            // the work twice unless it is idempotent.
            for _ in 0..1 + u32::from(crossing.duplicated) {
                let latency = latency.sample(&mut self.network);
                let at = self.arrive_on(n, callee, latency, &crossing);
                self.queue.push(at, Ev::CallArrive { call: slot, generation, node: callee });
            }
        }
        let timeout = self.skewed(n, timeout);
        self.queue.push(self.now + timeout, Ev::CallTimeout { call: slot, generation });
    }

    /// `d` as node `n`'s clock measures it (clock skew).
    pub(super) fn skewed(&self, n: u32, d: SimDuration) -> SimDuration {
        let clock = self.nodes[n as usize].skew.product();
        if clock == 1.0 { d } else { SimDuration(crate::sim::dist::to_nanos(d.0 as f64 * clock)) }
    }

    /// An attempt's request reaches the callee: it queues like any message.
    pub(super) fn call_arrived(&mut self, slot: u32, generation: u32, n: u32) {
        let c = self.calls.slots[slot as usize];
        if !self.nodes[n as usize].up {
            return; // the callee is down: the caller will time out
        }
        self.enqueue(n, c.msg, Source::Call { call: slot, generation });
    }

    /// Callee `n` finished (or failed) the request of `source`: the reply goes back.
    pub(super) fn reply(&mut self, n: u32, source: Source, ok: bool) {
        let Source::Call { call: slot, generation } = source else { return };
        let c = self.calls.slots[slot as usize];
        if !c.live || c.generation != generation {
            return; // nobody waits for it any more; the work was done for nothing
        }
        let crossing = self.cross(n, c.node);
        if crossing.lost {
            return;
        }
        let latency = self.call_spec(c.node, &c.input).latency.sample(&mut self.network);
        let at = self.arrive_on(n, c.node, latency, &crossing);
        self.queue.push(at, Ev::CallReply { call: slot, generation, ok });
    }

    /// The end of an attempt at the caller: a reply, or its timeout.
    fn attempt_ended(&mut self, slot: u32, ok: bool) {
        let c = &mut self.calls.slots[slot as usize];
        c.generation = c.generation.wrapping_add(1);
        let (n, kind) = (c.node, c.msg.kind.0);
        if let Some(site) = self.calls.sites[n as usize].iter_mut().find(|s| s.request == kind) {
            site.in_flight = site.in_flight.saturating_sub(1);
        }
        self.breaker_learns(slot, ok);
        if ok { self.call_done(slot, true) } else { self.retry_or_fail(slot) }
    }

    /// The caller's breaker for call `slot` counts a success or a failure:
    /// failures in a row open it, a failed trial opens it again, a success closes it.
    fn breaker_learns(&mut self, slot: u32, ok: bool) {
        let c = self.calls.slots[slot as usize];
        let Some(b) = self.call_spec(c.node, &c.input).breaker else { return };
        let now = self.now;
        let Some(site) = self.calls.sites[c.node as usize].iter_mut().find(|s| s.request == c.msg.kind.0) else {
            return;
        };
        if ok {
            site.state = BreakerState::Closed;
            site.failures = 0;
            return;
        }
        site.failures += 1;
        if site.state == BreakerState::HalfOpen || site.failures >= b.failures {
            site.state = BreakerState::Open;
            site.open_until = now + b.open_for;
        }
    }

    /// The callee's reply reaches the caller.
    pub(super) fn call_replied(&mut self, slot: u32, generation: u32, ok: bool) {
        if self.call_orphaned(slot) || self.calls.slots[slot as usize].generation != generation {
            return; // a late reply to an attempt that timed out
        }
        let c = self.calls.slots[slot as usize];
        self.trace(RecordKind::CallReplied, c.node, &c.msg, u64::from(ok));
        self.attempt_ended(slot, ok);
    }

    /// An attempt got no reply in time.
    pub(super) fn call_timed_out(&mut self, slot: u32, generation: u32) {
        if self.call_orphaned(slot) || self.calls.slots[slot as usize].generation != generation {
            return;
        }
        let c = self.calls.slots[slot as usize];
        self.calls.timeouts += 1;
        self.trace(RecordKind::CallTimedOut, c.node, &c.msg, u64::from(c.attempt));
        self.attempt_ended(slot, false);
    }

    /// A failed attempt: wait out the backoff and try again, or give up.
    fn retry_or_fail(&mut self, slot: u32) {
        let c = self.calls.slots[slot as usize];
        let spec = self.call_spec(c.node, &c.input);
        let (retries, backoff) = (spec.retries, spec.backoff);
        // Attempts refused locally count too, so a call always ends.
        if c.attempt > retries {
            return self.call_done(slot, false);
        }
        let u = if backoff.jitter > 0.0 { self.nodes[c.node as usize].stream.unit() } else { 0.0 };
        let wait = self.skewed(c.node, backoff.wait(c.attempt, u));
        let generation = c.generation;
        self.queue.push(self.now + wait, Ev::CallRetry { call: slot, generation });
    }

    /// The backoff is over: try again.
    pub(super) fn call_retry(&mut self, slot: u32, generation: u32) {
        if self.call_orphaned(slot) || self.calls.slots[slot as usize].generation != generation {
            return;
        }
        self.attempt(slot);
    }

    /// The call is over: the waiting worker completes its job with the result.
    fn call_done(&mut self, slot: u32, ok: bool) {
        let c = self.calls.slots[slot as usize];
        self.free_call(slot);
        if !ok {
            self.calls.failed += 1;
            self.trace(RecordKind::CallFailed, c.node, &c.msg, u64::from(c.attempt));
        }
        let node = &mut self.nodes[c.node as usize];
        if let Some(job) = node.busy[c.worker as usize].as_mut() {
            job.called = if ok { CALL_OK } else { CALL_FAILED };
        }
        let epoch = node.epoch;
        self.queue.push(self.now, Ev::Done { node: c.node, epoch, worker: c.worker });
    }
}
