//! Keras weight regularizers: penalties on a layer's latent weights that enter the loss.

use crate::error::{Error, Result};
use crate::graph::{Graph, UnaryOp, ValueId};

/// `l1 * sum(|w|) + l2 * sum(w^2)` (Keras' `L1L2`; `l1` and `l2` are its special cases).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Regularizer {
    /// L1 factor.
    pub l1: f32,
    /// L2 factor.
    pub l2: f32,
}

impl Regularizer {
    /// Keras' `l1(l1=0.01)`.
    pub fn l1(l1: f32) -> Self {
        Regularizer { l1, l2: 0.0 }
    }

    /// Keras' `l2(l2=0.01)`.
    pub fn l2(l2: f32) -> Self {
        Regularizer { l1: 0.0, l2 }
    }

    /// Keras' `l1_l2(l1=0.01, l2=0.01)`.
    pub fn l1_l2(l1: f32, l2: f32) -> Self {
        Regularizer { l1, l2 }
    }

    /// By Keras name, with Keras' default factor 0.01.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::from_keras(name, |_, default| Ok(default))
    }

    /// By Keras class (`L1`, `L2`, `L1L2`) or name, reading each parameter through
    /// `param(name, Keras' default)`. Keras' defaults differ between the class `L1L2` (0, 0)
    /// and the name `l1_l2` (0.01, 0.01).
    pub fn from_keras(class: &str, mut param: impl FnMut(&str, f32) -> Result<f32>) -> Result<Self> {
        match class {
            "L1" | "l1" => Ok(Self::l1(param("l1", 0.01)?)),
            "L2" | "l2" => Ok(Self::l2(param("l2", 0.01)?)),
            "L1L2" => Ok(Self::l1_l2(param("l1", 0.0)?, param("l2", 0.0)?)),
            "l1_l2" => Ok(Self::l1_l2(param("l1", 0.01)?, param("l2", 0.01)?)),
            other => Err(Error::unknown("regularizer", other, ["l1", "l2", "l1_l2"])),
        }
    }

    /// Records Keras' activity penalty of a layer output `y`: the penalty of `y` divided by the
    /// batch size (its first axis), once per call of the layer.
    pub fn activity_penalty(&self, g: &mut Graph, y: ValueId) -> Result<ValueId> {
        let batch = g.value(y).shape.dims().first().copied().unwrap_or(1);
        let p = self.penalty(g, y)?;
        g.scale(p, 1.0 / batch as f32)
    }

    /// Records the scalar penalty of `w`.
    pub fn penalty(&self, g: &mut Graph, w: ValueId) -> Result<ValueId> {
        if !(self.l1.is_finite() && self.l2.is_finite() && self.l1 >= 0.0 && self.l2 >= 0.0) {
            return Err(Error::invalid("regularizer", "l1/l2", format!("factors {} and {} must be finite and >= 0", self.l1, self.l2)));
        }
        let axes: Vec<usize> = (0..g.value(w).shape.rank()).collect();
        let mut total: Option<ValueId> = None;
        for (factor, op) in [(self.l1, UnaryOp::Abs), (self.l2, UnaryOp::Square)] {
            if factor == 0.0 {
                continue;
            }
            let t = g.unary(op, w)?;
            let t = g.sum(t, &axes, false)?;
            let t = g.scale(t, factor)?;
            total = Some(match total {
                None => t,
                Some(acc) => g.add(acc, t)?,
            });
        }
        match total {
            Some(t) => Ok(t),
            None => g.fill(Vec::<usize>::new(), 0.0),
        }
    }
}
