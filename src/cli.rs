//! The command line: parse arguments, call the library, map errors to exit
//! codes.
//!
//! Why it is over 800 lines: it holds every command's arguments and its
//! human output (the run summary, the sweep table); the work behind each
//! command lives in its own module (`sweep`, `shrink`, `report`, `bench`).
//!
//! Exit codes: [`exit::OK`] (0) every invariant held and judged something,
//! [`exit::VIOLATION`] (1) an invariant was violated, [`exit::INPUT`] (2)
//! the input or the environment was wrong (a bad scenario, an unwritable
//! path, a limit hit), [`exit::INCONCLUSIVE`] (3) nothing was violated but
//! an invariant judged nothing or a fault did not take effect.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::check::Status;
use crate::outcome::{Outcome, StopReason};
use crate::scenario::{self, ScenarioError};
use crate::sim::{self, RunOptions, SetupError, SimTime};

mod interrupt;
use crate::sweep::{SeedRange, Shard, Summary, Tally, Timing};
use crate::trace::JsonLines;

// Output that a closed pipe (`faultline ... | head`) or a full disk cannot
// turn into a panic: what cannot be written is dropped, and the command
// ends with the exit code its work earned.
macro_rules! quietly {
    ($stream:expr, $how:ident, $($t:tt)*) => {{
        use std::io::Write as _;
        let _ = $how!($stream, $($t)*);
    }};
}
macro_rules! out { ($($t:tt)*) => { quietly!(std::io::stdout(), write, $($t)*) }; }
macro_rules! outln { ($($t:tt)*) => { quietly!(std::io::stdout(), writeln, $($t)*) }; }
macro_rules! err { ($($t:tt)*) => { quietly!(std::io::stderr(), write, $($t)*) }; }
macro_rules! errln { ($($t:tt)*) => { quietly!(std::io::stderr(), writeln, $($t)*) }; }

/// Exit codes.
pub mod exit {
    use crate::outcome::RunVerdict;

    /// Every invariant held and judged something, and every fault took effect.
    pub const OK: u8 = 0;
    /// An invariant was violated.
    pub const VIOLATION: u8 = 1;
    /// The input or the environment was wrong.
    pub const INPUT: u8 = 2;
    /// Nothing was violated, but an invariant judged nothing or a fault
    /// did not take effect: the run did not test what it was asked to.
    pub const INCONCLUSIVE: u8 = 3;

    /// The exit code of a verdict.
    pub fn of(v: RunVerdict) -> u8 {
        match v {
            RunVerdict::Holds => OK,
            RunVerdict::Violated => VIOLATION,
            RunVerdict::Inconclusive => INCONCLUSIVE,
        }
    }
}

/// What the exit codes mean, for `--help`.
const EXIT_CODES: &str = "Exit codes: 0 every invariant held and judged something; 1 an invariant was violated; \
2 bad input or environment (a bad scenario, an unwritable path, a run stopped at a limit); 3 nothing was violated \
but a verdict was inconclusive (an invariant judged nothing, or a fault never took effect); 130 interrupted by SIGINT, \
143 by SIGTERM.";

