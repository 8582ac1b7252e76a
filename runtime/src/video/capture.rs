//! Live capture that survives its device: a camera that disappears mid-stream (unplugged,
//! driver reset) is reopened with a growing pause between tries, and given up with a clear
//! error when it stays away. Written against two small traits so that the policy is tested
//! without a camera; `camera.rs` implements them with nokhwa.

use std::time::{Duration, Instant};

use super::{Frame, VideoError};

/// An open stream of frames.
pub trait Capture {
    /// The next frame: `Ok(Ok(image))`, or `Ok(Err(why))` for a frame that arrived damaged
    /// (skipped and counted, as a replay's are), or `Err(why)` when the device failed and
    /// must be reopened.
    fn grab(&mut self) -> Result<Result<image::RgbImage, String>, String>;
}

/// What to wait between reopening tries, and for how long in all before giving up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    /// Give up when the device has been away this long.
    pub give_up_after: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            first: Duration::from_millis(250),
            max: Duration::from_secs(4),
            give_up_after: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The pause before try `n` (0-based): `first`, doubled each try, at most `max`.
    pub fn delay(&self, n: u32) -> Duration {
        self.first.saturating_mul(1u32 << n.min(16)).min(self.max)
    }
}

/// Frames from a device that is reopened when it fails. Yields `Ok(frame)` until the
/// device stays away longer than the backoff allows, then one `Err` naming the device, the
/// last error and how long it was tried, and then nothing.
pub struct Reconnecting<C, O> {
    open: O,
    stream: Option<C>,
    name: String,
    backoff: Backoff,
    next_index: u64,
    /// Times the device was lost and found again.
    pub reconnects: u64,
    finished: bool,
    /// Stands in for `std::thread::sleep` in tests.
    sleep: fn(Duration),
}

impl<C: Capture, O: FnMut() -> Result<C, VideoError>> Reconnecting<C, O> {
    /// `open` opens (or reopens) the device `name`; the first opening must succeed.
    pub fn open(name: impl Into<String>, mut open: O, backoff: Backoff) -> Result<Self, VideoError> {
        let stream = open()?;
        Ok(Reconnecting {
            open,
            stream: Some(stream),
            name: name.into(),
            backoff,
            next_index: 0,
            reconnects: 0,
            finished: false,
            sleep: std::thread::sleep,
        })
    }

