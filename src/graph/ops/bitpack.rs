//! Bit packing: `Op::BitPack`, `Op::BitUnpack`, `Op::ApplyMask`; WGSL: `shaders/bitpack.wgsl`.
//! The last axis is packed 32 values per u32 word, element j in bit j.

use super::{coded, last_axis, Gpu, Grad, Grads, Host, Operands};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::kernels::bitpack::{Params, MASKED, PACK, PACK_BOTH, UNPACK};
use crate::kernels::{grid_1d, BufferView, Dispatch, Step, WG};
use crate::tensor::{DType, Shape, TensorData};

coded! {
    /// What a packed bit means (see `shaders/bitpack.wgsl`).
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum PackMode in "PACK_" {
        /// Sign bits: 1 for x < 0 (-1), 0 for x >= 0 (+1), Larq Compute Engine convention.
        Sign,
        /// Straight-through mask: 1 where |x| <= clip (inclusive).
        ClipMask(f32) = PackMode::ClipMask(0.5),
        /// Straight-through mask of the unit interval: 1 where 0 <= x <= 1 (DoReFa's
        /// activations).
        UnitMask,
    }
}

impl PackMode {
    /// The clip value (0 for sign bits).
    pub(crate) fn clip(self) -> f32 {
        match self {
            PackMode::Sign | PackMode::UnitMask => 0.0,
            PackMode::ClipMask(c) => c,
        }
    }
}

/// Number of u32 words holding `k` packed bits.
pub fn words_for(k: usize) -> usize {
    k.div_ceil(32)
}

pub(crate) fn infer_pack(mode: PackMode, a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "x", DType::F32)?;
    if let PackMode::ClipMask(c) = mode {
        if c.is_nan() || c < 0.0 {
            return Err(Error::invalid(a.name, "clip", format!("{c} must be >= 0")));
        }
    }
    let mut d = a.shape(0).dims().to_vec();
    let last = d.last_mut().ok_or_else(|| Error::invalid(a.name, "x", "needs rank >= 1"))?;
    *last = words_for(*last);
    Ok((Shape::new(d), DType::U32))
}

pub(crate) fn infer_unpack(k: usize, a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "bits", DType::U32)?;
    let mut d = a.shape(0).dims().to_vec();
    match d.last_mut() {
        Some(w) if k > 0 && *w == words_for(k) => *w = k,
        _ => return Err(Error::invalid(a.name, "k", format!("{k} bits do not fill the last axis of {:?} (ceil(k/32) words)", a.shape(0)))),
    }
    Ok((Shape::new(d), DType::F32))
}

pub(crate) fn infer_apply_mask(a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "mask", DType::U32)?;
    a.want(1, "dy", DType::F32)?;
    let (m, dy) = (a.shape(0), a.shape(1));
    let ok = m.rank() == dy.rank()
        && m.rank() >= 1
        && m.dims()[..m.rank() - 1] == dy.dims()[..dy.rank() - 1]
        && m.dims()[m.rank() - 1] == words_for(dy.dims()[dy.rank() - 1]);
    if !ok {
        return Err(Error::shapes(a.name, m.dims(), dy.dims(), "mask must be dy's shape with the last axis packed 32 per word"));
    }
    Ok((dy.clone(), DType::F32))
}

/// Packed values (bit packing, unpacking, XNOR products) carry no gradient of their own.
pub(crate) fn no_gradient(op: &'static str) -> Result<Grads> {
    Err(Error::NotDifferentiable {
        op,
        reason: "packed bits carry no gradient; a quantizer defines the pseudo-gradient of binarized values".into(),
    })
}

/// Linear in dy: the adjoint masks the upstream gradient the same way.
pub(crate) fn backward_apply_mask(g: &mut Graph, r: &Grad) -> Result<Grads> {
    Ok(vec![None, Some(g.apply_mask(r.x(0), r.dy)?)])
}

pub(crate) fn eval_pack(mode: PackMode, h: &Host) -> Result<TensorData> {
    let k = last_axis(h.name, h.shape(0))?;
    Ok(TensorData::U32(h.f32(0)?.chunks(k).flat_map(|row| pack_row(row, mode)).collect()))
}

