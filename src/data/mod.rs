//! Data sources of the original (image folders and class splits, the per-class file, ISEKAI
//! episode files, JSON lines) and episodes as batches.

pub mod batch;
pub mod class_file;
pub mod conversation;
pub mod draw;
pub mod eval_episodes;
pub mod image_folder;
pub mod isekai;
pub mod jsonl;
pub mod mix;
pub mod split;
pub mod train_set;
