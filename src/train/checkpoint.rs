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
use crate::tensor::HostTensor;

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
        let (required, optional) = (&state.1, &state.2);
        self.initialise(required.keys())?;
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

impl Trainer {
    /// The model's weights by Keras name (`quant_dense/kernel`, BatchNormalization's moving
    /// statistics included; no optimizer slots), as Keras' `get_weights` gives them, in the
    /// order the model made them. Weights no step has created yet are initialised first.
    pub fn get_weights(&mut self) -> Result<Vec<(String, HostTensor)>> {
        let (names, _) = self.model_weights()?;
        self.initialise(names.iter())?;
        names
            .into_iter()
            .map(|n| {
                let t = self.params.get(&n).ok_or_else(|| Error::unknown("weight", &n, Vec::<String>::new()))?.download()?;
                Ok((n, t))
            })
            .collect()
    }

    /// Keras' `set_weights`, by name: each tensor must be a weight of the model with its shape
    /// (errors name it); weights not given keep their values.
    pub fn set_weights(&mut self, weights: &[(String, HostTensor)]) -> Result<()> {
        let file = TensorFile { tensors: weights.iter().cloned().collect(), metadata: BTreeMap::new() };
        let (names, expected) = self.model_weights()?;
        file.check("set_weights", &BTreeMap::new(), &expected)?;
        self.store(&file, &names)
    }

    /// Keras' `save_weights`: the model's weights in a safetensors file keyed by Keras name,
    /// which `load_weights`, `bitgrad run --weights` and the Keras import read.
    pub fn save_weights(&mut self, path: &Path) -> Result<()> {
        let file = TensorFile { tensors: self.get_weights()?.into_iter().collect(), metadata: BTreeMap::new() };
        file.write(path)
    }

    /// Keras' `load_weights`: every weight of the model from a file `save_weights` (or Python,
    /// keyed by Keras weight name) wrote; errors name the missing, extra or misshapen tensors.
    pub fn load_weights(&mut self, path: &Path) -> Result<()> {
        let file = TensorFile::read(path)?;
        let (names, expected) = self.model_weights()?;
        file.check(&path.display().to_string(), &expected, &BTreeMap::new())?;
        self.store(&file, &names)
    }

    /// The model's weight names, in the order the model made them, and their shapes and types.
    fn model_weights(&mut self) -> Result<(Vec<String>, Expected)> {
        let built = crate::models::build(self.model.as_ref(), 1, crate::layers::Mode::Training)?;
        let names: Vec<String> = built.network.ctx.weights.iter().map(|w| w.name.clone()).collect();
        let state = self.state_variables()?;
        let expected = state.1.iter().chain(&state.2).filter(|(n, _)| names.contains(n)).map(|(n, v)| (n.clone(), v.clone())).collect();
        Ok((names, expected))
    }

    /// Writes checked weights into the trainer's variables, the model's `names` initialised
    /// first so that the others keep their initial values.
    fn store(&mut self, file: &TensorFile, names: &[String]) -> Result<()> {
        self.initialise(names.iter())?;
        let device = self.device().clone();
        file.store(&mut self.params, &device)
    }

    /// Initialises the training step's variables when one of `names` has none yet: planning
    /// binds (and so initialises) every variable; nothing runs.
    fn initialise<'a>(&mut self, mut names: impl Iterator<Item = &'a String>) -> Result<()> {
        if names.any(|n| self.params.get(n).is_none()) {
            let state = self.state_variables()?;
            Plan::new(&self.device().clone(), &state.0, &[], &mut self.params)?;
        }
        Ok(())
    }
}
