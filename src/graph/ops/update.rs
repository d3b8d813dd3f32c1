//! Fused optimizer updates (`Op::Update`): a slot's or a variable's new value in one pass, with
//! the arithmetic in the order of the op-by-op form (Keras' update order); WGSL:
//! `shaders/update.wgsl`. Updates carry no gradient.

use super::{coded, Gpu, Grads, Host, Operands};
use crate::error::{Error, Result};
use crate::kernels::update::{Params, KERNELS};
use crate::kernels::{grid_1d, Dispatch, Step, WG};
use crate::tensor::{DType, Shape, TensorData};

coded! {
    /// An optimizer's update of one variable or slot. Its operands are arrays shaped as the
    /// variable, then `[1]` scalars (hyperparameters and per-step factors); see
    /// [`UpdateFn::operands`].
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
        /// Adam's step, `(w, m, v; alpha) -> w - (m * alpha) / (sqrt(v) + epsilon)`.
        AdamStep {
            /// Added to the root of the second moment.
            epsilon: f32,
        } = UpdateFn::AdamStep { epsilon: 1e-7 },
        /// AdamW's step with decoupled weight decay, `(w, m, v; alpha, k) ->
        /// (w - w * k) - (m * alpha) / (sqrt(v) + epsilon)`, `k` = weight decay times learning rate.
        AdamWStep {
            /// Added to the root of the second moment.
            epsilon: f32,
        } = UpdateFn::AdamWStep { epsilon: 1e-7 },
        /// Plain SGD, `(w, g; lr) -> w - g * lr`.
        Sgd,
        /// SGD's velocity, `(v, g; lr, momentum) -> v * momentum - g * lr`.
        Velocity,
        /// The Nesterov step, `(w, v, g; lr, momentum) -> w + (v * momentum - g * lr)` with the new
        /// velocity `v`.
        NesterovStep,
        /// Bop's moment, `(m, g; gamma) -> m + (g - m) * gamma`.
        BopMoment,
        /// Bop's flip, `(w, m; threshold) -> sign(-(s * w))` with `s` TensorFlow's sign of
        /// `w * m - threshold` and Larq's sign (+1 at 0).
        BopFlip,
        /// Adam's step size from its iteration count, `(iterations; lr) -> lr sqrt(1 - b2^t) /
        /// (1 - b1^t)` with `t = iterations + 1` and `b^t = exp(t ln b)`.
        AdamAlpha {
            /// Decay of the first moment.
            beta_1: f32,
            /// Decay of the second moment.
            beta_2: f32,
        } = UpdateFn::AdamAlpha { beta_1: 0.9, beta_2: 0.999 },
    }
}

impl UpdateFn {
    /// How many arrays (shaped as the variable) and then `[1]` scalars the update reads.
    pub fn operands(self) -> (usize, usize) {
        match self {
            UpdateFn::Moment { .. } | UpdateFn::SquaredMoment { .. } => (2, 0),
            UpdateFn::AdamStep { .. } => (3, 1),
            UpdateFn::AdamWStep { .. } => (3, 2),
            UpdateFn::Sgd | UpdateFn::BopMoment | UpdateFn::BopFlip => (2, 1),
            UpdateFn::AdamAlpha { .. } => (1, 1),
            UpdateFn::Velocity => (2, 2),
            UpdateFn::NesterovStep => (3, 2),
        }
    }

    /// Number of operands.
    pub(crate) fn arity(self) -> usize {
        let (arrays, scalars) = self.operands();
        arrays + scalars
    }

    /// The kernel's two constants: 1 - beta, epsilon, the logarithms of Adam's betas, or 0.
    pub(crate) fn constants(self) -> [f32; 2] {
        match self {
            UpdateFn::Moment { beta } | UpdateFn::SquaredMoment { beta } => [1.0 - beta, 0.0],
            UpdateFn::AdamStep { epsilon } | UpdateFn::AdamWStep { epsilon } => [epsilon, 0.0],
            UpdateFn::AdamAlpha { beta_1, beta_2 } => [beta_1.ln(), beta_2.ln()],
            _ => [0.0, 0.0],
        }
    }
}

