//! An LCL episode (support shots, query, optional answer) and its encoding into the token
//! ids, loss labels and image order the model consumes.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::template::{
    QUERY_QUESTION, Segment, image_tokens, query_answer, render_query, render_support,
    tokenize_segments,
};
use crate::tokenizer::LclTokenizer;

/// Label of a position the loss ignores (PyTorch's and HF's `IGNORE_INDEX`).
pub const IGNORE_INDEX: i64 = -100;

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
    /// Loss labels, one per id: [`IGNORE_INDEX`] everywhere but the query's answer and its
    /// `</s>` (HF convention: the model shifts them by one itself).
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

    /// Renders and tokenises the episode; labels supervise the answer only.
    pub fn encode(&self, tokenizer: &LclTokenizer, patches: usize) -> Result<EncodedEpisode> {
        let segments = tokenize_segments(tokenizer, self.render(patches));
        let ids: Vec<u32> = segments
            .iter()
            .flat_map(|s| s.ids.iter().copied())
            .collect();
        let mut labels = vec![IGNORE_INDEX; ids.len()];
        if self.answer.is_some() {
            let query = segments.last().expect("the query segment");
            let image = image_tokens(patches);
            let prompt = tokenizer.encode(&render_query(&self.question, None, &image));
            if !query.ids.starts_with(&prompt) || prompt.len() >= query.ids.len() {
                bail!(
                    "the query's answer does not start on a token boundary after `ASSISTANT:` \
                     (question {:?}, answer {:?})",
                    self.question,
                    self.answer
                );
            }
            let answer_start = ids.len() - (query.ids.len() - prompt.len());
            for (label, &id) in labels[answer_start..].iter_mut().zip(&ids[answer_start..]) {
                *label = i64::from(id);
            }
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
