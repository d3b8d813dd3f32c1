//! TF Model Optimization's quantizers: the [`Quantizer`] trait (build state, apply in training or
//! inference) and the three built-in range algorithms, [`LastValueQuantizer`],
//! [`MovingAverageQuantizer`] and [`AllValuesQuantizer`], each fake-quantizing with TensorFlow's
//! kernels ([`Graph::fake_quant`]).
//!
//! In training a built-in quantizer takes this batch's range (per channel of the last axis with
//! `per_axis`, else of the whole tensor), makes it hold 0 (asymmetric: `[min(bmin, 0), max(bmax,
//! 0)]`; symmetric: `[min(bmin, bmax / r), max(bmax, bmin * r)]` with `r = -1` for a narrow range
//! and `-(2^n - 2) / 2^n` otherwise), folds it into its state by its rule, and quantizes with the
//! new state; in inference it quantizes with the stored state. No gradient flows into a range
//! (TF-MOT's ranges are non-trainable variables); the input's gradient is straight through inside
//! it. Unlike TF-MOT, whose MovingAverage and AllValues quantizers fail or quantize per tensor
//! when asked for `per_axis`, every quantizer here honours it, for tensors of any rank.

use std::fmt::Debug;

use crate::error::{Error, Result};
use crate::graph::{BinaryOp, FakeQuantSpec, Graph, UnaryOp, ValueId};
use crate::layers::{add_weight, BuildContext, Initializer, Mode, WeightSpec};
use crate::tensor::{HostTensor, Shape};

/// A quantization algorithm for quantization-aware training (TF-MOT's `Quantizer`): it creates
/// its state for a tensor, then quantizes values of that tensor, updating its state in training.
/// Implement it for custom algorithms.
pub trait Quantizer: Debug + Send + Sync {
    /// Creates the state variables for quantizing the tensor `tensor` (e.g. `kernel`,
    /// `post_activation`) of shape `shape` in layer `layer`, through [`add_weight`] so that
    /// checkpoints keep them; returns them in the order [`Quantizer::apply`] takes them.
    fn build(&self, g: &mut Graph, ctx: &mut BuildContext, shape: &Shape, layer: &str, tensor: &str) -> Result<Vec<ValueId>>;
    /// `x` quantized with `state`; in training mode (`ctx.mode`) the state is updated first.
    fn apply(&self, g: &mut Graph, ctx: &mut BuildContext, x: ValueId, state: &[ValueId]) -> Result<ValueId>;
    /// Bits of the quantized values (for summaries and exports).
    fn num_bits(&self) -> u32;
    /// The TensorFlow fake quantization this quantizer applies with its `(min, max)` state, if
    /// it is one: what lets an integer export ([`super::export`]) store its values as codes.
    fn fake_quant_spec(&self) -> Option<FakeQuantSpec> {
        None
    }
}

/// The settings the three built-in quantizers share (TF-MOT's arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Bits, 2..=16.
    pub num_bits: u32,
    /// One range per channel of the last axis.
    pub per_axis: bool,
    /// A range symmetric around 0.
    pub symmetric: bool,
    /// Leave out the lowest level (`[1, 2^n - 1]`).
    pub narrow_range: bool,
}

/// TF-MOT's `LastValueQuantizer`: the range is the last training batch's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastValueQuantizer(pub Settings);

/// TF-MOT's `MovingAverageQuantizer`: the range is an exponential moving average (decay 0.999,
/// no debiasing) of the training batches' ranges, from `[-6, 6]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MovingAverageQuantizer(pub Settings);

/// TF-MOT's `AllValuesQuantizer`: the range covers every training batch seen, from `[0, 0]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllValuesQuantizer(pub Settings);

/// How a built-in quantizer folds a batch's range into its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    LastValue,
    MovingAverage,
    AllValues,
}

impl Settings {
    /// Settings with these values.
    pub fn new(num_bits: u32, per_axis: bool, symmetric: bool, narrow_range: bool) -> Self {
        Settings { num_bits, per_axis, symmetric, narrow_range }
    }

    fn check(&self, class: &'static str, layer: &str, tensor: &str) -> Result<()> {
        if !(2..=16).contains(&self.num_bits) {
            return Err(Error::invalid(class, "num_bits", format!("{} (for `{layer}/{tensor}`) is not in 2..=16", self.num_bits)));
        }
        Ok(())
    }

    fn spec(&self) -> FakeQuantSpec {
        FakeQuantSpec { num_bits: self.num_bits, narrow_range: self.narrow_range, per_channel: self.per_axis }
    }

    /// TF-MOT's ratio of the negative to the positive end of a symmetric range.
    fn min_max_ratio(&self) -> f32 {
        if self.narrow_range {
            -1.0
        } else {
            -(((1u64 << self.num_bits) - 2) as f64 / (1u64 << self.num_bits) as f64) as f32
        }
    }
}

/// The decay of [`MovingAverageQuantizer`]'s average; the update multiplies by `1 - decay`
/// computed in f64 and rounded to f32, as TensorFlow's `assign_moving_average` does.
const EMA_DECAY: f64 = 0.999;

fn build_range(
    s: &Settings,
    rule: Rule,
    g: &mut Graph,
    ctx: &mut BuildContext,
    shape: &Shape,
    layer: &str,
    tensor: &str,
) -> Result<Vec<ValueId>> {
    let class = match rule {
        Rule::LastValue => "LastValueQuantizer",
        Rule::MovingAverage => "MovingAverageQuantizer",
        Rule::AllValues => "AllValuesQuantizer",
    };
    s.check(class, layer, tensor)?;
    let channels = if s.per_axis { *shape.dims().last().unwrap_or(&1) } else { 1 };
    let init = if rule == Rule::AllValues { 0.0 } else { 6.0 };
    let mut state = Vec::new();
    for (end, value) in [("min", -init), ("max", init)] {
        let weight = format!("{tensor}_{end}");
        let spec = WeightSpec { trainable: false, ..WeightSpec::plain(layer, &weight, [channels], Initializer::Constant(value)) };
        let var = add_weight(g, ctx, spec)?.0;
        if let Some(w) = ctx.weights.iter_mut().find(|w| w.variable == var) {
            w.optional = true;
        }
        state.push(var);
    }
    Ok(state)
}

