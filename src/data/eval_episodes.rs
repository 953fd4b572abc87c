//! Evaluation episodes of the paper's suites, with the targets the scorer compares against:
//! ImageNet-100 (held-out classes paired 2k / 2k+1, 32 context and 50 query images each),
//! ISEKAI-10 and ISEKAI-pair (episode files), and the two label ablations.
//!
//! Shot counts are the paper's: `shots` support images in all, `shots / 2` per class.
//! Support shots are the positives then the negatives, shuffled once per support set (not
//! per query), so queries that share a support set share its prompt prefix.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use lcl_model::rng::Rng;
use serde::{Deserialize, Serialize};

use crate::data::draw::random_label;
use crate::data::image_folder::FolderClass;
use crate::data::isekai::IsekaiEpisode;
use crate::episode::{Episode, Shot};

/// An evaluation episode and its targets.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalEpisode {
    /// Stable id: the suite's record and query, for predictions files and resume.
    pub id: String,
    /// Id of the support set; episodes with the same key have the same support shots.
    pub support_key: String,
    /// The episode (no answer).
    pub episode: Episode,
    /// Name of the query's class (what a correct answer contains).
    pub positive: String,
    /// Name of the other class (what a correct answer does not contain).
    pub negative: String,
}

/// A held-out class of the ImageNet-100 suite, in the format of the original's test file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestClass {
    /// Class id.
    pub class_id: String,
    /// Class name.
    pub class_name: String,
    /// Support images (the first `shots / 2` are used).
    pub context_samples: Vec<String>,
    /// Query images.
    pub test_samples: Vec<String>,
}

/// Draws the ImageNet-100 test file from held-out folder classes (in split order): per class
/// `context` support images and `queries` query images, distinct, seeded.
pub fn draw_test_classes(
    classes: &[FolderClass],
    context: usize,
    queries: usize,
    seed: u64,
) -> Result<Vec<TestClass>> {
    classes
        .iter()
        .enumerate()
        .map(|(index, class)| {
            if class.images.len() < context + queries {
                bail!(
                    "class {} ({}) has {} images; the suite needs {context} context + {queries} query images",
                    class.id,
                    class.name,
                    class.images.len()
                );
            }
            let mut images = class.images.clone();
            Rng::derive(seed, &[2, index as u64]).shuffle(&mut images);
            Ok(TestClass {
                class_id: class.id.clone(),
                class_name: class.name.clone(),
                context_samples: images[..context].to_vec(),
                test_samples: images[context..context + queries].to_vec(),
            })
        })
        .collect()
}

/// Support shots of two classes: `per_class` positives then negatives, shuffled by `rng`.
fn two_way_support(
    positives: &[String],
    positive_label: &str,
    negatives: &[String],
    negative_label: &str,
    per_class: usize,
    root: &Path,
    rng: &mut Rng,
) -> Vec<Shot> {
    let shot = |image: &String, label: &str| Shot {
        image: root.join(image),
        label: label.to_string(),
    };
    let mut support: Vec<Shot> = positives[..per_class]
        .iter()
        .map(|i| shot(i, positive_label))
        .chain(
            negatives[..per_class]
                .iter()
                .map(|i| shot(i, negative_label)),
        )
        .collect();
    rng.shuffle(&mut support);
    support
}

fn per_class(shots: usize) -> Result<usize> {
    if !shots.is_multiple_of(2) {
        bail!("{shots} shots: the 2-way suites take an even number (half per class)");
    }
    Ok(shots / 2)
}

/// The ImageNet-100 episodes at `shots`: every class in turn is the positive, its pair
/// partner (2k <-> 2k+1) the negative; one episode per query image of the positive; both
/// classes under their real names.
pub fn imagenet_episodes(
    classes: &[TestClass],
    shots: usize,
    root: &Path,
    seed: u64,
) -> Result<Vec<EvalEpisode>> {
    let k = per_class(shots)?;
    if !classes.len().is_multiple_of(2) {
        bail!("{} test classes: pairs need an even number", classes.len());
    }
    let mut episodes = Vec::new();
    for (index, positive) in classes.iter().enumerate() {
        let negative = &classes[index ^ 1];
        for class in [positive, negative] {
            if class.context_samples.len() < k {
                bail!(
                    "class {} has {} context images, fewer than {k}",
                    class.class_id,
                    class.context_samples.len()
                );
            }
        }
        let mut rng = Rng::derive(seed, &[3, index as u64, shots as u64]);
        let support = two_way_support(
            &positive.context_samples,
            &positive.class_name,
            &negative.context_samples,
            &negative.class_name,
            k,
            root,
            &mut rng,
        );
        let support_key = format!("{}-vs-{}", positive.class_id, negative.class_id);
        for query in &positive.test_samples {
            episodes.push(EvalEpisode {
                id: format!("{support_key}/{query}"),
                support_key: support_key.clone(),
                episode: Episode::evaluation(support.clone(), root.join(query)),
                positive: positive.class_name.clone(),
                negative: negative.class_name.clone(),
            });
        }
    }
    Ok(episodes)
}

