//! Keras' `SGD`: plain, with momentum, or Nesterov momentum.

use super::{slot, Optimizer, Updates};
use crate::error::Result;
use crate::graph::{Graph, UpdateFn, ValueId};
use crate::layers::Weight;
use crate::train::Schedule;

/// Stochastic gradient descent. With momentum `m`: `v = m v - lr g`, then `w += v` (or, Nesterov,
/// `w += m v - lr g`).
#[derive(Clone, Debug)]
pub struct Sgd {
    /// Name (prefix of its inputs and slots).
    pub name: String,
    /// Learning rate.
    pub learning_rate: Schedule,
    /// Momentum (0: none, no slot).
    pub momentum: Schedule,
    /// Nesterov momentum.
    pub nesterov: bool,
}

impl Sgd {
    /// Keras' defaults: learning rate 0.01, no momentum.
    pub fn new(learning_rate: impl Into<Schedule>) -> Self {
        Sgd { name: "sgd".into(), learning_rate: learning_rate.into(), momentum: Schedule::Constant(0.0), nesterov: false }
    }

    fn has_momentum(&self) -> bool {
        !matches!(self.momentum, Schedule::Constant(m) if m == 0.0)
    }
}

impl Optimizer for Sgd {
    fn describe(&self) -> String {
        let nesterov = if self.nesterov { ", nesterov" } else { "" };
        format!("SGD (learning_rate {}, momentum {}{nesterov})", self.learning_rate, self.momentum)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn hyperparameters(&self) -> Vec<(String, Schedule)> {
        let mut h = vec![(format!("{}/learning_rate", self.name), self.learning_rate.clone())];
        if self.has_momentum() {
            h.push((format!("{}/momentum", self.name), self.momentum.clone()));
        }
        h
    }

    fn update(&self, g: &mut Graph, u: &mut Updates, w: &Weight, grad: ValueId) -> Result<ValueId> {
        // One fused pass each (shaders/update.wgsl), in Keras' order of operations.
        let lr = u.hyper(g, &self.name, "learning_rate")?;
        if !self.has_momentum() {
            return g.update(UpdateFn::Sgd, &[w.variable, grad, lr]);
        }
        let m = u.hyper(g, &self.name, "momentum")?;
        let v = slot(g, &self.name, w, "momentum")?;
        let v_new = g.update(UpdateFn::Velocity, &[v, grad, lr, m])?;
        g.assign(v, v_new)?;
        if self.nesterov {
            g.update(UpdateFn::NesterovStep, &[w.variable, v_new, grad, lr, m])
        } else {
            g.add(w.variable, v_new)
        }
    }
}
