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
    random_label_up_to(ORIGINAL_LABEL_LETTERS, rng)
}

/// Most letters of the original's invented labels.
pub const ORIGINAL_LABEL_LETTERS: usize = 10;

/// An invented label of 1..=`letters` random lower-case letters, each length equally likely.
pub fn random_label_up_to(letters: usize, rng: &mut Rng) -> String {
    let len = 1 + rng.below(letters);
    (0..len)
        .map(|_| (b'a' + rng.below(26) as u8) as char)
        .collect()
}

/// An invented label none of `taken` has.
fn distinct_label(taken: &[&str], letters: usize, rng: &mut Rng) -> String {
    loop {
        let label = random_label_up_to(letters, rng);
        if !taken.contains(&label.as_str()) {
            return label;
        }
    }
}

/// How an episode labels its hard-negative class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NegativeLabel {
    /// Its real class name, lower-cased (the original).
    #[default]
    Real,
    /// An invented name like the anchor's, so that no answer can come from knowing the
    /// class: every answer must follow the episode's own links.
    Invented,
}

/// How an episode's support images are split between its classes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShotSplit {
    /// As the schedule draws them: every class (nearly) the same count (the original).
    #[default]
    Even,
    /// The schedule's total, each image's class drawn independently and uniformly (every
    /// class keeps at least one). The labels shown so far then say nothing about the next
    /// one's, so a supervised repeated label can only come from its picture, not from
    /// counting which class still owes shots.
    Independent,
}

/// How many support images of each class an episode gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shots {
    /// Images of the anchor class.
    pub anchor: usize,
    /// Images of the hard-negative class.
    pub negative: usize,
}

impl Shots {
    /// The same count for both classes.
    pub fn per_class(k: usize) -> Self {
        Self {
            anchor: k,
            negative: k,
        }
    }

    /// Support images in all.
    pub fn total(&self) -> usize {
        self.anchor + self.negative
    }
}

/// How many support images an episode gets, per strategy.
#[derive(Debug, Clone, PartialEq)]
pub enum ShotSchedule {
    /// [2-way]: always this many per class (8 = the paper's 16 shots).
    Fixed(usize),
    /// [2-way-weight] as the released code draws it: `k` in 1..=max per class with weight
    /// `exp(k / scale)` (scale 2 in the released code, 1 in older code).
    Weighted {
        /// Most shots per class.
        max: usize,
        /// Exponent scale.
        scale: f64,
    },
    /// [2-way-weight] as the paper words it: the total `m` in min..=max with weight `exp(m)`.
    WeightedTotal {
        /// Fewest support images in all.
        min: usize,
        /// Most support images in all.
        max: usize,
    },
    /// [2-way-random] with `k` uniform in 1..=max per class (2, 4, .., 2*max in all).
    Uniform(usize),
    /// [2-way-random] as the paper words it: the total uniform in min..=max.
    UniformTotal {
        /// Fewest support images in all.
        min: usize,
        /// Most support images in all.
        max: usize,
    },
}

impl ShotSchedule {
    /// Shots of one episode. A total is split evenly; an odd one gives the extra image to
    /// either class with p = 0.5.
    pub fn draw(&self, rng: &mut Rng) -> Shots {
        match self {
            ShotSchedule::Fixed(k) => Shots::per_class(*k),
            ShotSchedule::Weighted { max, scale } => {
                let weights: Vec<f64> = (1..=*max).map(|k| (k as f64 / scale).exp()).collect();
                Shots::per_class(1 + rng.weighted(&weights))
            }
            ShotSchedule::Uniform(max) => Shots::per_class(1 + rng.below(*max)),
            ShotSchedule::WeightedTotal { min, max } => {
                // exp(m - max) keeps the weights finite for any range
                let weights: Vec<f64> = (*min..=*max)
                    .map(|m| (m as f64 - *max as f64).exp())
                    .collect();
                split_total(min + rng.weighted(&weights), rng)
            }
            ShotSchedule::UniformTotal { min, max } => {
                split_total(min + rng.below(max - min + 1), rng)
            }
        }
    }

    /// The most images of one class an episode can have.
    pub fn most(&self) -> usize {
        match self {
            ShotSchedule::Fixed(k) | ShotSchedule::Uniform(k) => *k,
            ShotSchedule::Weighted { max, .. } => *max,
            ShotSchedule::WeightedTotal { max, .. } | ShotSchedule::UniformTotal { max, .. } => {
                max.div_ceil(2)
            }
        }
    }

