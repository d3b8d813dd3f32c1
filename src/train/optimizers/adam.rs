//! Keras' `Adam`, and `AdamW` (decoupled weight decay).

use super::{slot, Optimizer, Updates};
use crate::error::Result;
use crate::graph::{Graph, UpdateFn, ValueId};
use crate::layers::Weight;
use crate::text::number;
use crate::train::Schedule;

/// Adam, as Keras computes it: with `t` the step (from 1),
/// `alpha = lr sqrt(1 - b2^t) / (1 - b1^t)`, `m += (g - m)(1 - b1)`, `v += (g^2 - v)(1 - b2)`,
/// `w -= alpha m / (sqrt(v) + epsilon)`. With a weight decay `wd` (AdamW), `w -= w wd lr` first.
#[derive(Clone, Debug)]
pub struct Adam {
    /// Name (prefix of its inputs and slots).
    pub name: String,
    /// Learning rate.
    pub learning_rate: Schedule,
    /// Decay of the first moment.
    pub beta_1: f32,
    /// Decay of the second moment.
    pub beta_2: f32,
    /// Added to the root of the second moment.
    pub epsilon: f32,
    /// Decoupled weight decay (AdamW); 0 for Adam.
    pub weight_decay: Schedule,
}

impl Adam {
    /// Keras' defaults: learning rate 0.001, betas 0.9 and 0.999, epsilon 1e-7, no weight decay.
    pub fn new(learning_rate: impl Into<Schedule>) -> Self {
        Adam {
            name: "adam".into(),
            learning_rate: learning_rate.into(),
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            weight_decay: Schedule::Constant(0.0),
        }
    }

    /// Keras' `AdamW` (weight decay 0.004 by default there).
    pub fn w(learning_rate: impl Into<Schedule>, weight_decay: impl Into<Schedule>) -> Self {
        Adam { name: "adamw".into(), weight_decay: weight_decay.into(), ..Adam::new(learning_rate) }
    }

    fn decays(&self) -> bool {
        !matches!(self.weight_decay, Schedule::Constant(d) if d == 0.0)
    }
}

impl Optimizer for Adam {
    fn describe(&self) -> String {
        let (b1, b2, eps) = (number(self.beta_1), number(self.beta_2), number(self.epsilon));
        let decay = match &self.weight_decay {
            Schedule::Constant(w) if *w == 0.0 => String::new(),
            w => format!(", weight_decay {w}"),
        };
        let class = if decay.is_empty() { "Adam" } else { "AdamW" };
        format!("{class} (learning_rate {}, beta_1 {b1}, beta_2 {b2}, epsilon {eps}{decay})", self.learning_rate)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn hyperparameters(&self) -> Vec<(String, Schedule)> {
        let mut h = vec![(format!("{}/learning_rate", self.name), self.learning_rate.clone())];
        if self.decays() {
            h.push((format!("{}/weight_decay", self.name), self.weight_decay.clone()));
        }
        h
    }

    fn update(&self, g: &mut Graph, u: &mut Updates, w: &Weight, grad: ValueId) -> Result<ValueId> {
        // The step size is the same for every variable: recorded once per step.
        let alpha = u.shared(g, &format!("{}/alpha", self.name), |g, u| {
            let lr = u.hyper(g, &self.name, "learning_rate")?;
            let it = u.iterations(g, &self.name)?;
            g.update(UpdateFn::AdamAlpha { beta_1: self.beta_1, beta_2: self.beta_2 }, &[it, lr])
        })?;

        // One fused pass per slot and one for the variable, in Keras' order of operations.
        let m = slot(g, &self.name, w, "m")?;
        let v = slot(g, &self.name, w, "v")?;
        let m_new = g.update(UpdateFn::Moment { beta: self.beta_1 }, &[m, grad])?;
        let v_new = g.update(UpdateFn::SquaredMoment { beta: self.beta_2 }, &[v, grad])?;
        g.assign(m, m_new)?;
        g.assign(v, v_new)?;
        if self.decays() {
            let k = u.shared(g, &format!("{}/decay", self.name), |g, u| {
                let lr = u.hyper(g, &self.name, "learning_rate")?;
                let wd = u.hyper(g, &self.name, "weight_decay")?;
                g.mul(wd, lr)
            })?;
            g.update(UpdateFn::AdamWStep { epsilon: self.epsilon }, &[w.variable, m_new, v_new, alpha, k])
        } else {
            g.update(UpdateFn::AdamStep { epsilon: self.epsilon }, &[w.variable, m_new, v_new, alpha])
        }
    }
}
