//! Elementwise functions of one and two `f32` operands (`Op::Unary`, `Op::UnaryGrad`,
//! `Op::Binary`) and `Op::Fill`; WGSL: `shaders/elementwise.wgsl`.
//!
//! Adding a function: a variant here (with its `ALL` example if it has parameters), its arm in
//! `unary`/`unary_grad` (or `binary` and the backward rule), and its `case` in the WGSL
//! file under the constant `UNARY_<NAME>`; the op tests iterate [`UnaryOp::ALL`].

use super::{coded, offsets, sign, Gpu, Grad, Grads, Host, Operands};
use crate::error::Result;
use crate::graph::op::{broadcast_shapes, broadcast_strides};
use crate::graph::{Graph, Op};
use crate::kernels::elementwise::{Params, BINARY, BINARY_BLOCKS, FILL, UNARY, UNARY_GRAD};
use crate::kernels::{dims8, grid_1d, Dispatch, Step, WG};
use crate::tensor::{DType, Shape, TensorData};

coded! {
    /// Elementwise functions of one `f32` operand. Parameters are part of the op.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum UnaryOp in "UNARY_" {
        /// `-x`
        Neg,
        /// `|x|`
        Abs,
        /// `e^x`
        Exp,
        /// natural logarithm
        Log,
        /// square root
        Sqrt,
        /// `x * x`
        Square,
        /// `1 / x`
        Recip,
        /// `max(x, 0)`
        Relu,
        /// `1 / (1 + e^-x)`
        Sigmoid,
        /// hyperbolic tangent
        Tanh,
        /// Larq's sign: +1 for x >= 0 (sign(0) = +1), -1 otherwise. Its true derivative is 0.
        Sign,
        /// `x * s`
        Scale(f32) = UnaryOp::Scale(-2.5),
        /// `x + c`
        Offset(f32) = UnaryOp::Offset(0.75),
        /// `min(max(x, lo), hi)`; the gradient passes where lo <= x <= hi (inclusive, as TensorFlow).
        Clip(f32, f32) = UnaryOp::Clip(-0.5, 1.0),
        /// Rounds toward zero (a float-to-integer cast); derivative 0.
        Trunc,
    }
}

impl UnaryOp {
    /// The op's two scalar parameters (unused ones are 0).
    pub(crate) fn params(self) -> (f32, f32) {
        match self {
            UnaryOp::Scale(s) => (s, 0.0),
            UnaryOp::Offset(c) => (c, 0.0),
            UnaryOp::Clip(lo, hi) => (lo, hi),
            _ => (0.0, 0.0),
        }
    }
}

coded! {
    /// Elementwise functions of two `f32` operands with NumPy broadcasting.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum BinaryOp in "BINARY_" {
        /// `a + b`
        Add,
        /// `a - b`
        Sub,
        /// `a * b`
        Mul,
        /// `a / b`
        Div,
        /// `max(a, b)`
        Max,
        /// `min(a, b)`
        Min,
        /// 1.0 where `a >= b`, else 0.0 (no gradient)
        Ge,
        /// 1.0 where `a > b`, else 0.0 (no gradient)
        Gt,
        /// 1.0 where `a == b`, else 0.0 (no gradient)
        Eq,
    }
}

// ---- shape inference ----

pub(crate) fn infer_unary(a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "x", DType::F32)?;
    Ok((a.shape(0).clone(), DType::F32))
}

pub(crate) fn infer_unary_grad(a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "x", DType::F32)?;
    a.want(1, "dy", DType::F32)?;
    a.same_shape(0, 1)?;
    Ok((a.shape(0).clone(), DType::F32))
}

pub(crate) fn infer_binary(a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "a", DType::F32)?;
    a.want(1, "b", DType::F32)?;
    Ok((broadcast_shapes(a.name, a.shape(0), a.shape(1))?, DType::F32))
}

pub(crate) fn infer_fill(a: &Operands, shape: &Shape) -> Result<(Shape, DType)> {
    shape.validate(a.name)?;
    Ok((shape.clone(), DType::F32))
}

// ---- backward ----

pub(crate) fn backward_unary(g: &mut Graph, op: UnaryOp, r: &Grad) -> Result<Grads> {
    Ok(vec![Some(g.push1(Op::UnaryGrad(op), &[r.x(0), r.dy])?)])
}

