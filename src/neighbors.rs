//! Hard-negative neighbours of every class, as the original computes them with CLIP: a class
//! is its name's text feature and the mean of its images' features; two classes score
//! `0.5*TT + 0.8*(IT + TI) + 0.5*II` (cosine similarities); the other classes, best first,
//! are cut into tiers and one class (with one image) is drawn per tier.
//!
//! Class features are cached on disk one file per class, so an interrupted run resumes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{DType, Device, Tensor, TensorData};
use lcl_model::rng::Rng;
use lcl_model::{ClipConfig, ClipModel};
use serde::{Deserialize, Serialize};

use crate::data::class_file::{ClassEntry, Neighbor};
use crate::data::image_folder::{FolderClass, ImageFolder};
use crate::data::split::ClassSplit;
use crate::identity::{FileIdentity, differences, folder_identity};
use crate::image::{normalize, open_rgb, resize_and_crop};
use crate::tokenizer::ClipTokenizer;

/// How neighbours are computed; the defaults are the original's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NeighborSettings {
    /// Images per class averaged into its image feature (a seeded random subset).
    pub images_per_class: usize,
    /// Number of tiers, i.e. neighbours per class.
    pub tiers: usize,
    /// Sample images written per class.
    pub samples_per_class: usize,
    /// Seed of every random choice.
    pub seed: u64,
    /// Average L2-normalised image features (the method as described); false averages the
    /// raw features as the released script does (the mean is normalised either way).
    pub normalize_each_image: bool,
    /// Images per forward pass.
    pub batch_size: usize,
}

impl Default for NeighborSettings {
    fn default() -> Self {
        Self {
            images_per_class: 100,
            tiers: 36,
            samples_per_class: 36,
            seed: 42,
            normalize_each_image: true,
            batch_size: 32,
        }
    }
}

/// A class as the similarity sees it: unit text and image features.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassFeatures {
    /// Normalised text feature of the class name.
    pub text: Vec<f32>,
    /// Normalised mean image feature.
    pub image: Vec<f32>,
}

/// The CLIP model, its tokenizer and the image side it expects.
pub struct ClipEncoder<'a> {
    /// The model.
    pub model: &'a ClipModel,
    /// Its tokenizer.
    pub tokenizer: &'a ClipTokenizer,
    /// Input resolution of the image tower.
    pub image_size: u32,
    /// Device the model lives on.
    pub device: &'a Device,
}

impl ClipEncoder<'_> {
    /// Features of one class (text of its name, mean of the chosen images).
    pub fn class_features(
        &self,
        root: &Path,
        class: &FolderClass,
        images: &[String],
        settings: &NeighborSettings,
    ) -> Result<ClassFeatures> {
        let ids = self.tokenizer.encode(&class.name)?;
        let text = values(self.model.text_features(&[ids], self.device));
        let width = text.len();
        let mut sum = vec![0f32; width];
        for chunk in images.chunks(settings.batch_size.max(1)) {
            let pixels = preprocess_parallel(root, chunk, self.image_size)?;
            let size = self.image_size as usize;
            let input = Tensor::<4>::from_data(
                TensorData::new(pixels, [chunk.len(), 3, size, size]),
                self.device,
            );
            let features = values(self.model.image_features(input));
            for row in features.chunks(width) {
                let scale = if settings.normalize_each_image {
                    1.0 / norm(row)
                } else {
                    1.0
                };
                for (s, v) in sum.iter_mut().zip(row) {
                    *s += v * scale;
                }
            }
        }
        Ok(ClassFeatures {
            text: unit(&text),
            image: unit(&sum),
        })
    }
}

fn values(tensor: Tensor<2>) -> Vec<f32> {
    tensor
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("float features")
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12)
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = norm(v);
    v.iter().map(|x| x / n).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// CLIP preprocessing (shortest side to `size`, bicubic, centre crop, normalise; no square
