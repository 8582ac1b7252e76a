//! Faces followed across frames: greedy IoU matching gives each face a stable id, a track
//! survives a few frames without a match (a blink of the detector), and each track's
//! probabilities are smoothed (exponential moving average) so labels do not flicker.

use alloc::vec;
use alloc::vec::Vec;

use super::decode::iou;

/// A face the tracker can follow: its box, and its probabilities, which the tracker
/// replaces with the track's smoothed ones.
pub trait Tracked {
    /// `[x, y, w, h]`, frame pixels.
    fn bbox(&self) -> [f32; 4];
    fn probabilities_mut(&mut self) -> &mut Vec<f32>;
    /// Called once per update with the face's track id, after its probabilities were smoothed.
    fn set_track(&mut self, id: u64);
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrackerOptions {
    /// A detection continues a track when their boxes overlap by at least this IoU.
    pub min_iou: f32,
    /// A track is dropped after this many frames without a matching detection.
    pub max_missed: u32,
    /// Weight of the newest frame in the moving average (1: no smoothing).
    pub smooth: f32,
}

impl Default for TrackerOptions {
    fn default() -> Self {
        TrackerOptions { min_iou: 0.3, max_missed: 5, smooth: 0.4 }
    }
}

struct Track {
    id: u64,
    bbox: [f32; 4],
    probabilities: Vec<f32>,
    missed: u32,
}

pub struct Tracker {
    pub options: TrackerOptions,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    pub fn new(options: TrackerOptions) -> Tracker {
        Tracker { options, tracks: Vec::new(), next_id: 1 }
    }

    /// Live tracks (matched recently enough).
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Tracks started so far.
    pub fn started(&self) -> u64 {
        self.next_id - 1
    }

    /// Assigns every face of this frame a track id and replaces its probabilities with the
    /// track's smoothed ones.
    pub fn update<F: Tracked>(&mut self, faces: &mut [F]) {
        // Every (track, face) pair above the IoU floor, best overlap first.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (t, track) in self.tracks.iter().enumerate() {
            for (f, face) in faces.iter().enumerate() {
                let o = iou(&track.bbox, &face.bbox());
                if o >= self.options.min_iou {
                    pairs.push((o, t, f));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (mut track_used, mut face_track) = (vec![false; self.tracks.len()], vec![None; faces.len()]);
        for (_, t, f) in pairs {
            if !track_used[t] && face_track[f].is_none() {
                track_used[t] = true;
                face_track[f] = Some(t);
            }
        }
        for (t, used) in track_used.iter().enumerate() {
            if !used {
                self.tracks[t].missed += 1;
            }
        }
        let a = self.options.smooth.clamp(0.0, 1.0);
        for (f, face) in faces.iter_mut().enumerate() {
            let t = match face_track[f] {
                Some(t) => {
                    let track = &mut self.tracks[t];
                    for (s, p) in track.probabilities.iter_mut().zip(face.probabilities_mut().iter()) {
                        *s = a * p + (1.0 - a) * *s;
                    }
                    track.bbox = face.bbox();
                    track.missed = 0;
                    t
                }
                None => {
                    self.tracks.push(Track {
                        id: self.next_id,
                        bbox: face.bbox(),
                        probabilities: face.probabilities_mut().clone(),
                        missed: 0,
                    });
                    self.next_id += 1;
                    self.tracks.len() - 1
                }
            };
            let track = &self.tracks[t];
            face.probabilities_mut().clone_from(&track.probabilities);
            face.set_track(track.id);
        }
        let max_missed = self.options.max_missed;
        self.tracks.retain(|t| t.missed <= max_missed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug)]
    struct Face {
        bbox: [f32; 4],
        probabilities: Vec<f32>,
        track: Option<u64>,
    }

    impl Tracked for Face {
        fn bbox(&self) -> [f32; 4] {
            self.bbox
        }
        fn probabilities_mut(&mut self) -> &mut Vec<f32> {
            &mut self.probabilities
        }
        fn set_track(&mut self, id: u64) {
            self.track = Some(id);
        }
    }

    fn face(x: f32, p: [f32; 2]) -> Face {
        Face { bbox: [x, 10.0, 50.0, 50.0], probabilities: p.to_vec(), track: None }
    }

    fn top(f: &Face) -> usize {
        crate::scores::argmax(&f.probabilities)
    }

    #[test]
    fn ids_stay_with_moving_faces_and_new_faces_get_new_ids() {
        let mut t = Tracker::new(TrackerOptions::default());
        let mut f1 = vec![face(0.0, [1.0, 0.0]), face(200.0, [0.0, 1.0])];
        t.update(&mut f1);
        assert_eq!((f1[0].track, f1[1].track), (Some(1), Some(2)));
        // Both moved a little, listed in the other order; a third face appears.
        let mut f2 = vec![face(205.0, [0.0, 1.0]), face(5.0, [1.0, 0.0]), face(400.0, [1.0, 0.0])];
        t.update(&mut f2);
        assert_eq!(f2.iter().map(|f| f.track.unwrap()).collect::<Vec<_>>(), vec![2, 1, 3]);
    }

    #[test]
    fn a_track_survives_a_few_missed_frames_then_goes() {
        let opts = TrackerOptions { max_missed: 2, ..TrackerOptions::default() };
        let mut t = Tracker::new(opts);
        t.update(&mut [face(0.0, [1.0, 0.0])]);
        for _ in 0..2 {
            t.update::<Face>(&mut []);
        }
        let mut back = [face(3.0, [1.0, 0.0])];
        t.update(&mut back);
        assert_eq!(back[0].track, Some(1), "back after two missed frames: same id");
        for _ in 0..3 {
            t.update::<Face>(&mut []);
        }
        assert!(t.is_empty());
        let mut later = [face(3.0, [1.0, 0.0])];
        t.update(&mut later);
        assert_eq!(later[0].track, Some(2));
    }

    #[test]
    fn smoothing_keeps_a_one_frame_flicker_from_changing_the_top_class() {
        let mut t = Tracker::new(TrackerOptions { smooth: 0.3, ..TrackerOptions::default() });
        for _ in 0..5 {
            t.update(&mut [face(0.0, [0.9, 0.1])]);
        }
        let mut flicker = [face(0.0, [0.2, 0.8])];
        t.update(&mut flicker);
        assert_eq!(top(&flicker[0]), 0);
        assert!((flicker[0].probabilities[0] - (0.3 * 0.2 + 0.7 * 0.9)).abs() < 1e-3);
        // Without smoothing the flicker shows.
        let mut raw = Tracker::new(TrackerOptions { smooth: 1.0, ..TrackerOptions::default() });
        raw.update(&mut [face(0.0, [0.9, 0.1])]);
        let mut f = [face(0.0, [0.2, 0.8])];
        raw.update(&mut f);
        assert_eq!(top(&f[0]), 1);
    }
}
