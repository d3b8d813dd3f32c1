//! Layout ops: `Op::Permute`, `Op::Broadcast`, `Op::Window` (slices, padding, concatenation),
//! `Op::Reshape` and `Op::Assign` (buffer copies); WGSL: `shaders/layout.wgsl`.

use super::{offsets, Gpu, Grad, Grads, Host, Operands};
use crate::error::{Error, Result};
use crate::graph::op::{broadcast_shapes, broadcast_strides};
use crate::graph::{Graph, Op};
use crate::kernels::layout::{Params, STRIDED_COPY, WINDOW};
use crate::kernels::{dims8, grid_1d, BufferView, Dispatch, Step, WG};
use crate::tensor::{DType, Shape, TensorData};

/// Shape of `x` with its axes permuted by `perm`.
pub fn permuted_shape(op: &'static str, x: &Shape, perm: &[usize]) -> Result<Shape> {
    let mut seen = vec![false; x.rank()];
    if perm.len() != x.rank() || perm.iter().any(|&p| p >= x.rank() || std::mem::replace(&mut seen[p], true)) {
        return Err(Error::invalid(op, "perm", format!("{perm:?} is not a permutation of the {} axes of {x:?}", x.rank())));
    }
    Ok(Shape::new(perm.iter().map(|&p| x.dims()[p]).collect::<Vec<_>>()))
}

pub(crate) fn infer_permute(perm: &[usize], a: &Operands) -> Result<(Shape, DType)> {
    Ok((permuted_shape(a.name, a.shape(0), perm)?, a.inputs[0].1))
}

pub(crate) fn infer_broadcast(shape: &Shape, a: &Operands) -> Result<(Shape, DType)> {
    let b = broadcast_shapes(a.name, a.shape(0), shape)?;
    if &b != shape {
        return Err(Error::shapes(a.name, a.shape(0).dims(), shape.dims(), "cannot broadcast to the target shape"));
    }
    Ok((shape.clone(), a.inputs[0].1))
}

pub(crate) fn infer_window(offset: &[isize], shape: &Shape, a: &Operands) -> Result<(Shape, DType)> {
    shape.validate(a.name)?;
    if shape.rank() != a.shape(0).rank() || offset.len() != shape.rank() {
        return Err(Error::shapes(a.name, a.shape(0).dims(), shape.dims(), format!("offset {offset:?} and shape need x's rank")));
    }
    Ok((shape.clone(), a.inputs[0].1))
}

pub(crate) fn infer_reshape(shape: &Shape, a: &Operands) -> Result<(Shape, DType)> {
    shape.validate(a.name)?;
    if shape.numel() != a.shape(0).numel() {
        return Err(Error::shapes(a.name, a.shape(0).dims(), shape.dims(), "element counts differ"));
    }
    Ok((shape.clone(), a.inputs[0].1))
}

/// An assignment has no output; it checks that the value fits the variable.
pub(crate) fn infer_assign(a: &Operands) -> Result<()> {
    if a.inputs[0] != a.inputs[1] {
        return Err(Error::shapes(a.name, a.shape(0).dims(), a.shape(1).dims(), "variable and value must have the same shape and dtype"));
    }
    Ok(())
}

pub(crate) fn backward_permute(g: &mut Graph, perm: &[usize], r: &Grad) -> Result<Grads> {
    let mut inv = vec![0; perm.len()];
    perm.iter().enumerate().for_each(|(i, &p)| inv[p] = i);
    Ok(vec![Some(g.permute(r.dy, &inv)?)])
}

pub(crate) fn backward_broadcast(g: &mut Graph, r: &Grad) -> Result<Grads> {
    let sx = r.shape(g, 0);
    Ok(vec![Some(g.sum_to(r.dy, &sx)?)])
}

/// The adjoint of a window is the window back.
pub(crate) fn backward_window(g: &mut Graph, offset: &[isize], r: &Grad) -> Result<Grads> {
    let back: Vec<isize> = offset.iter().map(|o| -o).collect();
    let sx = r.shape(g, 0);
    Ok(vec![Some(g.push1(Op::Window { offset: back, shape: sx }, &[r.dy])?)])
}

pub(crate) fn backward_reshape(g: &mut Graph, r: &Grad) -> Result<Grads> {
    let sx = r.shape(g, 0);
    Ok(vec![Some(g.reshape(r.dy, sx)?)])
}

pub(crate) fn eval_permute(perm: &[usize], h: &Host) -> Result<TensorData> {
    let xs = h.shape(0).strides();
    let strides: Vec<usize> = perm.iter().map(|&p| xs[p]).collect();
    Ok(copy_strided(h.inputs[0].1, h.out_shape, &strides))
}

pub(crate) fn eval_broadcast(shape: &Shape, h: &Host) -> Result<TensorData> {
    Ok(copy_strided(h.inputs[0].1, shape, &broadcast_strides(h.shape(0), shape)))
}

