//! TensorFlow's fake quantization (`Op::FakeQuant`), the op TF-MOT's quantizers record, with
//! TensorFlow's nudged-range arithmetic ([`Nudged`]), which the integer export also uses;
//! WGSL: `shaders/fake_quant.wgsl`.

use super::{coded, Gpu, Grad, Grads, Host, Operands};
use crate::error::{Error, Result};
use crate::graph::{Graph, Op, ValueId};
use crate::kernels::fake_quant::{Params, FAKE_QUANT};
use crate::kernels::{grid_1d, BufferView, Dispatch, Step, WG};
use crate::tensor::{DType, Shape, TensorData};

/// TensorFlow's fake quantization (`tf.quantization.fake_quant_with_min_max_vars` and its
/// `_per_channel` variant), which TF-MOT's quantizers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FakeQuantSpec {
    /// Bits, 2..=16: integer levels `[narrow_range as u32, 2^num_bits - 1]`.
    pub num_bits: u32,
    /// Leave out the lowest level (symmetric ranges).
    pub narrow_range: bool,
    /// One range per last-axis channel (`min`, `max` of shape `[C]`) rather than one (`[1]`).
    /// TensorFlow's two kernels also round differently (the per-tensor one divides by the scale,
    /// the per-channel one multiplies by its inverse), so a one-channel per-axis range is not the
    /// same as a per-tensor one.
    pub per_channel: bool,
}

coded! {
    /// What an [`Op::FakeQuant`] computes: the value, or one of the masks its gradients need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum FakeQuantPart in "FAKE_QUANT_" {
        /// The fake-quantized value.
        Value,
        /// 1 where `nudged_min <= x <= nudged_max` (the gradient of the input), else 0.
        InRange,
        /// 1 where `x < nudged_min` (summed, the gradient of `min`), else 0.
        BelowMin,
        /// 1 where `x > nudged_max` (summed, the gradient of `max`), else 0.
        AboveMax,
    }
}

/// TensorFlow's nudged quantization range for `[min, max]` (`Nudge` in its fake-quant kernels),
/// computed in f32 in TensorFlow's order; `shaders/fake_quant.wgsl` mirrors it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Nudged {
    /// `(max - min) / (quant_max - quant_min)`.
    pub scale: f32,
    /// `(quant_max - quant_min) / (max - min)`, computed as such (not `1 / scale`).
    pub inv_scale: f32,
    /// The zero point, an integer in `[quant_min, quant_max]`.
    pub zero_point: f32,
    /// `(quant_min - zero_point) * scale`.
    pub min: f32,
    /// `(quant_max - zero_point) * scale`.
    pub max: f32,
    /// min = max = 0: the value is 0 and the input's gradient passes everywhere.
    pub empty: bool,
}

impl Nudged {
    /// The nudged range of `[min, max]` for `spec`.
    pub fn new(spec: FakeQuantSpec, min: f32, max: f32) -> Nudged {
        let quant_min = if spec.narrow_range { 1.0f32 } else { 0.0 };
        let quant_max = ((1u32 << spec.num_bits) - 1) as f32;
        let scale = (max - min) / (quant_max - quant_min);
        let inv_scale = (quant_max - quant_min) / (max - min);
        let from_min = quant_min - min / scale;
        // std::round: halves away from zero (from_min >= quant_min >= 0 here).
        let zero_point = if from_min < quant_min {
            quant_min
        } else if from_min > quant_max {
            quant_max
        } else {
            from_min.round()
        };
        let empty = min == 0.0 && max == 0.0;
        Nudged { scale, inv_scale, zero_point, min: (quant_min - zero_point) * scale, max: (quant_max - zero_point) * scale, empty }
    }

    /// The integer level of `x` relative to the zero point, in `[quant_min - zero_point,
    /// quant_max - zero_point]`: the fake-quantized value is `level * scale`.
    pub fn level(&self, spec: FakeQuantSpec, x: f32) -> f32 {
        let quant_zero = (-self.min * self.inv_scale + 0.5).floor();
        let shifted = x.min(self.max).max(self.min) - self.min;
        // TensorFlow's per-tensor kernel divides, its per-channel kernel multiplies.
        let units = if spec.per_channel { shifted * self.inv_scale } else { shifted / self.scale };
        (units - quant_zero + 0.5).floor()
    }

