//! Keras' callbacks: the [`Callback`] trait whose hooks `fit` calls (programs write their own;
//! [`super::tensorboard::TensorBoard`] is one), and the epoch-end [`EarlyStopping`] and
//! [`ModelCheckpoint`] that the fit options hold, both watching a logged value.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

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
    values.get(name).copied().ok_or_else(|| Error::unknown("monitored value", name, values.keys().cloned()))
}

/// The values a hook sees, by name: `loss`, metrics, `val_*`, `flip_ratio/*` and the optimizer's
/// hyperparameters (see [`Callback`]).
pub type Logs = BTreeMap<String, f64>;

/// A callback as [`super::FitOptions::callbacks`] holds it: shared, so that the program keeps a
/// handle to read what its callback gathered once `fit` returns.
pub type SharedCallback = Arc<Mutex<dyn Callback>>;

/// What a hook asks of the training loop: Keras' `model.stop_training = True` is
/// `Ok(Control::Stop)`.
#[must_use]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Control {
    /// Go on training.
    #[default]
    Continue,
    /// Stop after this batch (the epoch still ends: its metrics are read, validation runs and
    /// `on_epoch_end` is called) or, from `on_epoch_end`, after this epoch.
    Stop,
}

/// Keras' `Callback`: hooks that [`super::Trainer::fit`] calls, each a no-op unless implemented.
///
/// The order is Keras': `on_train_begin`; per epoch `on_epoch_begin(epoch)`, per batch
/// `on_train_batch_begin(batch)` and `on_train_batch_end(batch, logs)`, then, when there is
/// validation data, `on_test_begin` and `on_test_end(logs)`, then `on_epoch_end(epoch, logs)`;
/// last `on_train_end(logs)`. Several callbacks are called in the list's order at each point;
/// the built-in [`ModelCheckpoint`] and [`EarlyStopping`] of the options act at an epoch's end
/// before the callbacks' `on_epoch_end`.
///
/// Numbers: `epoch` counts the trainer's epochs from 0 across fits (a second `fit` continues
/// where the first ended, as Keras' `initial_epoch`); `batch` is the batch's index in its epoch,
/// from 0.
///
/// Logs:
/// - `on_epoch_end`: the epoch's [`super::EpochLog::values`] (`loss`, metrics, `val_*`,
///   `flip_ratio/*`), and the optimizer's hyperparameters as the epoch's last step used them
///   (`learning_rate`, `momentum`, `gamma`, ...: an optimizer's hyperparameter `adam/learning_rate`
///   is logged as `learning_rate` unless two optimizers both have one, then by its full name).
///   These are not in the history.
/// - `on_train_batch_end`: metrics are read back from the device only at some batches, as
///   reading stalls the queue: every [`super::FitOptions::log_every`] steps of an epoch, and at
///   the batches for which a callback's [`Callback::wants_batch_logs`] is true. There the logs
///   hold `loss` and the metrics as means over the epoch's batches so far (Keras' running
///   values), the flip ratios after this batch, and the hyperparameters this batch used; at the
///   other batches they are empty.
/// - `on_test_end`: the validation loss and metrics, without the `val_` prefix.
/// - `on_train_end`: the last epoch's logs.
///
/// An `Err` from any hook ends `fit` with that error at once (no later hook runs, not even
/// `on_train_end`), so a callback's errors should name the callback.
///
/// ```no_run
/// # fn run(trainer: &mut bitgrad::train::Trainer, data: &bitgrad::train::Dataset) -> bitgrad::Result<()> {
/// use bitgrad::train::callbacks::{shared, Callback, Control, Logs};
/// use bitgrad::train::FitOptions;
///
/// /// Stops once the training loss is below a target; remembers the epochs' losses.
/// struct StopAtLoss { target: f64, losses: Vec<f64> }
///
/// impl Callback for StopAtLoss {
///     fn on_epoch_end(&mut self, _epoch: usize, logs: &Logs) -> bitgrad::Result<Control> {
///         self.losses.push(logs["loss"]);
///         Ok(if logs["loss"] < self.target { Control::Stop } else { Control::Continue })
///     }
/// }
///
/// let stop = shared(StopAtLoss { target: 0.1, losses: Vec::new() });
/// let history = trainer.fit(data, None, &FitOptions { epochs: 100, callbacks: vec![stop.clone()], ..FitOptions::default() })?;
/// assert_eq!(stop.lock().unwrap().losses.len(), history.epochs.len());
/// # Ok(())
/// # }
/// ```
pub trait Callback: Send {
    /// The name in `Debug` output; the type's name unless implemented.
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }
    /// Before the first epoch, after `fit` has checked its data and planned its steps.
    fn on_train_begin(&mut self) -> Result<()> {
        Ok(())
    }
    /// After the last epoch trained, stopped or not.
    fn on_train_end(&mut self, _logs: &Logs) -> Result<()> {
        Ok(())
    }
    /// Before the epoch's first batch.
    fn on_epoch_begin(&mut self, _epoch: usize) -> Result<()> {
        Ok(())
    }
    /// After the epoch's training and validation; [`Control::Stop`] ends training after it.
    fn on_epoch_end(&mut self, _epoch: usize, _logs: &Logs) -> Result<Control> {
        Ok(Control::Continue)
    }
    /// Before the batch's step.
    fn on_train_batch_begin(&mut self, _batch: usize) -> Result<()> {
        Ok(())
    }
    /// Asked after `on_train_batch_begin`: true when this batch's `on_train_batch_end` needs
    /// the metrics read back (see the logs above).
    fn wants_batch_logs(&self, _batch: usize) -> bool {
        false
    }
    /// After the batch's step; [`Control::Stop`] ends training after this batch's epoch.
    fn on_train_batch_end(&mut self, _batch: usize, _logs: &Logs) -> Result<Control> {
        Ok(Control::Continue)
    }
    /// Before the validation set is evaluated at an epoch's end.
    fn on_test_begin(&mut self) -> Result<()> {
        Ok(())
    }
    /// After the validation set was evaluated.
    fn on_test_end(&mut self, _logs: &Logs) -> Result<()> {
        Ok(())
    }
}

