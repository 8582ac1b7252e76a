//! Where the tests of every crate find the project's shared data (FER2013, CK+, photos).

use std::path::PathBuf;

/// The project's shared data folder (`../shared/data` beside the checkout, or
/// `$FER_SHARED_DATA`), or `None` with a message on stderr when it is absent.
///
/// With `FER_REQUIRE_SHARED=1` (as CI sets it) an absent folder panics instead, so a CI
/// machine without the data fails loudly rather than skipping the end-to-end checks.
pub fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("FER_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    if dir.is_dir() {
        return Some(dir);
    }
    let msg = format!(
        "shared data not found at {} (set FER_SHARED_DATA, or place the project's shared/ beside the checkout)",
        dir.display()
    );
    if std::env::var("FER_REQUIRE_SHARED").is_ok_and(|v| v == "1") {
        panic!("{msg}; FER_REQUIRE_SHARED=1 requires it");
    }
    eprintln!("SKIPPED: {msg}");
    None
}
