//! curves.png (loss and accuracy, train vs validation), confusion.png and the reliability
//! diagram, with plotters.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::calibrate::Reliability;
use super::metrics::{Confusion, EpochMetrics};

static FONT: Once = Once::new();

/// plotters draws text with the embedded DejaVu Sans: no system fonts needed.
fn register_font() {
    FONT.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

/// An RGB canvas of `size` pixels for `BitMapBackend::with_buffer`.
fn canvas(size: (u32, u32)) -> Vec<u8> {
    vec![0u8; size.0 as usize * size.1 as usize * 3]
}

/// Draws with `draw` on a canvas of `size` pixels and saves it as a PNG at `path`.
fn render_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<(), String> {
    let mut pixels = canvas(size);
    {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        draw(&root)?;
        root.present().map_err(err)?;
    }
    save_png(path, pixels, size)
}

/// The drawn canvas as a PNG, written atomically: a kill while a run draws its curves
/// leaves the old picture or the new one, never half of one (plotters' own file backend
/// writes in place).
fn save_png(path: &Path, pixels: Vec<u8>, (w, h): (u32, u32)) -> Result<(), String> {
    let img = image::RgbImage::from_raw(w, h, pixels).ok_or("canvas size")?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).map_err(err)?;
    fer_runtime::fsutil::write_atomic(path, &png).map_err(|e| format!("{}: {e}", path.display()))
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Two panels, loss and accuracy per epoch: training (measured during the epoch),
/// validation, and validation under augmentation when measured. Vertical markers: the best
/// epoch and the overfitting onset.
pub fn curves(
    path: &Path,
    history: &[EpochMetrics],
    best_epoch: Option<usize>,
    onset: Option<usize>,
) -> Result<(), String> {
    register_font();
    let size = (1200, 480);
    render_png(path, size, |root| {
        root.fill(&WHITE).map_err(err)?;
        let panels = root.split_evenly((1, 2));
        let n = history.len().max(1) as f64;
        type Get = fn(&EpochMetrics) -> Option<f64>;
        type Panel<'a> = (&'a str, [(&'a str, Get, RGBColor); 3]);
        let series: [Panel; 2] = [
            (
                "loss (cross-entropy)",
                [
                    ("train", |h| Some(h.train.loss), BLUE),
                    ("val", |h| Some(h.val.loss), RED),
                    ("val, augmented", |h| h.val_augmented.as_ref().map(|v| v.loss), RGBColor(230, 140, 0)),
                ],
            ),
            (
                "accuracy",
                [
                    ("train", |h| Some(h.train.accuracy), BLUE),
                    ("val", |h| Some(h.val.accuracy), RED),
                    (
                        "val, augmented",
                        |h| h.val_augmented.as_ref().map(|v| v.accuracy),
                        RGBColor(230, 140, 0),
                    ),
                ],
            ),
        ];
        for (panel, (title, lines)) in panels.iter().zip(series) {
            let points: Vec<(f64, f64)> = lines
                .iter()
                .flat_map(|(_, get, _)| history.iter().filter_map(|h| get(h).map(|v| (h.epoch as f64, v))))
                .filter(|(_, v)| v.is_finite())
                .collect();
            let values: Vec<f64> = points.iter().map(|&(_, v)| v).collect();
            let (lo, hi) =
                values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
            let pad = ((hi - lo) * 0.08).max(1e-3);
            // Headroom above the data for the legend, so it never hides a point.
            let top = hi + (hi - lo) * 0.45 + pad;
            let top = if title == "accuracy" { top.min(1.0 + pad) } else { top };
            let mut chart = ChartBuilder::on(panel)
                .caption(title, ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(56)
                .build_cartesian_2d(0.5f64..n + 0.5, (lo - pad)..top)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .x_labels(history.len().clamp(2, 12))
                .x_label_formatter(&|x| {
                    if x.fract().abs() < 1e-9 { format!("{x:.0}") } else { String::new() }
                })
                .draw()
                .map_err(err)?;
            for (marker, color, label) in
                [(best_epoch, GREEN, "best"), (onset, RGBColor(120, 120, 120), "overfitting onset")]
            {
                if let Some(e) = marker {
                    let x = e as f64;
                    chart
                        .draw_series(LineSeries::new([(x, lo - pad), (x, top)], color.stroke_width(1)))
                        .map_err(err)?
                        .label(format!("{label} (epoch {e})"))
                        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color));
                }
            }
            for (name, get, color) in lines {
                let points: Vec<(f64, f64)> = history
                    .iter()
                    .filter_map(|h| get(h).filter(|v| v.is_finite()).map(|v| (h.epoch as f64, v)))
                    .collect();
                if points.is_empty() {
                    continue;
                }
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                    .map_err(err)?
                    .label(name)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(err)?;
            }
            // The legend's share of the plot: about 250 of its 520 pixels across (the longest
            // label), 20 pixels a line and a frame of its 380 down.
            let lines_drawn =
                lines.iter().filter(|(_, get, _)| history.iter().any(|h| get(h).is_some())).count()
                    + best_epoch.is_some() as usize
                    + onset.is_some() as usize;
            let box_share = (0.5, (20.0 * lines_drawn as f64 + 16.0) / 380.0);
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(legend_corner(&points, (0.5, n + 0.5), (lo - pad, top), box_share))
                .draw()
                .map_err(err)?;
        }
        Ok(())
    })
}

/// Where a legend goes: the first corner (upper right, upper left, lower right, lower
/// left) whose box, `share.0` of the plot's width by `share.1` of its height, holds no
/// data point. Upper right when every corner holds one: the headroom above the data
/// keeps that corner clear unless the axis is capped (accuracy's at 1, where a training
/// curve that reaches 99% would run under it).
fn legend_corner(
    points: &[(f64, f64)],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    (w, h): (f64, f64),
) -> SeriesLabelPosition {
    use SeriesLabelPosition::*;
    let unit: Vec<(f64, f64)> =
        points.iter().map(|&(x, y)| ((x - x0) / (x1 - x0), (y - y0) / (y1 - y0))).collect();
    let corners = [
        (UpperRight, true, true),
        (UpperLeft, false, true),
        (LowerRight, true, false),
        (LowerLeft, false, false),
    ];
    corners
        .into_iter()
        .find(|&(_, right, upper)| {
            !unit.iter().any(|&(u, v)| {
                (if right { u > 1.0 - w } else { u < w }) && (if upper { v > 1.0 - h } else { v < h })
            })
        })
        .map_or(UpperRight, |(corner, ..)| corner)
}

/// The confusion matrix: rows are true classes, columns predictions; colour is the row
/// share (recall on the diagonal), the number the count. Drawn in pixel coordinates so
/// every label sits on its cell.
pub fn confusion(path: &Path, c: &Confusion, labels: &[String], title: &str) -> Result<(), String> {
    register_font();
    let k = c.counts.len().max(1);
    let (cell, left, top) = (72i32, 110i32, 60i32);
    let width = left + cell * k as i32 + 30;
    let size = (width as u32, (top + cell * k as i32 + 90) as u32);
    render_png(path, size, |root| {
        root.fill(&WHITE).map_err(err)?;
        let font = |px: u32| ("sans-serif", px).into_font();
        let centred = |px: u32, color: &RGBColor| {
            font(px).color(color).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Center,
            ))
        };
        root.draw(&Text::new(title.to_string(), (width / 2, 20), centred(20, &BLACK))).map_err(err)?;
        for t in 0..k {
            let row: u64 = c.counts[t].iter().sum();
            let y = top + cell * t as i32;
            let name = labels.get(t).cloned().unwrap_or_default();
            root.draw(&Text::new(name, (left / 2, y + cell / 2), centred(15, &BLACK))).map_err(err)?;
            for p in 0..k {
                let x = left + cell * p as i32;
                let share = if row == 0 { 0.0 } else { c.counts[t][p] as f64 / row as f64 };
                let shade = (255.0 * (1.0 - share)) as u8;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    RGBColor(shade, shade, 255).filled(),
                ))
                .map_err(err)?;
                root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], RGBColor(200, 200, 200)))
                    .map_err(err)?;
                let color = if share > 0.5 { WHITE } else { BLACK };
                root.draw(&Text::new(
                    c.counts[t][p].to_string(),
                    (x + cell / 2, y + cell / 2),
                    centred(16, &color),
                ))
                .map_err(err)?;
            }
        }
        let bottom = top + cell * k as i32;
        for p in 0..k {
            let name = labels.get(p).cloned().unwrap_or_default();
            let x = left + cell * p as i32 + cell / 2;
            root.draw(&Text::new(name, (x, bottom + 16), centred(15, &BLACK))).map_err(err)?;
        }
        let mid = left + cell * k as i32 / 2;
        root.draw(&Text::new("predicted".to_string(), (mid, bottom + 48), centred(17, &BLACK)))
            .map_err(err)?;
        root.draw(&Text::new(
            "rows: true class; colour: share of the row".to_string(),
            (mid, bottom + 72),
            centred(13, &RGBColor(90, 90, 90)),
        ))
        .map_err(err)?;
        Ok(())
    })
}

