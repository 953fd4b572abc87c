//! ISEKAI episode files: JSON lines, each a query image with positive and negative support
//! images and the two class names (field names as the original spells them).

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

/// One line of an ISEKAI episode file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsekaiEpisode {
    /// The query image.
    pub image_name: String,
    /// Support images of the positive (query's) class; the first `shot` are used.
    pub positive_list: Vec<String>,
    /// Support images of the negative class.
    pub negative_list: Vec<String>,
    /// Name of the positive class (sic).
    pub positive_promt: String,
    /// Name of the negative class (sic).
    pub negative_promt: String,
    /// The query's class.
    pub label_name: String,
}

impl IsekaiEpisode {
    /// Every image the episode refers to, resolved under `root`.
    pub fn images(&self, root: &Path) -> Vec<PathBuf> {
        std::iter::once(&self.image_name)
            .chain(&self.positive_list)
            .chain(&self.negative_list)
            .map(|name| root.join(name))
            .collect()
    }
}

/// Reads an ISEKAI episode file.
pub fn read(path: &Path) -> Result<Vec<IsekaiEpisode>> {
    super::jsonl::read(path)
}
