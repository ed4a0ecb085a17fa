//! Errors in scenario files: where (file:line:column), what was expected,
//! and a suggestion for a misspelt name.

use std::fmt;
use std::io;

use super::locate::{Pos, pos_of_offset, suggest};

/// One problem at one place in a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub col: usize,
    /// What is wrong, as a lowercase fragment.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: cannot read the scenario: {source}")]
    Read {
        /// The path.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// The file is not a valid scenario.
    #[error("{}{}", render(.file, .src, .diagnostics, "error"), more_problems(*.more))]
    Invalid {
        /// The path as given.
        file: String,
        /// Its text.
        src: String,
        /// The problems found, in file order (the first [`ERRORS_SHOWN`]).
        diagnostics: Vec<Diagnostic>,
        /// Problems found beyond those.
        more: usize,
    },
    /// The file is too large to be a scenario, or not text.
    #[error("{path}: {message}")]
    Unreadable {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// Problems a file reports at the most; the rest are counted.
pub const ERRORS_SHOWN: usize = 50;

fn more_problems(more: usize) -> String {
    if more == 0 {
        String::new()
    } else {
        format!("\n... and {more} more problems (the first {ERRORS_SHOWN} are shown)")
    }
}

impl ScenarioError {
    /// The problems found, if the file was read.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ScenarioError::Read { .. } | ScenarioError::Unreadable { .. } => &[],
            ScenarioError::Invalid { diagnostics, .. } => diagnostics,
        }
    }
}

/// Renders warnings (problems that do not stop a run) as errors are rendered.
pub fn render_warnings(file: &str, src: &str, warnings: &[Diagnostic]) -> String {
    render(file, src, warnings, "warning")
}

/// Characters of a source line shown under a diagnostic, at most.
const SHOWN_COLUMNS: usize = 120;

/// Renders diagnostics like a compiler: location, severity, message, the
/// line with a caret under the column, and the help.
fn render(file: &str, src: &str, diagnostics: &[Diagnostic], severity: &str) -> String {
    let mut out = String::new();
    for (i, d) in diagnostics.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{file}:{}:{}: {severity}: {}", d.line, d.col, d.message));
        if let Some(line) = src.lines().nth(d.line.saturating_sub(1)) {
            let gutter = d.line.to_string().len();
            // A long line is shown around its column.
            let (from, col) = match d.col.saturating_sub(1) {
                c if line.chars().count() <= SHOWN_COLUMNS => (0, c),
                c => (c.saturating_sub(SHOWN_COLUMNS / 2), c.min(SHOWN_COLUMNS / 2)),
            };
            let mut text: String = line.chars().skip(from).take(SHOWN_COLUMNS).collect();
            let text = if from > 0 { format!("...{text}") } else { std::mem::take(&mut text) };
            let col = if from > 0 { col + 3 } else { col };
            let pad: String = text.chars().take(col).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
            let text = if line.chars().count() > from + SHOWN_COLUMNS { format!("{text}...") } else { text };
            out.push_str(&format!("\n{:gutter$} |\n{} | {text}\n{:gutter$} | {pad}^", "", d.line, ""));
        }
        if let Some(help) = &d.help {
            out.push_str(&format!("\n  = help: {help}"));
        }
    }
    out
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

fn one_of(expected: &[&str]) -> String {
    let list: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
    list.join(", ")
}

fn did_you_mean(found: &str, expected: &'static [&'static str]) -> Option<String> {
    let hint = suggest(found, expected.iter().copied());
    match (hint, expected.is_empty()) {
        (Some(s), _) => Some(format!("did you mean `{s}`? (expected one of {})", one_of(expected))),
        (None, false) => Some(format!("expected one of {}", one_of(expected))),
        (None, true) => None,
    }
}

