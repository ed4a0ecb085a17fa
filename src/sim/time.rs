//! Virtual time: integer nanoseconds, never a float and never the wall clock.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// An instant of virtual time, in nanoseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

/// A span of virtual time, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(pub u64);

impl SimTime {
    /// The start of every run.
    pub const ZERO: SimTime = SimTime(0);
    /// A time no run reaches; used for "never".
    pub const NEVER: SimTime = SimTime(u64::MAX);

    /// Nanoseconds since the start of the run.
    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// Seconds since the start of the run, for display and metrics only.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// The span from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl SimDuration {
    /// No time at all.
    pub const ZERO: SimDuration = SimDuration(0);
    /// One nanosecond.
    pub const NANOSECOND: SimDuration = SimDuration(1);
    /// One millisecond.
    pub const MILLISECOND: SimDuration = SimDuration(1_000_000);
    /// One second.
    pub const SECOND: SimDuration = SimDuration(1_000_000_000);

    /// A duration of `ms` milliseconds (saturating).
    pub const fn from_millis(ms: u64) -> SimDuration {
        SimDuration(ms.saturating_mul(1_000_000))
    }

    /// A duration of `s` seconds (saturating).
    pub const fn from_secs(s: u64) -> SimDuration {
        SimDuration(s.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds in this span.
    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// Seconds in this span, for display and metrics only.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    /// Saturates at [`SimTime::NEVER`] rather than wrapping: a time past the
    /// end of every run is still past the end.
    fn add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
}

impl AddAssign<SimDuration> for SimTime {
    fn add_assign(&mut self, d: SimDuration) {
        *self = *self + d;
    }
}

impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(d.0))
    }
}

impl Sub for SimTime {
    type Output = SimDuration;
    fn sub(self, earlier: SimTime) -> SimDuration {
        self.saturating_since(earlier)
    }
}

/// Writes a nanosecond count the way people read durations: `2m00.512s`,
/// `1.250s`, `3.5ms`, `0s`. Exact for every value (no float formatting).
fn write_nanos(f: &mut fmt::Formatter<'_>, ns: u64) -> fmt::Result {
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;
    if ns == u64::MAX {
        return f.write_str("never");
    }
    if ns >= 86_400 * S {
        let d = ns / (86_400 * S);
        let h = ns % (86_400 * S) / (3600 * S);
        let m = ns % (3600 * S) / (60 * S);
        let s = ns % (60 * S) / S;
        let ms = ns % S / MS;
        write!(f, "{d}d{h:02}h{m:02}m{s:02}.{ms:03}s")
    } else if ns >= 3600 * S {
        let h = ns / (3600 * S);
        let m = ns % (3600 * S) / (60 * S);
        let s = ns % (60 * S) / S;
        let ms = ns % S / MS;
        write!(f, "{h}h{m:02}m{s:02}.{ms:03}s")
    } else if ns >= 60 * S {
        let m = ns / (60 * S);
        let s = ns % (60 * S) / S;
        let ms = ns % S / MS;
        write!(f, "{m}m{s:02}.{ms:03}s")
    } else if ns >= S {
        write!(f, "{}.{:03}s", ns / S, ns % S / MS)
    } else if ns >= MS {
        let frac = ns % MS / 1000;
        if frac == 0 { write!(f, "{}ms", ns / MS) } else { write!(f, "{}.{:03}ms", ns / MS, frac) }
    } else if ns >= 1000 {
        write!(f, "{}us", ns / 1000)
    } else {
        write!(f, "{ns}ns")
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_nanos(f, self.0)
    }
}

impl fmt::Display for SimDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_nanos(f, self.0)
    }
}

/// Why a human-written duration could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The text is not a number followed by a unit.
    #[error("expected a duration such as \"250ms\", \"1.5s\", \"5m\" (units: ns, us, ms, s, m, h, d), found {0:?}")]
    Syntax(String),
    /// The number does not fit in 64-bit nanoseconds.
    #[error("duration {0:?} is too long (the limit is about 584 years)")]
    Overflow(String),
}

/// Parses `"250ms"`, `"1.5s"`, `"5m"`, `"2h"`, `"7d"`, `"10us"`, `"0s"`, and
/// compounds such as `"1h30m"` or `"7m00.2s"` (the way durations are printed).
///
/// Decimal fractions are exact: the text is read as an integer and a scale,
/// never through a float, so `"0.1s"` is exactly 100,000,000 ns.
pub fn parse_duration(text: &str) -> Result<SimDuration, DurationError> {
    let syntax = || DurationError::Syntax(text.to_string());
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(syntax());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_')).ok_or_else(syntax)?;
        let (num, after) = rest.split_at(num_end);
        let unit_end = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let unit_ns: u64 = match unit.trim() {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" | "min" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            _ => return Err(syntax()),
        };
        let part = parse_scaled(num, unit_ns).map_err(|e| match e {
            ScaledError::Syntax => syntax(),
            ScaledError::Overflow => DurationError::Overflow(text.to_string()),
        })?;
        total = total.checked_add(part).ok_or_else(|| DurationError::Overflow(text.to_string()))?;
        rest = next.trim_start();
    }
    Ok(SimDuration(total))
}

