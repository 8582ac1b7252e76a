//! `fer`: int8 facial-expression inference from the command line.

mod cli;

use clap::Parser;

fn main() {
    // `fer predict ... | head` should end quietly, as other Unix tools do, rather than
    // panic on the closed pipe: restore the default SIGPIPE action Rust replaces.
    #[cfg(unix)]
    // SAFETY: called first, before any other thread exists; SIG_DFL is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = cli::Cli::parse();
    if let Err(e) = cli::run(args) {
        eprintln!("error: {}", fer_runtime::error_line::one_line(&e));
        std::process::exit(1);
    }
}
