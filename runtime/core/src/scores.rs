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

/// The index of the largest value (the first of equals; 0 for an empty slice).
pub fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold((0, f32::NEG_INFINITY), |m, (i, &x)| if x > m.1 { (i, x) } else { m }).0
}

#[cfg(test)]
mod tests {
    use super::*;

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
