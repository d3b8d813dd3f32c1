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

/// How a layer declares one of its weights.
pub(crate) struct WeightSpec<'a> {
    /// The layer's name.
    pub layer: &'a str,
    /// The weight's name within the layer (`kernel`, `depthwise_kernel`, `bias`, ...).
    pub weight: &'a str,
    /// Its shape.
    pub shape: crate::Shape,
    /// Its initializer.
    pub initializer: Initializer,
    /// Its quantizer, if any.
    pub quantizer: Option<&'a crate::quantizers::Quantizer>,
    /// Its constraint, if any.
    pub constraint: Option<Arc<dyn Constraint>>,
    /// The layer argument naming the constraint, for Larq's starved-weights warning.
    pub constraint_argument: &'a str,
    /// Quantizer metrics requested by the layer (`None`: the enclosing scope's).
    pub metrics: Option<&'a [String]>,
}

/// Creates the weight's variable, records it (precision, constraint) and any warning, applies
/// its quantizer with metrics, and returns (latent variable, value the forward pass uses).
pub(crate) fn add_weight(g: &mut Graph, ctx: &mut BuildContext, spec: WeightSpec) -> Result<(ValueId, ValueId)> {
    let name = format!("{}/{}", spec.layer, spec.weight);
    let w = g.variable(&name, spec.shape.clone(), spec.initializer.init(&spec.shape, seed_for(&name)))?;
    ctx.weights.push(Weight {
        variable: w,
        name: name.clone(),
        precision: spec.quantizer.map_or(32, crate::quantizers::Quantizer::precision),
        constraint: spec.constraint.clone(),
    });
    if let Some(warning) = crate::quantizers::starved_weights_warning(spec.quantizer, spec.constraint_argument, spec.constraint.is_some()) {
        ctx.warnings.push(format!("layer `{}`: {warning}", spec.layer));
    }
    let Some(q) = spec.quantizer else { return Ok((w, w)) };
    let metrics: Option<Vec<&str>> = spec.metrics.map(|m| m.iter().map(String::as_str).collect());
    let (wq, flips) = q.apply_to_kernel(g, w, &name, metrics.as_deref())?;
    ctx.metrics.extend(flips.into_iter().map(|f| (format!("flip_ratio/{name}"), f)));
    Ok((w, wq))
}

/// A layer's per-channel bias `layer/bias`.
pub(crate) struct Bias<'a> {
    /// The layer's name.
    pub layer: &'a str,
    /// Channels.
    pub channels: usize,
    /// `Some(spatial axes)` when the channel axis is second (channels-first), `None` when last.
    pub channels_first_spatial: Option<usize>,
    /// Its initializer.
    pub initializer: Initializer,
    /// Its constraint, if any.
    pub constraint: Option<Arc<dyn Constraint>>,
}

/// Creates the bias and adds it to `y` along the channel axis.
pub(crate) fn add_bias(g: &mut Graph, ctx: &mut BuildContext, y: ValueId, bias: Bias) -> Result<ValueId> {
    let spec = WeightSpec {
        layer: bias.layer,
        weight: "bias",
        shape: crate::Shape::new([bias.channels]),
        initializer: bias.initializer,
        quantizer: None,
        constraint: bias.constraint,
        constraint_argument: "bias_constraint",
        metrics: None,
    };
    let (b, _) = add_weight(g, ctx, spec)?;
    let b = match bias.channels_first_spatial {
        None => b,
        Some(r) => {
            let mut d = vec![bias.channels];
            d.extend(std::iter::repeat_n(1, r));
            g.reshape(b, d)?
        }
    };
    g.add(y, b)
}

/// A stable seed for a variable, from its name (FNV-1a), so that initialisation does not
/// depend on build order.
pub(crate) fn seed_for(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}
