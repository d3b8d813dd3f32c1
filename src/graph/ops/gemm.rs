//! Batched f32 matrix products (`Op::MatMul`); WGSL: `shaders/gemm.wgsl`. The K split of weight
//! gradients that `Graph::matmul_t` chooses while building comes from the kernel's tile size.

use super::{Gpu, Grad, Grads, Host, Operands};
use crate::error::{Error, Result};
use crate::graph::op::{broadcast_shapes, broadcast_strides};
use crate::graph::Graph;
use crate::kernels::gemm::{Direct, Params, DIRECT, DIRECT_SIGNS, GEMV, GEMV_BELOW_TILE_USE, GEMV_COLUMNS, MATMUL, SMALL_M, TILE};
use crate::kernels::{dims8, BufferView, Choice, Dispatch, Step};
use crate::tensor::{DType, Shape, TensorData};

/// The sizes of a batched matrix product, derived once and shared by both backends.
#[derive(Clone, Debug, PartialEq)]
pub struct MatMulDims {
    /// Rows of the output.
    pub m: usize,
    /// Columns of the output.
    pub n: usize,
    /// Reduction length.
    pub k: usize,
    /// Number of output matrices (product of the broadcast batch axes).
    pub batch: usize,
    /// Broadcast batch axes of the output.
    pub batch_shape: Vec<usize>,
    /// Per batch axis, how many matrices to step in `a` (0 where `a` is broadcast).
    pub a_batch_strides: Vec<usize>,
    /// Per batch axis, how many matrices to step in `b` (0 where `b` is broadcast).
    pub b_batch_strides: Vec<usize>,
    /// Output shape.
    pub out_shape: Shape,
}

impl MatMulDims {
    /// Checks and derives the sizes of `op(a) @ op(b)`.
    pub fn new(a: &Shape, b: &Shape, trans_a: bool, trans_b: bool) -> Result<Self> {
        if a.rank() < 2 || b.rank() < 2 {
            return Err(Error::shapes("matmul", a.dims(), b.dims(), "operands need rank >= 2"));
        }
        let (ra, rb) = (a.rank(), b.rank());
        let (m, ka) = if trans_a { (a.dims()[ra - 1], a.dims()[ra - 2]) } else { (a.dims()[ra - 2], a.dims()[ra - 1]) };
        let (kb, n) = if trans_b { (b.dims()[rb - 1], b.dims()[rb - 2]) } else { (b.dims()[rb - 2], b.dims()[rb - 1]) };
        if ka != kb {
            return Err(Error::shapes(
                "matmul",
                a.dims(),
                b.dims(),
                format!("inner sizes differ ({ka} vs {kb}; trans_a={trans_a}, trans_b={trans_b})"),
            ));
        }
        let ba = Shape::new(&a.dims()[..ra - 2]);
        let bb = Shape::new(&b.dims()[..rb - 2]);
        let bo = broadcast_shapes("matmul", &ba, &bb)?;
        let (sa, sb) = (broadcast_strides(&ba, &bo), broadcast_strides(&bb, &bo));
        let batch = bo.numel();
        let mut out = bo.dims().to_vec();
        out.extend([m, n]);
        Ok(MatMulDims {
            m,
            n,
            k: ka,
            batch,
            batch_shape: bo.dims().to_vec(),
            a_batch_strides: sa,
            b_batch_strides: sb,
            out_shape: Shape::new(out),
        })
    }

    /// Which `a` and `b` matrices output matrix `i` multiplies.
    pub fn operand_matrices(&self, i: usize) -> (usize, usize) {
        let (mut ia, mut ib, mut rem) = (0, 0, i);
        for d in (0..self.batch_shape.len()).rev() {
            let c = rem % self.batch_shape[d];
            rem /= self.batch_shape[d];
            ia += c * self.a_batch_strides[d];
            ib += c * self.b_batch_strides[d];
        }
        (ia, ib)
    }
}