pub(crate) fn eval_window(offset: &[isize], shape: &Shape, h: &Host) -> Result<TensorData> {
    Ok(window_of(h.inputs[0].1, h.shape(0), offset, shape))
}

pub(crate) fn eval_reshape(h: &Host) -> Result<TensorData> {
    Ok(h.inputs[0].1.clone())
}

pub(crate) fn record_permute(perm: &[usize], d: &Gpu) -> Result<Step> {
    let xs = d.shape(0).strides();
    let strides: Vec<usize> = perm.iter().map(|&p| xs[p]).collect();
    Ok(strided_copy(d.out_shape()?.dims(), &strides, d.x(0), d.out()?))
}

pub(crate) fn record_broadcast(shape: &Shape, d: &Gpu) -> Result<Step> {
    Ok(strided_copy(shape.dims(), &broadcast_strides(d.shape(0), shape), d.x(0), d.out()?))
}

pub(crate) fn record_window(offset: &[isize], shape: &Shape, d: &Gpu) -> Result<Step> {
    Ok(window(d.shape(0).dims(), offset, shape.dims(), d.x(0), d.out()?))
}

/// A reshape of a variable is a copy (other reshapes alias and record nothing).
pub(crate) fn record_reshape(d: &Gpu) -> Result<Step> {
    Ok(Step::Copy { src: d.x(0).clone(), dst: d.out()?.clone() })
}

/// `(variable, value)`: the value is copied into the variable.
pub(crate) fn record_assign(d: &Gpu) -> Result<Step> {
    Ok(Step::Copy { src: d.x(1).clone(), dst: d.x(0).clone() })
}

fn copy_strided(src: &TensorData, shape: &Shape, strides: &[usize]) -> TensorData {
    let pick = |i: usize| offsets(i, shape.dims(), strides, strides).0;
    let n = shape.numel();
    match src {
        TensorData::F32(v) => TensorData::F32((0..n).map(|i| v[pick(i)]).collect()),
        TensorData::I32(v) => TensorData::I32((0..n).map(|i| v[pick(i)]).collect()),
        TensorData::U32(v) => TensorData::U32((0..n).map(|i| v[pick(i)]).collect()),
    }
}

/// `y[i] = x[i + offset]` inside `x`, zero (all bits clear) outside.
fn window_of(src: &TensorData, src_shape: &Shape, offset: &[isize], shape: &Shape) -> TensorData {
    let (sd, ss) = (src_shape.dims(), src_shape.strides());
    let pick = |i: usize| -> Option<usize> {
        let mut rem = i;
        let mut off = 0;
        for d in (0..shape.rank()).rev() {
            let c = (rem % shape.dims()[d]) as isize + offset[d];
            rem /= shape.dims()[d];
            let c = usize::try_from(c).ok().filter(|&c| c < sd[d])?;
            off += c * ss[d];
        }
        Some(off)
    };
    let n = shape.numel();
    match src {
        TensorData::F32(v) => TensorData::F32((0..n).map(|i| pick(i).map_or(0.0, |o| v[o])).collect()),
        TensorData::I32(v) => TensorData::I32((0..n).map(|i| pick(i).map_or(0, |o| v[o])).collect()),
        TensorData::U32(v) => TensorData::U32((0..n).map(|i| pick(i).map_or(0, |o| v[o])).collect()),
    }
}

/// Writes `dst` (contiguous, `shape`) from `src` read with `src_strides`.
fn strided_copy(shape: &[usize], src_strides: &[usize], src: &BufferView, dst: &BufferView) -> Step {
    let n = shape.iter().product::<usize>();
    let p = Params { n: n as u32, rank: shape.len() as u32, shape: dims8(shape), src_strides: dims8(src_strides), ..Default::default() };
    Step::Dispatch(Dispatch::new(STRIDED_COPY, &p, &[(1, src), (2, dst)], grid_1d(n, WG)))
}

/// Writes `dst` (contiguous, `shape`) with the window of `src` (`src_shape`) at `offset`.
fn window(src_shape: &[usize], offset: &[isize], shape: &[usize], src: &BufferView, dst: &BufferView) -> Step {
    let n = shape.iter().product::<usize>();
    let strides = crate::Shape::new(src_shape.to_vec()).strides();
    let mut off = [[0i32; 4]; 2];
    offset.iter().enumerate().for_each(|(d, &o)| off[d / 4][d % 4] = o as i32);
    let p = Params {
        n: n as u32,
        rank: shape.len() as u32,
        shape: dims8(shape),
        src_strides: dims8(&strides),
        src_shape: dims8(src_shape),
        offset: off,
        ..Default::default()
    };
    Step::Dispatch(Dispatch::new(WINDOW, &p, &[(1, src), (2, dst)], grid_1d(n, WG)))
}
