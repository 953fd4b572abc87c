//! The original's scoring of a generated answer: the target is the cleaned label; an answer
//! is correct iff it contains the positive target and, once every occurrence of it is
//! removed, no longer contains the negative target. Matching is case-sensitive on the raw
//! prediction (the targets are lower-cased, the prediction is not).

/// Phrases the original strips from a reference answer, in its order.
const STRIPPED: [&str; 3] = ["The answer is", "there is", "in the image"];

/// The original's cleaning of a reference answer or class name: the template phrases,
/// double and single quotes and full stops removed, then trimmed and lower-cased.
pub fn clean_target(text: &str) -> String {
    let mut cleaned = text.to_string();
    for phrase in STRIPPED {
        cleaned = cleaned.replace(phrase, "");
    }
    cleaned = cleaned.replace(['"', '\'', '.'], "");
    cleaned.trim().to_lowercase()
}

/// Whether `prediction` answers with `positive` and not `negative` (both raw labels; they
/// are cleaned here). An empty cleaned positive target never matches.
pub fn is_correct(prediction: &str, positive: &str, negative: &str) -> bool {
    let positive = clean_target(positive);
    let negative = clean_target(negative);
    if positive.is_empty() || !prediction.contains(&positive) {
        return false;
    }
    let rest = prediction.replace(&positive, "");
    negative.is_empty() || !rest.contains(&negative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_cleaned_like_the_original() {
        assert_eq!(
            clean_target("there is \"Cactihog\" in the image."),
            "cactihog"
        );
        assert_eq!(clean_target("The answer is 'Sea Lion'."), "sea lion");
        assert_eq!(clean_target("jack-o'-lantern"), "jack-o-lantern");
        assert_eq!(clean_target("  Hedgehog "), "hedgehog");
    }

    #[test]
    fn correct_iff_positive_present_and_negative_absent_after_removal() {
        let answer = "there is \"cactihog\" in the image.";
        assert!(is_correct(answer, "Cactihog", "hedgehog"));
        assert!(!is_correct(
            "there is \"hedgehog\" in the image.",
            "Cactihog",
            "hedgehog"
        ));
        // both names present: wrong
        assert!(!is_correct(
            "a cactihog or a hedgehog",
            "cactihog",
            "hedgehog"
        ));
        // the negative inside the positive is removed with it: right
        assert!(is_correct("there is a sea lion", "sea lion", "lion"));
        // the positive inside a longer word still counts (substring rule of the original)
        assert!(is_correct("there are cactihogs", "cactihog", "hedgehog"));
        // case-sensitive on the prediction: a capitalised answer misses a lower-cased target
        assert!(!is_correct(
            "there is \"Cactihog\" in the image.",
            "Cactihog",
            "hedgehog"
        ));
        // a label that cleans to nothing never matches
        assert!(!is_correct("anything", "\"\"", "hedgehog"));
        assert!(!is_correct("", "cactihog", "hedgehog"));
    }
}
