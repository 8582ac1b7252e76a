//! Class scores, `no_std`: softmax and arg-max, one implementation for the host pipeline,
//! the overlay and the firmware. The softmax uses `libm`'s `expf` (core has no `exp`), so a
//! Cortex-M and a PC compute the same bits: the firmware's screen is checked against the
//! host's pixel for pixel, and its bars' lengths come from these numbers.

/// Softmax of `logits` into `out[..logits.len()]`, shifted by the largest logit (no overflow).
pub fn softmax_into(logits: &[f32], out: &mut [f32]) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = libm::expf(l - max);
        sum += *o;
    }
    for o in out.iter_mut().take(logits.len()) {
        *o /= sum;
    }
}

/// The label of a face whose top probability is under the caller's threshold.
pub const UNSURE: &str = "unsure";

/// The name of the top class of `probabilities`, or [`UNSURE`] when its probability is
/// under `unsure_below` (`fer predict --unsure-below`, the browser's switch).
pub fn label_for<'a, S: AsRef<str>>(
    labels: &'a [S],
    probabilities: &[f32],
    unsure_below: Option<f32>,
) -> &'a str {
    let top = argmax(probabilities);
    match unsure_below {
        Some(p) if probabilities[top] < p => UNSURE,
        _ => labels.get(top).map_or(UNSURE, |l| l.as_ref()),
    }
}

/// The index of the largest value (the first of equals; 0 for an empty slice).
pub fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold((0, f32::NEG_INFINITY), |m, (i, &x)| if x > m.1 { (i, x) } else { m }).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_is_the_top_class_or_unsure_under_the_threshold() {
        let labels = ["angry", "happy"];
        assert_eq!(label_for(&labels, &[0.3, 0.7], None), "happy");
        assert_eq!(label_for(&labels, &[0.3, 0.7], Some(0.7)), "happy", "at the threshold: answered");
        assert_eq!(label_for(&labels, &[0.3, 0.7], Some(0.71)), UNSURE);
        assert_eq!(label_for(&labels[..1], &[0.3, 0.7], None), UNSURE, "no name for the class");
    }

    #[test]
    fn softmax_sums_to_one_keeps_order_and_does_not_overflow() {
        let mut p = [0f32; 3];
        softmax_into(&[1000.0, 0.0, 999.0], &mut p);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[0] > p[2] && p[2] > p[1]);
        assert_eq!(argmax(&p), 0);
        assert_eq!(argmax(&[0.2, 0.7, 0.7]), 1, "the first of equals");
    }
}
