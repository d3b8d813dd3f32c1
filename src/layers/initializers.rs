//! Keras weight initializers, resolved to seeded device-side draws.

use crate::error::{Error, Result};
use crate::graph::{Distribution, Init};
use crate::tensor::Shape;

/// A Keras initializer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Initializer {
    /// Uniform on ±sqrt(6 / (fan_in + fan_out)).
    GlorotUniform,
    /// Truncated normal with std sqrt(2 / (fan_in + fan_out)) / 0.8796.
    GlorotNormal,
    /// Truncated normal with std sqrt(2 / fan_in) / 0.8796.
    HeNormal,
    /// Uniform on ±sqrt(6 / fan_in).
    HeUniform,
    /// 0.
    Zeros,
    /// 1.
    Ones,
    /// A constant.
    Constant(f32),
    /// Uniform on [minval, maxval) (Keras default ±0.05).
    RandomUniform {
        /// Lower bound.
        minval: f32,
        /// Upper bound.
        maxval: f32,
    },
    /// Normal (Keras default mean 0, std 0.05).
    RandomNormal {
        /// Mean.
        mean: f32,
        /// Standard deviation.
        stddev: f32,
    },
    /// Larq Zoo's `blurpool_initializer` (QuickNet's anti-aliased pooling): a depthwise kernel
    /// `[k, k, channels, 1]` (k = 2, 3 or 5) of the normalized outer product of binomial
    /// coefficients (`[1, 2, 1]` for k = 3), the same for every channel.
    BlurPool,
    /// An initializer a program registered with [`register`], by its place in the registry.
    Registered(usize),
}

/// What computes a registered initializer's values for a shape (row-major).
pub type Values = dyn Fn(&Shape) -> Vec<f32> + Send + Sync;

/// Initializers a program registered, by the name Keras JSON gives them.
static REGISTRY: std::sync::Mutex<Vec<(String, std::sync::Arc<Values>)>> = std::sync::Mutex::new(Vec::new());

/// Registers an initializer under `name` (a Keras class name or custom object function name),
/// as Keras' `custom_objects`, so that Keras JSON naming it reads; `values` gives a weight of a
/// shape its initial values (row-major). A built-in or registered name is an error.
pub fn register(name: &str, values: impl Fn(&Shape) -> Vec<f32> + Send + Sync + 'static) -> Result<Initializer> {
    let built_in = !matches!(Initializer::from_keras(name, |_, d| Ok(d)), Err(Error::Unknown { .. }));
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    if built_in || registry.iter().any(|(n, _)| n == name) {
        return Err(Error::invalid("initializers::register", "name", format!("`{name}` is already the name of an initializer")));
    }
    registry.push((name.to_string(), std::sync::Arc::new(values)));
    Ok(Initializer::Registered(registry.len() - 1))
}

/// The name of a registered initializer.
pub fn registered_name(i: usize) -> Option<String> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).get(i).map(|(n, _)| n.clone())
}

/// The standard deviation of a normal truncated at two standard deviations, relative to the
/// untruncated one (Keras divides by it so that the truncated draw has the intended variance).
const TRUNCATION_STD: f32 = 0.879_625_7;

