//! The arguments every Larq layer with one quantized kernel shares (`QuantDense`,
//! `QuantConv*`, `QuantConv*Transpose`, `QuantLocallyConnected*`), their builder methods, and the
//! steps of `build` they have in common.

use std::sync::Arc;

use super::arguments::{Arg, Invalid};
use super::{add_bias, add_weight, channel_weight, Activation, Bias, BuildContext, Initializer, Regularizer, WeightSpec};
use crate::constraints::Constraint;
use crate::error::Result;
use crate::graph::{Graph, Quantized, ValueId};
use crate::quantizers::Quantizer;

/// Input and kernel quantizers, activation, bias, initializers, constraints, regularizers and
/// metrics, with Keras' defaults (no quantizers, linear, bias, glorot_uniform kernel, zero bias).
#[derive(Clone, Debug)]
pub struct QuantArgs {
    /// Quantizer of the input.
    pub input_quantizer: Option<Quantizer>,
    /// Quantizer of the kernel (the kernel variable keeps the latent weights).
    pub kernel_quantizer: Option<Quantizer>,
    /// Activation of the output.
    pub activation: Activation,
    /// Add a bias (never quantized).
    pub use_bias: bool,
    /// Kernel initializer.
    pub kernel_initializer: Initializer,
    /// Bias initializer.
    pub bias_initializer: Initializer,
    /// Applied to the kernel after each update (e.g. weight_clip).
    pub kernel_constraint: Option<Arc<dyn Constraint>>,
    /// Applied to the bias after each update.
    pub bias_constraint: Option<Arc<dyn Constraint>>,
    /// Penalty on the latent kernel, added to the loss.
    pub kernel_regularizer: Option<Regularizer>,
    /// Penalty on the bias, added to the loss.
    pub bias_regularizer: Option<Regularizer>,
    /// Penalty on the layer's output (after the activation), added to the loss.
    pub activity_regularizer: Option<Regularizer>,
    /// Kernel quantizer metrics (`["flip_ratio"]`): the [`metrics_scope`](crate::metrics::metrics_scope)
    /// around the layer's construction, as in Larq; `None` (made outside every scope) uses the
    /// scope around the model's build, if any.
    pub metrics: Option<Vec<String>>,
    /// Multiply each output channel by a weight `layer/scale` (initially 1) before the bias: what
    /// a packed export folds a following BatchNormalization and a magnitude-aware kernel scale
    /// into. Not a Keras argument (the JSON field `output_scale` is bitgrad's).
    pub output_scale: bool,
    /// The first argument given by a name that stands for nothing, reported by the build.
    pub invalid: Invalid,
    /// Whether the optimizer updates the kernel and bias (Keras' `trainable`; a frozen layer's
    /// weights count as non-trainable in the summary).
    pub trainable: bool,
}

impl Default for QuantArgs {
    fn default() -> Self {
        QuantArgs {
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
            activity_regularizer: None,
            metrics: crate::metrics::active_scope(),
            output_scale: false,
            invalid: Invalid::default(),
            trainable: true,
        }
    }
}

impl QuantArgs {
    /// The straight-through windows when both quantizers are SteSign: the product can run on
    /// packed bits.
    pub fn packed_clips(&self) -> Option<(Option<f32>, Option<f32>)> {
        match (&self.input_quantizer, &self.kernel_quantizer) {
            (Some(Quantizer::SteSign { clip_value: i }), Some(Quantizer::SteSign { clip_value: k })) => Some((*i, *k)),
            _ => None,
        }
    }

    /// The kernel's straight-through window when the product can read the f32 `kernel` as packed
    /// signs ([`Graph::packed_sign`]): the kernel alone is binarized by SteSign (a float input),
    /// and its output axis (the last) is a multiple of 32, so its rows pack without padding.
    pub fn sign_kernel_clip(&self, g: &Graph, kernel: ValueId) -> Option<Option<f32>> {
        match (&self.input_quantizer, &self.kernel_quantizer) {
            (None, Some(Quantizer::SteSign { clip_value })) if rows_pack(g, kernel) => Some(*clip_value),
            _ => None,
        }
    }

    /// The quantized input `xq` and kernel `wq` as low-bit operands when the layer quantizes its
    /// input and both quantizers' values are discrete (and the input has no channel scale): the
    /// product can run on bit planes ([`Graph::lowbit_matmul`]; [`LowBitPair::commit`] once it
    /// does).
    pub(crate) fn lowbit_operands(&self, g: &Graph, xq: ValueId, wq: ValueId) -> Option<LowBitPair> {
        lowbit_operands(g, self.input_quantizer.is_some(), xq, wq)
    }

    /// Records a layer's product on the XNOR path: its signs, and a mask with an input clip.
    pub(crate) fn record_xnor(ctx: &mut BuildContext, layer: &str, input_clip: Option<f32>) {
        ctx.record_product(layer, "xnor", "±1", "±1", 1 + u32::from(input_clip.is_some()));
    }

