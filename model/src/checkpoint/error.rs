//! What can go wrong when reading a checkpoint, with the file and the tensors named.

use std::fmt;
use std::path::PathBuf;

/// A tensor whose shape differs from what the model config implies.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeMismatch {
    /// Tensor name in the checkpoint.
    pub name: String,
    /// Shape the config implies.
    pub expected: Vec<usize>,
    /// Shape stored in the file.
    pub found: Vec<usize>,
    /// File holding the tensor.
    pub file: PathBuf,
}

/// Failure to read a model config or its weights.
#[derive(Debug)]
pub enum LoadError {
    /// A file could not be opened or read.
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A `config.json` that cannot be parsed or describes an impossible model.
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A weights file that is malformed, truncated, or holds an unsupported dtype.
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A folder without any weights file this crate knows.
    NoWeights {
        /// The folder.
        dir: PathBuf,
    },
    /// The device cannot compute in the requested dtype (e.g. bf16 on Vulkan, which can
    /// store it but has no arithmetic for it).
    UnsupportedDType {
        /// The dtype asked for.
        dtype: String,
    },
    /// The checkpoint does not fit the model: every missing, mis-shaped and unexpected
    /// tensor is listed.
    Mismatch {
        /// Where the weights were read from (folder or file).
        source: PathBuf,
        /// Tensors the model needs that no file holds: name and expected shape.
        missing: Vec<(String, Vec<usize>)>,
        /// Tensors with the wrong shape.
        mis_shaped: Vec<ShapeMismatch>,
        /// Tensors in the files that the model does not use: name and file.
        unexpected: Vec<(String, PathBuf)>,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            LoadError::Config { path, message } => {
                write!(f, "{}: invalid model config: {message}", path.display())
            }
            LoadError::Format { path, message } => {
                write!(f, "{}: unreadable weights: {message}", path.display())
            }
            LoadError::NoWeights { dir } => write!(
                f,
                "{}: no weights found (looked for model.safetensors, \
                 model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json)",
                dir.display()
            ),
            LoadError::UnsupportedDType { dtype } => write!(
                f,
                "this device cannot compute in {dtype} (it may store it, but has no arithmetic for it); \
                 load the weights as f32, or f16 where the device supports it"
            ),
            LoadError::Mismatch {
                source,
                missing,
                mis_shaped,
                unexpected,
            } => {
                writeln!(
                    f,
                    "{}: checkpoint does not match the model config ({} missing, {} mis-shaped, {} unexpected)",
                    source.display(),
                    missing.len(),
                    mis_shaped.len(),
                    unexpected.len()
                )?;
                for (name, shape) in missing {
                    writeln!(f, "  missing     {name} (expected shape {shape:?})")?;
                }
                for m in mis_shaped {
                    writeln!(
                        f,
                        "  wrong shape {} in {}: expected {:?}, found {:?}",
                        m.name,
                        m.file.display(),
                        m.expected,
                        m.found
                    )?;
                }
                for (name, file) in unexpected {
                    writeln!(f, "  unexpected  {name} in {}", file.display())?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
