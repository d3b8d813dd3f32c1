//! Saving and restoring a [`Trainer`]'s state: every variable of its training and evaluation
//! steps (latent weights, BatchNorm statistics, optimizer slots and iteration counts, metric
//! sums) in a safetensors file, plus the step and epoch counters in its metadata, so that a
//! restored trainer continues exactly as the saved one would have.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::fit::Trainer;
use crate::error::{Error, Result};
use crate::graph::{Graph, Source};
use crate::io::safetensors::{Expected, TensorFile};
use crate::runtime::Plan;

/// The `format` metadata entry of a trainer state file.
pub const FORMAT: &str = crate::io::safetensors::TRAINER_STATE_FORMAT;
/// Its version.
pub const VERSION: &str = "1";

pub use crate::io::safetensors::model_weights;

/// Name, shape and type of every variable of `g`.
fn variables(g: &Graph) -> Expected {
    g.values()
        .iter()
        .filter_map(|v| match &v.source {
            Source::Variable { name, .. } => Some((name.clone(), (v.shape.clone(), v.dtype))),
            _ => None,
        })
        .collect()
}

/// The training step's graph, the variables a state must hold (the training step's) and those
/// it may hold as well (the evaluation step's).
pub(crate) type StateVariables = (Graph, Expected, Expected);

impl Trainer {
    /// The trainer's [`StateVariables`], recorded on first use: the model, loss and optimizer
    /// never change after `compile`.
    fn state_variables(&mut self) -> Result<Arc<StateVariables>> {
        if let Some(s) = &self.state_variables {
            return Ok(s.clone());
        }
        let (train, _, _) = self.record_graph(true, 1)?;
        let (eval, _, _) = self.record_graph(false, 1)?;
        let required = variables(&train);
        let optional = variables(&eval).into_iter().filter(|(n, _)| !required.contains_key(n)).collect();
        let s = Arc::new((train, required, optional));
        self.state_variables = Some(s.clone());
        Ok(s)
    }

    /// Writes the state to `path` (a safetensors file, written atomically). Variables that no
    /// step has created yet are initialised first, so a trainer saved before `fit` holds its
    /// initial weights.
    pub fn save_state(&mut self, path: &Path) -> Result<()> {
        let state = self.state_variables()?;
        let (train, required, optional) = (&state.0, &state.1, &state.2);
        if required.keys().any(|n| self.params.get(n).is_none()) {
            // Planning binds (and so initialises) every variable; nothing runs.
            Plan::new(&self.device().clone(), train, &[], &mut self.params)?;
        }
        let mut file = TensorFile::default();
        for name in required.keys().chain(optional.keys()) {
            if let Some(t) = self.params.get(name) {
                file.tensors.insert(name.clone(), t.download()?);
            }
        }
        file.metadata = BTreeMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("version".to_string(), VERSION.to_string()),
            ("model".to_string(), self.model.name().to_string()),
            ("step".to_string(), self.step.to_string()),
            ("epoch".to_string(), self.epoch.to_string()),
        ]);
        file.write(path)
    }

    /// Restores a state written by [`Trainer::save_state`] for the same model, loss and
    /// optimizer. Every tensor of the training step must be in the file with its shape, and the
    /// file may hold nothing else; otherwise an error names the tensors and nothing is changed.
    pub fn load_state(&mut self, path: &Path) -> Result<()> {
        let file = TensorFile::read(path)?;
        let name = path.display().to_string();
        let bad = |reason: String| Error::BadFile { file: name.clone(), reason };
        file.check_format(&name, "a bitgrad trainer state", FORMAT, VERSION)?;
        let counter = |key: &str| -> Result<usize> {
            file.metadata.get(key).and_then(|v| v.parse().ok()).ok_or_else(|| bad(format!("metadata `{key}` is missing or not a count")))
        };
        let (step, epoch) = (counter("step")?, counter("epoch")?);
        let state = self.state_variables()?;
        file.check(&name, &state.1, &state.2)?;
        let device = self.device().clone();
        file.store(&mut self.params, &device)?;
        self.step = step;
        self.epoch = epoch;
        Ok(())
    }
}

impl Trainer {
    /// Saves a checkpoint: the model as Keras JSON in `json` (see
    /// [`crate::io::keras::export::model_to_json`]) and the state in `state` (see
    /// [`Trainer::save_state`]).
    pub fn save_checkpoint(&mut self, json: &Path, state: &Path) -> Result<()> {
        let text = crate::io::keras::export::model_to_json(self.model.as_ref())?;
        crate::io::write_atomically(json, text.as_bytes())?;
        self.save_state(state)
    }

    /// A trainer from a checkpoint written by [`Trainer::save_checkpoint`], compiled with the
    /// loss, optimizer and metrics given (the same ones as before, for the state to fit), which
    /// continues exactly where the saved one stopped.
    pub fn from_checkpoint(
        json: &Path,
        state: &Path,
        loss: super::Loss,
        optimizer: std::sync::Arc<dyn super::optimizers::Optimizer>,
        metrics: &[super::Metric],
        device: &crate::device::Device,
    ) -> Result<Trainer> {
        let model = crate::io::keras::read_model(json)?;
        let mut t = Trainer::compile(model, loss, optimizer, metrics, device)?;
        t.load_state(state)?;
        Ok(t)
    }
}
