//! Row gathers and index maps: `Op::Gather`, `Op::GatherGrad`, `Op::Take`; WGSL:
//! `shaders/gather.wgsl`.

use super::{Gpu, Grad, Grads, Host, Operands};
use crate::error::{Error, Result};
use crate::graph::{Graph, Op};
use crate::kernels::{gather, Step};
use crate::tensor::{DType, Shape, TensorData};

pub(crate) fn infer_gather(a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "table", DType::F32)?;
    a.want(1, "idx", DType::I32)?;
    let (t, i) = (a.shape(0), a.shape(1));
    if t.rank() < 1 || i.rank() != 1 {
        return Err(Error::shapes(a.name, t.dims(), i.dims(), "needs a table of rank >= 1 and rank-1 indices"));
    }
    let mut d = vec![i.dims()[0]];
    d.extend_from_slice(&t.dims()[1..]);
    Ok((Shape::new(d), DType::F32))
}

pub(crate) fn infer_take(shape: &Shape, a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "x", DType::F32)?;
    a.want(1, "idx", DType::I32)?;
    shape.validate(a.name)?;
    if a.shape(1).rank() != 1 || a.shape(1).numel() != shape.numel() {
        return Err(Error::shapes(a.name, a.shape(1).dims(), shape.dims(), "needs one index per output element"));
    }
    Ok((shape.clone(), DType::F32))
}

pub(crate) fn infer_gather_grad(rows: usize, a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "idx", DType::I32)?;
    a.want(1, "dy", DType::F32)?;
    let (i, dy) = (a.shape(0), a.shape(1));
    if i.rank() != 1 || dy.rank() < 1 || dy.dims()[0] != i.dims()[0] || rows == 0 {
        return Err(Error::shapes(a.name, i.dims(), dy.dims(), "needs idx [M] and dy [M, ...], rows > 0"));
    }
    let mut d = vec![rows];
    d.extend_from_slice(&dy.dims()[1..]);
    Ok((Shape::new(d), DType::F32))
}

pub(crate) fn backward_gather(g: &mut Graph, r: &Grad) -> Result<Grads> {
    let rows = r.shape(g, 0).dims()[0];
    Ok(vec![Some(g.push1(Op::GatherGrad { rows }, &[r.x(1), r.dy])?), None])
}

/// Injective by construction (`Graph::take`), so the adjoint takes the inverse map.
pub(crate) fn backward_take(g: &mut Graph, r: &Grad) -> Result<Grads> {
    let sx = r.shape(g, 0);
    let idx = g
        .constant_data(r.x(1))
        .and_then(|t| t.as_i32().ok())
        .ok_or_else(|| Error::invalid("gradients", "take", "the gradient of take needs its indices as a constant (use Graph::take)"))?;
    let mut inverse = vec![-1i32; sx.numel()];
    for (i, &j) in idx.iter().enumerate() {
        if let Some(slot) = usize::try_from(j).ok().and_then(|j| inverse.get_mut(j)) {
            *slot = i as i32;
        }
    }
    Ok(vec![Some(g.take(r.dy, &inverse, sx)?), None])
}

/// `GatherGrad` is linear in its upstream gradient: its adjoint is a gather.
pub(crate) fn backward_gather_grad(g: &mut Graph, r: &Grad) -> Result<Grads> {
    Ok(vec![None, Some(g.gather(r.dy, r.x(0))?)])
}

/// An index outside the table yields a NaN row.
pub(crate) fn eval_gather(h: &Host) -> Result<TensorData> {
    let (table, ix) = (h.f32(0)?, h.i32(1)?);
    let rows = h.shape(0).dims()[0];
    let inner = table.len() / rows;
    let mut out = Vec::with_capacity(ix.len() * inner);
    for &r in ix {
        match usize::try_from(r).ok().filter(|&r| r < rows) {
            Some(r) => out.extend_from_slice(&table[r * inner..(r + 1) * inner]),
            None => out.extend(std::iter::repeat_n(f32::NAN, inner)),
        }
    }
    Ok(TensorData::F32(out))
}

pub(crate) fn eval_take(h: &Host) -> Result<TensorData> {
    let (x, ix) = (h.f32(0)?, h.i32(1)?);
    Ok(TensorData::F32(ix.iter().map(|&j| usize::try_from(j).ok().and_then(|j| x.get(j)).copied().unwrap_or(0.0)).collect()))
}

pub(crate) fn eval_gather_grad(rows: usize, h: &Host) -> Result<TensorData> {
    let (ix, dy) = (h.i32(0)?, h.f32(1)?);
    let inner = dy.len() / ix.len();
    let mut out = vec![0.0f32; rows * inner];
    for (j, &r) in ix.iter().enumerate() {
        if let Some(r) = usize::try_from(r).ok().filter(|r| *r < rows) {
            for c in 0..inner {
                out[r * inner + c] += dy[j * inner + c];
            }
        }
    }
    Ok(TensorData::F32(out))
}

pub(crate) fn record_gather(d: &Gpu) -> Result<Step> {
    let rows = d.shape(0).dims()[0];
    Ok(Step::Dispatch(gather::gather(d.shape(1).numel(), rows, d.shape(0).numel() / rows, d.x(0), d.x(1), d.out()?)))
}

pub(crate) fn record_take(shape: &Shape, d: &Gpu) -> Result<Step> {
    Ok(Step::Dispatch(gather::take(shape.numel(), d.shape(0).numel(), d.x(0), d.x(1), d.out()?)))
}

pub(crate) fn record_gather_grad(rows: usize, d: &Gpu) -> Result<Step> {
    let m = d.shape(0).numel();
    Ok(Step::Dispatch(gather::gather_grad(m, rows, d.shape(1).numel() / m, d.x(0), d.x(1), d.out()?)))
}
