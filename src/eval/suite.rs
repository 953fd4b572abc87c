//! Evaluation suites on disk: an ISEKAI episode file or an ImageNet-100 test file (the format
//! `lcl test-classes` writes), found by name under a data folder or given as a path. Image
//! paths are relative to the suite file's folder unless an image folder is given.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::data::eval_episodes::{
    Ablation, EvalEpisode, TestClass, imagenet_episodes, isekai_episodes,
};
use crate::data::isekai::IsekaiEpisode;
use crate::data::jsonl;

/// The suites known by name, and their files under `--data`.
pub const NAMED_SUITES: [(&str, &str); 3] = [
    ("isekai-10", "isekai-10.jsonl"),
    ("isekai-pair", "isekai-pair.jsonl"),
    ("imagenet-100", "imagenet-100.jsonl"),
];

/// The records of a suite file.
#[derive(Debug, Clone)]
pub enum SuiteRecords {
    /// ISEKAI episodes.
    Isekai(Vec<IsekaiEpisode>),
    /// ImageNet-100 held-out classes.
    ImageNet(Vec<TestClass>),
}

/// A loaded suite.
#[derive(Debug, Clone)]
pub struct Suite {
    /// Short name (the named suite or the file stem).
    pub name: String,
    /// The suite file.
    pub file: PathBuf,
    /// Folder image paths are relative to.
    pub image_root: PathBuf,
    /// Its records.
    pub records: SuiteRecords,
}

impl Suite {
    /// Loads `suite` (a name of [`NAMED_SUITES`], looked up under `data`, or a file path);
    /// images live under `images` or else beside the file.
    pub fn load(suite: &str, data: Option<&Path>, images: Option<&Path>) -> Result<Self> {
        let (name, file) = match NAMED_SUITES.iter().find(|(n, _)| *n == suite) {
            Some((name, file)) => {
                let data = data.with_context(|| {
                    format!("the suite {name} is looked up under --data DIR (as DIR/{file})")
                })?;
                (name.to_string(), data.join(file))
            }
            None => {
                let file = PathBuf::from(suite);
                let stem = file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("suite")
                    .to_string();
                (stem, file)
            }
        };
        if !file.is_file() {
            bail!(
                "{}: suite file not found (named suites: {})",
                file.display(),
                NAMED_SUITES.map(|(n, _)| n).join(", ")
            );
        }
        let first_line = std::fs::read_to_string(&file)
            .with_context(|| format!("{}: cannot read", file.display()))?
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .to_string();
        let records = if first_line.contains("\"class_id\"") {
            SuiteRecords::ImageNet(jsonl::read(&file)?)
        } else {
            SuiteRecords::Isekai(jsonl::read(&file)?)
        };
        let image_root = match images {
            Some(dir) => dir.to_path_buf(),
            None => file.parent().unwrap_or(Path::new(".")).to_path_buf(),
        };
        Ok(Self {
            name,
            file,
            image_root,
            records,
        })
    }

    /// The episodes at `shots` (support images in all), with an ablation applied if given.
    pub fn episodes(
        &self,
        shots: usize,
        ablation: Option<Ablation>,
        seed: u64,
    ) -> Result<Vec<EvalEpisode>> {
        let mut episodes = match &self.records {
            SuiteRecords::Isekai(records) => {
                isekai_episodes(records, &self.file, shots, &self.image_root, seed)?
            }
            SuiteRecords::ImageNet(classes) => {
                imagenet_episodes(classes, shots, &self.image_root, seed)
                    .with_context(|| format!("{}", self.file.display()))?
            }
        };
        if let Some(ablation) = ablation {
            ablation.apply(&mut episodes, seed)?;
        }
        Ok(episodes)
    }
}

/// Fails naming the missing images (up to `limit` of them) of `episodes`, before any model
/// work starts.
pub fn check_images(images: &[PathBuf], limit: usize) -> Result<()> {
    let missing: Vec<&PathBuf> = images.iter().filter(|p| !p.is_file()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = missing
        .iter()
        .take(limit)
        .map(|p| format!("  {}", p.display()))
        .collect();
    let more = missing.len().saturating_sub(limit);
    bail!(
        "{} image(s) of the suite are missing:\n{}{}",
        missing.len(),
        listed.join("\n"),
        if more > 0 {
            format!("\n  ... and {more} more")
        } else {
            String::new()
        }
    )
}
