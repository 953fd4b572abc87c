//! Data sources of the original: the per-class file, ISEKAI episode files, JSON lines.

pub mod batch;
pub mod class_file;
pub mod isekai;
pub mod jsonl;
pub mod train_set;