/// How many K chunks [`Graph::matmul_t`] splits a product into: enough for about 64 output
/// tiles of the kernel's TILE x TILE, each chunk at least 256 long, a divisor of K (so the chunks are reshapes);
/// 1 (no split) when the output already has the tiles or no divisor fits.
pub(crate) fn k_splits(d: &MatMulDims) -> usize {
    const TILES: usize = 64;
    const MIN_CHUNK: usize = 256;
    let tiles = d.batch * d.m.div_ceil(TILE) * d.n.div_ceil(TILE);
    if tiles >= TILES / 2 {
        return 1;
    }
    let most = TILES.div_ceil(tiles).min(d.k / MIN_CHUNK);
    (2..=most).rev().find(|s| d.k % s == 0).unwrap_or(1)
}

pub(crate) fn infer(trans_a: bool, trans_b: bool, a: &Operands) -> Result<(Shape, DType)> {
    a.want(0, "a", DType::F32)?;
    a.want(1, "b", DType::F32)?;
    Ok((MatMulDims::new(a.shape(0), a.shape(1), trans_a, trans_b)?.out_shape, DType::F32))
}

pub(crate) fn backward(g: &mut Graph, trans_a: bool, trans_b: bool, r: &Grad) -> Result<Grads> {
    let (a, b, dy) = (r.x(0), r.x(1), r.dy);
    let (da, db) = match (trans_a, trans_b) {
        (false, false) => (g.matmul_t(dy, b, false, true)?, g.matmul_t(a, dy, true, false)?),
        (false, true) => (g.matmul_t(dy, b, false, false)?, g.matmul_t(dy, a, true, false)?),
        (true, false) => (g.matmul_t(b, dy, false, true)?, g.matmul_t(a, dy, false, false)?),
        (true, true) => (g.matmul_t(b, dy, true, true)?, g.matmul_t(dy, a, true, true)?),
    };
    let (sa, sb) = (r.shape(g, 0), r.shape(g, 1));
    Ok(vec![Some(g.sum_to(da, &sa)?), Some(g.sum_to(db, &sb)?)])
}

pub(crate) fn eval(trans_a: bool, trans_b: bool, h: &Host) -> Result<TensorData> {
    let d = MatMulDims::new(h.shape(0), h.shape(1), trans_a, trans_b)?;
    Ok(TensorData::F32(matmul(&d, trans_a, trans_b, h.f32(0)?, h.f32(1)?)))
}

fn matmul(d: &MatMulDims, ta: bool, tb: bool, a: &[f32], b: &[f32]) -> Vec<f32> {
    let (m, n, k) = (d.m, d.n, d.k);
    let mut c = vec![0.0f32; d.batch * m * n];
    for bi in 0..d.batch {
        let (ma, mb) = d.operand_matrices(bi);
        let (a, b) = (&a[ma * m * k..(ma + 1) * m * k], &b[mb * k * n..(mb + 1) * k * n]);
        let out = &mut c[bi * m * n..(bi + 1) * m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f32;
                for p in 0..k {
                    let av = if ta { a[p * m + i] } else { a[i * k + p] };
                    let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                    acc += av * bv;
                }
                out[i * n + j] = acc;
            }
        }
    }
    c
}

fn params(d: &MatMulDims, trans_a: bool, trans_b: bool) -> Params {
    Params {
        m: d.m as u32,
        n: d.n as u32,
        k: d.k as u32,
        batch_rank: d.batch_shape.len() as u32,
        trans_a: trans_a as u32,
        trans_b: trans_b as u32,
        batch_shape: dims8(&d.batch_shape),
        a_batch_strides: dims8(&d.a_batch_strides),
        b_batch_strides: dims8(&d.b_batch_strides),
        ..Default::default()
    }
}

