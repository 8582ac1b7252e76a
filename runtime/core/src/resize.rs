//! Where bilinear upsampling samples: shared by the int8 engine's Upsample (op code 14)
//! and the float evaluator's Resize, so both read the same input pixels with the same
//! weights.

/// Bilinear upsampling along one axis of whole factor `f`: output `o` reads input `i0` with
/// weight `d - t` and `i0 + 1` with weight `t`, out of `d`; `i0` may be -1 and `i0 + 1`
/// past the end (the caller clamps). At `(o + 0.5) / f - 0.5` (half_pixel), or at `o / f`
/// (`asymmetric`). Whole numbers, so every target computes the same bytes.
pub fn linear_taps(o: usize, f: usize, asymmetric: bool) -> (isize, usize, usize) {
    let (num, d) =
        if asymmetric { (o as isize, f as isize) } else { (2 * o as isize + 1 - f as isize, 2 * f as isize) };
    (num.div_euclid(d), num.rem_euclid(d) as usize, d as usize)
}
