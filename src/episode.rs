//! An LCL episode (support shots, query, optional answer) and its encoding into the token
//! ids, loss labels and image order the model consumes.

use std::path::PathBuf;

use anyhow::{Result, bail};

use serde::{Deserialize, Serialize};

use crate::template::{
    QUERY_QUESTION, Segment, image_tokens, query_answer, render_query, render_support,
    render_support_prompt, tokenize_segments,
};
use crate::tokenizer::LclTokenizer;

/// Label of a position the loss ignores (PyTorch's and HF's `IGNORE_INDEX`).
pub const IGNORE_INDEX: i64 = -100;

/// Which answers of a training episode the loss supervises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Supervision {
    /// The query's answer and its `</s>` only: the original's loss.
    #[default]
    Query,
    /// Also the answer of every support shot whose label an earlier shot of the episode
    /// already showed: each is answerable only through the link, so an episode of `k` shots
    /// per class gives about `2k` linking targets instead of one. Not in the original; the
    /// miniature uses it to learn linking in fewer steps.
    RepeatedLabels,
    /// Every support answer and the query's. With real-named classes, a class's first shot
    /// is answerable only by recognising its own picture among the episode's others: the
    /// miniature's stage that teaches its decoder to read the latest picture of a multi-image
    /// prompt before it learns to link. An invented label's first shot is a guess. Not in the
    /// original.
    AllAnswers,
}

/// One support shot: an image and the label shown with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shot {
    /// The image file.
    pub image: PathBuf,
    /// Its label in this episode (an invented name or a real one).
    pub label: String,
}

/// An episode ready to render: support shots in prompt order, then the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// Support shots in prompt order (the first carries the system text).
    pub support: Vec<Shot>,
    /// The query image.
    pub query: PathBuf,
    /// The query question, with an `<image>` placeholder.
    pub question: String,
    /// The query's label; rendered as the supervised answer in training, absent in evaluation.
    pub answer: Option<String>,
}

/// An episode as the model consumes it.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedEpisode {
    /// The rendered segments with their ids.
    pub segments: Vec<Segment>,
    /// All ids in order.
    pub ids: Vec<u32>,
    /// Loss labels, one per id: [`IGNORE_INDEX`] everywhere but the supervised answers (the
    /// query's with its `</s>`; HF convention: the model shifts them by one itself).
    pub labels: Vec<i64>,
    /// Image files in the order their `<im_patch>` runs appear (support shots, then query).
    pub images: Vec<PathBuf>,
}

impl Episode {
    /// An evaluation episode with the original's query question.
    pub fn evaluation(support: Vec<Shot>, query: PathBuf) -> Self {
        Self {
            support,
            query,
            question: QUERY_QUESTION.to_string(),
            answer: None,
        }
    }

    /// The segment texts, byte for byte as the original renders them.
    pub fn render(&self, patches: usize) -> Vec<String> {
        let image = image_tokens(patches);
        let mut texts: Vec<String> = self
            .support
            .iter()
            .enumerate()
            .map(|(i, shot)| render_support(&shot.label, i == 0, &image))
            .collect();
        let answer = self.answer.as_deref().map(query_answer);
        texts.push(render_query(&self.question, answer.as_deref(), &image));
        texts
    }

    /// Renders and tokenises the episode; labels supervise the query's answer only (the
    /// original's loss).
    pub fn encode(&self, tokenizer: &LclTokenizer, patches: usize) -> Result<EncodedEpisode> {
        self.encode_supervised(tokenizer, patches, Supervision::Query)
    }

    /// Renders and tokenises the episode; labels supervise the answers `supervision` names.
    pub fn encode_supervised(
        &self,
        tokenizer: &LclTokenizer,
        patches: usize,
        supervision: Supervision,
    ) -> Result<EncodedEpisode> {
        let segments = tokenize_segments(tokenizer, self.render(patches));
        let ids: Vec<u32> = segments
            .iter()
            .flat_map(|s| s.ids.iter().copied())
            .collect();
        let mut labels = vec![IGNORE_INDEX; ids.len()];
        let image = image_tokens(patches);
        let mut segment_start = 0;
        for (i, segment) in segments.iter().enumerate() {
            let supervised_prompt = match self.support.get(i) {
                Some(shot)
                    if supervision == Supervision::AllAnswers
                        || (supervision == Supervision::RepeatedLabels
                            && self.support[..i].iter().any(|s| s.label == shot.label)) =>
                {
                    Some(render_support_prompt(i == 0, &image))
                }
                Some(_) => None,
                None if self.answer.is_some() => Some(render_query(&self.question, None, &image)),
                None => None,
            };
            if let Some(prompt) = supervised_prompt {
                let answer_start = segment_start + answer_offset(tokenizer, segment, &prompt)?;
                let end = segment_start + segment.ids.len();
                for (label, &id) in labels[answer_start..end]
                    .iter_mut()
                    .zip(&ids[answer_start..end])
                {
                    *label = i64::from(id);
                }
            }
            segment_start += segment.ids.len();
        }
        let images = self
            .support
            .iter()
            .map(|s| s.image.clone())
            .chain(std::iter::once(self.query.clone()))
            .collect();
        Ok(EncodedEpisode {
            segments,
            ids,
            labels,
            images,
        })
    }
}

/// Where the answer starts in `segment`: after the ids of `prompt` (its text up to
/// `ASSISTANT:`), which must be a strict prefix of the segment's ids.
fn answer_offset(tokenizer: &LclTokenizer, segment: &Segment, prompt: &str) -> Result<usize> {
    let prompt_ids = tokenizer.encode(prompt);
    if !segment.ids.starts_with(&prompt_ids) || prompt_ids.len() >= segment.ids.len() {
        bail!(
            "the answer does not start on a token boundary after `ASSISTANT:` in {:?}",
            segment.text
        );
    }
    Ok(prompt_ids.len())
}
