//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use faultline::sim::{RunOptions, run_with};
use faultline::system::System;
use faultline::trace::{Record, TraceSink};

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled scenario files (`scenarios/*.ron`), sorted.
pub fn bundled_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios"))
        .expect("scenarios/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    files
}

/// Text of a bundled scenario.
pub fn scenario_text(name: &str) -> String {
    std::fs::read_to_string(root().join("scenarios").join(name)).expect("bundled scenario")
}

/// A fresh, empty directory under cargo's per-target temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "it-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Runs the faultline binary from the repository root.
pub fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline")).args(args).current_dir(root()).output().expect("run faultline")
}

/// The exit code, stdout and stderr of a finished command.
pub fn parts(o: &Output) -> (i32, String, String) {
    (
        o.status.code().expect("exited"),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A trace sink that keeps every record in memory.
#[derive(Default)]
pub struct Collect(pub Vec<Record>);

impl TraceSink for Collect {
    fn write(&mut self, _seq: u64, r: &Record) -> std::io::Result<()> {
        self.0.push(*r);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The system of scenario text `src` (which must be valid).
pub fn system(src: &str) -> System {
    faultline::scenario::parse("test.ron", src).unwrap_or_else(|e| panic!("{e}")).system
}

/// Every trace record of a run of `sys` under `seed`.
pub fn records(sys: &System, seed: u64) -> Vec<Record> {
    let mut sink = Collect::default();
    run_with(sys, seed, RunOptions { trace: Some(&mut sink), ..Default::default() }).unwrap();
    sink.0
}