/// padding) of `files` under `root`, spread over the machine's cores; in order.
fn preprocess_parallel(root: &Path, files: &[String], size: u32) -> Result<Vec<f32>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = files.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<f32>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(per_thread)
            .map(|chunk| {
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for file in chunk {
                        let rgb = open_rgb(&root.join(file))?;
                        out.extend(normalize(&resize_and_crop(&rgb, size)));
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("preprocessing thread"))
            .collect()
    });
    let mut pixels = Vec::new();
    for part in parts {
        pixels.extend(part?);
    }
    Ok(pixels)
}

/// The score matrix `0.5*TT + 0.8*(IT + TI) + 0.5*II`: `scores[a][b]`.
pub fn score_matrix(classes: &[ClassFeatures]) -> Vec<Vec<f32>> {
    classes
        .iter()
        .map(|a| {
            classes
                .iter()
                .map(|b| {
                    0.5 * dot(&a.text, &b.text)
                        + 0.8 * (dot(&a.image, &b.text) + dot(&a.text, &b.image))
                        + 0.5 * dot(&a.image, &b.image)
                })
                .collect()
        })
        .collect()
}

/// The images a class's feature averages: all of them, or a seeded random subset.
pub fn feature_images(
    class: &FolderClass,
    index: usize,
    settings: &NeighborSettings,
) -> Vec<String> {
    let mut images = class.images.clone();
    if images.len() > settings.images_per_class {
        let mut rng = Rng::derive(settings.seed, &[0, index as u64]);
        rng.shuffle(&mut images);
        images.truncate(settings.images_per_class);
        images.sort();
    }
    images
}

/// The per-class file: for each class its sample images and one neighbour per tier of the
/// other classes ranked by score (tier size `ceil((classes - 1) / tiers)`).
pub fn class_entries(
    classes: &[FolderClass],
    scores: &[Vec<f32>],
    settings: &NeighborSettings,
) -> Vec<ClassEntry> {
    classes
        .iter()
        .enumerate()
        .map(|(a, class)| {
            let mut rng = Rng::derive(settings.seed, &[1, a as u64]);
            let mut others: Vec<usize> = (0..classes.len()).filter(|&b| b != a).collect();
            others.sort_by(|&x, &y| scores[a][y].total_cmp(&scores[a][x]).then(x.cmp(&y)));
            let tier_size = others.len().div_ceil(settings.tiers.max(1)).max(1);
            let neighbors = others
                .chunks(tier_size)
                .map(|tier| {
                    let b = tier[rng.below(tier.len())];
                    let images = &classes[b].images;
                    Neighbor(
                        classes[b].id.clone(),
                        classes[b].name.clone(),
                        images[rng.below(images.len())].clone(),
                    )
                })
                .collect();
            let mut samples = class.images.clone();
            rng.shuffle(&mut samples);
            samples.truncate(settings.samples_per_class);
            ClassEntry {
                class_id: class.id.clone(),
                class_name: class.name.clone(),
                samples,
                neighbors,
            }
        })
        .collect()
}

/// A whole neighbour computation, as `lcl neighbors` runs it.
#[derive(Debug, Clone)]
pub struct NeighborJob {
    /// Full CLIP checkpoint folder (both towers, `tokenizer.json`).
    pub clip: PathBuf,
    /// Image-folder data root.
    pub data: PathBuf,
    /// Names file (default: found in the root or its parent).
    pub names: Option<PathBuf>,
    /// Which classes are held out (they get no entry and are nobody's neighbour).
    pub split: Option<ClassSplit>,
    /// The per-class file to write.
    pub out: PathBuf,
    /// Feature cache folder.
    pub cache: PathBuf,
    /// The computation's settings.
    pub settings: NeighborSettings,
}

