//! Larq's quantizer functions and their pseudo-gradients (`Op::Quantize`, `Op::QuantizeGrad`);
//! WGSL: `shaders/quantize.wgsl`. User-defined quantizers are their own family
//! ([`super::custom_quantize`]).
//!
//! Adding a quantizer function: a variant of [`QuantFn`] (with its `ALL` example), its arms in
//! `QuantFn::params`, `quantize` and `quantize_grad`, and its WGSL cases under the
//! constant `QUANT_<NAME>`.

use super::{coded, sign, Gpu, Grad, Grads, Host, Operands};
use crate::error::{Error, Result};
use crate::graph::{Graph, Op};
use crate::kernels::quantize::{Params, QUANTIZE, QUANTIZE_GRAD};
use crate::kernels::{grid_1d, BufferView, Dispatch, Step, WG};
use crate::tensor::{DType, Shape, TensorData};

coded! {
    /// One of Larq's quantizer functions with its parameters: the elementwise part of a quantizer.
    /// Statistics that some quantizers need (see [`QuantFn::needs_stat`]) are computed by graph
    /// reductions and passed as a second operand; no gradient flows into them.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum QuantFn in "QUANT_" {
        /// sign(x), gradient 1 where |x| <= clip (`None`: everywhere).
        SteSign {
            /// Straight-through window.
            clip: Option<f32>,
        } = QuantFn::SteSign { clip: Some(1.0) },
        /// sign(x), gradient 2 - 2|x| where |x| <= 1.
        ApproxSign,
        /// 1 for x > 0 else 0, gradient 1 where |x| <= clip.
        SteHeaviside {
            /// Straight-through window.
            clip: Option<f32>,
        } = QuantFn::SteHeaviside { clip: Some(1.0) },
        /// sign(x), gradient b(2 - bx tanh(bx/2)) / (1 + cosh(bx)).
        SwishSign {
            /// Sharpness.
            beta: f32,
        } = QuantFn::SwishSign { beta: 5.0 },
        /// s * sign(x) with a per-channel scale `s` (the statistic), gradient s where |x| <= clip:
        /// MagnitudeAwareSign.
        ScaledSign {
            /// Straight-through window.
            clip: Option<f32>,
        } = QuantFn::ScaledSign { clip: Some(1.0) },
        /// sign(sign(x + D) + sign(x - D)) with TensorFlow's sign (0 at 0), gradient 1 where
        /// |x| <= clip; D is `threshold`, or the statistic when `None` (ternary weight networks).
        SteTern {
            /// Fixed threshold, or `None` to read it from the statistic.
            threshold: Option<f32>,
            /// Straight-through window.
            clip: Option<f32>,
        } = QuantFn::SteTern { threshold: Some(0.05), clip: Some(1.0) },
        /// round(clip(x, 0, 1) * n) / n, gradient 1 on [0, 1].
        DoReFaActivations {
            /// n = 2^k_bit - 1.
            levels: u32,
        } = QuantFn::DoReFaActivations { levels: 3 },
        /// 2 round(n (tanh(x) / (2m) + 1/2)) / n - 1 with m = max|tanh(x)| (the statistic),
        /// gradient (1 - tanh(x)^2) / m.
        DoReFaWeights {
            /// n = 2^k_bit - 1.
            levels: u32,
        } = QuantFn::DoReFaWeights { levels: 3 },
        /// x, gradient 1.
        Identity,
    }
}

impl QuantFn {
    /// True when the function reads a statistic operand.
    pub fn needs_stat(self) -> bool {
        matches!(self, QuantFn::ScaledSign { .. } | QuantFn::SteTern { threshold: None, .. } | QuantFn::DoReFaWeights { .. })
    }

    /// Parameters shared with `shaders/quantize.wgsl`: (clip, a, levels).
    pub(crate) fn params(self) -> (f32, f32, f32) {
        let clip = |c: Option<f32>| c.unwrap_or(f32::INFINITY);
        match self {
            QuantFn::SteSign { clip: c } | QuantFn::SteHeaviside { clip: c } | QuantFn::ScaledSign { clip: c } => (clip(c), 0.0, 0.0),
            QuantFn::ApproxSign => (1.0, 0.0, 0.0),
            QuantFn::SwishSign { beta } => (f32::INFINITY, beta, 0.0),
            QuantFn::SteTern { threshold, clip: c } => (clip(c), threshold.unwrap_or(0.0), 0.0),
            QuantFn::DoReFaActivations { levels } => (1.0, 0.0, levels as f32),
            QuantFn::DoReFaWeights { levels } => (f32::INFINITY, 0.0, levels as f32),
            QuantFn::Identity => (f32::INFINITY, 0.0, 0.0),
        }
    }
}

/// `(x [, stat]) -> q(x)` and `(x [, stat], dy) -> dq/dx * dy`.
pub(crate) fn infer(f: QuantFn, grad: bool, a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "x", DType::F32)?;
    let x = a.shape(0);
    if f.needs_stat() {
        a.want(1, "stat", DType::F32)?;
        let st = a.shape(1);
        let len = st.numel();
        let last = x.dims().last().copied().unwrap_or(1);
        if st.rank() != 1 || (len != 1 && len != last) {
            return Err(Error::shapes(a.name, x.dims(), st.dims(), "the statistic must be [1] or one value per last-axis channel"));
        }
    }
    if grad {
        let dy = a.inputs.len() - 1;
        a.want(dy, "dy", DType::F32)?;
        a.same_shape(0, dy)?;
    }
    Ok((x.clone(), DType::F32))
}