pub(crate) fn backward_binary(g: &mut Graph, op: BinaryOp, r: &Grad) -> Result<Grads> {
    let (x, y, dy) = (|i| r.x(i), r.y, r.dy);
    let (sa, sb) = (r.shape(g, 0), r.shape(g, 1));
    let (da, db) = match op {
        BinaryOp::Add => (dy, dy),
        BinaryOp::Sub => (dy, g.unary(UnaryOp::Neg, dy)?),
        BinaryOp::Mul => (g.mul(dy, x(1))?, g.mul(dy, x(0))?),
        BinaryOp::Div => {
            // d(a/b)/db = -a/b^2 = -(1/b) * y
            let da = g.div(dy, x(1))?;
            let t = g.mul(da, y)?;
            (da, g.unary(UnaryOp::Neg, t)?)
        }
        BinaryOp::Max | BinaryOp::Min => {
            // Ties send the gradient to `a`, as TensorFlow's maximum/minimum do.
            let mask = match op {
                BinaryOp::Max => g.binary(BinaryOp::Ge, x(0), x(1))?,
                _ => g.binary(BinaryOp::Ge, x(1), x(0))?,
            };
            let da = g.mul(dy, mask)?;
            (da, g.sub(dy, da)?)
        }
        BinaryOp::Ge | BinaryOp::Gt | BinaryOp::Eq => return Ok(vec![None, None]),
    };
    Ok(vec![Some(g.sum_to(da, &sa)?), Some(g.sum_to(db, &sb)?)])
}

// ---- CPU reference ----

pub(crate) fn eval_unary(op: UnaryOp, h: &Host) -> Result<TensorData> {
    Ok(TensorData::F32(h.f32(0)?.iter().map(|&x| unary(op, x)).collect()))
}

pub(crate) fn eval_unary_grad(op: UnaryOp, h: &Host) -> Result<TensorData> {
    Ok(TensorData::F32(h.f32(0)?.iter().zip(h.f32(1)?).map(|(&x, &dy)| unary_grad(op, x, dy)).collect()))
}

pub(crate) fn eval_binary(op: BinaryOp, h: &Host) -> Result<TensorData> {
    let out_shape = h.out_shape;
    let (sa, sb) = (broadcast_strides(h.shape(0), out_shape), broadcast_strides(h.shape(1), out_shape));
    let (a, b) = (h.f32(0)?, h.f32(1)?);
    let out = (0..out_shape.numel())
        .map(|i| {
            let (ia, ib) = offsets(i, out_shape.dims(), &sa, &sb);
            binary(op, a[ia], b[ib])
        })
        .collect();
    Ok(TensorData::F32(out))
}

pub(crate) fn eval_fill(value: f32, shape: &Shape) -> Result<TensorData> {
    Ok(TensorData::F32(vec![value; shape.numel()]))
}

/// The unary functions, as `shaders/elementwise.wgsl` defines them.
pub(crate) fn unary(op: UnaryOp, x: f32) -> f32 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Square => x * x,
        UnaryOp::Recip => 1.0 / x,
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sign => sign(x),
        UnaryOp::Scale(s) => x * s,
        UnaryOp::Offset(c) => x + c,
        UnaryOp::Clip(lo, hi) => x.max(lo).min(hi),
        UnaryOp::Trunc => x.trunc(),
    }
}

