//! `--score prototype`: a vision-only few-shot baseline that never runs the language model.
//! Every image becomes the mean of its patch features at the layer the projector reads,
//! L2-normalised; each support label's prototype is the mean of its shots' features, and the
//! query takes the label whose prototype is most cosine-similar (a prototypical network's
//! rule). It measures how well the vision tower alone tells the two classes apart at k shots:
//! what an LCL model that links each label to its pictures can at best reach.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use lcl_model::LclModel;

use crate::data::eval_episodes::{EvalEpisode, episode_images};
use crate::eval::answerer::Answerer;
use crate::image::pixel_batch;

/// Pooled, unit-length vision features of images, computed once per run.
#[derive(Default)]
pub struct PooledFeatures {
    features: HashMap<PathBuf, Vec<f32>>,
}

impl PooledFeatures {
    /// Computes (in one batch) the features of those of `images` not seen yet.
    fn ensure(
        &mut self,
        model: &LclModel,
        images: &[PathBuf],
        image_size: usize,
        device: &Device,
    ) -> Result<()> {
        let mut missing: Vec<&PathBuf> = images
            .iter()
            .filter(|p| !self.features.contains_key(*p))
            .collect();
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let pixels = pixel_batch(&missing, image_size, device)?;
        let states = model
            .vision
            .hidden_state(pixels.cast(model.dtype()), model.vision_layer);
        let [n, tokens, width] = states.dims();
        let pooled = states
            .slice([0..n, 1..tokens, 0..width])
            .mean_dim(1)
            .reshape([n, width]);
        let values = pooled.into_data().try_into_vec_as::<f32>()?;
        for (image, row) in missing.into_iter().zip(values.chunks(width)) {
            self.features.insert(image.clone(), unit(row));
        }
        Ok(())
    }
}

/// The verdict of the prototype rule on one episode.
#[derive(Debug, Clone, PartialEq)]
pub struct PrototypeChoice {
    /// The support label chosen for the query (none without support shots).
    pub label: Option<String>,
    /// Its prototype's cosine similarity to the query.
    pub similarity: f64,
}

impl Answerer<'_> {
    /// The prototype rule's label for each episode's query.
    pub fn prototype_choices(
        &self,
        episodes: &[EvalEpisode],
        pooled: &mut PooledFeatures,
    ) -> Result<Vec<PrototypeChoice>> {
        let images = episode_images(episodes);
        pooled.ensure(self.model, &images, self.image_size, self.device)?;
        let feature = |p: &PathBuf| pooled.features[p].as_slice();
        Ok(episodes
            .iter()
            .map(|e| {
                let support: Vec<(&str, &[f32])> = e
                    .episode
                    .support
                    .iter()
                    .map(|s| (s.label.as_str(), feature(&s.image)))
                    .collect();
                let (label, similarity) = nearest_prototype(&support, feature(&e.episode.query))
                    .map_or((None, 0.0), |(l, s)| (Some(l.to_string()), s));
                PrototypeChoice { label, similarity }
            })
            .collect())
    }
}

/// The label whose prototype (mean of its shots' features) is most cosine-similar to
/// `query`, with that similarity; the first such label on a tie; `None` without shots.
pub fn nearest_prototype<'a>(
    support: &[(&'a str, &[f32])],
    query: &[f32],
) -> Option<(&'a str, f64)> {
    let mut labels: Vec<&str> = Vec::new();
    let mut sums: Vec<Vec<f64>> = Vec::new();
    for &(label, feature) in support {
        let index = labels.iter().position(|l| *l == label).unwrap_or_else(|| {
            labels.push(label);
            sums.push(vec![0.0; feature.len()]);
            labels.len() - 1
        });
        for (sum, &x) in sums[index].iter_mut().zip(feature) {
            *sum += f64::from(x);
        }
    }
    let query_norm = query
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
        .max(1e-12);
    let mut best: Option<(&str, f64)> = None;
    for (label, sum) in labels.into_iter().zip(sums) {
        let norm = sum.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        let cosine = sum
            .iter()
            .zip(query)
            .map(|(s, &q)| s * f64::from(q))
            .sum::<f64>()
            / (norm * query_norm);
        if best.is_none_or(|(_, b)| cosine > b) {
            best = Some((label, cosine));
        }
    }
    best
}

/// `row` scaled to unit length (a zero row stays zero).
fn unit(row: &[f32]) -> Vec<f32> {
    let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        return row.to_vec();
    }
    row.iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_takes_the_label_of_the_closest_class_mean() {
        let support = [
            ("a", &[1.0f32, 0.0][..]),
            ("b", &[0.0, 1.0][..]),
            ("a", &[0.6, 0.8][..]),
        ];
        // a's mean (0.8, 0.4) is closer to (1, 1) than b's (0, 1)
        let (label, similarity) = nearest_prototype(&support, &[1.0, 1.0]).unwrap();
        assert_eq!(label, "a");
        let expected = (0.8 + 0.4) / (0.8f64.hypot(0.4) * 2f64.sqrt());
        assert!(
            (similarity - expected).abs() < 1e-6,
            "{similarity} vs {expected}"
        );
        assert_eq!(nearest_prototype(&support, &[-1.0, 1.0]).unwrap().0, "b");
        assert_eq!(nearest_prototype(&[], &[1.0, 0.0]), None);
    }

    #[test]
    fn unit_rows_have_length_one() {
        let row = unit(&[3.0, 4.0]);
        assert_eq!(row, vec![0.6, 0.8]);
        assert_eq!(unit(&[0.0, 0.0]), vec![0.0, 0.0]);
    }
}
