//! CLIP's text tokenizer, as `CLIPProcessor` loads it (the fast tokenizer of the model
//! folder's `tokenizer.json`: NFC, whitespace collapsed, lower-cased, byte-level BPE,
//! `<|startoftext|>` ... `<|endoftext|>`), truncated to the text tower's context.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use tokenizers::{Tokenizer, TruncationParams};

/// The tokenizer of a CLIP model folder.
#[derive(Debug)]
pub struct ClipTokenizer {
    inner: Tokenizer,
    source: PathBuf,
}

impl ClipTokenizer {
    /// Loads `dir/tokenizer.json`; texts are cut to `max_len` tokens (specials included),
    /// keeping the end-of-text token last.
    pub fn from_dir(dir: &Path, max_len: usize) -> Result<Self> {
        let source = dir.join("tokenizer.json");
        let mut inner = Tokenizer::from_file(&source).map_err(|err| {
            anyhow!(
                "{}: cannot load the CLIP tokenizer: {err} (a CLIP folder needs the \
                 tokenizer.json that transformers saves with CLIPTokenizerFast)",
                source.display()
            )
        })?;
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(|err| anyhow!("{}: {err}", source.display()))?;
        Ok(Self { inner, source })
    }

    /// Ids of `text`, from `<|startoftext|>` to `<|endoftext|>`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|err| anyhow!("{}: cannot encode {text:?}: {err}", self.source.display()))?;
        Ok(encoding.get_ids().to_vec())
    }
}
