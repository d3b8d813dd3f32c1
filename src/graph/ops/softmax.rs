//! Softmax and the fused softmax cross-entropy with its gradient: `Op::Softmax`,
//! `Op::SoftmaxCrossEntropy`, `Op::SoftmaxCrossEntropyGrad`; WGSL: `shaders/softmax.wgsl`.

use super::{last_axis, Gpu, Grad, Grads, Host, Operands};
use crate::error::{Error, Result};
use crate::graph::{Graph, Op};
use crate::kernels::{softmax, Step};
use crate::tensor::{DType, Shape, TensorData};

pub(crate) fn infer_softmax(a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "x", DType::F32)?;
    last_axis(a.name, a.shape(0))?;
    Ok((a.shape(0).clone(), DType::F32))
}

pub(crate) fn infer_xent(a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "logits", DType::F32)?;
    a.want(1, "labels", DType::I32)?;
    let (l, y) = (a.shape(0), a.shape(1));
    if l.rank() != 2 || y.dims() != [l.dims()[0]] {
        return Err(Error::shapes(a.name, l.dims(), y.dims(), "needs logits [N, C] and labels [N]"));
    }
    Ok((y.clone(), DType::F32))
}

pub(crate) fn infer_xent_grad(a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "logits", DType::F32)?;
    a.want(1, "labels", DType::I32)?;
    a.want(2, "dloss", DType::F32)?;
    let (l, y, g) = (a.shape(0), a.shape(1), a.shape(2));
    if l.rank() != 2 || y.dims() != [l.dims()[0]] || g != y {
        return Err(Error::shapes(a.name, l.dims(), g.dims(), "needs logits [N, C], labels [N], dloss [N]"));
    }
    Ok((l.clone(), DType::F32))
}

/// dx = y * (dy - sum(dy * y, last axis))
pub(crate) fn backward_softmax(g: &mut Graph, r: &Grad) -> Result<Grads> {
    let (y, dy) = (r.y, r.dy);
    let last = g.value(y).shape.rank() - 1;
    let dyy = g.mul(dy, y)?;
    let s = g.sum(dyy, &[last], true)?;
    let d = g.sub(dy, s)?;
    Ok(vec![Some(g.mul(y, d)?)])
}

pub(crate) fn backward_xent(g: &mut Graph, r: &Grad) -> Result<Grads> {
    Ok(vec![Some(g.push1(Op::SoftmaxCrossEntropyGrad, &[r.x(0), r.x(1), r.dy])?), None])
}

fn max_sum_exp(row: &[f32]) -> (f32, f32) {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (m, row.iter().map(|&v| (v - m).exp()).sum())
}

pub(crate) fn eval_softmax(h: &Host) -> Result<TensorData> {
    let x = h.f32(0)?;
    let cols = last_axis(h.name, h.shape(0))?;
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(cols) {
        let (m, s) = max_sum_exp(row);
        out.extend(row.iter().map(|&v| (v - m).exp() / s));
    }
    Ok(TensorData::F32(out))
}

/// A label outside `0..C` gives a NaN loss.
pub(crate) fn eval_xent(h: &Host) -> Result<TensorData> {
    let (x, labels) = (h.f32(0)?, h.i32(1)?);
    let cols = h.shape(0).dims()[1];
    let out = x
        .chunks(cols)
        .zip(labels)
        .map(|(row, &l)| {
            let (m, s) = max_sum_exp(row);
            match usize::try_from(l).ok().filter(|&l| l < cols) {
                Some(l) => s.ln() + m - row[l],
                None => f32::NAN,
            }
        })
        .collect();
    Ok(TensorData::F32(out))
}

pub(crate) fn eval_xent_grad(h: &Host) -> Result<TensorData> {
    let (x, labels, g) = (h.f32(0)?, h.i32(1)?, h.f32(2)?);
    let cols = h.shape(0).dims()[1];
    let mut out = Vec::with_capacity(x.len());
    for ((row, &l), &g) in x.chunks(cols).zip(labels).zip(g) {
        let (m, s) = max_sum_exp(row);
        let label = usize::try_from(l).ok().filter(|&l| l < cols);
        out.extend(row.iter().enumerate().map(|(j, &v)| match label {
            Some(l) => ((v - m).exp() / s - if j == l { 1.0 } else { 0.0 }) * g,
            None => f32::NAN,
        }));
    }
    Ok(TensorData::F32(out))
}

pub(crate) fn record_softmax(d: &Gpu) -> Result<Step> {
    let cols = last_axis(d.name, d.shape(0))?;
    Ok(Step::Dispatch(softmax::softmax(d.shape(0).numel() / cols, cols, d.x(0), d.out()?)))
}

pub(crate) fn record_xent(d: &Gpu) -> Result<Step> {
    let dims = d.shape(0).dims();
    Ok(Step::Dispatch(softmax::xent(dims[0], dims[1], d.x(0), d.x(1), d.out()?)))
}

pub(crate) fn record_xent_grad(d: &Gpu) -> Result<Step> {
    let dims = d.shape(0).dims();
    Ok(Step::Dispatch(softmax::xent_grad(dims[0], dims[1], d.x(0), d.x(1), d.x(2), d.out()?)))
}
