//! The trace in the Chrome trace-event JSON format, which Perfetto UI
//! (ui.perfetto.dev) and chrome://tracing open: every node is a process,
//! the time a message spends at a node (waiting, then handled) is an async
//! slice, a message from one node to another is a flow arrow from its
//! publish to its arrival, crashes and pauses are slices of their own, and
//! losses, effects and faults are instant events.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use serde_json::{Value, json};

use crate::trace::{LossReason, NO_NODE, Record, RecordKind, TraceSink};

/// A [`TraceSink`] that writes trace events as it goes.
pub struct Perfetto<W: Write> {
    out: W,
    nodes: Vec<String>,
    kinds: Vec<String>,
    effects: Vec<String>,
    started: bool,
    closed: bool,
    /// Messages published and not yet arrived: their flow is open.
    flowing: BTreeSet<u64>,
    /// Message slices begun and not ended, per process: (pid, msg) -> name.
    open: BTreeMap<(u32, u64), String>,
    last_ts: f64,
}

/// Thread of the message slices and of instants (one per process).
const MESSAGES_TID: u32 = 1;
/// Thread of the node's own state: down, paused, slow.
const STATE_TID: u32 = 2;

impl<W: Write> Perfetto<W> {
    /// A sink writing to `out`, naming nodes, kinds and effects.
    pub fn new(out: W, nodes: Vec<String>, kinds: Vec<String>, effects: Vec<String>) -> Perfetto<W> {
        Perfetto {
            out,
            nodes,
            kinds,
            effects,
            started: false,
            closed: false,
            flowing: BTreeSet::new(),
            open: BTreeMap::new(),
            last_ts: 0.0,
        }
    }

    fn pid(node: u32) -> u32 {
        if node == NO_NODE { 0 } else { node + 1 }
    }

    fn kind(&self, k: u64) -> &str {
        if k == u64::from(u32::MAX) {
            return "timer";
        }
        self.kinds.get(k as usize).map_or("?", String::as_str)
    }

    fn emit(&mut self, event: Value) -> io::Result<()> {
        if !self.started {
            self.started = true;
            self.out.write_all(b"{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n")?;
            let mut names = vec![(0, "client and bus".to_string())];
            names.extend(self.nodes.iter().enumerate().map(|(i, n)| (i as u32 + 1, n.clone())));
            for (i, (pid, name)) in names.into_iter().enumerate() {
                if i > 0 {
                    self.out.write_all(b",\n")?;
                }
                let meta = json!({"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": name}});
                serde_json::to_writer(&mut self.out, &meta)?;
                for (tid, thread) in [(MESSAGES_TID, "messages"), (STATE_TID, "state")] {
                    let t = json!({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": thread}});
                    self.out.write_all(b",\n")?;
                    serde_json::to_writer(&mut self.out, &t)?;
                }
            }
        }
        self.out.write_all(b",\n")?;
        serde_json::to_writer(&mut self.out, &event)?;
        Ok(())
    }

    fn instant(&mut self, pid: u32, ts: f64, name: String, args: Value) -> io::Result<()> {
        let scope = if pid == 0 { "g" } else { "p" };
        self.emit(json!({"name": name, "ph": "i", "s": scope, "ts": ts, "pid": pid, "tid": MESSAGES_TID, "args": args}))
    }

    /// Ends every message slice still open at `pid` (its node crashed).
    /// A node's "down" or "paused" span begins (a crash, a pause) or ends
    /// (its restart, its resumption).
    fn down_or_paused(&mut self, pid: u32, ts: f64, r: &Record) -> io::Result<()> {
        let name = if matches!(r.kind, RecordKind::Crash | RecordKind::Restart) { "down" } else { "paused" };
        let begins = matches!(r.kind, RecordKind::Crash | RecordKind::Paused);
        if begins {
            self.end_open(pid, ts, "crashed")?;
        }
        let ph = if begins { "b" } else { "e" };
        self.emit(json!({"name": name, "cat": "fault", "ph": ph, "id": u64::from(pid), "ts": ts, "pid": pid,
                         "tid": STATE_TID}))
    }

    fn end_open(&mut self, pid: u32, ts: f64, why: &str) -> io::Result<()> {
        let ids: Vec<(u32, u64)> = self.open.range((pid, 0)..=(pid, u64::MAX)).map(|(k, _)| *k).collect();
        for key in ids {
            let name = self.open.remove(&key).unwrap_or_default();
            self.emit(json!({"name": name, "cat": "message", "ph": "e", "id": key.1, "ts": ts, "pid": pid,
                             "tid": MESSAGES_TID, "args": {"end": why}}))?;
        }
        Ok(())
    }
}

impl<W: Write> Perfetto<W> {
    /// Record `r` as an instant named after its kind and message.
    /// A publish: an instant, and the start of the message's flow arrow.
    fn published(&mut self, pid: u32, ts: f64, r: &Record) -> io::Result<()> {
        let msg = r.msg;
        let name = format!("publish {}#{msg}", self.kind(r.aux));
        self.emit(json!({"name": name, "cat": "publish", "ph": "X", "ts": ts, "dur": 0.001, "pid": pid,
                         "tid": MESSAGES_TID}))?;
        self.emit(json!({"name": "message", "cat": "flow", "ph": "s", "id": msg, "ts": ts, "pid": pid,
                         "tid": MESSAGES_TID}))?;
        self.flowing.insert(msg);
        Ok(())
    }

