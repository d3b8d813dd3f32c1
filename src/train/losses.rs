//! Keras losses, recorded into a graph as the batch mean of a per-sample loss.
//!
//! As in Keras, a probability output that a softmax (or sigmoid) produced is traced back to its
//! logits, so the cross-entropies take the fused, numerically stable path instead of clipping
//! probabilities; other probability outputs are clipped to `[1e-7, 1 - 1e-7]` as Keras does.

use crate::error::{Error, Result};
use crate::graph::{BinaryOp, Graph, Op, ReduceOp, Source, UnaryOp, ValueId};
use crate::tensor::DType;

/// Keras' `backend.epsilon()`.
const EPSILON: f32 = 1e-7;

/// A loss function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// Integer labels `[N]` against class scores `[N, C]`.
    SparseCategoricalCrossentropy {
        /// The predictions are logits (else probabilities).
        from_logits: bool,
    },
    /// One-hot (or soft) targets `[N, C]` against class scores `[N, C]`; targets must be
    /// distributions (rows summing to 1), as Keras requires.
    CategoricalCrossentropy {
        /// The predictions are logits (else probabilities).
        from_logits: bool,
    },
    /// Targets in [0, 1] against per-output probabilities, averaged over the last axis.
    BinaryCrossentropy {
        /// The predictions are logits (else probabilities).
        from_logits: bool,
    },
    /// `mean(max(1 - y * p, 0))` over the last axis; 0/1 targets become -1/+1 as in Keras.
    Hinge,
    /// `mean(max(1 - y * p, 0)^2)` over the last axis; 0/1 targets become -1/+1.
    SquaredHinge,
    /// `mean((p - y)^2)` over the last axis.
    MeanSquaredError,
}

