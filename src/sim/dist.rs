//! Distributions of durations (processing times, latencies).

use super::rng::Stream;
use super::time::SimDuration;

/// A distribution of durations. Samples are whole nanoseconds.
#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    /// Always exactly this long.
    Const(SimDuration),
    /// Exponential with this mean (memoryless: the M in M/M/1).
    Exp {
        /// The mean.
        mean: SimDuration,
    },
    /// Uniform between `min` and `max`, both included.
    Uniform {
        /// The shortest value.
        min: SimDuration,
        /// The longest value.
        max: SimDuration,
    },
    /// Log-normal with this median and shape `sigma`: a long right tail, as
    /// real service times have.
    LogNormal {
        /// The median (half the samples are shorter).
        median: SimDuration,
        /// The standard deviation of the underlying normal.
        sigma: f64,
    },
    /// One of these values, each equally likely: measured service times
    /// replayed as they were.
    Empirical(Vec<SimDuration>),
}

impl Dist {
    /// Draws one duration from `stream`.
    #[inline]
    pub fn sample(&self, stream: &mut Stream) -> SimDuration {
        match *self {
            Dist::Const(d) => d,
            Dist::Empirical(ref values) => match values.len() {
                0 => SimDuration::ZERO,
                n => values[stream.below(n as u64) as usize],
            },
            Dist::Exp { mean } => SimDuration(to_nanos(stream.exp(mean.0 as f64))),
            Dist::Uniform { min, max } => {
                let span = max.0.saturating_sub(min.0);
                if span == u64::MAX {
                    SimDuration(stream.next_u64())
                } else {
                    SimDuration(min.0 + stream.below(span + 1))
                }
            }
            Dist::LogNormal { median, sigma } => {
                let z = stream.normal();
                SimDuration(to_nanos(median.0 as f64 * libm::exp(sigma * z)))
            }
        }
    }

    /// The mean of the distribution, in nanoseconds.
    pub fn mean_nanos(&self) -> f64 {
        match *self {
            Dist::Const(d) => d.0 as f64,
            Dist::Exp { mean } => mean.0 as f64,
            Dist::Uniform { min, max } => (min.0 as f64 + max.0 as f64) / 2.0,
            Dist::LogNormal { median, sigma } => median.0 as f64 * libm::exp(sigma * sigma / 2.0),
            Dist::Empirical(ref values) => values.iter().map(|v| v.0 as f64).sum::<f64>() / values.len().max(1) as f64,
        }
    }
}

/// Rounds a non-negative float of nanoseconds to an integer, saturating.
#[inline]
pub(crate) fn to_nanos(x: f64) -> u64 {
    if x >= i64::MAX as f64 {
        // Past 292 years: every run has ended, so the exact value is moot.
        u64::MAX
    } else if x > 0.0 {
        // Round half up; exact and platform-independent for these
        // magnitudes. Through i64 because that conversion is one instruction.
        (x + 0.5) as i64 as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::StreamKind;

    fn mean_of(d: &Dist, n: u32) -> f64 {
        let mut s = Stream::new(11, StreamKind::Instance, "x");
        (0..n).map(|_| d.sample(&mut s).0 as f64).sum::<f64>() / f64::from(n)
    }

    #[test]
    fn sample_means_match() {
        for d in [
            Dist::Const(SimDuration(1000)),
            Dist::Exp { mean: SimDuration(1000) },
            Dist::Uniform { min: SimDuration(500), max: SimDuration(1500) },
            Dist::LogNormal { median: SimDuration(1000), sigma: 0.5 },
            Dist::Empirical(vec![SimDuration(200), SimDuration(800), SimDuration(2000)]),
        ] {
            let m = mean_of(&d, 100_000);
            let want = d.mean_nanos();
            assert!((m - want).abs() / want < 0.02, "{d:?}: {m} vs {want}");
        }
    }

    #[test]
    fn uniform_covers_its_bounds() {
        let d = Dist::Uniform { min: SimDuration(3), max: SimDuration(5) };
        let mut s = Stream::new(1, StreamKind::Network, "");
        let mut seen = [false; 6];
        for _ in 0..100 {
            let v = d.sample(&mut s).0 as usize;
            assert!((3..=5).contains(&v));
            seen[v] = true;
        }
        assert_eq!(seen, [false, false, false, true, true, true]);
    }
}
