//! Keras' `BatchNormalization`.

use super::{add_weight, BuildContext, Initializer, Layer, MacCount, Mode, Regularizer, WeightSpec};
use crate::error::{Error, Result};
use crate::graph::{Graph, UnaryOp, ValueId};

/// Keras' `BatchNormalization` over one feature axis:
/// `gamma * (x - mean) / sqrt(var + epsilon) + beta`. Training uses the batch's mean and (biased) variance and moves the moving
/// statistics toward them by `1 - momentum` each step; inference uses the moving statistics.
/// As Keras' fused kernel does for rank-4/5 input normalized over its channel axis, the moving
/// variance then receives the unbiased batch variance (n / (n - 1) times the biased one).
#[derive(Clone, Debug)]
pub struct BatchNormalization {
    /// Layer name.
    pub name: String,
    /// The feature axis (negative counts from the end; Keras' default -1).
    pub axis: isize,
    /// Moving-average momentum (default 0.99).
    pub momentum: f32,
    /// Added to the variance (default 0.001).
    pub epsilon: f32,
    /// Learn an offset `beta`.
    pub center: bool,
    /// Learn a scale `gamma`.
    pub scale: bool,
    /// Initializer of beta (zeros).
    pub beta_initializer: Initializer,
    /// Initializer of gamma (ones).
    pub gamma_initializer: Initializer,
    /// Initializer of the moving mean (zeros).
    pub moving_mean_initializer: Initializer,
    /// Initializer of the moving variance (ones).
    pub moving_variance_initializer: Initializer,
    /// Penalty on beta.
    pub beta_regularizer: Option<Regularizer>,
    /// Penalty on gamma.
    pub gamma_regularizer: Option<Regularizer>,
    /// Whether the optimizer updates gamma and beta (Keras' `trainable`). A frozen layer also
    /// normalizes with its moving statistics in training and leaves them unchanged, as Keras 2
    /// runs a BatchNormalization with `trainable=False` in inference mode.
    pub trainable: bool,
    /// Its identity ([`Layer::id`]), kept by clones: a clone is the same layer.
    pub id: super::LayerId,
}

impl Default for BatchNormalization {
    /// [`BatchNormalization::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl BatchNormalization {
    /// Keras' defaults.
    pub fn new() -> Self {
        super::auto_named(BatchNormalization {
            id: super::LayerId::new(),
            name: String::new(),
            axis: -1,
            momentum: 0.99,
            epsilon: 1e-3,
            center: true,
            scale: true,
            beta_initializer: Initializer::Zeros,
            gamma_initializer: Initializer::Ones,
            moving_mean_initializer: Initializer::Zeros,
            moving_variance_initializer: Initializer::Ones,
            beta_regularizer: None,
            gamma_regularizer: None,
            trainable: true,
        })
    }

    fn bad(&self, arg: &'static str, why: String) -> Error {
        Error::invalid("BatchNormalization", arg, format!("layer `{}`: {why}", self.name))
    }

    /// Creates the weights for `c` features: gamma (if `scale`), beta (if `center`), the moving
    /// mean and the moving variance.
    fn add_weights(&self, g: &mut Graph, ctx: &mut BuildContext, c: usize) -> Result<(Option<ValueId>, Option<ValueId>, ValueId, ValueId)> {
        let mut add = |spec: WeightSpec| add_weight(g, ctx, spec).map(|(w, _)| w);
        let gamma = match self.scale {
            true => Some(add(WeightSpec {
                regularizer: self.gamma_regularizer,
                trainable: self.trainable,
                ..self.spec("gamma", c, self.gamma_initializer)
            })?),
            false => None,
        };
        let beta = match self.center {
            true => Some(add(WeightSpec {
                regularizer: self.beta_regularizer,
                trainable: self.trainable,
                ..self.spec("beta", c, self.beta_initializer)
            })?),
            false => None,
        };
        let moving_mean = add(WeightSpec { trainable: false, ..self.spec("moving_mean", c, self.moving_mean_initializer) })?;
        let moving_var = add(WeightSpec { trainable: false, ..self.spec("moving_variance", c, self.moving_variance_initializer) })?;
        Ok((gamma, beta, moving_mean, moving_var))
    }

    /// Creates the weights for `c` features and returns the inference transform from the moving
    /// statistics as `x * scale + shift`, both `[c]`: `scale = gamma / sqrt(var + epsilon)`,
    /// `shift = beta - mean * scale` (what folding the layer into a product before it needs).
    pub fn frozen_affine(&self, g: &mut Graph, ctx: &mut BuildContext, c: usize) -> Result<(ValueId, ValueId)> {
        let (gamma, beta, mean, var) = self.add_weights(g, ctx, c)?;
        let var = g.unary(UnaryOp::Offset(self.epsilon), var)?;
        let std = g.unary(UnaryOp::Sqrt, var)?;
        let mut scale = g.unary(UnaryOp::Recip, std)?;
        if let Some(gamma) = gamma {
            scale = g.mul(scale, gamma)?;
        }
        let moved = g.mul(mean, scale)?;
        let shift = match beta {
            Some(beta) => g.sub(beta, moved)?,
            None => g.unary(UnaryOp::Neg, moved)?,
        };
        Ok((scale, shift))
    }

    /// A per-feature weight `layer/name` of `c` values: trainable, no regularizer.
    fn spec<'a>(&'a self, name: &'a str, c: usize, initializer: Initializer) -> WeightSpec<'a> {
        WeightSpec::plain(&self.name, name, [c], initializer)
    }
}

