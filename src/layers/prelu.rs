//! Keras' `PReLU`: a ReLU whose slope for negative inputs is a learned weight, per element or
//! shared along axes (Real-to-Binary Net uses it with `shared_axes=[1, 2]`, one slope per
//! channel).

use std::sync::Arc;

use super::{add_weight, BuildContext, Initializer, Layer, MacCount, Regularizer, WeightSpec};
use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::graph::{Graph, UnaryOp, ValueId};

/// Keras' `PReLU`: `max(x, 0) - alpha * max(-x, 0)` with a weight `alpha` of the input's
/// per-sample shape, of size 1 along each of `shared_axes` (Keras' axes, 1 = the first axis
/// after the batch).
#[derive(Clone)]
pub struct PReLU {
    /// Layer name.
    pub name: String,
    /// Initial slopes (Keras' default: zeros).
    pub alpha_initializer: Initializer,
    /// A penalty on the slopes.
    pub alpha_regularizer: Option<Regularizer>,
    /// A constraint on the slopes.
    pub alpha_constraint: Option<Arc<dyn Constraint>>,
    /// Axes (from 1, the batch axis being 0) along which one slope is shared.
    pub shared_axes: Vec<usize>,
    /// Its identity ([`Layer::id`]), kept by clones: a clone is the same layer.
    pub id: super::LayerId,
}

impl PReLU {
    /// `PReLU()`: one slope per input element, initialized to 0.
    pub fn new() -> Self {
        super::auto_named(PReLU {
            name: String::new(),
            alpha_initializer: Initializer::Zeros,
            alpha_regularizer: None,
            alpha_constraint: None,
            shared_axes: Vec::new(),
            id: super::LayerId::new(),
        })
    }

    /// `PReLU(shared_axes=[1, 2])`: one slope along each of these axes (1 = the first after
    /// the batch axis), e.g. one per channel of an image.
    pub fn shared_axes(mut self, axes: &[usize]) -> Self {
        self.shared_axes = axes.to_vec();
        self
    }

    /// `alpha_initializer`.
    pub fn alpha_initializer(mut self, init: Initializer) -> Self {
        self.alpha_initializer = init;
        self
    }
}

impl Default for PReLU {
    fn default() -> Self {
        PReLU::new()
    }
}

impl std::fmt::Debug for PReLU {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PReLU").field("name", &self.name).field("shared_axes", &self.shared_axes).finish()
    }
}

impl Layer for PReLU {
    fn id(&self) -> Option<super::LayerId> {
        Some(self.id)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn class(&self) -> &str {
        "PReLU"
    }

    fn macs(&self) -> MacCount {
        // Larq's summary counts no MACs for it (`?`).
        MacCount::Unknown
    }

    fn build(&self, g: &mut Graph, x: ValueId, ctx: &mut BuildContext) -> Result<ValueId> {
        let dims = g.value(x).shape.dims().to_vec();
        let mut alpha_dims = dims[1..].to_vec();
        for &a in &self.shared_axes {
            if a == 0 || a >= dims.len() {
                return Err(Error::invalid(
                    "PReLU",
                    "shared_axes",
                    format!("layer `{}`: axis {a} is not an axis of the input [batch, {:?}] (they count from 1)", self.name, &dims[1..]),
                ));
            }
            alpha_dims[a - 1] = 1;
        }
        let mut spec = WeightSpec::plain(&self.name, "alpha", alpha_dims, self.alpha_initializer);
        spec.regularizer = self.alpha_regularizer;
        spec.constraint = self.alpha_constraint.clone();
        let (_, alpha) = add_weight(g, ctx, spec)?;
        // As Keras computes it: relu(x) + (-alpha) relu(-x), which is relu(x) - alpha relu(-x)
        // to the bit (negation is exact).
        let pos = g.unary(UnaryOp::Relu, x)?;
        let neg = g.unary(UnaryOp::Neg, x)?;
        let neg = g.unary(UnaryOp::Relu, neg)?;
        let neg = g.mul(alpha, neg)?;
        g.sub(pos, neg)
    }
}
