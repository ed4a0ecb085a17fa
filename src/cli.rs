//! The command line: parse arguments, call the library, map errors to exit
//! codes.
//!
//! Exit codes: [`exit::OK`] (0) every invariant held, [`exit::VIOLATION`]
//! (1) an invariant was violated, [`exit::INPUT`] (2) the input or the
//! environment was wrong (a bad scenario, an unwritable path, a limit hit).

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::outcome::{Outcome, StopReason};
use crate::scenario::{self, ScenarioError};
use crate::sim::{self, RunOptions, SetupError, SimDuration, SimTime};
use crate::trace::JsonLines;

/// Exit codes.
pub mod exit {
    /// Every invariant held.
    pub const OK: u8 = 0;
    /// An invariant was violated.
    pub const VIOLATION: u8 = 1;
    /// The input or the environment was wrong.
    pub const INPUT: u8 = 2;
}

/// faultline: a deterministic distributed-failure simulator for event-driven microservices.
#[derive(Debug, Parser)]
#[command(name = "faultline", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario under one seed and check its invariants (exit 0 all hold, 1 one failed, 2 bad input).
    Run {
        /// The scenario file (RON).
        file: PathBuf,
        /// The seed (default: the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Print one JSON object instead of the human summary.
        #[arg(long)]
        json: bool,
        /// Write every trace record to this file as JSON lines.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
    },
    /// Validate a scenario without running it (exit 0 valid, 2 invalid).
    Check {
        /// The scenario file (RON).
        file: PathBuf,
    },
    /// Measure the kernel: events per second on the order pipeline against a bare heap loop.
    Bench {
        /// Events per measured run.
        #[arg(long, default_value_t = 3_000_000)]
        events: u64,
        /// Measured runs of each loop (the median is reported).
        #[arg(long, default_value_t = 5)]
        repeat: u32,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Errors at the command-line boundary.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The scenario is bad.
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    /// The system cannot be set up.
    #[error("error: {0}")]
    Setup(#[from] SetupError),
    /// An output file cannot be written.
    #[error("error: cannot write {path}: {source}")]
    Output {
        /// The path.
        path: String,
        /// The cause.
        source: io::Error,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::INPUT } else { exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match execute(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(exit::INPUT)
        }
    }
}

fn execute(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Run { file, seed, json, trace } => run(&file, seed, json, trace.as_deref()),
        Command::Check { file } => {
            let loaded = scenario::load(&file.to_string_lossy())?;
            let s = &loaded.system;
            let nodes: usize = s.services.iter().map(|x| x.instances as usize).sum();
            println!(
                "{}: ok: scenario `{}`, {} services, {nodes} nodes, {} faults, {} invariants",
                file.display(),
                s.name,
                s.services.len(),
                s.faults.len(),
                s.invariants.len()
            );
            Ok(exit::OK)
        }
        Command::Bench { events, repeat, json } => {
            let report = crate::bench::run(events, repeat.max(1));
            if json {
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                print!("{}", report.render());
            }
            Ok(exit::OK)
        }
    }
}

/// A file written next to its destination and renamed into place on
/// success, so a failed run never leaves a half-written file behind.
struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
}

impl AtomicFile {
    fn create(dest: &Path) -> Result<(AtomicFile, fs::File), CliError> {
        let output = |source| CliError::Output { path: dest.display().to_string(), source };
        if dest.is_dir() {
            return Err(output(io::Error::new(io::ErrorKind::IsADirectory, "it is a directory")));
        }
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dest.with_file_name(format!(".{name}.partial"));
        let f = fs::File::create(&tmp).map_err(output)?;
        Ok((AtomicFile { tmp, dest: dest.to_path_buf() }, f))
    }

    fn commit(self) -> Result<(), CliError> {
        fs::rename(&self.tmp, &self.dest)
            .map_err(|source| CliError::Output { path: self.dest.display().to_string(), source })
    }

