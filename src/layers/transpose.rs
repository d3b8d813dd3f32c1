//! `QuantConv2DTranspose` and `QuantConv3DTranspose` (Larq), and with no quantizers Keras'
//! `Conv*DTranspose`.

use super::{precision_of, BuildContext, Layer, MacCount, QuantArgs, QuantLayer};
use crate::error::{Error, Result};
use crate::graph::{ConvOptions, DataFormat, Graph, Padding, ValueId};

/// Larq's quantized transposed convolution in 2 or 3 (or 1) spatial dimensions:
/// `activation(conv_transpose(input_quantizer(x), kernel_quantizer(kernel)) + bias)` with a
/// kernel `[k..., filters, in_channels]`. When both quantizers are SteSign the per-pixel product
/// runs on packed bits.
#[derive(Clone, Debug)]
pub struct QuantConvTranspose {
    /// Layer name, prefix of its variables.
    pub name: String,
    /// Output channels.
    pub filters: usize,
    /// Kernel size per spatial axis (its length is the dimensionality).
    pub kernel_size: Vec<usize>,
    /// Strides (the upsampling factors).
    pub strides: Vec<usize>,
    /// Valid or same.
    pub padding: Padding,
    /// Extra output rows at the end of each axis (each below its stride); `None` lets Keras'
    /// rule pick the size.
    pub output_padding: Option<Vec<usize>>,
    /// Layout of input and output.
    pub data_format: DataFormat,
    /// Dilation rates.
    pub dilation_rate: Vec<usize>,
    /// Quantizers, activation, bias, initializers, constraints, regularizers, metrics.
    pub args: QuantArgs,
    /// Its identity ([`Layer::id`]), kept by clones: a clone is the same layer.
    pub id: super::LayerId,
}

impl QuantConvTranspose {
    /// Keras' defaults for the dimensionality of `kernel_size`: stride 1, valid padding, no
    /// output padding, channels last, no quantizers, linear, bias.
    pub fn new(filters: usize, kernel_size: &[usize]) -> Self {
        let r = kernel_size.len();
        super::auto_named(QuantConvTranspose {
            id: super::LayerId::new(),
            name: String::new(),
            filters,
            kernel_size: kernel_size.to_vec(),
            strides: vec![1; r],
            padding: Padding::Valid,
            output_padding: None,
            data_format: DataFormat::ChannelsLast,
            dilation_rate: vec![1; r],
            args: QuantArgs::default(),
        })
    }

    /// Output spatial size of axis `i` for input size `n` (Keras' `deconv_output_length`).
    fn output_length(&self, i: usize, n: usize) -> Result<usize> {
        let (k, s) = (self.kernel_size[i], self.strides[i]);
        let overflow = || self.bad("kernel_size", "the output size overflows".into());
        let eff = crate::graph::conv::dilated_size(k, self.dilation_rate[i]).ok_or_else(overflow)?;
        let pad = match self.padding {
            Padding::Valid => 0,
            Padding::Same => eff / 2,
            _ => return Err(self.bad("padding", "must be valid or same".into())),
        };
        let scaled = n.checked_mul(s).ok_or_else(overflow)?;
        Ok(match (&self.output_padding, &self.padding) {
            (None, Padding::Valid) => scaled.checked_add(eff.saturating_sub(s)).ok_or_else(overflow)?,
            (None, _) => scaled,
            (Some(op), _) => {
                let full = (scaled - s).checked_add(eff).and_then(|l| l.checked_add(op[i])).ok_or_else(overflow)?;
                full.checked_sub(2 * pad).ok_or_else(|| self.bad("kernel_size", "output would be empty".into()))?
            }
        })
    }

    fn bad(&self, arg: &'static str, why: String) -> Error {
        Error::invalid("QuantConvTranspose", arg, format!("layer `{}`: {why}", self.name))
    }

    fn check(&self) -> Result<()> {
        let r = self.kernel_size.len();
        if self.filters == 0 {
            return Err(self.bad("filters", "must be positive".into()));
        }
        for (arg, v) in [("strides", &self.strides), ("dilation_rate", &self.dilation_rate), ("kernel_size", &self.kernel_size)] {
            if v.len() != r || v.contains(&0) {
                return Err(self.bad(arg, format!("{v:?} needs {r} positive values")));
            }
        }
        if let Some(op) = &self.output_padding {
            if op.len() != r || op.iter().zip(&self.strides).any(|(p, s)| p >= s) {
                return Err(self.bad("output_padding", format!("{op:?} needs {r} values, each below its stride {:?}", self.strides)));
            }
        }
        Ok(())
    }
}

