//! A ratchet on function length (after TigerBeetle's `tidy.zig`): no
//! function in `src/` may newly cross 70 lines, and none of those that
//! already do may grow. The ratchet clicks: a listed function that shrank
//! must have its entry lowered, and one that dropped to 70 lines or fewer
//! must leave the list (the test says which).

use std::path::Path;

use crate::support::root;

const LIMIT: usize = 70;

/// Functions over the limit when the ratchet was set (2026-12-01), with
/// their length in lines: the most each may have.
const OVER: &[(&str, &str, usize)] = &[
    ("src/scenario/services.rs", "services", 145),
    ("src/scenario/faults.rs", "faults", 311),
    ("src/scenario/buses.rs", "queue_bus_spec", 111),
    ("src/scenario/invariants.rs", "invariants", 106),
    ("src/scenario/workloads.rs", "workload", 82),
    ("src/sim/world.rs", "new", 72),
    ("src/story.rs", "tell", 163),
    ("src/report.rs", "timeline_svg", 198),
    ("src/sim/world.rs", "done", 109),
    ("src/report.rs", "write_page", 147),
    ("src/cli.rs", "render", 127),
    ("src/fuzz.rs", "mutate_once", 144),
    ("src/scenario/faults.rs", "network_faults_act", 118),
    ("src/story.rs", "conclusion", 83),
    ("src/sweep.rs", "render", 101),
    ("src/sim/world.rs", "finish", 79),
    ("src/scenario/invariants.rs", "by_construction", 94),
    ("src/scenario/services.rs", "call", 85),
    ("src/sim/world/calls.rs", "attempt", 83),
    ("src/cli.rs", "sweep", 81),
    ("src/report.rs", "line_chart", 79),
    ("src/cli.rs", "report_page", 78),
    ("src/check/entities.rs", "judge_lost", 71),
];

/// Every function with a body in `text`: (name, lines from its `fn` line to
/// its closing brace). rustfmt puts the closing brace at the `fn`'s own
/// indentation, which is what this relies on.
fn functions(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let mut rest = trimmed;
        for prefix in ["pub(crate) ", "pub(super) ", "pub ", "const ", "unsafe "] {
            rest = rest.strip_prefix(prefix).unwrap_or(rest);
        }
        let Some(after) = rest.strip_prefix("fn ") else { continue };
        let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if name.is_empty() || line.trim_end().ends_with(';') {
            continue; // a declaration without a body
        }
        if line.matches('{').count() > 0 && line.matches('{').count() == line.matches('}').count() {
            out.push((name, 1));
            continue;
        }
        let close = format!("{indent}}}");
        let end = lines[i + 1..].iter().position(|l| *l == close).map_or(lines.len() - i, |k| k + 2);
        out.push((name, end));
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_function_newly_crosses_70_lines_and_none_over_it_grows() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(root()).unwrap().to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(path).unwrap();
        for (name, len) in functions(&text) {
            if len <= LIMIT {
                continue;
            }
            seen.push((rel.clone(), name.clone()));
            match OVER.iter().find(|(p, n, _)| *p == rel && *n == name) {
                Some(&(_, _, most)) if len == most => {}
                Some(&(_, _, most)) if len < most => {
                    problems.push(format!("{rel}: fn {name} shrank to {len} lines: lower its entry from {most}"))
                }
                Some(&(_, _, most)) => problems.push(format!("{rel}: fn {name} grew to {len} lines (at most {most})")),
                None => problems.push(format!("{rel}: fn {name} is {len} lines (at most {LIMIT}): split it")),
            }
        }
    }
    for (path, name, _) in OVER {
        if !seen.iter().any(|(p, n)| p == path && n == name) {
            problems.push(format!("{path}: fn {name} is {LIMIT} lines or fewer now (or gone): remove its entry"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_ratchet_measures_what_rustfmt_writes() {
    let text = "fn a() {\n    1;\n}\n\nimpl X {\n    pub fn b(&self) -> u32 {\n        if x {\n            2\n        } else {\n            3\n        }\n    }\n    fn c();\n    fn d() {}\n}\n";
    assert_eq!(functions(text), [("a".to_string(), 3), ("b".to_string(), 7), ("d".to_string(), 1)]);
}
