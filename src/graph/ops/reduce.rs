//! Reductions over a set of axes (`Op::Reduce`); WGSL: `shaders/reduce.wgsl`.

use super::{coded, offsets, Gpu, Grad, Grads, Host, Operands};
use crate::error::{Error, Result};
use crate::graph::{BinaryOp, Graph};
use crate::kernels::reduce::{Params, REDUCE, REDUCE_EACH, SHORT};
use crate::kernels::{dims8, grid_1d, Dispatch, Step, ROW_WG};
use crate::tensor::{DType, Shape, TensorData};

coded! {
    /// Reductions over a set of axes.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum ReduceOp in "REDUCE_" {
        /// Sum.
        Sum,
        /// Arithmetic mean.
        Mean,
        /// Maximum.
        Max,
    }
}

/// Shape after reducing `axes` of `x`.
pub fn reduced_shape(op: &'static str, x: &Shape, axes: &[usize], keep_dims: bool) -> Result<Shape> {
    if axes.windows(2).any(|w| w[0] >= w[1]) || axes.iter().any(|&a| a >= x.rank()) {
        return Err(Error::invalid(op, "axes", format!("{axes:?} must be sorted, distinct and below rank {} of {x:?}", x.rank())));
    }
    let dims = x
        .dims()
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keep_dims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect::<Vec<_>>();
    Ok(Shape::new(dims))
}

pub(crate) fn infer(axes: &[usize], keep_dims: bool, a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "x", DType::F32)?;
    Ok((reduced_shape(a.name, a.shape(0), axes, keep_dims)?, DType::F32))
}

pub(crate) fn backward(g: &mut Graph, op: ReduceOp, axes: &[usize], keep_dims: bool, r: &Grad) -> Result<Grads> {
    let (y, dy) = (r.y, r.dy);
    let sx = r.shape(g, 0);
    let kept = reduced_shape("reduce", &sx, axes, true)?;
    let dy_k = if keep_dims { dy } else { g.reshape(dy, kept.clone())? };
    let dx = match op {
        ReduceOp::Sum => g.broadcast_to(dy_k, sx)?,
        ReduceOp::Mean => {
            let count = axes.iter().map(|&a| sx.dims()[a]).product::<usize>();
            let s = g.scale(dy_k, 1.0 / count as f32)?;
            g.broadcast_to(s, sx)?
        }
        ReduceOp::Max => {
            // Ties share the gradient equally, as TensorFlow's reduce_max does.
            let y_k = if keep_dims { y } else { g.reshape(y, kept)? };
            let is_max = g.binary(BinaryOp::Eq, r.x(0), y_k)?;
            let count = g.sum(is_max, axes, true)?;
            let share = g.div(dy_k, count)?;
            g.mul(is_max, share)?
        }
    };
    Ok(vec![Some(dx)])
}

pub(crate) fn eval(op: ReduceOp, axes: &[usize], h: &Host) -> Result<TensorData> {
    let (shape, x) = (h.shape(0), h.f32(0)?);
    let strides = shape.strides();
    let (kept, reduced): (Vec<usize>, Vec<usize>) = (0..shape.rank()).partition(|i| !axes.contains(i));
    let dims_of = |ax: &[usize]| ax.iter().map(|&a| shape.dims()[a]).collect::<Vec<_>>();
    let strides_of = |ax: &[usize]| ax.iter().map(|&a| strides[a]).collect::<Vec<_>>();
    let (kd, ks, rd, rs) = (dims_of(&kept), strides_of(&kept), dims_of(&reduced), strides_of(&reduced));
    let (n_out, n_red) = (kd.iter().product::<usize>(), rd.iter().product::<usize>());
    Ok(TensorData::F32(
        (0..n_out)
            .map(|o| {
                let base = offsets(o, &kd, &ks, &ks).0;
                let vals = (0..n_red).map(|j| x[base + offsets(j, &rd, &rs, &rs).0]);
                // Sums in f64, rounded once: the reference is as exact as f32 results get (a
                // running f32 sum of millions of terms, a large kernel's mean |w|, loses whole
                // percents).
                match op {
                    ReduceOp::Sum => vals.map(f64::from).sum::<f64>() as f32,
                    ReduceOp::Mean => (vals.map(f64::from).sum::<f64>() / n_red as f64) as f32,
                    ReduceOp::Max => vals.fold(f32::NEG_INFINITY, f32::max),
                }
            })
            .collect(),
    ))
}

/// One thread per output for short reductions, a workgroup per output for long ones.
/// Axes `(sizes, strides)`, outer first, with size-1 axes dropped and each run of axes that is
/// contiguous in memory (an axis' stride = the next one's stride times its size) merged into one:
/// the same elements in the same order, with fewer divisions per element in the kernel (BatchNorm's
/// statistics over N, H, W reduce one axis).
fn merge_axes((sizes, strides): (Vec<usize>, Vec<usize>)) -> (Vec<usize>, Vec<usize>) {
    let mut out: (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
    for (size, stride) in sizes.into_iter().zip(strides).filter(|(s, _)| *s != 1) {
        match (out.0.last_mut(), out.1.last_mut()) {
            (Some(last_size), Some(last_stride)) if *last_stride == stride * size => {
                *last_size *= size;
                *last_stride = stride;
            }
            _ => {
                out.0.push(size);
                out.1.push(stride);
            }
        }
    }
    out
}

pub(crate) fn record(op: ReduceOp, axes: &[usize], d: &Gpu) -> Result<Step> {
    let shape = d.shape(0).dims();
    let strides = d.shape(0).strides();
    let split = |keep: bool| -> (Vec<usize>, Vec<usize>) {
        (0..shape.len()).filter(|i| axes.contains(i) != keep).map(|i| (shape[i], strides[i])).unzip()
    };
    let (os, ost) = merge_axes(split(true));
    let (rs, rst) = merge_axes(split(false));
    let n_out = os.iter().product::<usize>();
    let n_red = rs.iter().product::<usize>();
    let p = Params {
        n_out: n_out as u32,
        n_red: n_red as u32,
        out_rank: os.len() as u32,
        red_rank: rs.len() as u32,
        op: op.code(),
        out_shape: dims8(&os),
        out_strides: dims8(&ost),
        red_shape: dims8(&rs),
        red_strides: dims8(&rst),
        ..Default::default()
    };
    let (x, out) = (d.x(0), d.out()?);
    Ok(Step::Dispatch(if n_red <= SHORT {
        Dispatch::new(REDUCE_EACH, &p, &[(1, x), (2, out)], grid_1d(n_out, ROW_WG))
    } else {
        Dispatch::new(REDUCE, &p, &[(1, x), (2, out)], grid_1d(n_out, 1))
    }))
}