/// The statistic is a constant for the gradient (Larq stops gradients through it).
pub(crate) fn backward(g: &mut Graph, f: QuantFn, r: &Grad) -> Result<Grads> {
    let mut ins = r.node.inputs.clone();
    ins.push(r.dy);
    let dx = g.push1(Op::QuantizeGrad { f }, &ins)?;
    let mut grads = vec![Some(dx)];
    if f.needs_stat() {
        grads.push(None);
    }
    Ok(grads)
}

pub(crate) fn eval(q: QuantFn, h: &Host) -> Result<TensorData> {
    let (x, stat) = (h.f32(0)?, if q.needs_stat() { h.f32(1)? } else { &[][..] });
    Ok(TensorData::F32(x.iter().enumerate().map(|(i, &v)| quantize(q, v, stat_at(stat, i))).collect()))
}

pub(crate) fn eval_grad(q: QuantFn, h: &Host) -> Result<TensorData> {
    let x = h.f32(0)?;
    let stat = if q.needs_stat() { h.f32(1)? } else { &[][..] };
    let dy = h.f32(h.inputs.len() - 1)?;
    Ok(TensorData::F32(x.iter().zip(dy).enumerate().map(|(i, (&v, &g))| quantize_grad(q, v, stat_at(stat, i), g)).collect()))
}

pub(crate) fn record(f: QuantFn, d: &Gpu) -> Result<Step> {
    let n = d.shape(0).numel();
    Ok(Step::Dispatch(dispatch(f, n, d.x(0), f.needs_stat().then(|| d.x(1)), d.out()?)))
}

pub(crate) fn record_grad(f: QuantFn, d: &Gpu) -> Result<Step> {
    let n = d.shape(0).numel();
    let dy = d.x(d.inputs.len() - 1);
    Ok(Step::Dispatch(dispatch_grad(f, n, d.x(0), f.needs_stat().then(|| d.x(1)), dy, d.out()?)))
}

fn stat_at(stat: &[f32], i: usize) -> f32 {
    if stat.is_empty() {
        0.0
    } else {
        stat[i % stat.len()]
    }
}

/// TensorFlow's sign: 0 at 0.
fn tf_sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

fn passes(v: f32, clip: Option<f32>) -> bool {
    clip.is_none_or(|c| v.abs() <= c)
}

/// The quantizer functions, as `shaders/quantize.wgsl` defines them (Larq 0.14's operations).
pub(crate) fn quantize(q: QuantFn, v: f32, stat: f32) -> f32 {
    match q {
        QuantFn::SteSign { .. } | QuantFn::ApproxSign | QuantFn::SwishSign { .. } => sign(v),
        QuantFn::SteHeaviside { .. } => {
            if v > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        QuantFn::ScaledSign { .. } => stat * sign(v),
        QuantFn::SteTern { threshold, .. } => {
            let d = threshold.unwrap_or(stat);
            tf_sign(tf_sign(v + d) + tf_sign(v - d))
        }
        QuantFn::DoReFaActivations { levels } => (v.clamp(0.0, 1.0) * levels as f32).round_ties_even() / levels as f32,
        QuantFn::DoReFaWeights { levels } => {
            let m2 = 2.0 * stat;
            let normed = if m2 == 0.0 { 0.0 } else { v.tanh() / m2 } + 0.5;
            2.0 * ((normed * levels as f32).round_ties_even() / levels as f32) - 1.0
        }
        QuantFn::Identity => v,
    }
}

/// The quantizers' pseudo-gradients times `g`.
pub(crate) fn quantize_grad(q: QuantFn, v: f32, stat: f32, g: f32) -> f32 {
    let masked = |pass: bool, value: f32| if pass { value } else { 0.0 };
    match q {
        QuantFn::SteSign { clip } | QuantFn::SteHeaviside { clip } | QuantFn::SteTern { clip, .. } => masked(passes(v, clip), g),
        QuantFn::ApproxSign => masked(v.abs() <= 1.0, (1.0 - v.abs()) * 2.0 * g),
        QuantFn::SwishSign { beta } => {
            let bx = beta * v;
            g * beta * (2.0 - bx * (bx * 0.5).tanh()) / (1.0 + bx.cosh())
        }
        QuantFn::ScaledSign { clip } => masked(passes(v, clip), stat * g),
        QuantFn::DoReFaActivations { .. } => masked((0.0..=1.0).contains(&v), g),
        QuantFn::DoReFaWeights { .. } => {
            let t = v.tanh();
            let m2 = 2.0 * stat;
            (if m2 == 0.0 { 0.0 } else { (2.0 * g) / m2 }) * (1.0 - t * t)
        }
        QuantFn::Identity => g,
    }
}

fn params(f: QuantFn, n: usize, stat: Option<&BufferView>) -> Params {
    let (clip, a, levels) = f.params();
    let stat_len = stat.map_or(1, |s| (s.size / 4) as u32);
    Params { n: n as u32, _pad1: 0, stat_len, has_stat: u32::from(stat.is_some()), clip, a, levels, _pad0: 0 }
}

/// `out = q(x)`; without a statistic, `x` is bound in its slot (it is never read there).
fn dispatch(f: QuantFn, n: usize, x: &BufferView, stat: Option<&BufferView>, out: &BufferView) -> Dispatch {
    Dispatch::new(QUANTIZE[f.code() as usize].clone(), &params(f, n, stat), &[(1, x), (2, stat.unwrap_or(x)), (4, out)], grid_1d(n, WG))
}

/// `out = dq/dx * dy`.
fn dispatch_grad(f: QuantFn, n: usize, x: &BufferView, stat: Option<&BufferView>, dy: &BufferView, out: &BufferView) -> Dispatch {
    Dispatch::new(
        QUANTIZE_GRAD[f.code() as usize].clone(),
        &params(f, n, stat),
        &[(1, x), (2, stat.unwrap_or(x)), (3, dy), (4, out)],
        grid_1d(n, WG),
    )
}
