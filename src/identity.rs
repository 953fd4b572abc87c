//! What a result depends on, as content: a file by its size and xxh3-128 hash, a model
//! folder by its files. Resumable work (evaluation folders, the neighbours' feature cache,
//! training runs) records it beside its results and refuses to mix results of other inputs;
//! [`differences`] names what changed.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use xxhash_rust::xxh3::Xxh3;

/// A file's content identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    /// File name (within its folder).
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// xxh3-128 of the content, hex.
    pub xxh3: String,
}

/// Total size above which hashing shows a progress bar.
const BAR_FROM: u64 = 1 << 30;

/// The identity of one file.
pub fn file_identity(path: &Path) -> Result<FileIdentity> {
    let bytes = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot read", path.display()))?
        .len();
    let bar = crate::progress::bar(bytes, "hashing {msg} [{bar:40}] {bytes}/{total_bytes}");
    if bytes < BAR_FROM {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_message(path.display().to_string());
    let identity = hash_file(path, bytes, &|n| bar.inc(n))?;
    bar.finish_and_clear();
    Ok(identity)
}

fn hash_file(path: &Path, bytes: u64, progress: &dyn Fn(u64)) -> Result<FileIdentity> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut hasher = Xxh3::new();
    let mut buffer = vec![0u8; 8 << 20];
    loop {
        let read = file
            .read(&mut buffer)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        progress(read as u64);
    }
    Ok(FileIdentity {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        bytes,
        xxh3: format!("{:032x}", hasher.digest128()),
    })
}

/// The identities of the files directly in `dir` (a model or CLIP folder: config, tokenizer,
/// weights), by name.
pub fn folder_identity(dir: &Path) -> Result<Vec<FileIdentity>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot read", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("{}: cannot read", dir.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            files.push(entry.path());
        }
    }
    if files.is_empty() {
        bail!("{}: no file there", dir.display());
    }
    files.sort();
    files.iter().map(|path| file_identity(path)).collect()
}

/// Where `old` and `new` differ, at most `limit` entries as `path: old -> new`.
pub fn differences(old: &Value, new: &Value, limit: usize) -> Vec<String> {
    let mut found = Vec::new();
    walk(old, new, String::new(), &mut found, limit);
    found
}

fn walk(old: &Value, new: &Value, path: String, found: &mut Vec<String>, limit: usize) {
    if found.len() >= limit || old == new {
        return;
    }
    let child = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let (x, y) = (a.get(key), b.get(key));
                walk(
                    x.unwrap_or(&Value::Null),
                    y.unwrap_or(&Value::Null),
                    child(key),
                    found,
                    limit,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let name = x
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or_else(|| i.to_string(), str::to_string);
                walk(x, y, format!("{path}[{name}]"), found, limit);
            }
        }
        _ => found.push(format!("{path}: {} -> {}", short(old), short(new))),
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 120 {
        format!("{}...", text.chars().take(117).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_follow_content_and_differences_name_the_field() {
        let dir = std::env::temp_dir().join(format!("lcl-identity-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.bin"), b"weights").unwrap();
        std::fs::write(dir.join("config.json"), b"{}").unwrap();
        let before = folder_identity(&dir).unwrap();
        assert_eq!(before.len(), 2);
        assert_eq!(before[0].name, "a.bin");
        assert_eq!(before[0].bytes, 7);
        std::fs::write(dir.join("a.bin"), b"weightz").unwrap();
        let after = folder_identity(&dir).unwrap();
        assert_ne!(before[0].xxh3, after[0].xxh3);
        assert_eq!(before[1], after[1]);
        let old = serde_json::json!({"model": before, "seed": 1});
        let new = serde_json::json!({"model": after, "seed": 2});
        let found = differences(&old, &new, 10);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("model[a.bin].xxh3: "), "{found:?}");
        assert_eq!(found[1], "seed: 1 -> 2");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