/// Turns a ron parse error into a diagnostic.
pub(crate) fn from_ron(src: &str, e: &ron::error::SpannedError) -> Diagnostic {
    use ron::Error as E;
    let mut pos = Pos { line: e.span.start.line, col: e.span.start.col };
    let end = pos_of_offset(src, src.len());
    let at_eof = pos >= end || src[super::locate::offset_of_pos(src, pos)..].trim().is_empty();
    // The schema's types are named after what users write (`BreakerSchema` is `breaker`'s value).
    let outer = |o: &Option<String>| {
        o.as_deref().map(|o| format!(" in `{}`", o.strip_suffix("Schema").unwrap_or(o))).unwrap_or_default()
    };
    let (message, help) = match &e.code {
        E::NoSuchStructField { expected, found, outer: o } => {
            (format!("unknown field `{found}`{}", outer(o)), did_you_mean(found, expected))
        }
        E::NoSuchEnumVariant { expected, found, outer: o } => {
            (format!("unknown variant `{found}`{}", outer(o)), did_you_mean(found, expected))
        }
        E::MissingStructField { field, outer: o } => {
            (format!("missing field `{field}`{}", outer(o)), Some(format!("add `{field}: ...`")))
        }
        E::DuplicateStructField { field, outer: o } => (format!("field `{field}` given twice{}", outer(o)), None),
        E::SuggestRawIdentifier(found) => (
            format!("expected a name here, found `{found}`"),
            Some("this field takes a variant such as `Sequential` or `Uniform(1000)`, or a quoted string".into()),
        ),
        E::ExpectedIdentifier => (
            "expected a name here".to_string(),
            Some("a variant such as `Durable`, or a field name before its `:`".into()),
        ),
        _ if at_eof => {
            pos = end;
            (
                "unexpected end of file: the scenario is cut short".to_string(),
                Some("is a closing `)` or `]` missing?".to_string()),
            )
        }
        E::ExpectedNamedStructLike("Scenario") => (
            "expected `Scenario(` here".to_string(),
            Some("a scenario file is one `Scenario(...)`: see docs/scenario-reference.md".into()),
        ),
        E::ExpectedStructLike | E::ExpectedNamedStructLike(_) => (
            "expected `(` here".to_string(),
            Some("this field takes its settings in parentheses: `(name: value, ...)`".into()),
        ),
        // The schema's types are named after what users write.
        other => (lowercase_first(&other.to_string()).replace("Schema`", "`"), None),
    };
    Diagnostic { line: pos.line, col: pos.col, message, help }
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: usize, col: usize) -> Diagnostic {
        Diagnostic { line, col, message: "bad".into(), help: None }
    }

    #[test]
    fn a_short_line_is_shown_whole_with_the_caret_under_the_column() {
        let out = render("f.ron", "a\n  bad: 1\n", &[one(2, 3)], "error");
        assert_eq!(out, "f.ron:2:3: error: bad\n  |\n2 |   bad: 1\n  |   ^");
    }

    #[test]
    fn a_long_line_is_shown_around_the_column_with_the_caret_under_it() {
        // A 10,000-character line, the problem at column 5,001 (a `!`).
        let line = format!("{}!{}", "x".repeat(5_000), "y".repeat(4_999));
        let out = render("f.ron", &line, &[one(1, 5_001)], "error");
        let lines: Vec<&str> = out.lines().collect();
        let (text, caret) = (lines[2].strip_prefix("1 | ").unwrap(), lines[3].strip_prefix("  | ").unwrap());
        assert!(text.starts_with("...x") && text.ends_with("y..."), "{text}");
        assert!(text.chars().count() <= SHOWN_COLUMNS + 6, "{}", text.len());
        assert_eq!(text.chars().nth(caret.len() - 1), Some('!'), "{out}");
        // The end of a long line: no trailing ellipsis.
        let out = render("f.ron", &line, &[one(1, 10_000)], "error");
        let lines: Vec<&str> = out.lines().collect();
        let (text, caret) = (lines[2].strip_prefix("1 | ").unwrap(), lines[3].strip_prefix("  | ").unwrap());
        assert!(text.starts_with("...") && !text.ends_with("..."), "{text}");
        assert_eq!(text.chars().nth(caret.len() - 1), Some('y'), "{out}");
    }
}