/// The dispatches of the `table` variants (`DIRECT` or `DIRECT_SIGNS`) that run this product's
/// layout and shape: the vec4-K forms where they fit, else the K-at-a-time ones (fewer
/// candidates to time).
fn direct_candidates(
    table: &[Direct],
    d: &MatMulDims,
    trans_a: bool,
    trans_b: bool,
    p: &Params,
    bind: &[(u32, &BufferView)],
) -> Vec<Dispatch> {
    let fitting = table.iter().filter(|v| (v.trans_a, v.trans_b) == (trans_a, trans_b) && v.fits(d.m, d.n, d.k));
    let vec_k = fitting.clone().any(|v| v.vec_k);
    fitting
        .filter(|v| v.vec_k == vec_k)
        .map(|v| Dispatch::new(v.kernel.clone(), p, bind, [d.n.div_ceil(v.cols) as u32, d.m.div_ceil(v.rows) as u32, d.batch as u32]))
        .collect()
}

/// Whether [`record_signs`] can run `op(a) @ b` with `b` the unpacked signs of rows of `k` bits:
/// B not transposed, N a multiple of 4, and rows without padding bits (k a multiple of 32), so
/// that B's flat element index is its bit index.
pub(crate) fn signs_fit(b_shape: &Shape, trans_b: bool, k: usize) -> bool {
    !trans_b && k % 32 == 0 && b_shape.dims().last().is_some_and(|n| n % 4 == 0)
}

/// `c = op(a) @ b` where input 1 is bound to the packed sign bits that `b` (whose shape
/// `g.shape(1)` gives) was unpacked from: the planner's choice when the unpacked floats would
/// only feed this product (see `runtime::fuse`). The same bits as [`record`].
pub(crate) fn record_signs(trans_a: bool, g: &Gpu) -> Result<Step> {
    let d = MatMulDims::new(g.shape(0), g.shape(1), trans_a, false)?;
    let (a, bits, c) = (g.x(0), g.x(1), g.out()?);
    let p = params(&d, trans_a, false);
    let candidates = direct_candidates(DIRECT_SIGNS, &d, trans_a, false, &p, &[(1, a), (2, bits), (3, c)]);
    let layout = if trans_a { "tn" } else { "nn" };
    Ok(Step::Choice(Choice { class: format!("gemm signs {}x{}x{} {layout} batch {}", d.m, d.n, d.k, d.batch), candidates }))
}

/// `c = op(a) @ op(b)`: a choice among the kernels that fit the shape (every one sums K in
/// order, so they agree to the bit), preferring by M and the kind of adapter when untimed.
pub(crate) fn record(trans_a: bool, trans_b: bool, g: &Gpu) -> Result<Step> {
    let d = MatMulDims::new(g.shape(0), g.shape(1), trans_a, trans_b)?;
    let (a, b, c) = (g.x(0), g.x(1), g.out()?);
    let p = params(&d, trans_a, trans_b);
    let bind = [(1, a), (2, b), (3, c)];
    let batch = d.batch as u32;
    let tiled = Dispatch::new(MATMUL, &p, &bind, [d.n.div_ceil(TILE) as u32, d.m.div_ceil(TILE) as u32, batch]);
    let direct = direct_candidates(DIRECT, &d, trans_a, trans_b, &p, &bind);
    let mut candidates = Vec::new();
    let tile_use = (d.m * d.n) as f64 / (d.m.next_multiple_of(TILE) * d.n.next_multiple_of(TILE)) as f64;
    if d.m < SMALL_M || tile_use < GEMV_BELOW_TILE_USE {
        candidates.push(Dispatch::new(GEMV, &p, &bind, [d.n.div_ceil(GEMV_COLUMNS) as u32, d.m as u32, batch]));
    }
    if g.caps.software {
        candidates.extend(direct);
        candidates.push(tiled);
    } else {
        candidates.push(tiled);
        candidates.extend(direct);
    }
    let layout = format!("{}{}", if trans_a { 't' } else { 'n' }, if trans_b { 't' } else { 'n' });
    Ok(Step::Choice(Choice { class: format!("gemm {}x{}x{} {layout} batch {}", d.m, d.n, d.k, d.batch), candidates }))
}