/// Runs `job` on `device`: scans the data, computes (or reads cached) class features with
/// a progress bar, ranks, draws neighbours and writes the per-class file. Returns the
/// number of classes written.
pub fn run(job: &NeighborJob, device: &Device) -> Result<usize> {
    let settings = &job.settings;
    if settings.tiers == 0 || settings.images_per_class == 0 || settings.samples_per_class == 0 {
        bail!("tiers, images per class and samples per class must be at least 1");
    }
    let folder = ImageFolder::scan(&job.data, job.names.as_deref())?;
    let classes = match &job.split {
        Some(split) => split.apply(&folder.classes)?.0,
        None => folder.classes.clone(),
    };
    if classes.len() < 2 {
        bail!(
            "{}: neighbours need at least two classes",
            job.data.display()
        );
    }
    let config = ClipConfig::from_file(&job.clip.join("config.json"))?;
    let model = ClipModel::from_pretrained(&job.clip, device, DType::F32)?;
    let tokenizer = ClipTokenizer::from_dir(&job.clip, config.text_config.max_position_embeddings)?;
    let encoder = ClipEncoder {
        model: &model,
        tokenizer: &tokenizer,
        image_size: config.vision_config.image_size as u32,
        device,
    };
    let cache = FeatureCache::open(&job.cache, &job.clip, &job.data, settings)?;
    let bar = crate::progress::bar(
        classes.len() as u64,
        "class features [{bar:40}] {pos}/{len} classes {per_sec} ETA {eta} {msg}",
    );
    let mut features = Vec::with_capacity(classes.len());
    let mut cached = 0;
    for (index, class) in classes.iter().enumerate() {
        let images = feature_images(class, index, settings);
        let fingerprint = class_fingerprint(&folder.root, class, &images);
        let class_features = match cache.get(class, fingerprint, config.projection_dim) {
            Some(found) => {
                cached += 1;
                found
            }
            None => {
                let computed = encoder
                    .class_features(&folder.root, class, &images, settings)
                    .with_context(|| format!("class {} ({})", class.id, class.name))?;
                cache.put(class, fingerprint, &computed)?;
                computed
            }
        };
        features.push(class_features);
        bar.set_message(format!("({cached} from cache)"));
        bar.inc(1);
    }
    bar.finish_and_clear();
    let entries = class_entries(&classes, &score_matrix(&features), settings);
    crate::data::class_file::write(&job.out, &entries)?;
    Ok(entries.len())
}

/// What a class's features are computed from besides the model: its name and the images
/// drawn for it (paths and sizes; the draw depends on the class's place in the list). A
/// cached entry of another fingerprint is computed again.
pub fn class_fingerprint(root: &Path, class: &FolderClass, images: &[String]) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(class.name.as_bytes());
    for image in images {
        let size = std::fs::metadata(root.join(image)).map_or(u64::MAX, |m| m.len());
        hasher.update(b"\n");
        hasher.update(image.as_bytes());
        hasher.update(&size.to_le_bytes());
    }
    hasher.digest()
}

/// On-disk class features of one run, keyed by what they depend on: the CLIP folder's
/// content and the settings for the whole cache, [`class_fingerprint`] for each class.
pub struct FeatureCache {
    dir: PathBuf,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct CacheKey {
    clip: String,
    /// The CLIP folder's files (a key without them, from an older lcl, never matches).
    #[serde(default)]
    clip_files: Vec<FileIdentity>,
    data: String,
    images_per_class: usize,
    seed: u64,
    normalize_each_image: bool,
}

impl FeatureCache {
    /// Opens (or creates) `dir` for features of `clip` on `data`; a cache made with other
    /// settings is refused rather than mixed in.
    pub fn open(dir: &Path, clip: &Path, data: &Path, settings: &NeighborSettings) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the feature cache", dir.display()))?;
        let key = CacheKey {
            clip: canonical(clip),
            clip_files: folder_identity(clip)?,
            data: canonical(data),
            images_per_class: settings.images_per_class,
            seed: settings.seed,
            normalize_each_image: settings.normalize_each_image,
        };
        let key_path = dir.join("cache-key.json");
        if key_path.exists() {
            let text = std::fs::read_to_string(&key_path)
                .with_context(|| format!("{}: cannot read", key_path.display()))?;
            let stored: CacheKey = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a feature-cache key", key_path.display()))?;
            if stored != key {
                let found = differences(
                    &serde_json::to_value(&stored)?,
                    &serde_json::to_value(&key)?,
                    5,
                );
                bail!(
                    "{}: the cached features were computed with another CLIP or other \
                     settings ({}); use another --cache folder or delete this one",
                    dir.display(),
                    found.join("; ")
                );
            }
        } else {
            write_atomically(&key_path, serde_json::to_string_pretty(&key)?.as_bytes())?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, class: &FolderClass) -> PathBuf {
        self.dir.join(format!("{}.f32", class.id))
    }

