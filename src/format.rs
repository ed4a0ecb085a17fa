//! How faultline writes numbers for people: counts with thousands
//! separators, seconds as durations. Below every module that prints (the
//! CLI, sweeps, reports, stories), so none of them imports another for it.

use crate::sim::SimDuration;

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
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

/// Seconds as faultline writes durations (`1m02.500s`).
pub fn secs(s: f64) -> String {
    SimDuration((s * 1e9).round() as u64).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_seconds() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(secs(62.5), "1m02.500s");
        assert_eq!(secs(0.0), "0ns");
    }
}
