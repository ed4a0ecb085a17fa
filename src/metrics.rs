//! Fixed-size measurements: memory does not grow with the number of samples.

use serde::{Deserialize, Serialize};

const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Enough buckets for every u64: `bucket_of(u64::MAX)` is the last.
const BUCKETS: usize = SUB * 61;

/// A log-linear histogram of non-negative integers (nanoseconds): 16
/// buckets per power of two, so any percentile is within about 3% of the
/// truth. The mean, minimum and maximum are exact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "HistogramData", try_from = "HistogramData")]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: Box::new([0; BUCKETS]), count: 0, sum: 0, min: u64::MAX, max: 0 }
    }
}

#[inline]
fn bucket_of(v: u64) -> usize {
    if v < (2 * SUB) as u64 {
        v as usize
    } else {
        let e = 63 - v.leading_zeros() - SUB_BITS;
        (SUB as u32 * e) as usize + (v >> e) as usize
    }
}

/// The smallest value that falls in bucket `i`, and the bucket's width.
fn bucket_range(i: usize) -> (u64, u64) {
    if i < 2 * SUB {
        (i as u64, 1)
    } else {
        let e = (i / SUB - 1) as u32;
        let m = (i % SUB + SUB) as u64;
        (m << e, 1 << e)
    }
}

/// A histogram as files keep it: the non-empty buckets only.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistogramData {
    /// (bucket, count) of the non-empty buckets, in bucket order.
    buckets: Vec<(u16, u64)>,
    count: u64,
    /// The exact sum, as decimal digits (JSON numbers stop at 2^53).
    sum: String,
    min: u64,
    max: u64,
}

impl From<Histogram> for HistogramData {
    fn from(h: Histogram) -> HistogramData {
        let buckets = h.counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, c)| (i as u16, *c)).collect();
        HistogramData { buckets, count: h.count, sum: h.sum.to_string(), min: h.min, max: h.max }
    }
}

impl TryFrom<HistogramData> for Histogram {
    type Error = String;
    fn try_from(d: HistogramData) -> Result<Histogram, String> {
        let mut h = Histogram::default();
        for (i, c) in d.buckets {
            let slot = h.counts.get_mut(usize::from(i)).ok_or_else(|| format!("bucket {i} out of range"))?;
            *slot = c;
        }
        let total = h.counts.iter().try_fold(0u64, |a, &c| a.checked_add(c));
        if total != Some(d.count) {
            return Err("bucket counts do not add up to the count".into());
        }
        h.count = d.count;
        h.sum = d.sum.parse().map_err(|_| format!("bad sum {:?}", d.sum))?;
        (h.min, h.max) = (d.min, d.max);
        if h.count > 0 {
            // What `record` keeps true: min <= every sample <= max.
            let (lo, hi) = (bucket_of(h.min), bucket_of(h.max));
            let outside = h.counts.iter().enumerate().any(|(i, &c)| c > 0 && (i < lo || i > hi));
            let sum_range = u128::from(h.min) * u128::from(h.count)..=u128::from(h.max) * u128::from(h.count);
            if h.min > h.max || outside || !sum_range.contains(&h.sum) {
                return Err(format!("min {} and max {} do not bound the samples", h.min, h.max));
            }
        }
        Ok(h)
    }
}

impl Histogram {
    /// Adds one sample.
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[bucket_of(v)] += 1;
        self.count += 1;
        self.sum += u128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The exact mean, or 0 with no samples.
    pub fn mean(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum as f64 / self.count as f64 }
    }

    /// The `q`-quantile (`q` in [0, 1]): the middle of the bucket that holds
    /// it, clamped to the observed range; 0 with no samples.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        if rank >= self.count {
            return self.max;
        }
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, width) = bucket_range(i);
                return (lo + width / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
        self.count = self.count.saturating_add(other.count);
        self.sum = self.sum.saturating_add(other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// A summary in seconds.
    pub fn summary_s(&self) -> LatencySummary {
        let s = |ns: u64| ns as f64 / 1e9;
        LatencySummary {
            count: self.count,
            mean: self.mean() / 1e9,
            p50: s(self.quantile(0.5)),
            p99: s(self.quantile(0.99)),
            max: s(if self.count == 0 { 0 } else { self.max }),
        }
    }
}

/// Latency figures in seconds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Exact mean.
    pub mean: f64,
    /// Median (bucket resolution).
    pub p50: f64,
    /// 99th percentile (bucket resolution).
    pub p99: f64,
    /// Exact maximum.
    pub max: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_read_back_must_be_one_record_could_have_made() {
        let mut h = Histogram::default();
        for v in [5, 70, 900, 12_000] {
            h.record(v);
        }
        let data = HistogramData::from(h.clone());
        assert_eq!(Histogram::try_from(data.clone()).unwrap(), h);
        let refused = |change: fn(&mut HistogramData)| {
            let mut d = data.clone();
            change(&mut d);
            Histogram::try_from(d).is_err()
        };
        assert!(refused(|d| d.count += 1), "bucket counts that do not add up");
        assert!(refused(|d| d.buckets.push((u16::MAX, 1))), "a bucket out of range");
        assert!(refused(|d| (d.min, d.max) = (d.max, d.min)), "min above max");
        assert!(refused(|d| d.min = 1000), "a sample below min");
        assert!(refused(|d| d.max = 900), "a sample above max");
        assert!(refused(|d| d.sum = "19".into()), "a sum below count x min (4 x 5)");
        assert!(refused(|d| d.sum = "1000000000".into()), "a sum above count x max");
        assert!(refused(|d| d.sum = "x".into()), "a sum that is not a number");
        // The sum at its bounds is possible.
        assert!(!refused(|d| d.sum = "20".into()) && !refused(|d| d.sum = "48000".into()));
        // An empty histogram keeps whatever min and max it says.
        let empty = HistogramData::from(Histogram::default());
        assert_eq!(Histogram::try_from(empty).unwrap(), Histogram::default());
    }

    #[test]
    fn buckets_are_contiguous_and_cover_u64() {
        let mut last = 0;
        for i in 1..BUCKETS {
            let (lo, w) = bucket_range(i);
            let (plo, pw) = bucket_range(i - 1);
            assert_eq!(plo + pw, lo, "bucket {i}");
            assert_eq!(bucket_of(lo), i);
            assert_eq!(bucket_of(lo + (w - 1)), i);
            last = lo;
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert!(last > 1 << 62);
    }

    #[test]
    fn quantiles_are_close() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        let p99 = h.quantile(0.99) as f64;
        assert!((p50 / 50_000_000.0 - 1.0).abs() < 0.04, "{p50}");
        assert!((p99 / 99_000_000.0 - 1.0).abs() < 0.04, "{p99}");
        assert_eq!(h.mean(), 50_000_500.0);
        assert_eq!(h.quantile(1.0), 100_000_000);
    }

    #[test]
    fn a_histogram_survives_json() {
        let mut h = Histogram::default();
        for v in [0, 3, 17, 1_000_000, u64::MAX / 3] {
            h.record(v);
        }
        let back: Histogram = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        assert!(
            serde_json::from_str::<Histogram>(r#"{"buckets":[[0,2]],"count":1,"sum":"0","min":0,"max":0}"#).is_err()
        );
    }

    #[test]
    fn empty_is_zero() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), 0);
        assert_eq!(h.summary_s().max, 0.0);
    }
}
