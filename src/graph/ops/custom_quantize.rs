//! User-defined quantizer functions (`Op::CustomQuantize`, `Op::CustomQuantizeGrad`): the
//! user's WGSL `forward`/`gradient` spliced into `shaders/custom_quantize.wgsl`, and a Rust pair
//! for the CPU reference. The op holds the function by value ([`CustomFn`] behind an `Arc`), so
//! a graph carries everything needed to run it.

use std::sync::Arc;

use super::{Gpu, Grad, Grads, Host, Operands};
use crate::error::Result;
use crate::graph::{Graph, Op};
use crate::kernels::{custom_quantize, CustomShader, Step};
use crate::tensor::{DType, Shape, TensorData};

/// The CPU forward of a custom quantizer.
pub type ForwardFn = dyn Fn(f32) -> f32 + Send + Sync;
/// The CPU pseudo-gradient of a custom quantizer: `(x, dy) -> dx`.
pub type GradientFn = dyn Fn(f32, f32) -> f32 + Send + Sync;

/// A custom quantizer function: its WGSL module and its CPU reference.
pub struct CustomFn {
    /// The quantizer's name.
    pub name: String,
    /// The spliced WGSL module.
    pub(crate) shader: Arc<CustomShader>,
    pub(crate) forward: Box<ForwardFn>,
    pub(crate) gradient: Box<GradientFn>,
}

impl CustomFn {
    /// A function from its spliced module and CPU pair.
    pub(crate) fn new(name: &str, shader: Arc<CustomShader>, forward: Box<ForwardFn>, gradient: Box<GradientFn>) -> Arc<Self> {
        Arc::new(CustomFn { name: name.to_string(), shader, forward, gradient })
    }
}

impl std::fmt::Debug for CustomFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CustomFn({})", self.name)
    }
}

/// Two ops are the same function only when they hold the same definition.
impl PartialEq for CustomFn {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

pub(crate) fn infer(grad: bool, a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "x", DType::F32)?;
    if grad {
        a.want(1, "dy", DType::F32)?;
        a.same_shape(0, 1)?;
    }
    Ok((a.shape(0).clone(), DType::F32))
}

pub(crate) fn backward(g: &mut Graph, f: &Arc<CustomFn>, r: &Grad) -> Result<Grads> {
    Ok(vec![Some(g.push1(Op::CustomQuantizeGrad { f: f.clone() }, &[r.x(0), r.dy])?)])
}

pub(crate) fn eval(f: &CustomFn, h: &Host) -> Result<TensorData> {
    Ok(TensorData::F32(h.f32(0)?.iter().map(|&v| (f.forward)(v)).collect()))
}

pub(crate) fn eval_grad(f: &CustomFn, h: &Host) -> Result<TensorData> {
    Ok(TensorData::F32(h.f32(0)?.iter().zip(h.f32(1)?).map(|(&v, &g)| (f.gradient)(v, g)).collect()))
}

pub(crate) fn record(f: &CustomFn, d: &Gpu) -> Result<Step> {
    Ok(Step::Dispatch(custom_quantize::quantize(&f.shader, d.shape(0).numel(), d.x(0), d.out()?)))
}

pub(crate) fn record_grad(f: &CustomFn, d: &Gpu) -> Result<Step> {
    Ok(Step::Dispatch(custom_quantize::quantize_grad(&f.shader, d.shape(0).numel(), d.x(0), d.x(1), d.out()?)))
}
