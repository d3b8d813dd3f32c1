//! `QuantDepthwiseConv2D` and `QuantSeparableConv1D/2D` (Larq): depthwise convolutions with a
//! `depthwise_quantizer`, and separable ones that follow with a 1x1 `pointwise_quantizer`
//! convolution.

use std::sync::Arc;

use super::{add_bias, add_weight, precision_of, Activation, Bias, BuildContext, Initializer, Layer, MacCount, Regularizer, WeightSpec};
use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::graph::{ConvOptions, DataFormat, Graph, Padding, ValueId};
use crate::quantizers::Quantizer;

/// The options shared by depthwise and separable layers.
#[derive(Clone, Debug)]
pub struct DepthwiseOptions {
    /// Kernel size per spatial axis.
    pub kernel_size: Vec<usize>,
    /// Strides.
    pub strides: Vec<usize>,
    /// Valid or same (or causal for 1-D).
    pub padding: Padding,
    /// Dilation rates.
    pub dilation_rate: Vec<usize>,
    /// Layout of input and output.
    pub data_format: DataFormat,
    /// Output channels per input channel of the depthwise stage.
    pub depth_multiplier: usize,
    /// Value of "same" padding after input quantization.
    pub pad_values: f32,
    /// Quantizer of the input.
    pub input_quantizer: Option<Quantizer>,
    /// Quantizer of the depthwise kernel.
    pub depthwise_quantizer: Option<Quantizer>,
    /// Initializer of the depthwise kernel.
    pub depthwise_initializer: Initializer,
    /// Applied to the depthwise kernel after each update.
    pub depthwise_constraint: Option<Arc<dyn Constraint>>,
    /// Penalty on the latent depthwise kernel, added to the loss.
    pub depthwise_regularizer: Option<Regularizer>,
    /// Initializer of the bias.
    pub bias_initializer: Initializer,
    /// Applied to the bias after each update.
    pub bias_constraint: Option<Arc<dyn Constraint>>,
    /// Penalty on the bias, added to the loss.
    pub bias_regularizer: Option<Regularizer>,
    /// Penalty on the layer's output (after the activation), added to the loss.
    pub activity_regularizer: Option<Regularizer>,
    /// Activation of the output.
    pub activation: Activation,
    /// Add a bias.
    pub use_bias: bool,
    /// Kernel quantizer metrics: the metrics scope around the options' construction (as in
    /// [`super::QuantArgs::metrics`]); `None` uses the scope around the model's build.
    pub metrics: Option<Vec<String>>,
    /// The identity of the [`QuantDepthwiseConv`] built with these options, made with them
    /// (the layer itself is a plain struct literal): a layer and its clones share it.
    pub id: super::LayerId,
    /// The first argument given by a name that stands for nothing, reported by the build.
    pub invalid: super::arguments::Invalid,
    /// Whether the optimizer updates the layer's kernels and bias (Keras' `trainable`).
    pub trainable: bool,
}

impl DepthwiseOptions {
    /// Keras' defaults for a kernel of this size.
    pub fn new(kernel_size: &[usize]) -> Self {
        let r = kernel_size.len();
        DepthwiseOptions {
            kernel_size: kernel_size.to_vec(),
            strides: vec![1; r],
            padding: Padding::Valid,
            dilation_rate: vec![1; r],
            data_format: DataFormat::ChannelsLast,
            depth_multiplier: 1,
            pad_values: 0.0,
            input_quantizer: None,
            depthwise_quantizer: None,
            depthwise_initializer: Initializer::GlorotUniform,
            depthwise_constraint: None,
            depthwise_regularizer: None,
            bias_initializer: Initializer::Zeros,
            bias_constraint: None,
            bias_regularizer: None,
            activity_regularizer: None,
            activation: Activation::Linear,
            use_bias: true,
            metrics: crate::metrics::active_scope(),
            id: super::LayerId::new(),
            invalid: Default::default(),
            trainable: true,
        }
    }
}

/// Larq's `QuantDepthwiseConv2D` (and its 1-D/3-D analogues): each input channel convolved with
/// its own `depth_multiplier` filters, kernel `[k..., C, depth_multiplier]`.
#[derive(Clone, Debug)]
pub struct QuantDepthwiseConv {
    /// Layer name, prefix of its variables.
    pub name: String,
    /// The options.
    pub opts: DepthwiseOptions,
}