pub(crate) enum ScaledError {
    Syntax,
    Overflow,
}

/// Reads a decimal number `num` (digits, at most one '.', '_' separators)
/// and multiplies it by `scale`, exactly, rounding the fraction down.
pub(crate) fn parse_scaled(num: &str, scale: u64) -> Result<u64, ScaledError> {
    let num: String = num.chars().filter(|&c| c != '_').collect();
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num.as_str(), ""),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(ScaledError::Syntax);
    }
    if !int.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(ScaledError::Syntax);
    }
    let mut value: u128 = 0;
    for c in int.chars() {
        value = value * 10 + u128::from(c as u8 - b'0');
        if value > u128::from(u64::MAX) {
            return Err(ScaledError::Overflow);
        }
    }
    let mut total = value * u128::from(scale);
    // Each fractional digit contributes digit * scale / 10^k.
    let mut denom: u128 = 1;
    let mut frac_num: u128 = 0;
    for c in frac.chars().take(30) {
        denom *= 10;
        frac_num = frac_num * 10 + u128::from(c as u8 - b'0');
    }
    if denom > 1 {
        total += frac_num * u128::from(scale) / denom;
    }
    u64::try_from(total).map_err(|_| ScaledError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_exactly() {
        assert_eq!(parse_duration("250ms"), Ok(SimDuration(250_000_000)));
        assert_eq!(parse_duration("0.1s"), Ok(SimDuration(100_000_000)));
        assert_eq!(parse_duration("5m"), Ok(SimDuration(300_000_000_000)));
        assert_eq!(parse_duration("1.5h"), Ok(SimDuration(5_400_000_000_000)));
        assert_eq!(parse_duration("7d"), Ok(SimDuration(604_800_000_000_000)));
        assert_eq!(parse_duration("10us"), Ok(SimDuration(10_000)));
        assert_eq!(parse_duration("3ns"), Ok(SimDuration(3)));
        assert_eq!(parse_duration("1_000ms"), Ok(SimDuration::SECOND));
        assert_eq!(parse_duration("1h30m"), Ok(SimDuration(5_400_000_000_000)));
        assert_eq!(parse_duration("7m00.2s"), Ok(SimDuration(420_200_000_000)));
        assert_eq!(parse_duration("2m 30s"), Ok(SimDuration(150_000_000_000)));
    }

    #[test]
    fn rejects_bad_text_and_overflow() {
        assert!(matches!(parse_duration("5"), Err(DurationError::Syntax(_))));
        assert!(matches!(parse_duration("ms"), Err(DurationError::Syntax(_))));
        assert!(matches!(parse_duration("5 parsecs"), Err(DurationError::Syntax(_))));
        assert!(matches!(parse_duration("1.2.3s"), Err(DurationError::Syntax(_))));
        assert!(matches!(parse_duration("-5s"), Err(DurationError::Syntax(_))));
        assert!(matches!(parse_duration(""), Err(DurationError::Syntax(_))));
        assert!(matches!(parse_duration("5s3"), Err(DurationError::Syntax(_))));
        assert!(matches!(parse_duration("99999999999d"), Err(DurationError::Overflow(_))));
    }

    #[test]
    fn display_parses_back() {
        for ns in [
            0,
            1,
            999,
            1_500,
            2_000_000,
            3_500_000,
            1_250_000_000,
            120_512_000_000,
            3_725_042_000_000,
            694_861_042_000_000,
        ] {
            let shown = SimDuration(ns).to_string();
            let back = parse_duration(&shown).unwrap();
            // Display keeps milliseconds from a second up, microseconds below.
            let precision = match ns {
                1_000_000_000.. => 1_000_000,
                1_000.. => 1_000,
                _ => 1,
            };
            assert_eq!(back.0 / precision, ns / precision, "{shown}");
        }
    }

    #[test]
    fn displays_readably() {
        assert_eq!(SimTime(120_512_000_000).to_string(), "2m00.512s");
        assert_eq!(SimDuration(1_250_000_000).to_string(), "1.250s");
        assert_eq!(SimDuration(3_500_000).to_string(), "3.500ms");
        assert_eq!(SimDuration(2_000_000).to_string(), "2ms");
        assert_eq!(SimDuration(0).to_string(), "0ns");
        assert_eq!(SimDuration(8 * 86_400_000_000_000 + 3_600_000_000_000).to_string(), "8d01h00m00.000s");
        assert_eq!(SimTime::NEVER.to_string(), "never");
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(SimTime(u64::MAX - 1) + SimDuration(5), SimTime::NEVER);
        assert_eq!(SimTime(3) - SimTime(5), SimDuration::ZERO);
    }
}