impl Loss {
    /// The Keras name (`sparse_categorical_crossentropy`, ...), as people write it.
    pub fn keras_name(&self) -> &'static str {
        match self {
            Loss::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
            Loss::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            Loss::BinaryCrossentropy { .. } => "binary_crossentropy",
            Loss::Hinge => "hinge",
            Loss::SquaredHinge => "squared_hinge",
            Loss::MeanSquaredError => "mean_squared_error",
        }
    }

    /// By Keras name (`sparse_categorical_crossentropy`, `categorical_crossentropy`,
    /// `binary_crossentropy`, `hinge`, `squared_hinge`, `mse` / `mean_squared_error`), on
    /// probabilities.
    pub fn from_name(name: &str) -> Result<Loss> {
        Ok(match name {
            "sparse_categorical_crossentropy" => Loss::SparseCategoricalCrossentropy { from_logits: false },
            "categorical_crossentropy" => Loss::CategoricalCrossentropy { from_logits: false },
            "binary_crossentropy" => Loss::BinaryCrossentropy { from_logits: false },
            "hinge" => Loss::Hinge,
            "squared_hinge" => Loss::SquaredHinge,
            "mse" | "mean_squared_error" => Loss::MeanSquaredError,
            other => {
                let known = [
                    "sparse_categorical_crossentropy",
                    "categorical_crossentropy",
                    "binary_crossentropy",
                    "hinge",
                    "squared_hinge",
                    "mean_squared_error",
                ];
                return Err(Error::unknown("loss", other, known));
            }
        })
    }

    /// The element type and shape of the targets for predictions of shape `pred`: i32 `[N]`
    /// class indices for the sparse cross-entropy, f32 like `pred` otherwise.
    pub fn target_spec(&self, pred: &[usize]) -> (DType, Vec<usize>) {
        match self {
            Loss::SparseCategoricalCrossentropy { .. } => (DType::I32, pred[..pred.len().saturating_sub(1)].to_vec()),
            _ => (DType::F32, pred.to_vec()),
        }
    }

    /// Records the batch-mean loss of predictions `pred` against targets `target`: a `[1]` value.
    pub fn build(&self, g: &mut Graph, pred: ValueId, target: ValueId) -> Result<ValueId> {
        let ps = g.value(pred).shape.clone();
        let (dtype, dims) = self.target_spec(ps.dims());
        let ts = g.value(target);
        if ts.dtype != dtype || ts.shape.dims() != dims {
            return Err(Error::shapes(
                "loss",
                ps.dims(),
                ts.shape.dims(),
                format!("{self:?} needs {dtype:?} targets of shape {dims:?} for predictions {:?}", ps.dims()),
            ));
        }
        if ps.rank() < 1 || ps.numel() == 0 {
            return Err(Error::shapes("loss", ps.dims(), &[], "predictions need at least one axis"));
        }
        let last = ps.rank() - 1;
        let per_sample = match *self {
            Loss::SparseCategoricalCrossentropy { from_logits } => {
                let c = ps.dims()[last];
                let rows = ps.numel() / c;
                let logits = match (from_logits, producer_input(g, pred, |op| *op == Op::Softmax)) {
                    (true, _) => pred,
                    (false, Some(z)) => z,
                    // Keras' probability path: the log of the clipped probabilities, taken as
                    // logits (so the probabilities are also renormalized).
                    (false, None) => g.unary(UnaryOp::Clip(EPSILON, 1.0 - EPSILON), pred).and_then(|p| g.unary(UnaryOp::Log, p))?,
                };
                let z = g.reshape(logits, [rows, c])?;
                let t = g.reshape(target, [rows])?;
                g.softmax_cross_entropy(z, t)?
            }
            Loss::CategoricalCrossentropy { from_logits } => {
                let logits = match (from_logits, producer_input(g, pred, |op| *op == Op::Softmax)) {
                    (true, _) => Some(pred),
                    (false, z) => z,
                };
                match logits {
                    // sum(y) * logsumexp(z) - sum(y * z), with the max subtracted for stability.
                    Some(z) => {
                        let m = g.reduce(ReduceOp::Max, z, &[last], true)?;
                        let shifted = g.sub(z, m)?;
                        let e = g.unary(UnaryOp::Exp, shifted)?;
                        let s = g.sum(e, &[last], true)?;
                        let lse = g.unary(UnaryOp::Log, s)?;
                        let lse = g.add(lse, m)?;
                        let ysum = g.sum(target, &[last], true)?;
                        let a = g.mul(ysum, lse)?;
                        let yz = g.mul(target, z)?;
                        let b = g.sum(yz, &[last], true)?;
                        let l = g.sub(a, b)?;
                        g.sum(l, &[last], false)?
                    }
                    None => {
                        // Keras: p / sum(p), clipped, then -sum(y * log p).
                        let s = g.sum(pred, &[last], true)?;
                        let p = g.div(pred, s)?;
                        let p = g.unary(UnaryOp::Clip(EPSILON, 1.0 - EPSILON), p)?;
                        let lp = g.unary(UnaryOp::Log, p)?;
                        let ylp = g.mul(target, lp)?;
                        let l = g.sum(ylp, &[last], false)?;
                        g.unary(UnaryOp::Neg, l)?
                    }
                }
            }
            Loss::BinaryCrossentropy { from_logits } => {
                let logits = match (from_logits, producer_input(g, pred, |op| *op == Op::Unary(UnaryOp::Sigmoid))) {
                    (true, _) => Some(pred),
                    (false, z) => z,
                };
                let l = match logits {
                    // max(z, 0) - z * y + log(1 + exp(-|z|))
                    Some(z) => {
                        let relu = g.unary(UnaryOp::Relu, z)?;
                        let zy = g.mul(z, target)?;
                        let a = g.sub(relu, zy)?;
                        let abs = g.unary(UnaryOp::Abs, z)?;
                        let neg = g.unary(UnaryOp::Neg, abs)?;
                        let e = g.unary(UnaryOp::Exp, neg)?;
                        let e1 = g.unary(UnaryOp::Offset(1.0), e)?;
                        let lg = g.unary(UnaryOp::Log, e1)?;
                        g.add(a, lg)?
                    }
                    // -(y log(p + eps) + (1 - y) log(1 - p + eps)) with p clipped, as Keras.
                    None => {
                        let p = g.unary(UnaryOp::Clip(EPSILON, 1.0 - EPSILON), pred)?;
                        let pe = g.unary(UnaryOp::Offset(EPSILON), p)?;
                        let lp = g.unary(UnaryOp::Log, pe)?;
                        let a = g.mul(target, lp)?;
                        let q = g.unary(UnaryOp::Neg, p)?;
                        let q = g.unary(UnaryOp::Offset(1.0 + EPSILON), q)?;
                        let lq = g.unary(UnaryOp::Log, q)?;
                        let ny = g.unary(UnaryOp::Neg, target)?;
                        let ny = g.unary(UnaryOp::Offset(1.0), ny)?;
                        let b = g.mul(ny, lq)?;
                        let s = g.add(a, b)?;
                        g.unary(UnaryOp::Neg, s)?
                    }
                };
                g.mean(l, &[last], false)?
            }
            Loss::Hinge | Loss::SquaredHinge => {
                let y = signed_labels(g, target)?;
                let yp = g.mul(y, pred)?;
                let m = g.unary(UnaryOp::Neg, yp)?;
                let m = g.unary(UnaryOp::Offset(1.0), m)?;
                let m = g.unary(UnaryOp::Relu, m)?;
                let m = if *self == Loss::SquaredHinge { g.unary(UnaryOp::Square, m)? } else { m };
                g.mean(m, &[last], false)?
            }
            Loss::MeanSquaredError => {
                let d = g.sub(pred, target)?;
                let d = g.unary(UnaryOp::Square, d)?;
                g.mean(d, &[last], false)?
            }
        };
        let axes: Vec<usize> = (0..g.value(per_sample).shape.rank()).collect();
        let mean = g.mean(per_sample, &axes, false)?;
        g.reshape(mean, [1])
    }
}