/// A callback's [`Callback::name`], so that the options holding callbacks can be printed.
impl std::fmt::Debug for dyn Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A callback made shareable for [`super::FitOptions::callbacks`]: keep a clone of the result
/// to read the callback after `fit`.
pub fn shared<C: Callback + 'static>(callback: C) -> Arc<Mutex<C>> {
    Arc::new(Mutex::new(callback))
}

/// Runs `hook` on each callback in order; the first error ends the run. A callback whose lock
/// was poisoned by a panic in an earlier hook is still called: its state is its own business.
pub(crate) fn each(callbacks: &[SharedCallback], mut hook: impl FnMut(&mut dyn Callback) -> Result<()>) -> Result<()> {
    for c in callbacks {
        hook(&mut *c.lock().unwrap_or_else(|e| e.into_inner()))?;
    }
    Ok(())
}

/// [`each`] for hooks that may stop training: every callback is called, and the answer is
/// [`Control::Stop`] when any asked for it.
pub(crate) fn each_control(callbacks: &[SharedCallback], mut hook: impl FnMut(&mut dyn Callback) -> Result<Control>) -> Result<Control> {
    let mut control = Control::Continue;
    each(callbacks, |c| {
        if hook(c)? == Control::Stop {
            control = Control::Stop;
        }
        Ok(())
    })?;
    Ok(control)
}

/// True when a callback's [`Callback::wants_batch_logs`] is, for `batch`.
pub(crate) fn any_wants_batch_logs(callbacks: &[SharedCallback], batch: usize) -> bool {
    callbacks.iter().any(|c| c.lock().unwrap_or_else(|e| e.into_inner()).wants_batch_logs(batch))
}