/// The reliability diagram: per confidence bin, the accuracy of the images whose top
/// probability falls in it, before (grey) and after (blue) temperature scaling, against the
/// diagonal a calibrated model follows. One panel per set (e.g. validation, test).
pub fn reliability(path: &Path, panels: &[(&str, &Reliability, &Reliability)]) -> Result<(), String> {
    register_font();
    let size = (560 * panels.len().max(1) as u32, 520);
    render_png(path, size, |root| {
        root.fill(&WHITE).map_err(err)?;
        for (area, (title, before, after)) in root.split_evenly((1, panels.len().max(1))).iter().zip(panels) {
            let caption =
                format!("{title}: ECE {:.3} -> {:.3} (T = {:.2})", before.ece, after.ece, after.temperature);
            let mut chart = ChartBuilder::on(area)
                .caption(caption, ("sans-serif", 18))
                .margin(14)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(0f64..1f64, 0f64..1f64)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("confidence (top probability)")
                .y_desc("accuracy")
                .draw()
                .map_err(err)?;
            let bars = |r: &Reliability, shrink: f64, style: ShapeStyle| {
                r.bins
                    .iter()
                    .filter(|b| b.images > 0)
                    .map(move |b| Rectangle::new([(b.lo + shrink, 0.0), (b.hi - shrink, b.accuracy)], style))
                    .collect::<Vec<_>>()
            };
            let grey = RGBColor(170, 170, 170);
            chart
                .draw_series(bars(before, 0.005, grey.filled()))
                .map_err(err)?
                .label("before")
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], grey.filled()));
            let blue = RGBColor(40, 90, 200);
            chart
                .draw_series(bars(after, 0.025, blue.mix(0.8).filled()))
                .map_err(err)?
                .label("after temperature scaling")
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], blue.filled()));
            chart
                .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.stroke_width(1)))
                .map_err(err)?
                .label("calibrated")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 12, y)], BLACK));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A training accuracy that climbs to 99% under a capped axis takes the upper right;
    /// the legend moves to a free corner.
    #[test]
    fn the_legend_takes_a_corner_without_data() {
        let train = (1..=15).map(|e| (e as f64, (0.24 + 0.06 * e as f64).min(0.99)));
        let val = (1..=15).map(|e| (e as f64, 0.3 + 0.012 * e as f64));
        let points: Vec<(f64, f64)> = train.chain(val).collect();
        let corner = legend_corner(&points, (0.5, 15.5), (0.19, 1.01), (0.5, 0.3));
        assert!(matches!(corner, SeriesLabelPosition::UpperLeft), "{corner:?}");
        // Nothing drawn, or every corner taken: upper right.
        assert!(matches!(
            legend_corner(&[], (0.5, 2.5), (0.0, 1.0), (0.5, 0.3)),
            SeriesLabelPosition::UpperRight
        ));
        let corners = [(1.0, 0.0), (1.0, 1.0), (15.0, 0.0), (15.0, 1.0)];
        let corner = legend_corner(&corners, (0.5, 15.5), (-0.05, 1.05), (0.5, 0.3));
        assert!(matches!(corner, SeriesLabelPosition::UpperRight), "{corner:?}");
    }
}
