//! Instruction-tuning conversations in the LLaVA/Shikra JSON format (for the [mix]
//! strategy): `{"image": ..., "conversations": [{"from": "human", "value": ...},
//! {"from": "gpt", "value": ...}, ...]}`, as a JSON array or JSON lines. Rendered with
//! Shikra's `vicuna_v1.1` template; every assistant reply and its `</s>` are supervised.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::episode::{EncodedEpisode, IGNORE_INDEX};
use crate::template::{IMAGE_PLACEHOLDER, Segment, image_tokens};
use crate::tokenizer::LclTokenizer;

/// The system text of the `vicuna_v1.1` template.
pub const VICUNA_SYSTEM: &str = "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";

/// One turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// `human` or `gpt`.
    pub from: String,
    /// The text; a human turn may hold `<image>`.
    pub value: String,
}

/// One conversation record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Record id, when the file has one.
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    /// The image, relative to the data's image folder.
    pub image: Option<String>,
    /// Alternating human / gpt turns, human first.
    pub conversations: Vec<Turn>,
}

/// Reads a conversation file: a JSON array (LLaVA) or JSON lines (Shikra); a bad record is
/// an error naming the file and the record (or line).
pub fn read(path: &Path) -> Result<Vec<Conversation>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let records = if text.trim_start().starts_with('[') {
        let values: Vec<serde_json::Value> = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a JSON array of conversations", path.display()))?;
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                serde_json::from_value(v)
                    .with_context(|| format!("{}: record {}: malformed", path.display(), i + 1))
            })
            .collect::<Result<Vec<Conversation>>>()?
    } else {
        super::jsonl::read(path)?
    };
    for (index, record) in records.iter().enumerate() {
        record
            .validate()
            .with_context(|| format!("{}: record {}", path.display(), index + 1))?;
    }
    Ok(records)
}

impl Conversation {
    fn validate(&self) -> Result<()> {
        if self.conversations.is_empty() || !self.conversations.len().is_multiple_of(2) {
            bail!("needs human/gpt turn pairs");
        }
        for (i, turn) in self.conversations.iter().enumerate() {
            let expected = if i % 2 == 0 { "human" } else { "gpt" };
            if turn.from != expected {
                bail!(
                    "turn {} is from {:?}, expected {expected}",
                    i + 1,
                    turn.from
                );
            }
        }
        let placeholders: usize = self
            .conversations
            .iter()
            .map(|t| t.value.matches(IMAGE_PLACEHOLDER).count())
            .sum();
        let images = usize::from(self.image.is_some());
        if placeholders != images {
            bail!("{images} image(s) but {placeholders} {IMAGE_PLACEHOLDER} placeholder(s)");
        }
        Ok(())
    }

    /// The rendered text up to the end of every assistant reply: `(end of "ASSISTANT:",
    /// end of the reply's "</s>")` byte offsets, and the whole text.
    fn render(&self, patches: usize) -> (String, Vec<(usize, usize)>) {
        let image = image_tokens(patches);
        let mut text = format!("{VICUNA_SYSTEM} ");
        let mut replies = Vec::new();
        for pair in self.conversations.chunks(2) {
            let question = pair[0].value.replace(IMAGE_PLACEHOLDER, &image);
            text.push_str(&format!("USER: {question} ASSISTANT:"));
            let prompt_end = text.len();
            text.push_str(&format!(" {}</s>", pair[1].value));
            replies.push((prompt_end, text.len()));
        }
        (text, replies)
    }

    /// Tokenises the conversation (one sequence with one `<s>`) with labels on every reply
    /// and its `</s>`; the image, if any, is resolved under `image_root`.
    pub fn encode(
        &self,
        tokenizer: &LclTokenizer,
        patches: usize,
        image_root: &Path,
    ) -> Result<EncodedEpisode> {
        let (text, replies) = self.render(patches);
        let ids = tokenizer.encode(&text);
        let mut labels = vec![IGNORE_INDEX; ids.len()];
        for (prompt_end, reply_end) in replies {
            let start = tokenizer.encode(&text[..prompt_end]);
            let end = tokenizer.encode(&text[..reply_end]);
            if !ids.starts_with(&start) || !ids.starts_with(&end) {
                bail!("a reply does not start or end on a token boundary");
            }
            for position in start.len()..end.len() {
                labels[position] = i64::from(ids[position]);
            }
        }
        let images: Vec<PathBuf> = self.image.iter().map(|i| image_root.join(i)).collect();
        Ok(EncodedEpisode {
            segments: vec![Segment {
                text,
                ids: ids.clone(),
            }],
            ids,
            labels,
            images,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation(turns: &[(&str, &str)], image: Option<&str>) -> Conversation {
        Conversation {
            id: None,
            image: image.map(String::from),
            conversations: turns
                .iter()
                .map(|(from, value)| Turn {
                    from: from.to_string(),
                    value: value.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn renders_the_vicuna_template_with_image_tokens() {
        let c = conversation(
            &[
                ("human", "<image>\nWhat is it?"),
                ("gpt", "A cat."),
                ("human", "Color?"),
                ("gpt", "Grey."),
            ],
            Some("x.jpg"),
        );
        let (text, replies) = c.render(2);
        assert_eq!(
            text,
            format!(
                "{VICUNA_SYSTEM} USER: <im_start><im_patch><im_patch><im_end>\nWhat is it? ASSISTANT: A cat.</s>USER: Color? ASSISTANT: Grey.</s>"
            )
        );
        assert_eq!(&text[replies[0].0..replies[0].1], " A cat.</s>");
        assert_eq!(&text[replies[1].0..replies[1].1], " Grey.</s>");
    }

    #[test]
    fn malformed_conversations_are_refused() {
        let bad_order = conversation(&[("gpt", "hi"), ("human", "hi")], None);
        assert!(bad_order.validate().is_err());
        let missing_image = conversation(&[("human", "<image> what?"), ("gpt", "x")], None);
        assert!(
            missing_image
                .validate()
                .unwrap_err()
                .to_string()
                .contains("placeholder")
        );
        let odd = conversation(&[("human", "hi")], None);
        assert!(odd.validate().is_err());
    }
}
