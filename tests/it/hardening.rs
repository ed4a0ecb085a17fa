//! Nothing a user types aborts, hangs, escapes its output directory or
//! leaves a partial file: the reproducers of issue 12, through the CLI.

use std::path::Path;

use crate::support::{faultline, parts, scenario_text, temp_dir};

/// Writes `text` to `dir/name` and returns the path as a string.
fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.to_string_lossy().into_owned()
}

#[test]
fn a_file_that_is_not_utf8_is_refused_at_the_first_bad_byte() {
    let dir = temp_dir("utf8");
    let mut bytes = scenario_text("orders-log.ron").into_bytes();
    let at = bytes.windows(9).position(|w| w == b"\"invoice\"").expect("invoice") + 3;
    bytes[at] = 0xff;
    let f = write(&dir, "bad.ron", &bytes);
    let (code, _, err) = parts(&faultline(&["check", &f]));
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with(&format!("{f}:27:26: error: not UTF-8 text: byte 0xff")), "{err}");
    assert!(err.contains("= help: save the file as UTF-8"), "{err}");
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let dir = temp_dir("bom");
    let f = write(&dir, "bom.ron", format!("\u{feff}{}", scenario_text("orders-log.ron")));
    let (code, out, err) = parts(&faultline(&["check", &f]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok: scenario `orders-log`"), "{out}");
}

#[test]
fn an_endless_or_huge_file_is_not_read_past_the_input_limit() {
    // /dev/zero never ends; a 5 MB file is larger than any scenario.
    let (code, _, err) = parts(&faultline(&["check", "/dev/zero"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/dev/zero: the file is larger than 4 MB, more than faultline reads"), "{err}");
    let dir = temp_dir("huge");
    let f = write(&dir, "huge.ron", " ".repeat(5 << 20));
    let (code, _, err) = parts(&faultline(&["check", &f]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("larger than 4 MB"), "{err}");
}

/// Every file and directory under `dir`, hidden ones too, relative and sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, at: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(at) else { return };
        for e in entries {
            let p = e.expect("entry").path();
            out.push(p.strip_prefix(base).expect("under base").to_string_lossy().into_owned());
            if p.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Bundled scenario `name` made to run for `duration` with its workload
/// until `stop` (its own are 20m and 15m): long enough to interrupt.
fn lengthened(dir: &Path, name: &str, duration: &str, stop: &str) -> String {
    let text = scenario_text(name)
        .replace("duration: \"20m\"", &format!("duration: {duration:?}"))
        .replace("stop: \"15m\"", &format!("stop: {stop:?}"));
    assert!(text.contains(duration) && text.contains(stop), "{name}'s duration or workload changed");
    write(dir, name, text)
}

/// orders-log running for 300 simulated hours.
fn long_scenario(dir: &Path) -> String {
    lengthened(dir, "orders-log.ron", "300h", "50h")
}

/// Starts faultline with `args` in `dir`.
fn spawn(dir: &Path, args: &[&str]) -> std::process::Child {
    use std::process::{Command, Stdio};
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn faultline")
}

/// Waits (up to a minute) until `path` exists: the command is under way.
fn wait_for(path: &Path) {
    for _ in 0..6000 {
        if path.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{} never appeared", path.display());
}

/// Sends `SIG{sig}` to `child` and waits for it: its exit code, stdout and stderr.
fn stop_with(child: std::process::Child, sig: &str) -> (i32, String, String) {
    let sent = std::process::Command::new("kill").args([&format!("-{sig}"), &child.id().to_string()]).status();
    assert!(sent.expect("kill").success());
    parts(&child.wait_with_output().unwrap())
}

#[test]
fn a_scenario_name_never_takes_a_tally_file_out_of_its_directory() {
    let dir = temp_dir("escape");
    let text = scenario_text("email-fanout.ron");
    let absolute = dir.join("abs").to_string_lossy().into_owned();
    for (file, name) in [("up.ron", "../../x"), ("abs.ron", absolute.as_str()), ("dot.ron", "..")] {
        let changed = text.replacen("name: \"email-fanout\"", &format!("name: {name:?}"), 1);
        assert_ne!(changed, text);
        write(&dir, file, changed);
        let (code, _, err) =
            parts(&spawn(&dir, &["sweep", file, "--seeds", "0..2", "--out", "out"]).wait_with_output().unwrap());
        assert_eq!(code, 0, "{err}");
    }
    // Three tally files inside out/, nothing anywhere else.
    let files = tree(&dir);
    let tallies: Vec<&String> = files.iter().filter(|f| f.starts_with("out/")).collect();
    assert_eq!(files.len(), 3 + 1 + 3, "{files:?}");
    assert_eq!(tallies.len(), 3, "{files:?}");
    assert!(tallies.iter().all(|t| t.ends_with("-0-2.tally.json") && !t[4..].contains('/')), "{files:?}");
    assert!(files.contains(&"out/_.._x-0-2.tally.json".to_string()), "{files:?}");
    assert!(files.contains(&"out/scenario-0-2.tally.json".to_string()), "{files:?}");
    assert!(!Path::new(&format!("{absolute}-0-2.tally.json")).exists());
    assert!(!dir.parent().unwrap().parent().unwrap().join("x-0-2.tally.json").exists());
}

#[test]
fn sigint_or_sigterm_during_a_traced_run_leaves_no_trace_file() {
    for (sig, code) in [("INT", 130), ("TERM", 143)] {
        let dir = temp_dir("trace-signal");
        let f = long_scenario(&dir);
        let child = spawn(&dir, &["run", &f, "--trace", "t.jsonl", "--perfetto", "p.json"]);
        wait_for(&dir.join(".t.jsonl.partial"));
        let (got, out, err) = stop_with(child, sig);
        assert_eq!(got, code, "SIG{sig}: {out}{err}");
        assert!(err.contains("interrupted: the run stopped early; nothing written to t.jsonl or p.json"), "{err}");
        assert!(out.contains("STOPPED EARLY: interrupted by a signal"), "{out}");
        assert_eq!(tree(&dir), ["orders-log.ron"], "SIG{sig}");
    }
}

#[test]
fn an_interrupted_report_leaves_no_directory_and_no_file() {
    let dir = temp_dir("report-signal");
    let f = long_scenario(&dir);
    let child = spawn(&dir, &["report", &f, "--out", "rep"]);
    wait_for(&dir.join("rep/.faultline-report.partial"));
    let (code, out, err) = stop_with(child, "INT");
    assert_eq!(code, 130, "{out}{err}");
    assert!(err.contains("interrupted: no report written"), "{err}");
    assert_eq!(tree(&dir), ["orders-log.ron"]);
}

/// Runs faultline in `dir` as on a full disk: files may not grow past 40 KB.
fn on_a_full_disk(dir: &Path, args: &[&str]) -> (i32, String, String) {
    // `trap "" XFSZ`: a write past the limit fails (EFBIG) instead of killing.
    let o = std::process::Command::new("sh")
        .args(["-c", "ulimit -f 80; trap '' XFSZ; exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_faultline")])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("sh");
    parts(&o)
}

#[test]
fn a_report_or_trace_that_cannot_be_written_leaves_nothing_behind() {
    let dir = temp_dir("full-disk");
    let scenario = crate::support::root().join("scenarios/orders-log.ron").to_string_lossy().into_owned();
    let (code, _, err) = on_a_full_disk(&dir, &["report", &scenario, "--out", "rep"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("File too large"), "{err}");
    // A report into a directory that exists keeps it, and adds nothing.
    std::fs::create_dir(dir.join("mine")).unwrap();
    let (code, _, err) = on_a_full_disk(&dir, &["report", &scenario, "--out", "mine"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = on_a_full_disk(&dir, &["run", &scenario, "--trace", "t.jsonl", "--perfetto", "p.json"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot write t.jsonl: File too large"), "{err}");
    assert_eq!(tree(&dir), ["mine"]);
}

#[test]
fn an_interrupted_shrink_writes_nothing() {
    let dir = temp_dir("shrink-signal");
    let f = lengthened(&dir, "orders-autocommit-crash.ron", "21h", "20h");
    let child = spawn(&dir, &["shrink", &f, "--seed", "1", "--out", "ac.min.ron"]);
    // Nothing to wait for on disk: a shrink writes only at its end.
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let (code, out, err) = stop_with(child, "INT");
    assert_eq!(code, 130, "{out}{err}");
    assert!(err.contains("interrupted: the shrink stopped; nothing written to ac.min.ron"), "{err}");
    assert_eq!(tree(&dir), ["orders-autocommit-crash.ron"]);
}

#[test]
fn a_closed_stdout_ends_every_command_quietly_with_its_usual_code() {
    let dir = temp_dir("broken-pipe");
    let scenario = crate::support::root().join("scenarios/orders-log.ron").to_string_lossy().into_owned();
    let (code, _, err) =
        parts(&spawn(&dir, &["sweep", &scenario, "--seeds", "0..4", "--out", "t"]).wait_with_output().unwrap());
    assert_eq!(code, 0, "{err}");
    let commands: [&[&str]; 5] = [
        &["check", &scenario],
        &["run", &scenario],
        &["run", &scenario, "--json"],
        &["sweep", &scenario, "--seeds", "0..4", "--json"],
        &["merge", "t", "--json"],
    ];
    for args in commands {
        let mut child = spawn(&dir, args);
        // The reader goes away before the first byte is written.
        drop(child.stdout.take());
        let (code, _, err) = parts(&child.wait_with_output().unwrap());
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
    }
}
