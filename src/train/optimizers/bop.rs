//! Larq's `Bop`, the binary optimizer: no latent weights, a weight flips when the moving average
//! of its gradient agrees with it by more than a threshold.

use super::{slot, Optimizer, Updates};
use crate::error::Result;
use crate::graph::{Graph, UpdateFn, ValueId};
use crate::layers::Weight;
use crate::train::Schedule;

/// Bop: `m += gamma (g - m)`, then `w = sign(-tf.sign(w m - threshold) w)` (Larq's sign, +1 at 0):
/// a weight flips where `w m > threshold`, and becomes +1 where `w m` equals it.
#[derive(Clone, Debug)]
pub struct Bop {
    /// Name (prefix of its inputs and slots).
    pub name: String,
    /// Flip threshold.
    pub threshold: Schedule,
    /// Adaptivity rate of the gradient average.
    pub gamma: Schedule,
}

impl Bop {
    /// Larq's defaults: threshold 1e-8, gamma 1e-4.
    pub fn new() -> Self {
        Bop { name: "bop".into(), threshold: Schedule::Constant(1e-8), gamma: Schedule::Constant(1e-4) }
    }

    /// Larq's `Bop.is_binary_variable`: weights whose forward pass sees 1 bit.
    pub fn is_binary_variable(w: &Weight) -> bool {
        w.precision == 1
    }
}

impl Default for Bop {
    fn default() -> Self {
        Bop::new()
    }
}

impl Optimizer for Bop {
    fn describe(&self) -> String {
        format!("Bop (threshold {}, gamma {})", self.threshold, self.gamma)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn hyperparameters(&self) -> Vec<(String, Schedule)> {
        vec![(format!("{}/threshold", self.name), self.threshold.clone()), (format!("{}/gamma", self.name), self.gamma.clone())]
    }

    fn update(&self, g: &mut Graph, u: &mut Updates, w: &Weight, grad: ValueId) -> Result<ValueId> {
        let gamma = u.hyper(g, &self.name, "gamma")?;
        let threshold = u.hyper(g, &self.name, "threshold")?;
        // One fused pass each (shaders/update.wgsl), in Larq's order of operations; the flip takes
        // tf.sign(w m - threshold) in {-1, 0, 1} as (w m > t) - (t > w m).
        let m = slot(g, &self.name, w, "m")?;
        let m_new = g.update(UpdateFn::BopMoment, &[m, grad, gamma])?;
        g.assign(m, m_new)?;
        g.update(UpdateFn::BopFlip, &[w.variable, m_new, threshold])
    }
}
