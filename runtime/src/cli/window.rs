//! The `fer live` window (feature `window`): each frame with its faces drawn by the same
//! embedded-graphics overlay as `fer predict --annotate` and the firmware's display, shown
//! with minifb (X11; Wayland desktops run it through XWayland).

use anyhow::anyhow;
use fer_runtime::vision::{Face, draw_faces};
use minifb::{Key, Window, WindowOptions};

pub struct LiveWindow {
    window: Window,
    /// The frame with the overlay (RGB), then as minifb wants it (0RGB words): reused.
    rgb: Vec<u8>,
    xrgb: Vec<u32>,
}

impl LiveWindow {
    /// A window of the first frame's size (later frames are scaled to it).
    pub fn open(width: usize, height: usize) -> anyhow::Result<LiveWindow> {
        let options = WindowOptions { resize: true, ..WindowOptions::default() };
        let mut window = Window::new("fer live (Esc quits)", width, height, options).map_err(|e| {
            let display = std::env::var("DISPLAY").unwrap_or_default();
            anyhow!("cannot open a window ({e}; DISPLAY={display:?}): pass --headless to run without one")
        })?;
        // Frames come at the source's pace; minifb would otherwise cap updates at 60 per second.
        window.set_target_fps(0);
        Ok(LiveWindow { window, rgb: Vec::new(), xrgb: Vec::new() })
    }

    /// Shows `frame` with `faces` drawn. `false` once the window was closed or Esc pressed.
    pub fn show(
        &mut self,
        frame: &image::RgbImage,
        faces: &[Face],
        labels: &[String],
    ) -> anyhow::Result<bool> {
        if !self.window.is_open() || self.window.is_key_down(Key::Escape) {
            return Ok(false);
        }
        let (w, h) = frame.dimensions();
        self.rgb.clear();
        self.rgb.extend_from_slice(frame.as_raw());
        draw_faces(&mut self.rgb, w, h, faces, labels);
        self.xrgb.clear();
        self.xrgb.extend(self.rgb.chunks_exact(3).map(|p| u32::from_be_bytes([0, p[0], p[1], p[2]])));
        self.window
            .update_with_buffer(&self.xrgb, w as usize, h as usize)
            .map_err(|e| anyhow!("window: {e}"))?;
        Ok(self.window.is_open())
    }
}