impl Initializer {
    /// By Keras name, with Keras' defaults.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::from_keras(name, |_, default| Ok(default))
    }

    /// By Keras class (`GlorotUniform`, ...) or name (`glorot_uniform`, ...), reading each
    /// parameter through `param(name, Keras' default)`.
    pub fn from_keras(class: &str, mut param: impl FnMut(&str, f32) -> Result<f32>) -> Result<Self> {
        Ok(match class {
            "GlorotUniform" | "glorot_uniform" => Initializer::GlorotUniform,
            "GlorotNormal" | "glorot_normal" => Initializer::GlorotNormal,
            "HeNormal" | "he_normal" => Initializer::HeNormal,
            "HeUniform" | "he_uniform" => Initializer::HeUniform,
            "Zeros" | "zeros" => Initializer::Zeros,
            "Ones" | "ones" => Initializer::Ones,
            "Constant" | "constant" => Initializer::Constant(param("value", 0.0)?),
            "RandomUniform" | "random_uniform" => {
                Initializer::RandomUniform { minval: param("minval", -0.05)?, maxval: param("maxval", 0.05)? }
            }
            "RandomNormal" | "random_normal" => Initializer::RandomNormal { mean: param("mean", 0.0)?, stddev: param("stddev", 0.05)? },
            "blurpool_initializer" => Initializer::BlurPool,
            other => {
                if let Some(i) = registered_index(other) {
                    return Ok(Initializer::Registered(i));
                }
                let known = [
                    "glorot_uniform",
                    "glorot_normal",
                    "he_normal",
                    "he_uniform",
                    "zeros",
                    "ones",
                    "constant",
                    "random_uniform",
                    "random_normal",
                    "blurpool_initializer",
                ];
                return Err(Error::unknown("initializer", other, known));
            }
        })
    }

    /// Keras' fans of a weight shape: a Dense kernel `[in, out]`, a convolution kernel
    /// `[k..., in, out]` (times the receptive field), a vector `[n]`.
    pub fn fans(shape: &Shape) -> (f32, f32) {
        let d = shape.dims();
        match d.len() {
            0 => (1.0, 1.0),
            1 => (d[0] as f32, d[0] as f32),
            r => {
                // In floats: a shape too large to create still gets fans (the variable refuses it).
                let receptive: f64 = d[..r - 2].iter().map(|&k| k as f64).product();
                ((d[r - 2] as f64 * receptive) as f32, (d[r - 1] as f64 * receptive) as f32)
            }
        }
    }

    /// The device-side initialisation of a weight of `shape`, drawn with `seed`.
    pub fn init(&self, shape: &Shape, seed: u64) -> Init {
        let (fan_in, fan_out) = Self::fans(shape);
        let uniform = |limit: f32| Init::Random { dist: Distribution::Uniform { low: -limit, high: limit }, seed };
        let truncated = |std: f32| Init::Random { dist: Distribution::TruncatedNormal { mean: 0.0, std: std / TRUNCATION_STD }, seed };
        match *self {
            Initializer::GlorotUniform => uniform((6.0 / (fan_in + fan_out)).sqrt()),
            Initializer::GlorotNormal => truncated((2.0 / (fan_in + fan_out)).sqrt()),
            Initializer::HeNormal => truncated((2.0 / fan_in).sqrt()),
            Initializer::HeUniform => uniform((6.0 / fan_in).sqrt()),
            Initializer::Zeros => Init::Zeros,
            Initializer::Ones => Init::Constant(1.0),
            Initializer::Constant(v) => Init::Constant(v),
            Initializer::RandomUniform { minval, maxval } => {
                Init::Random { dist: Distribution::Uniform { low: minval, high: maxval }, seed }
            }
            Initializer::RandomNormal { mean, stddev } => Init::Random { dist: Distribution::Normal { mean, std: stddev }, seed },
            Initializer::BlurPool => Init::Values(blurpool(shape).into()),
            Initializer::Registered(i) => {
                let values = REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).get(i).map(|(_, v)| v.clone());
                match values {
                    Some(v) => Init::Values(v(shape).into()),
                    // Registrations are never removed, so every index `register` made is there.
                    None => Init::Zeros,
                }
            }
        }
    }
}

/// Where the initializer registered as `name` is in the registry.
fn registered_index(name: &str) -> Option<usize> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).iter().position(|(n, _)| n == name)
}

/// [`Initializer::BlurPool`]'s values for `shape`, row-major: entry `(i, j, ..)` is
/// `b_i b_j / (sum b)^2`, `b` the binomial row of the kernel size (larq-zoo raises an error for
/// other sizes; here they get a box filter, all ones normalized, which is what `[1, 1]` is).
fn blurpool(shape: &Shape) -> Vec<f32> {
    let d = shape.dims();
    let k = d.first().copied().unwrap_or(1);
    let row: Vec<f64> = match k {
        3 => vec![1.0, 2.0, 1.0],
        5 => vec![1.0, 4.0, 6.0, 4.0, 1.0],
        _ => vec![1.0; k],
    };
    let total: f64 = row.iter().sum::<f64>().powi(2);
    let inner: usize = d.iter().skip(2).product();
    let cols = d.get(1).copied().unwrap_or(1);
    let mut out = Vec::with_capacity(shape.numel());
    for i in 0..k {
        for j in 0..cols {
            let v = (row[i] * row.get(j).copied().unwrap_or(1.0) / total) as f32;
            out.extend(std::iter::repeat_n(v, inner));
        }
    }
    out
}