    /// The cached features of `class`, if complete and of `fingerprint`.
    pub fn get(
        &self,
        class: &FolderClass,
        fingerprint: u64,
        width: usize,
    ) -> Option<ClassFeatures> {
        let bytes = std::fs::read(self.path(class)).ok()?;
        if bytes.len() != 8 + 2 * width * 4 || bytes[..8] != fingerprint.to_le_bytes() {
            return None;
        }
        let floats: Vec<f32> = bytes[8..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Some(ClassFeatures {
            text: floats[..width].to_vec(),
            image: floats[width..].to_vec(),
        })
    }

    /// Stores the features of `class` with its fingerprint (atomically).
    pub fn put(
        &self,
        class: &FolderClass,
        fingerprint: u64,
        features: &ClassFeatures,
    ) -> Result<()> {
        let bytes: Vec<u8> = fingerprint
            .to_le_bytes()
            .into_iter()
            .chain(
                features
                    .text
                    .iter()
                    .chain(&features.image)
                    .flat_map(|v| v.to_le_bytes()),
            )
            .collect();
        write_atomically(&self.path(class), &bytes)
    }
}

fn canonical(path: &Path) -> String {
    path.canonicalize()
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes)
        .with_context(|| format!("{}: cannot write", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("{}: cannot write", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(id: &str, images: usize) -> FolderClass {
        FolderClass {
            id: id.into(),
            name: format!("name {id}"),
            images: (0..images).map(|i| format!("{id}/{i}.png")).collect(),
        }
    }

    #[test]
    fn tiers_follow_the_ranking_and_every_class_gets_one_neighbour_per_tier() {
        let classes: Vec<FolderClass> = (0..7).map(|i| class(&format!("c{i}"), 5)).collect();
        // score falls with distance between indices
        let scores: Vec<Vec<f32>> = (0..7)
            .map(|a: i32| (0..7).map(|b: i32| -((a - b).abs() as f32)).collect())
            .collect();
        let settings = NeighborSettings {
            tiers: 3,
            samples_per_class: 4,
            ..NeighborSettings::default()
        };
        let entries = class_entries(&classes, &scores, &settings);
        // class c0: others ranked c1..c6, tiers {c1,c2} {c3,c4} {c5,c6}
        let first = &entries[0];
        assert_eq!(first.neighbors.len(), 3);
        for (tier, neighbor) in first.neighbors.iter().enumerate() {
            let index: usize = neighbor.id()[1..].parse().unwrap();
            assert!(
                (2 * tier + 1..=2 * tier + 2).contains(&index),
                "{neighbor:?}"
            );
            assert!(neighbor.image().starts_with(neighbor.id()));
        }
        assert!(entries.iter().all(|e| e.samples.len() == 4));
        assert!(
            entries
                .iter()
                .all(|e| e.neighbors.iter().all(|n| n.id() != e.class_id))
        );
        assert_eq!(entries, class_entries(&classes, &scores, &settings));
    }

    #[test]
    fn the_score_weighs_text_and_image_similarities_as_the_original() {
        let a = ClassFeatures {
            text: vec![1.0, 0.0],
            image: vec![0.0, 1.0],
        };
        let b = ClassFeatures {
            text: vec![0.6, 0.8],
            image: vec![0.8, 0.6],
        };
        let scores = score_matrix(&[a, b]);
        // TT 0.6, IT = I_a.T_b 0.8, TI = T_a.I_b 0.8, II 0.6
        assert!((scores[0][1] - (0.5 * 0.6 + 0.8 * 1.6 + 0.5 * 0.6)).abs() < 1e-6);
        assert!(
            (scores[0][0] - 1.0).abs() < 1e-6,
            "TT 1 + II 1, IT = TI = 0"
        );
    }
}