/// Every operand is f32; the arrays have the variable's shape and the scalars shape `[1]`.
pub(crate) fn infer(f: UpdateFn, a: &Operands) -> Result<(Shape, DType)> {
    let (arrays, _) = f.operands();
    for i in 0..f.arity() {
        let name = if i < arrays { "array operand" } else { "scalar operand" };
        a.want(i, name, DType::F32)?;
        if i < arrays {
            a.same_shape(0, i)?;
        } else if a.shape(i).dims() != [1] {
            return Err(Error::shapes(a.name, a.shape(0).dims(), a.shape(i).dims(), format!("operand {i} must have shape [1]")));
        }
    }
    Ok((a.shape(0).clone(), DType::F32))
}

pub(crate) fn backward(name: &'static str) -> Result<Grads> {
    Err(Error::NotDifferentiable { op: name, reason: "optimizer updates are applied, not differentiated".into() })
}

/// The update of one element: arrays `x`, `y`, `z` (the variable or slot first), scalars `s`,
/// `t`; the same operations in the same order as `shaders/update.wgsl`.
fn one(f: UpdateFn, [x, y, z]: [f32; 3], [s, t]: [f32; 2]) -> f32 {
    let [c, c2] = f.constants();
    match f {
        UpdateFn::Moment { .. } => {
            let dm = y - x;
            x + dm * c
        }
        UpdateFn::SquaredMoment { .. } => {
            let dv = y * y - x;
            x + dv * c
        }
        UpdateFn::AdamStep { .. } => {
            let step = y * s;
            x - step / (z.sqrt() + c)
        }
        UpdateFn::AdamWStep { .. } => {
            let base = x - x * t;
            let step = y * s;
            base - step / (z.sqrt() + c)
        }
        UpdateFn::Sgd => x - y * s,
        UpdateFn::Velocity => x * t - y * s,
        UpdateFn::NesterovStep => x + (y * t - z * s),
        UpdateFn::BopMoment => {
            let d = y - x;
            x + d * s
        }
        UpdateFn::BopFlip => {
            let wm = x * y;
            let flag = |b: bool| if b { 1.0f32 } else { 0.0 };
            let sign = flag(wm > s) - flag(s > wm);
            super::sign(-(sign * x))
        }
        UpdateFn::AdamAlpha { .. } => {
            let step = x + 1.0;
            let b1t = (step * c).exp();
            let b2t = (step * c2).exp();
            let root = (-b2t + 1.0).sqrt();
            let alpha = s * root;
            alpha / (-b1t + 1.0)
        }
    }
}

pub(crate) fn eval(f: UpdateFn, h: &Host) -> Result<TensorData> {
    let (arrays, scalars) = f.operands();
    let array = |i: usize| if i < arrays { h.f32(i) } else { h.f32(0) };
    let scalar = |j: usize| -> Result<f32> {
        if j < scalars {
            Ok(h.f32(arrays + j)?[0])
        } else {
            Ok(0.0)
        }
    };
    let (x, y, z) = (array(0)?, array(1)?, array(2)?);
    let st = [scalar(0)?, scalar(1)?];
    Ok(TensorData::F32((0..x.len()).map(|i| one(f, [x[i], y[i], z[i]], st)).collect()))
}

/// Arrays go to slots a, b, c and scalars to d, e; unused slots are bound to the variable (never
/// read there).
pub(crate) fn record(f: UpdateFn, d: &Gpu) -> Result<Step> {
    let n = d.shape(0).numel();
    let (arrays, scalars) = f.operands();
    let [k, k2] = f.constants();
    let p = Params { n: n as u32, k, k2, _pad: 0 };
    let array = |i: usize| if i < arrays { d.x(i) } else { d.x(0) };
    let scalar = |j: usize| if j < scalars { d.x(arrays + j) } else { d.x(0) };
    let bindings = [(1, array(0)), (2, array(1)), (3, array(2)), (4, scalar(0)), (5, scalar(1)), (6, d.out()?)];
    Ok(Step::Dispatch(Dispatch::new(KERNELS[f.code() as usize].clone(), &p, &bindings, grid_1d(n, WG))))
}
