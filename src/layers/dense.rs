//! `QuantDense` (Larq) and, with no quantizers, Keras' `Dense`.

use super::{precision_of, BuildContext, Layer, MacCount, QuantArgs, QuantLayer};
use crate::error::{Error, Result};
use crate::graph::{Graph, ValueId};

/// Larq's `QuantDense`: `activation(input_quantizer(x) @ kernel_quantizer(kernel) + bias)`,
/// applied to the last axis of `x`. The kernel variable holds the latent weights.
///
/// When both quantizers are SteSign, the product runs on packed bits (XNOR-popcount) and its
/// straight-through backward keeps only packed signs and masks; when both quantizers' values are
/// otherwise discrete (±1, ±alpha, {0, 1}, ternary, DoReFa's levels) it runs on bit planes
/// ([`Graph::lowbit_matmul`]); otherwise the quantized values are multiplied in f32.
#[derive(Clone, Debug)]
pub struct QuantDense {
    /// Layer name, prefix of its variables.
    pub name: String,
    /// Output features.
    pub units: usize,
    /// Quantizers, activation, bias, initializers, constraints, regularizers, metrics.
    pub args: QuantArgs,
    /// Its identity ([`Layer::id`]), kept by clones: a clone is the same layer.
    pub id: super::LayerId,
}

impl QuantDense {
    /// A layer with Keras' defaults: no quantizers, linear activation, bias, glorot_uniform.
    pub fn new(units: usize) -> Self {
        super::auto_named(QuantDense { id: super::LayerId::new(), name: String::new(), units, args: QuantArgs::default() })
    }
}

impl QuantLayer for QuantDense {
    fn args_mut(&mut self) -> &mut QuantArgs {
        &mut self.args
    }
}

impl Layer for QuantDense {
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
        "QuantDense"
    }

    fn input_precision(&self) -> Option<u32> {
        precision_of(&self.args.input_quantizer)
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
        // The quantized kernel in f32 is only used by the float path and metrics; on the packed
        // path nothing else reads it and the planner prunes it.
        let (w, wq) = self.args.add_kernel(g, ctx, &self.name, crate::Shape::new([k, self.units]))?;
        let y = match (self.args.packed_clips(), self.args.sign_kernel_clip(g, w)) {
            (Some((input_clip, kernel_clip)), _) => {
                QuantArgs::record_xnor(ctx, &self.name, input_clip);
                g.binary_matmul(x, w, input_clip, kernel_clip)?
            }
            (None, Some(kernel_clip)) => {
                self.args.record_float(ctx, &self.name, true);
                let signs = g.packed_sign(w, kernel_clip)?;
                g.matmul(x, signs)?
            }
            (None, None) if self.args.other_sign_kernel(g, w) => {
                self.args.record_float(ctx, &self.name, true);
                let signs = g.sign_bits_of(w, wq)?;
                g.matmul(x, signs)?
            }
            _ => {
                let xq = self.args.quantize_input(g, x)?;
                match self.args.lowbit_operands(g, xq, wq) {
                    Some(pair) => {
                        pair.commit(g, ctx, &self.name)?;
                        g.lowbit_matmul(&pair.x, &pair.w)?
                    }
                    None => {
                        self.args.record_float(ctx, &self.name, false);
                        g.matmul(xq, wq)?
                    }
                }
            }
        };
        self.args.finish(g, ctx, &self.name, y, self.units, None)
    }
}

/// Keras' `Dense`: a [`QuantDense`] without quantizers (what Larq's layer computes then), named
/// as Keras names a `Dense` (`dense`, `dense_1`, ...).
pub struct Dense;

impl Dense {
    /// `Dense(units)`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(units: usize) -> QuantDense {
        super::auto_named_as(QuantDense::new(units), "Dense")
    }
}