/// The input of the node that produced `v`, if that node's op satisfies `is`.
fn producer_input(g: &Graph, v: ValueId, is: impl Fn(&Op) -> bool) -> Option<ValueId> {
    match g.value(v).source {
        Source::Node(n) if is(&g.nodes()[n].op) => Some(g.nodes()[n].inputs[0]),
        _ => None,
    }
}

/// Keras' `_maybe_convert_labels`: targets that are all 0 or 1 become -1/+1, others stay.
fn signed_labels(g: &mut Graph, y: ValueId) -> Result<ValueId> {
    let shape = g.value(y).shape.clone();
    let zero = g.fill([1], 0.0)?;
    let one = g.fill([1], 1.0)?;
    let is0 = g.binary(BinaryOp::Eq, y, zero)?;
    let is1 = g.binary(BinaryOp::Eq, y, one)?;
    let binary = g.add(is0, is1)?;
    let all: Vec<usize> = (0..shape.rank()).collect();
    // min(binary) as -max(-binary): 1 when every target is 0 or 1.
    let nb = g.unary(UnaryOp::Neg, binary)?;
    let b = g.reduce(ReduceOp::Max, nb, &all, false)?;
    let b = g.unary(UnaryOp::Neg, b)?;
    let b = g.reshape(b, [1])?;
    // y * (1 + b) - b: 2y - 1 when binary, y otherwise.
    let k = g.unary(UnaryOp::Offset(1.0), b)?;
    let yk = g.mul(y, k)?;
    g.sub(yk, b)
}

impl crate::layers::Arg<Loss> for Loss {
    fn resolve(self) -> Result<Loss> {
        Ok(self)
    }
}

/// A loss by Keras name (see [`Loss::from_name`]).
impl crate::layers::Arg<Loss> for &str {
    fn resolve(self) -> Result<Loss> {
        Loss::from_name(self)
    }
}
