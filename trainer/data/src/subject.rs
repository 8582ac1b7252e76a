//! Subject ids from file paths, for subject-independent splits.
//!
//! The pattern runs on the path relative to the dataset root, with `/` separators, so it
//! can match a file name (CK+: `S010_004_00000017.png` -> `S010`) or a folder
//! (`happy/person_07/img1.jpg` with `--subject-regex '/(person_\d+)/'`). The subject id is
//! the first capture group, or the whole match when the pattern has no group.

use regex::Regex;

/// CK+ file names: `S<subject>_<sequence>_<frame>.<ext>`.
pub const DEFAULT_SUBJECT_REGEX: &str = r"(?:^|/)(S\d+)_\d+_\d+\.[A-Za-z]+$";

#[derive(Clone, Debug)]
pub struct SubjectPattern {
    regex: Regex,
}

impl SubjectPattern {
    pub fn new(pattern: &str) -> Result<SubjectPattern, String> {
        let regex = Regex::new(pattern).map_err(|e| format!("invalid --subject-regex {pattern:?}: {e}"))?;
        Ok(SubjectPattern { regex })
    }

    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// The subject id in `relative_path`, if the pattern matches.
    pub fn extract<'a>(&self, relative_path: &'a str) -> Option<&'a str> {
        let caps = self.regex.captures(relative_path)?;
        let m = caps.get(1).or_else(|| caps.get(0))?;
        (!m.as_str().is_empty()).then_some(m.as_str())
    }
}

impl Default for SubjectPattern {
    fn default() -> Self {
        SubjectPattern::new(DEFAULT_SUBJECT_REGEX).expect("the default pattern compiles")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_reads_ckplus_names() {
        let p = SubjectPattern::default();
        assert_eq!(p.extract("anger/S010_004_00000017.png"), Some("S010"));
        assert_eq!(p.extract("S137_011_00000010.PNG"), Some("S137"));
        assert_eq!(p.extract("happy/Training_10118481.jpg"), None);
        assert_eq!(p.extract("happy/xS010_004_00000017.png"), None);
    }

    #[test]
    fn custom_pattern_with_and_without_group() {
        let p = SubjectPattern::new(r"/(person_\d+)/").unwrap();
        assert_eq!(p.extract("happy/person_07/img1.jpg"), Some("person_07"));
        let p = SubjectPattern::new(r"p\d+").unwrap();
        assert_eq!(p.extract("sad/p12_a.png"), Some("p12"));
    }

    #[test]
    fn bad_pattern_is_an_error_naming_it() {
        let e = SubjectPattern::new("S(\\d+").unwrap_err();
        assert!(e.contains("--subject-regex") && e.contains("S(\\\\d+"), "{e}");
    }
}
