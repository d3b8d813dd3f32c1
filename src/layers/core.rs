//! Keras' `Activation` and `Dropout` layers.

use super::{Activation, BuildContext, Layer, Mode};
use crate::error::{Error, Result};
use crate::graph::{BinaryOp, Distribution, Graph, ValueId};

/// Keras' `Activation` layer: applies an activation (any Keras/Larq name or quantizer).
#[derive(Clone, Debug)]
pub struct ActivationLayer {
    /// Layer name.
    pub name: String,
    /// The activation.
    pub activation: Activation,
    /// Its identity ([`Layer::id`]), kept by clones: a clone is the same layer.
    pub id: super::LayerId,
    /// An activation name that stands for nothing, reported by the build.
    pub invalid: super::arguments::Invalid,
}

impl ActivationLayer {
    /// Keras' `Activation("relu")`: an activation by value or name (a Keras activation or a
    /// quantizer).
    pub fn new(activation: impl super::Arg<Activation>) -> Self {
        let mut invalid = super::arguments::Invalid::default();
        let activation = invalid.take("activation", activation).unwrap_or(Activation::Linear);
        super::auto_named(ActivationLayer { id: super::LayerId::new(), name: String::new(), activation, invalid })
    }
}

impl Layer for ActivationLayer {
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
        "Activation"
    }

    fn build(&self, g: &mut Graph, x: ValueId, _ctx: &mut BuildContext) -> Result<ValueId> {
        self.invalid.check()?;
        self.activation.apply(g, x)
    }
}

/// Keras' `Dropout`: in training, each element is zeroed with probability `rate` and the rest
/// scaled by 1 / (1 - rate); in inference, the identity. The mask is drawn from `seed` and the
/// step counter, so it changes every step and is reproducible.
#[derive(Clone, Debug)]
pub struct Dropout {
    /// Layer name.
    pub name: String,
    /// Fraction of elements dropped, in [0, 1).
    pub rate: f32,
    /// Seed of the masks.
    pub seed: u64,
    /// Its identity ([`Layer::id`]), kept by clones: a clone is the same layer.
    pub id: super::LayerId,
}

impl Dropout {
    /// Keras' `Dropout(rate)`: drops a fraction `rate` of the elements in training; seed 0.
    pub fn new(rate: f32) -> Self {
        super::auto_named(Dropout { id: super::LayerId::new(), name: String::new(), rate, seed: 0 })
    }

    /// Sets the `seed` of the masks.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Layer for Dropout {
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
        "Dropout"
    }

    fn build(&self, g: &mut Graph, x: ValueId, ctx: &mut BuildContext) -> Result<ValueId> {
        if !(0.0..1.0).contains(&self.rate) {
            return Err(Error::invalid("Dropout", "rate", format!("layer `{}`: {} must lie in [0, 1)", self.name, self.rate)));
        }
        if ctx.mode == Mode::Inference || self.rate == 0.0 {
            return Ok(x);
        }
        let step = ctx.step_counter(g)?;
        let shape = g.value(x).shape.clone();
        // A shared dropout layer draws a different mask at each application.
        let seed = self.seed ^ (ctx.application as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ctx.seed.rotate_left(32);
        let u = g.random_streamed(shape, Distribution::Uniform { low: 0.0, high: 1.0 }, seed, step)?;
        // keep = (u >= rate) as 0/1, then scaled.
        let rate = g.fill([1], self.rate)?;
        let keep = g.binary(BinaryOp::Ge, u, rate)?;
        let keep = g.scale(keep, 1.0 / (1.0 - self.rate))?;
        g.mul(x, keep)
    }
}
