//! Integer requantization: `y = round_half_away(v * m / 2^s)` with an i32 multiplier and a
//! shift, computed in i64 so it is exact on every target (no float on Cortex-M). One
//! rounding per output, as ONNX Runtime's float requantization has; they differ only on
//! near-ties (at most 1 LSB).

/// `round_half_away_from_zero(v / 2^s)` for `1 <= s <= 62`.
#[inline(always)]
pub fn rshift_round(v: i64, s: u8) -> i64 {
    let half = 1i64 << (s - 1);
    // Adding half - 1 for negatives rounds their ties away from zero too.
    (v + half - (v < 0) as i64) >> s
}

/// `v * m / 2^s`, rounded half away from zero.
#[inline(always)]
pub fn requant(v: i32, m: i32, s: u8) -> i32 {
    rshift_round(v as i64 * m as i64, s) as i32
}

/// A float input value in int8: `clamp(zp + round_half_away(v * inv))`, NaN to `zp`.
/// Written so that loops of it run in vector registers (no saturating cast).
#[inline(always)]
pub fn quantize_f32(v: f32, inv: f32, zero_point: i8) -> i8 {
    let s = v * inv;
    let r = s + 0.5f32.copysign(s);
    // Beyond +-2^20 the final clamp saturates anyway.
    let r = if r.is_nan() { 0.0 } else { r.clamp(-1048576.0, 1048576.0) };
    // SAFETY: finite and within i32 (clamped above).
    let t = unsafe { r.to_int_unchecked::<i32>() };
    (t + zero_point as i32).clamp(-128, 127) as i8
}

/// Saturates to `[lo, hi]` (the int8 range or a fused activation's).
#[inline(always)]
pub fn clamp_i8(v: i32, lo: i8, hi: i8) -> i8 {
    v.clamp(lo as i32, hi as i32) as i8
}

/// [`clamp_i8`] for a wide value (results of the i64 requantization paths).
#[inline(always)]
pub fn clamp_i8_wide(v: i64, lo: i8, hi: i8) -> i8 {
    v.clamp(lo as i64, hi as i64) as i8
}

/// The multiplier and shift closest to a positive real factor `f`: `f ~= m / 2^s` with
/// `m < 2^31` as large as possible and `1 <= s <= 62`. `None` for factors out of range.
pub fn multiplier(f: f64) -> Option<(i32, u8)> {
    if !(f.is_finite() && f > 0.0) {
        return None;
    }
    // 2^e built from its bits (no libm in core), for the exponents used here.
    let pow2 = |e: i32| f64::from_bits(((1023 + e) as u64) << 52);
    // The largest s <= 62 with round(f * 2^s) < 2^31.
    let mut s = 62;
    while s > 1 && f * pow2(s) >= 2147483647.5 {
        s -= 1;
    }
    let m = f * pow2(s) + 0.5;
    if !(1.0..=i32::MAX as f64).contains(&m) {
        return None;
    }
    Some((m as i32, s as u8))
}

/// The largest shift `s <= max_shift` with `round(f * 2^s) < limit`, for multipliers that
/// share one shift (`f` the largest factor's magnitude). `None` when even `s = 1` is too
/// large or `f` is not finite.
pub fn shared_shift(f: f64, limit: i32, max_shift: u8) -> Option<u8> {
    if !f.is_finite() || f < 0.0 {
        return None;
    }
    let pow2 = |e: i32| f64::from_bits(((1023 + e) as u64) << 52);
    (1..=max_shift).rev().find(|&s| f * pow2(s as i32) + 0.5 < limit as f64)
}

/// Rounding division, ties to even (average pooling). Sums over a window tie often (one
/// in 36 over 6x6) and ONNX Runtime rounds those half to even: so does the engine.
#[inline(always)]
pub fn div_round(v: i32, d: i32) -> i32 {
    let d = (d as i64).max(1);
    let v = v as i64;
    let (q, r) = (v.div_euclid(d), v.rem_euclid(d));
    (if 2 * r > d || (2 * r == d && q % 2 != 0) { q + 1 } else { q }) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_modes() {
        assert_eq!(rshift_round(3, 1), 2); // 1.5 -> 2
        assert_eq!(rshift_round(-3, 1), -2); // -1.5 -> -2
        assert_eq!(rshift_round(5, 2), 1); // 1.25 -> 1
        assert_eq!(rshift_round(-5, 2), -1);
        assert_eq!(rshift_round(6, 2), 2); // 1.5
        assert_eq!(rshift_round(-6, 2), -2);
        assert_eq!(rshift_round(-7, 2), -2); // -1.75
        // Averages: ties to even.
        assert_eq!(div_round(3, 2), 2); // 1.5
        assert_eq!(div_round(5, 2), 2); // 2.5
        assert_eq!(div_round(-3, 2), -2);
        assert_eq!(div_round(-5, 2), -2);
        assert_eq!(div_round(54, 36), 2); // 1.5
        assert_eq!(div_round(90, 36), 2); // 2.5
        assert_eq!(div_round(7, 4), 2);
        assert_eq!(div_round(-5, 4), -1);
        assert_eq!(div_round(-7, 4), -2);
        assert_eq!(div_round(0, 9), 0);
    }

    #[test]
    fn multipliers_approximate_their_factor() {
        for f in [1e-9, 0.00123, 0.25, 0.5, 0.999, 1.0, 3.7, 1000.0] {
            let (m, s) = multiplier(f).unwrap();
            let back = m as f64 / (2f64).powi(s as i32);
            assert!((back - f).abs() / f < 1e-8 || f < 1e-8, "{f}: {m} >> {s} = {back}");
            assert!(m as i64 >= 1 << 29 || s == 62, "{f}: m {m} uses the precision");
        }
        assert_eq!(multiplier(0.0), None);
        assert_eq!(multiplier(f64::NAN), None);
        // A real product: 1000 * 0.00123 rounds to 1.23 -> 1.
        let (m, s) = multiplier(0.00123).unwrap();
        assert_eq!(requant(1000, m, s), 1);
        assert_eq!(requant(-1220, m, s), -2); // -1.5006 -> -2
    }
}
