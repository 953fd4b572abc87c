//! The tensors of a Hugging Face checkpoint, listed across its files without reading their
//! data: `model.safetensors`, `pytorch_model.bin`, and sharded variants with an index.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use burn::store::pytorch_reader::{self, PytorchReader};
use burn::tensor::{DType, TensorData};
use serde::Deserialize;

use super::LoadError;

/// Where one tensor's bytes live.
#[derive(Clone)]
enum Location {
    /// A byte range of a safetensors file.
    Safetensors { offset: u64, len: usize },
    /// A tensor of a torch pickle, read on demand.
    Pytorch(pytorch_reader::Tensor),
}

/// One tensor of a checkpoint: its name, dtype, shape and file, with its data not yet read.
#[derive(Clone)]
pub struct TensorEntry {
    /// Element type in the file.
    pub dtype: DType,
    /// Shape in the file.
    pub shape: Vec<usize>,
    /// File holding it.
    pub file: PathBuf,
    location: Location,
}

/// Every tensor of a checkpoint, by name. Opening reads headers only, so a 7B checkpoint is
/// listed in milliseconds and each tensor is read when asked for.
pub struct WeightFiles {
    /// The folder or file the weights came from.
    pub origin: PathBuf,
    entries: BTreeMap<String, TensorEntry>,
}

/// File names tried in a checkpoint folder, in order.
const INDEX_NAMES: [&str; 2] = [
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
];
const SINGLE_NAMES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

impl WeightFiles {
    /// Lists the weights of a Hugging Face checkpoint folder (single file or sharded with an
    /// index), or of a single `.safetensors` / `.bin` / `.pt` file.
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        if path.is_file() {
            let mut files = Self::empty(path);
            files.add_file(path)?;
            return Ok(files);
        }
        if !path.is_dir() {
            return Err(LoadError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder"),
            });
        }
        for name in INDEX_NAMES {
            let index = path.join(name);
            if index.is_file() {
                return Self::open_index(path, &index);
            }
        }
        for name in SINGLE_NAMES {
            let file = path.join(name);
            if file.is_file() {
                let mut files = Self::empty(path);
                files.add_file(&file)?;
                return Ok(files);
            }
        }
        Err(LoadError::NoWeights {
            dir: path.to_path_buf(),
        })
    }

    fn empty(origin: &Path) -> Self {
        Self {
            origin: origin.to_path_buf(),
            entries: BTreeMap::new(),
        }
    }

    fn open_index(dir: &Path, index_path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(index_path).map_err(|source| LoadError::Io {
            path: index_path.to_path_buf(),
            source,
        })?;
        let index: ShardIndex = serde_json::from_str(&text).map_err(|err| LoadError::Format {
            path: index_path.to_path_buf(),
            message: format!("invalid shard index: {err}"),
        })?;
        let mut shards: Vec<&String> = index.weight_map.values().collect();
        shards.sort();
        shards.dedup();
        let mut files = Self::empty(dir);
        for shard in shards {
            files.add_file(&dir.join(shard))?;
        }
        for (name, shard) in &index.weight_map {
            let holds = files
                .entries
                .get(name)
                .is_some_and(|entry| entry.file == dir.join(shard));
            if !holds {
                return Err(LoadError::Format {
                    path: index_path.to_path_buf(),
                    message: format!("the index puts {name} in {shard}, which does not hold it"),
                });
            }
        }
        Ok(files)
    }

    fn add_file(&mut self, path: &Path) -> Result<(), LoadError> {
        let listed = if path.extension().is_some_and(|ext| ext == "safetensors") {
            list_safetensors(path)?
        } else {
            list_pytorch(path)?
        };
        for (name, entry) in listed {
            if let Some(previous) = self.entries.get(&name) {
                return Err(LoadError::Format {
                    path: path.to_path_buf(),
                    message: format!(
                        "tensor {name} is also stored in {}",
                        previous.file.display()
                    ),
                });
            }
            self.entries.insert(name, entry);
        }
        Ok(())
    }

    /// The tensor called `name`, if any file holds it.
    pub fn get(&self, name: &str) -> Option<&TensorEntry> {
        self.entries.get(name)
    }

    /// All tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the checkpoint holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl TensorEntry {
    /// Reads the tensor's data from its file, in the file's dtype.
    pub fn read(&self) -> Result<TensorData, LoadError> {
        let bytes = match &self.location {
            Location::Safetensors { offset, len } => read_range(&self.file, *offset, *len)
                .map_err(|err| LoadError::Format {
                    path: self.file.clone(),
                    message: format!("cannot read tensor data: {err}"),
                })?,
            Location::Pytorch(tensor) => tensor.read().map_err(|err| LoadError::Format {
                path: self.file.clone(),
                message: format!("cannot read tensor data (truncated or corrupt file?): {err}"),
            })?,
        };
        Ok(TensorData::from_bytes_vec(
            bytes,
            self.shape.clone(),
            self.dtype,
        ))
    }
}

