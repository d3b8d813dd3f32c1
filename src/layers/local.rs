//! `QuantLocallyConnected1D` and `QuantLocallyConnected2D` (Larq), and with no quantizers Keras'
//! `LocallyConnected*D`: convolutions whose weights differ at every output position.

use std::sync::Arc;

use super::{add_weight, precision_of, Activation, BuildContext, Initializer, Layer, Regularizer, WeightSpec};
use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::graph::{ConvGeometry, ConvOptions, DataFormat, Graph, Padding, ValueId};
use crate::quantizers::Quantizer;

/// Larq's quantized locally connected layer (1-D or 2-D), Keras `implementation=1`: a kernel
/// `[output pixels, taps x channels, filters]` (taps then channels for channels-last input,
/// channels then taps for channels-first, as Keras flattens the patches) and a bias per output
/// position `[out..., filters]` (`[filters, out...]` channels-first). The product runs in f32 on
/// the quantized values, as a batch of per-pixel GEMMs.
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
    /// Quantizer of the input.
    pub input_quantizer: Option<Quantizer>,
    /// Quantizer of the kernel.
    pub kernel_quantizer: Option<Quantizer>,
    /// Activation of the output.
    pub activation: Activation,
    /// Add a bias.
    pub use_bias: bool,
    /// Kernel initializer (default glorot_uniform).
    pub kernel_initializer: Initializer,
    /// Bias initializer (default zeros).
    pub bias_initializer: Initializer,
    /// Applied to the kernel after each update.
    pub kernel_constraint: Option<Arc<dyn Constraint>>,
    /// Applied to the bias after each update.
    pub bias_constraint: Option<Arc<dyn Constraint>>,
    /// Penalty on the latent kernel, added to the loss.
    pub kernel_regularizer: Option<Regularizer>,
    /// Penalty on the bias, added to the loss.
    pub bias_regularizer: Option<Regularizer>,
    /// Kernel quantizer metrics; `None` uses the enclosing metrics scope.
    pub metrics: Option<Vec<String>>,
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
        precision_of(&self.input_quantizer)
    }

    fn build(&self, g: &mut Graph, x: ValueId, ctx: &mut BuildContext) -> Result<ValueId> {
        self.check()?;
        let xs = g.value(x).shape.clone();
        let opts = ConvOptions { strides: self.strides.clone(), format: self.data_format, ..ConvOptions::new(&self.kernel_size) };
        let geom = ConvGeometry::new(&xs, &opts.kernel, &opts.strides, &opts.dilation, &opts.padding, opts.format)
            .map_err(|e| self.bad("kernel_size", format!("input {:?}: {e}", xs.dims())))?;
        let (p, taps, c) = (geom.out_pixels(), geom.taps(), geom.channels);
        let spec = WeightSpec {
            layer: &self.name,
            weight: "kernel",
            shape: crate::Shape::new([p, taps * c, self.filters]),
            initializer: self.kernel_initializer,
            quantizer: self.kernel_quantizer.as_ref(),
            constraint: self.kernel_constraint.clone(),
            constraint_argument: "kernel_constraint",
            metrics: self.metrics.as_deref(),
            regularizer: self.kernel_regularizer,
        };
        let (_, wq) = add_weight(g, ctx, spec)?;
        // The graph's patches are taps-major with channels innermost; Keras flattens
        // channels-first patches channels-major.
        let wq = match self.data_format {
            DataFormat::ChannelsLast => wq,
            DataFormat::ChannelsFirst => {
                let w = g.reshape(wq, [p, c, taps, self.filters])?;
                let w = g.permute(w, &[0, 2, 1, 3])?;
                g.reshape(w, [p, taps * c, self.filters])?
            }
        };
        let xq = match &self.input_quantizer {
            Some(q) => q.apply(g, x)?,
            None => x,
        };
        let y = g.locally_connected(xq, wq, &opts)?;
        let y = if self.use_bias {
            let mut dims = geom.output.clone();
            match self.data_format {
                DataFormat::ChannelsLast => dims.push(self.filters),
                DataFormat::ChannelsFirst => dims.insert(0, self.filters),
            }
            let spec = WeightSpec {
                layer: &self.name,
                weight: "bias",
                shape: crate::Shape::new(dims),
                initializer: self.bias_initializer,
                quantizer: None,
                constraint: self.bias_constraint.clone(),
                constraint_argument: "bias_constraint",
                metrics: None,
                regularizer: self.bias_regularizer,
            };
            let (b, _) = add_weight(g, ctx, spec)?;
            g.add(y, b)?
        } else {
            y
        };
        self.activation.apply(g, y)
    }
}
