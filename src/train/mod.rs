//! LCL fine-tuning with Burn's `Learner`: the frozen-tower model and its loss
//! ([`trainer`]), the run's episode stream and learning-rate schedule ([`schedule`]), the
//! training loop ([`strategy`]), checkpoints ([`checkpoint`]), LoRA ([`lora`]) and the
//! `lcl train` job ([`job`]).

pub mod checkpoint;
pub mod clip;
pub mod export;
pub mod grads;
pub mod grow;
pub mod init;
pub mod job;
pub mod log;
pub mod lora;
pub mod output;
pub mod schedule;
pub mod strategy;
pub mod trainer;

pub use job::{TrainRequest, TrainSummary, train};
pub use trainer::LclTrainer;
