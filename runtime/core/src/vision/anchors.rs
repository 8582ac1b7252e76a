//! SSD anchors of MediaPipe's BlazeFace short-range detector.
//!
//! MediaPipe's `SsdAnchorsCalculator` with the short-range options: 128x128 input, strides
//! 8, 16, 16, 16, aspect ratio 1 plus one interpolated scale per layer, fixed anchor size.
//! Layers that share a stride share a grid, so this is a 16x16 grid with 2 anchors per cell
//! followed by an 8x8 grid with 6: 896 anchors, in the order the model writes its outputs
//! (row, column, anchor).

use alloc::vec::Vec;

/// Anchor centres `(x, y)` in [0, 1] of the input square.
pub fn short_range() -> Vec<[f32; 2]> {
    ssd_anchors(128, &[8, 16, 16, 16], 2)
}

/// Anchor centres for `input` pixels and per-layer `strides`, `per_layer` anchors each.
pub fn ssd_anchors(input: usize, strides: &[usize], per_layer: usize) -> Vec<[f32; 2]> {
    let mut anchors = Vec::new();
    let mut layer = 0;
    while layer < strides.len() {
        let stride = strides[layer];
        let same = strides[layer..].iter().take_while(|&&s| s == stride).count();
        let grid = input.div_ceil(stride);
        for y in 0..grid {
            for x in 0..grid {
                let centre = [(x as f32 + 0.5) / grid as f32, (y as f32 + 0.5) / grid as f32];
                anchors.extend(core::iter::repeat_n(centre, same * per_layer));
            }
        }
        layer += same;
    }
    anchors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_range_has_896_anchors_in_output_order() {
        let a = short_range();
        assert_eq!(a.len(), 896);
        // 16x16 cells, 2 anchors each: the first two share the first cell's centre.
        assert_eq!(a[0], [0.5 / 16.0, 0.5 / 16.0]);
        assert_eq!(a[1], a[0]);
        assert_eq!(a[2], [1.5 / 16.0, 0.5 / 16.0]);
        assert_eq!(a[511], [15.5 / 16.0, 15.5 / 16.0]);
        // then 8x8 cells with 6 anchors each.
        assert_eq!(a[512], [0.5 / 8.0, 0.5 / 8.0]);
        assert_eq!(a[517], a[512]);
        assert_eq!(a[518], [1.5 / 8.0, 0.5 / 8.0]);
        assert_eq!(a[895], [7.5 / 8.0, 7.5 / 8.0]);
    }
}