/// The episodes of an ISEKAI file (ISEKAI-10 or ISEKAI-pair) at `shots`: the first
/// `shots / 2` images of each list, class names as written in the file; records with the
/// same support set get the same shuffle (one shared prompt prefix).
pub fn isekai_episodes(
    records: &[IsekaiEpisode],
    file: &Path,
    shots: usize,
    root: &Path,
    seed: u64,
) -> Result<Vec<EvalEpisode>> {
    let k = per_class(shots)?;
    records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            if record.positive_list.len() < k || record.negative_list.len() < k {
                bail!(
                    "{} record {}: {shots} shots need {k} images in each list, it has {} and {}",
                    file.display(),
                    index + 1,
                    record.positive_list.len(),
                    record.negative_list.len()
                );
            }
            let support_key = format!(
                "{}|{}|{}|{}",
                record.positive_promt,
                record.negative_promt,
                record.positive_list[..k].join(","),
                record.negative_list[..k].join(",")
            );
            let mut rng = Rng::derive(seed, &[4, key_hash(&support_key), shots as u64]);
            let support = two_way_support(
                &record.positive_list,
                &record.positive_promt,
                &record.negative_list,
                &record.negative_promt,
                k,
                root,
                &mut rng,
            );
            Ok(EvalEpisode {
                id: format!("{}#{}", record.image_name, index + 1),
                support_key,
                episode: Episode::evaluation(support, root.join(&record.image_name)),
                positive: record.positive_promt.clone(),
                negative: record.negative_promt.clone(),
            })
        })
        .collect()
}

/// A stable 64-bit hash (FNV-1a) of a support key, to seed per-support-set choices.
fn key_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A label ablation of the paper.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ablation {
    /// Replace this fraction of the support labels (rounded) with invented ones.
    FalseRatio(f64),
    /// Replace the label at this 1-based support position with an invented one.
    Position(usize),
}

impl Ablation {
    /// Applies the ablation to every episode; the corrupted positions are drawn once per
    /// support set, so queries sharing a support set still share it.
    pub fn apply(&self, episodes: &mut [EvalEpisode], seed: u64) -> Result<()> {
        for episode in episodes.iter_mut() {
            let support = &mut episode.episode.support;
            let mut rng = Rng::derive(seed, &[5, key_hash(&episode.support_key)]);
            let positions: Vec<usize> = match *self {
                Ablation::FalseRatio(ratio) => {
                    if !(0.0..=1.0).contains(&ratio) {
                        bail!("false-label ratio {ratio} is not in 0..=1");
                    }
                    let count = (ratio * support.len() as f64).round() as usize;
                    let mut order: Vec<usize> = (0..support.len()).collect();
                    rng.shuffle(&mut order);
                    order.truncate(count);
                    order
                }
                Ablation::Position(position) => {
                    if position == 0 || position > support.len() {
                        bail!(
                            "corrupted position {position} is outside the {} support shots",
                            support.len()
                        );
                    }
                    vec![position - 1]
                }
            };
            for position in positions {
                let original = support[position].label.clone();
                let mut label = random_label(&mut rng);
                while label == original.to_lowercase() {
                    label = random_label(&mut rng);
                }
                support[position].label = label;
            }
        }
        Ok(())
    }
}

