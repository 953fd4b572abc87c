//! Checkpoints of a run in `OUT/checkpoint/`: `model-N.bpk` (trainable tensors only),
//! `optim-N.bpk`, `scheduler-N.bpk` (Burn's records, written by Burn's checkpointer) and
//! `state-N.json` (where the data stream and the step count stand). Every file is written
//! to a scratch name and renamed, so one that exists is whole; the last good checkpoint is the
//! highest `N` with all four files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::store::ModuleRecord;
use burn::train::checkpoint::{
    Checkpoint, Checkpointer, CheckpointerError, CheckpointingAction, CheckpointingStrategy,
};
use burn::train::metric::store::EventStoreClient;
use serde::{Deserialize, Serialize};

use crate::model_folder::is_adapter;

/// Which tensors of the model record a checkpoint keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Everything the trainable module holds (full fine-tuning: LLaMA and projector).
    All,
    /// LoRA adapters and the projector (the frozen LLaMA bases are left out).
    AdaptersAndProjector,
}

impl Keep {
    /// Whether the tensor at record path `name` is kept.
    pub fn keeps(self, name: &str) -> bool {
        match self {
            Keep::All => true,
            Keep::AdaptersAndProjector => name.starts_with("projector.") || is_adapter(name),
        }
    }
}

/// Writes the model record, keeping only what [`Keep`] says, atomically.
pub struct ModelCheckpointer {
    directory: PathBuf,
    keep: Keep,
}

impl ModelCheckpointer {
    /// Checkpoints `model-N.bpk` in `directory`.
    pub fn new(directory: &Path, keep: Keep) -> Self {
        Self {
            directory: directory.to_path_buf(),
            keep,
        }
    }
}

/// Path of a run's checkpoint file `NAME-N.bpk`.
pub fn checkpoint_file(directory: &Path, name: &str, number: usize) -> PathBuf {
    directory.join(format!("{name}-{number}.bpk"))
}

/// Writes `record`'s tensors that `keep` accepts to `path` (scratch file + rename).
pub fn write_record(record: ModuleRecord, keep: Keep, path: &Path) -> Result<usize> {
    let bytes = record
        .checkpoint_into_bytes()
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let tensors: Vec<burn_pack::Tensor> = burn_pack::Reader::from_bytes(bytes)
        .and_then(burn_pack::Reader::into_tensors)
        .map_err(|err| anyhow::anyhow!("{err}"))?
        .into_iter()
        .filter(|tensor| keep.keeps(&tensor.name))
        .collect();
    let kept = tensors.len();
    burn_pack::Writer::new(tensors)
        .write_to_file(path)
        .with_context(|| format!("{}: cannot write the checkpoint", path.display()))?;
    Ok(kept)
}

impl Checkpointer<ModuleRecord> for ModelCheckpointer {
    fn save(&self, number: usize, record: ModuleRecord) -> Result<(), CheckpointerError> {
        let path = checkpoint_file(&self.directory, "model", number);
        write_record(record, self.keep, &path)
            .map(|_| ())
            .map_err(|err| CheckpointerError::Unknown(format!("{err:#}")))
    }

    fn delete(&self, number: usize) -> Result<(), CheckpointerError> {
        remove_if_present(&checkpoint_file(&self.directory, "model", number))
    }

    fn restore(&self, number: usize) -> Result<ModuleRecord, CheckpointerError> {
        let path = checkpoint_file(&self.directory, "model", number);
        let record = ModuleRecord::load(&path)
            .map_err(|err| CheckpointerError::Unknown(format!("{}: {err}", path.display())))?;
        Ok(record.allow_partial(self.keep != Keep::All))
    }
}

fn remove_if_present(path: &Path) -> Result<(), CheckpointerError> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(CheckpointerError::IOError(err))
        }
        _ => Ok(()),
    }
}

/// Save every checkpoint it is asked for; delete the one `keep` saves back.
pub struct KeepLast {
    keep: usize,
    saved: Vec<usize>,
}

impl KeepLast {
    /// Keeps the last `keep` checkpoints (`existing`: those already on disk, oldest first).
    pub fn new(keep: usize, existing: Vec<usize>) -> Self {
        Self {
            keep,
            saved: existing,
        }
    }
}

impl CheckpointingStrategy for KeepLast {
    fn checkpointing(
        &mut self,
        number: usize,
        _store: &EventStoreClient,
    ) -> Vec<CheckpointingAction> {
        self.saved.push(number);
        let mut actions = vec![CheckpointingAction::Save];
        while self.saved.len() > self.keep {
            actions.push(CheckpointingAction::Delete(self.saved.remove(0)));
        }
        actions
    }
}

/// Where a run stands at a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Optimiser steps done (the checkpoint's number).
    pub step: usize,
    /// Episodes of the run's stream consumed.
    pub episodes: usize,
    /// The run's settings that must not change on resume (sampler, training, data, model).
    pub settings: serde_json::Value,
}

impl RunState {
    /// `state-N.json` in `directory`.
    pub fn path(directory: &Path, step: usize) -> PathBuf {
        directory.join(format!("state-{step}.json"))
    }

    /// Writes the state (scratch file + rename).
    pub fn write(&self, directory: &Path) -> Result<()> {
        let path = Self::path(directory, self.step);
        let scratch = path.with_extension("json.tmp");
        std::fs::write(&scratch, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("{}: cannot write", scratch.display()))?;
        std::fs::rename(&scratch, &path)
            .with_context(|| format!("{}: cannot write", path.display()))?;
        Ok(())
    }

    /// Reads `state-N.json`.
    pub fn read(directory: &Path, step: usize) -> Result<Self> {
        let path = Self::path(directory, step);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a run state", path.display()))
    }

    /// Refuses to resume under other settings, naming the first that differs.
    pub fn check_settings(&self, settings: &serde_json::Value) -> Result<()> {
        let (Some(old), Some(new)) = (self.settings.as_object(), settings.as_object()) else {
            return Ok(());
        };
        for (section, value) in new {
            let recorded = old.get(section).unwrap_or(&serde_json::Value::Null);
            if recorded != value {
                let found = crate::identity::differences(recorded, value, 3);
                let what = if section == "inputs" {
                    "the files the run reads differ from".to_string()
                } else {
                    format!("the config's [{section}] differs from")
                };
                bail!(
                    "{what} the run being resumed (checkpoint {}: {}): resume with the config \
                     and files the run started with, or start a new --out",
                    self.step,
                    found.join("; ")
                );
            }
        }
        Ok(())
    }
}

/// Complete checkpoints in `directory` (all four files present), oldest first.
pub fn complete_checkpoints(directory: &Path) -> Vec<usize> {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return Vec::new();
    };
    let mut numbers: Vec<usize> = entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("state-")?
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .filter(|number| {
            ["model", "optim", "scheduler"]
                .iter()
                .all(|name| checkpoint_file(directory, name, *number).is_file())
        })
        .collect();
    numbers.sort_unstable();
    numbers
}
