//! Patches as rows and back: `Op::Im2Col` and its adjoint `Op::Col2Im`, from which every
//! convolution is built (`crate::graph::conv`); WGSL: `shaders/im2col.wgsl`.

use super::{Gpu, Grad, Grads, Host, Operands};
use crate::error::{Error, Result};
use crate::graph::conv::{check_image, ConvGeometry, DataFormat};
use crate::graph::Graph;
use crate::kernels::im2col::{Params, COL2IM, COL2IM_DISJOINT, COL2IM_SIGNS_4, COL2IM_SIGNS_8, IM2COL};
use crate::kernels::{grid_1d, BufferView, Choice, Dispatch, Step, WG};
use crate::tensor::{DType, Shape, TensorData};

pub(crate) fn infer_im2col(geom: &ConvGeometry, pad_value: f32, a: &Operands) -> Result<(Shape, DType)> {
    check_image(a.name, geom, a.shape(0), a.inputs[0].1)?;
    if a.inputs[0].1 == DType::U32 && pad_value != 1.0 {
        return Err(Error::invalid(
            a.name,
            "pad_value",
            format!("packed bits pad with +1 only, not {pad_value}; zero padding needs a correction term"),
        ));
    }
    Ok((geom.cols_shape(), a.inputs[0].1))
}

pub(crate) fn infer_col2im(geom: &ConvGeometry, a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "cols", DType::F32)?;
    if a.shape(0) != &geom.cols_shape() {
        return Err(Error::shapes(a.name, a.shape(0).dims(), geom.cols_shape().dims(), "cols do not match the convolution geometry"));
    }
    Ok((geom.image_shape(), DType::F32))
}

pub(crate) fn backward_im2col(g: &mut Graph, geom: &ConvGeometry, r: &Grad) -> Result<Grads> {
    if g.value(r.x(0)).dtype != DType::F32 {
        return Err(Error::NotDifferentiable { op: "im2col", reason: "packed images carry no gradient".into() });
    }
    Ok(vec![Some(g.col2im(r.dy, geom)?)])
}

/// Padded positions of im2col only ever received constants, so zero padding is right.
pub(crate) fn backward_col2im(g: &mut Graph, geom: &ConvGeometry, r: &Grad) -> Result<Grads> {
    Ok(vec![Some(g.im2col(r.dy, geom, 0.0)?)])
}

pub(crate) fn eval_im2col(geom: &ConvGeometry, pad_value: f32, h: &Host) -> Result<TensorData> {
    Ok(match h.inputs[0].1 {
        TensorData::F32(v) => TensorData::F32(patches(geom, v, pad_value)),
        TensorData::U32(v) => TensorData::U32(patches(geom, v, 0)),
        d => return Err(Error::DTypeMismatch { op: "im2col", operand: "image", expected: DType::F32, got: d.dtype() }),
    })
}

pub(crate) fn eval_col2im(geom: &ConvGeometry, h: &Host) -> Result<TensorData> {
    Ok(TensorData::F32(sum_patches(geom, h.f32(0)?)))
}

pub(crate) fn record_im2col(geom: &ConvGeometry, pad_value: f32, d: &Gpu) -> Result<Step> {
    // Packed images pad with +1, which is the all-zero word.
    let pad_word = if d.dtypes[0] == DType::U32 { 0 } else { pad_value.to_bits() };
    Ok(Step::Dispatch(im2col(geom, pad_word, d.x(0), d.out()?)))
}

pub(crate) fn record_col2im(geom: &ConvGeometry, d: &Gpu) -> Result<Step> {
    Ok(Step::Dispatch(col2im(geom, d.x(0), d.out()?)))
}

/// Below this fraction of (image pixel, tap) pairs that some output pixel reads,
/// `col2im_signs` loses to the product and `col2im`: its threads sum every tap of several
/// pixels, so taps that read nothing still cost them. Measured on lavapipe (3x3 stride 1, batch
/// 16-64, 32-128 channels, docs/PERFORMANCE.md): 0.65-0.92x the time of the two dispatches with
/// "same" padding (0.84-0.95 read), 0.78-0.95x at 13x13 "valid" (0.72), 1.6-1.7x at 5x5
/// "valid" (0.36).
const COL2IM_SIGNS_MIN_READ: f64 = 0.7;

/// Whether [`record_col2im_signs`] should run col2im of the product `dY @ sign(W)` with dY's
/// rows of `k` values: channels last with a multiple of 4 channels (vec4 image writes and sign
/// nibbles within a word), `k` a multiple of 4 (vec4 reads of dY), and patches that read at
/// least [`COL2IM_SIGNS_MIN_READ`] of the (pixel, tap) pairs.
pub(crate) fn col2im_signs_fit(geom: &ConvGeometry, k: usize) -> bool {
    geom.format == DataFormat::ChannelsLast && geom.channels % 4 == 0 && k % 4 == 0 && k > 0 && read_fraction(geom) >= COL2IM_SIGNS_MIN_READ
}

/// The fraction of (image pixel, tap) pairs that an output pixel reads: per axis, the
/// (output, tap) pairs whose source lies inside over input size times taps (axes multiply).
fn read_fraction(g: &ConvGeometry) -> f64 {
    (0..g.kernel.len())
        .map(|i| {
            let read = (0..g.output[i]).flat_map(|o| (0..g.kernel[i]).map(move |t| (o, t))).filter(|&(o, t)| g.source(i, o, t).is_some());
            read.count() as f64 / (g.input[i] * g.kernel[i]) as f64
        })
        .product()
}

