//! Weighted AND-popcount products of bit planes (`Op::PlaneGemm`): the exact integer dot
//! products of low-bit encodings; WGSL: `shaders/planes.wgsl`.
//!
//! A value of a discrete encoding is a weighted sum of bits, each bit in a plane of its own:
//! `v = sum_i w_i p_i`. For two rows of such values, `a . b = sum_i sum_j wa_i wb_j
//! popcount(A_i & B_j)`, summed over the rows' words. The encodings (docs/ARCHITECTURE.md,
//! "Binary kernels"):
//! - {0, 1}: one plane, weight 1;
//! - ±1 with the sign bits of `Op::BitPack` (1 = -1, the Larq Compute Engine convention):
//!   `v = 1 - 2 s`, planes `[s, ones]`, weights `[-2, 1]`;
//! - ternary {-1, 0, +1} with such a sign `s` and a nonzero bit `m`: `v = m - 2 (s & m)`, planes
//!   `[s & m, m]`, weights `[-2, 1]`;
//! - k-bit levels `l = sum_i 2^i b_i`: planes `b_0 .. b_{k-1}`, weights `2^i`.
//!
//! Padding bits are 0 in every plane (`ones` included), so they add nothing.

use super::{Gpu, Host, Operands};
use crate::error::{Error, Result};
use crate::kernels::planes::{Params, PLANE_GEMM, PLANE_GEMM4, PLANE_GEMM4_SIGNED, TILE};
use crate::kernels::{Choice, Dispatch, Step};
use crate::tensor::{DType, Shape, TensorData};

/// Most planes per operand.
pub const MAX_PLANES: usize = 8;

/// The weights of the sign-and-mask encodings (±1 as `[s, ones]`, ternary as `[s & m, m]`).
pub const SIGN_AND_MASK: [i32; 2] = [-2, 1];

/// `(a u32 [Pa, M, W], b u32 [Pb, N, W]) -> f32 [M, N]`; the weights must fit the planes and the
/// largest possible sum must fit an i32.
pub(crate) fn infer(a_weights: &[i32], b_weights: &[i32], a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "a", DType::U32)?;
    a.want(1, "b", DType::U32)?;
    let (sa, sb) = (a.shape(0).dims(), a.shape(1).dims());
    if sa.len() != 3 || sb.len() != 3 || sa[2] != sb[2] {
        return Err(Error::shapes(a.name, sa, sb, "needs planes a [Pa, M, W] and b [Pb, N, W] of the same words per row"));
    }
    for (what, weights, planes) in [("a_weights", a_weights, sa[0]), ("b_weights", b_weights, sb[0])] {
        if weights.len() != planes || planes == 0 || planes > MAX_PLANES {
            return Err(Error::invalid(
                a.name,
                what,
                format!("{} weights for {planes} planes (1 to {MAX_PLANES} planes, one weight each)", weights.len()),
            ));
        }
    }
    let bound = |w: &[i32]| w.iter().map(|v| v.unsigned_abs() as u64).sum::<u64>();
    if bound(a_weights) * bound(b_weights) * 32 * sa[2] as u64 > i32::MAX as u64 {
        return Err(Error::invalid(a.name, "a_weights", format!("sums over {} words could overflow an i32", sa[2])));
    }
    Ok((Shape::new(vec![sa[1], sb[1]]), DType::F32))
}

pub(crate) fn eval(a_weights: &[i32], b_weights: &[i32], h: &Host) -> Result<TensorData> {
    let (sa, sb) = (h.shape(0).dims(), h.shape(1).dims());
    let (m, n, words) = (sa[1], sb[1], sa[2]);
    let (a, b) = (h.u32(0)?, h.u32(1)?);
    let mut out = vec![0.0f32; m * n];
    for r in 0..m {
        for c in 0..n {
            let mut acc = 0i64;
            for (i, wa) in a_weights.iter().enumerate() {
                let row = &a[(i * m + r) * words..][..words];
                for (j, wb) in b_weights.iter().enumerate() {
                    let col = &b[(j * n + c) * words..][..words];
                    let count: u32 = row.iter().zip(col).map(|(x, y)| (x & y).count_ones()).sum();
                    acc += (*wa as i64) * (*wb as i64) * count as i64;
                }
            }
            out[r * n + c] = acc as f32;
        }
    }
    Ok(TensorData::F32(out))
}

pub(crate) fn record(a_weights: &[i32], b_weights: &[i32], d: &Gpu) -> Result<Step> {
    let (sa, sb) = (d.shape(0).dims(), d.shape(1).dims());
    let pack = |w: &[i32]| {
        let mut v = [[0i32; 4]; 2];
        for (i, x) in w.iter().enumerate() {
            v[i / 4][i % 4] = *x;
        }
        v
    };
    let p = Params {
        m: sa[1] as u32,
        n: sb[1] as u32,
        words: sa[2] as u32,
        a_planes: sa[0] as u32,
        b_planes: sb[0] as u32,
        a_weights: pack(a_weights),
        b_weights: pack(b_weights),
        ..Default::default()
    };
    let bindings = [(1, d.x(0)), (2, d.x(1)), (3, d.out()?)];
    let groups = [sb[1].div_ceil(TILE) as u32, sa[1].div_ceil(TILE) as u32, 1];
    let scalar = Dispatch::new(PLANE_GEMM, &p, &bindings, groups);
    if sa[2] % 4 != 0 {
        return Ok(Step::Dispatch(scalar));
    }
    // Sign-and-mask pairs on both sides have a two-count form giving the same integers.
    let signed = a_weights == SIGN_AND_MASK && b_weights == SIGN_AND_MASK;
    let mut candidates = vec![Dispatch::new(PLANE_GEMM4, &p, &bindings, groups), scalar];
    if signed {
        candidates.insert(0, Dispatch::new(PLANE_GEMM4_SIGNED, &p, &bindings, groups));
    }
    let class = format!("planes {}x{}x{} words weights {a_weights:?}x{b_weights:?}", sa[1], sb[1], sa[2]);
    Ok(Step::Choice(Choice { class, candidates }))
}
