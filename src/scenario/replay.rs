//! Recorded arrivals for a `Replay` workload: a CSV of `time,key` lines.
//!
//! A time is a duration (`"1.5s"`, `"250ms"`) or a plain number of seconds
//! (`1.5`), counted from the start of the run; times never go back. A key
//! is an unsigned integer. Empty lines and lines starting with `#` are
//! skipped, and a first line `time,key` is a header. Every problem is told
//! with the CSV's own line and column.

use crate::sim::{SimDuration, parse_duration};

/// A problem in a recorded-arrivals file, at a line and column of it.
#[derive(Debug, PartialEq, Eq)]
pub struct CsvProblem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

/// The arrivals in `text`, in order: (time from the start of the run, key).
pub fn parse(text: &str) -> Result<Vec<(SimDuration, u64)>, CsvProblem> {
    let mut out: Vec<(SimDuration, u64)> = Vec::new();
    let mut header_allowed = true;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let problem = |col: usize, message: String| CsvProblem { line: i + 1, col, message };
        if std::mem::take(&mut header_allowed) && trimmed.replace(' ', "").eq_ignore_ascii_case("time,key") {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let col_of = |k: usize| fields[..k].iter().map(|f| f.chars().count() + 1).sum::<usize>() + 1;
        if fields.len() != 2 {
            let message = format!("expected two fields, `time,key`, found {}", fields.len());
            return Err(problem(1, message));
        }
        let time_text = fields[0].trim();
        let time = match time_text.parse::<f64>() {
            Ok(secs) if secs.is_finite() && (0.0..=365.0 * 86_400.0).contains(&secs) => {
                SimDuration((secs * 1e9).round() as u64)
            }
            Ok(_) => return Err(problem(col_of(0), format!("time {time_text} is out of range (0 to 365 days)"))),
            Err(_) => match parse_duration(time_text) {
                Ok(d) => d,
                Err(e) => return Err(problem(col_of(0), e.to_string())),
            },
        };
        let key_text = fields[1].trim();
        let Ok(key) = key_text.parse::<u64>() else {
            return Err(problem(col_of(1), format!("key {key_text:?} is not an unsigned integer")));
        };
        if let Some(&(before, _)) = out.last()
            && time < before
        {
            return Err(problem(col_of(0), format!("time {time} comes before the previous line's {before}")));
        }
        out.push((time, key));
    }
    if out.is_empty() {
        return Err(CsvProblem { line: 1, col: 1, message: "the file records no arrival".into() });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_seconds_or_durations_with_a_header_and_comments() {
        let text = "time,key\n# recorded 2026-11-30\n0.5,7\n\n1s,8\r\n1500ms, 9\n";
        let got = parse(text).expect("valid");
        assert_eq!(
            got,
            vec![(SimDuration(500_000_000), 7), (SimDuration(1_000_000_000), 8), (SimDuration(1_500_000_000), 9)]
        );
    }

    #[test]
    fn problems_name_their_line_and_column() {
        let p = parse("1,2\n2,x\n").expect_err("a bad key");
        assert_eq!((p.line, p.col), (2, 3));
        assert!(p.message.contains("\"x\""), "{}", p.message);
        let p = parse("2,1\n1,1\n").expect_err("time goes back");
        assert_eq!((p.line, p.col), (2, 1));
        let p = parse("1,2,3\n").expect_err("three fields");
        assert_eq!(p.line, 1);
        let p = parse("soon,2\n").expect_err("a bad time");
        assert_eq!((p.line, p.col), (1, 1));
        let p = parse("-1,2\n").expect_err("negative");
        assert!(p.message.contains("out of range"));
        assert_eq!(parse("time,key\n").expect_err("empty").message, "the file records no arrival");
        // A header only as the first line.
        assert_eq!(parse("1,1\ntime,key\n").expect_err("late header").line, 2);
    }
}