/// Records the depthwise stage: input quantizer, depthwise kernel and its quantizer, and the
/// grouped convolution (on packed bits for SteSign x SteSign). Returns the output, channels-last
/// or channels-first as the input, and its channel count.
fn depthwise_stage(g: &mut Graph, name: &str, o: &DepthwiseOptions, x: ValueId, ctx: &mut BuildContext) -> Result<(ValueId, usize)> {
    o.invalid.check()?;
    let xs = g.value(x).shape.clone();
    let r = o.kernel_size.len();
    if xs.rank() != r + 2 || o.depth_multiplier == 0 {
        return Err(Error::shapes(
            "QuantDepthwiseConv",
            xs.dims(),
            &o.kernel_size,
            format!("layer `{name}` needs input of rank {} and depth_multiplier >= 1", r + 2),
        ));
    }
    let pad_ok = o.pad_values == 0.0 || (o.pad_values == 1.0 && o.padding != Padding::Causal);
    if !pad_ok {
        return Err(Error::invalid(
            "QuantDepthwiseConv",
            "pad_values",
            format!("layer `{name}`: {} must be 0 or 1 (0 with causal padding)", o.pad_values),
        ));
    }
    let c = match o.data_format {
        DataFormat::ChannelsLast => xs.dims()[r + 1],
        DataFormat::ChannelsFirst => xs.dims()[1],
    };
    let mut dims = o.kernel_size.clone();
    dims.extend([c, o.depth_multiplier]);
    let spec = WeightSpec {
        layer: name,
        weight: "depthwise_kernel",
        shape: crate::Shape::new(dims),
        initializer: o.depthwise_initializer,
        quantizer: o.depthwise_quantizer.as_ref(),
        constraint: o.depthwise_constraint.clone(),
        constraint_argument: "depthwise_constraint",
        metrics: o.metrics.as_deref(),
        regularizer: o.depthwise_regularizer,
        trainable: o.trainable,
    };
    let (w, wq) = add_weight(g, ctx, spec)?;
    // [k..., C, m] is the grouped kernel [k..., 1, C * m] with C groups, outputs in the same order.
    let mut grouped = o.kernel_size.clone();
    grouped.extend([1, c * o.depth_multiplier]);
    let conv = ConvOptions {
        kernel: o.kernel_size.clone(),
        strides: o.strides.clone(),
        dilation: o.dilation_rate.clone(),
        padding: o.padding.clone(),
        format: o.data_format,
        groups: c,
    };
    let y = match (&o.input_quantizer, &o.depthwise_quantizer) {
        (Some(Quantizer::SteSign { clip_value: ci }), Some(Quantizer::SteSign { clip_value: ck })) => {
            let wg = g.reshape(super::binary_operand(g, w, wq), grouped)?;
            super::QuantArgs::record_xnor(ctx, name, *ci);
            g.binary_conv(x, wg, &conv, o.pad_values, *ci, *ck)?
        }
        (iq, _) => {
            let xq = match iq {
                Some(q) => q.apply(g, x)?,
                None => x,
            };
            let wg = g.reshape(wq, grouped)?;
            match super::quant_args::lowbit_operands(g, iq.is_some(), xq, wq) {
                Some(pair) if pair.x.form.holds(o.pad_values) => {
                    pair.commit(g, ctx, name)?;
                    g.lowbit_conv(&pair.x, &pair.w.with(wg), &conv, o.pad_values)?
                }
                _ => g.conv(xq, wg, &conv, o.pad_values)?,
            }
        }
    };
    Ok((y, c * o.depth_multiplier))
}

/// Adds the bias (in either layout), then the activation.
fn bias_and_activation(
    g: &mut Graph,
    name: &str,
    o: &DepthwiseOptions,
    y: ValueId,
    channels: usize,
    ctx: &mut BuildContext,
) -> Result<ValueId> {
    let y = if o.use_bias {
        let first = (o.data_format == DataFormat::ChannelsFirst).then_some(o.kernel_size.len());
        add_bias(
            g,
            ctx,
            y,
            Bias {
                layer: name,
                channels,
                channels_first_spatial: first,
                initializer: o.bias_initializer,
                constraint: o.bias_constraint.clone(),
                regularizer: o.bias_regularizer,
                trainable: o.trainable,
            },
        )?
    } else {
        y
    };
    let y = o.activation.apply(g, y)?;
    super::quant_args::activity_penalty(g, ctx, o.activity_regularizer, y)?;
    Ok(y)
}

