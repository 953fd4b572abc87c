//! The LLaMA tokenizer with the behaviour of transformers 4.29's slow `LlamaTokenizer`, which
//! the original LCL code used:
//! - the text is split on added and special tokens (`<s>`, `</s>`, `<unk>`, `<im_patch>`,
//!   `<im_start>`, `<im_end>`); a literal `</s>` in the text becomes id 2;
//! - whitespace next to an added token (the image tokens) is stripped on both sides, but not
//!   next to `<s>`, `</s>`, `<unk>` (those are `AddedToken`s with `lstrip=rstrip=False`);
//! - every remaining chunk is encoded on its own, with SentencePiece's dummy `▁` prefix;
//! - `encode` puts `<s>` in front.
//!
//! The chunks are encoded by the SentencePiece model (`tokenizer.model`) or, when only a
//! `tokenizer.json` is present, by the `tokenizers` crate.

mod clip;
mod sentencepiece;

pub use clip::ClipTokenizer;

pub use sentencepiece::SentencePiece;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Encodes one chunk of plain text (no special tokens) into ids.
#[derive(Debug)]
enum ChunkEncoder {
    SentencePiece(Box<SentencePiece>),
    HuggingFace(Box<tokenizers::Tokenizer>),
}

/// A token matched as a whole in the text.
#[derive(Debug, Clone)]
struct SpecialToken {
    text: String,
    id: u32,
    /// Strip whitespace around it (true for tokens added with `add_tokens`).
    strips: bool,
}

/// The LCL tokenizer.
#[derive(Debug)]
pub struct LclTokenizer {
    encoder: ChunkEncoder,
    /// Longest first, so the longest match wins.
    specials: Vec<SpecialToken>,
    /// Id -> text of every special token, for decoding.
    special_text: BTreeMap<u32, String>,
    bos_id: u32,
    eos_id: u32,
    unk_id: u32,
    source: PathBuf,
}

/// The image tokens Shikra adds to LLaMA's vocabulary.
pub const IMAGE_PATCH: &str = "<im_patch>";
/// Start of an image.
pub const IMAGE_START: &str = "<im_start>";
/// End of an image.
pub const IMAGE_END: &str = "<im_end>";

