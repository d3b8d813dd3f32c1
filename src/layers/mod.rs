//! Layers: small builders that record graph nodes, own their variables, and report what a model
//! needs to know about them (weights with their precision and constraint, metrics).

pub mod activations;
pub mod conv;
pub mod dense;
pub mod depthwise;
pub mod initializers;

pub use activations::Activation;
pub use conv::QuantConv;
pub use dense::QuantDense;
pub use depthwise::{DepthwiseOptions, QuantDepthwiseConv, QuantSeparableConv};
pub use initializers::Initializer;

use std::sync::Arc;

use crate::constraints::Constraint;
use crate::error::Result;
use crate::graph::{Graph, ValueId};
use crate::train::metrics::FlipRatio;

/// A weight a layer created.
#[derive(Clone, Debug)]
pub struct Weight {
    /// The variable.
    pub variable: ValueId,
    /// Keras-style name, e.g. `quant_dense/kernel`.
    pub name: String,
    /// Bits the forward pass sees (the quantizer's precision, 32 for float weights).
    pub precision: u32,
    /// Applied after each optimizer update.
    pub constraint: Option<Arc<dyn Constraint>>,
}

/// What building layers collects besides graph nodes.
#[derive(Clone, Debug, Default)]
pub struct BuildContext {
    /// The weights created, in order.
    pub weights: Vec<Weight>,
    /// Metrics recorded (flip ratios of quantized kernels).
    pub metrics: Vec<(String, FlipRatio)>,
    /// Warnings raised while building (also logged).
    pub warnings: Vec<String>,
}

/// A layer that can be added to a graph.
pub trait Layer {
    /// The layer's name (prefix of its variables).
    fn name(&self) -> &str;
    /// Records the layer applied to `x` and returns its output.
    fn build(&self, g: &mut Graph, x: ValueId, ctx: &mut BuildContext) -> Result<ValueId>;
}

/// A stable seed for a variable, from its name (FNV-1a), so that initialisation does not
/// depend on build order.
pub(crate) fn seed_for(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}