fn apply_range(s: &Settings, rule: Rule, g: &mut Graph, ctx: &mut BuildContext, x: ValueId, state: &[ValueId]) -> Result<ValueId> {
    let [min_var, max_var] = state else {
        return Err(Error::invalid("quantizer", "state", format!("takes a min and a max variable, got {} values", state.len())));
    };
    if ctx.mode == Mode::Inference {
        return g.fake_quant(x, *min_var, *max_var, s.spec());
    }
    let range_shape = g.value(*min_var).shape.clone();
    let rank = g.value(x).shape.rank();
    let axes: Vec<usize> = (0..if s.per_axis { rank.saturating_sub(1) } else { rank }).collect();
    let batch_max = reduce_max(g, x, &axes, &range_shape)?;
    let negated = g.unary(UnaryOp::Neg, x)?;
    let negated_min = reduce_max(g, negated, &axes, &range_shape)?;
    let batch_min = g.unary(UnaryOp::Neg, negated_min)?;
    let zero = g.constant(HostTensor::f32([1], vec![0.0])?)?;
    let (new_min, new_max) = match (rule, s.symmetric) {
        (Rule::AllValues, symmetric) => {
            // TF-MOT widens the batch range symmetrically one end after the other, then keeps
            // the union with everything seen and with 0.
            let (mut lo, mut hi) = (batch_min, batch_max);
            if symmetric {
                let ratio = g.constant(HostTensor::f32([1], vec![s.min_max_ratio()])?)?;
                let hi_over = g.div(hi, ratio)?;
                lo = g.binary(BinaryOp::Min, lo, hi_over)?;
                let lo_times = g.mul(lo, ratio)?;
                hi = g.binary(BinaryOp::Max, hi, lo_times)?;
            }
            let lo = g.binary(BinaryOp::Min, *min_var, lo)?;
            let hi = g.binary(BinaryOp::Max, *max_var, hi)?;
            (g.binary(BinaryOp::Min, lo, zero)?, g.binary(BinaryOp::Max, hi, zero)?)
        }
        (rule, symmetric) => {
            let (lo, hi) = if symmetric {
                let ratio = g.constant(HostTensor::f32([1], vec![s.min_max_ratio()])?)?;
                let hi_over = g.div(batch_max, ratio)?;
                let lo_times = g.mul(batch_min, ratio)?;
                (g.binary(BinaryOp::Min, batch_min, hi_over)?, g.binary(BinaryOp::Max, batch_max, lo_times)?)
            } else {
                (g.binary(BinaryOp::Min, batch_min, zero)?, g.binary(BinaryOp::Max, batch_max, zero)?)
            };
            match rule {
                Rule::MovingAverage => {
                    let complement = (1.0 - EMA_DECAY) as f32;
                    let mut ema = |var: ValueId, batch: ValueId| -> Result<ValueId> {
                        let delta = g.sub(var, batch)?;
                        let delta = g.scale(delta, complement)?;
                        g.sub(var, delta)
                    };
                    (ema(*min_var, lo)?, ema(*max_var, hi)?)
                }
                _ => (lo, hi),
            }
        }
    };
    for (var, value) in [(*min_var, new_min), (*max_var, new_max)] {
        // The range is state, not a parameter: no gradient reaches the batch statistics.
        g.override_gradient(value, &[], |_, _| Ok(vec![]))?;
        g.assign(var, value)?;
    }
    g.fake_quant(x, new_min, new_max, s.spec())
}

/// The maximum of `x` over `axes`, shaped as a range (`[1]` or `[C]`).
fn reduce_max(g: &mut Graph, x: ValueId, axes: &[usize], range: &Shape) -> Result<ValueId> {
    let m = if axes.is_empty() { x } else { g.max(x, axes, false)? };
    g.reshape(m, range.clone())
}

macro_rules! range_quantizer {
    ($t:ident, $rule:expr) => {
        impl $t {
            /// A quantizer with these settings (TF-MOT's arguments, in its order).
            pub fn new(num_bits: u32, per_axis: bool, symmetric: bool, narrow_range: bool) -> Self {
                $t(Settings::new(num_bits, per_axis, symmetric, narrow_range))
            }
        }

        impl Quantizer for $t {
            fn build(&self, g: &mut Graph, ctx: &mut BuildContext, shape: &Shape, layer: &str, tensor: &str) -> Result<Vec<ValueId>> {
                build_range(&self.0, $rule, g, ctx, shape, layer, tensor)
            }

            fn apply(&self, g: &mut Graph, ctx: &mut BuildContext, x: ValueId, state: &[ValueId]) -> Result<ValueId> {
                apply_range(&self.0, $rule, g, ctx, x, state)
            }

            fn num_bits(&self) -> u32 {
                self.0.num_bits
            }

            fn fake_quant_spec(&self) -> Option<FakeQuantSpec> {
                Some(self.0.spec())
            }
        }
    };
}

range_quantizer!(LastValueQuantizer, Rule::LastValue);
range_quantizer!(MovingAverageQuantizer, Rule::MovingAverage);
range_quantizer!(AllValuesQuantizer, Rule::AllValues);
