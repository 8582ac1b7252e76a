//! Percentiles of per-frame times in constant memory: a live camera session runs for hours,
//! so `fer live` counts times into fixed bins instead of keeping every sample.

/// Bin width: 10 µs.
const BIN_MS: f64 = 0.01;
/// Bins up to 1 s; slower frames share the last bin (and `max` keeps the true largest).
const BINS: usize = 100_000;

pub struct Latencies {
    counts: Vec<u32>,
    n: u64,
    max: f64,
}

impl Latencies {
    pub fn new() -> Latencies {
        Latencies { counts: vec![0; BINS], n: 0, max: 0.0 }
    }

    pub fn add(&mut self, ms: f64) {
        let bin = if ms.is_finite() && ms > 0.0 { ((ms / BIN_MS) as usize).min(BINS - 1) } else { 0 };
        self.counts[bin] = self.counts[bin].saturating_add(1);
        self.n += 1;
        self.max = self.max.max(ms);
    }

    /// The `p` quantile (the sample of rank `round((n - 1) p)`, as a sorted list gives it),
    /// to within one 10 µs bin (its middle is returned); NaN when empty.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.n == 0 {
            return f64::NAN;
        }
        let rank = ((self.n - 1) as f64 * p.clamp(0.0, 1.0)).round() as u64;
        let mut seen = 0u64;
        for (bin, &c) in self.counts.iter().enumerate() {
            seen += c as u64;
            if seen > rank {
                return if bin == BINS - 1 { self.max } else { (bin as f64 + 0.5) * BIN_MS };
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_the_sorted_samples_to_within_a_bin() {
        let mut l = Latencies::new();
        let samples: Vec<f64> = (0..1001).map(|i| 1.0 + (i * 7919 % 1001) as f64 * 0.013).collect();
        for &s in &samples {
            l.add(s);
        }
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        for p in [0.0, 0.5, 0.9, 0.99, 1.0] {
            let exact = sorted[((sorted.len() - 1) as f64 * p).round() as usize];
            assert!((l.percentile(p) - exact).abs() <= BIN_MS, "p{p}: {} vs {exact}", l.percentile(p));
        }
    }

    #[test]
    fn slow_frames_and_an_empty_record() {
        assert!(Latencies::new().percentile(0.5).is_nan());
        let mut l = Latencies::new();
        l.add(2.0);
        l.add(5_000.0);
        assert_eq!(l.percentile(1.0), 5_000.0, "past the last bin the true maximum is kept");
        assert!((l.percentile(0.0) - 2.005).abs() < 1e-9);
    }
}
