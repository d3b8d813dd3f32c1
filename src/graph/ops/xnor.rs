//! XNOR-popcount products of packed rows (`Op::XnorGemm`); WGSL: `shaders/xnor_gemm.wgsl`
//! (64x64 tiles) and `shaders/xnor_gemv.wgsl` / `xnor_gemv_subgroup.wgsl` (small M).

use super::bitpack::{pack_row, words_for, PackMode};
use super::{coded, Gpu, Host, Operands};
use crate::error::{Error, Result};
use crate::kernels::xnor_gemm::{Params, DIRECT, GEMV, GEMV_COLUMNS, GEMV_SUBGROUP, SMALL_M, TILE, TILED};
use crate::kernels::{BufferView, Caps, Choice, Dispatch, Step};
use crate::tensor::{DType, Shape, TensorData};

coded! {
    /// What an XNOR GEMM writes (see `shaders/xnor_gemm.wgsl`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Epilogue in "EPILOGUE_" {
        /// The integer dot product as f32.
        Plain,
        /// `dot * scale[n] + bias[n]`: takes two extra f32 `[N]` operands.
        Affine,
        /// Sign bits of `dot * scale[n] + bias[n]` packed along N: takes two extra f32 `[N]` operands
        /// and produces u32 words, ready for the next binary layer.
        Binarize,
    }
}

/// The sizes of an XNOR GEMM, derived once and shared by both backends.
#[derive(Clone, Debug, PartialEq)]
pub struct XnorDims {
    /// Rows of A and of the output.
    pub m: usize,
    /// Rows of B, columns of the output.
    pub n: usize,
    /// Real bits per row.
    pub k: usize,
    /// Words per row (at least ceil(k/32); padding bits are 0 in both operands).
    pub words: usize,
    /// Number of output matrices.
    pub batch: usize,
    /// True when B has the same batch axes as A; false when one B serves every batch.
    pub b_batched: bool,
}

impl XnorDims {
    /// Checks and derives the sizes of `xnor(a, b)` over `k` bits.
    pub fn new(a: &Shape, b: &Shape, k: usize) -> Result<Self> {
        let op = "xnor_gemm";
        if a.rank() < 2 || b.rank() < 2 {
            return Err(Error::shapes(op, a.dims(), b.dims(), "operands need rank >= 2"));
        }
        let (ra, rb) = (a.rank(), b.rank());
        let words = a.dims()[ra - 1];
        if k == 0 || words < words_for(k) || b.dims()[rb - 1] != words {
            return Err(Error::shapes(
                op,
                a.dims(),
                b.dims(),
                format!("both last axes must hold the same number of words, at least ceil(k/32) = {} for k = {k}", words_for(k)),
            ));
        }
        let b_batched = rb > 2;
        if b_batched && a.dims()[..ra - 2] != b.dims()[..rb - 2] {
            return Err(Error::shapes(op, a.dims(), b.dims(), "a batched B must have A's batch axes"));
        }
        if k >= 1 << 24 {
            return Err(Error::invalid(op, "k", format!("{k} bits: dot products must stay exact in f32 (k < 2^24)")));
        }
        Ok(XnorDims { m: a.dims()[ra - 2], n: b.dims()[rb - 2], k, words, batch: a.dims()[..ra - 2].iter().product(), b_batched })
    }
}

pub(crate) fn infer(k: usize, epilogue: Epilogue, a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "a", DType::U32)?;
    a.want(1, "b", DType::U32)?;
    let d = XnorDims::new(a.shape(0), a.shape(1), k)?;
    if epilogue != Epilogue::Plain {
        a.want(2, "scale", DType::F32)?;
        a.want(3, "bias", DType::F32)?;
        for (i, operand) in [(2, "scale"), (3, "bias")] {
            if a.shape(i).dims() != [d.n] {
                return Err(Error::shapes(a.name, a.shape(i).dims(), &[d.n], format!("`{operand}` must have one value per output column")));
            }
        }
    }
    let mut out = a.shape(0).dims().to_vec();
    let r = out.len();
    out[r - 1] = if epilogue == Epilogue::Binarize { words_for(d.n) } else { d.n };
    Ok((Shape::new(out), if epilogue == Epilogue::Binarize { DType::U32 } else { DType::F32 }))
}

pub(crate) fn eval(k: usize, epilogue: Epilogue, h: &Host) -> Result<TensorData> {
    let d = XnorDims::new(h.shape(0), h.shape(1), k)?;
    let dots = dots(&d, h.u32(0)?, h.u32(1)?);
    if epilogue == Epilogue::Plain {
        return Ok(TensorData::F32(dots));
    }
    let (scale, bias) = (h.f32(2)?, h.f32(3)?);
    let y: Vec<f32> = dots.iter().enumerate().map(|(i, &v)| v * scale[i % d.n] + bias[i % d.n]).collect();
    Ok(match epilogue {
        Epilogue::Binarize => TensorData::U32(y.chunks(d.n).flat_map(|row| pack_row(row, PackMode::Sign)).collect()),
        _ => TensorData::F32(y),
    })
}