impl Layer for QuantDepthwiseConv {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn id(&self) -> Option<super::LayerId> {
        Some(self.opts.id)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn class(&self) -> &str {
        "QuantDepthwiseConv2D"
    }

    fn input_precision(&self) -> Option<u32> {
        precision_of(&self.opts.input_quantizer)
    }

    fn macs(&self) -> MacCount {
        MacCount::PerOutputPixel
    }

    fn build(&self, g: &mut Graph, x: ValueId, ctx: &mut BuildContext) -> Result<ValueId> {
        let (y, channels) = depthwise_stage(g, &self.name, &self.opts, x, ctx)?;
        bias_and_activation(g, &self.name, &self.opts, y, channels, ctx)
    }
}

/// Larq's `QuantSeparableConv1D/2D`: a depthwise stage, then a 1x1 convolution to `filters`
/// channels with the `pointwise_quantizer` kernel `[1..., C * depth_multiplier, filters]`. The
/// intermediate values are not quantized again (as in Larq).
#[derive(Clone, Debug)]
pub struct QuantSeparableConv {
    /// Layer name, prefix of its variables.
    pub name: String,
    /// Output channels.
    pub filters: usize,
    /// The depthwise stage's options (and the layer's activation and bias).
    pub opts: DepthwiseOptions,
    /// Quantizer of the pointwise kernel.
    pub pointwise_quantizer: Option<Quantizer>,
    /// Initializer of the pointwise kernel.
    pub pointwise_initializer: Initializer,
    /// Applied to the pointwise kernel after each update.
    pub pointwise_constraint: Option<Arc<dyn Constraint>>,
    /// Penalty on the latent pointwise kernel, added to the loss.
    pub pointwise_regularizer: Option<Regularizer>,
    /// Its identity ([`Layer::id`]), kept by clones: a clone is the same layer.
    pub id: super::LayerId,
}

impl QuantSeparableConv {
    /// A separable convolution to `filters` channels with the depthwise stage `opts`, no
    /// pointwise quantizer, glorot_uniform pointwise kernel.
    pub fn new(filters: usize, opts: DepthwiseOptions) -> Self {
        super::auto_named(QuantSeparableConv {
            id: super::LayerId::new(),
            name: String::new(),
            filters,
            opts,
            pointwise_quantizer: None,
            pointwise_initializer: Initializer::GlorotUniform,
            pointwise_constraint: None,
            pointwise_regularizer: None,
        })
    }
}

impl Layer for QuantSeparableConv {
    fn id(&self) -> Option<super::LayerId> {
        Some(self.id)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn class(&self) -> &str {
        if self.opts.kernel_size.len() == 1 {
            "QuantSeparableConv1D"
        } else {
            "QuantSeparableConv2D"
        }
    }

    fn input_precision(&self) -> Option<u32> {
        precision_of(&self.opts.input_quantizer)
    }

    fn macs(&self) -> MacCount {
        MacCount::PerOutputPixel
    }

    fn build(&self, g: &mut Graph, x: ValueId, ctx: &mut BuildContext) -> Result<ValueId> {
        if self.filters == 0 {
            return Err(Error::invalid("QuantSeparableConv", "filters", format!("layer `{}`: must be positive", self.name)));
        }
        let inner = DepthwiseOptions { use_bias: false, activation: Activation::Linear, ..self.opts.clone() };
        let (h, channels) = depthwise_stage(g, &self.name, &inner, x, ctx)?;
        let r = self.opts.kernel_size.len();
        let mut dims = vec![1; r];
        dims.extend([channels, self.filters]);
        let spec = WeightSpec {
            layer: &self.name,
            weight: "pointwise_kernel",
            shape: crate::Shape::new(dims),
            initializer: self.pointwise_initializer,
            quantizer: self.pointwise_quantizer.as_ref(),
            constraint: self.pointwise_constraint.clone(),
            constraint_argument: "pointwise_constraint",
            metrics: self.opts.metrics.as_deref(),
            regularizer: self.pointwise_regularizer,
            trainable: self.opts.trainable,
        };
        let (_, wq) = add_weight(g, ctx, spec)?;
        let pointwise = ConvOptions { format: self.opts.data_format, ..ConvOptions::new(&vec![1; r]) };
        let y = g.conv(h, wq, &pointwise, 0.0)?;
        bias_and_activation(g, &self.name, &self.opts, y, self.filters, ctx)
    }
}

/// Builder methods, with Larq's argument names, of the layers built on [`DepthwiseOptions`].
macro_rules! depthwise_builders {
    ($($t:ty),*) => {
        $(
            impl $t {
                /// Sets `strides` (a number for every axis, or one per axis).
                pub fn strides(mut self, s: impl Into<super::arguments::Size>) -> Self {
                    self.opts.strides = s.into().for_rank(self.opts.kernel_size.len());
                    self
                }

                /// Sets `padding` (`"valid"`, `"same"`, `"causal"` for 1-D).
                pub fn padding(mut self, p: impl super::Arg<Padding>) -> Self {
                    if let Some(p) = self.opts.invalid.take("padding", p) {
                        self.opts.padding = p;
                    }
                    self
                }

                /// Sets `data_format` (`"channels_last"` or `"channels_first"`).
                pub fn data_format(mut self, f: impl super::Arg<DataFormat>) -> Self {
                    if let Some(f) = self.opts.invalid.take("data_format", f) {
                        self.opts.data_format = f;
                    }
                    self
                }

                /// Sets `dilation_rate` (a number for every axis, or one per axis).
                pub fn dilation_rate(mut self, d: impl Into<super::arguments::Size>) -> Self {
                    self.opts.dilation_rate = d.into().for_rank(self.opts.kernel_size.len());
                    self
                }

                /// Sets `depth_multiplier`.
                pub fn depth_multiplier(mut self, m: usize) -> Self {
                    self.opts.depth_multiplier = m;
                    self
                }

                /// Sets Larq's `pad_values` (0 or 1).
                pub fn pad_values(mut self, v: f32) -> Self {
                    self.opts.pad_values = v;
                    self
                }

                /// Sets the `input_quantizer`.
                pub fn input_quantizer(mut self, q: impl super::Arg<Quantizer>) -> Self {
                    let o = &mut self.opts;
                    o.input_quantizer = o.invalid.take("input_quantizer", q).or(o.input_quantizer.take());
                    self
                }

                /// Sets the `depthwise_quantizer`.
                pub fn depthwise_quantizer(mut self, q: impl super::Arg<Quantizer>) -> Self {
                    let o = &mut self.opts;
                    o.depthwise_quantizer = o.invalid.take("depthwise_quantizer", q).or(o.depthwise_quantizer.take());
                    self
                }

                /// Sets the `depthwise_initializer`.
                pub fn depthwise_initializer(mut self, i: impl super::Arg<Initializer>) -> Self {
                    if let Some(i) = self.opts.invalid.take("depthwise_initializer", i) {
                        self.opts.depthwise_initializer = i;
                    }
                    self
                }

                /// Sets the `depthwise_constraint` (a constraint or `"weight_clip"`).
                pub fn depthwise_constraint(mut self, c: impl super::Arg<Arc<dyn Constraint>>) -> Self {
                    let o = &mut self.opts;
                    o.depthwise_constraint = o.invalid.take("depthwise_constraint", c).or(o.depthwise_constraint.take());
                    self
                }

                /// Sets the `depthwise_regularizer`.
                pub fn depthwise_regularizer(mut self, r: impl super::Arg<Regularizer>) -> Self {
                    let o = &mut self.opts;
                    o.depthwise_regularizer = o.invalid.take("depthwise_regularizer", r).or(o.depthwise_regularizer.take());
                    self
                }

                /// Sets the `activation`.
                pub fn activation(mut self, a: impl super::Arg<Activation>) -> Self {
                    if let Some(a) = self.opts.invalid.take("activation", a) {
                        self.opts.activation = a;
                    }
                    self
                }

                /// Adds or removes the bias (`use_bias`).
                pub fn use_bias(mut self, b: bool) -> Self {
                    self.opts.use_bias = b;
                    self
                }

                /// Freezes the layer or not (Keras' `trainable`).
                pub fn trainable(mut self, t: bool) -> Self {
                    self.opts.trainable = t;
                    self
                }

                /// Sets the `bias_initializer`.
                pub fn bias_initializer(mut self, i: impl super::Arg<Initializer>) -> Self {
                    if let Some(i) = self.opts.invalid.take("bias_initializer", i) {
                        self.opts.bias_initializer = i;
                    }
                    self
                }

                /// Sets the `bias_constraint`.
                pub fn bias_constraint(mut self, c: impl super::Arg<Arc<dyn Constraint>>) -> Self {
                    let o = &mut self.opts;
                    o.bias_constraint = o.invalid.take("bias_constraint", c).or(o.bias_constraint.take());
                    self
                }

                /// Sets the `bias_regularizer`.
                pub fn bias_regularizer(mut self, r: impl super::Arg<Regularizer>) -> Self {
                    let o = &mut self.opts;
                    o.bias_regularizer = o.invalid.take("bias_regularizer", r).or(o.bias_regularizer.take());
                    self
                }

                /// Sets the `activity_regularizer` (a penalty on the output).
                pub fn activity_regularizer(mut self, r: impl super::Arg<Regularizer>) -> Self {
                    let o = &mut self.opts;
                    o.activity_regularizer = o.invalid.take("activity_regularizer", r).or(o.activity_regularizer.take());
                    self
                }

                /// Enables the depthwise kernel quantizer's `metrics` (e.g. `&["flip_ratio"]`).
                pub fn metrics(mut self, m: &[&str]) -> Self {
                    self.opts.metrics = Some(m.iter().map(|s| s.to_string()).collect());
                    self
                }
            }
        )*
    };
}

depthwise_builders!(QuantDepthwiseConv, QuantSeparableConv);

impl QuantDepthwiseConv {
    /// A depthwise convolution with a kernel of `kernel_size` and Keras' defaults.
    pub fn new(kernel_size: &[usize]) -> Self {
        super::auto_named(QuantDepthwiseConv { name: String::new(), opts: DepthwiseOptions::new(kernel_size) })
    }
}

impl QuantSeparableConv {
    /// Sets the `pointwise_quantizer`.
    pub fn pointwise_quantizer(mut self, q: impl super::Arg<Quantizer>) -> Self {
        self.pointwise_quantizer = self.opts.invalid.take("pointwise_quantizer", q).or(self.pointwise_quantizer.take());
        self
    }

