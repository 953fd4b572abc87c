//! The training set of LCL: one sampled episode per class per epoch (a Burn [`Dataset`]).
//! Every episode is a pure function of (seed, epoch, index), so workers draw items in any
//! order and an interrupted run resumes with the same episodes.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::data::dataset::{Dataset, DatasetError};
use lcl_model::rng::Rng;

use crate::data::batch::EpisodeItem;
use crate::data::class_file::ClassEntry;
use crate::data::draw::{EpisodeRules, ShotSchedule, sample_episode};
use crate::episode::{Episode, Shot, Supervision};
use crate::tokenizer::LclTokenizer;

/// What a training set draws from and how.
#[derive(Debug, Clone)]
pub struct TrainSetSpec {
    /// The per-class file's entries (training classes only).
    pub classes: Vec<ClassEntry>,
    /// Folder the class file's image paths are relative to.
    pub image_root: PathBuf,
    /// Shots per class of each episode.
    pub shots: ShotSchedule,
    /// Query questions, one drawn per episode (the original's paraphrases).
    pub questions: Vec<String>,
    /// Episodes per class per epoch.
    pub episodes_per_class: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// How many classes an episode has and how its hard negatives are labelled.
    pub rules: EpisodeRules,
}

/// Draws the episodes of one epoch (no file is read).
#[derive(Debug, Clone)]
pub struct EpochEpisodes {
    spec: Arc<TrainSetSpec>,
    epoch: u64,
}

/// The episodes of one epoch, rendered, tokenised and with their images preprocessed.
#[derive(Clone)]
pub struct TrainSet {
    sampler: EpochEpisodes,
    tokenizer: Arc<LclTokenizer>,
    patches: usize,
    image_size: u32,
    supervision: Supervision,
}

impl EpochEpisodes {
    /// Checks the spec (every class can give the most shots the schedule asks plus a query,
    /// every neighbour is a known class) and builds the sampler of `epoch`.
    pub fn new(spec: Arc<TrainSetSpec>, epoch: u64) -> Result<Self> {
        if spec.classes.is_empty() || spec.questions.is_empty() || spec.episodes_per_class == 0 {
            bail!("a training set needs classes, query questions and episodes per class > 0");
        }
        let most = spec.shots.most();
        let ids: std::collections::HashSet<&str> =
            spec.classes.iter().map(|c| c.class_id.as_str()).collect();
        for class in &spec.classes {
            if class.samples.len() <= most {
                bail!(
                    "class {} ({}) has {} samples; the shot schedule needs {} + 1 query",
                    class.class_id,
                    class.class_name,
                    class.samples.len(),
                    most
                );
            }
            if class.neighbors.len() + 1 < spec.rules.ways {
                bail!(
                    "class {} ({}) has {} neighbours; {}-way episodes need {}",
                    class.class_id,
                    class.class_name,
                    class.neighbors.len(),
                    spec.rules.ways,
                    spec.rules.ways - 1
                );
            }
            if let Some(missing) = class.neighbors.iter().find(|n| !ids.contains(n.id())) {
                bail!(
                    "neighbour {} of class {} is not a training class",
                    missing.id(),
                    class.class_id
                );
            }
        }
        Ok(Self { spec, epoch })
    }

    /// Episodes per epoch.
    pub fn len(&self) -> usize {
        self.spec.classes.len() * self.spec.episodes_per_class
    }

    /// Whether an epoch is empty (never: the spec is checked).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Episode `index` of this epoch (its anchor class is `index % classes`).
    pub fn episode(&self, index: usize) -> Result<Episode> {
        let spec = &self.spec;
        let mut rng = Rng::derive(spec.seed, &[self.epoch, index as u64]);
        let shots = spec.shots.draw(&mut rng);
        let anchor = index % spec.classes.len();
        let sampled = sample_episode(&spec.classes, anchor, shots, spec.rules, &mut rng)?;
        let question = spec.questions[rng.below(spec.questions.len())].clone();
        Ok(Episode {
            support: sampled
                .support
                .into_iter()
                .map(|(image, label)| Shot {
                    image: image.into(),
                    label,
                })
                .collect(),
            query: sampled.query_image.into(),
            question,
            answer: Some(sampled.query_label),
        })
    }
}

impl TrainSet {
    /// The set of `sampler`'s epoch, encoded with `tokenizer` (`patches` per image) and
    /// images preprocessed at `image_size` pixels.
    pub fn new(
        sampler: EpochEpisodes,
        tokenizer: Arc<LclTokenizer>,
        patches: usize,
        image_size: u32,
    ) -> Self {
        Self {
            sampler,
            tokenizer,
            patches,
            image_size,
            supervision: Supervision::Query,
        }
    }

    /// The same set with the loss on the answers `supervision` names.
    pub fn with_supervision(self, supervision: Supervision) -> Self {
        Self {
            supervision,
            ..self
        }
    }

    /// The same set at another epoch.
    pub fn at_epoch(&self, epoch: u64) -> Self {
        Self {
            sampler: EpochEpisodes {
                epoch,
                ..self.sampler.clone()
            },
            ..self.clone()
        }
    }

    /// Episode `index` of this epoch, before encoding.
    pub fn episode(&self, index: usize) -> Result<Episode> {
        self.sampler.episode(index)
    }

    fn item(&self, index: usize) -> Result<EpisodeItem> {
        let episode = self.sampler.episode(index)?;
        let encoded = episode
            .encode_supervised(&self.tokenizer, self.patches, self.supervision)
            .with_context(|| format!("training episode {index} of epoch {}", self.sampler.epoch))?;
        EpisodeItem::new(encoded, &self.sampler.spec.image_root, self.image_size)
    }
}

impl Dataset<EpisodeItem> for TrainSet {
    fn get(&self, index: usize) -> Result<EpisodeItem, DatasetError> {
        self.item(index)
            .map_err(|err| DatasetError::new(std::io::Error::other(format!("{err:#}"))))
    }

    fn len(&self) -> usize {
        self.sampler.len()
    }
}