impl LclTokenizer {
    /// Loads the tokenizer of a model folder: `tokenizer.model` (preferred: the original's)
    /// or `tokenizer.json`, plus `added_tokens.json`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            bail!(
                "{}: {}",
                dir.display(),
                if dir.exists() {
                    "not a folder (a model is a folder: config.json, weights, tokenizer)"
                } else {
                    "no such model folder"
                }
            );
        }
        let model = dir.join("tokenizer.model");
        let json = dir.join("tokenizer.json");
        if model.is_file() {
            Self::from_sentencepiece(&model)
        } else if json.is_file() {
            Self::from_tokenizer_json(&json)
        } else {
            bail!(
                "{}: no tokenizer.model or tokenizer.json (copy LLaMA's tokenizer.model into the model folder)",
                dir.display()
            )
        }
    }

    /// Loads a SentencePiece `tokenizer.model` and the `added_tokens.json` beside it.
    pub fn from_sentencepiece(path: &Path) -> Result<Self> {
        let sp = SentencePiece::from_file(path)?;
        let id = |piece: &str| {
            sp.piece_id(piece)
                .with_context(|| format!("{}: no piece {piece}", path.display()))
        };
        let (bos, eos, unk) = (id("<s>")?, id("</s>")?, id("<unk>")?);
        let added = read_added_tokens(path)?;
        Self::new(
            ChunkEncoder::SentencePiece(Box::new(sp)),
            bos,
            eos,
            unk,
            added,
            path,
        )
    }

    /// Loads a Hugging Face `tokenizer.json` (LLaMA's BPE) and the `added_tokens.json`
    /// beside it, or the image tokens listed in the JSON itself.
    pub fn from_tokenizer_json(path: &Path) -> Result<Self> {
        let tokenizer = tokenizers::Tokenizer::from_file(path).map_err(|err| {
            anyhow::anyhow!("{}: cannot load tokenizer.json: {err}", path.display())
        })?;
        let id = |piece: &str| {
            tokenizer
                .token_to_id(piece)
                .with_context(|| format!("{}: no token {piece}", path.display()))
        };
        let (bos, eos, unk) = (id("<s>")?, id("</s>")?, id("<unk>")?);
        let mut added = read_added_tokens(path)?;
        for token in [IMAGE_PATCH, IMAGE_START, IMAGE_END] {
            if !added.contains_key(token)
                && let Some(token_id) = tokenizer.token_to_id(token)
            {
                added.insert(token.to_string(), token_id);
            }
        }
        Self::new(
            ChunkEncoder::HuggingFace(Box::new(tokenizer)),
            bos,
            eos,
            unk,
            added,
            path,
        )
    }

    fn new(
        encoder: ChunkEncoder,
        bos_id: u32,
        eos_id: u32,
        unk_id: u32,
        added: BTreeMap<String, u32>,
        source: &Path,
    ) -> Result<Self> {
        let mut specials: Vec<SpecialToken> =
            [("<s>", bos_id), ("</s>", eos_id), ("<unk>", unk_id)]
                .into_iter()
                .map(|(text, id)| SpecialToken {
                    text: text.to_string(),
                    id,
                    strips: false,
                })
                .collect();
        for (text, id) in added {
            specials.retain(|s| s.text != text);
            specials.push(SpecialToken {
                text,
                id,
                strips: true,
            });
        }
        specials.sort_by(|a, b| b.text.len().cmp(&a.text.len()).then(a.text.cmp(&b.text)));
        let special_text = specials.iter().map(|s| (s.id, s.text.clone())).collect();
        Ok(Self {
            encoder,
            specials,
            special_text,
            bos_id,
            eos_id,
            unk_id,
            source: source.to_path_buf(),
        })
    }

    /// `<s>`.
    pub fn bos_id(&self) -> u32 {
        self.bos_id
    }

    /// `</s>`.
    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    /// `<unk>`, which the original also uses for padding.
    pub fn pad_id(&self) -> u32 {
        self.unk_id
    }

    /// Id of an added or special token such as `<im_patch>`.
    pub fn special_id(&self, text: &str) -> Result<u32> {
        self.specials
            .iter()
            .find(|s| s.text == text)
            .map(|s| s.id)
            .with_context(|| {
                format!(
                    "{}: the tokenizer has no {text} token (is added_tokens.json missing?)",
                    self.source.display()
                )
            })
    }

    /// Token ids of `text` with `<s>` in front, as `tokenizer(text).input_ids`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = vec![self.bos_id];
        ids.extend(self.encode_without_bos(text));
        ids
    }

    /// Token ids of `text` without `<s>`.
    pub fn encode_without_bos(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        for piece in self.split(text) {
            match piece {
                Piece::Special(id) => ids.push(id),
                Piece::Text(chunk) => ids.extend(self.encode_chunk(&chunk)),
            }
        }
        ids
    }

    fn encode_chunk(&self, chunk: &str) -> Vec<u32> {
        match &self.encoder {
            ChunkEncoder::SentencePiece(sp) => sp.encode(chunk),
            ChunkEncoder::HuggingFace(tokenizer) => tokenizer
                .encode(chunk, false)
                .map(|encoding| encoding.get_ids().to_vec())
                .unwrap_or_default(),
        }
    }

    /// Splits on special tokens and strips whitespace next to the stripping ones.
    fn split(&self, text: &str) -> Vec<Piece> {
        let mut raw: Vec<(Option<&SpecialToken>, String)> = Vec::new();
        let mut rest = text;
        let mut plain = String::new();
        while !rest.is_empty() {
            if let Some(special) = self
                .specials
                .iter()
                .find(|s| rest.starts_with(s.text.as_str()))
            {
                raw.push((None, std::mem::take(&mut plain)));
                raw.push((Some(special), String::new()));
                rest = &rest[special.text.len()..];
            } else {
                let ch = rest.chars().next().expect("non-empty");
                plain.push(ch);
                rest = &rest[ch.len_utf8()..];
            }
        }
        raw.push((None, plain));
        for i in 0..raw.len() {
            if raw[i].0.is_some_and(|s| s.strips) {
                if i > 0 {
                    raw[i - 1].1 = raw[i - 1].1.trim_end().to_string();
                }
                if i + 1 < raw.len() {
                    raw[i + 1].1 = raw[i + 1].1.trim_start().to_string();
                }
            }
        }
        raw.into_iter()
            .filter_map(|(special, text)| match special {
                Some(s) => Some(Piece::Special(s.id)),
                None if text.is_empty() => None,
                None => Some(Piece::Text(text)),
            })
            .collect()
    }

    /// Decodes ids to text as transformers 4.29's slow `decode` does (no clean-up of
    /// tokenization spaces): added tokens stand apart, joined with single spaces; `<s>`,
    /// `</s>` and `<unk>` are written in place with a space before them unless they follow
    /// another one, or dropped with `skip_special`.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> String {
        let mut sub_texts: Vec<String> = Vec::new();
        let mut run: Vec<u32> = Vec::new();
        for &id in ids {
            match self.specials.iter().find(|s| s.id == id) {
                Some(special) if special.strips => {
                    if !run.is_empty() {
                        sub_texts.push(self.tokens_to_string(&std::mem::take(&mut run)));
                    }
                    sub_texts.push(special.text.clone());
                }
                Some(_) if skip_special => {}
                _ => run.push(id),
            }
        }
        if !run.is_empty() {
            sub_texts.push(self.tokens_to_string(&run));
        }
        sub_texts.join(" ")
    }

    /// `LlamaTokenizer.convert_tokens_to_string` of 4.29.
    fn tokens_to_string(&self, ids: &[u32]) -> String {
        let mut out = String::new();
        let mut plain: Vec<u32> = Vec::new();
        let mut previous_special = false;
        for (i, &id) in ids.iter().enumerate() {
            match self.special_text.get(&id) {
                Some(text) => {
                    if !previous_special && i != 0 {
                        out.push(' ');
                    }
                    out.push_str(&self.decode_plain(&plain));
                    out.push_str(text);
                    plain.clear();
                    previous_special = true;
                }
                None => {
                    plain.push(id);
                    previous_special = false;
                }
            }
        }
        out.push_str(&self.decode_plain(&plain));
        out
    }

    fn decode_plain(&self, ids: &[u32]) -> String {
        if ids.is_empty() {
            return String::new();
        }
        match &self.encoder {
            ChunkEncoder::SentencePiece(sp) => sp.decode(ids),
            ChunkEncoder::HuggingFace(tokenizer) => {
                tokenizer.decode(ids, false).unwrap_or_default()
            }
        }
    }
}

enum Piece {
    Special(u32),
    Text(String),
}

/// `added_tokens.json` beside `path`, if present (`{"<im_patch>": 32000, ...}`).
fn read_added_tokens(path: &Path) -> Result<BTreeMap<String, u32>> {
    let added = path.with_file_name("added_tokens.json");
    if !added.is_file() {
        return Ok(BTreeMap::new());
    }
    let text = std::fs::read_to_string(&added)
        .with_context(|| format!("{}: cannot read", added.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: expected {{\"token\": id, ...}}", added.display()))
}
