//! Which files of a repo a model needs: its configuration, tokenizer files and one set of
//! weights (the format the loader would pick), never the other formats a repo also carries.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// What a folder holds, which decides the files fetched for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FolderKind {
    /// A Shikra/LCL checkpoint (LLaMA config, tokenizer, weights; its `vision/` folder too
    /// when it has one).
    Lcl,
    /// A CLIP checkpoint (vision tower, text tower, tokenizer).
    Clip,
}

/// Configuration and tokenizer files, fetched when the repo has them.
const LCL_FILES: [&str; 7] = [
    "config.json",
    "generation_config.json",
    "tokenizer.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
];
const CLIP_FILES: [&str; 7] = [
    "config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
];

/// Weight files in the order the model loader tries them (Burn's own format first, then
/// `lcl_model::checkpoint`'s order).
const WEIGHT_FILES: [&str; 5] = [
    "model.bpk",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
    "model.safetensors",
    "pytorch_model.bin",
];

/// The files of `listing` (repo-relative paths) a folder of `kind` needs, shards excepted:
/// when the weights are sharded, the list holds their index, and [`shards`] names the rest.
pub fn wanted(kind: FolderKind, listing: &BTreeSet<String>) -> Result<Vec<String>> {
    let mut files = wanted_in(kind, listing, "")?;
    if kind == FolderKind::Lcl && listing.contains("vision/config.json") {
        files.extend(wanted_in(FolderKind::Clip, listing, "vision/")?);
    }
    Ok(files)
}

fn wanted_in(kind: FolderKind, listing: &BTreeSet<String>, prefix: &str) -> Result<Vec<String>> {
    let config = format!("{prefix}config.json");
    if !listing.contains(&config) {
        bail!("no {config} (not a model repo?)");
    }
    let extra: &[&str] = match kind {
        FolderKind::Lcl => &LCL_FILES,
        FolderKind::Clip => &CLIP_FILES,
    };
    let mut files: Vec<String> = extra
        .iter()
        .map(|name| format!("{prefix}{name}"))
        .filter(|path| listing.contains(path))
        .collect();
    let weights = WEIGHT_FILES
        .iter()
        .map(|name| format!("{prefix}{name}"))
        .find(|path| listing.contains(path))
        .with_context(|| {
            format!(
                "no weights under {} (looked for {})",
                if prefix.is_empty() {
                    "the repo root"
                } else {
                    prefix
                },
                WEIGHT_FILES.join(", ")
            )
        })?;
    files.push(weights);
    Ok(files)
}

/// Whether `file` is a shard index (its shards are fetched after it).
pub fn is_index(file: &str) -> bool {
    file.ends_with(".index.json")
}

/// The shard files named by the index at `index_path`, as repo paths beside `index_file`.
pub fn shards(index_file: &str, index_path: &Path) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(index_path)
        .with_context(|| format!("{}: cannot read", index_path.display()))?;
    let index: Index = serde_json::from_str(&text)
        .with_context(|| format!("{index_file}: not a shard index (no weight_map)"))?;
    let folder = index_file.rsplit_once('/').map(|(dir, _)| dir);
    let names: BTreeSet<&String> = index.weight_map.values().collect();
    names
        .into_iter()
        .map(|name| {
            if name.contains("..") || name.starts_with('/') {
                bail!("{index_file}: shard name {name:?} leaves the repo folder");
            }
            Ok(match folder {
                Some(dir) => format!("{dir}/{name}"),
                None => name.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(files: &[&str]) -> BTreeSet<String> {
        files.iter().map(|f| f.to_string()).collect()
    }

    #[test]
    fn one_weight_format_and_the_tokenizer() {
        let repo = listing(&[
            "config.json",
            "added_tokens.json",
            "pytorch_model.bin.index.json",
            "pytorch_model-00001-of-00002.bin",
            "README.md",
            "tf_model.h5",
        ]);
        assert_eq!(
            wanted(FolderKind::Lcl, &repo).unwrap(),
            [
                "config.json",
                "added_tokens.json",
                "pytorch_model.bin.index.json"
            ]
        );
        let clip = listing(&[
            "config.json",
            "preprocessor_config.json",
            "model.safetensors",
            "pytorch_model.bin",
            "flax_model.msgpack",
            "vocab.json",
            "merges.txt",
        ]);
        assert_eq!(
            wanted(FolderKind::Clip, &clip).unwrap(),
            [
                "config.json",
                "preprocessor_config.json",
                "vocab.json",
                "merges.txt",
                "model.safetensors"
            ]
        );
    }

    #[test]
    fn an_lcl_repo_with_its_vision_folder() {
        let repo = listing(&[
            "config.json",
            "tokenizer.json",
            "model.safetensors",
            "vision/config.json",
            "vision/model.safetensors",
        ]);
        assert_eq!(
            wanted(FolderKind::Lcl, &repo).unwrap(),
            [
                "config.json",
                "tokenizer.json",
                "model.safetensors",
                "vision/config.json",
                "vision/model.safetensors"
            ]
        );
    }

    #[test]
    fn missing_config_or_weights_are_named() {
        let err = wanted(FolderKind::Lcl, &listing(&["README.md"])).unwrap_err();
        assert!(err.to_string().contains("no config.json"), "{err}");
        let err = wanted(FolderKind::Clip, &listing(&["config.json"])).unwrap_err();
        assert!(err.to_string().contains("no weights"), "{err}");
    }

    #[test]
    fn shards_beside_their_index() {
        let dir = std::env::temp_dir().join(format!("lcl-hub-shards-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let index = dir.join("index.json");
        std::fs::write(
            &index,
            r#"{"metadata": {}, "weight_map": {"a": "s-2.bin", "b": "s-1.bin", "c": "s-2.bin"}}"#,
        )
        .unwrap();
        assert_eq!(
            shards("vision/x.index.json", &index).unwrap(),
            ["vision/s-1.bin", "vision/s-2.bin"]
        );
        std::fs::write(&index, r#"{"weight_map": {"a": "../escape.bin"}}"#).unwrap();
        assert!(shards("x.index.json", &index).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
