//! The one line both command-line tools print when a command fails.
//!
//! An error that names its file often shows its cause in its own message (`PATH: cause`)
//! and also keeps it as its source, so `{:#}` would print the cause twice. Here each cause
//! is added only when the line does not already end with it, and line breaks inside a message
//! are flattened: the user reads one line that names the file and what is wrong.

/// `error`'s chain as one line, each cause once.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string().replace('\n', " ");
        // Said already when the line ends with it (`PATH: {source}`); a short cause that
        // merely occurs earlier ("EOF" in a file name) is kept.
        if line.ends_with(text.as_str()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct Named {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_the_message_already_says_is_not_repeated() {
        let e =
            anyhow::Error::new(Named { path: "a.fer".into(), source: std::io::Error::other("truncated") });
        assert_eq!(one_line(&e), "a.fer: truncated");
        let e = e.context("loading the model");
        assert_eq!(one_line(&e), "loading the model: a.fer: truncated");
    }

    #[test]
    fn a_short_cause_that_occurs_earlier_is_kept() {
        let e = anyhow::anyhow!("EOF").context("reading EOF.png");
        assert_eq!(one_line(&e), "reading EOF.png: EOF");
    }

    #[test]
    fn causes_not_in_the_message_are_kept_and_lines_flattened() {
        let e = anyhow::anyhow!("inner\nsecond line").context("outer");
        assert_eq!(one_line(&e), "outer: inner second line");
    }
}
