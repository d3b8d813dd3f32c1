//! Activations by Keras/Larq name: the standard ones, Larq's `hard_tanh` and `leaky_tanh`, and
//! every quantizer (`activation: "ste_sign"`).

use crate::error::{Error, Result};
use crate::graph::{BinaryOp, Graph, UnaryOp, ValueId};
use crate::quantizers::Quantizer;

/// An activation function.
#[derive(Clone, Debug, PartialEq)]
pub enum Activation {
    /// Identity (`None` or `"linear"` in Keras).
    Linear,
    /// max(x, 0).
    Relu,
    /// 1 / (1 + e^-x).
    Sigmoid,
    /// tanh(x).
    Tanh,
    /// Softmax over the last axis.
    Softmax,
    /// Larq's `hard_tanh`: clip(x, -1, 1).
    HardTanh,
    /// Larq's `leaky_tanh`: clip(x, -1, 1) + (max(x, 1) - 1) alpha + (min(x, -1) + 1) alpha.
    LeakyTanh {
        /// Slope outside [-1, 1] (default 0.2).
        alpha: f32,
    },
    /// Larq Zoo's `clip_by_value_activation` (DoReFa-Net): clip(x, 0, 1), the gradient passing
    /// where 0 <= x <= 1 (TensorFlow's `clip_by_value`).
    ClipByValue,
    /// A quantizer used as an activation.
    Quantizer(Quantizer),
}

impl Activation {
    /// By Keras/Larq name; any quantizer alias or class name is accepted too.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "linear" | "" => Activation::Linear,
            "relu" => Activation::Relu,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "softmax" => Activation::Softmax,
            "hard_tanh" => Activation::HardTanh,
            "leaky_tanh" => Activation::LeakyTanh { alpha: 0.2 },
            "clip_by_value_activation" => Activation::ClipByValue,
            other => Activation::Quantizer(Quantizer::from_name(other).map_err(|e| {
                let quantizers = match e {
                    Error::Unknown { known, .. } => known,
                    _ => Vec::new(),
                };
                let names = ["linear", "relu", "sigmoid", "tanh", "softmax", "hard_tanh", "leaky_tanh", "clip_by_value_activation"]
                    .map(str::to_string);
                Error::unknown("activation", other, names.into_iter().chain(quantizers))
            })?),
        })
    }

    /// Records the activation of `x`.
    pub fn apply(&self, g: &mut Graph, x: ValueId) -> Result<ValueId> {
        match self {
            Activation::Linear => Ok(x),
            Activation::Relu => g.unary(UnaryOp::Relu, x),
            Activation::Sigmoid => g.unary(UnaryOp::Sigmoid, x),
            Activation::Tanh => g.unary(UnaryOp::Tanh, x),
            Activation::Softmax => g.softmax(x),
            Activation::HardTanh => g.unary(UnaryOp::Clip(-1.0, 1.0), x),
            Activation::ClipByValue => g.unary(UnaryOp::Clip(0.0, 1.0), x),
            Activation::LeakyTanh { alpha } => {
                let clipped = g.unary(UnaryOp::Clip(-1.0, 1.0), x)?;
                let (one, minus_one) = (g.fill([1], 1.0)?, g.fill([1], -1.0)?);
                let above = g.binary(BinaryOp::Max, x, one)?;
                let above = g.unary(UnaryOp::Offset(-1.0), above)?;
                let above = g.scale(above, *alpha)?;
                let below = g.binary(BinaryOp::Min, x, minus_one)?;
                let below = g.unary(UnaryOp::Offset(1.0), below)?;
                let below = g.scale(below, *alpha)?;
                let y = g.add(clipped, above)?;
                g.add(y, below)
            }
            Activation::Quantizer(q) => q.apply(g, x),
        }
    }
}