super::arguments::conv_builders!(QuantConvTranspose { dilation_rate });

impl QuantConvTranspose {
    /// Sets `output_padding`: extra output rows at the end of each axis (each below its stride).
    pub fn output_padding(mut self, p: impl Into<super::arguments::Size>) -> Self {
        self.output_padding = Some(p.into().for_rank(self.kernel_size.len()));
        self
    }
}

impl QuantLayer for QuantConvTranspose {
    fn args_mut(&mut self) -> &mut QuantArgs {
        &mut self.args
    }
}

impl Layer for QuantConvTranspose {
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
        ["QuantConv1DTranspose", "QuantConv2DTranspose", "QuantConv3DTranspose"]
            .get(self.kernel_size.len().wrapping_sub(1))
            .copied()
            .unwrap_or("QuantConvTranspose")
    }

    fn macs(&self) -> MacCount {
        // Keras' Conv1D/2DTranspose subclass Conv1D/2D, so Larq counts them as those: each
        // kernel weight once per output pixel. (Conv3DTranspose, like Conv3D, is not counted.)
        if self.kernel_size.len() <= 2 {
            MacCount::PerOutputPixel
        } else {
            MacCount::Unknown
        }
    }

    fn input_precision(&self) -> Option<u32> {
        precision_of(&self.args.input_quantizer)
    }

    fn build(&self, g: &mut Graph, x: ValueId, ctx: &mut BuildContext) -> Result<ValueId> {
        self.check()?;
        let xs = g.value(x).shape.clone();
        let r = self.kernel_size.len();
        if xs.rank() != r + 2 {
            return Err(Error::shapes(
                "QuantConvTranspose",
                xs.dims(),
                &self.kernel_size,
                format!("layer `{}` needs input of rank {} for a {r}-D kernel", self.name, r + 2),
            ));
        }
        let (channels, spatial) = match self.data_format {
            DataFormat::ChannelsLast => (xs.dims()[r + 1], &xs.dims()[1..=r]),
            DataFormat::ChannelsFirst => (xs.dims()[1], &xs.dims()[2..]),
        };
        let output = spatial.iter().enumerate().map(|(i, &n)| self.output_length(i, n)).collect::<Result<Vec<_>>>()?;
        let mut kernel_dims = self.kernel_size.clone();
        kernel_dims.extend([self.filters, channels]);
        let (w, wq) = self.args.add_kernel(g, ctx, &self.name, crate::Shape::new(kernel_dims))?;
        let opts = ConvOptions {
            kernel: self.kernel_size.clone(),
            strides: self.strides.clone(),
            dilation: self.dilation_rate.clone(),
            padding: self.padding.clone(),
            format: self.data_format,
            groups: 1,
        };
        let y = match self.args.packed_clips() {
            Some((ci, ck)) => {
                super::QuantArgs::record_xnor(ctx, &self.name, ci);
                g.binary_conv_transpose(x, super::binary_operand(g, w, wq), &opts, &output, ci, ck)?
            }
            None => {
                let xq = self.args.quantize_input(g, x)?;
                match self.args.lowbit_operands(g, xq, wq) {
                    Some(pair) if pair.w.channel_scale.is_none() => {
                        pair.commit(g, ctx, &self.name)?;
                        g.lowbit_conv_transpose(&pair.x, &pair.w, &opts, &output)?
                    }
                    _ => {
                        self.args.record_float(ctx, &self.name, false);
                        g.conv_transpose(xq, wq, &opts, &output)?
                    }
                }
            }
        };
        let first = (self.data_format == DataFormat::ChannelsFirst).then_some(r);
        self.args.finish(g, ctx, &self.name, y, self.filters, first)
    }
}

super::arguments::class_constructors!(
    "Larq's quantized transposed convolution, a [`QuantConvTranspose`]", QuantConvTranspose,
    |filters, k, _class| QuantConvTranspose::new(filters, &k);
    QuantConv1DTranspose => 1, QuantConv2DTranspose => 2, QuantConv3DTranspose => 3
);

super::arguments::class_constructors!(
    "Keras' transposed convolution, a [`QuantConvTranspose`] without quantizers named as Keras names it", QuantConvTranspose,
    |filters, k, class| super::auto_named_as(QuantConvTranspose::new(filters, &k), class);
    Conv2DTranspose => 2
);
