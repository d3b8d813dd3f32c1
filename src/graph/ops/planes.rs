//! Weighted AND-popcount products of bit planes (`Op::PlaneGemm`): the exact integer dot
//! products of low-bit encodings, and packing values into planes and back (`Op::PlanePack`,
//! `Op::PlaneUnpack`); WGSL: `shaders/planes.wgsl`. docs/ENCODINGS.md describes the encodings.
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
//! - odd levels `2 n - L` (DoReFa's weights, `L = 2^k - 1`): the bits of `n` weighted `2^(i+1)`,
//!   then a nonzero plane weighted `-L`.
//!
//! Padding bits are 0 in every plane (`ones` included), so they add nothing; 0 is a value of
//! every encoding (all planes 0), which is how zero padding of a convolution costs nothing.

use super::bitpack::words_for;
use super::{coded, Gpu, Host, Operands};
use crate::error::{Error, Result};
use crate::kernels::planes::{Params, PLANE_GEMM, PLANE_GEMM4, PLANE_GEMM4_SIGNED, PLANE_PACK, PLANE_UNPACK, TILE};
use crate::kernels::{grid_1d, Choice, Dispatch, Step, MAX_GROUPS_PER_DIM, WG};
use crate::tensor::{DType, Shape, TensorData};

coded! {
    /// How the integers of a discrete quantizer's values are held as bit planes (`v = sum_i
    /// weight_i plane_i`); a value `q` is the integer `round(q * scale)` of [`Op::PlanePack`]
    /// (a signed one is `sign(q)`, 0 at 0).
    ///
    /// [`Op::PlanePack`]: crate::Op::PlanePack
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Encoding in "ENCODE_" {
        /// {-1, 0, +1} (±1 and ternary): planes `[v < 0, v != 0]`, weights `[-2, 1]`.
        Signed,
        /// `0 ..= 2^bits - 1` ({0, 1} with one bit; DoReFa's activations): the bits, weights `2^i`.
        Unsigned {
            /// Planes (1 to 8).
            bits: u32,
        } = Encoding::Unsigned { bits: 2 },
        /// Odd integers `2 n - L` in `-L ..= L` with `L = 2^bits - 1` (DoReFa's weights), or 0:
        /// the bits of `n` weighted `2^(i+1)`, then a nonzero plane weighted `-L`.
        Odd {
            /// Bits of `n` (1 to 7).
            bits: u32,
        } = Encoding::Odd { bits: 2 },
    }
}

impl Encoding {
    /// Planes per value.
    pub fn planes(self) -> usize {
        match self {
            Encoding::Signed => 2,
            Encoding::Unsigned { bits } => bits as usize,
            Encoding::Odd { bits } => bits as usize + 1,
        }
    }

    /// The weight of each plane.
    pub fn weights(self) -> Vec<i32> {
        match self {
            Encoding::Signed => SIGN_AND_MASK.to_vec(),
            Encoding::Unsigned { bits } => (0..bits).map(|i| 1 << i).collect(),
            Encoding::Odd { bits } => (0..bits).map(|i| 2 << i).chain([-((1 << bits) - 1)]).collect(),
        }
    }

    /// The integers the encoding holds, `(lowest, highest)`.
    pub fn range(self) -> (i32, i32) {
        match self {
            Encoding::Signed => (-1, 1),
            Encoding::Unsigned { bits } => (0, (1 << bits) - 1),
            Encoding::Odd { bits } => (-((1 << bits) - 1), (1 << bits) - 1),
        }
    }

    /// True when the integer `v` is a value of the encoding.
    pub fn holds(self, v: i32) -> bool {
        let (lo, hi) = self.range();
        (lo..=hi).contains(&v) && (!matches!(self, Encoding::Odd { .. }) || v == 0 || v % 2 != 0)
    }

    /// Fails unless the encoding fits the planes the kernels take.
    pub fn check(self, op: &'static str) -> Result<()> {
        let ok = match self {
            Encoding::Signed => true,
            Encoding::Unsigned { bits } => (1..=MAX_PLANES as u32).contains(&bits),
            Encoding::Odd { bits } => (1..MAX_PLANES as u32).contains(&bits),
        };
        if !ok {
            return Err(Error::invalid(op, "encoding", format!("{self:?} needs more than {MAX_PLANES} planes")));
        }
        Ok(())
    }

