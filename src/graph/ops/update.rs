//! Fused optimizer updates (`Op::Update`): a slot's or a variable's new value in one pass, with
//! the arithmetic in the order of the op-by-op form (Keras' update order); WGSL:
//! `shaders/update.wgsl`. Updates carry no gradient.

use super::{coded, Gpu, Grads, Host, Operands};
use crate::error::{Error, Result};
use crate::kernels::update::{Params, UPDATE};
use crate::kernels::{grid_1d, Dispatch, Step, WG};
use crate::tensor::{DType, Shape, TensorData};

coded! {
    /// An optimizer's update of one variable or slot.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum UpdateFn in "UPDATE_" {
        /// A first moment, `(m, g) -> m + (g - m) * (1 - beta)`.
        Moment {
            /// The moment's decay.
            beta: f32,
        } = UpdateFn::Moment { beta: 0.9 },
        /// A second moment, `(v, g) -> v + (g * g - v) * (1 - beta)`.
        SquaredMoment {
            /// The moment's decay.
            beta: f32,
        } = UpdateFn::SquaredMoment { beta: 0.999 },
        /// Adam's step, `(w, m, v, alpha [1]) -> w - (m * alpha) / (sqrt(v) + epsilon)`.
        AdamStep {
            /// Added to the root of the second moment.
            epsilon: f32,
        } = UpdateFn::AdamStep { epsilon: 1e-7 },
        /// AdamW's step with decoupled weight decay, `(w, m, v, alpha [1], k [1]) ->
        /// (w - w * k) - (m * alpha) / (sqrt(v) + epsilon)`, `k` = weight decay times learning rate.
        AdamWStep {
            /// Added to the root of the second moment.
            epsilon: f32,
        } = UpdateFn::AdamWStep { epsilon: 1e-7 },
    }
}

impl UpdateFn {
    /// Number of operands.
    pub(crate) fn arity(self) -> usize {
        match self {
            UpdateFn::Moment { .. } | UpdateFn::SquaredMoment { .. } => 2,
            UpdateFn::AdamStep { .. } => 4,
            UpdateFn::AdamWStep { .. } => 5,
        }
    }

    /// The kernel's scalar: 1 - beta, or epsilon.
    fn scalar(self) -> f32 {
        match self {
            UpdateFn::Moment { beta } | UpdateFn::SquaredMoment { beta } => 1.0 - beta,
            UpdateFn::AdamStep { epsilon } | UpdateFn::AdamWStep { epsilon } => epsilon,
        }
    }
}

/// Every operand is f32; the arrays have the variable's shape and the scalars shape `[1]`.
pub(crate) fn infer(f: UpdateFn, a: &Operands) -> Result<(Shape, DType)> {
    const NAMES: [&str; 5] = ["variable", "operand", "second moment", "alpha", "decay"];
    let arrays = if f.arity() == 2 { 2 } else { 3 };
    for (i, name) in NAMES.iter().enumerate().take(f.arity()) {
        a.want(i, name, DType::F32)?;
        if i < arrays {
            a.same_shape(0, i)?;
        } else if a.shape(i).dims() != [1] {
            return Err(Error::shapes(a.name, a.shape(0).dims(), a.shape(i).dims(), format!("`{name}` must have shape [1]")));
        }
    }
    Ok((a.shape(0).clone(), DType::F32))
}

pub(crate) fn backward(name: &'static str) -> Result<Grads> {
    Err(Error::NotDifferentiable { op: name, reason: "optimizer updates are applied, not differentiated".into() })
}

/// The update of element `x` of the variable or slot, `y` of the second operand, `v` of the
/// second moment, with the step's scalars `alpha` and `k`.
fn one(f: UpdateFn, x: f32, y: f32, v: f32, alpha: f32, k: f32) -> f32 {
    let s = f.scalar();
    match f {
        UpdateFn::Moment { .. } => {
            let dm = y - x;
            x + dm * s
        }
        UpdateFn::SquaredMoment { .. } => {
            let dv = y * y - x;
            x + dv * s
        }
        UpdateFn::AdamStep { .. } => {
            let step = y * alpha;
            x - step / (v.sqrt() + s)
        }
        UpdateFn::AdamWStep { .. } => {
            let base = x - x * k;
            let step = y * alpha;
            base - step / (v.sqrt() + s)
        }
    }
}

pub(crate) fn eval(f: UpdateFn, h: &Host) -> Result<TensorData> {
    let (x, y) = (h.f32(0)?, h.f32(1)?);
    let v = if f.arity() > 2 { h.f32(2)? } else { y };
    let alpha = if f.arity() > 3 { h.f32(3)?[0] } else { 0.0 };
    let k = if f.arity() > 4 { h.f32(4)?[0] } else { 0.0 };
    Ok(TensorData::F32((0..x.len()).map(|i| one(f, x[i], y[i], v[i], alpha, k)).collect()))
}

/// Unused operand slots are bound to the variable (never read there).
pub(crate) fn record(f: UpdateFn, d: &Gpu) -> Result<Step> {
    let n = d.shape(0).numel();
    let p = Params { n: n as u32, op: f.code(), s: f.scalar(), _pad0: 0 };
    let slot = |i: usize| if i < d.inputs.len() { d.x(i) } else { d.x(0) };
    let bindings = [(1, slot(0)), (2, slot(1)), (3, slot(2)), (4, slot(3)), (5, slot(4)), (6, d.out()?)];
    Ok(Step::Dispatch(Dispatch::new(UPDATE, &p, &bindings, grid_1d(n, WG))))
}