    /// Records a product of the float path (the sign-bit kernel or plain f32).
    pub(crate) fn record_float(&self, ctx: &mut BuildContext, layer: &str, sign_kernel: bool) {
        let describe = |q: &Option<Quantizer>| q.as_ref().map_or("f32".to_string(), |q| format!("f32 ({})", q.class_name()));
        let (kernel, weights) = if sign_kernel { ("f32 x signs", "±1".to_string()) } else { ("f32", describe(&self.kernel_quantizer)) };
        // The product keeps its f32 input; an input quantizer's rule also keeps the raw input.
        let saved = if self.input_quantizer.is_some() { 64 } else { 32 };
        ctx.record_product(layer, kernel, &describe(&self.input_quantizer), &weights, saved);
    }

    /// True when the kernel alone is binarized by another ±1 quantizer than SteSign
    /// (ApproxSign, SwishSign) and its rows pack like [`QuantArgs::sign_kernel_clip`]'s: the
    /// product then reads its sign bits ([`Graph::sign_bits_of`]).
    pub fn other_sign_kernel(&self, g: &Graph, kernel: ValueId) -> bool {
        rows_pack(g, kernel)
            && self.input_quantizer.is_none()
            && self.kernel_quantizer.as_ref().is_some_and(|q| q.is_binary_sign() && !matches!(q, Quantizer::SteSign { .. }))
    }

    /// Records the input quantizer on `x` (the float path).
    pub(crate) fn quantize_input(&self, g: &mut Graph, x: ValueId) -> Result<ValueId> {
        match &self.input_quantizer {
            Some(q) => q.apply(g, x),
            None => Ok(x),
        }
    }

    /// Creates `layer/kernel` of `shape`; returns (latent variable, quantized value).
    pub(crate) fn add_kernel(&self, g: &mut Graph, ctx: &mut BuildContext, layer: &str, shape: crate::Shape) -> Result<(ValueId, ValueId)> {
        self.invalid.check()?;
        let spec = WeightSpec {
            layer,
            weight: "kernel",
            shape,
            initializer: self.kernel_initializer,
            quantizer: self.kernel_quantizer.as_ref(),
            constraint: self.kernel_constraint.clone(),
            constraint_argument: "kernel_constraint",
            metrics: self.metrics.as_deref(),
            regularizer: self.kernel_regularizer,
            trainable: self.trainable,
        };
        add_weight(g, ctx, spec)
    }

    /// Multiplies by the output scale and adds the per-channel bias (each if used;
    /// `channels_first_spatial` as in [`Bias`]), then applies the activation.
    pub(crate) fn finish(
        &self,
        g: &mut Graph,
        ctx: &mut BuildContext,
        layer: &str,
        y: ValueId,
        channels: usize,
        channels_first_spatial: Option<usize>,
    ) -> Result<ValueId> {
        let y = if self.output_scale {
            let spec = WeightSpec::plain(layer, "scale", [channels], Initializer::Ones);
            let s = channel_weight(g, ctx, spec, channels_first_spatial)?;
            g.mul(y, s)?
        } else {
            y
        };
        let y = if self.use_bias {
            let bias = Bias {
                layer,
                channels,
                channels_first_spatial,
                initializer: self.bias_initializer,
                constraint: self.bias_constraint.clone(),
                regularizer: self.bias_regularizer,
                trainable: self.trainable,
            };
            add_bias(g, ctx, y, bias)?
        } else {
            y
        };
        self.activate(g, ctx, y)
    }

    /// Applies the activation and records the activity penalty of the result.
    pub(crate) fn activate(&self, g: &mut Graph, ctx: &mut BuildContext, y: ValueId) -> Result<ValueId> {
        let y = self.activation.apply(g, y)?;
        activity_penalty(g, ctx, self.activity_regularizer, y)?;
        Ok(y)
    }
}

/// Whether a kernel's rows (its last axis) pack into sign-bit words without padding.
fn rows_pack(g: &Graph, kernel: ValueId) -> bool {
    let k = g.value(kernel);
    k.dtype == crate::DType::F32 && k.shape.dims().last().is_some_and(|n| n % 32 == 0)
}

/// A layer's two operands on bit planes.
pub(crate) struct LowBitPair {
    /// The quantized input.
    pub x: Quantized,
    /// The quantized kernel.
    pub w: Quantized,
}

impl LowBitPair {
    /// Once the layer's product runs on these planes: keeps the input's straight-through window
    /// packed ([`Graph::straight_through_packed`]) and records the product, with the input's
    /// planes and mask as what training keeps of it.
    pub fn commit(&self, g: &mut Graph, ctx: &mut BuildContext, layer: &str) -> Result<()> {
        let mask_bits = g.straight_through_packed(self.x.q)?;
        ctx.record_product(layer, "planes", self.x.values, self.w.values, self.x.form.encoding.planes() as u32 + mask_bits);
        Ok(())
    }
}

