//! What the tests of every crate share: where the project's shared data is (FER2013, CK+,
//! photos), and the bad-input and kill-loop checks of docs/reliability.md.

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

/// One case of a bad-input corpus (docs/reliability.md): what was run, on what, and the
/// error line it gave.
pub struct BadInputCase {
    pub command: String,
    pub input: String,
    pub exit: i32,
    pub message: String,
}

impl BadInputCase {
    /// Checks that `out`, the output of `command` run on `input`, is a clean refusal: a
    /// non-zero exit that is not a panic's, exactly one `error:` line, last on stderr, that
    /// names `culprit`, and nothing of `outputs` left (a file absent, a folder absent or
    /// empty). Panics, naming the case, when it is not.
    pub fn check(
        command: &str,
        input: &str,
        out: &std::process::Output,
        culprit: &str,
        outputs: &[&std::path::Path],
    ) -> BadInputCase {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let exit = out.status.code().unwrap_or(-1);
        let case = format!("`{command}` on {input}");
        assert!(!out.status.success(), "{case} succeeded");
        assert!(exit != 101 && !stderr.contains("panicked"), "{case} panicked: {stderr}");
        let last = stderr.lines().last().unwrap_or("");
        assert!(last.starts_with("error: "), "{case}: the last line is not the error: {stderr}");
        let errors = stderr.lines().filter(|l| l.starts_with("error: ")).count();
        assert_eq!(errors, 1, "{case}: one error line: {stderr}");
        assert!(last.contains(culprit), "{case}: the error does not name {culprit}: {last}");
        for o in outputs {
            // A folder the command made may stay, empty: it holds no half-written file.
            let left = if o.is_dir() {
                std::fs::read_dir(o).is_ok_and(|mut d| d.next().is_some())
            } else {
                o.exists()
            };
            assert!(!left, "{case} left {} behind", o.display());
        }
        BadInputCase { command: command.into(), input: input.into(), exit, message: last.into() }
    }

    /// The cases as a markdown table, `tmp` (the corpus folder) shortened to `…`; printed,
    /// and written to `$FER_BAD_INPUT_TABLE` when that is set.
    pub fn report(cases: &[BadInputCase], tmp: &std::path::Path) {
        let mut table = String::from("| command | bad input | exit | stderr |\n|---|---|---|---|\n");
        for c in cases {
            let message = c.message.replace(&tmp.display().to_string(), "…").replace('|', "\\|");
            table += &format!("| `{}` | {} | {} | `{}` |\n", c.command, c.input, c.exit, message);
        }
        println!("{} cases\n{table}", cases.len());
        if let Some(path) = std::env::var_os("FER_BAD_INPUT_TABLE") {
            std::fs::write(path, table).expect("FER_BAD_INPUT_TABLE is writable");
        }
    }
}

/// The kill loops' kill points (docs/reliability.md), as fractions of a command's
/// uninterrupted duration: a fixed low-discrepancy sequence over (0.02, 1.1), so that
/// early, middle and late kills all happen, some land after the end, and a failure replays.
pub fn kill_points(n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.02 + 1.08 * ((i as f64 * 0.618_034 + 0.31) % 1.0)).collect()
}

/// Starts `cmd` (its output discarded), kills it with SIGKILL after `after`, and says
/// whether it was still running then.
pub fn kill_after(mut cmd: std::process::Command, after: std::time::Duration) -> bool {
    use std::process::Stdio;
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawns the command");
    let deadline = std::time::Instant::now() + after;
    while std::time::Instant::now() < deadline {
        if child.try_wait().expect("waits on the command").is_some() {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let running = child.try_wait().expect("waits on the command").is_none();
    child.kill().expect("kills the command");
    child.wait().expect("reaps the command");
    running
}

/// A command's uninterrupted duration for the kill loops: after a warm-up run (the first
/// run of a binary pays for loading it), the median of three. Each run must succeed.
pub fn uninterrupted_duration(mut make: impl FnMut() -> std::process::Command) -> std::time::Duration {
    let mut run = || {
        let mut cmd = make();
        let t = std::time::Instant::now();
        let out = cmd.output().expect("runs the command");
        assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        t.elapsed()
    };
    run();
    let mut runs = [run(), run(), run()];
    runs.sort();
    runs[1]
}
