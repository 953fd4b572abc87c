//! Writing tensors as safetensors files, split into shards past a size with the index
//! transformers reads (`model.safetensors.index.json`), as `save_pretrained` lays them out.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::DType;
use lcl_model::CheckpointTensor;
use serde_json::{Map, Value, json};

/// The file of an unsharded checkpoint.
pub const SINGLE_FILE: &str = "model.safetensors";
/// The index of a sharded one.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// safetensors' name of a dtype.
fn dtype_name(dtype: DType) -> Result<&'static str> {
    Ok(match dtype {
        DType::F64 => "F64",
        DType::F32 => "F32",
        DType::F16 => "F16",
        DType::BF16 => "BF16",
        DType::I64 => "I64",
        DType::I32 => "I32",
        other => bail!("{other:?} tensors cannot be written to safetensors here"),
    })
}

/// Groups tensors, in order, into shards of at most `max_bytes` each (a tensor larger than
/// that gets a shard of its own), as transformers' `shard_checkpoint` does.
fn shards(tensors: &[CheckpointTensor], max_bytes: u64) -> Vec<&[CheckpointTensor]> {
    let mut groups = Vec::new();
    let (mut start, mut size) = (0, 0u64);
    for (index, tensor) in tensors.iter().enumerate() {
        let bytes = tensor.byte_len() as u64;
        if index > start && size + bytes > max_bytes {
            groups.push(&tensors[start..index]);
            (start, size) = (index, 0);
        }
        size += bytes;
    }
    if start < tensors.len() {
        groups.push(&tensors[start..]);
    }
    groups
}

/// Writes `tensors` into `dir`: `model.safetensors`, or when they exceed `max_shard_bytes`,
/// `model-0000i-of-0000n.safetensors` with `model.safetensors.index.json`. Each file is
/// written under a temporary name and renamed when complete. Returns the files written.
pub fn write_checkpoint(
    dir: &Path,
    tensors: &[CheckpointTensor],
    max_shard_bytes: u64,
    mut progress: impl FnMut(u64),
) -> Result<Vec<PathBuf>> {
    let groups = shards(tensors, max_shard_bytes.max(1));
    let count = groups.len();
    let mut written = Vec::new();
    let mut weight_map = Map::new();
    for (index, group) in groups.iter().enumerate() {
        let name = if count == 1 {
            SINGLE_FILE.to_string()
        } else {
            format!("model-{:05}-of-{count:05}.safetensors", index + 1)
        };
        let path = dir.join(&name);
        write_file(&path, group, &mut progress)?;
        for tensor in *group {
            weight_map.insert(tensor.name.clone(), Value::String(name.clone()));
        }
        written.push(path);
    }
    if count > 1 {
        let total: usize = tensors.iter().map(CheckpointTensor::byte_len).sum();
        let index = json!({"metadata": {"total_size": total}, "weight_map": weight_map});
        let path = dir.join(INDEX_FILE);
        std::fs::write(&path, serde_json::to_string_pretty(&index)? + "\n")
            .with_context(|| format!("{}: cannot write", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// One safetensors file: the 8-byte header length, the JSON header (names in order, padded
/// with spaces to 8 bytes), then the data.
fn write_file(
    path: &Path,
    tensors: &[CheckpointTensor],
    progress: &mut impl FnMut(u64),
) -> Result<()> {
    let mut header = Map::new();
    header.insert("__metadata__".into(), json!({"format": "pt"}));
    let mut offset = 0usize;
    for tensor in tensors {
        let end = offset + tensor.byte_len();
        header.insert(
            tensor.name.clone(),
            json!({
                "dtype": dtype_name(tensor.dtype)?,
                "shape": tensor.shape,
                "data_offsets": [offset, end],
            }),
        );
        offset = end;
    }
    let mut header = serde_json::to_vec(&Value::Object(header))?;
    header.resize(header.len().next_multiple_of(8), b' ');

    let partial = path.with_extension("safetensors.partial");
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("{}: cannot create", partial.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let fail = |err: std::io::Error| anyhow::anyhow!("{}: cannot write: {err}", partial.display());
    out.write_all(&(header.len() as u64).to_le_bytes())
        .map_err(fail)?;
    out.write_all(&header).map_err(fail)?;
    for tensor in tensors {
        let bytes = tensor.bytes()?;
        out.write_all(&bytes).map_err(fail)?;
        progress(bytes.len() as u64);
    }
    out.into_inner()
        .map_err(|err| fail(err.into_error()))?
        .sync_all()
        .map_err(fail)?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("{}: cannot rename to {}", partial.display(), path.display()))
}

/// Parses a size such as `5GB`, `500MB`, `2GiB` or a plain byte count.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: not a size (e.g. 5GB, 500MB, 2GiB)"))?;
    let unit = unit.trim();
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KIB" => 1 << 10,
        "MIB" => 1 << 20,
        "GIB" => 1 << 30,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (B, KB, MB, GB, KiB, MiB, GiB)"
            ));
        }
    };
    let bytes = number * scale as f64;
    if !(bytes >= 1.0 && bytes.is_finite()) {
        return Err(format!("{text:?}: a shard must hold at least one byte"));
    }
    Ok(bytes as u64)
}

/// Names of the weight files a checkpoint folder may already hold.
pub fn existing_weights(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            name == lcl_model::checkpoint::BURNPACK
                || name.ends_with(".safetensors")
                || name.ends_with(".safetensors.index.json")
                || (name.starts_with("pytorch_model") && name.contains(".bin"))
        })
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_are_read_with_their_units() {
        assert_eq!(parse_size("5GB"), Ok(5_000_000_000));
        assert_eq!(parse_size("1.5MiB"), Ok(1_572_864));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("0").is_err());
        assert!(
            parse_size("5 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_size("GB").is_err());
    }
}
