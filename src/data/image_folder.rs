//! Image-folder classification data (the ImageNet layout `ROOT/<class>/*.JPEG`) and its
//! class names: `LOC_synset_mapping.txt` (`wnid name, synonym, ...`), `map_clsloc.txt`
//! (`wnid index name_with_underscores`) or a plain `id<TAB>name` file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// File extensions read as images (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 9] = [
    "jpeg", "jpg", "png", "webp", "bmp", "gif", "tif", "tiff", "jfif",
];

/// Names files looked for in the data root and its parent, in this order.
pub const NAMES_FILES: [&str; 3] = ["LOC_synset_mapping.txt", "map_clsloc.txt", "names.tsv"];

/// One class folder.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderClass {
    /// The folder name (a WordNet id for ImageNet).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Image paths relative to the root (`<class>/<file>`), sorted.
    pub images: Vec<String>,
}

/// A scanned image folder.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFolder {
    /// The data root.
    pub root: PathBuf,
    /// Classes sorted by folder name.
    pub classes: Vec<FolderClass>,
    /// The names file used, if any.
    pub names_file: Option<PathBuf>,
}

impl ImageFolder {
    /// Scans `root`. Class names come from `names` when given, else from a names file found
    /// in `root` or its parent, else the folder names. A class folder without images, or
    /// without an entry in the names file, is an error.
    pub fn scan(root: &Path, names: Option<&Path>) -> Result<Self> {
        let entries = std::fs::read_dir(root)
            .with_context(|| format!("{}: cannot read the data folder", root.display()))?;
        let mut folders = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("{}: cannot list", root.display()))?;
            if entry.file_type()?.is_dir() {
                let name = entry.file_name().into_string().map_err(|name| {
                    anyhow::anyhow!("{}: folder name {name:?} is not UTF-8", root.display())
                })?;
                folders.push(name);
            }
        }
        folders.sort();
        if folders.is_empty() {
            bail!(
                "{}: no class folders (expected ROOT/<class>/<image files>)",
                root.display()
            );
        }
        let names_file = match names {
            Some(path) => Some(path.to_path_buf()),
            None => find_names_file(root),
        };
        let names = match &names_file {
            Some(path) => Some(read_names(path)?),
            None => None,
        };
        let mut classes = Vec::with_capacity(folders.len());
        for id in folders {
            let name = match &names {
                Some(names) => names.get(&id).cloned().with_context(|| {
                    format!(
                        "{}: no name for class folder {id}",
                        names_file
                            .as_ref()
                            .expect("names come from a file")
                            .display()
                    )
                })?,
                None => id.clone(),
            };
            let images = list_images(root, &id)?;
            classes.push(FolderClass { id, name, images });
        }
        Ok(Self {
            root: root.to_path_buf(),
            classes,
            names_file,
        })
    }
}

/// The first names file in `root`, then in its parent.
fn find_names_file(root: &Path) -> Option<PathBuf> {
    let parent = root.parent();
    [Some(root), parent]
        .into_iter()
        .flatten()
        .flat_map(|dir| NAMES_FILES.iter().map(move |file| dir.join(file)))
        .find(|path| path.is_file())
}

/// The sorted image files of class folder `id`, relative to `root`.
fn list_images(root: &Path, id: &str) -> Result<Vec<String>> {
    let dir = root.join(id);
    let mut images = Vec::new();
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("{}: cannot list", dir.display()))?
    {
        let path = entry
            .with_context(|| format!("{}: cannot list", dir.display()))?
            .path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if is_image && path.is_file() {
            let file = path
                .file_name()
                .and_then(|f| f.to_str())
                .with_context(|| format!("{}: file name is not UTF-8", path.display()))?;
            images.push(format!("{id}/{file}"));
        }
    }
    images.sort();
    if images.is_empty() {
        bail!(
            "{}: class folder has no image files ({})",
            dir.display(),
            IMAGE_EXTENSIONS.join(", ")
        );
    }
    Ok(images)
}

/// Reads a names file into `id -> name`. Each line is `id<TAB>name`, `wnid index name`
/// (`map_clsloc.txt`; underscores become spaces) or `wnid name, synonym, ...`
/// (`LOC_synset_mapping.txt`; the first name is kept). Blank lines and `#` comments are
/// skipped; a line with no name is an error naming the line.
pub fn read_names(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the names file", path.display()))?;
    let mut names = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, name) = parse_names_line(line).with_context(|| {
            format!(
                "{}:{}: expected `id<TAB>name`, `wnid index name` or `wnid name, ...`",
                path.display(),
                index + 1
            )
        })?;
        if names.insert(id.clone(), name).is_some() {
            bail!("{}:{}: class {id} named twice", path.display(), index + 1);
        }
    }
    Ok(names)
}

fn parse_names_line(line: &str) -> Option<(String, String)> {
    if let Some((id, name)) = line.split_once('\t') {
        let name = name.trim();
        return (!id.trim().is_empty() && !name.is_empty())
            .then(|| (id.trim().to_string(), name.to_string()));
    }
    let (id, rest) = line.trim().split_once(' ')?;
    let rest = rest.trim();
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    let name = match tokens[..] {
        [index, name] if index.chars().all(|c| c.is_ascii_digit()) => name.replace('_', " "),
        _ => rest.split(',').next()?.trim().to_string(),
    };
    (!name.is_empty()).then(|| (id.to_string(), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lines_of_every_format() {
        let parse = |l: &str| parse_names_line(l).unwrap();
        assert_eq!(
            parse("n01440764 tench, Tinca tinca"),
            ("n01440764".into(), "tench".into())
        );
        assert_eq!(
            parse("n02119789 1 kit_fox"),
            ("n02119789".into(), "kit fox".into())
        );
        assert_eq!(
            parse("c7\tcrème brûlée, dessert"),
            ("c7".into(), "crème brûlée, dessert".into())
        );
        assert_eq!(
            parse("n04399382 teddy, teddy bear"),
            ("n04399382".into(), "teddy".into())
        );
        assert!(parse_names_line("n01440764").is_none());
        assert!(parse_names_line("x\t  ").is_none());
    }
}
