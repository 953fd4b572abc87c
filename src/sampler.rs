//! The random choices of LCL episodes, each seeded and reproducible: hard-negative tiers,
//! invented anchor labels, shot counts of every strategy, and whole training episodes from
//! the per-class file.

use anyhow::{Context, Result, bail};
use lcl_model::rng::Rng;

use crate::data::class_file::ClassEntry;

/// Probability of each neighbour tier (tier 1 = most similar first): `(n + 1 - j) / sum`.
/// With the original's 36 tiers that is `(37 - j) / 666`; the paper's variant uses 100.
pub fn tier_weights(tiers: usize) -> Vec<f64> {
    let total = (tiers * (tiers + 1) / 2) as f64;
    (1..=tiers)
        .map(|j| (tiers + 1 - j) as f64 / total)
        .collect()
}

/// An invented label: one random lowercase string of 1-10 letters.
pub fn random_label(rng: &mut Rng) -> String {
    let len = 1 + rng.below(10);
    (0..len)
        .map(|_| (b'a' + rng.below(26) as u8) as char)
        .collect()
}

/// How many support images per class an episode gets.
#[derive(Debug, Clone, PartialEq)]
pub enum ShotSchedule {
    /// [2-way]: always this many per class (8 = the paper's 16 shots).
    Fixed(usize),
    /// [2-way-weight], the code's variant: `k` in 1..=max with weight `exp(k / scale)`
    /// (scale 2 in the released code, 1 in older code).
    Weighted {
        /// Most shots per class.
        max: usize,
        /// Exponent scale.
        scale: f64,
    },
    /// [2-way-random]: `k` uniform in 1..=max per class (2..=2*max shots in all).
    Uniform(usize),
}

impl ShotSchedule {
    /// Shots per class for one episode.
    pub fn draw(&self, rng: &mut Rng) -> usize {
        match self {
            ShotSchedule::Fixed(k) => *k,
            ShotSchedule::Weighted { max, scale } => {
                let weights: Vec<f64> = (1..=*max).map(|k| (k as f64 / scale).exp()).collect();
                1 + rng.weighted(&weights)
            }
            ShotSchedule::Uniform(max) => 1 + rng.below(*max),
        }
    }
}

/// A sampled training episode, before rendering: support shots in prompt order, then the
/// query and its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainEpisode {
    /// `(image, label)` in prompt order.
    pub support: Vec<(String, String)>,
    /// The query image.
    pub query_image: String,
    /// The answer's label (the anchor's invented name or the negative's real name).
    pub query_label: String,
    /// The other class's label.
    pub other_label: String,
}

/// Draws `count` distinct items of `pool` (all of them if it is shorter).
fn draw_distinct<'a>(pool: &'a [String], count: usize, rng: &mut Rng) -> Vec<&'a String> {
    let mut order: Vec<usize> = (0..pool.len()).collect();
    rng.shuffle(&mut order);
    order.into_iter().take(count).map(|i| &pool[i]).collect()
}

