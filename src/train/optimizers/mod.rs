//! Optimizers whose updates are recorded into the training step and run on the device: [`Sgd`]
//! (momentum, Nesterov), [`Adam`] (and AdamW with decoupled weight decay), Larq's [`Bop`] for
//! binary weights, and Larq's [`CaseOptimizer`] routing variables to optimizers by predicate.
//!
//! Hyperparameters are step inputs named `optimizer/hyperparameter` (e.g. `adam/learning_rate`),
//! fed from their [`Schedule`]s before each step, so schedules and a
//! [`crate::train::HyperparameterScheduler`] change values without re-planning. Slots (moments)
//! are variables named `optimizer/variable/slot`, and each optimizer counts its steps in
//! `optimizer/iterations`, as Keras does.

mod adam;
mod bop;
mod case;
mod sgd;

pub use adam::Adam;
pub use bop::Bop;
pub use case::{CaseOptimizer, Predicate};
pub use sgd::Sgd;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::Result;
use crate::graph::{Graph, Init, ValueId};
use crate::layers::Weight;
use crate::tensor::DType;
use crate::train::Schedule;

/// An optimizer by Keras name with Keras' defaults (`"adam"`, `"adamw"`, `"sgd"`, and Larq's
/// `"bop"`), as `compile(optimizer="adam")` takes it.
pub fn from_name(name: &str) -> Result<Arc<dyn Optimizer>> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "adam" => Arc::new(Adam::new(1e-3)),
        "adamw" => Arc::new(Adam { weight_decay: Schedule::Constant(4e-3), ..Adam::new(1e-3) }),
        "sgd" => Arc::new(Sgd::new(0.01)),
        "bop" => Arc::new(Bop::new()),
        _ => return Err(crate::error::Error::unknown("optimizer", name, ["adam", "adamw", "sgd", "bop"])),
    })
}

impl crate::layers::Arg<Arc<dyn Optimizer>> for &str {
    fn resolve(self) -> Result<Arc<dyn Optimizer>> {
        from_name(self)
    }
}

impl<O: Optimizer + 'static> crate::layers::Arg<Arc<dyn Optimizer>> for O {
    fn resolve(self) -> Result<Arc<dyn Optimizer>> {
        Ok(Arc::new(self))
    }
}

impl crate::layers::Arg<Arc<dyn Optimizer>> for Arc<dyn Optimizer> {
    fn resolve(self) -> Result<Arc<dyn Optimizer>> {
        Ok(self)
    }
}

/// An optimizer: records the update of each variable it is given.
pub trait Optimizer: std::fmt::Debug + Send + Sync {
    /// Its name, the prefix of its hyperparameter inputs and slots.
    fn name(&self) -> &str;
    /// Its hyperparameters as (input name `optimizer/hyperparameter`, schedule over its
    /// iterations), including those of the optimizers it routes to.
    fn hyperparameters(&self) -> Vec<(String, Schedule)>;
    /// Records the update of `w` (whose gradient is `grad`) and returns the new value, before
    /// the variable's constraint. Reading hyperparameters and slots goes through `u`.
    fn update(&self, g: &mut Graph, u: &mut Updates, w: &Weight, grad: ValueId) -> Result<ValueId>;
    /// Checks its configuration against the variables it will train (e.g. a
    /// [`CaseOptimizer`]'s claims) and returns its warnings (Larq's for a variable no optimizer
    /// trains); called before any update is recorded.
    fn prepare(&self, _weights: &[&Weight]) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// A line for people naming the optimizer and its settings, e.g. `Adam (learning_rate
    /// 0.001, beta_1 0.9, beta_2 0.999, epsilon 1e-7)`; by default its name and hyperparameters.
    fn describe(&self) -> String {
        let hyper: Vec<String> = self.hyperparameters().iter().map(|(n, s)| format!("{} {s}", n.rsplit('/').next().unwrap_or(n))).collect();
        format!("{} ({})", self.name(), hyper.join(", "))
    }
}

/// What recording updates collects: the hyperparameter inputs and the iteration counters.
#[derive(Debug, Default)]
pub struct Updates {
    /// Hyperparameter inputs by full name (`optimizer/hyperparameter`).
    pub inputs: BTreeMap<String, ValueId>,
    /// Iteration counters by optimizer name.
    pub iterations: BTreeMap<String, ValueId>,
    /// Values an optimizer computes once per step for all its variables, by key.
    pub shared: BTreeMap<String, ValueId>,
}

impl Updates {
    /// The `[1]` input carrying hyperparameter `hyper` of optimizer `opt`.
    pub fn hyper(&mut self, g: &mut Graph, opt: &str, hyper: &str) -> Result<ValueId> {
        let name = format!("{opt}/{hyper}");
        if let Some(&v) = self.inputs.get(&name) {
            return Ok(v);
        }
        let v = g.input(&name, [1], DType::F32)?;
        self.inputs.insert(name, v);
        Ok(v)
    }

    /// The step count of optimizer `opt` before this step (`opt/iterations`), advanced by one at
    /// the end of the step.
    pub fn iterations(&mut self, g: &mut Graph, opt: &str) -> Result<ValueId> {
        if let Some(&v) = self.iterations.get(opt) {
            return Ok(v);
        }
        let name = format!("{opt}/iterations");
        let v = match g.find_variable(&name) {
            Some(v) => v,
            None => g.variable(&name, [1], Init::Zeros)?,
        };
        self.iterations.insert(opt.to_string(), v);
        Ok(v)
    }

    /// The value `key` (e.g. `adam/alpha`), recorded by `build` the first time it is asked for in
    /// this step, so that a per-step scalar is computed once, not once per variable.
    pub fn shared(&mut self, g: &mut Graph, key: &str, build: impl FnOnce(&mut Graph, &mut Self) -> Result<ValueId>) -> Result<ValueId> {
        if let Some(&v) = self.shared.get(key) {
            return Ok(v);
        }
        let v = build(g, self)?;
        self.shared.insert(key.to_string(), v);
        Ok(v)
    }

    /// Records the iteration increments; call after every update.
    pub fn finish(&self, g: &mut Graph) -> Result<()> {
        for &it in self.iterations.values() {
            let next = g.unary(crate::graph::UnaryOp::Offset(1.0), it)?;
            g.assign(it, next)?;
        }
        Ok(())
    }
}

/// A zero-initialised slot variable `opt/variable/slot` shaped like `w`.
pub(crate) fn slot(g: &mut Graph, opt: &str, w: &Weight, slot: &str) -> Result<ValueId> {
    let shape = g.value(w.variable).shape.clone();
    let name = format!("{opt}/{}/{slot}", w.name);
    match g.find_variable(&name) {
        Some(v) => Ok(v),
        None => g.variable(&name, shape, Init::Zeros),
    }
}