/// faultline: a deterministic distributed-failure simulator for event-driven microservices.
#[derive(Debug, Parser)]
#[command(name = "faultline", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scenario under one seed and check its invariants (exit 0 all hold, 1 one failed, 2 bad
    /// input, 3 inconclusive).
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
        /// Write the trace in the Chrome trace-event format (open it in ui.perfetto.dev or chrome://tracing).
        #[arg(long, value_name = "FILE")]
        perfetto: Option<PathBuf>,
    },
    /// Validate a scenario without running it (exit 0 valid, 2 invalid).
    Check {
        /// The scenario file (RON).
        file: PathBuf,
    },
    /// Run a scenario under every seed of a range, in parallel, and count the seeds that fail
    /// each invariant (exit 0 none failed, 1 some did, 2 bad input, 3 none failed but some were
    /// inconclusive, 130 interrupted).
    Sweep {
        /// The scenario file (RON).
        file: PathBuf,
        /// The seeds, `A..B` (B excluded).
        #[arg(long, value_name = "A..B")]
        seeds: SeedRange,
        /// Threads (default: every core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Run only the K-th of N slices of the range (from 1), for a cluster or a CI matrix.
        #[arg(long, value_name = "K/N")]
        shard: Option<Shard>,
        /// Print one JSON object instead of the human summary.
        #[arg(long)]
        json: bool,
        /// Also write the sweep's mergeable results into this directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Combine the results that sweeps and shards wrote with `--out` into the summary one sweep
    /// over their whole range gives (exit 0, 1 or 2 as `sweep`).
    Merge {
        /// Directories (or `.tally.json` files) written by `sweep --out`.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print one JSON object instead of the human summary.
        #[arg(long)]
        json: bool,
    },
    /// Write an HTML report (verdict, story with its message timeline, charts, the scenario) of one
    /// scenario, or of several side by side on the same seeds (exit 0 when written, 2 on bad input).
    Report {
        /// Scenario files, or directories of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Sweep these seeds (`A..B`) for failure rates; the page details the first failing seed.
        #[arg(long, value_name = "A..B")]
        seeds: Option<SeedRange>,
        /// The seed to run (default: each scenario's own); ignored with --seeds.
        #[arg(long)]
        seed: Option<u64>,
        /// Where to write (default: reports/NAME, or reports/comparison for several scenarios).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Shrink a failing run to a smaller scenario that still fails under the same seed (exit 0
    /// when a reproducer was written, 2 when the seed does not fail or the input is bad).
    Shrink {
        /// The scenario file (RON).
        file: PathBuf,
        /// The failing seed.
        #[arg(long)]
        seed: u64,
        /// Where to write the smaller scenario.
        #[arg(long, value_name = "MIN.ron")]
        out: PathBuf,
        /// The invariant that must keep failing (default: the first that fails).
        #[arg(long)]
        invariant: Option<String>,
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
        /// Measure sweep throughput instead: this many seeds of a small scenario, at 1 and 2 jobs.
        #[arg(long, value_name = "SEEDS")]
        sweep: Option<u64>,
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
    /// An input file (other than a scenario) cannot be read or is malformed.
    #[error("error: {path}: {message}")]
    Input {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A report could not be written.
    #[error("error: {0}")]
    Report(#[from] crate::report::ReportError),
    /// There is nothing to shrink.
    #[error("error: {0}")]
    Shrink(#[from] crate::shrink::ShrinkError),
    /// Shard results do not merge.
    #[error("error: {0}")]
    Merge(#[from] crate::sweep::MergeError),
    /// A SIGINT or SIGTERM stopped the command; what it says was (not) written.
    #[error("interrupted: {0}")]
    Interrupted(String),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    main_from(std::env::args_os())
}

/// [`main`] with these arguments (the first is the program's name): what
/// the fuzzer runs in a child process.
pub fn main_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::INPUT } else { exit::OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match execute(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e @ CliError::Interrupted(_)) => {
            errln!("{e}");
            ExitCode::from(interrupt::exit_code())
        }
        Err(e) => {
            errln!("{e}");
            ExitCode::from(exit::INPUT)
        }
    }
}

fn execute(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Run { file, seed, json, trace, perfetto } => {
            run(&file, seed, json, trace.as_deref(), perfetto.as_deref())
        }
        Command::Check { file } => {
            let ScenarioFile { text, loaded, .. } = read_scenario(&file)?;
            print_warnings(&loaded, &text);
            let s = &loaded.system;
            let nodes: usize = s.services.iter().map(|x| x.instances as usize).sum();
            outln!(
                "{}: ok: scenario `{}`, {} services, {nodes} nodes, {} faults, {} invariants",
                file.display(),
                s.name,
                s.services.len(),
                s.faults.len(),
                s.invariants.len()
            );
            Ok(exit::OK)
        }
        Command::Sweep { file, seeds, jobs, shard, json, out } => {
            sweep(&file, seeds, jobs, shard, json, out.as_deref())
        }
        Command::Merge { paths, json } => merge(&paths, json),
        Command::Report { files, seeds, seed, out } => report(&files, seeds, seed, out.as_deref()),
        Command::Shrink { file, seed, out, invariant } => shrink(&file, seed, &out, invariant.as_deref()),
        Command::Bench { sweep: Some(seeds), repeat, json, .. } => {
            let report = crate::bench::run_sweep(seeds, repeat.clamp(1, 100));
            if json {
                outln!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                out!("{}", report.render());
            }
            Ok(exit::OK)
        }
        Command::Bench { events, repeat, json, sweep: None } => {
            let report = crate::bench::run(events, repeat.max(1));
            if json {
                outln!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                out!("{}", report.render());
            }
            Ok(exit::OK)
        }
    }
}

/// A file written next to its destination and renamed into place on
/// success, so a failed or interrupted command never leaves a half-written
/// file behind: dropped uncommitted, it removes its temporary, and a second
/// signal removes it too.
struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl AtomicFile {
    fn create(dest: &Path) -> Result<(AtomicFile, fs::File), CliError> {
        let output = |source| CliError::Output { path: dest.display().to_string(), source };
        if dest.is_dir() {
            return Err(output(io::Error::new(io::ErrorKind::IsADirectory, "it is a directory")));
        }
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dest.with_file_name(format!(".{name}.partial"));
        match interrupt::create_registered(&tmp, || fs::File::create(&tmp)) {
            Ok(f) => Ok((AtomicFile { tmp, dest: dest.to_path_buf(), committed: false }, f)),
            Err(source) => {
                interrupt::forget(&tmp);
                Err(output(source))
            }
        }
    }

    fn commit(mut self) -> Result<(), CliError> {
        fs::rename(&self.tmp, &self.dest)
            .map_err(|source| CliError::Output { path: self.dest.display().to_string(), source })?;
        self.committed = true;
        interrupt::forget(&self.tmp);
        Ok(())
    }

    /// Removes the temporary (as dropping does).
    fn abandon(self) {}

    /// Writes `bytes` to `f` (this file's temporary), then renames it into
    /// place; on failure nothing is left behind.
    fn write_and_commit(self, mut f: fs::File, bytes: &[u8]) -> Result<(), CliError> {
        use std::io::Write;
        match f.write_all(bytes).and_then(|()| f.sync_all()) {
            Ok(()) => self.commit(),
            Err(source) => Err(CliError::Output { path: self.dest.display().to_string(), source }),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
            interrupt::forget(&self.tmp);
        }
    }
}

/// A file name made from scenario text (a scenario's `name`): ASCII
/// letters, digits, `-`, `_` and `.` kept, anything else `_`; never hidden,
/// never empty, at most 100 characters. It cannot name a directory or
/// leave the one it is joined to.
fn file_name_of(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .take(100)
        .collect();
    let name = cleaned.trim_start_matches('.');
    if name.is_empty() { "scenario".to_string() } else { name.to_string() }
}

/// Runs `system` writing its trace as JSON lines to `trace` and in the
/// Chrome trace-event format to `perfetto`; both files or neither.
fn run_traced(
    system: &crate::system::System,
    seed: u64,
    trace: Option<&Path>,
    perfetto: Option<&Path>,
) -> Result<Outcome, CliError> {
    let names = &system.names;
    let kinds: Vec<String> =
        (0..names.kind_count()).map(|k| names.kind_name(crate::service::Kind(k as u32)).to_string()).collect();
    let effects: Vec<String> =
        (0..names.effect_count()).map(|e| names.effect_name(crate::service::EffectId(e as u16)).to_string()).collect();
    let mut files: Vec<(AtomicFile, &Path)> = Vec::new();
    let (mut lines, mut chrome) = (None, None);
    for (dest, is_lines) in [(trace, true), (perfetto, false)] {
        let Some(dest) = dest else { continue };
        let (atomic, f) = match AtomicFile::create(dest) {
            Ok(x) => x,
            Err(e) => {
                files.into_iter().for_each(|(a, _)| a.abandon());
                return Err(e);
            }
        };
        files.push((atomic, dest));
        let (f, nodes) = (BufWriter::new(f), system.node_names());
        if is_lines {
            lines = Some(JsonLines::new(f, nodes, kinds.clone(), effects.clone()));
        } else {
            chrome = Some(crate::perfetto::Perfetto::new(f, nodes, kinds.clone(), effects.clone()));
        }
    }
    let mut sinks: Vec<&mut dyn crate::trace::TraceSink> = Vec::new();
    if let Some(s) = lines.as_mut() {
        sinks.push(s);
    }
    if let Some(s) = chrome.as_mut() {
        sinks.push(s);
    }
    let mut tee = crate::perfetto::Tee(sinks);
    let stop = Some(interrupt::watch());
    let result = sim::run_with(system, seed, RunOptions { trace: Some(&mut tee), stop, ..Default::default() });
    drop(tee);
    drop((lines, chrome));
    match result {
        Ok(o) if o.stopped_by == StopReason::Interrupted => {
            files.into_iter().for_each(|(a, _)| a.abandon());
            Ok(o)
        }
        Ok(o) => {
            for (atomic, _) in files {
                atomic.commit()?;
            }
            Ok(o)
        }
        Err(e) => {
            let first = files.first().map(|(_, d)| d.display().to_string()).unwrap_or_default();
            files.into_iter().for_each(|(a, _)| a.abandon());
            Err(match e {
                SetupError::Trace(source) => CliError::Output { path: first, source },
                e => e.into(),
            })
        }
    }
}

fn run(
    file: &Path,
    seed: Option<u64>,
    json: bool,
    trace: Option<&Path>,
    perfetto: Option<&Path>,
) -> Result<u8, CliError> {
    // Before any file exists: a signal from here on removes what it finds.
    interrupt::watch();
    let ScenarioFile { path, text, loaded, .. } = read_scenario(file)?;
    print_warnings(&loaded, &text);
    let system = &loaded.system;
    let seed = seed.unwrap_or(system.seed);
    #[expect(clippy::disallowed_methods, reason = "wall-clock rate for the user; never reaches the simulation")]
    let started = std::time::Instant::now();
    let outcome = if trace.is_none() && perfetto.is_none() {
        sim::run_with(system, seed, RunOptions { stop: Some(interrupt::watch()), ..Default::default() })?
    } else {
        run_traced(system, seed, trace, perfetto)?
    };
    let wall = started.elapsed();
    let reproduce = format!("faultline run {path} --seed {seed}");
    if json {
        let mut v = serde_json::to_value(&outcome).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("question".into(), loaded.scenario.question.clone().into());
            let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
            obj.insert("scenario_warnings".into(), warnings.into());
            obj.insert("reproduce".into(), reproduce.into());
            obj.insert("wall_ms".into(), (wall.as_secs_f64() * 1e3).into());
            obj.insert("events_per_s".into(), (outcome.events as f64 / wall.as_secs_f64().max(1e-9)).round().into());
        }
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        out!("{}", render(&outcome, &loaded.scenario.question, &path, Some(wall)));
    }
    Ok(match outcome.stopped_by {
        StopReason::Completed => exit::of(outcome.verdict()),
        StopReason::Interrupted => {
            let files: Vec<String> = [trace, perfetto].into_iter().flatten().map(|p| p.display().to_string()).collect();
            if files.is_empty() {
                errln!("interrupted: the run stopped early; its verdicts cover only part of the scenario");
            } else {
                errln!("interrupted: the run stopped early; nothing written to {}", files.join(" or "));
            }
            interrupt::exit_code()
        }
        _ => {
            errln!(
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
        StopReason::EventsPendingMax { limit } => {
            format!("more than {limit} events were waiting at once (a timeout or a retry far shorter than the work?)")
        }
        StopReason::Interrupted => "interrupted by a signal (SIGINT or SIGTERM)".into(),
    }
}

fn sweep(
    file: &Path,
    seeds: SeedRange,
    jobs: Option<usize>,
    shard: Option<Shard>,
    json: bool,
    out: Option<&Path>,
) -> Result<u8, CliError> {
    use std::io::IsTerminal;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    // Ctrl-C (or SIGTERM) stops the sweep: seeds under way stop too and
    // count for nothing; a second signal ends the process.
    let stop = interrupt::watch();
    let ScenarioFile { path, loaded, hash, .. } = read_scenario(file)?;
    let system = &loaded.system;
    let range = shard.map_or(seeds, |s| seeds.shard(s));
    let jobs = jobs.unwrap_or_else(all_cores).clamp(1, 1024);
    if let Some(dir) = out {
        fs::create_dir_all(dir).map_err(|source| CliError::Output { path: dir.display().to_string(), source })?;
    }
    // The first seed alone: a system that cannot be set up fails here, once.
    sim::run_bare_until(system, range.start, Some(stop))?;

    let (done, failing) = (AtomicU64::new(0), AtomicU64::new(0));
    let progress = |d: u64, f: u64| {
        done.store(d, Ordering::Relaxed);
        failing.store(f, Ordering::Relaxed);
    };
    let show_progress = !json && io::stderr().is_terminal();
    let finished = AtomicBool::new(false);
    #[expect(
        clippy::disallowed_methods,
        reason = "wall-clock rate and progress for the user; never reaches a simulation"
    )]
    let started = std::time::Instant::now();
    let result = std::thread::scope(|scope| {
        if show_progress {
            scope.spawn(|| {
                while !finished.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    let (d, f) = (done.load(Ordering::Relaxed), failing.load(Ordering::Relaxed));
                    err!("\r\x1b[K{}", progress_line(d, f, range.len(), started.elapsed()));
                }
                err!("\r\x1b[K");
            });
        }
        let opts = crate::sweep::Options { jobs, progress: Some(&progress), stop, each: None };
        let r = crate::sweep::sweep(system, &path, &hash, range, &opts);
        finished.store(true, Ordering::Relaxed);
        r
    });
    let (tally, complete) = result?;
    let timing = Timing { wall_ms: started.elapsed().as_millis() as u64, jobs };
    let summary = Summary::of(&tally, complete, Some(timing));
    if json {
        outln!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
    } else {
        out!("{}", summary.render());
    }
    if let Some(dir) = out {
        if complete {
            let name = file_name_of(&tally.scenario);
            let dest = dir.join(format!("{name}-{}-{}.tally.json", tally.range.start, tally.range.end));
            let (atomic, f) = AtomicFile::create(&dest)?;
            let mut json = serde_json::to_vec(&tally).unwrap_or_default();
            json.push(b'\n');
            atomic.write_and_commit(f, &json)?;
            errln!("results of seeds {} written to {}", tally.range, dest.display());
        } else {
            errln!("interrupted: no results written to {}", dir.display());
        }
    }
    if tally.stopped_at_limit > 0 {
        errln!(
            "warning: {} seeds stopped at a limit (events_max or entities_max); their verdicts cover part of the run",
            tally.stopped_at_limit
        );
    }
    Ok(if !complete { interrupt::exit_code() } else { exit::of(summary.verdict()) })
}

/// One scenario's page in a report: run (or sweep) it and write its page into `dir`.
fn report_page(
    file: &Path,
    seeds: Option<SeedRange>,
    seed: Option<u64>,
    dir: &Path,
) -> Result<crate::report::Row, CliError> {
    use std::sync::Mutex;

    let ScenarioFile { path, text, loaded, hash } = read_scenario(file)?;
    let stop = interrupt::watch();
    let interrupted = || CliError::Interrupted("no report written".into());
    let system = &loaded.system;
    let mut sweep_summary = None;
    let mut lost = Vec::new();
    let detail_seed = match seeds {
        None => seed.unwrap_or(system.seed),
        Some(range) => {
            let per_seed = Mutex::new(Vec::new());
            let each = |seed: u64, o: &Outcome| {
                per_seed.lock().expect("not poisoned").push((seed, crate::report::lost_of(o).0))
            };
            let opts = crate::sweep::Options { jobs: all_cores(), progress: None, stop, each: Some(&each) };
            let (tally, complete) = crate::sweep::sweep(system, &path, &hash, range, &opts)?;
            if !complete {
                return Err(interrupted());
            }
            let mut v = per_seed.into_inner().expect("not poisoned");
            v.sort();
            lost = v.into_iter().map(|(_, l)| l).collect();
            let first = tally.failing_seeds.first().copied().unwrap_or(range.start);
            sweep_summary = Some(Summary::of(&tally, true, None));
            first
        }
    };
    let outcome =
        sim::run_with(system, detail_seed, RunOptions { series: true, stop: Some(stop), ..Default::default() })?;
    if outcome.stopped_by == StopReason::Interrupted {
        return Err(interrupted());
    }
    let page = crate::report::Page {
        loaded: &loaded,
        file: &path,
        text: &text,
        outcome: &outcome,
        sweep: sweep_summary.as_ref(),
        lost_per_seed: sweep_summary.as_ref().map(|_| lost.as_slice()),
    };
    crate::report::write_page(dir, &page)?;
    let verdicts = match &sweep_summary {
        Some(s) => s.invariants.iter().map(|i| (i.name.clone(), i.failing, s.seeds)).collect(),
        None => outcome.invariants.iter().map(|v| (v.name.clone(), u64::from(v.violated()), 1)).collect(),
    };
    let (lost, duplicated, p99, accepted, completed) = match &sweep_summary {
        Some(s) => {
            let m = &s.metrics;
            (m.lost, m.duplicated, m.e2e_latency_s.p99, m.accepted, m.completed)
        }
        None => (
            outcome.metrics.lost,
            outcome.invariants.iter().filter_map(|v| v.counts.get("extra_applications")).sum(),
            outcome.metrics.e2e_latency_s.p99,
            outcome.metrics.accepted,
            outcome.metrics.completed,
        ),
    };
    Ok(crate::report::Row {
        name: system.name.clone(),
        dir: dir.file_name().map(|d| d.to_string_lossy().into_owned()).unwrap_or_default(),
        question: loaded.scenario.question.clone(),
        verdicts,
        lost,
        duplicated,
        p99_s: p99,
        accepted,
        completed,
        messages_per_entity: outcome.metrics.handled as f64 / outcome.metrics.accepted.max(1) as f64,
    })
}

fn report(files: &[PathBuf], seeds: Option<SeedRange>, seed: Option<u64>, out: Option<&Path>) -> Result<u8, CliError> {
    interrupt::watch();
    let scenarios = expand(files, ".ron", "no .ron scenario files here")?;
    // Check every file before the work, so a typo costs nothing.
    for f in &scenarios {
        scenario::load(&f.to_string_lossy())?;
    }
    // A report keeps a number per seed for its histogram.
    const REPORT_SEEDS_MAX: u64 = 1_000_000;
    if let Some(r) = seeds
        && r.len() > REPORT_SEEDS_MAX
    {
        return Err(CliError::Input {
            path: format!("--seeds {r}"),
            message: format!(
                "a report sweeps at most {REPORT_SEEDS_MAX} seeds ({} asked); `faultline sweep` takes any number",
                r.len()
            ),
        });
    }

    let single = scenarios.len() == 1 && !files[0].is_dir();
    let dir = match out {
        Some(d) => d.to_path_buf(),
        None if single => Path::new("reports").join(stem(&scenarios[0])),
        None if files.len() == 1 => Path::new("reports").join(stem(&files[0])),
        None => Path::new("reports").join("comparison"),
    };
    let existed = dir.exists();
    fs::create_dir_all(&dir).map_err(|source| CliError::Output { path: dir.display().to_string(), source })?;
    // Everything is written into a hidden directory inside `dir`, then
    // moved into place: a report that fails or is interrupted leaves nothing.
    let staging = dir.join(".faultline-report.partial");
    interrupt::remove(&staging);
    let made = interrupt::create_registered(&staging, || fs::create_dir(&staging));
    let result = made
        .map_err(|source| CliError::Output { path: staging.display().to_string(), source })
        .and_then(|()| report_into(&staging, &scenarios, files, seeds, seed, single))
        .and_then(|()| {
            if interrupt::requested() {
                return Err(CliError::Interrupted("no report written".into()));
            }
            move_into(&staging, &dir).map_err(|source| CliError::Output { path: dir.display().to_string(), source })
        });
    interrupt::remove(&staging);
    interrupt::forget(&staging);
    if result.is_err() && !existed {
        let _ = fs::remove_dir(&dir);
    }
    result?;
    outln!("report written to {}", dir.join("index.html").display());
    Ok(exit::OK)
}

/// Writes a report's pages (and, for several scenarios, its index) into `dir`.
fn report_into(
    dir: &Path,
    scenarios: &[PathBuf],
    files: &[PathBuf],
    seeds: Option<SeedRange>,
    seed: Option<u64>,
    single: bool,
) -> Result<(), CliError> {
    if single {
        report_page(&scenarios[0], seeds, seed, dir)?;
        return Ok(());
    }
    let mut rows = Vec::new();
    for f in scenarios {
        let row = report_page(f, seeds, seed, &dir.join(stem(f)))?;
        errln!("  {}: done", row.name);
        rows.push(row);
    }
    let seeds_text = match (seeds, seed) {
        (Some(r), _) => format!("Seeds {r}, the same for every design; each page details its first failing seed."),
        (None, Some(s)) => format!("Seed {s} for every design."),
        (None, None) => "Each scenario under its own default seed.".to_string(),
    };
    let title =
        if files.len() == 1 { format!("faultline report: {}", files[0].display()) } else { "faultline report".into() };
    crate::report::write_index(dir, &title, &seeds_text, &rows)?;
    Ok(())
}

/// A file's name without its extension.
fn stem(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Moves every file under `from` to the same place under `to`, replacing
/// what is there (each file by a rename: complete or absent).
fn move_into(from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir_all(to)?;
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(from)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for e in entries {
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            move_into(&e.path(), &dest)?;
        } else {
            fs::rename(e.path(), dest)?;
        }
    }
    Ok(())
}

fn shrink(file: &Path, seed: u64, out: &Path, invariant: Option<&str>) -> Result<u8, CliError> {
    let path = file.to_string_lossy().into_owned();
    interrupt::watch();
    let loaded = scenario::load(&path)?;
    // Fail early on an unwritable destination, before the work; write nothing meanwhile.
    AtomicFile::create(out)?.0.abandon();
    #[expect(clippy::disallowed_methods, reason = "wall-clock time for the user; never reaches a simulation")]
    let started = std::time::Instant::now();
    let shrunk = match crate::shrink::shrink_until(&loaded.scenario, seed, invariant, Some(interrupt::watch())) {
        Ok(s) => s,
        Err(crate::shrink::ShrinkError::Interrupted) => {
            return Err(CliError::Interrupted(format!("the shrink stopped; nothing written to {}", out.display())));
        }
        Err(e) => return Err(e.into()),
    };
    let secs = started.elapsed().as_secs_f64();
    let text = crate::shrink::render(&shrunk, &path, &out.display().to_string(), seed, secs);
    let (atomic, f) = AtomicFile::create(out)?;
    atomic.write_and_commit(f, text.as_bytes())?;
    outln!(
        "shrunk {path} under seed {seed} in {secs:.1} s: {} reductions kept of {} candidates tried",
        shrunk.kept.len(),
        shrunk.tried
    );
    for k in &shrunk.kept {
        outln!("  - {k}");
    }
    outln!("{} still fails {}: faultline run {}", out.display(), shrunk.invariant, out.display());
    Ok(exit::OK)
}

/// Prints the scenario's warnings (legal, but likely mistakes) to stderr.
fn print_warnings(loaded: &scenario::Loaded, text: &str) {
    if !loaded.warnings.is_empty() {
        errln!("{}", scenario::render_warnings(&loaded.file, text, &loaded.warnings));
    }
}

/// A scenario file as sweeps and reports read it.
struct ScenarioFile {
    /// The path as given.
    path: String,
    /// Its text.
    text: String,
    loaded: scenario::Loaded,
    /// Hash of the text: results of one text merge, of two texts do not.
    hash: String,
}

fn read_scenario(file: &Path) -> Result<ScenarioFile, CliError> {
    let path = file.to_string_lossy().into_owned();
    let text = scenario::read_text(&path)?;
    let loaded = scenario::parse(&path, &text)?;
    let hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()));
    Ok(ScenarioFile { path, text, loaded, hash })
}

