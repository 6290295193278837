//! Summaries of latency samples: percentiles by rank on the sorted samples
//! (the nearest-rank method), no interpolation.

/// Order statistics of a set of samples (nanoseconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Number of samples.
    pub n: u64,
    /// Smallest sample.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest sample.
    pub max: u64,
    /// Arithmetic mean.
    pub mean: u64,
}

impl Summary {
    /// Summarises `samples` (sorted in place). All zero when empty.
    pub fn of(samples: &mut [u64]) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        samples.sort_unstable();
        let sum: u128 = samples.iter().map(|&s| s as u128).sum();
        Summary {
            n: samples.len() as u64,
            min: samples[0],
            p50: percentile(samples, 50.0),
            p90: percentile(samples, 90.0),
            p99: percentile(samples, 99.0),
            max: samples[samples.len() - 1],
            mean: (sum / samples.len() as u128) as u64,
        }
    }

    /// The summary as `key=value` fields (see [`crate::fields`]).
    pub fn to_fields(&self) -> String {
        format!(
            "n={} min={} p50={} p90={} p99={} max={} mean={}",
            self.n, self.min, self.p50, self.p90, self.p99, self.max, self.mean
        )
    }

    /// Reads a summary written by [`Summary::to_fields`].
    pub fn from_fields(f: &crate::fields::Fields) -> std::io::Result<Summary> {
        Ok(Summary {
            n: f.u64("n")?,
            min: f.u64("min")?,
            p50: f.u64("p50")?,
            p90: f.u64("p90")?,
            p99: f.u64("p99")?,
            max: f.u64("max")?,
            mean: f.u64("mean")?,
        })
    }
}

/// The `p`-th percentile of sorted `samples` (nearest rank), `p` in 0..=100.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let s = Summary::of(&mut v);
        assert_eq!(
            (s.n, s.min, s.p50, s.p90, s.p99, s.max),
            (100, 1, 50, 90, 99, 100)
        );
        assert_eq!(s.mean, 50);
        assert_eq!(Summary::of(&mut []), Summary::default());
        assert_eq!(Summary::of(&mut [7]).p99, 7);
        let f = crate::fields::Fields::parse(&format!("ok {}", s.to_fields())).unwrap();
        assert_eq!(Summary::from_fields(&f).unwrap(), s);
    }
}