fn read_range(path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = vec![0u8; len];
    file.read_exact(&mut bytes)?;
    Ok(bytes)
}

#[derive(Deserialize)]
struct SafetensorsHeaderEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

fn list_safetensors(path: &Path) -> Result<Vec<(String, TensorEntry)>, LoadError> {
    let format_error = |message: String| LoadError::Format {
        path: path.to_path_buf(),
        message,
    };
    let mut file = File::open(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file_len = file
        .metadata()
        .map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes)
        .map_err(|_| format_error("file too short for a safetensors header".into()))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > file_len.saturating_sub(8) || header_len > 100_000_000 {
        return Err(format_error(format!(
            "header length {header_len} exceeds the file size {file_len} (truncated or not a safetensors file)"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .map_err(|err| format_error(format!("cannot read header: {err}")))?;
    let header: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|err| format_error(format!("invalid header JSON: {err}")))?;
    let data_start = 8 + header_len;
    let mut listed = Vec::new();
    for (name, value) in header {
        if name == "__metadata__" {
            continue;
        }
        let entry: SafetensorsHeaderEntry = serde_json::from_value(value)
            .map_err(|err| format_error(format!("invalid header entry for {name}: {err}")))?;
        let dtype = safetensors_dtype(&entry.dtype)
            .ok_or_else(|| format_error(format!("{name}: unsupported dtype {}", entry.dtype)))?;
        let [start, end] = entry.data_offsets;
        let expected = entry
            .shape
            .iter()
            .try_fold(dtype.size(), |bytes, &dim| bytes.checked_mul(dim))
            .ok_or_else(|| {
                format_error(format!(
                    "{name}: shape {:?} of {} is larger than any memory",
                    entry.shape, entry.dtype
                ))
            })?;
        if end < start || (end - start) != expected as u64 {
            return Err(format_error(format!(
                "{name}: data offsets {start}..{end} do not fit shape {:?} of {}",
                entry.shape, entry.dtype
            )));
        }
        if data_start
            .checked_add(end)
            .is_none_or(|last| last > file_len)
        {
            return Err(format_error(format!(
                "{name} needs bytes up to {} but the file has {file_len} (truncated file?)",
                u128::from(data_start) + u128::from(end)
            )));
        }
        listed.push((
            name,
            TensorEntry {
                dtype,
                shape: entry.shape,
                file: path.to_path_buf(),
                location: Location::Safetensors {
                    offset: data_start + start,
                    len: expected,
                },
            },
        ));
    }
    Ok(listed)
}

fn safetensors_dtype(name: &str) -> Option<DType> {
    Some(match name {
        "F64" => DType::F64,
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "I64" => DType::I64,
        "I32" => DType::I32,
        "I16" => DType::I16,
        "I8" => DType::I8,
        "U8" => DType::U8,
        _ => return None,
    })
}

fn list_pytorch(path: &Path) -> Result<Vec<(String, TensorEntry)>, LoadError> {
    if !path.is_file() {
        return Err(LoadError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let reader = PytorchReader::new(path).map_err(|err| LoadError::Format {
        path: path.to_path_buf(),
        message: format!("not a readable torch checkpoint: {err}"),
    })?;
    let mut listed = Vec::new();
    for (name, tensor) in reader.into_tensors() {
        let dtype = pytorch_dtype(tensor.dtype());
        let shape = tensor.shape().to_vec();
        listed.push((
            name,
            TensorEntry {
                dtype,
                shape,
                file: path.to_path_buf(),
                location: Location::Pytorch(tensor),
            },
        ));
    }
    Ok(listed)
}

fn pytorch_dtype(dtype: pytorch_reader::DType) -> DType {
    use pytorch_reader::DType as P;
    match dtype {
        P::F64 => DType::F64,
        P::F32 => DType::F32,
        P::F16 => DType::F16,
        P::BF16 => DType::BF16,
        P::I64 => DType::I64,
        P::I32 => DType::I32,
        P::I16 => DType::I16,
        P::I8 => DType::I8,
        P::U64 => DType::U64,
        P::U32 => DType::U32,
        P::U16 => DType::U16,
        P::U8 => DType::U8,
        P::Bool => DType::U8,
    }
}
