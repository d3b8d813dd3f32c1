//! Image resizing as TensorFlow 2's `tf.image.resize` computes it (half-pixel centres, no
//! antialiasing): each spatial axis is a product with a constant interpolation matrix, so the
//! backward is the matrix's transpose through the products' own gradients and resizing needs no
//! kernel of its own. Each output sums at most two nonzero terms, so the results equal
//! TensorFlow's to float rounding (nearest: exactly).

use super::{Graph, ValueId};
use crate::error::{Error, Result};
use crate::tensor::HostTensor;

/// How [`Graph::resize_images`] samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeMethod {
    /// `tf.image.ResizeMethod.NEAREST_NEIGHBOR` (`"nearest"`): output `o` takes input
    /// `min(floor((o + 0.5) * in / out), in - 1)`.
    Nearest,
    /// `tf.image.ResizeMethod.BILINEAR` (`"bilinear"`, the default): output `o` samples input
    /// position `(o + 0.5) * in / out - 0.5` between its two neighbours, clamped at the edges.
    Bilinear,
}

impl ResizeMethod {
    /// The names TensorFlow gives the methods bitgrad has.
    pub const NAMES: [&'static str; 2] = ["bilinear", "nearest"];

    /// The method of TensorFlow's name for it.
    pub fn from_name(name: &str) -> Result<ResizeMethod> {
        match name {
            "bilinear" => Ok(ResizeMethod::Bilinear),
            "nearest" => Ok(ResizeMethod::Nearest),
            other => Err(Error::unknown("resize method", other, ResizeMethod::NAMES)),
        }
    }
}

/// The `[output, input]` matrix that resamples `input` positions to `output` ones: row `o` holds
/// output `o`'s weights. Computed in f32 as TensorFlow computes its scale, positions and
/// interpolation weights.
pub fn interpolation_matrix(input: usize, output: usize, method: ResizeMethod) -> Vec<f32> {
    let scale = input as f32 / output as f32;
    let last = input - 1;
    let mut m = vec![0.0f32; output * input];
    for (o, row) in m.chunks_exact_mut(input).enumerate() {
        match method {
            ResizeMethod::Nearest => row[(((o as f32 + 0.5) * scale).floor() as usize).min(last)] = 1.0,
            ResizeMethod::Bilinear => {
                let at = (o as f32 + 0.5) * scale - 0.5;
                let floor = at.floor();
                // Below 0 both neighbours are the first input (TensorFlow clamps them apart:
                // max(floor, 0) and min(ceil, last)).
                let (lower, upper) = ((floor.max(0.0) as usize).min(last), (at.ceil().max(0.0) as usize).min(last));
                let lerp = at - floor;
                row[lower] += 1.0 - lerp;
                row[upper] += lerp;
            }
        }
    }
    m
}

impl Graph {
    /// `tf.image.resize(x, size, method)` of channels-last images `x` `[N, H, W, C]` to
    /// `[N, size[0], size[1], C]`. An axis whose size stays is left as it is (both methods map
    /// it to itself).
    pub fn resize_images(&mut self, x: ValueId, size: [usize; 2], method: ResizeMethod) -> Result<ValueId> {
        let dims = self.check(x)?.shape.dims().to_vec();
        let &[n, h, w, c] = dims.as_slice() else {
            return Err(Error::shapes("resize_images", &dims, &size, "resizes [batch, height, width, channels] images"));
        };
        if size.contains(&0) || h == 0 || w == 0 {
            return Err(Error::shapes("resize_images", &dims, &size, "sizes must be positive"));
        }
        let [oh, ow] = size;
        let mut y = x;
        if oh != h {
            let m = self.constant(HostTensor::f32([oh, h], interpolation_matrix(h, oh, method))?)?;
            let rows = self.reshape(y, [n, h, w * c])?;
            let rows = self.matmul(m, rows)?;
            y = self.reshape(rows, [n, oh, w, c])?;
        }
        if ow != w {
            let m = self.constant(HostTensor::f32([ow, w], interpolation_matrix(w, ow, method))?)?;
            let cols = self.reshape(y, [n * oh, w, c])?;
            let cols = self.matmul(m, cols)?;
            y = self.reshape(cols, [n, oh, ow, c])?;
        }
        Ok(y)
    }
}
