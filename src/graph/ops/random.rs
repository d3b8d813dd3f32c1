//! Counter-based random tensors (`Op::Random`): element `i` is `hash(seed, i)` with the
//! lowbias32 hash, identical in `shaders/random.wgsl`, so both backends draw the same numbers.

use super::{coded, Gpu, Host, Operands};
use crate::error::{Error, Result};
use crate::kernels::random::{Params, RANDOM, RANDOM_STREAMED};
use crate::kernels::{grid_1d, BufferView, Dispatch, Step, WG};
use crate::tensor::{DType, Shape, TensorData};

coded! {
/// Distributions for random tensors. Both backends draw the same numbers for the same seed:
/// uniform draws bit-exactly, normal draws within transcendental-function rounding.
#[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Distribution in "DIST_" {
    /// Uniform on `[low, high)`.
    Uniform {
        /// Lower bound (inclusive).
        low: f32,
        /// Upper bound (exclusive).
        high: f32,
    } = Distribution::Uniform { low: -1.0, high: 2.0 },
    /// Normal with the given mean and standard deviation (Box-Muller).
    Normal {
        /// Mean.
        mean: f32,
        /// Standard deviation.
        std: f32,
    } = Distribution::Normal { mean: 0.5, std: 2.0 },
    /// Normal truncated at two standard deviations (Keras' `TruncatedNormal`).
    TruncatedNormal {
        /// Mean.
        mean: f32,
        /// Standard deviation of the untruncated normal.
        std: f32,
    } = Distribution::TruncatedNormal { mean: 0.0, std: 1.0 },
}
}

/// The "lowbias32" integer hash; `shaders/random.wgsl` has the same function.
fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// 32 random bits for element `counter` of a tensor drawn with `seed`.
pub fn random_bits(seed: u64, counter: u32) -> u32 {
    let key = mix32(seed as u32 ^ mix32((seed >> 32) as u32 ^ 0x9e37_79b9));
    mix32(counter ^ key)
}

/// The seed of a streamed draw: the stream's value, as an integer, mixed into the high word.
pub fn stream_seed(seed: u64, stream: f32) -> u64 {
    seed ^ (u64::from(mix32(stream as u32)) << 32)
}

fn unit(bits: u32) -> f32 {
    (bits >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// A standard normal draw (Box-Muller) from the counter pair (2c, 2c + 1).
fn normal(seed: u64, c: u32) -> f32 {
    let u1 = 1.0 - unit(random_bits(seed, c.wrapping_mul(2)));
    let u2 = unit(random_bits(seed, c.wrapping_mul(2).wrapping_add(1)));
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Redraws per element for the truncated normal; after that many the draw is clamped (the chance
/// of reaching it is 0.0455^32).
const TRUNCATED_ATTEMPTS: u32 = 32;

fn draws(dist: Distribution, seed: u64, n: usize) -> Vec<f32> {
    (0..n as u32)
        .map(|i| match dist {
            Distribution::Uniform { low, high } => low + (high - low) * unit(random_bits(seed, i)),
            Distribution::Normal { mean, std } => mean + std * normal(seed, i),
            Distribution::TruncatedNormal { mean, std } => {
                let z = (0..TRUNCATED_ATTEMPTS)
                    .map(|a| normal(seed, i.wrapping_mul(TRUNCATED_ATTEMPTS).wrapping_add(a)))
                    .find(|z| z.abs() <= 2.0)
                    .unwrap_or_else(|| normal(seed, i.wrapping_mul(TRUNCATED_ATTEMPTS)).clamp(-2.0, 2.0));
                mean + std * z
            }
        })
        .collect()
}

pub(crate) fn infer(dist: Distribution, shape: &Shape, streamed: bool, a: &Operands) -> Result<(Shape, DType)> {
    shape.validate(a.name)?;
    if streamed {
        a.want(0, "stream", DType::F32)?;
        if a.shape(0).numel() != 1 {
            return Err(Error::shapes(a.name, a.shape(0).dims(), &[1], "the stream is one counter"));
        }
    }
    match dist {
        Distribution::Uniform { low, high } if low >= high || !low.is_finite() || !high.is_finite() => {
            return Err(Error::invalid(a.name, "dist", format!("uniform bounds [{low}, {high}) are empty or not finite")))
        }
        Distribution::Normal { mean, std } | Distribution::TruncatedNormal { mean, std }
            if std < 0.0 || !mean.is_finite() || !std.is_finite() =>
        {
            return Err(Error::invalid(a.name, "dist", format!("normal std {std} must be finite and >= 0")))
        }
        _ => {}
    }
    Ok((shape.clone(), DType::F32))
}

pub(crate) fn eval(dist: Distribution, seed: u64, shape: &Shape, streamed: bool, h: &Host) -> Result<TensorData> {
    let seed = if streamed { stream_seed(seed, h.f32(0)?[0]) } else { seed };
    Ok(TensorData::F32(draws(dist, seed, shape.numel())))
}

pub(crate) fn record(dist: Distribution, seed: u64, shape: &Shape, streamed: bool, d: &Gpu) -> Result<Step> {
    let n = shape.numel();
    Ok(Step::Dispatch(if streamed { random_streamed(dist, seed, n, d.x(0), d.out()?) } else { random(dist, seed, n, d.out()?) }))
}

/// `n` draws from `dist` with `seed`.
fn random(dist: Distribution, seed: u64, n: usize, out: &BufferView) -> Dispatch {
    Dispatch::new(RANDOM, &params(dist, seed, n), &[(1, out)], grid_1d(n, WG))
}

/// `n` draws from `dist` with `seed` mixed with the value in `stream` (see [`stream_seed`]).
fn random_streamed(dist: Distribution, seed: u64, n: usize, stream: &BufferView, out: &BufferView) -> Dispatch {
    Dispatch::new(RANDOM_STREAMED, &params(dist, seed, n), &[(1, out), (2, stream)], grid_1d(n, WG))
}

fn params(dist: Distribution, seed: u64, n: usize) -> Params {
    let (a, b) = match dist {
        Distribution::Uniform { low, high } => (low, high),
        Distribution::Normal { mean, std } | Distribution::TruncatedNormal { mean, std } => (mean, std),
    };
    let code = dist.code();
    Params { n: n as u32, dist: code, seed_lo: seed as u32, seed_hi: (seed >> 32) as u32, a, b, ..Default::default() }
}
