//! Hyperparameter schedules: Keras' learning-rate schedules (piecewise constant, exponential
//! and cosine decay) and custom closures, evaluated on the host once per step and fed to the
//! recorded step as inputs, so a schedule never changes the plan.

use crate::text::{number, plural};
use std::sync::Arc;

use crate::error::{Error, Result};

/// A value as a function of a counter (the optimizer's step for learning-rate schedules; the
/// epoch or step for a [`HyperparameterScheduler`]).
#[derive(Clone)]
pub enum Schedule {
    /// Always this value.
    Constant(f32),
    /// Keras' `PiecewiseConstantDecay`: `values[0]` while `t <= boundaries[0]`, `values[i]` while
    /// `t <= boundaries[i]`, then the last value.
    PiecewiseConstant {
        /// Increasing boundaries.
        boundaries: Vec<usize>,
        /// One more value than boundaries.
        values: Vec<f32>,
    },
    /// Keras' `ExponentialDecay`: `initial * rate^(t / steps)` (the exponent floored when
    /// `staircase`).
    ExponentialDecay {
        /// Value at t = 0.
        initial: f32,
        /// Counter units per decay period.
        decay_steps: usize,
        /// Factor per period.
        decay_rate: f32,
        /// Decay in whole periods.
        staircase: bool,
    },
    /// Keras' `CosineDecay`: `initial * ((1 - alpha) * 0.5 * (1 + cos(pi * min(t, steps) /
    /// steps)) + alpha)`.
    CosineDecay {
        /// Value at t = 0.
        initial: f32,
        /// Counter units to decay over.
        decay_steps: usize,
        /// Final value as a fraction of `initial`.
        alpha: f32,
    },
    /// Any function of the counter.
    Custom(Arc<dyn Fn(usize) -> f32 + Send + Sync>),
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Constant(v) => write!(f, "Constant({v})"),
            Schedule::PiecewiseConstant { boundaries, values } => write!(f, "PiecewiseConstant({boundaries:?}, {values:?})"),
            Schedule::ExponentialDecay { initial, decay_steps, decay_rate, staircase } => {
                write!(f, "ExponentialDecay({initial}, {decay_steps}, {decay_rate}, staircase {staircase})")
            }
            Schedule::CosineDecay { initial, decay_steps, alpha } => write!(f, "CosineDecay({initial}, {decay_steps}, alpha {alpha})"),
            Schedule::Custom(_) => write!(f, "Custom"),
        }
    }
}

/// For people: a constant is its value; a schedule names its kind and parameters in Keras'
/// terms, e.g. `CosineDecay from 0.01 over 20 steps to 0.01 of it`.
impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Constant(v) => write!(f, "{}", number(*v)),
            Schedule::PiecewiseConstant { boundaries, values } => {
                write!(f, "PiecewiseConstantDecay {}", number(values.first().copied().unwrap_or_default()))?;
                for (b, v) in boundaries.iter().zip(values.iter().skip(1)) {
                    write!(f, ", {} after step {b}", number(*v))?;
                }
                Ok(())
            }
            Schedule::ExponentialDecay { initial, decay_steps, decay_rate, staircase } => {
                let how = if *staircase { " (staircase)" } else { "" };
                let (i, r) = (number(*initial), number(*decay_rate));
                write!(f, "ExponentialDecay from {i}, x{r} every {decay_steps} {}{how}", plural(*decay_steps, "step"))
            }
            Schedule::CosineDecay { initial, decay_steps, alpha } => {
                let (i, a) = (number(*initial), number(*alpha));
                write!(f, "CosineDecay from {i} over {decay_steps} {} to {a} of it", plural(*decay_steps, "step"))
            }
            Schedule::Custom(_) => write!(f, "a custom schedule"),
        }
    }
}

impl From<f32> for Schedule {
    fn from(v: f32) -> Self {
        Schedule::Constant(v)
    }
}

impl Schedule {
    /// A custom schedule.
    pub fn custom(f: impl Fn(usize) -> f32 + Send + Sync + 'static) -> Self {
        Schedule::Custom(Arc::new(f))
    }

    /// Checks the parameters; `what` names the hyperparameter in errors.
    pub fn check(&self, what: &str) -> Result<()> {
        let bad = |why: String| Err(Error::invalid("schedule", "parameters", format!("{what}: {why}")));
        match self {
            Schedule::PiecewiseConstant { boundaries, values } => {
                if values.len() != boundaries.len() + 1 {
                    return bad(format!("{} values for {} boundaries (needs one more)", values.len(), boundaries.len()));
                }
                if boundaries.windows(2).any(|w| w[0] >= w[1]) {
                    return bad(format!("boundaries {boundaries:?} must increase"));
                }
            }
            Schedule::ExponentialDecay { decay_steps: 0, .. } | Schedule::CosineDecay { decay_steps: 0, .. } => {
                return bad("decay_steps must be positive".into())
            }
            _ => {}
        }
        Ok(())
    }

    /// The value at counter `t`.
    pub fn at(&self, t: usize) -> f32 {
        match self {
            Schedule::Constant(v) => *v,
            Schedule::PiecewiseConstant { boundaries, values } => values[boundaries.iter().take_while(|&&b| t > b).count()],
            Schedule::ExponentialDecay { initial, decay_steps, decay_rate, staircase } => {
                let p = t as f64 / *decay_steps as f64;
                let p = if *staircase { p.floor() } else { p };
                (*initial as f64 * (*decay_rate as f64).powf(p)) as f32
            }
            Schedule::CosineDecay { initial, decay_steps, alpha } => {
                let t = t.min(*decay_steps) as f64 / *decay_steps as f64;
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
                (*initial as f64 * ((1.0 - *alpha as f64) * cosine + *alpha as f64)) as f32
            }
            Schedule::Custom(f) => f(t),
        }
    }
}

/// When a [`HyperparameterScheduler`] updates its hyperparameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    /// At the start of each epoch, from the epoch index.
    Epoch,
    /// Before each step, from the global step index.
    Step,
}

/// Larq's `HyperparameterScheduler`: sets an optimizer hyperparameter (`"adam/learning_rate"`,
/// `"bop/gamma"`, ...) from a schedule of the epoch or step, overriding the optimizer's own value.
#[derive(Clone, Debug)]
pub struct HyperparameterScheduler {
    /// `optimizer name/hyperparameter`.
    pub hyperparameter: String,
    /// The schedule.
    pub schedule: Schedule,
    /// Per epoch or per step.
    pub every: Every,
}

impl HyperparameterScheduler {
    /// A scheduler of `hyperparameter` (`"optimizer/name"`).
    pub fn new(hyperparameter: &str, schedule: Schedule, every: Every) -> Self {
        HyperparameterScheduler { hyperparameter: hyperparameter.to_string(), schedule, every }
    }
}