    /// Reopens the device after `lost`; `Err` when the backoff's time is up.
    fn reconnect(&mut self, lost: String) -> Result<C, VideoError> {
        let since = Instant::now();
        let mut last = lost.clone();
        let mut slept = Duration::ZERO;
        for n in 0.. {
            let pause = self.backoff.delay(n);
            if slept + pause > self.backoff.give_up_after {
                break;
            }
            eprintln!("{}: {last}; reopening in {:.2} s (try {})", self.name, pause.as_secs_f64(), n + 1);
            (self.sleep)(pause);
            slept += pause;
            match (self.open)() {
                Ok(stream) => {
                    self.reconnects += 1;
                    eprintln!("{}: back after {:.1} s", self.name, since.elapsed().as_secs_f64());
                    return Ok(stream);
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(VideoError::Lost { name: self.name.clone(), lost, secs: slept.as_secs_f64(), last })
    }
}

impl<C: Capture, O: FnMut() -> Result<C, VideoError>> Iterator for Reconnecting<C, O> {
    type Item = Result<Frame, VideoError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.finished {
            let grabbed = match self.stream.as_mut() {
                Some(stream) => stream.grab(),
                None => Err("not open".into()),
            };
            match grabbed {
                Ok(image) => {
                    let index = self.next_index;
                    self.next_index += 1;
                    let image = image.map_err(|e| format!("{} frame {index}: {e}", self.name));
                    return Some(Ok(Frame { index, source: self.name.clone(), image }));
                }
                Err(lost) => {
                    // Close the failed stream before opening the device again.
                    self.stream = None;
                    match self.reconnect(lost) {
                        Ok(stream) => self.stream = Some(stream),
                        Err(e) => {
                            self.finished = true;
                            return Some(Err(e));
                        }
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    /// What a fake device does on each call, in order: a frame, a damaged frame, a failure.
    #[derive(Clone, Copy, Debug)]
    enum Event {
        Frame,
        Damaged,
        Unplugged,
    }

    struct FakeStream(Rc<RefCell<Vec<Event>>>);

    impl Capture for FakeStream {
        fn grab(&mut self) -> Result<Result<image::RgbImage, String>, String> {
            let mut events = self.0.borrow_mut();
            match if events.is_empty() { Event::Unplugged } else { events.remove(0) } {
                Event::Frame => Ok(Ok(image::RgbImage::new(4, 3))),
                Event::Damaged => Ok(Err("corrupt MJPEG".into())),
                Event::Unplugged => Err("No such device (os error 19)".into()),
            }
        }
    }

    fn quick() -> Backoff {
        Backoff {
            first: Duration::from_millis(10),
            max: Duration::from_millis(40),
            give_up_after: Duration::from_millis(200),
        }
    }

    /// A device whose openings succeed or fail as `opens` says (then fail), streaming `events`.
    fn device(
        events: Vec<Event>,
        opens: Vec<bool>,
    ) -> (impl FnMut() -> Result<FakeStream, VideoError>, Rc<RefCell<usize>>) {
        let events = Rc::new(RefCell::new(events));
        let tries = Rc::new(RefCell::new(0usize));
        let counter = tries.clone();
        let open = move || {
            let n = *counter.borrow();
            *counter.borrow_mut() += 1;
            if opens.get(n).copied().unwrap_or(false) {
                Ok(FakeStream(events.clone()))
            } else {
                Err(VideoError::Camera("Device or resource busy (os error 16)".into()))
            }
        };
        (open, tries)
    }

    fn no_sleep(_: Duration) {}

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = quick();
        let delays: Vec<u128> = (0..5).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(delays, [10, 20, 40, 40, 40]);
        assert_eq!(Backoff::default().delay(100), Duration::from_secs(4), "no overflow on long outages");
    }

    #[test]
    fn an_unplugged_camera_is_reopened_and_frames_go_on() {
        use Event::*;
        // Opened; two frames; unplugged; two failed reopenings; back; a damaged frame; a frame.
        let (open, tries) =
            device(vec![Frame, Frame, Unplugged, Damaged, Frame], vec![true, false, false, true]);
        let mut cam = Reconnecting::open("camera 0", open, quick()).unwrap();
        cam.sleep = no_sleep;
        let frames: Vec<super::Frame> = cam.by_ref().take(4).map(|f| f.unwrap()).collect();
        let indices: Vec<u64> = frames.iter().map(|f| f.index).collect();
        assert_eq!(indices, [0, 1, 2, 3], "frame numbers run on across the reconnection");
        assert!(frames[2].image.as_ref().is_err_and(|e| e.contains("camera 0 frame 2: corrupt")));
        assert!(frames[3].image.is_ok());
        assert_eq!((cam.reconnects, *tries.borrow()), (1, 4));
    }

    #[test]
    fn a_camera_unplugged_five_times_is_reopened_each_time() {
        use Event::*;
        // Five times: three frames, then unplugged, one failed reopening, back.
        let mut events = Vec::new();
        let mut opens = vec![true];
        for _ in 0..5 {
            events.extend([Frame, Frame, Frame, Unplugged]);
            opens.extend([false, true]);
        }
        events.extend([Frame, Frame, Frame]);
        let (open, tries) = device(events, opens);
        let mut cam = Reconnecting::open("camera 0", open, quick()).unwrap();
        cam.sleep = no_sleep;
        let frames: Vec<super::Frame> = cam.by_ref().take(18).map(|f| f.unwrap()).collect();
        assert!(frames.iter().all(|f| f.image.is_ok()), "no frame lost to a reconnection");
        assert_eq!(frames.iter().map(|f| f.index).collect::<Vec<_>>(), (0..18).collect::<Vec<_>>());
        assert_eq!((cam.reconnects, *tries.borrow()), (5, 11));
    }

    #[test]
    fn a_camera_that_stays_away_ends_the_stream_with_an_error() {
        let (open, tries) = device(vec![Event::Frame], vec![true]);
        let mut cam = Reconnecting::open("camera 2", open, quick()).unwrap();
        cam.sleep = no_sleep;
        assert!(cam.next().unwrap().is_ok());
        let err = cam.next().unwrap().unwrap_err().to_string();
        assert!(err.contains("camera 2 was lost (No such device"), "{err}");
        assert!(err.contains("last error: Device or resource busy"), "{err}");
        // Pauses of 10 + 20 + 40 + 40 + 40 + 40 = 190 ms fit in 200; a seventh (230) would not.
        assert_eq!(*tries.borrow(), 1 + 6);
        assert!(cam.next().is_none(), "nothing after giving up");
    }

    #[test]
    fn a_camera_that_cannot_open_is_an_error_at_once() {
        let (open, _) = device(vec![], vec![false]);
        let err = Reconnecting::open("camera 0", open, quick()).err().unwrap().to_string();
        assert!(err.contains("busy"), "{err}");
    }
}
