//! The fuzzer: mutants of every bundled scenario and of sweep results, run
//! through the real CLI in child processes, each under a time and a memory
//! limit.
//!
//! ```text
//! cargo run --release --example fuzz -- --mutants 100000
//! cargo run --release --example fuzz -- --start 4711 --mutants 1   # one mutant again
//! ```
//!
//! Each mutant (see `faultline::fuzz`) of a scenario is checked with
//! `faultline check`; one that passes is run (bounded to 1,000,000 events,
//! with its stories). Each mutant of a `.tally.json` file is merged with
//! `faultline merge --json`. A mutant fails the fuzzer when its command
//! panics (exit 101), dies of a signal (an abort), runs past 10 s, peaks
//! above 1 GiB of resident memory, exits with a code the command never
//! gives, or refuses text without naming `file:line:column`. Failing inputs
//! are kept in `target/fuzz/failures/`; the exit code is 1 if there is one.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Events a run of a valid mutant may take: long enough for stories,
/// short enough for 100,000 mutants in under an hour on two cores.
const RUN_EVENTS_MAX: u64 = 1_000_000;
const TIMEOUT: Duration = Duration::from_secs(10);
const RSS_MAX_KB: i64 = 1 << 20;
/// Address space of a child: a runaway allocation fails here, long before
/// it can hurt the machine.
const ADDRESS_SPACE_MAX: u64 = 4 << 30;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        // Child modes.
        Some("__cli") => {
            limit_self();
            faultline::cli::main_from(std::iter::once("faultline".to_string()).chain(args[2..].to_vec()))
        }
        Some("__run") => {
            limit_self();
            bounded_run(&args[2])
        }
        _ => fuzz(&args[1..]),
    }
}

/// A child limits its own address space (and writes no core dump). Set
/// here rather than between fork and exec, so the child is spawned without
/// a copy of the parent, whose size would count in its peak memory.
fn limit_self() {
    let as_limit = libc::rlimit { rlim_cur: ADDRESS_SPACE_MAX, rlim_max: ADDRESS_SPACE_MAX };
    let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain system calls with valid pointers.
    unsafe {
        libc::setrlimit(libc::RLIMIT_AS, &as_limit);
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
    }
}

