//! The label contract: index order and names shared by datasets, trainer, models and runtime.
//!
//! Index order everywhere is FER2013's. Datasets that spell classes differently (CK+'s
//! `anger`, `sadness`) map onto these names; CK+'s `contempt` is outside the seven and is
//! an eighth class only when the user asks for it.

/// The seven FER2013 emotions, in model output order.
pub const EMOTIONS: [&str; 7] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

/// Index of CK+'s `contempt` when a user keeps it as an eighth class.
pub const CONTEMPT: usize = 7;

/// Every class name a model may carry: the seven emotions, then `contempt`.
pub const ALL_CLASSES: [&str; 8] =
    ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt"];

/// Maps a dataset's class name (any case, common synonyms) to its class index, or `None`
/// when the name is not an emotion we know.
///
/// ```
/// use fer_core::labels::class_index;
/// assert_eq!(class_index("Anger"), Some(0));
/// assert_eq!(class_index("sadness"), Some(4));
/// assert_eq!(class_index("contempt"), Some(7));
/// assert_eq!(class_index("bored"), None);
/// ```
pub fn class_index(name: &str) -> Option<usize> {
    // Spellings used by FER2013, CK+, JAFFE, RAF-DB and AffectNet folder trees.
    const SYNONYMS: [(&str, usize); 16] = [
        ("angry", 0),
        ("anger", 0),
        ("disgust", 1),
        ("disgusted", 1),
        ("fear", 2),
        ("fearful", 2),
        ("happy", 3),
        ("happiness", 3),
        ("sad", 4),
        ("sadness", 4),
        ("surprise", 5),
        ("surprised", 5),
        ("neutral", 6),
        ("neutrality", 6),
        ("contempt", 7),
        ("contemptuous", 7),
    ];
    let name = name.trim();
    SYNONYMS.iter().find(|(s, _)| s.eq_ignore_ascii_case(name)).map(|&(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_map_to_their_own_index() {
        for (i, name) in ALL_CLASSES.iter().enumerate() {
            assert_eq!(class_index(name), Some(i), "{name}");
        }
        assert_eq!(&ALL_CLASSES[..7], &EMOTIONS[..]);
    }

    #[test]
    fn synonyms_and_case() {
        assert_eq!(class_index(" ANGER "), Some(0));
        assert_eq!(class_index("Surprised"), Some(5));
        assert_eq!(class_index(""), None);
        assert_eq!(class_index("7"), None);
    }
}
