//! The gradient of a window maximum with TensorFlow's rules for ties (`Op::MaxGrad`), for max
//! pooling; WGSL: `shaders/pool.wgsl`.

use super::{Gpu, Grads, Host, Operands};
use crate::error::{Error, Result};
use crate::kernels::pool::{Params, MAX_GRAD};
use crate::kernels::{grid_1d, Dispatch, Step, WG};
use crate::tensor::{DType, Shape, TensorData};

/// `(x [rows, taps, c], y [rows, c], dy [rows, c]) -> dx [rows, taps, c]`.
pub(crate) fn infer(a: &Operands) -> Result<(Shape, DType)> {
    for (i, name) in [(0, "x"), (1, "y"), (2, "dy")] {
        a.want(i, name, DType::F32)?;
    }
    let (x, y) = (a.shape(0), a.shape(1));
    if x.rank() != 3 || y.dims() != [x.dims()[0], x.dims()[2]] || a.shape(2) != y {
        return Err(Error::shapes(a.name, x.dims(), y.dims(), "needs x [rows, taps, c], y and dy [rows, c]"));
    }
    Ok((x.clone(), DType::F32))
}

pub(crate) fn backward(name: &'static str) -> Result<Grads> {
    Err(Error::NotDifferentiable { op: name, reason: "second derivatives are not supported".into() })
}

pub(crate) fn eval(first: bool, h: &Host) -> Result<TensorData> {
    let d = h.shape(0).dims();
    let (rows, taps, c) = (d[0], d[1], d[2]);
    let (x, y, dy) = (h.f32(0)?, h.f32(1)?, h.f32(2)?);
    let mut out = vec![0.0f32; x.len()];
    for r in 0..rows {
        for ch in 0..c {
            let w = r * c + ch;
            for t in 0..taps {
                let i = (r * taps + t) * c + ch;
                if x[i] == y[w] {
                    out[i] = dy[w];
                    if first {
                        break;
                    }
                }
            }
        }
    }
    Ok(TensorData::F32(out))
}

pub(crate) fn record(first: bool, d: &Gpu) -> Result<Step> {
    let dims = d.shape(0).dims();
    let windows = dims[0] * dims[2];
    let p = Params { windows: windows as u32, taps: dims[1] as u32, c: dims[2] as u32, first: u32::from(first) };
    let bindings = [(1, d.x(0)), (2, d.x(1)), (3, d.x(2)), (4, d.out()?)];
    Ok(Step::Dispatch(Dispatch::new(MAX_GRAD, &p, &bindings, grid_1d(windows, WG))))
}
