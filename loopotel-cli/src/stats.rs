//! The statistics `compare` reports: Wilson score intervals for rates, Newcombe's hybrid
//! score interval for the difference of two independent rates, and a seeded percentile
//! bootstrap for differences of means (paired or not). Reproducible: the same inputs give
//! the same intervals.

/// The standard normal quantile (Acklam's rational approximation; relative error below
/// 1.2e-9 over (0, 1)).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let low = 0.02425;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// The Wilson score interval of `k` successes in `n` trials at normal quantile `z`.
pub(crate) fn wilson(k: u64, n: u64, z: f64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let p = k as f64 / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// Newcombe's hybrid score interval (his method 10) for `p2 − p1` of two independent rates.
pub(crate) fn newcombe(k1: u64, n1: u64, k2: u64, n2: u64, z: f64) -> Option<(f64, f64)> {
    let (l1, u1) = wilson(k1, n1, z)?;
    let (l2, u2) = wilson(k2, n2, z)?;
    let p1 = k1 as f64 / n1 as f64;
    let p2 = k2 as f64 / n2 as f64;
    let d = p2 - p1;
    let lower = d - ((p2 - l2).powi(2) + (u1 - p1).powi(2)).sqrt();
    let upper = d + ((u2 - p2).powi(2) + (p1 - l1).powi(2)).sqrt();
    Some((lower.max(-1.0), upper.min(1.0)))
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Resamples drawn by the bootstrap.
const RESAMPLES: usize = 2_000;

fn percentile_interval(mut estimates: Vec<f64>, alpha: f64) -> (f64, f64) {
    estimates.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((estimates.len() - 1) as f64 * q).round() as usize;
        estimates[i.min(estimates.len() - 1)]
    };
    (at(alpha / 2.0), at(1.0 - alpha / 2.0))
}

/// A percentile bootstrap interval for the mean of paired differences `d` (seeded).
pub(crate) fn bootstrap_paired(d: &[f64], alpha: f64, seed: u64) -> Option<(f64, f64)> {
    if d.len() < 2 {
        return None;
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let estimates = (0..RESAMPLES)
        .map(|_| {
            let mut sum = 0.0;
            for _ in 0..d.len() {
                sum += d[rng.usize(..d.len())];
            }
            sum / d.len() as f64
        })
        .collect();
    Some(percentile_interval(estimates, alpha))
}

/// A percentile bootstrap interval for `mean(b) − mean(a)` of two independent samples
/// (each resampled on its own; seeded).
pub(crate) fn bootstrap_unpaired(
    a: &[f64],
    b: &[f64],
    alpha: f64,
    seed: u64,
) -> Option<(f64, f64)> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut resampled_mean = |xs: &[f64]| {
        let mut sum = 0.0;
        for _ in 0..xs.len() {
            sum += xs[rng.usize(..xs.len())];
        }
        sum / xs.len() as f64
    };
    let estimates = (0..RESAMPLES)
        .map(|_| {
            let ma = resampled_mean(a);
            resampled_mean(b) - ma
        })
        .collect();
    Some(percentile_interval(estimates, alpha))
}

/// The mean of a sample (`None` when empty).
pub(crate) fn mean_of(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| mean(xs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_quantile_matches_known_values() {
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        assert!((normal_quantile(0.005) + 2.575_829_304).abs() < 1e-8);
    }

    #[test]
    fn wilson_and_newcombe_match_newcombes_published_example() {
        // Newcombe (1998), table II, example (a): 56/70 vs 48/80; method 10 gives
        // 0.0524 to 0.3339 for p1 − p2.
        let (lo, hi) = newcombe(48, 80, 56, 70, normal_quantile(0.975)).unwrap();
        assert!((lo - 0.0524).abs() < 5e-4, "{lo}");
        assert!((hi - 0.3339).abs() < 5e-4, "{hi}");
        // Degenerate rates stay within [0, 1] and never NaN.
        let (l, u) = wilson(10, 10, 1.96).unwrap();
        assert!(l > 0.6 && u == 1.0);
        assert!(wilson(0, 0, 1.96).is_none());
    }

    #[test]
    fn the_bootstrap_is_reproducible_and_handles_zero_variance() {
        let d = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(bootstrap_paired(&d, 0.05, 7), bootstrap_paired(&d, 0.05, 7));
        assert_eq!(
            bootstrap_paired(&[2.0, 2.0, 2.0], 0.05, 1),
            Some((2.0, 2.0))
        );
        assert!(bootstrap_paired(&[1.0], 0.05, 1).is_none());
        let (lo, hi) = bootstrap_unpaired(&[1.0, 1.1, 0.9], &[2.0, 2.1, 1.9], 0.05, 3).unwrap();
        assert!(lo > 0.7 && hi < 1.3, "{lo} {hi}");
    }
}