    /// Checks the schedule's numbers.
    pub fn validate(&self) -> Result<()> {
        let ok = match self {
            ShotSchedule::Fixed(k) | ShotSchedule::Uniform(k) => *k >= 1,
            ShotSchedule::Weighted { max, scale } => *max >= 1 && *scale > 0.0,
            ShotSchedule::WeightedTotal { min, max } | ShotSchedule::UniformTotal { min, max } => {
                *min >= 2 && min <= max
            }
        };
        if !ok {
            bail!("invalid shot schedule {self:?}: every class needs at least one shot");
        }
        Ok(())
    }
}

/// Splits `total` support images between the two classes.
fn split_total(total: usize, rng: &mut Rng) -> Shots {
    let half = total / 2;
    if total.is_multiple_of(2) {
        Shots::per_class(half)
    } else if rng.unit() < 0.5 {
        Shots {
            anchor: half + 1,
            negative: half,
        }
    } else {
        Shots {
            anchor: half,
            negative: half + 1,
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
    /// The answer's label (the anchor's invented name or a negative's label).
    pub query_label: String,
    /// The other classes' labels.
    pub other_labels: Vec<String>,
}

/// How an episode is composed beyond its shot counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpisodeRules {
    /// How the hard negatives are labelled.
    pub negative_label: NegativeLabel,
    /// Classes per episode: 2 (the original) or more, each further class another hard
    /// negative from a tier not yet used.
    pub ways: usize,
    /// How the support images are split between the classes.
    pub shot_split: ShotSplit,
    /// Most letters of an invented label (the original: 10).
    pub label_letters: usize,
}

impl Default for EpisodeRules {
    /// The original: 2-way, the negative under its real name.
    fn default() -> Self {
        Self::two_way(NegativeLabel::Real)
    }
}

impl EpisodeRules {
    /// The original's 2-way episodes with `negative_label`.
    pub fn two_way(negative_label: NegativeLabel) -> Self {
        Self {
            negative_label,
            ways: 2,
            shot_split: ShotSplit::Even,
            label_letters: ORIGINAL_LABEL_LETTERS,
        }
    }
}

/// Draws `count` distinct items of `pool` (all of them if it is shorter).
fn draw_distinct<'a, T>(pool: &'a [T], count: usize, rng: &mut Rng) -> Vec<&'a T> {
    let mut order: Vec<usize> = (0..pool.len()).collect();
    rng.shuffle(&mut order);
    order.into_iter().take(count).map(|i| &pool[i]).collect()
}

/// One class of an episode: its label, its support shot count and its images (the shots, then
/// possibly one more for the query).
struct EpisodeClass<'a> {
    label: String,
    shots: usize,
    images: Vec<&'a String>,
}