/// Threads for a sweep when none are asked for: one per core.
fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `[####      ] 1,234/10,000 seeds  412.0 seeds/s  3 failing  ETA 21s`
fn progress_line(done: u64, failing: u64, total: u64, elapsed: Duration) -> String {
    const WIDTH: u64 = 30;
    let filled = (done.min(total) * WIDTH).checked_div(total).unwrap_or(WIDTH);
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-3);
    let eta = if rate > 0.0 { format!("{:.0}s", total.saturating_sub(done) as f64 / rate) } else { "?".into() };
    format!(
        "[{}{}] {}/{} seeds  {rate:.1} seeds/s  {} failing  ETA {eta}",
        "#".repeat(filled as usize),
        " ".repeat((WIDTH - filled) as usize),
        thousands(done),
        thousands(total),
        thousands(failing)
    )
}

fn merge(paths: &[PathBuf], json: bool) -> Result<u8, CliError> {
    let files =
        expand(paths, ".tally.json", "no .tally.json files here (write them with `faultline sweep ... --out DIR`)")?;
    let mut tallies = Vec::new();
    for f in &files {
        // Tally files are small: read no more than a scenario's cap.
        let text = scenario::read_text(&f.to_string_lossy())?;
        let t: Tally = serde_json::from_str(&text).map_err(|e| CliError::Input {
            path: format!("{}:{}:{}", f.display(), e.line(), e.column()),
            message: format!("not the results of `faultline sweep --out`: {e}"),
        })?;
        t.check().map_err(|message| CliError::Input { path: f.display().to_string(), message })?;
        tallies.push(t);
    }
    let tally = Tally::merge(tallies)?;
    let summary = Summary::of(&tally, true, None);
    if json {
        outln!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
    } else {
        out!("{}", summary.render());
    }
    Ok(exit::of(summary.verdict()))
}