    /// A message received: an instant, the end of its flow arrow, and its
    /// slice on the node opened until it is handled.
    fn enqueued(&mut self, pid: u32, ts: f64, r: &Record) -> io::Result<()> {
        let msg = r.msg;
        let name = format!("{}#{msg}", self.kind(r.aux));
        self.emit(json!({"name": format!("receive {name}"), "cat": "receive", "ph": "X", "ts": ts,
                         "dur": 0.001, "pid": pid, "tid": MESSAGES_TID}))?;
        if self.flowing.remove(&msg) {
            self.emit(json!({"name": "message", "cat": "flow", "ph": "f", "bp": "e", "id": msg, "ts": ts,
                             "pid": pid, "tid": MESSAGES_TID}))?;
        }
        if self.open.insert((pid, msg), name.clone()).is_none() {
            self.emit(json!({"name": name, "cat": "message", "ph": "b", "id": msg, "ts": ts, "pid": pid,
                             "tid": MESSAGES_TID, "args": {"entity": r.entity}}))?;
        }
        Ok(())
    }

    /// A message's handling ended: its slice on the node closes.
    fn ended(&mut self, pid: u32, ts: f64, r: &Record) -> io::Result<()> {
        let msg = r.msg;
        if let Some(name) = self.open.remove(&(pid, msg)) {
            let end = match r.kind {
                RecordKind::Handled => "handled",
                RecordKind::Failed => "failed",
                RecordKind::Ignored => "ignored (stale)",
                _ => "skipped (duplicate)",
            };
            self.emit(json!({"name": name, "cat": "message", "ph": "e", "id": msg, "ts": ts, "pid": pid,
                             "tid": MESSAGES_TID, "args": {"end": end}}))?;
        }
        Ok(())
    }

    fn instant_of(&mut self, pid: u32, ts: f64, r: &Record) -> io::Result<()> {
        let name = format!("{:?}", r.kind).to_lowercase();
        self.instant(pid, ts, format!("{name} #{}", r.msg), json!({"entity": r.entity, "aux": r.aux}))
    }
}

impl<W: Write> TraceSink for Perfetto<W> {
    fn write(&mut self, _seq: u64, r: &Record) -> io::Result<()> {
        let ts = r.time.0 as f64 / 1e3;
        self.last_ts = ts;
        let pid = Self::pid(r.node);
        let msg = r.msg;
        match r.kind {
            RecordKind::Published => self.published(pid, ts, r)?,
            RecordKind::Enqueued => self.enqueued(pid, ts, r)?,
            RecordKind::Handled | RecordKind::Failed | RecordKind::Skipped | RecordKind::Ignored => {
                self.ended(pid, ts, r)?;
            }
            RecordKind::Lost => {
                let reason = crate::trace::loss_of(r.aux).0.map_or("unknown", LossReason::label);
                self.flowing.remove(&msg);
                self.instant(pid, ts, format!("LOST message #{msg}: {reason}"), json!({"entity": r.entity}))?;
            }
            RecordKind::Effect => {
                let effect = self.effects.get(r.aux as usize).map_or("?", String::as_str).to_string();
                self.instant(pid, ts, format!("effect {effect}"), json!({"entity": r.entity}))?;
            }
            RecordKind::Crash | RecordKind::Paused | RecordKind::Restart | RecordKind::Resumed => {
                self.down_or_paused(pid, ts, r)?;
            }
            RecordKind::FaultBegan | RecordKind::FaultHealed => {
                let verb = if r.kind == RecordKind::FaultBegan { "began" } else { "healed" };
                self.instant(pid, ts, format!("fault #{} {verb}", r.aux), json!({"plan_index": r.aux}))?;
            }
            RecordKind::CrashPoint => {
                let seam = crate::system::Seam::from_code(r.aux).map_or("?", |s| s.label());
                self.instant(pid, ts, format!("CRASH at seam {seam}"), json!({"message": msg}))?;
            }
            RecordKind::Request
            | RecordKind::Rejected
            | RecordKind::Accepted
            | RecordKind::Terminal
            | RecordKind::Dropped
            | RecordKind::DeadLettered
            | RecordKind::Redelivered
            | RecordKind::Outboxed
            | RecordKind::CallSent
            | RecordKind::CallRefused
            | RecordKind::CallTimedOut
            | RecordKind::CallReplied
            | RecordKind::CallFailed
            | RecordKind::Fenced
            | RecordKind::Unfenced
            | RecordKind::ChannelClosed
            | RecordKind::Reconnected
            | RecordKind::Resent
            | RecordKind::SplitState
            | RecordKind::Provisioned
            | RecordKind::ScaledUp
            | RecordKind::Draining
            | RecordKind::ScaledDown
            | RecordKind::Rewound
            | RecordKind::Hydrating
            | RecordKind::Rehydrated
            | RecordKind::Rebuilt
            | RecordKind::Unreadable
            | RecordKind::Unparked
            | RecordKind::Transition => self.instant_of(pid, ts, r)?,
            // Bookkeeping that would only crowd the view.
            RecordKind::Appended
            | RecordKind::Committed
            | RecordKind::Joined
            | RecordKind::Assigned
            | RecordKind::Revoked => {}
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return self.out.flush();
        }
        self.closed = true;
        // Slices still open at the end of the run end there.
        let ts = self.last_ts;
        let pids: BTreeSet<u32> = self.open.keys().map(|k| k.0).collect();
        for pid in pids {
            self.end_open(pid, ts, "still there at the end of the run")?;
        }
        if !self.started {
            self.out.write_all(b"{\"displayTimeUnit\":\"ms\",\"traceEvents\":[")?;
        }
        self.out.write_all(b"\n]}\n")?;
        self.out.flush()
    }
}

/// Writes every record to each of several sinks.
pub struct Tee<'a>(pub Vec<&'a mut dyn TraceSink>);

impl TraceSink for Tee<'_> {
    fn write(&mut self, seq: u64, record: &Record) -> io::Result<()> {
        for s in &mut self.0 {
            s.write(seq, record)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        for s in &mut self.0 {
            s.flush()?;
        }
        Ok(())
    }
}
