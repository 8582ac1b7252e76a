//! The face pipeline's arithmetic that every target shares (needs `alloc`): BlazeFace's
//! anchors, the decoding of its outputs and weighted non-maximum suppression, and the two
//! resamplings of a frame (the letterboxed detector input and the rotated face crop), and
//! the tracker that follows faces across frames.
//! `fer` on a desktop and the browser build run this same code, with libm's float
//! functions on every target, so both give the same faces to the bit.

pub mod anchors;
pub mod blazeface;
pub mod decode;
pub mod frame;
pub mod track;