impl Layer for BatchNormalization {
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
        "BatchNormalization"
    }

    fn macs(&self) -> MacCount {
        MacCount::Zero
    }

    fn build(&self, g: &mut Graph, x: ValueId, ctx: &mut BuildContext) -> Result<ValueId> {
        let xs = g.value(x).shape.clone();
        let rank = xs.rank() as isize;
        let axis = if self.axis < 0 { self.axis + rank } else { self.axis };
        if rank < 2 || !(0..rank).contains(&axis) || axis == 0 {
            return Err(self.bad("axis", format!("{} is not a feature axis of input {:?}", self.axis, xs.dims())));
        }
        if !(self.epsilon > 0.0 && (0.0..=1.0).contains(&self.momentum)) {
            return Err(self
                .bad("momentum/epsilon", format!("need momentum in [0, 1] and epsilon > 0, got {} and {}", self.momentum, self.epsilon)));
        }
        let axis = axis as usize;
        let c = xs.dims()[axis];
        // Per-feature tensors broadcast as [1, .., C, .., 1].
        let bshape: Vec<usize> = (0..xs.rank()).map(|d| if d == axis { c } else { 1 }).collect();
        let (gamma, beta, moving_mean, moving_var) = self.add_weights(g, ctx, c)?;
        let reduce: Vec<usize> = (0..xs.rank()).filter(|&d| d != axis).collect();
        let training = ctx.mode == Mode::Training && self.trainable;
        let (mean, var) = match training {
            true => {
                let mean = g.mean(x, &reduce, true)?;
                let centered = g.sub(x, mean)?;
                let sq = g.unary(UnaryOp::Square, centered)?;
                let var = g.mean(sq, &reduce, true)?;
                let n = xs.numel() / c;
                let fused = matches!(xs.rank(), 4 | 5) && (axis == 1 || axis == xs.rank() - 1);
                let correction = if fused && n > 1 { n as f32 / (n - 1) as f32 } else { 1.0 };
                for (moving, batch, factor) in [(moving_mean, mean, 1.0), (moving_var, var, correction)] {
                    // moving <- moving - (moving - batch) * (1 - momentum), as Keras writes it.
                    let batch = g.reshape(batch, [c])?;
                    let batch = g.scale(batch, factor)?;
                    let delta = g.sub(moving, batch)?;
                    let delta = g.scale(delta, 1.0 - self.momentum)?;
                    let updated = g.sub(moving, delta)?;
                    g.assign(moving, updated)?;
                }
                (mean, var)
            }
            false => (g.reshape(moving_mean, bshape.clone())?, g.reshape(moving_var, bshape.clone())?),
        };
        let centered = g.sub(x, mean)?;
        let var = g.unary(UnaryOp::Offset(self.epsilon), var)?;
        let std = g.unary(UnaryOp::Sqrt, var)?;
        let inv = g.unary(UnaryOp::Recip, std)?;
        let xhat = g.mul(centered, inv)?;
        let mut y = xhat;
        let gamma_b = match gamma {
            Some(gamma) => Some(g.reshape(gamma, bshape.clone())?),
            None => None,
        };
        if let Some(gamma) = gamma_b {
            y = g.mul(y, gamma)?;
        }
        if let Some(beta) = beta {
            let beta = g.reshape(beta, bshape)?;
            y = g.add(y, beta)?;
        }
        if training {
            // The closed form of the batch statistics' gradient (TensorFlow's fused batch norm
            // gradient): two reductions and one elementwise pass instead of the backward of each
            // op of the forward, through the mean and the variance.
            //   dbeta = sum(dy), dgamma = sum(dy * xhat),
            //   dx = gamma * inv * (dy - (dbeta + xhat * dgamma) / n).
            let n = (xs.numel() / c) as f32;
            let wrt: Vec<ValueId> = [Some(x), gamma, beta].into_iter().flatten().collect();
            let (has_gamma, has_beta) = (gamma.is_some(), beta.is_some());
            g.override_gradient(y, &wrt, move |gr, dy| {
                let dbeta = gr.sum(dy, &reduce, true)?;
                let dyx = gr.mul(dy, xhat)?;
                let dgamma = gr.sum(dyx, &reduce, true)?;
                let scale = match gamma_b {
                    Some(gamma) => gr.mul(inv, gamma)?,
                    None => inv,
                };
                let moved = gr.mul(xhat, dgamma)?;
                let moved = gr.add(moved, dbeta)?;
                let moved = gr.scale(moved, 1.0 / n)?;
                let d = gr.sub(dy, moved)?;
                let mut grads = vec![Some(gr.mul(d, scale)?)];
                if has_gamma {
                    grads.push(Some(gr.reshape(dgamma, [c])?));
                }
                if has_beta {
                    grads.push(Some(gr.reshape(dbeta, [c])?));
                }
                Ok(grads)
            })?;
        }
        Ok(y)
    }
}

impl BatchNormalization {
    /// Sets `axis` (the feature axis; negative counts from the end).
    pub fn axis(mut self, axis: isize) -> Self {
        self.axis = axis;
        self
    }

    /// Sets `momentum` (of the moving statistics).
    pub fn momentum(mut self, m: f32) -> Self {
        self.momentum = m;
        self
    }

    /// Sets `epsilon` (added to the variance).
    pub fn epsilon(mut self, e: f32) -> Self {
        self.epsilon = e;
        self
    }

    /// Adds or removes the offset `beta` (`center`).
    pub fn center(mut self, c: bool) -> Self {
        self.center = c;
        self
    }

    /// Adds or removes the factor `gamma` (`scale`; Larq's models often set `scale=False`).
    pub fn scale(mut self, s: bool) -> Self {
        self.scale = s;
        self
    }

    /// Freezes the layer or not (Keras' `trainable`; a frozen layer normalizes with its moving statistics).
    pub fn trainable(mut self, t: bool) -> Self {
        self.trainable = t;
        self
    }
}
