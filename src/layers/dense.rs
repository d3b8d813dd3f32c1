//! `QuantDense` (Larq) and, with no quantizers, Keras' `Dense`.

use std::sync::Arc;

use super::{add_bias, add_weight, precision_of, Activation, Bias, BuildContext, Initializer, Layer, MacCount, Regularizer, WeightSpec};
use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::graph::{Graph, ValueId};
use crate::quantizers::Quantizer;

/// Larq's `QuantDense`: `activation(input_quantizer(x) @ kernel_quantizer(kernel) + bias)`,
/// applied to the last axis of `x`. The kernel variable holds the latent weights.
///
/// When both quantizers are SteSign, the product runs on packed bits (XNOR-popcount) and its
/// straight-through backward keeps only packed signs and masks; otherwise the quantized values
/// are multiplied in f32.
#[derive(Clone, Debug)]
pub struct QuantDense {
    /// Layer name, prefix of its variables.
    pub name: String,
    /// Output features.
    pub units: usize,
    /// Quantizer of the input.
    pub input_quantizer: Option<Quantizer>,
    /// Quantizer of the kernel.
    pub kernel_quantizer: Option<Quantizer>,
    /// Activation of the output.
    pub activation: Activation,
    /// Add a bias (never quantized).
    pub use_bias: bool,
    /// Kernel initializer (default glorot_uniform).
    pub kernel_initializer: Initializer,
    /// Bias initializer (default zeros).
    pub bias_initializer: Initializer,
    /// Applied to the kernel after each update (e.g. weight_clip).
    pub kernel_constraint: Option<Arc<dyn Constraint>>,
    /// Applied to the bias after each update.
    pub bias_constraint: Option<Arc<dyn Constraint>>,
    /// Penalty on the latent kernel, added to the loss.
    pub kernel_regularizer: Option<Regularizer>,
    /// Penalty on the bias, added to the loss.
    pub bias_regularizer: Option<Regularizer>,
    /// Kernel quantizer metrics (`["flip_ratio"]`); `None` uses the enclosing metrics scope.
    pub metrics: Option<Vec<String>>,
}

impl QuantDense {
    /// A layer with Keras' defaults: no quantizers, linear activation, bias, glorot_uniform.
    pub fn new(name: &str, units: usize) -> Self {
        QuantDense {
            name: name.to_string(),
            units,
            input_quantizer: None,
            kernel_quantizer: None,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_constraint: None,
            bias_constraint: None,
            kernel_regularizer: None,
            bias_regularizer: None,
            metrics: None,
        }
    }

    /// Sets the input quantizer.
    pub fn input_quantizer(mut self, q: Quantizer) -> Self {
        self.input_quantizer = Some(q);
        self
    }

    /// Sets the kernel quantizer.
    pub fn kernel_quantizer(mut self, q: Quantizer) -> Self {
        self.kernel_quantizer = Some(q);
        self
    }

    /// Sets the activation.
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }

    /// Adds or removes the bias.
    pub fn use_bias(mut self, b: bool) -> Self {
        self.use_bias = b;
        self
    }

    /// Sets the kernel initializer.
    pub fn kernel_initializer(mut self, i: Initializer) -> Self {
        self.kernel_initializer = i;
        self
    }

    /// Sets the kernel constraint.
    pub fn kernel_constraint(mut self, c: impl Constraint + 'static) -> Self {
        self.kernel_constraint = Some(Arc::new(c));
        self
    }

    /// Sets the kernel regularizer.
    pub fn kernel_regularizer(mut self, r: Regularizer) -> Self {
        self.kernel_regularizer = Some(r);
        self
    }

    /// Enables kernel quantizer metrics.
    pub fn metrics(mut self, m: &[&str]) -> Self {
        self.metrics = Some(m.iter().map(|s| s.to_string()).collect());
        self
    }

    /// The straight-through windows when both quantizers are SteSign (the packed path).
    fn packed_clips(&self) -> Option<(Option<f32>, Option<f32>)> {
        match (&self.input_quantizer, &self.kernel_quantizer) {
            (Some(Quantizer::SteSign { clip_value: i }), Some(Quantizer::SteSign { clip_value: k })) => Some((*i, *k)),
            _ => None,
        }
    }
}

impl Layer for QuantDense {
    fn name(&self) -> &str {
        &self.name
    }

    fn class(&self) -> &str {
        "QuantDense"
    }

    fn input_precision(&self) -> Option<u32> {
        precision_of(&self.input_quantizer)
    }

    fn macs(&self) -> MacCount {
        MacCount::PerOutputPixel
    }

    fn build(&self, g: &mut Graph, x: ValueId, ctx: &mut BuildContext) -> Result<ValueId> {
        if self.units == 0 {
            return Err(Error::invalid("QuantDense", "units", format!("layer `{}`: must be positive", self.name)));
        }
        let xs = g.value(x).shape.clone();
        let k = match xs.dims() {
            [.., _, k] => *k,
            _ => {
                return Err(Error::shapes(
                    "QuantDense",
                    xs.dims(),
                    &[self.units],
                    format!("layer `{}` needs input of rank >= 2 (batch, features)", self.name),
                ))
            }
        };
        let spec = WeightSpec {
            layer: &self.name,
            weight: "kernel",
            shape: crate::Shape::new([k, self.units]),
            initializer: self.kernel_initializer,
            quantizer: self.kernel_quantizer.as_ref(),
            constraint: self.kernel_constraint.clone(),
            constraint_argument: "kernel_constraint",
            metrics: self.metrics.as_deref(),
            regularizer: self.kernel_regularizer,
        };
        // The quantized kernel in f32 is only used by the float path and metrics; on the packed
        // path nothing else reads it and the planner prunes it.
        let (w, wq) = add_weight(g, ctx, spec)?;
        let y = match self.packed_clips() {
            Some((input_clip, kernel_clip)) => g.binary_matmul(x, w, input_clip, kernel_clip)?,
            None => {
                let xq = match &self.input_quantizer {
                    Some(q) => q.apply(g, x)?,
                    None => x,
                };
                g.matmul(xq, wq)?
            }
        };
        let y = if self.use_bias {
            add_bias(
                g,
                ctx,
                y,
                Bias {
                    layer: &self.name,
                    channels: self.units,
                    channels_first_spatial: None,
                    initializer: self.bias_initializer,
                    constraint: self.bias_constraint.clone(),
                    regularizer: self.bias_regularizer,
                },
            )?
        } else {
            y
        };
        self.activation.apply(g, y)
    }
}