/// [`QuantArgs::lowbit_operands`] for layers that keep their quantizers elsewhere.
pub(crate) fn lowbit_operands(g: &Graph, quantized_input: bool, xq: ValueId, wq: ValueId) -> Option<LowBitPair> {
    match (g.quantized(xq), g.quantized(wq)) {
        (Some(x), Some(w)) if quantized_input && x.channel_scale.is_none() => Some(LowBitPair { x, w }),
        _ => None,
    }
}

/// Records the activity penalty of a layer output, if the layer has an activity regularizer.
pub(crate) fn activity_penalty(g: &mut Graph, ctx: &mut BuildContext, r: Option<Regularizer>, y: ValueId) -> Result<()> {
    if let Some(r) = r {
        let p = r.activity_penalty(g, y)?;
        ctx.penalties.push(p);
    }
    Ok(())
}

/// Builder methods of the layers built on [`QuantArgs`], with Larq's and Keras' argument names.
/// Quantizers, activations, initializers, constraints and regularizers are values or names
/// (`"ste_sign"`, `"relu"`, `"glorot_normal"`, `"weight_clip"`, `"l2"`); an unknown name is
/// reported when the layer is built (see [`super::arguments`]).
pub trait QuantLayer: Sized {
    /// The layer's shared arguments.
    fn args_mut(&mut self) -> &mut QuantArgs;

    /// Sets the input quantizer (`input_quantizer`).
    fn input_quantizer(mut self, q: impl Arg<Quantizer>) -> Self {
        let a = self.args_mut();
        a.input_quantizer = a.invalid.take("input_quantizer", q).or(a.input_quantizer.take());
        self
    }

    /// Sets the kernel quantizer (`kernel_quantizer`).
    fn kernel_quantizer(mut self, q: impl Arg<Quantizer>) -> Self {
        let a = self.args_mut();
        a.kernel_quantizer = a.invalid.take("kernel_quantizer", q).or(a.kernel_quantizer.take());
        self
    }

    /// Sets the activation (`activation`: a Keras activation or a quantizer).
    fn activation(mut self, act: impl Arg<Activation>) -> Self {
        let a = self.args_mut();
        if let Some(v) = a.invalid.take("activation", act) {
            a.activation = v;
        }
        self
    }

    /// Adds or removes the bias (`use_bias`).
    fn use_bias(mut self, b: bool) -> Self {
        self.args_mut().use_bias = b;
        self
    }

    /// Sets the kernel initializer (`kernel_initializer`).
    fn kernel_initializer(mut self, i: impl Arg<Initializer>) -> Self {
        let a = self.args_mut();
        if let Some(v) = a.invalid.take("kernel_initializer", i) {
            a.kernel_initializer = v;
        }
        self
    }

    /// Sets the bias initializer (`bias_initializer`).
    fn bias_initializer(mut self, i: impl Arg<Initializer>) -> Self {
        let a = self.args_mut();
        if let Some(v) = a.invalid.take("bias_initializer", i) {
            a.bias_initializer = v;
        }
        self
    }

    /// Sets the kernel constraint (`kernel_constraint`: a constraint or `"weight_clip"`).
    fn kernel_constraint(mut self, c: impl Arg<Arc<dyn Constraint>>) -> Self {
        let a = self.args_mut();
        a.kernel_constraint = a.invalid.take("kernel_constraint", c).or(a.kernel_constraint.take());
        self
    }

    /// Sets the bias constraint (`bias_constraint`).
    fn bias_constraint(mut self, c: impl Arg<Arc<dyn Constraint>>) -> Self {
        let a = self.args_mut();
        a.bias_constraint = a.invalid.take("bias_constraint", c).or(a.bias_constraint.take());
        self
    }

    /// Sets the kernel regularizer (`kernel_regularizer`).
    fn kernel_regularizer(mut self, r: impl Arg<Regularizer>) -> Self {
        let a = self.args_mut();
        a.kernel_regularizer = a.invalid.take("kernel_regularizer", r).or(a.kernel_regularizer.take());
        self
    }

    /// Sets the bias regularizer (`bias_regularizer`).
    fn bias_regularizer(mut self, r: impl Arg<Regularizer>) -> Self {
        let a = self.args_mut();
        a.bias_regularizer = a.invalid.take("bias_regularizer", r).or(a.bias_regularizer.take());
        self
    }

    /// Sets the activity regularizer (`activity_regularizer`, a penalty on the output).
    fn activity_regularizer(mut self, r: impl Arg<Regularizer>) -> Self {
        let a = self.args_mut();
        a.activity_regularizer = a.invalid.take("activity_regularizer", r).or(a.activity_regularizer.take());
        self
    }

    /// Freezes the layer or not (Keras' `trainable`): a frozen layer's kernel and bias are not
    /// updated and count as non-trainable.
    fn trainable(mut self, t: bool) -> Self {
        self.args_mut().trainable = t;
        self
    }

    /// Enables kernel quantizer metrics (`metrics`, e.g. `&["flip_ratio"]`).
    fn metrics(mut self, m: &[&str]) -> Self {
        self.args_mut().metrics = Some(m.iter().map(|s| s.to_string()).collect());
        self
    }
}
