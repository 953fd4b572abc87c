//! LCL: Link-Context Learning for multimodal LLMs, in Burn.
//!
//! The application crate: tokenizer and prompt template, image preprocessing, backend
//! selection, and the `lcl` command line. The model itself lives in `lcl-model`.

pub mod assets;
pub mod backend;
pub mod bench;
pub mod config;
pub mod data;
pub mod episode;
pub mod eval;
pub mod hf_checkpoint;
pub mod hub;
pub mod identity;
pub mod image;
pub mod infer;
pub mod model_folder;
pub mod neighbors;
pub mod npy;
pub mod parity;
pub mod progress;
pub mod serve;
pub mod template;
pub mod tokenizer;
pub mod train;
pub mod world;
