//! Keras' merge layers `Add`, `Multiply` and `Concatenate`: layers of several inputs.

use crate::error::{Error, Result};
use crate::graph::{Graph, ValueId};

/// What a merge layer does with its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeKind {
    /// Elementwise sum.
    Add,
    /// Elementwise product.
    Multiply,
    /// Joined along an axis (negative counts from the end; Keras' default -1).
    Concatenate {
        /// The axis.
        axis: isize,
    },
}

/// A merge layer.
#[derive(Clone, Debug)]
pub struct Merge {
    /// Layer name.
    pub name: String,
    /// What it does.
    pub kind: MergeKind,
    /// Its identity ([`Layer::id`](crate::layers::Layer::id)), kept by clones: a clone is the same layer.
    pub id: super::LayerId,
}

impl Merge {
    /// A merge layer of this kind.
    pub fn new(kind: MergeKind) -> Self {
        super::auto_named(Merge { id: super::LayerId::new(), name: String::new(), kind })
    }

    /// The Keras class name.
    pub fn class(&self) -> &'static str {
        match self.kind {
            MergeKind::Add => "Add",
            MergeKind::Multiply => "Multiply",
            MergeKind::Concatenate { .. } => "Concatenate",
        }
    }

    /// Records the merge of `inputs` (at least two) and returns its output.
    pub fn build(&self, g: &mut Graph, inputs: &[ValueId]) -> Result<ValueId> {
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|&x| g.value(x).shape.dims().to_vec()).collect();
        let bad = |why: String| {
            Error::shapes(
                self.class(),
                shapes.first().map_or(&[][..], |s| s),
                shapes.get(1).map_or(&[][..], |s| s),
                format!("layer `{}`: {why}", self.name),
            )
        };
        if inputs.len() < 2 {
            return Err(bad(format!("needs at least 2 inputs, got {}", inputs.len())));
        }
        match self.kind {
            MergeKind::Add | MergeKind::Multiply => {
                // Keras broadcasts: each axis agrees or is 1 in one of the inputs (Real-to-Binary
                // Net scales [h, w, c] by a [1, 1, c] gate).
                let fits =
                    |s: &Vec<usize>| s.len() == shapes[0].len() && s.iter().zip(&shapes[0]).all(|(&a, &b)| a == b || a == 1 || b == 1);
                if let Some(s) = shapes.iter().find(|s| !fits(s)) {
                    return Err(bad(format!(
                        "all inputs must have the same shape, or sizes of 1 where they differ; {:?} does not fit {:?}",
                        s, shapes[0]
                    )));
                }
                let mut y = inputs[0];
                for &x in &inputs[1..] {
                    y = if self.kind == MergeKind::Add { g.add(y, x)? } else { g.mul(y, x)? };
                }
                Ok(y)
            }
            MergeKind::Concatenate { axis } => {
                let rank = shapes[0].len() as isize;
                let a = if axis < 0 { axis + rank } else { axis };
                if !(1..rank).contains(&a) {
                    return Err(bad(format!("axis {axis} is not a non-batch axis of rank {rank}")));
                }
                g.concat(inputs, a as usize).map_err(|e| bad(e.to_string()))
            }
        }
    }
}

/// Keras' `Add`: a [`Merge`] summing its inputs.
pub struct Add;

impl Add {
    /// `Add()`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> Merge {
        Merge::new(MergeKind::Add)
    }
}

/// Keras' `Multiply`: a [`Merge`] multiplying its inputs.
pub struct Multiply;

impl Multiply {
    /// `Multiply()`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> Merge {
        Merge::new(MergeKind::Multiply)
    }
}

/// Keras' `Concatenate`: a [`Merge`] joining its inputs along an axis.
pub struct Concatenate;

impl Concatenate {
    /// `Concatenate(axis=-1)`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> Merge {
        Merge::new(MergeKind::Concatenate { axis: -1 })
    }

    /// `Concatenate(axis)`; negative axes count from the end.
    pub fn axis(axis: isize) -> Merge {
        Merge::new(MergeKind::Concatenate { axis })
    }
}
