//! Whether a JPEG's bytes hold the whole image. A JPEG cut off mid-scan decodes without
//! error, its missing rows grey, and a face half there would be read as a face: every reader
//! of pictures (the app's images and stream frames, the trainer's datasets) refuses it.
//!
//! The check walks the marker segments from the start-of-image to the first start-of-scan,
//! then looks for the end-of-image marker `FF D9` anywhere after it. Entropy-coded data
//! never holds `FF D9` (a data byte `FF` is stuffed as `FF 00`), so a cut scan cannot fake
//! it, and whatever a camera or an editor appends after the image (a phone's trailer, a
//! motion photo's video, a stream's multipart boundary) does not matter. A header's own
//! bytes (an EXIF thumbnail's end marker, a table of `0xFF`s) are skipped, not searched.

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;

/// True when `bytes` start a JPEG whose first scan is followed by its end marker.
pub fn is_complete(bytes: &[u8]) -> bool {
    match first_scan(bytes) {
        Some(scan) => bytes[scan..].windows(2).any(|w| w == [0xFF, EOI]),
        None => false,
    }
}

/// Where the first scan's data starts: past SOI and every segment up to and including the
/// start-of-scan header. `None` when the headers run out first.
fn first_scan(bytes: &[u8]) -> Option<usize> {
    if bytes.get(..2)? != [0xFF, SOI] {
        return None;
    }
    let mut at = 2;
    loop {
        // Fill bytes (FF FF ...) may precede a marker.
        while *bytes.get(at)? == 0xFF && *bytes.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        at += 2;
        // Markers without a length: RSTn, TEM, another SOI.
        if matches!(marker, 0xD0..=0xD7 | 0x01 | SOI) {
            continue;
        }
        if marker == EOI {
            return None;
        }
        let len = u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]) as usize;
        if len < 2 {
            return None;
        }
        at += len;
        if marker == SOS {
            return (at <= bytes.len()).then_some(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_complete;

    /// SOI, an APP1 segment holding a thumbnail's end marker, SOS, scan data with a stuffed
    /// byte, EOI.
    fn jpeg() -> std::vec::Vec<u8> {
        let mut b = std::vec![0xFF, 0xD8];
        b.extend([0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xFF]); // APP1, 4 bytes of data
        b.extend([0xFF, 0xDA, 0x00, 0x04, 0x01, 0x02]); // SOS header
        b.extend([0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]); // scan data, stuffing, RST0
        b.extend([0xFF, 0xD9]);
        b
    }

    #[test]
    fn whole_images_pass_with_or_without_a_trailer() {
        let j = jpeg();
        assert!(is_complete(&j));
        let mut with_trailer = j.clone();
        with_trailer.extend(std::iter::repeat_n(0xAB, 100_000));
        assert!(is_complete(&with_trailer), "a phone's trailer after the image");
    }

    #[test]
    fn a_cut_scan_fails_even_with_an_end_marker_in_a_header() {
        let j = jpeg();
        for cut in 0..j.len() - 1 {
            assert!(!is_complete(&j[..cut]), "cut at {cut}");
        }
        assert!(!is_complete(b"not a jpeg"));
        assert!(!is_complete(&[0xFF, 0xD8, 0xFF, 0xD9]), "no scan at all");
    }
}
