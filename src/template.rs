//! The LCL prompt template, byte for byte as the original renders it, and its tokenisation
//! (every segment tokenised on its own with its own `<s>`; the final `</s>` of support shots
//! after the first is dropped).

use serde::Serialize;

use crate::tokenizer::{IMAGE_END, IMAGE_PATCH, IMAGE_START, LclTokenizer};

/// The system text in front of the first support shot.
pub const SYSTEM_TEXT: &str = "You should find the causal relationship between the examples I am going to show you. And use that to answer to the [FINAL QUESTION].";
/// The question of a support shot.
pub const SUPPORT_QUESTION: &str = "[BEGIN EXAMPLE] What is in the image <image>?";
/// The evaluation question of the query.
pub const QUERY_QUESTION: &str = "Based on the previous examples, what is in the image <image>?";
/// Where an image goes in a question.
pub const IMAGE_PLACEHOLDER: &str = "<image>";

/// Answer of a support shot for `label`.
pub fn support_answer(label: &str) -> String {
    format!("there is \"{label}\" in the image. [END EXAMPLE]")
}

/// Answer of the query for `label`.
pub fn query_answer(label: &str) -> String {
    format!("there is \"{label}\" in the image.")
}

/// `<im_start>` + `patches` x `<im_patch>` + `<im_end>`.
pub fn image_tokens(patches: usize) -> String {
    format!("{IMAGE_START}{}{IMAGE_END}", IMAGE_PATCH.repeat(patches))
}

/// One rendered support shot; the first one carries the system text.
pub fn render_support(label: &str, first: bool, image: &str) -> String {
    format!(
        "{} {}</s>",
        render_support_prompt(first, image),
        support_answer(label)
    )
}

/// A support shot up to its `ASSISTANT:` (where its answer starts).
pub fn render_support_prompt(first: bool, image: &str) -> String {
    let question = SUPPORT_QUESTION.replace(IMAGE_PLACEHOLDER, image);
    if first {
        format!("{SYSTEM_TEXT} USER: {question} ASSISTANT:")
    } else {
        format!(" USER: {question} ASSISTANT:")
    }
}

/// The rendered query (two spaces after `[FINAL QUESTION]:`); with an answer in training.
pub fn render_query(question: &str, answer: Option<&str>, image: &str) -> String {
    let question = question.replace(IMAGE_PLACEHOLDER, image);
    match answer {
        Some(answer) => format!("[FINAL QUESTION]:  USER: {question} ASSISTANT: {answer}</s>"),
        None => format!("[FINAL QUESTION]:  USER: {question} ASSISTANT:"),
    }
}

/// A rendered segment with its ids, as `--print-prompt` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    /// The segment's text.
    pub text: String,
    /// Its ids, as they enter the prompt.
    pub ids: Vec<u32>,
}

/// The evaluation prompt: support shots in the order given, then the query ending at
/// `ASSISTANT:`. Zero shots gives the query alone.
pub fn evaluation_prompt(
    tokenizer: &LclTokenizer,
    support_labels: &[String],
    patches: usize,
) -> Vec<Segment> {
    let image = image_tokens(patches);
    let mut texts: Vec<String> = support_labels
        .iter()
        .enumerate()
        .map(|(i, label)| render_support(label, i == 0, &image))
        .collect();
    texts.push(render_query(QUERY_QUESTION, None, &image));
    tokenize_segments(tokenizer, texts)
}

/// Tokenises segments as the original: each with its own `<s>`; the final `</s>` of every
/// support shot but the first is dropped; the last segment (the query) is kept whole.
pub fn tokenize_segments(tokenizer: &LclTokenizer, texts: Vec<String>) -> Vec<Segment> {
    let count = texts.len();
    texts
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            let mut ids = tokenizer.encode(&text);
            let later_shot = i > 0 && i + 1 < count;
            if later_shot && ids.last() == Some(&tokenizer.eos_id()) {
                ids.pop();
            }
            Segment { text, ids }
        })
        .collect()
}

/// All ids of a prompt, in order.
pub fn prompt_ids(segments: &[Segment]) -> Vec<u32> {
    segments
        .iter()
        .flat_map(|s| s.ids.iter().copied())
        .collect()
}