/// The original's `policy_2way_weight` episode for class `anchor` of `classes`: `shots.anchor`
/// anchor images labelled with one invented name, `shots.negative` images of a hard negative (tier
/// drawn with [`tier_weights`]) labelled with its real name lower-cased (the first is the
/// neighbour entry's image), shuffled; the query from either class with p = 0.5. With
/// [`NegativeLabel::Invented`] the negative is labelled with a second invented name instead.
/// With `rules.ways` above 2, each further negative comes from a tier not drawn yet and is
/// labelled like the first; the query is the anchor's with p = 1 / ways, else a negative's
/// (uniformly). Two-way episodes draw the same random numbers as the original's sampler.
pub fn sample_episode(
    classes: &[ClassEntry],
    anchor: usize,
    shots: Shots,
    rules: EpisodeRules,
    rng: &mut Rng,
) -> Result<TrainEpisode> {
    let entry = &classes[anchor];
    if rules.ways < 2 || entry.neighbors.len() < rules.ways - 1 {
        bail!(
            "class {} has {} neighbours; a {}-way episode needs {} (and ways >= 2)",
            entry.class_id,
            entry.neighbors.len(),
            rules.ways,
            rules.ways.saturating_sub(1)
        );
    }
    let counts = match rules.shot_split {
        ShotSplit::Even => None,
        ShotSplit::Independent => Some(independent_counts(
            shots.anchor + (rules.ways - 1) * shots.negative,
            rules.ways,
            rng,
        )),
    };
    let count = |class: usize| match &counts {
        Some(counts) => counts[class],
        None if class == 0 => shots.anchor,
        None => shots.negative,
    };
    if entry.samples.len() <= count(0) {
        bail!(
            "class {} has {} samples, fewer than {} shots + 1 query",
            entry.class_id,
            entry.samples.len(),
            count(0)
        );
    }
    let mut weights = tier_weights(entry.neighbors.len());
    let mut tier = rng.weighted(&weights);
    let anchor_label = random_label_up_to(rules.label_letters, rng);
    let mut label = negative_name(entry, tier, rules, &[&anchor_label], rng);
    let anchor_images = draw_distinct(&entry.samples, count(0) + 1, rng);
    let mut members = vec![EpisodeClass {
        label: anchor_label,
        shots: count(0),
        images: anchor_images,
    }];
    loop {
        weights[tier] = 0.0;
        let shots = count(members.len());
        let images = negative_images(classes, entry, tier, shots, rng)?;
        members.push(EpisodeClass {
            label,
            shots: shots.min(images.len()),
            images,
        });
        if members.len() == rules.ways {
            break;
        }
        tier = rng.weighted(&weights);
        let taken: Vec<&str> = members.iter().map(|m| m.label.as_str()).collect();
        label = negative_name(entry, tier, rules, &taken, rng);
    }

    let mut support: Vec<(String, String)> = members
        .iter()
        .flat_map(|m| {
            m.images[..m.shots]
                .iter()
                .map(|image| ((*image).clone(), m.label.clone()))
        })
        .collect();
    rng.shuffle(&mut support);

    let mut pick = if rng.unit() < 1.0 / rules.ways as f64 {
        0
    } else if rules.ways > 2 {
        1 + rng.below(rules.ways - 1)
    } else {
        1
    };
    if members[pick].images.len() <= members[pick].shots {
        pick = 0; // no image left for a query: the anchor's, as the original does
    }
    let query = members.remove(pick);
    Ok(TrainEpisode {
        support,
        query_image: query.images[query.shots].clone(),
        query_label: query.label,
        other_labels: members.into_iter().map(|m| m.label).collect(),
    })
}

/// Support images per class for [`ShotSplit::Independent`]: each of `total` images goes to
/// one of `ways` classes uniformly, drawn again until every class has one (`total >= ways`).
fn independent_counts(total: usize, ways: usize, rng: &mut Rng) -> Vec<usize> {
    loop {
        let mut counts = vec![0; ways];
        for _ in 0..total {
            counts[rng.below(ways)] += 1;
        }
        if counts.iter().all(|&count| count > 0) {
            return counts;
        }
    }
}

/// The label of the neighbour at `tier` of `entry`: its real name lower-cased, or an invented
/// name none of `taken` has.
fn negative_name(
    entry: &ClassEntry,
    tier: usize,
    rules: EpisodeRules,
    taken: &[&str],
    rng: &mut Rng,
) -> String {
    match rules.negative_label {
        NegativeLabel::Real => entry.neighbors[tier].name().to_lowercase(),
        NegativeLabel::Invented => distinct_label(taken, rules.label_letters, rng),
    }
}

