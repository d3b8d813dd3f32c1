//! `QuantLocallyConnected1D` and `QuantLocallyConnected2D` (Larq), and with no quantizers Keras'
//! `LocallyConnected*D`: convolutions whose weights differ at every output position.

use super::{add_weight, precision_of, BuildContext, Layer, QuantArgs, QuantLayer, WeightSpec};
use crate::error::{Error, Result};
use crate::graph::{ConvGeometry, ConvOptions, DataFormat, Graph, Padding, ValueId};

/// Larq's quantized locally connected layer (1-D or 2-D), Keras `implementation=1`: a kernel
/// `[output pixels, taps x channels, filters]` (taps then channels for channels-last input,
/// channels then taps for channels-first, as Keras flattens the patches) and a bias per output
/// position `[out..., filters]` (`[filters, out...]` channels-first). The product is a batch of
/// per-pixel GEMMs: XNOR-popcount on packed bits when both quantizers are SteSign, f32 on the
/// quantized values otherwise.
#[derive(Clone, Debug)]
pub struct QuantLocallyConnected {
    /// Layer name, prefix of its variables.
    pub name: String,
    /// Output channels.
    pub filters: usize,
    /// Kernel size per spatial axis (1 or 2 values).
    pub kernel_size: Vec<usize>,
    /// Strides.
    pub strides: Vec<usize>,
    /// Only valid (Keras allows same only for implementation 2).
    pub padding: Padding,
    /// Layout of input and output.
    pub data_format: DataFormat,
    /// Keras' `implementation`: 1 is supported (see the error for 2 and 3).
    pub implementation: u32,
    /// Quantizers, activation, bias, initializers, constraints, regularizers, metrics.
    pub args: QuantArgs,
}

impl QuantLocallyConnected {
    /// Keras' defaults for the dimensionality of `kernel_size`: stride 1, valid, channels last,
    /// implementation 1, no quantizers, linear, bias.
    pub fn new(name: &str, filters: usize, kernel_size: &[usize]) -> Self {
        QuantLocallyConnected {
            name: name.to_string(),
            filters,
            kernel_size: kernel_size.to_vec(),
            strides: vec![1; kernel_size.len()],
            padding: Padding::Valid,
            data_format: DataFormat::ChannelsLast,
            implementation: 1,
            args: QuantArgs::default(),
        }
    }

    fn bad(&self, arg: &'static str, why: String) -> Error {
        Error::invalid("QuantLocallyConnected", arg, format!("layer `{}`: {why}", self.name))
    }

    fn check(&self) -> Result<()> {
        if !(1..=2).contains(&self.kernel_size.len()) {
            return Err(self.bad("kernel_size", format!("{:?} needs 1 or 2 values", self.kernel_size)));
        }
        if self.filters == 0 {
            return Err(self.bad("filters", "must be positive".into()));
        }
        match self.implementation {
            1 => {}
            2 | 3 => {
                return Err(self.bad(
                    "implementation",
                    format!(
                        "{} (a masked dense or sparse kernel) is not supported; implementation 1 computes the same function",
                        self.implementation
                    ),
                ))
            }
            other => return Err(self.bad("implementation", format!("{other} must be 1, 2 or 3"))),
        }
        if self.padding != Padding::Valid {
            return Err(self.bad("padding", "implementation 1 supports only valid padding (as in Keras)".into()));
        }
        Ok(())
    }
}

impl QuantLayer for QuantLocallyConnected {
    fn args_mut(&mut self) -> &mut QuantArgs {
        &mut self.args
    }
}

impl Layer for QuantLocallyConnected {
    fn name(&self) -> &str {
        &self.name
    }

    fn class(&self) -> &str {
        if self.kernel_size.len() == 1 {
            "QuantLocallyConnected1D"
        } else {
            "QuantLocallyConnected2D"
        }
    }

    fn input_precision(&self) -> Option<u32> {
        precision_of(&self.args.input_quantizer)
    }

    fn build(&self, g: &mut Graph, x: ValueId, ctx: &mut BuildContext) -> Result<ValueId> {
        self.check()?;
        let xs = g.value(x).shape.clone();
        let opts = ConvOptions { strides: self.strides.clone(), format: self.data_format, ..ConvOptions::new(&self.kernel_size) };
        let geom = ConvGeometry::new(&xs, &opts.kernel, &opts.strides, &opts.dilation, &opts.padding, opts.format)
            .map_err(|e| self.bad("kernel_size", format!("input {:?}: {e}", xs.dims())))?;
        let (p, taps, c) = (geom.out_pixels(), geom.taps(), geom.channels);
        let (w, wq) = self.args.add_kernel(g, ctx, &self.name, crate::Shape::new([p, taps * c, self.filters]))?;
        // The graph's patches are taps-major with channels innermost; Keras flattens
        // channels-first patches channels-major.
        let taps_major = |g: &mut Graph, k: ValueId| -> Result<ValueId> {
            match self.data_format {
                DataFormat::ChannelsLast => Ok(k),
                DataFormat::ChannelsFirst => {
                    let k = g.reshape(k, [p, c, taps, self.filters])?;
                    let k = g.permute(k, &[0, 2, 1, 3])?;
                    g.reshape(k, [p, taps * c, self.filters])
                }
            }
        };
        let y = match self.args.packed_clips() {
            Some((ci, ck)) => {
                let w = taps_major(g, w)?;
                g.binary_locally_connected(x, w, &opts, ci, ck)?
            }
            None => {
                let wq = taps_major(g, wq)?;
                let xq = self.args.quantize_input(g, x)?;
                g.locally_connected(xq, wq, &opts)?
            }
        };
        let y = if self.args.use_bias {
            let mut dims = geom.output.clone();
            match self.data_format {
                DataFormat::ChannelsLast => dims.push(self.filters),
                DataFormat::ChannelsFirst => dims.insert(0, self.filters),
            }
            let spec = WeightSpec {
                layer: &self.name,
                weight: "bias",
                shape: crate::Shape::new(dims),
                initializer: self.args.bias_initializer,
                quantizer: None,
                constraint: self.args.bias_constraint.clone(),
                constraint_argument: "bias_constraint",
                metrics: None,
                regularizer: self.args.bias_regularizer,
                trainable: true,
            };
            let (b, _) = add_weight(g, ctx, spec)?;
            g.add(y, b)?
        } else {
            y
        };
        self.args.activation.apply(g, y)
    }
}