/// The original's `policy_2way_weight` episode for class `anchor` of `classes`: `shots`
/// anchor images labelled with one invented name, `shots` images of a hard negative (tier
/// drawn with [`tier_weights`]) labelled with its real name lower-cased (the first is the
/// neighbour entry's image), shuffled; the query from either class with p = 0.5.
pub fn sample_episode(
    classes: &[ClassEntry],
    anchor: usize,
    shots: usize,
    rng: &mut Rng,
) -> Result<TrainEpisode> {
    let entry = &classes[anchor];
    if entry.samples.len() <= shots {
        bail!(
            "class {} has {} samples, fewer than {} shots + 1 query",
            entry.class_id,
            entry.samples.len(),
            shots
        );
    }
    let tier = rng.weighted(&tier_weights(entry.neighbors.len()));
    let neighbor = &entry.neighbors[tier];
    let negative = classes
        .iter()
        .find(|c| c.class_id == neighbor.id())
        .with_context(|| {
            format!(
                "neighbour {} of class {} is not in the class file",
                neighbor.id(),
                entry.class_id
            )
        })?;
    let anchor_label = random_label(rng);
    let negative_label = neighbor.name().to_lowercase();

    let anchor_images = draw_distinct(&entry.samples, shots + 1, rng);
    let negative_pool: Vec<String> = negative
        .samples
        .iter()
        .filter(|s| *s != neighbor.image())
        .cloned()
        .collect();
    let mut negative_images: Vec<&String> = vec![&neighbor.2];
    negative_images.extend(draw_distinct(&negative_pool, shots, rng));

    let mut support: Vec<(String, String)> = anchor_images[..shots]
        .iter()
        .map(|image| ((*image).clone(), anchor_label.clone()))
        .chain(
            negative_images[..shots]
                .iter()
                .map(|image| ((*image).clone(), negative_label.clone())),
        )
        .collect();
    rng.shuffle(&mut support);

    let query_from_anchor = rng.unit() < 0.5;
    let (query_image, query_label, other_label) =
        if query_from_anchor || negative_images.len() <= shots {
            (anchor_images[shots].clone(), anchor_label, negative_label)
        } else {
            (negative_images[shots].clone(), negative_label, anchor_label)
        };
    Ok(TrainEpisode {
        support,
        query_image,
        query_label,
        other_label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::class_file::Neighbor;

    /// Pearson's chi-square statistic of observed counts against expected probabilities.
    fn chi_square(counts: &[usize], probabilities: &[f64]) -> f64 {
        let n: usize = counts.iter().sum();
        counts
            .iter()
            .zip(probabilities)
            .map(|(&c, &p)| {
                let expected = p * n as f64;
                (c as f64 - expected).powi(2) / expected
            })
            .sum()
    }

    #[test]
    fn tier_weights_follow_the_original() {
        let weights = tier_weights(36);
        assert!((weights[0] - 36.0 / 666.0).abs() < 1e-12);
        assert!((weights[35] - 1.0 / 666.0).abs() < 1e-12);
        assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let paper = tier_weights(100);
        assert!((paper[0] - 100.0 / 5050.0).abs() < 1e-12);
    }

    #[test]
    fn tier_draws_fit_their_distribution() {
        let weights = tier_weights(36);
        let mut rng = Rng::new(7);
        let mut counts = vec![0; 36];
        for _ in 0..200_000 {
            counts[rng.weighted(&weights)] += 1;
        }
        // 35 degrees of freedom: 66.6 is the 0.1% critical value.
        let chi2 = chi_square(&counts, &weights);
        assert!(chi2 < 66.6, "chi-square {chi2}");
        // and a wrong distribution is rejected by the same test
        let uniform = vec![1.0 / 36.0; 36];
        assert!(chi_square(&counts, &uniform) > 66.6);
    }

    #[test]
    fn weighted_shots_fit_exp_k_over_scale() {
        let schedule = ShotSchedule::Weighted { max: 8, scale: 2.0 };
        let weights: Vec<f64> = (1..=8).map(|k| (k as f64 / 2.0).exp()).collect();
        let total: f64 = weights.iter().sum();
        let probabilities: Vec<f64> = weights.iter().map(|w| w / total).collect();
        let mut rng = Rng::new(11);
        let mut counts = vec![0; 8];
        for _ in 0..100_000 {
            counts[schedule.draw(&mut rng) - 1] += 1;
        }
        // 7 degrees of freedom: 24.3 is the 0.1% critical value.
        assert!(chi_square(&counts, &probabilities) < 24.3);
        let mut rng = Rng::new(12);
        let mut counts = vec![0; 8];
        for _ in 0..100_000 {
            counts[ShotSchedule::Uniform(8).draw(&mut rng) - 1] += 1;
        }
        assert!(chi_square(&counts, &[0.125; 8]) < 24.3);
        assert_eq!(ShotSchedule::Fixed(8).draw(&mut rng), 8);
    }

    #[test]
    fn random_labels_are_lowercase_with_uniform_length() {
        let mut rng = Rng::new(3);
        let mut lengths = vec![0; 10];
        for _ in 0..50_000 {
            let label = random_label(&mut rng);
            assert!(label.chars().all(|c| c.is_ascii_lowercase()), "{label}");
            lengths[label.len() - 1] += 1;
        }
        // 9 degrees of freedom: 27.9 is the 0.1% critical value.
        assert!(chi_square(&lengths, &[0.1; 10]) < 27.9);
    }

    fn classes() -> Vec<ClassEntry> {
        (0..40)
            .map(|c| ClassEntry {
                class_id: c.to_string(),
                class_name: format!("Class {c}"),
                samples: (0..36).map(|i| format!("c{c}/img{i}.jpg")).collect(),
                neighbors: (0..36)
                    .map(|j| {
                        let n = (c + 1 + j) % 40;
                        Neighbor(
                            n.to_string(),
                            format!("Class {n}"),
                            format!("c{n}/img0.jpg"),
                        )
                    })
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn episodes_follow_the_2way_policy_and_reproduce() {
        let classes = classes();
        let mut rng = Rng::new(42);
        let mut from_anchor = 0;
        for _ in 0..2_000 {
            let episode = sample_episode(&classes, 5, 4, &mut rng).unwrap();
            assert_eq!(episode.support.len(), 8);
            let anchor_shots: Vec<_> = episode
                .support
                .iter()
                .filter(|(img, _)| img.starts_with("c5/"))
                .collect();
            assert_eq!(anchor_shots.len(), 4);
            let anchor_label = &anchor_shots[0].1;
            assert!(anchor_shots.iter().all(|(_, label)| label == anchor_label));
            let negative: Vec<_> = episode
                .support
                .iter()
                .filter(|(img, _)| !img.starts_with("c5/"))
                .collect();
            assert!(
                negative
                    .iter()
                    .all(|(_, label)| label.starts_with("class ")),
                "real name, lower-cased"
            );
            let images: std::collections::BTreeSet<_> =
                episode.support.iter().map(|(i, _)| i).collect();
            assert_eq!(images.len(), 8, "distinct support images");
            assert!(
                !images.contains(&episode.query_image),
                "the query is not a support image"
            );
            if &episode.query_label == anchor_label {
                from_anchor += 1;
                assert!(episode.query_image.starts_with("c5/"));
            }
        }
        // p = 0.5 over 2000 draws: within 4 standard deviations (22.4).
        assert!((from_anchor as f64 - 1000.0).abs() < 90.0, "{from_anchor}");
        let a = sample_episode(&classes, 3, 2, &mut Rng::new(9)).unwrap();
        let b = sample_episode(&classes, 3, 2, &mut Rng::new(9)).unwrap();
        assert_eq!(a, b);
    }
}