/// `f'(x) * dy` for each unary function.
pub(crate) fn unary_grad(op: UnaryOp, x: f32, dy: f32) -> f32 {
    match op {
        UnaryOp::Neg => -dy,
        // d|x|/dx is taken as 0 at x = 0, as TensorFlow does.
        UnaryOp::Abs => {
            dy * if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        UnaryOp::Exp => dy * x.exp(),
        UnaryOp::Log => dy / x,
        UnaryOp::Sqrt => dy * 0.5 / x.sqrt(),
        UnaryOp::Square => dy * 2.0 * x,
        UnaryOp::Recip => -dy / (x * x),
        UnaryOp::Relu => {
            if x > 0.0 {
                dy
            } else {
                0.0
            }
        }
        UnaryOp::Sigmoid => {
            let s = 1.0 / (1.0 + (-x).exp());
            dy * s * (1.0 - s)
        }
        UnaryOp::Tanh => {
            let t = x.tanh();
            dy * (1.0 - t * t)
        }
        UnaryOp::Sign | UnaryOp::Trunc => 0.0,
        UnaryOp::Scale(s) => dy * s,
        UnaryOp::Offset(_) => dy,
        UnaryOp::Clip(lo, hi) => {
            if x >= lo && x <= hi {
                dy
            } else {
                0.0
            }
        }
    }
}

/// The binary functions, as `shaders/elementwise.wgsl` defines them.
pub(crate) fn binary(op: BinaryOp, a: f32, b: f32) -> f32 {
    let flag = |c: bool| if c { 1.0 } else { 0.0 };
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Max => a.max(b),
        BinaryOp::Min => a.min(b),
        BinaryOp::Ge => flag(a >= b),
        BinaryOp::Gt => flag(a > b),
        BinaryOp::Eq => flag(a == b),
    }
}

// ---- GPU recording ----

pub(crate) fn record_unary(op: UnaryOp, d: &Gpu) -> Result<Step> {
    let n = d.shape(0).numel();
    let (alpha, beta) = op.params();
    let p = Params { n: n as u32, op: op.code(), alpha, beta, ..Default::default() };
    Ok(Step::Dispatch(Dispatch::new(UNARY, &p, &[(1, d.x(0)), (3, d.out()?)], grid_1d(n, WG))))
}

pub(crate) fn record_unary_grad(op: UnaryOp, d: &Gpu) -> Result<Step> {
    let n = d.shape(0).numel();
    let (alpha, beta) = op.params();
    let p = Params { n: n as u32, op: op.code(), alpha, beta, ..Default::default() };
    Ok(Step::Dispatch(Dispatch::new(UNARY_GRAD, &p, &[(1, d.x(0)), (2, d.x(1)), (3, d.out()?)], grid_1d(n, WG))))
}

/// `out = op(a, b)`, each operand read through its broadcast strides in the output's index space,
/// or through one division and remainder where both operands allow it (see [`block`]).
pub(crate) fn record_binary(op: BinaryOp, d: &Gpu) -> Result<Step> {
    let os = d.out_shape()?;
    let (sa, sb) = (broadcast_strides(d.shape(0), os), broadcast_strides(d.shape(1), os));
    let n = os.numel();
    let mut p = Params {
        n: n as u32,
        op: op.code(),
        rank: os.rank() as u32,
        shape: dims8(os.dims()),
        a_strides: dims8(&sa),
        b_strides: dims8(&sb),
        ..Default::default()
    };
    let kernel = match (block(os.dims(), &sa), block(os.dims(), &sb)) {
        (Some((da, ma)), Some((db, mb))) => {
            p.blocks = [da as u32, ma as u32, db as u32, mb as u32];
            BINARY_BLOCKS
        }
        _ => BINARY,
    };
    Ok(Step::Dispatch(Dispatch::new(kernel, &p, &[(1, d.x(0)), (2, d.x(1)), (3, d.out()?)], grid_1d(n, WG))))
}

/// `(divisor, modulus)` with the operand's element at output index `i` = `(i / divisor) %
/// modulus`, when the operand's non-broadcast axes (stride != 0, size > 1) are one contiguous run
/// of the output's axes and stored contiguously (equal shapes, per-channel and scalar operands).
pub(crate) fn block(dims: &[usize], strides: &[usize]) -> Option<(usize, usize)> {
    let used: Vec<usize> = (0..dims.len()).filter(|&d| dims[d] > 1 && strides[d] != 0).collect();
    let (Some(&lo), Some(&hi)) = (used.first(), used.last()) else { return Some((1, 1)) };
    let mut expect = 1;
    for d in (lo..=hi).rev() {
        if dims[d] > 1 {
            if strides[d] != expect {
                return None;
            }
            expect *= dims[d];
        }
    }
    Some((dims[hi + 1..].iter().product(), expect))
}

pub(crate) fn record_fill(value: f32, shape: &Shape, d: &Gpu) -> Result<Step> {
    let n = shape.numel();
    let p = Params { n: n as u32, alpha: value, ..Default::default() };
    Ok(Step::Dispatch(Dispatch::new(FILL, &p, &[(3, d.out()?)], grid_1d(n, WG))))
}