    /// Plane bits of one value: bit `i` of the result is its bit in plane `i`.
    fn bits(self, q: f32, scale: f32) -> u32 {
        if q.is_nan() {
            return 0;
        }
        match self {
            Encoding::Signed => u32::from(q < 0.0) | (u32::from(q != 0.0) << 1),
            Encoding::Unsigned { bits } => (q * scale).round_ties_even().clamp(0.0, ((1u32 << bits) - 1) as f32) as u32,
            Encoding::Odd { bits } => {
                let l = (1i32 << bits) - 1;
                let r = (q * scale).round_ties_even().clamp(-l as f32, l as f32) as i32;
                if r == 0 {
                    0
                } else {
                    ((r + l) / 2) as u32 | (1 << bits)
                }
            }
        }
    }
}

/// Most planes per operand.
pub const MAX_PLANES: usize = 8;

/// The weights of the sign-and-mask encodings (±1 as `[s, ones]`, ternary as `[s & m, m]`).
pub const SIGN_AND_MASK: [i32; 2] = [-2, 1];

/// `(a u32 [B.., Pa, M, W], b u32 [B.., Pb, N, W]) -> f32 [B.., M, N]` (no batch axis, or one
/// on both); the weights must fit the planes and the largest possible sum must fit an i32.
pub(crate) fn infer(a_weights: &[i32], b_weights: &[i32], a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "a", DType::U32)?;
    a.want(1, "b", DType::U32)?;
    let (sa, sb) = (a.shape(0).dims(), a.shape(1).dims());
    let r = sa.len();
    if !(r == 3 || r == 4) || sb.len() != r || sa[r - 1] != sb[r - 1] || sa[..r - 3] != sb[..r - 3] {
        return Err(Error::shapes(
            a.name,
            sa,
            sb,
            "needs planes a [Pa, M, W] and b [Pb, N, W] (or [B, Pa, M, W] and [B, Pb, N, W]) of the same words per row",
        ));
    }
    if r == 4 && sa[0] > MAX_GROUPS_PER_DIM as usize {
        return Err(Error::invalid(a.name, "a", format!("{} batch entries exceed the {MAX_GROUPS_PER_DIM} a dispatch can index", sa[0])));
    }
    let (sa, sb) = (&sa[r - 3..], &sb[r - 3..]);
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
    let mut out = a.shape(0).dims()[..r - 3].to_vec();
    out.extend([sa[1], sb[1]]);
    Ok((Shape::new(out), DType::F32))
}

/// `(batch, planes, rows, words)` of a plane operand `[B.., P, rows, W]`.
fn plane_dims(s: &Shape) -> (usize, usize, usize, usize) {
    let d = s.dims();
    let r = d.len();
    (d[..r - 3].iter().product(), d[r - 3], d[r - 2], d[r - 1])
}

pub(crate) fn eval(a_weights: &[i32], b_weights: &[i32], h: &Host) -> Result<TensorData> {
    let ((batch, pa, m, words), (_, pb, n, _)) = (plane_dims(h.shape(0)), plane_dims(h.shape(1)));
    let (a, b) = (h.u32(0)?, h.u32(1)?);
    let mut out = vec![0.0f32; batch * m * n];
    for z in 0..batch {
        for r in 0..m {
            for c in 0..n {
                let mut acc = 0i64;
                for (i, wa) in a_weights.iter().enumerate() {
                    let row = &a[((z * pa + i) * m + r) * words..][..words];
                    for (j, wb) in b_weights.iter().enumerate() {
                        let col = &b[((z * pb + j) * n + c) * words..][..words];
                        let count: u32 = row.iter().zip(col).map(|(x, y)| (x & y).count_ones()).sum();
                        acc += (*wa as i64) * (*wb as i64) * count as i64;
                    }
                }
                out[(z * m + r) * n + c] = acc as f32;
            }
        }
    }
    Ok(TensorData::F32(out))
}

pub(crate) fn record(a_weights: &[i32], b_weights: &[i32], d: &Gpu) -> Result<Step> {
    let ((batch, pa, m, words), (_, pb, n, _)) = (plane_dims(d.shape(0)), plane_dims(d.shape(1)));
    let (sa, sb) = ([pa, m, words], [pb, n, words]);
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
    let groups = [sb[1].div_ceil(TILE) as u32, sa[1].div_ceil(TILE) as u32, batch as u32];
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
    let class = format!("planes {batch}x{}x{}x{} words weights {a_weights:?}x{b_weights:?}", sa[1], sb[1], sa[2]);
    Ok(Step::Choice(Choice { class, candidates }))
}

