//! CLIP's text tokenizer, as `CLIPProcessor` loads it (the fast tokenizer: NFC, whitespace
//! collapsed, lower-cased, byte-level BPE with `</w>` word ends, `<|startoftext|>` ...
//! `<|endoftext|>`), truncated to the text tower's context. It is read from the folder's
//! `tokenizer.json`, or built from `vocab.json` + `merges.txt` (what many CLIP folders hold)
//! the way transformers converts them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tokenizers::{Tokenizer, TruncationParams};

/// The start-of-text token CLIP's vocabulary ends with.
const START: &str = "<|startoftext|>";
/// The end-of-text token (also CLIP's unknown and padding token).
const END: &str = "<|endoftext|>";

/// The tokenizer of a CLIP model folder.
#[derive(Debug)]
pub struct ClipTokenizer {
    inner: Tokenizer,
    source: PathBuf,
}

impl ClipTokenizer {
    /// Loads `dir/tokenizer.json`, else `dir/vocab.json` + `dir/merges.txt`; texts are cut to
    /// `max_len` tokens (specials included), keeping the end-of-text token last.
    pub fn from_dir(dir: &Path, max_len: usize) -> Result<Self> {
        let json_file = dir.join("tokenizer.json");
        let (vocab, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
        let (mut inner, source) = if json_file.is_file() {
            let inner = Tokenizer::from_file(&json_file).map_err(|err| {
                anyhow!(
                    "{}: cannot load the CLIP tokenizer: {err}",
                    json_file.display()
                )
            })?;
            (inner, json_file)
        } else if vocab.is_file() && merges.is_file() {
            (from_vocab_and_merges(&vocab, &merges)?, vocab)
        } else {
            bail!(
                "{}: no CLIP tokenizer there (tokenizer.json, or vocab.json with merges.txt)",
                dir.display()
            );
        };
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

/// The fast tokenizer transformers' `CLIPConverter` builds from a BPE vocabulary and its
/// merges (the same pipeline as the `tokenizer.json` `CLIPTokenizerFast` saves).
fn from_vocab_and_merges(vocab_path: &Path, merges_path: &Path) -> Result<Tokenizer> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
    };
    let vocab: serde_json::Map<String, Value> = serde_json::from_str(&read(vocab_path)?)
        .with_context(|| format!("{}: not a JSON object of token -> id", vocab_path.display()))?;
    let id = |token: &str| -> Result<u64> {
        vocab.get(token).and_then(Value::as_u64).ok_or_else(|| {
            anyhow!(
                "{}: the vocabulary has no {token} (not a CLIP vocabulary?)",
                vocab_path.display()
            )
        })
    };
    let (start, end) = (id(START)?, id(END)?);
    let text = read(merges_path)?;
    let mut merges = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.starts_with("#version") || line.trim().is_empty() {
            continue;
        }
        let Some((left, right)) = line.split_once(' ') else {
            bail!(
                "{}: line {}: a merge is two symbols separated by a space, got {line:?}",
                merges_path.display(),
                number + 1
            );
        };
        merges.push(json!([left, right]));
    }
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [
            {"id": start, "content": START, "single_word": false, "lstrip": false,
             "rstrip": false, "normalized": true, "special": true},
            {"id": end, "content": END, "single_word": false, "lstrip": false,
             "rstrip": false, "normalized": false, "special": true}
        ],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"},
            {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
            {"type": "Lowercase"}
        ]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split",
             "pattern": {"Regex": "'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"},
             "behavior": "Removed", "invert": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
             "use_regex": true}
        ]},
        "post_processor": {"type": "RobertaProcessing", "sep": [END, end],
            "cls": [START, start], "trim_offsets": false, "add_prefix_space": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
            "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": END,
            "continuing_subword_prefix": "", "end_of_word_suffix": "</w>", "fuse_unk": false,
            "byte_fallback": false, "vocab": vocab, "merges": merges}
    });
    spec.to_string().parse::<Tokenizer>().map_err(|err| {
        anyhow!(
            "{} + {}: not a usable BPE vocabulary: {err}",
            vocab_path.display(),
            merges_path.display()
        )
    })
}