/// `paths` with each directory replaced by its files whose names end in
/// `suffix`, sorted; a directory without any is an error (`none_here`).
fn expand(paths: &[PathBuf], suffix: &str, none_here: &str) -> Result<Vec<PathBuf>, CliError> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let entries =
            fs::read_dir(p).map_err(|e| CliError::Input { path: p.display().to_string(), message: e.to_string() })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| f.to_string_lossy().ends_with(suffix))
            .collect();
        found.sort();
        if found.is_empty() {
            return Err(CliError::Input { path: p.display().to_string(), message: none_here.into() });
        }
        out.extend(found);
    }
    Ok(out)
}

pub use crate::format::{secs, thousands};

/// Each station's latency, the backlogs and the autoscalers' work, as `render` shows them.
fn render_stations(s: &mut String, m: &crate::outcome::Metrics) {
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
    for (name, sc) in m.services.iter().filter_map(|(n, sm)| Some((n, sm.scaling.as_ref()?))) {
        const SHOWN: usize = 6;
        let steps: Vec<String> =
            sc.changes.iter().take(SHOWN).map(|c| format!("{} at {}", c.instances, secs(c.at_s))).collect();
        let more = sc.changes.len().saturating_sub(SHOWN);
        let more = if more > 0 { format!(", {more} more") } else { String::new() };
        let _ = writeln!(
            s,
            "scaling     {name}: {} to {} instances, {:.2} on average; {} changes{}{}{more}",
            sc.instances_min,
            sc.instances_max,
            sc.instances_mean,
            sc.changes.len(),
            if steps.is_empty() { "" } else { ": " },
            steps.join(", ")
        );
    }
    render_rehydration(s, m);
}

