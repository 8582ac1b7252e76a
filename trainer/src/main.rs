//! `fer-train`: the trainer's command line.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    keep_freed_memory();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", fer_runtime::error_line::one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// A training step allocates and frees the same few large buffers again and again. glibc
/// hands buffers over 128 KB back to the kernel when freed, so each step faults its pages
/// in anew: LibTorch training ran 1.3-1.4x faster on the baseline with these kept in the
/// heap (`fer-train bench --device libtorch`, docs/training.md). The cost is memory that
/// stays at the run's peak, which a training run reaches anyway.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called first, before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}