    /// The value or mask `part` at `x`.
    pub fn eval(&self, spec: FakeQuantSpec, part: FakeQuantPart, x: f32) -> f32 {
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        match part {
            FakeQuantPart::Value if self.empty => 0.0,
            FakeQuantPart::Value => self.level(spec, x) * self.scale,
            FakeQuantPart::InRange => flag(self.empty || (x >= self.min && x <= self.max)),
            FakeQuantPart::BelowMin => flag(!self.empty && x < self.min),
            FakeQuantPart::AboveMax => flag(!self.empty && x > self.max),
        }
    }
}

pub(crate) fn infer(spec: FakeQuantSpec, a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "x", DType::F32)?;
    a.want(1, "min", DType::F32)?;
    a.want(2, "max", DType::F32)?;
    if !(2..=16).contains(&spec.num_bits) {
        return Err(Error::invalid(a.name, "num_bits", format!("{} is not in 2..=16", spec.num_bits)));
    }
    let x = a.shape(0);
    let channels = if spec.per_channel { x.dims().last().copied().unwrap_or(1) } else { 1 };
    for (i, what) in [(1, "min"), (2, "max")] {
        if a.shape(i).dims() != [channels] {
            let want = if spec.per_channel { "one value per last-axis channel" } else { "shape [1]" };
            return Err(Error::shapes(a.name, x.dims(), a.shape(i).dims(), format!("`{what}` must have {want}")));
        }
    }
    Ok((x.clone(), DType::F32))
}

/// Straight through inside the nudged range; the range's gradients sum what falls below and
/// above it (TensorFlow's FakeQuantWithMinMaxVars[PerChannel]Gradient). The masks are piecewise
/// constant.
pub(crate) fn backward(g: &mut Graph, spec: FakeQuantSpec, part: FakeQuantPart, r: &Grad) -> Result<Grads> {
    if part != FakeQuantPart::Value {
        return Ok(vec![None, None, None]);
    }
    let inputs = &r.node.inputs;
    let mut mask = |part| g.push1(Op::FakeQuant { spec, part }, inputs);
    let (inside, below, above) = (mask(FakeQuantPart::InRange)?, mask(FakeQuantPart::BelowMin)?, mask(FakeQuantPart::AboveMax)?);
    let dy = r.dy;
    let dx = g.mul(dy, inside)?;
    let mut range = |m: ValueId, of: ValueId| -> Result<ValueId> {
        let gm = g.mul(dy, m)?;
        let target = g.value(of).shape.clone();
        g.sum_to(gm, &target)
    };
    let (dmin, dmax) = (range(below, r.x(1))?, range(above, r.x(2))?);
    Ok(vec![Some(dx), Some(dmin), Some(dmax)])
}

pub(crate) fn eval(spec: FakeQuantSpec, part: FakeQuantPart, h: &Host) -> Result<TensorData> {
    let (x, min, max) = (h.f32(0)?, h.f32(1)?, h.f32(2)?);
    let ranges: Vec<Nudged> = min.iter().zip(max).map(|(&lo, &hi)| Nudged::new(spec, lo, hi)).collect();
    Ok(TensorData::F32(x.iter().enumerate().map(|(i, &v)| ranges[i % ranges.len()].eval(spec, part, v)).collect()))
}

pub(crate) fn record(spec: FakeQuantSpec, part: FakeQuantPart, d: &Gpu) -> Result<Step> {
    Ok(Step::Dispatch(fake_quant(spec, part, d.shape(0).numel(), d.shape(1).numel(), [d.x(0), d.x(1), d.x(2)], d.out()?)))
}

/// `out = part(x; min, max)` for `n` elements and `channels` ranges.
fn fake_quant(
    spec: FakeQuantSpec,
    part: FakeQuantPart,
    n: usize,
    channels: usize,
    [x, min, max]: [&BufferView; 3],
    out: &BufferView,
) -> Dispatch {
    let params = Params {
        n: n as u32,
        channels: channels as u32,
        part: part.code(),
        per_channel: u32::from(spec.per_channel),
        quant_min: if spec.narrow_range { 1.0 } else { 0.0 },
        quant_max: ((1u32 << spec.num_bits) - 1) as f32,
        _pad0: 0,
        _pad1: 0,
    };
    Dispatch::new(FAKE_QUANT, &params, &[(1, x), (2, min), (3, max), (4, out)], grid_1d(n, WG))
}