/// `(q f32 [.., M, K]) -> u32 [.., P, M, words(K)]`: each value's integer in the encoding's
/// planes (rank 1 counts as one row).
pub(crate) fn infer_pack(encoding: Encoding, scale: f32, a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "q", DType::F32)?;
    encoding.check(a.name)?;
    if !(scale.is_finite() && scale > 0.0) {
        return Err(Error::invalid(a.name, "scale", format!("{scale} must be a positive number")));
    }
    let mut d = a.shape(0).dims().to_vec();
    if d.is_empty() {
        return Err(Error::invalid(a.name, "q", "needs rank >= 1"));
    }
    if d.len() == 1 {
        d.insert(0, 1);
    }
    let k = d.pop().expect("rank >= 2");
    d.insert(d.len() - 1, encoding.planes());
    d.push(words_for(k));
    Ok((Shape::new(d), DType::U32))
}

/// `(planes u32 [.., P, M, W]) -> f32 [.., M, k]`: `sum_i weight_i plane_i / scale`.
pub(crate) fn infer_unpack(encoding: Encoding, k: usize, scale: f32, a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "planes", DType::U32)?;
    encoding.check(a.name)?;
    let d = a.shape(0).dims();
    let r = d.len();
    if r < 3 || d[r - 3] != encoding.planes() || k == 0 || d[r - 1] != words_for(k) || !(scale.is_finite() && scale > 0.0) {
        return Err(Error::invalid(
            a.name,
            "planes",
            format!("{d:?} must be [.., {} planes, rows, words({k})] with a positive scale (got {scale})", encoding.planes()),
        ));
    }
    let mut out = d[..r - 3].to_vec();
    out.extend([d[r - 2], k]);
    Ok((Shape::new(out), DType::F32))
}

/// `(batch, rows, k)` of pack's input `[.., M, K]`.
fn value_dims(s: &Shape) -> (usize, usize, usize) {
    let d = s.dims();
    match d.len() {
        1 => (1, 1, d[0]),
        r => (d[..r - 2].iter().product(), d[r - 2], d[r - 1]),
    }
}

pub(crate) fn eval_pack(encoding: Encoding, scale: f32, h: &Host) -> Result<TensorData> {
    let (batch, m, k) = value_dims(h.shape(0));
    let (p, words) = (encoding.planes(), words_for(k));
    let q = h.f32(0)?;
    let mut out = vec![0u32; batch * p * m * words];
    for z in 0..batch {
        for r in 0..m {
            for (c, &v) in q[(z * m + r) * k..][..k].iter().enumerate() {
                let bits = encoding.bits(v, scale);
                for j in 0..p {
                    out[((z * p + j) * m + r) * words + c / 32] |= ((bits >> j) & 1) << (c % 32);
                }
            }
        }
    }
    Ok(TensorData::U32(out))
}

pub(crate) fn eval_unpack(encoding: Encoding, k: usize, scale: f32, h: &Host) -> Result<TensorData> {
    let (batch, p, m, words) = plane_dims(h.shape(0));
    let (planes, weights) = (h.u32(0)?, encoding.weights());
    let mut out = Vec::with_capacity(batch * m * k);
    for z in 0..batch {
        for r in 0..m {
            for c in 0..k {
                let v: i32 =
                    (0..p).filter(|&j| (planes[((z * p + j) * m + r) * words + c / 32] >> (c % 32)) & 1 == 1).map(|j| weights[j]).sum();
                out.push(v as f32 / scale);
            }
        }
    }
    Ok(TensorData::F32(out))
}

fn pack_params(encoding: Encoding, scale: f32, rows_per_batch: usize, rows: usize, k: usize) -> Params {
    let mut a_weights = [[0i32; 4]; 2];
    for (i, w) in encoding.weights().into_iter().enumerate() {
        a_weights[i / 4][i % 4] = w;
    }
    Params {
        m: rows_per_batch as u32,
        n: rows as u32,
        words: words_for(k) as u32,
        a_planes: encoding.planes() as u32,
        k: k as u32,
        encoding: encoding.code(),
        scale,
        a_weights,
        ..Default::default()
    }
}

pub(crate) fn record_pack(encoding: Encoding, scale: f32, d: &Gpu) -> Result<Step> {
    let (batch, m, k) = value_dims(d.shape(0));
    let p = pack_params(encoding, scale, m, batch * m, k);
    Ok(Step::Dispatch(Dispatch::new(PLANE_PACK, &p, &[(4, d.x(0)), (5, d.out()?)], grid_1d(batch * m * words_for(k), WG))))
}

pub(crate) fn record_unpack(encoding: Encoding, k: usize, scale: f32, d: &Gpu) -> Result<Step> {
    let (batch, _, m, _) = plane_dims(d.shape(0));
    let p = pack_params(encoding, scale, m, batch * m, k);
    Ok(Step::Dispatch(Dispatch::new(PLANE_UNPACK, &p, &[(1, d.x(0)), (6, d.out()?)], grid_1d(batch * m * k, WG))))
}
