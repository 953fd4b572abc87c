//! Train/test split by class: the original's 100 held-out ImageNet classes (shipped in
//! `datasets/imagenet100-test-classes.tsv`), or any list of test classes from a file.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::data::image_folder::FolderClass;

/// The shipped ImageNet-100 test classes (map_clsloc index, wnid, name per line).
pub const IMAGENET100_TSV: &str = include_str!("../../datasets/imagenet100-test-classes.tsv");

/// Which classes are held out for testing, in their evaluation order.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassSplit {
    /// Test class ids (folder names), in order (ImageNet-100 pairs lines 2k and 2k+1).
    pub test: Vec<String>,
}

impl ClassSplit {
    /// The original's 100 ImageNet test classes.
    pub fn imagenet100() -> Self {
        Self::parse(
            IMAGENET100_TSV,
            Path::new("datasets/imagenet100-test-classes.tsv"),
        )
        .expect("the shipped split parses")
    }

    /// Reads test class ids from a file: one per line, the id being the first field of a
    /// `map_clsloc` TSV (`index<TAB>wnid...`, its second field) or of a plain list; `#`
    /// comments and blank lines are skipped.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the class split", path.display()))?;
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut test = Vec::new();
        let mut seen = HashSet::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
            let id = match fields[..] {
                [first, second, ..] if first.chars().all(|c| c.is_ascii_digit()) => second,
                [first, ..] => first.split_whitespace().next().unwrap_or(first),
                [] => unreachable!("split yields at least one field"),
            };
            if !seen.insert(id.to_string()) {
                bail!("{}:{}: class {id} listed twice", path.display(), index + 1);
            }
            test.push(id.to_string());
        }
        if test.is_empty() {
            bail!("{}: no test classes listed", path.display());
        }
        Ok(Self { test })
    }

    /// Splits `classes` into (train, test); test classes come in the split's order. Every
    /// listed test class must be present.
    pub fn apply(&self, classes: &[FolderClass]) -> Result<(Vec<FolderClass>, Vec<FolderClass>)> {
        let missing: Vec<&str> = self
            .test
            .iter()
            .filter(|id| !classes.iter().any(|c| &c.id == *id))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            bail!(
                "{} of the {} test classes are not class folders of the data (first: {}); \
                 give the split of your data with --split FILE",
                missing.len(),
                self.test.len(),
                missing[..missing.len().min(5)].join(", ")
            );
        }
        let test_ids: HashSet<&str> = self.test.iter().map(String::as_str).collect();
        let train = classes
            .iter()
            .filter(|c| !test_ids.contains(c.id.as_str()))
            .cloned()
            .collect();
        let test = self
            .test
            .iter()
            .map(|id| {
                classes
                    .iter()
                    .find(|c| &c.id == id)
                    .cloned()
                    .expect("checked above")
            })
            .collect();
        Ok((train, test))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_imagenet100_split_has_100_distinct_wnids_in_pair_order() {
        let split = ClassSplit::imagenet100();
        assert_eq!(split.test.len(), 100);
        assert!(
            split
                .test
                .iter()
                .all(|id| id.len() == 9 && id.starts_with('n'))
        );
        assert_eq!(split.test[0], "n02091134");
        assert_eq!(split.test[1], "n02092002");
        assert_eq!(split.test[99], "n03729826");
    }

    fn class(id: &str) -> FolderClass {
        FolderClass {
            id: id.into(),
            name: id.into(),
            images: vec![format!("{id}/0.png")],
        }
    }

    #[test]
    fn a_split_keeps_test_order_and_refuses_missing_classes() {
        let split = ClassSplit::parse("# test\nc3\nc1 extra words\n", Path::new("s.txt")).unwrap();
        let classes = [class("c1"), class("c2"), class("c3"), class("c4")];
        let (train, test) = split.apply(&classes).unwrap();
        assert_eq!(
            train.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["c2", "c4"]
        );
        assert_eq!(
            test.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["c3", "c1"]
        );
        let err = ClassSplit::imagenet100().apply(&classes).unwrap_err();
        assert!(err.to_string().contains("--split"), "{err}");
        let err = ClassSplit::parse("a\na\n", Path::new("s.txt")).unwrap_err();
        assert!(err.to_string().contains("s.txt:2"), "{err}");
    }
}