    fn abandon(self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

fn run(file: &Path, seed: Option<u64>, json: bool, trace: Option<&Path>) -> Result<u8, CliError> {
    let path = file.to_string_lossy().into_owned();
    let loaded = scenario::load(&path)?;
    let system = &loaded.system;
    let seed = seed.unwrap_or(system.seed);
    #[expect(clippy::disallowed_methods, reason = "wall-clock rate for the user; never reaches the simulation")]
    let started = std::time::Instant::now();
    let outcome = match trace {
        None => sim::run(system, seed)?,
        Some(dest) => {
            let (atomic, f) = AtomicFile::create(dest)?;
            let names = &system.names;
            let kinds =
                (0..names.kind_count()).map(|k| names.kind_name(crate::service::Kind(k as u32)).to_string()).collect();
            let effects = (0..names.effect_count())
                .map(|e| names.effect_name(crate::service::EffectId(e as u16)).to_string())
                .collect();
            let mut sink = JsonLines::new(BufWriter::new(f), system.node_names(), kinds, effects);
            match sim::run_with(system, seed, RunOptions { trace: Some(&mut sink) }) {
                Ok(o) => {
                    drop(sink);
                    atomic.commit()?;
                    o
                }
                Err(SetupError::Trace(source)) => {
                    atomic.abandon();
                    return Err(CliError::Output { path: dest.display().to_string(), source });
                }
                Err(e) => {
                    atomic.abandon();
                    return Err(e.into());
                }
            }
        }
    };
    let wall = started.elapsed();
    let reproduce = format!("faultline run {path} --seed {seed}");
    if json {
        let mut v = serde_json::to_value(&outcome).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("question".into(), loaded.scenario.question.clone().into());
            obj.insert("reproduce".into(), reproduce.into());
            obj.insert("wall_ms".into(), (wall.as_secs_f64() * 1e3).into());
            obj.insert("events_per_s".into(), (outcome.events as f64 / wall.as_secs_f64().max(1e-9)).round().into());
        }
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        print!("{}", render(&outcome, &loaded.scenario.question, &path, Some(wall)));
    }
    Ok(match outcome.stopped_by {
        StopReason::Completed if outcome.all_hold() => exit::OK,
        StopReason::Completed => exit::VIOLATION,
        _ => {
            eprintln!(
                "error: the run stopped early ({}); its verdicts cover only part of the scenario",
                stop_text(&outcome.stopped_by)
            );
            exit::INPUT
        }
    })
}

fn stop_text(s: &StopReason) -> String {
    match s {
        StopReason::Completed => "completed".into(),
        StopReason::EventsMax { limit } => {
            format!("events_max = {limit} reached: raise limits.events_max or shorten the duration")
        }
        StopReason::EntitiesMax { limit } => format!("entities_max = {limit} reached: raise limits.entities_max"),
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn secs(s: f64) -> String {
    SimDuration((s * 1e9).round() as u64).to_string()
}

/// The human summary of a run. Without `wall` it holds nothing that depends
/// on the machine, so it can be pinned in a snapshot.
pub fn render(o: &Outcome, question: &str, file: &str, wall: Option<Duration>) -> String {
    let mut s = String::new();
    let m = &o.metrics;
    let _ = writeln!(s, "scenario    {}", o.scenario);
    if !question.is_empty() {
        let _ = writeln!(s, "question    {question}");
    }
    let _ = writeln!(s, "seed        {}", o.seed);
    let _ = write!(s, "simulated   {} in {} events", SimTime(o.sim_time_ns), thousands(o.events));
    if let Some(w) = wall {
        let rate = o.events as f64 / w.as_secs_f64().max(1e-9);
        let _ = write!(s, " ({:.2} s wall, {:.2}M events/s)", w.as_secs_f64(), rate / 1e6);
    }
    s.push('\n');
    // A fault that recurs (a random plan, a crash point) is listed a few
    // times, then counted; `--json` lists every one.
    const LISTED: usize = 3;
    let mut shown: Vec<(&str, &str, usize)> = Vec::new();
    for f in &o.faults {
        let i = match shown.iter().position(|(k, n, _)| *k == f.kind && *n == f.node) {
            Some(i) => i,
            None => {
                shown.push((&f.kind, &f.node, 0));
                shown.len() - 1
            }
        };
        shown[i].2 += 1;
        if shown[i].2 <= LISTED {
            let _ =
                writeln!(s, "fault       {} {} from {} to {}", f.kind, f.node, SimTime(f.from_ns), SimTime(f.until_ns));
        }
    }
    for (kind, node, n) in shown.iter().filter(|(_, _, n)| *n > LISTED) {
        let _ = writeln!(s, "fault       ... {kind} {node}: {} more ({n} in all; --json lists them)", n - LISTED);
    }
    let _ = writeln!(
        s,
        "entities    {} requested, {} rejected, {} accepted, {} completed",
        thousands(m.requests),
        thousands(m.rejected),
        thousands(m.accepted),
        thousands(m.completed)
    );
    let lost: Vec<String> =
        m.lost_by_reason.iter().filter(|(_, n)| **n > 0).map(|(r, n)| format!("{r} {}", thousands(*n))).collect();
    let lost = if lost.is_empty() { String::new() } else { format!(" ({})", lost.join(", ")) };
    let mut again = String::new();
    if m.redelivered > 0 {
        let _ = write!(again, ", {} redelivered", thousands(m.redelivered));
    }
    if m.duplicates_skipped > 0 {
        let _ = write!(again, ", {} duplicates skipped", thousands(m.duplicates_skipped));
    }
    let _ = writeln!(
        s,
        "messages    {} published, {} handled, {} lost{lost}{again}",
        thousands(m.published),
        thousands(m.handled),
        thousands(m.lost)
    );
    if !m.calls.is_empty() {
        let c = &m.calls;
        let _ = writeln!(
            s,
            "calls       {} attempts, {} timed out, {} refused by the caller, {} failed for good",
            thousands(c.attempts),
            thousands(c.timeouts),
            thousands(c.refused),
            thousands(c.failed)
        );
    }
    let l = &m.e2e_latency_s;
    if l.count > 0 {
        let _ = writeln!(
            s,
            "latency     end to end: mean {}, p50 {}, p99 {}, max {}",
            secs(l.mean),
            secs(l.p50),
            secs(l.p99),
            secs(l.max)
        );
    }
    for (name, sm) in &m.services {
        let (l, w) = (&sm.latency_s, &sm.wait_s);
        if l.count > 0 {
            let _ = writeln!(
                s,
                "            at {name}: mean {}, p50 {}, p99 {}; waited {:.0}%, mean wait {}, {:.2} queued on average",
                secs(l.mean),
                secs(l.p50),
                secs(l.p99),
                sm.waited_fraction * 100.0,
                secs(w.mean),
                sm.queue_len_mean
            );
        }
    }
    for (name, b) in &m.backlog {
        if b.max > 0 {
            let _ = writeln!(s, "backlog     {name}: max {}, mean {:.1}", thousands(b.max), b.mean);
        }
    }
    s.push('\n');
    for v in &o.invariants {
        let counts: Vec<String> = v.counts.iter().map(|(k, n)| format!("{k} {}", thousands(*n))).collect();
        if v.holds {
            let _ = writeln!(s, "PASS  {}  ({})", v.name, counts.join(", "));
        } else {
            let _ = writeln!(s, "FAIL  {}: {} violating  ({})", v.name, thousands(v.violations), counts.join(", "));
        }
        if let Some(story) = &v.example {
            let _ = writeln!(s, "      example:");
            for line in &story.lines {
                let _ = writeln!(s, "      {line}");
            }
        }
    }
    if !matches!(o.stopped_by, StopReason::Completed) {
        let _ = writeln!(s, "\nSTOPPED EARLY: {}", stop_text(&o.stopped_by));
    }
    let _ = writeln!(s, "\nfingerprint {}", o.fingerprint);
    let _ = writeln!(s, "reproduce   faultline run {file} --seed {}", o.seed);
    s
}
