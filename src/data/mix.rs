//! The [mix] strategy's data: instruction conversations as a dataset, and a dataset that
//! interleaves several sources at set probabilities (the original samples LCL episodes with
//! total probability 0.5 and its instruction sets evenly in the rest).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Result, bail};
use burn::data::dataset::{Dataset, DatasetError};
use lcl_model::rng::Rng;

use crate::data::batch::EpisodeItem;
use crate::data::conversation::Conversation;
use crate::tokenizer::LclTokenizer;

/// Instruction conversations, encoded with their image on access.
#[derive(Clone)]
pub struct InstructionSet {
    records: Arc<Vec<Conversation>>,
    image_root: PathBuf,
    tokenizer: Arc<LclTokenizer>,
    patches: usize,
    image_size: u32,
}

impl InstructionSet {
    /// A set over `records` whose images live under `image_root`.
    pub fn new(
        records: Vec<Conversation>,
        image_root: PathBuf,
        tokenizer: Arc<LclTokenizer>,
        patches: usize,
        image_size: u32,
    ) -> Self {
        Self {
            records: Arc::new(records),
            image_root,
            tokenizer,
            patches,
            image_size,
        }
    }
}

fn dataset_error(err: anyhow::Error) -> DatasetError {
    DatasetError::new(std::io::Error::other(format!("{err:#}")))
}

impl Dataset<EpisodeItem> for InstructionSet {
    fn get(&self, index: usize) -> Result<EpisodeItem, DatasetError> {
        let record = &self.records[index];
        let encoded = record
            .encode(&self.tokenizer, self.patches, &self.image_root)
            .map_err(|err| dataset_error(err.context(format!("conversation {}", index + 1))))?;
        // `encode` already resolved the image under `image_root`.
        EpisodeItem::new(encoded, Path::new(""), self.image_size).map_err(dataset_error)
    }

    fn len(&self) -> usize {
        self.records.len()
    }
}

/// Sources drawn at fixed probabilities: item `i` of an epoch picks its source and its item
/// there from a seeded stream of its own. Length: the first source's length divided by its
/// probability, so an epoch shows about one pass over the first source (the LCL episodes).
pub struct MixedSet {
    sources: Vec<Arc<dyn Dataset<EpisodeItem>>>,
    probabilities: Vec<f64>,
    len: usize,
    seed: u64,
    epoch: u64,
}

impl MixedSet {
    /// Mixes `sources` with `probabilities` (one each, summing to 1).
    pub fn new(
        sources: Vec<Arc<dyn Dataset<EpisodeItem>>>,
        probabilities: Vec<f64>,
        seed: u64,
        epoch: u64,
    ) -> Result<Self> {
        if sources.is_empty() || sources.len() != probabilities.len() {
            bail!(
                "{} sources but {} probabilities",
                sources.len(),
                probabilities.len()
            );
        }
        let total: f64 = probabilities.iter().sum();
        if probabilities.iter().any(|p| *p <= 0.0) || (total - 1.0).abs() > 1e-6 {
            bail!("mix probabilities must be positive and sum to 1, not {probabilities:?}");
        }
        if sources.iter().any(|s| s.is_empty()) {
            bail!("a mixed source is empty");
        }
        let len = (sources[0].len() as f64 / probabilities[0]).round() as usize;
        Ok(Self {
            sources,
            probabilities,
            len,
            seed,
            epoch,
        })
    }

    /// Which source and which of its items item `index` is.
    pub fn pick(&self, index: usize) -> (usize, usize) {
        let mut rng = Rng::derive(self.seed, &[6, self.epoch, index as u64]);
        let source = rng.weighted(&self.probabilities);
        (source, rng.below(self.sources[source].len()))
    }
}

impl Dataset<EpisodeItem> for MixedSet {
    fn get(&self, index: usize) -> Result<EpisodeItem, DatasetError> {
        let (source, item) = self.pick(index);
        self.sources[source].get(item)
    }

    fn len(&self) -> usize {
        self.len
    }
}