/// The images of the neighbour at `tier` of `entry`: the neighbour entry's image, then `count`
/// more of that class (as many as it has), drawn at random.
fn negative_images<'a>(
    classes: &'a [ClassEntry],
    entry: &'a ClassEntry,
    tier: usize,
    count: usize,
    rng: &mut Rng,
) -> Result<Vec<&'a String>> {
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
    let pool: Vec<&String> = negative
        .samples
        .iter()
        .filter(|s| *s != neighbor.image())
        .collect();
    let mut images = vec![&neighbor.2];
    images.extend(draw_distinct(&pool, count, rng).into_iter().copied());
    Ok(images)
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
            counts[schedule.draw(&mut rng).anchor - 1] += 1;
        }
        // 7 degrees of freedom: 24.3 is the 0.1% critical value.
        assert!(chi_square(&counts, &probabilities) < 24.3);
        let mut rng = Rng::new(12);
        let mut counts = vec![0; 8];
        for _ in 0..100_000 {
            counts[ShotSchedule::Uniform(8).draw(&mut rng).negative - 1] += 1;
        }
        assert!(chi_square(&counts, &[0.125; 8]) < 24.3);
        assert_eq!(ShotSchedule::Fixed(8).draw(&mut rng), Shots::per_class(8));
    }

    #[test]
    fn total_schedules_fit_the_paper() {
        let mut rng = Rng::new(21);
        // uniform total in 2..=16: 15 outcomes, 14 degrees of freedom (36.1 at 0.1%)
        let mut counts = vec![0; 15];
        let mut extra_to_anchor = 0;
        for _ in 0..60_000 {
            let shots = ShotSchedule::UniformTotal { min: 2, max: 16 }.draw(&mut rng);
            assert!(
                shots.anchor.abs_diff(shots.negative) <= 1 && shots.anchor.min(shots.negative) >= 1
            );
            extra_to_anchor += usize::from(shots.anchor > shots.negative);
            counts[shots.total() - 2] += 1;
        }
        assert!(chi_square(&counts, &[1.0 / 15.0; 15]) < 36.1);
        // 7 odd totals of 15: the extra image goes to the anchor half of the time
        let odd = 60_000.0 * 7.0 / 15.0;
        assert!((extra_to_anchor as f64 - odd / 2.0).abs() < 4.0 * (odd / 4.0f64).sqrt());
        // weighted total: p(m) = e^m / sum e^m
        let weights: Vec<f64> = (2..=16).map(|m| (m as f64).exp()).collect();
        let total: f64 = weights.iter().sum();
        let probabilities: Vec<f64> = weights.iter().map(|w| w / total).collect();
        let mut counts = [0; 15];
        for _ in 0..60_000 {
            counts[ShotSchedule::WeightedTotal { min: 2, max: 16 }
                .draw(&mut rng)
                .total()
                - 2] += 1;
        }
        // merge the rare outcomes m < 10 (expected counts below 5) into one cell
        let rare: usize = counts[..8].iter().sum();
        let rare_p: f64 = probabilities[..8].iter().sum();
        let mut merged_counts = vec![rare];
        merged_counts.extend_from_slice(&counts[8..]);
        let mut merged_p = vec![rare_p];
        merged_p.extend_from_slice(&probabilities[8..]);
        // 7 degrees of freedom: 24.3 is the 0.1% critical value.
        assert!(chi_square(&merged_counts, &merged_p) < 24.3);
        assert_eq!(ShotSchedule::UniformTotal { min: 2, max: 16 }.most(), 8);
        assert!(
            ShotSchedule::UniformTotal { min: 1, max: 16 }
                .validate()
                .is_err()
        );
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
            let episode = sample_episode(
                &classes,
                5,
                Shots::per_class(4),
                EpisodeRules::two_way(NegativeLabel::Real),
                &mut rng,
            )
            .unwrap();
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
        let draw = || {
            sample_episode(
                &classes,
                3,
                Shots::per_class(2),
                EpisodeRules::two_way(NegativeLabel::Real),
                &mut Rng::new(9),
            )
            .unwrap()
        };
        assert_eq!(draw(), draw());
    }

    #[test]
    fn invented_negative_labels_hide_every_real_name() {
        let classes = classes();
        let mut rng = Rng::new(7);
        for _ in 0..500 {
            let episode = sample_episode(
                &classes,
                5,
                Shots::per_class(3),
                EpisodeRules::two_way(NegativeLabel::Invented),
                &mut rng,
            )
            .unwrap();
            let labels: std::collections::BTreeSet<_> =
                episode.support.iter().map(|(_, label)| label).collect();
            assert_eq!(labels.len(), 2, "one name per class: {labels:?}");
            assert!(
                labels
                    .iter()
                    .all(|l| l.chars().all(|c| c.is_ascii_lowercase()))
            );
            assert_eq!(episode.other_labels.len(), 1);
            assert_ne!(episode.query_label, episode.other_labels[0]);
            assert!(labels.contains(&episode.query_label));
            for (image, label) in &episode.support {
                let same_class = image.split('/').next() == episode.query_image.split('/').next();
                assert_eq!(same_class, *label == episode.query_label, "{image} {label}");
            }
        }
    }

    #[test]
    fn many_way_episodes_have_one_name_per_class_and_queries_from_each() {
        let classes = classes();
        let rules = EpisodeRules {
            negative_label: NegativeLabel::Invented,
            ways: 5,
            ..EpisodeRules::two_way(NegativeLabel::Invented)
        };
        let mut rng = Rng::new(3);
        let mut from_anchor = 0;
        for _ in 0..1_000 {
            let episode =
                sample_episode(&classes, 5, Shots::per_class(2), rules, &mut rng).unwrap();
            assert_eq!(episode.support.len(), 10);
            let class_of = |image: &str| image.split('/').next().unwrap().to_string();
            let mut names = std::collections::BTreeMap::new();
            for (image, label) in &episode.support {
                names
                    .entry(class_of(image))
                    .or_insert_with(std::collections::BTreeSet::new)
                    .insert(label.clone());
            }
            assert_eq!(names.len(), 5, "five classes: {names:?}");
            let labels: std::collections::BTreeSet<_> = names.values().flatten().cloned().collect();
            assert_eq!(labels.len(), 5, "one distinct name per class: {names:?}");
            assert!(names.values().all(|n| n.len() == 1));
            assert_eq!(
                names[&class_of(&episode.query_image)],
                [episode.query_label.clone()].into()
            );
            assert_eq!(episode.other_labels.len(), 4);
            from_anchor += usize::from(episode.query_image.starts_with("c5/"));
        }
        // p = 1/5 over 1000 draws: within 4 standard deviations (50.6).
        assert!((from_anchor as f64 - 200.0).abs() < 51.0, "{from_anchor}");
        let too_few = EpisodeRules {
            ways: 38,
            ..EpisodeRules::default()
        };
        let error = sample_episode(&classes, 5, Shots::per_class(1), too_few, &mut rng)
            .unwrap_err()
            .to_string();
        assert!(error.contains("36 neighbours"), "{error}");
    }

    #[test]
    fn independent_split_leaves_nothing_to_count() {
        let classes = classes();
        let rules = EpisodeRules {
            shot_split: ShotSplit::Independent,
            ..EpisodeRules::two_way(NegativeLabel::Invented)
        };
        let mut rng = Rng::new(5);
        let (mut owed, mut last_is_first_name) = (0, 0);
        let mut anchor_counts = std::collections::BTreeSet::new();
        for _ in 0..2_000 {
            let episode =
                sample_episode(&classes, 5, Shots::per_class(3), rules, &mut rng).unwrap();
            assert_eq!(episode.support.len(), 6);
            let first = &episode.support[0].1;
            let firsts = episode.support.iter().filter(|(_, l)| l == first).count();
            assert!((1..6).contains(&firsts), "both classes shown");
            for (image, label) in &episode.support {
                assert_ne!(*image, episode.query_image);
                let same_class = image.split('/').next() == episode.query_image.split('/').next();
                assert_eq!(same_class, *label == episode.query_label, "{image} {label}");
            }
            anchor_counts.insert(firsts);
            // With an even 3 + 3 split, three of the first name among the first five shots
            // would make the sixth the other name every time.
            let early = episode.support[..5]
                .iter()
                .filter(|(_, l)| l == first)
                .count();
            if early == 3 {
                owed += 1;
                last_is_first_name += usize::from(&episode.support[5].1 == first);
            }
        }
        assert_eq!(
            anchor_counts.len(),
            5,
            "every split of 6 occurs: {anchor_counts:?}"
        );
        let share = last_is_first_name as f64 / owed as f64;
        assert!(
            owed > 300 && (0.4..0.6).contains(&share),
            "{last_is_first_name} of {owed}"
        );
    }

    #[test]
    fn one_letter_names_stay_distinct() {
        let classes = classes();
        let rules = EpisodeRules {
            label_letters: 1,
            ways: 4,
            ..EpisodeRules::two_way(NegativeLabel::Invented)
        };
        let mut rng = Rng::new(11);
        for _ in 0..500 {
            let episode =
                sample_episode(&classes, 7, Shots::per_class(2), rules, &mut rng).unwrap();
            let names: std::collections::BTreeSet<_> = episode
                .support
                .iter()
                .map(|(_, label)| label.clone())
                .collect();
            assert_eq!(names.len(), 4, "{names:?}");
            assert!(names.iter().all(|name| name.len() == 1), "{names:?}");
        }
    }
}
