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
    #[error("{}", render(.file, .src, .diagnostics, "error"))]
    Invalid {
        /// The path as given.
        file: String,
        /// Its text.
        src: String,
        /// Every problem found, in file order.
        diagnostics: Vec<Diagnostic>,
    },
}

impl ScenarioError {
    /// The problems found, if the file was read.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ScenarioError::Read { .. } => &[],
            ScenarioError::Invalid { diagnostics, .. } => diagnostics,
        }
    }
}

/// Renders warnings (problems that do not stop a run) as errors are rendered.
pub fn render_warnings(file: &str, src: &str, warnings: &[Diagnostic]) -> String {
    render(file, src, warnings, "warning")
}

/// Renders diagnostics like a compiler: location, severity, message, the
/// line with a caret under the column, and the help.
fn render(file: &str, src: &str, diagnostics: &[Diagnostic], severity: &str) -> String {
    let mut out = String::new();
    for (i, d) in diagnostics.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{file}:{}:{}: {severity}: {}", d.line, d.col, d.message));
        if let Some(text) = src.lines().nth(d.line.saturating_sub(1)) {
            let gutter = d.line.to_string().len();
            let pad: String =
                text.chars().take(d.col.saturating_sub(1)).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
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
    let outer = |o: &Option<String>| o.as_deref().map(|o| format!(" in `{o}`")).unwrap_or_default();
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
        _ if at_eof => {
            pos = end;
            (
                "unexpected end of file: the scenario is cut short".to_string(),
                Some("is a closing `)` or `]` missing?".to_string()),
            )
        }
        other => (lowercase_first(&other.to_string()), None),
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
