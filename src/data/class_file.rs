//! The original's per-class file (`train900_pairs.jsonl`): for each training class its sample
//! images and its hard-negative neighbours, one tier each, most similar first.

use std::path::Path;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// A neighbour class: id, name, and the image chosen for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neighbor(pub String, pub String, pub String);

/// One line of the per-class file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassEntry {
    /// Class id (a string in the original, e.g. `"1"`).
    pub class_id: String,
    /// Human-readable class name.
    pub class_name: String,
    /// Sample images of the class, relative to the data root.
    pub samples: Vec<String>,
    /// Neighbour classes by tier, most similar first: `[id, name, image]`.
    pub neighbors: Vec<Neighbor>,
}

impl Neighbor {
    /// Class id.
    pub fn id(&self) -> &str {
        &self.0
    }
    /// Class name.
    pub fn name(&self) -> &str {
        &self.1
    }
    /// Image of the class.
    pub fn image(&self) -> &str {
        &self.2
    }
}

/// Reads a per-class file; every class needs samples and neighbours.
pub fn read(path: &Path) -> Result<Vec<ClassEntry>> {
    let entries: Vec<ClassEntry> = super::jsonl::read(path)?;
    for (index, entry) in entries.iter().enumerate() {
        if entry.samples.is_empty() || entry.neighbors.is_empty() {
            bail!(
                "{}: class {} ({}) on record {} has no samples or no neighbours",
                path.display(),
                entry.class_id,
                entry.class_name,
                index + 1
            );
        }
    }
    Ok(entries)
}

/// Writes a per-class file.
pub fn write(path: &Path, entries: &[ClassEntry]) -> Result<()> {
    super::jsonl::write(path, entries)
}
