//! Keras' epoch-end callbacks that `fit` runs: [`EarlyStopping`] and [`ModelCheckpoint`], both
//! watching a logged value.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// Keras' `EarlyStopping`: stop when `monitor` has not improved by more than `min_delta` for
/// `patience` epochs (lower is better for names containing "loss", higher otherwise).
#[derive(Clone, Debug)]
pub struct EarlyStopping {
    /// A logged name, e.g. `val_loss` or `val_accuracy`.
    pub monitor: String,
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// Smallest change that counts as an improvement.
    pub min_delta: f64,
}

/// Keras' `ModelCheckpoint`: after each epoch, saves the trainer's state (weights, statistics,
/// optimizer slots and counters; see [`super::Trainer::save_state`]) to `path`, where `{epoch}`
/// is replaced by the epoch's number from 1, and the model as Keras JSON beside it (the same
/// name with `.json`; see [`super::Trainer::save_checkpoint`]). With `save_best_only`, only when
/// `monitor` improved on every earlier epoch.
#[derive(Clone, Debug)]
pub struct ModelCheckpoint {
    /// The file to write; `{epoch}` in it becomes the epoch number.
    pub path: PathBuf,
    /// A logged name, e.g. `val_loss`.
    pub monitor: String,
    /// Save only epochs that improve `monitor`.
    pub save_best_only: bool,
    /// Save the state only, without the model's JSON (for models with custom layers, which have
    /// no Keras config).
    pub save_weights_only: bool,
}

impl ModelCheckpoint {
    /// Saves every epoch to `path` (Keras' defaults: monitor `val_loss`, not best only, the
    /// model too).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ModelCheckpoint { path: path.into(), monitor: "val_loss".into(), save_best_only: false, save_weights_only: false }
    }

    /// How many epochs' paths [`ModelCheckpoint::check`] checks when `{epoch}` numbers them
    /// (a bound, so an absurd epoch count cannot make the check itself endless).
    pub const CHECKED_EPOCHS: usize = 10_000;

    /// The file for `epoch` (from 0).
    pub fn path_for(&self, epoch: usize) -> PathBuf {
        PathBuf::from(self.path.to_string_lossy().replace("{epoch}", &(epoch + 1).to_string()))
    }

    /// The files a save after `epoch` (from 0) writes: the state, and the model's JSON beside it
    /// unless `save_weights_only`.
    pub fn files_for(&self, epoch: usize) -> Vec<PathBuf> {
        let state = self.path_for(epoch);
        match self.save_weights_only {
            true => vec![state],
            false => vec![state.with_extension("json"), state],
        }
    }

    /// Checks the rule on the name alone: unless `save_weights_only`, the state file ends in
    /// `.safetensors`, so that the model's JSON beside it (the same name with `.json`) is another
    /// file. `arg` names the setting in the error (`path`, or a command-line option).
    pub fn check_name(&self, arg: &'static str) -> Result<()> {
        let state = self.path_for(0);
        if !self.save_weights_only && state.extension().is_none_or(|e| e != "safetensors") {
            return Err(Error::invalid(
                "ModelCheckpoint",
                arg,
                format!(
                    "`{}` must end in .safetensors: the state is a safetensors file and the model's JSON is written beside it as `{}`",
                    self.path.display(),
                    state.with_extension("json").display()
                ),
            ));
        }
        Ok(())
    }

    /// Checks, before training, that the saves of epochs `0..epochs` can be written without
    /// harm: the name follows [`ModelCheckpoint::check_name`], and every folder exists and is
    /// writable.
    pub fn check(&self, epochs: usize) -> Result<()> {
        self.check_name("path")?;
        // `{epoch}` may also stand in a folder's name, so every epoch's folder is checked.
        for e in 0..epochs.clamp(1, Self::CHECKED_EPOCHS) {
            let files = self.files_for(e);
            let outputs: Vec<(&'static str, &std::path::Path)> = files.iter().map(|p| ("checkpoint", p.as_path())).collect();
            crate::io::check_outputs(&[], &outputs)?;
            if !self.path.to_string_lossy().contains("{epoch}") {
                break;
            }
        }
        Ok(())
    }
}

/// The best value of a monitored name so far (lower is better for names containing "loss", as
/// Keras' `mode="auto"` decides), and the epoch it was logged.
#[derive(Clone, Debug, Default)]
pub(crate) struct Best {
    best: Option<(f64, usize)>,
}

impl Best {
    /// Records `value` of `monitor` logged at `epoch`; true when it beats the best so far by
    /// more than `min_delta` (or is the first).
    pub(crate) fn improves(&mut self, monitor: &str, value: f64, epoch: usize, min_delta: f64) -> bool {
        let lower = monitor.contains("loss");
        let better = match self.best {
            None => true,
            Some((b, _)) if lower => value < b - min_delta,
            Some((b, _)) => value > b + min_delta,
        };
        if better {
            self.best = Some((value, epoch));
        }
        better
    }

    /// Epochs since the best one.
    pub(crate) fn since(&self, epoch: usize) -> usize {
        self.best.map_or(0, |(_, at)| epoch - at)
    }
}

/// The logged value `name`, or an error listing what was logged.
pub(crate) fn monitored(values: &BTreeMap<String, f64>, name: &str) -> Result<f64> {
    values.get(name).copied().ok_or_else(|| Error::Unknown {
        kind: "monitored value",
        name: format!("{name} (logged: {})", values.keys().cloned().collect::<Vec<_>>().join(", ")),
    })
}