/// Every image an episode list reads, deduplicated, in first-use order.
pub fn episode_images(episodes: &[EvalEpisode]) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    episodes
        .iter()
        .flat_map(|e| {
            e.episode
                .support
                .iter()
                .map(|s| s.image.clone())
                .chain(std::iter::once(e.episode.query.clone()))
        })
        .filter(|image| seen.insert(image.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_classes(n: usize) -> Vec<TestClass> {
        (0..n)
            .map(|c| TestClass {
                class_id: format!("c{c}"),
                class_name: format!("Name {c}"),
                context_samples: (0..32).map(|i| format!("c{c}/ctx{i}.jpg")).collect(),
                test_samples: (0..50).map(|i| format!("c{c}/q{i}.jpg")).collect(),
            })
            .collect()
    }

    #[test]
    fn imagenet_pairs_2k_with_2k_plus_1_and_queries_the_positive() {
        let classes = test_classes(4);
        let root = Path::new("/data");
        let episodes = imagenet_episodes(&classes, 4, root, 1).unwrap();
        assert_eq!(episodes.len(), 4 * 50);
        let first = &episodes[0];
        assert_eq!(
            (first.positive.as_str(), first.negative.as_str()),
            ("Name 0", "Name 1")
        );
        let third_class = &episodes[2 * 50];
        assert_eq!(third_class.negative, "Name 3");
        assert_eq!(
            episodes[50].negative, "Name 0",
            "class 1 pairs with class 0"
        );
        for episode in &episodes[..50] {
            assert!(
                episode
                    .episode
                    .query
                    .to_str()
                    .unwrap()
                    .starts_with("/data/c0/q")
            );
            assert_eq!(
                episode.episode.support, first.episode.support,
                "one support set"
            );
            assert_eq!(episode.support_key, first.support_key);
        }
        let support = &first.episode.support;
        assert_eq!(support.len(), 4);
        let mut images: Vec<_> = support.iter().map(|s| s.image.clone()).collect();
        images.sort();
        assert_eq!(
            images,
            [
                "/data/c0/ctx0.jpg",
                "/data/c0/ctx1.jpg",
                "/data/c1/ctx0.jpg",
                "/data/c1/ctx1.jpg"
            ]
            .map(PathBuf::from)
        );
        for shot in support {
            let expected = if shot.image.starts_with("/data/c0") {
                "Name 0"
            } else {
                "Name 1"
            };
            assert_eq!(shot.label, expected);
        }
        let zero = imagenet_episodes(&classes, 0, root, 1).unwrap();
        assert!(zero.iter().all(|e| e.episode.support.is_empty()));
        assert!(imagenet_episodes(&classes, 3, root, 1).is_err());
        assert!(imagenet_episodes(&classes[..3], 2, root, 1).is_err());
    }

    #[test]
    fn shuffling_puts_the_first_shot_in_either_class() {
        let classes = test_classes(100);
        let episodes = imagenet_episodes(&classes, 16, Path::new(""), 3).unwrap();
        let first_positive = episodes
            .iter()
            .step_by(50)
            .filter(|e| e.episode.support[0].label == e.positive)
            .count();
        // 100 support sets, p = 0.5: within 4 standard deviations (5)
        assert!((30..=70).contains(&first_positive), "{first_positive}");
    }

    fn isekai(n: usize) -> Vec<IsekaiEpisode> {
        (0..n)
            .map(|i| IsekaiEpisode {
                image_name: format!("cactihog/q{i}.jpg"),
                positive_list: (0..8).map(|j| format!("cactihog/{j}.jpg")).collect(),
                negative_list: (0..8).map(|j| format!("hedgehog/{j}.jpg")).collect(),
                positive_promt: "Cactihog".into(),
                negative_promt: "hedgehog".into(),
                label_name: "cactihog".into(),
            })
            .collect()
    }

    #[test]
    fn isekai_episodes_take_the_first_images_and_the_names_as_written() {
        let records = isekai(3);
        let episodes =
            isekai_episodes(&records, Path::new("isekai.jsonl"), 6, Path::new("/i"), 0).unwrap();
        assert_eq!(episodes.len(), 3);
        let support = &episodes[0].episode.support;
        assert_eq!(support.len(), 6);
        assert_eq!(support.iter().filter(|s| s.label == "Cactihog").count(), 3);
        assert!(
            support
                .iter()
                .any(|s| s.image == Path::new("/i/hedgehog/2.jpg"))
        );
        assert!(
            !support
                .iter()
                .any(|s| s.image == Path::new("/i/hedgehog/3.jpg"))
        );
        assert_eq!(episodes[0].positive, "Cactihog");
        assert_eq!(
            episodes[1].episode.support, episodes[0].episode.support,
            "one support set, one shuffle: a shared prompt prefix"
        );
        let err = isekai_episodes(&records, Path::new("isekai.jsonl"), 18, Path::new("/i"), 0)
            .unwrap_err();
        assert!(err.to_string().contains("isekai.jsonl record 1"), "{err}");
    }

    #[test]
    fn ablations_corrupt_the_requested_share_or_position() {
        let classes = test_classes(2);
        let clean = imagenet_episodes(&classes, 16, Path::new(""), 5).unwrap();
        for (ratio, expected) in [(0.0, 0), (0.25, 4), (0.5, 8), (0.75, 12), (1.0, 16)] {
            let mut episodes = clean.clone();
            Ablation::FalseRatio(ratio).apply(&mut episodes, 9).unwrap();
            for (before, after) in clean.iter().zip(&episodes) {
                let changed = before
                    .episode
                    .support
                    .iter()
                    .zip(&after.episode.support)
                    .filter(|(a, b)| a.label != b.label)
                    .count();
                assert_eq!(changed, expected, "ratio {ratio}");
                assert!(
                    after
                        .episode
                        .support
                        .iter()
                        .all(|s| s.label == before.positive
                            || s.label == before.negative
                            || s.label.chars().all(|c| c.is_ascii_lowercase()))
                );
            }
            // queries sharing a support set share the corrupted set too
            assert!(
                episodes[..50]
                    .iter()
                    .all(|e| e.episode.support == episodes[0].episode.support)
            );
        }
        let mut episodes = clean.clone();
        Ablation::Position(16).apply(&mut episodes, 9).unwrap();
        let changed: Vec<usize> = (0..16)
            .filter(|&i| episodes[0].episode.support[i].label != clean[0].episode.support[i].label)
            .collect();
        assert_eq!(changed, [15]);
        assert!(Ablation::Position(17).apply(&mut clean.clone(), 9).is_err());
        assert!(
            Ablation::FalseRatio(1.5)
                .apply(&mut clean.clone(), 9)
                .is_err()
        );
    }
}