pub(crate) fn record(k: usize, epilogue: Epilogue, g: &Gpu) -> Result<Step> {
    let d = XnorDims::new(g.shape(0), g.shape(1), k)?;
    let scale_bias = (g.inputs.len() == 4).then(|| (g.x(2), g.x(3)));
    let ops = XnorOperands { a: g.x(0), b: g.x(1), scale_bias, out: g.out()? };
    Ok(xnor_gemm(&d, epilogue, ops, g.caps))
}

/// `k - 2 * popcount(a ^ b)` for every pair of packed rows.
fn dots(d: &XnorDims, a: &[u32], b: &[u32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(d.batch * d.m * d.n);
    for bi in 0..d.batch {
        let b_mat = if d.b_batched { bi } else { 0 };
        for i in 0..d.m {
            let ar = &a[(bi * d.m + i) * d.words..][..d.words];
            for j in 0..d.n {
                let br = &b[(b_mat * d.n + j) * d.words..][..d.words];
                let pc: u32 = ar.iter().zip(br).map(|(x, y)| (x ^ y).count_ones()).sum();
                out.push((d.k as i64 - 2 * pc as i64) as f32);
            }
        }
    }
    out
}

/// Operands of one XNOR GEMM dispatch.
pub(crate) struct XnorOperands<'a> {
    /// Packed A.
    pub a: &'a BufferView,
    /// Packed B.
    pub b: &'a BufferView,
    /// Per-column scale and bias (affine and binarize).
    pub scale_bias: Option<(&'a BufferView, &'a BufferView)>,
    /// Output (f32, or packed words when binarizing).
    pub out: &'a BufferView,
}

/// The step for `d` with `epilogue`: for small M the lane-split kernel (its subgroup variant when
/// the adapter has subgroups of at least 8 invocations); else, for the plain and affine
/// epilogues, a choice between the tiled kernel and the barrier-free variants that fit (tiled
/// first on GPUs, the barrier-free ones first on CPU rasterizers); the tiled kernel when
/// binarizing.
fn xnor_gemm(d: &XnorDims, epilogue: Epilogue, ops: XnorOperands, caps: Caps) -> Step {
    let p = Params {
        m: d.m as u32,
        n: d.n as u32,
        k: d.k as u32,
        words: d.words as u32,
        a_batch_stride: (d.m * d.words) as u32,
        b_batch_stride: if d.b_batched { (d.n * d.words) as u32 } else { 0 },
        out_words: words_for(d.n) as u32,
        _pad0: 0,
    };
    // One entry point per epilogue, in code order.
    let e = epilogue.code() as usize;
    let out_binding = if epilogue == Epilogue::Binarize { 6 } else { 5 };
    let mut bindings = vec![(1, ops.a), (2, ops.b), (out_binding, ops.out)];
    if let Some((scale, bias)) = ops.scale_bias {
        bindings.extend([(3, scale), (4, bias)]);
    }
    if d.m < SMALL_M {
        let kernels = if caps.subgroups { GEMV_SUBGROUP } else { GEMV };
        let workgroups = [d.n.div_ceil(GEMV_COLUMNS) as u32, d.m as u32, d.batch as u32];
        return Step::Dispatch(Dispatch::new(kernels[e].clone(), &p, &bindings, workgroups));
    }
    let tiled = Dispatch::new(TILED[e].clone(), &p, &bindings, [d.n.div_ceil(TILE) as u32, d.m.div_ceil(TILE) as u32, d.batch as u32]);
    if epilogue == Epilogue::Binarize {
        return Step::Dispatch(tiled);
    }
    let vec_k = d.words % 4 == 0;
    let direct = DIRECT.iter().filter(|v| v.vec_k == vec_k).map(|v| {
        Dispatch::new(v.kernels[e].clone(), &p, &bindings, [d.n.div_ceil(v.cols) as u32, d.m.div_ceil(v.rows) as u32, d.batch as u32])
    });
    let candidates: Vec<Dispatch> =
        if caps.software { direct.chain([tiled]).collect() } else { std::iter::once(tiled).chain(direct).collect() };
    let name = ["plain", "affine"][e];
    Step::Choice(Choice { class: format!("xnor {}x{}x{} {name} batch {}", d.m, d.n, d.k, d.batch), candidates })
}
