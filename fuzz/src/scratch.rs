//! A scratch folder per fuzzing process (in /dev/shm when it exists), for the readers that
//! take a path: each run's input is written there first.

use std::path::PathBuf;
use std::sync::OnceLock;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() { shm } else { std::env::temp_dir() };
        let dir = base.join(format!("fer-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        dir
    })
}

/// Writes `bytes` to `name` in the scratch folder and returns its path.
pub fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir().join(name);
    std::fs::write(&path, bytes).expect("the scratch folder is writable");
    path
}

/// Writes a fixed file once per process.
#[allow(dead_code)]
pub fn write_once(name: &str, bytes: &[u8]) {
    if !dir().join(name).exists() {
        write(name, bytes);
    }
}