/// Runs a scenario that `check` accepted, bounded to [`RUN_EVENTS_MAX`]
/// events, and renders its outcome as `run` and `run --json` do.
fn bounded_run(file: &str) -> ExitCode {
    let loaded = match faultline::scenario::load(file) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut sys = loaded.system;
    sys.limits.events_max = sys.limits.events_max.min(RUN_EVENTS_MAX);
    match faultline::sim::run(&sys, sys.seed) {
        Ok(o) => {
            let text = faultline::cli::render(&o, &loaded.scenario.question, file, None);
            let json = serde_json::to_string(&o).expect("an outcome serialises");
            println!("{} {}", text.len(), json.len());
            let code = match o.stopped_by {
                faultline::outcome::StopReason::Completed => faultline::cli::exit::of(o.verdict()),
                _ => faultline::cli::exit::INPUT,
            };
            ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

#[derive(Clone, Copy)]
struct Options {
    mutants: u64,
    start: u64,
    seed: u64,
    jobs: usize,
    /// Print the first line each child wrote to stderr.
    verbose: bool,
    /// Print the mutants instead of running them.
    print: bool,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        mutants: 10_000,
        start: 0,
        seed: 1,
        jobs: std::thread::available_parallelism().map_or(2, usize::from),
        verbose: false,
        print: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value =
            || it.next().ok_or(format!("{a} needs a value"))?.parse::<u64>().map_err(|e| format!("{a}: {e}"));
        match a.as_str() {
            "--mutants" => o.mutants = value()?,
            "--start" => o.start = value()?,
            "--seed" => o.seed = value()?,
            "--jobs" => o.jobs = value()?.clamp(1, 64) as usize,
            "--verbose" => o.verbose = true,
            "--print" => o.print = true,
            _ => return Err(format!("unknown argument {a}: use --mutants N, --start I, --seed S, --jobs J")),
        }
    }
    Ok(o)
}

/// A base text to mutate.
struct Base {
    name: String,
    text: String,
    tally: bool,
}

/// What a child did.
struct Ran {
    code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    rss_kb: i64,
    wall: Duration,
    stderr: String,
}

/// Runs this executable in child mode `mode` with `args`, under the limits.
fn child(mode: &str, args: &[&str], dir: &Path) -> Ran {
    let err_path = dir.join("stderr");
    let err = std::fs::File::create(&err_path).expect("stderr file");
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.arg(mode).args(args).current_dir(dir).stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
    #[expect(clippy::disallowed_methods, reason = "a child's time limit; never reaches a simulation")]
    let started = Instant::now();
    let child = cmd.spawn().expect("spawn a child");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value of a plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut timed_out = false;
    loop {
        // SAFETY: pid is our own child, not yet reaped; the pointers are valid.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert!(r == 0, "wait4 failed");
        if started.elapsed() > TIMEOUT && !timed_out {
            timed_out = true;
            // SAFETY: killing our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let wall = started.elapsed();
    drop(child);
    let stderr = String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default()).into_owned();
    let (code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else {
        (None, Some(libc::WTERMSIG(status)))
    };
    Ran { code, signal, timed_out, rss_kb: usage.ru_maxrss, wall, stderr }
}

#[derive(Default)]
struct Counts {
    mutants: u64,
    scenario_mutants: u64,
    tally_mutants: u64,
    checked_ok: u64,
    checked_refused: u64,
    runs: u64,
    run_codes: [u64; 4],
    merged: u64,
    merge_refused_parse: u64,
    merge_refused_inconsistent: u64,
    children: u64,
    max_wall: (Duration, u64),
    max_rss_kb: (i64, u64),
    failures: Vec<(u64, String, String)>,
}

impl Counts {
    fn saw(&mut self, index: u64, r: &Ran) {
        self.children += 1;
        if r.wall > self.max_wall.0 {
            self.max_wall = (r.wall, index);
        }
        if r.rss_kb > self.max_rss_kb.0 {
            self.max_rss_kb = (r.rss_kb, index);
        }
    }
}

impl Counts {
    /// Adds another worker's counts.
    fn absorb(&mut self, w: Counts) {
        self.mutants += w.mutants;
        self.scenario_mutants += w.scenario_mutants;
        self.tally_mutants += w.tally_mutants;
        self.checked_ok += w.checked_ok;
        self.checked_refused += w.checked_refused;
        self.runs += w.runs;
        for (a, b) in self.run_codes.iter_mut().zip(w.run_codes) {
            *a += b;
        }
        self.merged += w.merged;
        self.merge_refused_parse += w.merge_refused_parse;
        self.merge_refused_inconsistent += w.merge_refused_inconsistent;
        self.children += w.children;
        self.max_wall = self.max_wall.max(w.max_wall);
        self.max_rss_kb = self.max_rss_kb.max(w.max_rss_kb);
        self.failures.extend(w.failures);
    }
}

/// Why a child's result is a finding, if it is one.
fn finding(r: &Ran, codes: &[i32]) -> Option<String> {
    if r.timed_out {
        return Some("hang".into());
    }
    if r.rss_kb > RSS_MAX_KB {
        return Some(format!("memory ({} MiB)", r.rss_kb >> 10));
    }
    match (r.code, r.signal) {
        (Some(101), _) => Some("panic".into()),
        (_, Some(s)) => Some(format!("signal {s}{}", if s == libc::SIGABRT { " (abort)" } else { "" })),
        (Some(c), _) if !codes.contains(&c) => Some(format!("exit {c}")),
        _ => None,
    }
}

/// Runs mutant `index` of `base`, counting what it did into `local` (its worker's).
fn one(index: u64, base: &Base, o: &Options, dir: &Path, local: &mut Counts) {
    let seed = o.seed;
    let child = |mode: &str, args: &[&str], dir: &Path| {
        let r = child(mode, args, dir);
        if o.verbose {
            eprintln!("{index} {} {:?}: {}", args[0], r.code, r.stderr.lines().next().unwrap_or(""));
        }
        r
    };
    let text = faultline::fuzz::mutant(&base.text, seed, index);
    if o.print {
        println!("// mutant {index} of {}\n{text}", base.name);
        return;
    }
    let mut found: Vec<(String, String)> = Vec::new();
    local.mutants += 1;
    if base.tally {
        local.tally_mutants += 1;
        let file = "m.tally.json";
        std::fs::write(dir.join(file), &text).expect("write a mutant");
        let r = child("__cli", &["merge", file, "--json"], dir);
        local.saw(index, &r);
        if let Some(f) = finding(&r, &[0, 1, 2, 3]) {
            found.push((f, r.stderr.clone()));
        } else if r.code == Some(2) {
            if r.stderr.strip_prefix("error: ").is_some_and(|e| faultline::fuzz::positioned(e, file)) {
                local.merge_refused_parse += 1;
            } else if r.stderr.contains("inconsistent results")
                || r.stderr.contains("do not merge")
                || r.stderr.contains("larger than 4 MB")
            {
                // Well-formed JSON whose numbers contradict each other: the file as a whole is refused.
                local.merge_refused_inconsistent += 1;
            } else {
                found.push(("refused without a position".into(), r.stderr.clone()));
            }
        } else {
            local.merged += 1;
        }
    } else {
        local.scenario_mutants += 1;
        let file = "m.ron";
        std::fs::write(dir.join(file), &text).expect("write a mutant");
        let r = child("__cli", &["check", file], dir);
        local.saw(index, &r);
        if let Some(f) = finding(&r, &[0, 2]) {
            found.push((format!("check: {f}"), r.stderr.clone()));
        } else if r.code == Some(2) {
            local.checked_refused += 1;
            // A file past the input limit is refused as a whole.
            if !faultline::fuzz::positioned(&r.stderr, file)
                && !r.stderr.starts_with("m.ron: the file is larger than 4 MB")
            {
                found.push(("check refused without a position".into(), r.stderr.clone()));
            }
        } else {
            local.checked_ok += 1;
            let r = child("__run", &[file], dir);
            local.saw(index, &r);
            local.runs += 1;
            if let Some(f) = finding(&r, &[0, 1, 2, 3]) {
                found.push((format!("run: {f}"), r.stderr.clone()));
            } else if r.stderr.starts_with("error:") {
                // `check` accepted it, so it must set up.
                found.push(("run: a checked scenario does not set up".into(), r.stderr.clone()));
            } else if let Some(c) = r.code {
                local.run_codes[c.clamp(0, 3) as usize] += 1;
            }
        }
    }
    if !found.is_empty() {
        let keep = Path::new("target/fuzz/failures");
        let _ = std::fs::create_dir_all(keep);
        let ext = if base.tally { "tally.json" } else { "ron" };
        let _ = std::fs::write(keep.join(format!("{index}.{ext}")), &text);
        for (what, stderr) in found {
            let excerpt: String = stderr.chars().take(400).collect();
            eprintln!("FAIL mutant {index} of {}: {what}\n{excerpt}", base.name);
            local.failures.push((index, base.name.clone(), what));
        }
    }
}

/// The bases: every bundled scenario and conformance situation, and the
/// results of small sweeps.
fn bases(work: &Path) -> Vec<Base> {
    let mut files: Vec<PathBuf> = ["scenarios", "conformance/scenarios"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).expect("run from the repository root"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    let mut out: Vec<Base> = files
        .iter()
        .map(|p| Base {
            name: p.display().to_string(),
            text: std::fs::read_to_string(p).expect("a bundled scenario"),
            tally: false,
        })
        .collect();
    for s in ["orders-log", "poison-dlq", "last-item-race", "email-fanout"] {
        let scenario = std::fs::canonicalize(format!("scenarios/{s}.ron")).expect("bundled");
        let r = child("__cli", &["sweep", &scenario.to_string_lossy(), "--seeds", "0..3", "--out", "out"], work);
        assert!(r.code.is_some_and(|c| c <= 3), "sweep of {s}: {}", r.stderr);
    }
    let mut found: Vec<PathBuf> =
        std::fs::read_dir(work.join("out")).expect("tallies").filter_map(|e| e.ok().map(|e| e.path())).collect();
    found.sort();
    for p in found {
        out.push(Base {
            name: p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            text: std::fs::read_to_string(&p).expect("a tally"),
            tally: true,
        });
    }
    out
}

fn fuzz(args: &[String]) -> ExitCode {
    let o = match parse_options(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let work = std::env::current_dir().expect("cwd").join(format!("target/fuzz/work-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("a work directory");
    let bases = bases(&work);
    let (scenarios, tallies): (Vec<&Base>, Vec<&Base>) = bases.iter().partition(|b| !b.tally);
    eprintln!(
        "fuzzing {} mutants from {} (seed {}): {} scenarios and {} tally files, {} jobs",
        o.mutants,
        o.start,
        o.seed,
        scenarios.len(),
        tallies.len(),
        o.jobs
    );
    let next = AtomicU64::new(o.start);
    let failures = AtomicU64::new(0);
    let end = o.start.saturating_add(o.mutants);
    #[expect(clippy::disallowed_methods, reason = "progress for the user; never reaches a simulation")]
    let started = Instant::now();
    // Each worker counts on its own; the counts are added up at the end.
    let c = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..o.jobs)
            .map(|j| {
                let (dir, next, failures, scenarios, tallies) =
                    (work.join(format!("w{j}")), &next, &failures, &scenarios, &tallies);
                std::fs::create_dir_all(&dir).expect("a worker directory");
                scope.spawn(move || {
                    let mut local = Counts::default();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= end {
                            break local;
                        }
                        // One in ten mutants is of a tally file.
                        let base = if i % 10 == 9 {
                            tallies[(i / 10) as usize % tallies.len()]
                        } else {
                            scenarios[i as usize % scenarios.len()]
                        };
                        let before = local.failures.len();
                        one(i, base, &o, &dir, &mut local);
                        let found = (local.failures.len() - before) as u64;
                        let f = failures.fetch_add(found, Ordering::Relaxed) + found;
                        let done = i + 1 - o.start;
                        if done.is_multiple_of(2000) {
                            eprintln!("  {done} mutants, {f} failures, {:.0} s", started.elapsed().as_secs_f64());
                        }
                    }
                })
            })
            .collect();
        let mut all = Counts::default();
        for w in workers {
            all.absorb(w.join().expect("a worker ends"));
        }
        all.failures.sort();
        all
    });
    let _ = std::fs::remove_dir_all(&work);
    let kinds = |k: &str| c.failures.iter().filter(|f| f.2.contains(k)).count();
    println!(
        "mutants            {} ({} of scenarios, {} of tally files), seed {}, from {}",
        c.mutants, c.scenario_mutants, c.tally_mutants, o.seed, o.start
    );
    println!(
        "check              {} accepted, {} refused with a position",
        c.checked_ok,
        c.checked_refused - kinds("check refused") as u64
    );
    println!(
        "run (bounded)      {} runs: {} held, {} violated, {} stopped at a limit, {} inconclusive",
        c.runs, c.run_codes[0], c.run_codes[1], c.run_codes[2], c.run_codes[3]
    );
    println!(
        "merge              {} merged, {} refused with a position, {} refused as a whole (inconsistent numbers, or past 4 MB)",
        c.merged, c.merge_refused_parse, c.merge_refused_inconsistent
    );
    println!("children           {} processes in {:.0} s", c.children, started.elapsed().as_secs_f64());
    println!("slowest            {:.2} s (mutant {})", c.max_wall.0.as_secs_f64(), c.max_wall.1);
    // A child's peak includes the fuzzer's own at the time it was spawned
    // (Linux carries it across fork and exec): keep that one small.
    // SAFETY: a zeroed rusage is valid; getrusage fills it.
    let own_kb = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u.ru_maxrss
    };
    println!(
        "most memory        {} MiB resident (mutant {}); the fuzzer's own peak, a floor of every child's figure: {} MiB",
        c.max_rss_kb.0 >> 10,
        c.max_rss_kb.1,
        own_kb >> 10
    );
    println!(
        "failures           {} panics, {} aborts or signals, {} past 10 s, {} over 1 GiB, {} without a position, {} other",
        kinds("panic"),
        kinds("signal"),
        kinds("hang"),
        kinds("memory"),
        kinds("without a position"),
        c.failures.len()
            - kinds("panic")
            - kinds("signal")
            - kinds("hang")
            - kinds("memory")
            - kinds("without a position")
    );
    for (i, base, what) in c.failures.iter().take(50) {
        println!(
            "  mutant {i} of {base}: {what}  (cargo run --release --example fuzz -- --start {i} --mutants 1 --seed {})",
            o.seed
        );
    }
    if c.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