    /// Sets the `pointwise_initializer`.
    pub fn pointwise_initializer(mut self, i: impl super::Arg<Initializer>) -> Self {
        if let Some(i) = self.opts.invalid.take("pointwise_initializer", i) {
            self.pointwise_initializer = i;
        }
        self
    }

    /// Sets the `pointwise_constraint` (a constraint or `"weight_clip"`).
    pub fn pointwise_constraint(mut self, c: impl super::Arg<Arc<dyn Constraint>>) -> Self {
        self.pointwise_constraint = self.opts.invalid.take("pointwise_constraint", c).or(self.pointwise_constraint.take());
        self
    }

    /// Sets the `pointwise_regularizer`.
    pub fn pointwise_regularizer(mut self, r: impl super::Arg<Regularizer>) -> Self {
        self.pointwise_regularizer = self.opts.invalid.take("pointwise_regularizer", r).or(self.pointwise_regularizer.take());
        self
    }
}

super::arguments::class_constructors!(
    "Larq's quantized separable convolution, a [`QuantSeparableConv`]", QuantSeparableConv,
    |filters, k, _class| QuantSeparableConv::new(filters, DepthwiseOptions::new(&k));
    QuantSeparableConv1D => 1, QuantSeparableConv2D => 2
);

super::arguments::class_constructors!(
    "Keras' separable convolution, a [`QuantSeparableConv`] without quantizers named as Keras names it", QuantSeparableConv,
    |filters, k, class| super::auto_named_as(QuantSeparableConv::new(filters, DepthwiseOptions::new(&k)), class);
    SeparableConv2D => 2
);

/// Larq's `QuantDepthwiseConv2D`: a [`QuantDepthwiseConv`] with 2 spatial axes.
pub struct QuantDepthwiseConv2D;

impl QuantDepthwiseConv2D {
    /// A depthwise kernel of `kernel_size` (one number for both axes, or one per axis), Keras'
    /// defaults otherwise.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(kernel_size: impl Into<super::arguments::Size>) -> QuantDepthwiseConv {
        QuantDepthwiseConv::new(&kernel_size.into().for_rank(2))
    }
}

/// Keras' `DepthwiseConv2D`: a [`QuantDepthwiseConv`] without quantizers, named as Keras names it.
pub struct DepthwiseConv2D;

impl DepthwiseConv2D {
    /// `DepthwiseConv2D(kernel_size)`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(kernel_size: impl Into<super::arguments::Size>) -> QuantDepthwiseConv {
        super::auto_named_as(QuantDepthwiseConv::new(&kernel_size.into().for_rank(2)), "DepthwiseConv2D")
    }
}