/// One line per re-hydrating service (its snapshots, their size, and the
/// time to load them and to catch up) and per event-sourced one (its
/// rebuilds, the events replayed and the history retention took).
fn render_rehydration(s: &mut String, m: &crate::outcome::Metrics) {
    for (name, r) in m.services.iter().filter_map(|(n, sm)| Some((n, sm.rebuild.as_ref()?))) {
        let _ = writeln!(
            s,
            "rebuild     {name}: {}, {:.0} events replayed on average (at most {}), from snapshots of up to {} \
             rows; {} events retention had deleted; within {} (mean {})",
            if r.rebuilds == 1 { "1 rebuild".to_string() } else { format!("{} rebuilds", r.rebuilds) },
            r.events_mean,
            thousands(r.events_max),
            thousands(r.snapshot_rows_max),
            thousands(r.expired_max),
            secs(r.recovery_s_max),
            secs(r.recovery_s_mean),
        );
    }
    for (name, r) in m.services.iter().filter_map(|(n, sm)| Some((n, sm.rehydration.as_ref()?))) {
        let caught = if r.caught_up == 0 {
            "never caught up".to_string()
        } else {
            format!("caught up within {} ({} of {})", secs(r.catch_up_s_max), r.caught_up, r.snapshots)
        };
        let n = |count: u64, one: &str| format!("{count} {one}{}", if count == 1 { "" } else { "s" });
        let _ = writeln!(
            s,
            "rehydrate   {name}: {} of {:.0} rows on average (at most {}), {}; \
             loaded within {} (mean {}); {caught}",
            n(r.snapshots, "snapshot"),
            r.rows_mean,
            thousands(r.rows_max),
            n(r.requests, "request"),
            secs(r.load_s_max),
            secs(r.load_s_mean),
        );
    }
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
        // A latency of the entities that finished says nothing of those that did not.
        let left_out = if m.e2e_not_completed > 0 {
            format!("; {} accepted never completed and are not in it", thousands(m.e2e_not_completed))
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "latency     end to end, of the {} completed{left_out}: mean {}, p50 {}, p99 {}, max {}",
            thousands(l.count),
            secs(l.mean),
            secs(l.p50),
            secs(l.p99),
            secs(l.max)
        );
    } else if m.accepted > 0 {
        let _ = writeln!(s, "latency     end to end: none of the {} accepted completed", thousands(m.accepted));
    }
    render_stations(&mut s, m);
    s.push('\n');
    for v in &o.invariants {
        let counts: Vec<String> = v.counts.iter().map(|(k, n)| format!("{k} {}", thousands(*n))).collect();
        match v.status {
            Status::Holds => {
                let _ = writeln!(s, "PASS  {}  ({})", v.name, counts.join(", "));
            }
            Status::Violated => {
                let _ = writeln!(s, "FAIL  {}: {} violating  ({})", v.name, thousands(v.violations), counts.join(", "));
            }
            Status::Inconclusive => {
                let why = v.inconclusive.as_deref().unwrap_or("it judged nothing");
                let _ = writeln!(s, "INCONCLUSIVE  {}: {why}  ({})", v.name, counts.join(", "));
            }
        }
        if let Some(story) = &v.example {
            let _ = writeln!(s, "      example:");
            for line in &story.lines {
                let _ = writeln!(s, "      {line}");
            }
        }
    }
    for w in &o.warnings {
        let _ = writeln!(s, "WARNING  {w}");
    }
    if !matches!(o.stopped_by, StopReason::Completed) {
        let _ = writeln!(s, "\nSTOPPED EARLY: {}", stop_text(&o.stopped_by));
        if o.invariants.iter().any(|v| v.violated()) {
            let _ = writeln!(s, "              (no example is told for a run stopped early)");
        }
    }
    let _ = writeln!(s, "\nfingerprint {}", o.fingerprint);
    let _ = writeln!(s, "reproduce   faultline run {file} --seed {}", o.seed);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_name_from_scenario_text_stays_one_plain_name() {
        assert_eq!(file_name_of("orders-log_2.v1"), "orders-log_2.v1");
        assert_eq!(file_name_of("../../x"), "_.._x");
        assert_eq!(file_name_of("/etc/passwd"), "_etc_passwd");
        assert_eq!(file_name_of("a b\\c\u{1F642}"), "a_b_c_");
        assert_eq!(file_name_of(".."), "scenario");
        assert_eq!(file_name_of(".hidden"), "hidden");
        assert_eq!(file_name_of(""), "scenario");
        assert_eq!(file_name_of(&"x".repeat(500)).len(), 100);
    }
}
