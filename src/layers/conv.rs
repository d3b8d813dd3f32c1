//! `QuantConv1D`, `QuantConv2D`, `QuantConv3D` (Larq), and with no quantizers Keras' `Conv*D`.

use super::{precision_of, BuildContext, Layer, MacCount, QuantArgs, QuantLayer};
use crate::error::{Error, Result};
use crate::graph::{ConvOptions, DataFormat, Graph, Padding, ValueId};

/// Larq's quantized convolution in 1, 2 or 3 spatial dimensions:
/// `activation(conv(input_quantizer(x), kernel_quantizer(kernel)) + bias)`. With padding "same"
/// the quantized input is padded with `pad_values` (0 or 1). When both quantizers are SteSign
/// the convolution runs on packed bits.
#[derive(Clone, Debug)]
pub struct QuantConv {
    /// Layer name, prefix of its variables.
    pub name: String,
    /// Output channels.
    pub filters: usize,
    /// Kernel size per spatial axis (its length is the dimensionality).
    pub kernel_size: Vec<usize>,
    /// Strides.
    pub strides: Vec<usize>,
    /// Valid, same or causal (1-D).
    pub padding: Padding,
    /// Layout of input and output.
    pub data_format: DataFormat,
    /// Dilation rates.
    pub dilation_rate: Vec<usize>,
    /// Channel groups.
    pub groups: usize,
    /// Value of "same" padding after input quantization (Larq's `pad_values`).
    pub pad_values: f32,
    /// Quantizers, activation, bias, initializers, constraints, regularizers, metrics.
    pub args: QuantArgs,
    /// Its identity ([`Layer::id`]), kept by clones: a clone is the same layer.
    pub id: super::LayerId,
}

impl QuantConv {
    /// A convolution with Keras' defaults for the dimensionality of `kernel_size`: stride 1,
    /// dilation 1, valid padding, channels last, one group, no quantizers, linear, bias.
    pub fn new(filters: usize, kernel_size: &[usize]) -> Self {
        let r = kernel_size.len();
        super::auto_named(QuantConv {
            id: super::LayerId::new(),
            name: String::new(),
            filters,
            kernel_size: kernel_size.to_vec(),
            strides: vec![1; r],
            padding: Padding::Valid,
            data_format: DataFormat::ChannelsLast,
            dilation_rate: vec![1; r],
            groups: 1,
            pad_values: 0.0,
            args: QuantArgs::default(),
        })
    }

    fn options(&self) -> ConvOptions {
        ConvOptions {
            kernel: self.kernel_size.clone(),
            strides: self.strides.clone(),
            dilation: self.dilation_rate.clone(),
            padding: self.padding.clone(),
            format: self.data_format,
            groups: self.groups,
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |arg: &'static str, why: String| Err(Error::invalid("QuantConv", arg, format!("layer `{}`: {why}", self.name)));
        if self.filters == 0 || self.groups == 0 || self.filters % self.groups != 0 {
            return bad("filters", format!("{} must be positive and a multiple of groups = {}", self.filters, self.groups));
        }
        if self.pad_values != 0.0 && self.pad_values != 1.0 {
            return bad("pad_values", format!("{} must be 0 or 1", self.pad_values));
        }
        if self.padding == Padding::Causal && self.pad_values != 0.0 {
            return bad("pad_values", "causal padding supports only pad_values = 0".into());
        }
        Ok(())
    }
}

super::arguments::conv_builders!(QuantConv { dilation_rate, groups, pad_values });

impl QuantLayer for QuantConv {
    fn args_mut(&mut self) -> &mut QuantArgs {
        &mut self.args
    }
}

impl Layer for QuantConv {
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
        ["QuantConv1D", "QuantConv2D", "QuantConv3D"].get(self.kernel_size.len().wrapping_sub(1)).copied().unwrap_or("QuantConv")
    }

    fn input_precision(&self) -> Option<u32> {
        precision_of(&self.args.input_quantizer)
    }

    fn macs(&self) -> MacCount {
        // Larq counts 1-D and 2-D convolutions only.
        if self.kernel_size.len() <= 2 {
            MacCount::PerOutputPixel
        } else {
            MacCount::Unknown
        }
    }

    fn build(&self, g: &mut Graph, x: ValueId, ctx: &mut BuildContext) -> Result<ValueId> {
        self.check()?;
        let xs = g.value(x).shape.clone();
        let r = self.kernel_size.len();
        if xs.rank() != r + 2 {
            return Err(Error::shapes(
                "QuantConv",
                xs.dims(),
                &self.kernel_size,
                format!("layer `{}` needs input of rank {} for a {r}-D kernel", self.name, r + 2),
            ));
        }
        let channels = match self.data_format {
            DataFormat::ChannelsLast => xs.dims()[r + 1],
            DataFormat::ChannelsFirst => xs.dims()[1],
        };
        if channels % self.groups != 0 {
            return Err(Error::invalid(
                "QuantConv",
                "groups",
                format!("layer `{}`: {} must divide the {channels} input channels", self.name, self.groups),
            ));
        }
        let mut kernel_dims = self.kernel_size.clone();
        kernel_dims.extend([channels / self.groups, self.filters]);
        let (w, wq) = self.args.add_kernel(g, ctx, &self.name, crate::Shape::new(kernel_dims))?;
        let opts = self.options();
        let y = match (self.args.packed_clips(), self.args.sign_kernel_clip(g, w)) {
            (Some((ci, ck)), _) => {
                QuantArgs::record_xnor(ctx, &self.name, ci);
                g.binary_conv(x, w, &opts, self.pad_values, ci, ck)?
            }
            // One group: the product's B operand is then the kernel's rows through reshapes only.
            (None, Some(ck)) if self.groups == 1 => {
                self.args.record_float(ctx, &self.name, true);
                let signs = g.packed_sign(w, ck)?;
                g.conv(x, signs, &opts, self.pad_values)?
            }
            (None, None) if self.groups == 1 && self.args.other_sign_kernel(g, w) => {
                self.args.record_float(ctx, &self.name, true);
                let signs = g.sign_bits_of(w, wq)?;
                g.conv(x, signs, &opts, self.pad_values)?
            }
            _ => {
                let xq = self.args.quantize_input(g, x)?;
                match self.args.lowbit_operands(g, xq, wq) {
                    Some(pair) if pair.x.form.holds(self.pad_values) => {
                        pair.commit(g, ctx, &self.name)?;
                        g.lowbit_conv(&pair.x, &pair.w, &opts, self.pad_values)?
                    }
                    _ => {
                        self.args.record_float(ctx, &self.name, false);
                        g.conv(xq, wq, &opts, self.pad_values)?
                    }
                }
            }
        };
        let first = (self.data_format == DataFormat::ChannelsFirst).then_some(r);
        self.args.finish(g, ctx, &self.name, y, self.filters, first)
    }
}

super::arguments::class_constructors!(
    "Larq's quantized convolution, a [`QuantConv`]", QuantConv, |filters, k, _class| QuantConv::new(filters, &k);
    QuantConv1D => 1, QuantConv2D => 2, QuantConv3D => 3
);

super::arguments::class_constructors!(
    "Keras' convolution, a [`QuantConv`] without quantizers named as Keras names it", QuantConv,
    |filters, k, class| super::auto_named_as(QuantConv::new(filters, &k), class);
    Conv1D => 1, Conv2D => 2, Conv3D => 3
);