pub(crate) fn eval_unpack(k: usize, mode: PackMode, h: &Host) -> Result<TensorData> {
    let w = words_for(k);
    let (one, zero) = match mode {
        PackMode::Sign => (-1.0, 1.0),
        PackMode::ClipMask(_) | PackMode::UnitMask => (1.0, 0.0),
    };
    Ok(TensorData::F32(h.u32(0)?.chunks(w).flat_map(|row| (0..k).map(move |c| if bit(row, c) { one } else { zero })).collect()))
}

pub(crate) fn eval_apply_mask(h: &Host) -> Result<TensorData> {
    let k = last_axis(h.name, h.shape(1))?;
    let (mask, dy) = (h.u32(0)?, h.f32(1)?);
    let w = words_for(k);
    Ok(TensorData::F32(
        dy.chunks(k)
            .zip(mask.chunks(w))
            .flat_map(|(d, m)| d.iter().enumerate().map(move |(c, &v)| if bit(m, c) { v } else { 0.0 }))
            .collect(),
    ))
}

pub(crate) fn record_pack(mode: PackMode, d: &Gpu) -> Result<Step> {
    let k = last_axis(d.name, d.shape(0))?;
    Ok(Step::Dispatch(pack(d.shape(0).numel() / k, k, mode, d.x(0), d.out()?)))
}

/// Records the sign-bit pack and the clip-mask pack (with `clip`) of the same values `x` as one
/// dispatch writing both (the planner pairs them).
pub(crate) fn record_pack_both(clip: f32, x: (&BufferView, &Shape), signs: &BufferView, mask: &BufferView) -> Result<Step> {
    let k = last_axis("bit_pack", x.1)?;
    let rows = x.1.numel() / k;
    let p = params(rows, k, PackMode::ClipMask(clip));
    Ok(Step::Dispatch(Dispatch::new(PACK_BOTH, &p, &[(1, x.0), (4, signs), (6, mask)], grid_1d(rows * words_for(k), WG))))
}

pub(crate) fn record_unpack(k: usize, mode: PackMode, d: &Gpu) -> Result<Step> {
    Ok(Step::Dispatch(unpack(d.out_shape()?.numel() / k, k, mode, d.x(0), d.out()?)))
}

pub(crate) fn record_apply_mask(d: &Gpu) -> Result<Step> {
    let k = last_axis(d.name, d.shape(1))?;
    Ok(Step::Dispatch(masked(d.shape(1).numel() / k, k, d.x(0), d.x(1), d.out()?)))
}

/// Packs one row: element j of each group of 32 into bit j, bits past the row's end 0.
pub fn pack_row(row: &[f32], mode: PackMode) -> Vec<u32> {
    row.chunks(32)
        .map(|group| {
            group.iter().enumerate().fold(0u32, |word, (j, &v)| {
                let set = match mode {
                    PackMode::Sign => v < 0.0,
                    PackMode::ClipMask(c) => v.abs() <= c,
                    PackMode::UnitMask => (0.0..=1.0).contains(&v),
                };
                word | (u32::from(set) << j)
            })
        })
        .collect()
}

fn bit(row: &[u32], c: usize) -> bool {
    (row[c / 32] >> (c % 32)) & 1 == 1
}

fn params(rows: usize, k: usize, mode: PackMode) -> Params {
    Params { rows: rows as u32, k: k as u32, words: words_for(k) as u32, mode: mode.code(), clip: mode.clip(), ..Default::default() }
}

/// Packs `rows` rows of `k` values.
fn pack(rows: usize, k: usize, mode: PackMode, x: &BufferView, out: &BufferView) -> Dispatch {
    Dispatch::new(PACK, &params(rows, k, mode), &[(1, x), (4, out)], grid_1d(rows * words_for(k), WG))
}

/// Expands `rows` rows of `k` packed bits.
fn unpack(rows: usize, k: usize, mode: PackMode, bits: &BufferView, out: &BufferView) -> Dispatch {
    Dispatch::new(UNPACK, &params(rows, k, mode), &[(2, bits), (5, out)], grid_1d(rows * k, WG))
}

/// `dy` where the mask bit is set, else 0.
fn masked(rows: usize, k: usize, mask: &BufferView, dy: &BufferView, out: &BufferView) -> Dispatch {
    Dispatch::new(MASKED, &params(rows, k, PackMode::Sign), &[(2, mask), (3, dy), (5, out)], grid_1d(rows * k, WG))
}