/// col2im of the patches `dY @ sign(W)` (dY `[N * out pixels, k]`, W's sign bits
/// `[k, taps * C]`), computed where col2im reads them instead of stored: the planner's choice
/// for the input gradient of a binary convolution (`runtime::fuse`). Each pixel's sum runs over
/// taps, then `k`, in one chain (not per tap first, as the two dispatches add), so it agrees
/// with them and the CPU reference to float accumulation tolerance; the tuner picks the pixels
/// per thread (both give the same bits).
pub(crate) fn record_col2im_signs(geom: &ConvGeometry, k: usize, dy: &BufferView, bits: &BufferView, image: &BufferView) -> Choice {
    let n = geom.image_shape().numel();
    let p = Params { k: k as u32, ..params(geom, n, 0, 4) };
    let pixels = n / geom.channels;
    let candidates = [(COL2IM_SIGNS_8, 8), (COL2IM_SIGNS_4, 4)]
        .into_iter()
        .map(|(kernel, rows)| {
            let threads = pixels.div_ceil(rows) * (geom.channels / 4);
            Dispatch::new(kernel, &p, &[(1, dy), (2, bits), (3, image)], grid_1d(threads, WG))
        })
        .collect();
    Choice { class: format!("col2im signs {n} taps {} k {k}", geom.taps()), candidates }
}

/// Multi-index of flat index `i` in row-major `dims`.
fn unravel(mut i: usize, dims: &[usize]) -> Vec<usize> {
    let mut out = vec![0; dims.len()];
    for d in (0..dims.len()).rev() {
        out[d] = i % dims[d];
        i /= dims[d];
    }
    out
}

/// Image offset of (n, spatial coordinates, c), or `None` in the padding, for output pixel
/// `o` and kernel tap `t`.
fn patch_source(g: &ConvGeometry, n: usize, o: &[usize], t: &[usize], c: usize) -> Option<usize> {
    let (sn, ss, sc) = g.image_strides();
    let mut off = n * sn + c * sc;
    for i in 0..g.kernel.len() {
        off += g.source(i, o[i], t[i])? * ss[i];
    }
    Some(off)
}

fn patches<T: Copy>(g: &ConvGeometry, image: &[T], pad: T) -> Vec<T> {
    let (taps, pixels) = (g.taps(), g.out_pixels());
    let mut out = Vec::with_capacity(g.batch * pixels * taps * g.channels);
    for n in 0..g.batch {
        for p in 0..pixels {
            let o = unravel(p, &g.output);
            for t in 0..taps {
                let tc = unravel(t, &g.kernel);
                for c in 0..g.channels {
                    out.push(patch_source(g, n, &o, &tc, c).map_or(pad, |s| image[s]));
                }
            }
        }
    }
    out
}

fn sum_patches(g: &ConvGeometry, cols: &[f32]) -> Vec<f32> {
    let mut image = vec![0.0f32; g.image_shape().numel()];
    let (taps, pixels) = (g.taps(), g.out_pixels());
    // Visit every (pixel, tap) in the same order as the GPU kernel sums them for each image
    // element: taps ascending for a fixed image element means pixels are visited per tap.
    for n in 0..g.batch {
        for t in 0..taps {
            let tc = unravel(t, &g.kernel);
            for p in 0..pixels {
                let o = unravel(p, &g.output);
                for c in 0..g.channels {
                    if let Some(s) = patch_source(g, n, &o, &tc, c) {
                        image[s] += cols[((n * pixels + p) * taps + t) * g.channels + c];
                    }
                }
            }
        }
    }
    image
}

fn vec4(v: &[usize]) -> [u32; 4] {
    let mut out = [0; 4];
    v.iter().enumerate().for_each(|(i, &x)| out[i] = x as u32);
    out
}

fn params(g: &ConvGeometry, n: usize, pad_word: u32, run: usize) -> Params {
    let (sn, ss, sc) = g.image_strides();
    Params {
        run: run as u32,
        k: 0,
        _pad1: 0,
        _pad2: 0,
        n: n as u32,
        rank: g.kernel.len() as u32,
        channels: g.channels as u32,
        pad_word,
        batch_stride: sn as u32,
        channel_stride: sc as u32,
        taps: g.taps() as u32,
        out_pixels: g.out_pixels() as u32,
        input: vec4(&g.input),
        output: vec4(&g.output),
        kernel: vec4(&g.kernel),
        strides: vec4(&g.strides),
        dilation: vec4(&g.dilation),
        pad_begin: vec4(&g.pad_begin),
        spatial_strides: vec4(&ss),
    }
}

/// Gathers patches of `image` into `cols`; padded positions get the raw word `pad_word`.
fn im2col(g: &ConvGeometry, pad_word: u32, image: &BufferView, cols: &BufferView) -> Dispatch {
    let n = g.cols_shape().numel();
    // Runs of 4 channels need them contiguous (channels last) and a whole number of runs per pixel.
    let run = if g.format == DataFormat::ChannelsLast && g.channels % 4 == 0 { 4 } else { 1 };
    // A thread per output pixel and run of channels, over every tap.
    Dispatch::new(IM2COL, &params(g, n, pad_word, run), &[(1, image), (3, cols)], grid_1d(n / g.taps() / run, WG))
}

/// Sums patches back into an f32 image.
fn col2im(g: &ConvGeometry, cols: &BufferView, image: &BufferView) -> Dispatch {
    let n = g.image_shape().numel();
    // A run of channels shares its pixel and taps; writes step by the channel stride.
    let run = if g.channels % 4 == 0 { 4 } else { 1 };
    let disjoint = g.kernel.iter().zip(&g.strides).zip(&g.dilation).all(|((k, s), d)| k <= s && *d == 1);
    let kernel = if disjoint { COL2IM_DISJOINT } else { COL2IM };
    Dispatch::new(kernel, &params(g, n, 0, run), &[(2, cols), (3, image)], grid_1d(n / run, WG))
}
