//! The CPU reference backend: plain loops over host data, f32 arithmetic, sequential
//! accumulation. Every GPU kernel is tested against these functions.

use crate::error::{Error, Result};
use crate::graph::op::{broadcast_strides, words_for, FakeQuantPart, FakeQuantSpec, MatMulDims, XnorDims};
use crate::graph::{BinaryOp, ConvGeometry, Distribution, Epilogue, Op, PackMode, QuantFn, ReduceOp, UnaryOp};
use crate::tensor::{Shape, TensorData};

/// Evaluates `op` on `inputs` (shape and data of each operand), producing `out_shape`.
/// [`Op::Assign`] is handled by the plan, which owns the variables.
pub fn eval(op: &Op, inputs: &[(&Shape, &TensorData)], out_shape: &Shape) -> Result<TensorData> {
    let f = |i: usize| -> Result<&[f32]> {
        match inputs[i].1 {
            TensorData::F32(v) => Ok(v),
            d => Err(Error::DTypeMismatch { op: op.name(), operand: "input", expected: crate::DType::F32, got: d.dtype() }),
        }
    };
    let words = |i: usize| -> Result<&[u32]> {
        match inputs[i].1 {
            TensorData::U32(v) => Ok(v),
            d => Err(Error::DTypeMismatch { op: op.name(), operand: "bits", expected: crate::DType::U32, got: d.dtype() }),
        }
    };
    let idx = |i: usize| -> Result<&[i32]> {
        match inputs[i].1 {
            TensorData::I32(v) => Ok(v),
            d => Err(Error::DTypeMismatch { op: op.name(), operand: "indices", expected: crate::DType::I32, got: d.dtype() }),
        }
    };
    Ok(match op {
        Op::Unary(u) => TensorData::F32(f(0)?.iter().map(|&x| unary(*u, x)).collect()),
        Op::UnaryGrad(u) => TensorData::F32(f(0)?.iter().zip(f(1)?).map(|(&x, &dy)| unary_grad(*u, x, dy)).collect()),
        Op::Binary(b) => {
            let (sa, sb) = (broadcast_strides(inputs[0].0, out_shape), broadcast_strides(inputs[1].0, out_shape));
            let (a, bv) = (f(0)?, f(1)?);
            let out = (0..out_shape.numel())
                .map(|i| {
                    let (ia, ib) = offsets(i, out_shape.dims(), &sa, &sb);
                    binary(*b, a[ia], bv[ib])
                })
                .collect();
            TensorData::F32(out)
        }
        Op::Reduce { op: r, axes, .. } => TensorData::F32(reduce(*r, inputs[0].0, axes, f(0)?)),
        Op::MatMul { trans_a, trans_b } => {
            let d = MatMulDims::new(inputs[0].0, inputs[1].0, *trans_a, *trans_b)?;
            TensorData::F32(matmul(&d, *trans_a, *trans_b, f(0)?, f(1)?))
        }
        Op::Permute { perm } => {
            let xs = inputs[0].0.strides();
            let strides: Vec<usize> = perm.iter().map(|&p| xs[p]).collect();
            strided_copy(inputs[0].1, out_shape, &strides)
        }
        Op::Broadcast { shape } => strided_copy(inputs[0].1, shape, &broadcast_strides(inputs[0].0, shape)),
        Op::Window { offset, shape } => window(inputs[0].1, inputs[0].0, offset, shape),
        Op::Reshape { .. } => inputs[0].1.clone(),
        Op::Gather => {
            let (table, ix) = (f(0)?, idx(1)?);
            let rows = inputs[0].0.dims()[0];
            let inner = table.len() / rows;
            let mut out = Vec::with_capacity(ix.len() * inner);
            for &r in ix {
                match usize::try_from(r).ok().filter(|&r| r < rows) {
                    Some(r) => out.extend_from_slice(&table[r * inner..(r + 1) * inner]),
                    None => out.extend(std::iter::repeat_n(f32::NAN, inner)),
                }
            }
            TensorData::F32(out)
        }
        Op::Take { .. } => {
            let (x, ix) = (f(0)?, idx(1)?);
            TensorData::F32(ix.iter().map(|&j| usize::try_from(j).ok().and_then(|j| x.get(j)).copied().unwrap_or(0.0)).collect())
        }
        Op::GatherGrad { rows } => {
            let (ix, dy) = (idx(0)?, f(1)?);
            let inner = dy.len() / ix.len();
            let mut out = vec![0.0f32; rows * inner];
            for (j, &r) in ix.iter().enumerate() {
                if let Some(r) = usize::try_from(r).ok().filter(|r| r < rows) {
                    for c in 0..inner {
                        out[r * inner + c] += dy[j * inner + c];
                    }
                }
            }
            TensorData::F32(out)
        }
        Op::Softmax => {
            let x = f(0)?;
            let cols = *inputs[0].0.dims().last().expect("softmax input has rank >= 1");
            let mut out = Vec::with_capacity(x.len());
            for row in x.chunks(cols) {
                let (m, s) = max_sum_exp(row);
                out.extend(row.iter().map(|&v| (v - m).exp() / s));
            }
            TensorData::F32(out)
        }
        Op::SoftmaxCrossEntropy => {
            let (x, labels) = (f(0)?, idx(1)?);
            let cols = inputs[0].0.dims()[1];
            let out = x
                .chunks(cols)
                .zip(labels)
                .map(|(row, &l)| {
                    let (m, s) = max_sum_exp(row);
                    match usize::try_from(l).ok().filter(|&l| l < cols) {
                        Some(l) => s.ln() + m - row[l],
                        None => f32::NAN,
                    }
                })
                .collect();
            TensorData::F32(out)
        }
        Op::SoftmaxCrossEntropyGrad => {
            let (x, labels, g) = (f(0)?, idx(1)?, f(2)?);
            let cols = inputs[0].0.dims()[1];
            let mut out = Vec::with_capacity(x.len());
            for ((row, &l), &g) in x.chunks(cols).zip(labels).zip(g) {
                let (m, s) = max_sum_exp(row);
                let label = usize::try_from(l).ok().filter(|&l| l < cols);
                out.extend(row.iter().enumerate().map(|(j, &v)| match label {
                    Some(l) => ((v - m).exp() / s - if j == l { 1.0 } else { 0.0 }) * g,
                    None => f32::NAN,
                }));
            }
            TensorData::F32(out)
        }
        Op::BitPack { mode } => {
            let k = *inputs[0].0.dims().last().expect("rank >= 1");
            TensorData::U32(f(0)?.chunks(k).flat_map(|row| pack_row(row, *mode)).collect())
        }
        Op::BitUnpack { k, mode } => {
            let w = words_for(*k);
            let (one, zero) = match mode {
                PackMode::Sign => (-1.0, 1.0),
                PackMode::ClipMask(_) => (1.0, 0.0),
            };
            TensorData::F32(words(0)?.chunks(w).flat_map(|row| (0..*k).map(move |c| if bit(row, c) { one } else { zero })).collect())
        }
        Op::ApplyMask => {
            let k = *inputs[1].0.dims().last().expect("rank >= 1");
            let (mask, dy) = (words(0)?, f(1)?);
            let w = words_for(k);
            TensorData::F32(
                dy.chunks(k)
                    .zip(mask.chunks(w))
                    .flat_map(|(d, m)| d.iter().enumerate().map(move |(c, &v)| if bit(m, c) { v } else { 0.0 }))
                    .collect(),
            )
        }
        Op::XnorGemm { k, epilogue } => {
            let d = XnorDims::new(inputs[0].0, inputs[1].0, *k)?;
            let dots = xnor_gemm(&d, words(0)?, words(1)?);
            match epilogue {
                Epilogue::Plain => TensorData::F32(dots),
                Epilogue::Affine => {
                    let (scale, bias) = (f(2)?, f(3)?);
                    TensorData::F32(dots.iter().enumerate().map(|(i, &v)| v * scale[i % d.n] + bias[i % d.n]).collect())
                }
                Epilogue::Binarize => {
                    let (scale, bias) = (f(2)?, f(3)?);
                    let y: Vec<f32> = dots.iter().enumerate().map(|(i, &v)| v * scale[i % d.n] + bias[i % d.n]).collect();
                    TensorData::U32(y.chunks(d.n).flat_map(|row| pack_row(row, PackMode::Sign)).collect())
                }
            }
        }
        Op::Quantize { f: q } => {
            let (x, stat) = (f(0)?, if q.needs_stat() { f(1)? } else { &[][..] });
            TensorData::F32(x.iter().enumerate().map(|(i, &v)| quantize(*q, v, stat_at(stat, i))).collect())
        }
        Op::QuantizeGrad { f: q } => {
            let x = f(0)?;
            let stat = if q.needs_stat() { f(1)? } else { &[][..] };
            let dy = f(inputs.len() - 1)?;
            TensorData::F32(x.iter().zip(dy).enumerate().map(|(i, (&v, &g))| quantize_grad(*q, v, stat_at(stat, i), g)).collect())
        }
        Op::FakeQuant { spec, part } => {
            let (x, min, max) = (f(0)?, f(1)?, f(2)?);
            let ranges: Vec<Nudged> = min.iter().zip(max).map(|(&lo, &hi)| Nudged::new(*spec, lo, hi)).collect();
            TensorData::F32(x.iter().enumerate().map(|(i, &v)| ranges[i % ranges.len()].eval(*spec, *part, v)).collect())
        }
        Op::Im2Col { geom, pad_value } => match inputs[0].1 {
            TensorData::F32(v) => TensorData::F32(im2col(geom, v, *pad_value)),
            TensorData::U32(v) => TensorData::U32(im2col(geom, v, 0)),
            d => return Err(Error::DTypeMismatch { op: "im2col", operand: "image", expected: crate::DType::F32, got: d.dtype() }),
        },
        Op::Col2Im { geom } => TensorData::F32(col2im(geom, f(0)?)),
        Op::Random { dist, seed, shape, streamed } => {
            let seed = if *streamed { stream_seed(*seed, f(0)?[0]) } else { *seed };
            TensorData::F32(random(*dist, seed, shape.numel()))
        }
        Op::Fill { value, shape } => TensorData::F32(vec![*value; shape.numel()]),
        Op::Assign => return Err(Error::invalid("cpu::eval", "op", "assign is executed by the plan")),
    })
}

/// Larq's sign: +1 for x >= 0.
fn sign(x: f32) -> f32 {
    if x >= 0.0 {
        1.0
    } else {
        -1.0
    }
}

/// The unary functions, as `shaders/elementwise.wgsl` defines them.
pub fn unary(op: UnaryOp, x: f32) -> f32 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Square => x * x,
        UnaryOp::Recip => 1.0 / x,
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sign => sign(x),
        UnaryOp::Scale(s) => x * s,
        UnaryOp::Offset(c) => x + c,
        UnaryOp::Clip(lo, hi) => x.max(lo).min(hi),
        UnaryOp::Trunc => x.trunc(),
    }
}

/// `f'(x) * dy` for each unary function.
pub fn unary_grad(op: UnaryOp, x: f32, dy: f32) -> f32 {
    match op {
        UnaryOp::Neg => -dy,
        // d|x|/dx is taken as 0 at x = 0, as TensorFlow does.
        UnaryOp::Abs => {
            dy * if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        UnaryOp::Exp => dy * x.exp(),
        UnaryOp::Log => dy / x,
        UnaryOp::Sqrt => dy * 0.5 / x.sqrt(),
        UnaryOp::Square => dy * 2.0 * x,
        UnaryOp::Recip => -dy / (x * x),
        UnaryOp::Relu => {
            if x > 0.0 {
                dy
            } else {
                0.0
            }
        }
        UnaryOp::Sigmoid => {
            let s = 1.0 / (1.0 + (-x).exp());
            dy * s * (1.0 - s)
        }
        UnaryOp::Tanh => {
            let t = x.tanh();
            dy * (1.0 - t * t)
        }
        UnaryOp::Sign | UnaryOp::Trunc => 0.0,
        UnaryOp::Scale(s) => dy * s,
        UnaryOp::Offset(_) => dy,
        UnaryOp::Clip(lo, hi) => {
            if x >= lo && x <= hi {
                dy
            } else {
                0.0
            }
        }
    }
}

/// The binary functions, as `shaders/elementwise.wgsl` defines them.
pub fn binary(op: BinaryOp, a: f32, b: f32) -> f32 {
    let flag = |c: bool| if c { 1.0 } else { 0.0 };
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Max => a.max(b),
        BinaryOp::Min => a.min(b),
        BinaryOp::Ge => flag(a >= b),
        BinaryOp::Gt => flag(a > b),
        BinaryOp::Eq => flag(a == b),
    }
}

/// Offsets into two operands for flat output index `i`, given per-axis strides.
fn offsets(i: usize, dims: &[usize], sa: &[usize], sb: &[usize]) -> (usize, usize) {
    let (mut rem, mut ia, mut ib) = (i, 0, 0);
    for d in (0..dims.len()).rev() {
        let c = rem % dims[d];
        rem /= dims[d];
        ia += c * sa[d];
        ib += c * sb[d];
    }
    (ia, ib)
}

fn strided_copy(src: &TensorData, shape: &Shape, strides: &[usize]) -> TensorData {
    let pick = |i: usize| offsets(i, shape.dims(), strides, strides).0;
    let n = shape.numel();
    match src {
        TensorData::F32(v) => TensorData::F32((0..n).map(|i| v[pick(i)]).collect()),
        TensorData::I32(v) => TensorData::I32((0..n).map(|i| v[pick(i)]).collect()),
        TensorData::U32(v) => TensorData::U32((0..n).map(|i| v[pick(i)]).collect()),
    }
}

/// `y[i] = x[i + offset]` inside `x`, zero (all bits clear) outside.
fn window(src: &TensorData, src_shape: &Shape, offset: &[isize], shape: &Shape) -> TensorData {
    let (sd, ss) = (src_shape.dims(), src_shape.strides());
    let pick = |i: usize| -> Option<usize> {
        let mut rem = i;
        let mut off = 0;
        for d in (0..shape.rank()).rev() {
            let c = (rem % shape.dims()[d]) as isize + offset[d];
            rem /= shape.dims()[d];
            let c = usize::try_from(c).ok().filter(|&c| c < sd[d])?;
            off += c * ss[d];
        }
        Some(off)
    };
    let n = shape.numel();
    match src {
        TensorData::F32(v) => TensorData::F32((0..n).map(|i| pick(i).map_or(0.0, |o| v[o])).collect()),
        TensorData::I32(v) => TensorData::I32((0..n).map(|i| pick(i).map_or(0, |o| v[o])).collect()),
        TensorData::U32(v) => TensorData::U32((0..n).map(|i| pick(i).map_or(0, |o| v[o])).collect()),
    }
}

fn reduce(op: ReduceOp, shape: &Shape, axes: &[usize], x: &[f32]) -> Vec<f32> {
    let strides = shape.strides();
    let (kept, reduced): (Vec<usize>, Vec<usize>) = (0..shape.rank()).partition(|i| !axes.contains(i));
    let dims_of = |ax: &[usize]| ax.iter().map(|&a| shape.dims()[a]).collect::<Vec<_>>();
    let strides_of = |ax: &[usize]| ax.iter().map(|&a| strides[a]).collect::<Vec<_>>();
    let (kd, ks, rd, rs) = (dims_of(&kept), strides_of(&kept), dims_of(&reduced), strides_of(&reduced));
    let (n_out, n_red) = (kd.iter().product::<usize>(), rd.iter().product::<usize>());
    (0..n_out)
        .map(|o| {
            let base = offsets(o, &kd, &ks, &ks).0;
            let vals = (0..n_red).map(|j| x[base + offsets(j, &rd, &rs, &rs).0]);
            match op {
                ReduceOp::Sum => vals.sum(),
                ReduceOp::Mean => vals.sum::<f32>() / n_red as f32,
                ReduceOp::Max => vals.fold(f32::NEG_INFINITY, f32::max),
            }
        })
        .collect()
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

/// Packs one row: element j of each group of 32 into bit j, bits past the row's end 0.
pub fn pack_row(row: &[f32], mode: PackMode) -> Vec<u32> {
    row.chunks(32)
        .map(|group| {
            group.iter().enumerate().fold(0u32, |word, (j, &v)| {
                let set = match mode {
                    PackMode::Sign => v < 0.0,
                    PackMode::ClipMask(c) => v.abs() <= c,
                };
                word | (u32::from(set) << j)
            })
        })
        .collect()
}

fn bit(row: &[u32], c: usize) -> bool {
    (row[c / 32] >> (c % 32)) & 1 == 1
}

/// `k - 2 * popcount(a ^ b)` for every pair of packed rows.
fn xnor_gemm(d: &XnorDims, a: &[u32], b: &[u32]) -> Vec<f32> {
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

fn stat_at(stat: &[f32], i: usize) -> f32 {
    if stat.is_empty() {
        0.0
    } else {
        stat[i % stat.len()]
    }
}

/// TensorFlow's sign: 0 at 0.
fn tf_sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

fn passes(v: f32, clip: Option<f32>) -> bool {
    clip.is_none_or(|c| v.abs() <= c)
}

/// TensorFlow's nudged quantization range for `[min, max]` (`Nudge` in its fake-quant kernels),
/// computed in f32 in TensorFlow's order; `shaders/fake_quant.wgsl` mirrors it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Nudged {
    /// `(max - min) / (quant_max - quant_min)`.
    pub scale: f32,
    /// `(quant_max - quant_min) / (max - min)`, computed as such (not `1 / scale`).
    pub inv_scale: f32,
    /// The zero point, an integer in `[quant_min, quant_max]`.
    pub zero_point: f32,
    /// `(quant_min - zero_point) * scale`.
    pub min: f32,
    /// `(quant_max - zero_point) * scale`.
    pub max: f32,
    /// min = max = 0: the value is 0 and the input's gradient passes everywhere.
    pub empty: bool,
}

impl Nudged {
    /// The nudged range of `[min, max]` for `spec`.
    pub fn new(spec: FakeQuantSpec, min: f32, max: f32) -> Nudged {
        let quant_min = if spec.narrow_range { 1.0f32 } else { 0.0 };
        let quant_max = ((1u32 << spec.num_bits) - 1) as f32;
        let scale = (max - min) / (quant_max - quant_min);
        let inv_scale = (quant_max - quant_min) / (max - min);
        let from_min = quant_min - min / scale;
        // std::round: halves away from zero (from_min >= quant_min >= 0 here).
        let zero_point = if from_min < quant_min {
            quant_min
        } else if from_min > quant_max {
            quant_max
        } else {
            from_min.round()
        };
        let empty = min == 0.0 && max == 0.0;
        Nudged { scale, inv_scale, zero_point, min: (quant_min - zero_point) * scale, max: (quant_max - zero_point) * scale, empty }
    }

    /// The integer level of `x` relative to the zero point, in `[quant_min - zero_point,
    /// quant_max - zero_point]`: the fake-quantized value is `level * scale`.
    pub fn level(&self, spec: FakeQuantSpec, x: f32) -> f32 {
        let quant_zero = (-self.min * self.inv_scale + 0.5).floor();
        let shifted = x.min(self.max).max(self.min) - self.min;
        // TensorFlow's per-tensor kernel divides, its per-channel kernel multiplies.
        let units = if spec.per_channel { shifted * self.inv_scale } else { shifted / self.scale };
        (units - quant_zero + 0.5).floor()
    }

    /// The value or mask `part` at `x`.
    pub fn eval(&self, spec: FakeQuantSpec, part: FakeQuantPart, x: f32) -> f32 {
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        match part {
            FakeQuantPart::Value if self.empty => 0.0,
            FakeQuantPart::Value => self.level(spec, x) * self.scale,
            FakeQuantPart::InRange => flag(self.empty || (x >= self.min && x <= self.max)),
            FakeQuantPart::BelowMin => flag(!self.empty && x < self.min),
            FakeQuantPart::AboveMax => flag(!self.empty && x > self.max),
        }
    }
}

/// The quantizer functions, as `shaders/quantize.wgsl` defines them (Larq 0.14's operations).
pub fn quantize(q: QuantFn, v: f32, stat: f32) -> f32 {
    match q {
        QuantFn::SteSign { .. } | QuantFn::ApproxSign | QuantFn::SwishSign { .. } => sign(v),
        QuantFn::SteHeaviside { .. } => {
            if v > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        QuantFn::ScaledSign { .. } => stat * sign(v),
        QuantFn::SteTern { threshold, .. } => {
            let d = threshold.unwrap_or(stat);
            tf_sign(tf_sign(v + d) + tf_sign(v - d))
        }
        QuantFn::DoReFaActivations { levels } => (v.clamp(0.0, 1.0) * levels as f32).round_ties_even() / levels as f32,
        QuantFn::DoReFaWeights { levels } => {
            let m2 = 2.0 * stat;
            let normed = if m2 == 0.0 { 0.0 } else { v.tanh() / m2 } + 0.5;
            2.0 * ((normed * levels as f32).round_ties_even() / levels as f32) - 1.0
        }
        QuantFn::Identity => v,
        QuantFn::Custom { id } => crate::quantizers::custom::by_id(id).map_or(f32::NAN, |q| (q.cpu_forward)(v)),
    }
}

/// The quantizers' pseudo-gradients times `g`.
pub fn quantize_grad(q: QuantFn, v: f32, stat: f32, g: f32) -> f32 {
    let masked = |pass: bool, value: f32| if pass { value } else { 0.0 };
    match q {
        QuantFn::SteSign { clip } | QuantFn::SteHeaviside { clip } | QuantFn::SteTern { clip, .. } => masked(passes(v, clip), g),
        QuantFn::ApproxSign => masked(v.abs() <= 1.0, (1.0 - v.abs()) * 2.0 * g),
        QuantFn::SwishSign { beta } => {
            let bx = beta * v;
            g * beta * (2.0 - bx * (bx * 0.5).tanh()) / (1.0 + bx.cosh())
        }
        QuantFn::ScaledSign { clip } => masked(passes(v, clip), stat * g),
        QuantFn::DoReFaActivations { .. } => masked((0.0..=1.0).contains(&v), g),
        QuantFn::DoReFaWeights { .. } => {
            let t = v.tanh();
            let m2 = 2.0 * stat;
            (if m2 == 0.0 { 0.0 } else { (2.0 * g) / m2 }) * (1.0 - t * t)
        }
        QuantFn::Identity => g,
        QuantFn::Custom { id } => crate::quantizers::custom::by_id(id).map_or(f32::NAN, |q| (q.cpu_gradient)(v, g)),
    }
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

fn im2col<T: Copy>(g: &ConvGeometry, image: &[T], pad: T) -> Vec<T> {
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

fn col2im(g: &ConvGeometry, cols: &[f32]) -> Vec<f32> {
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

fn max_sum_exp(row: &[f32]) -> (f32, f32) {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (m, row.iter().map(|&v| (v - m).exp()).sum())
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

fn random(dist: Distribution, seed: u64, n: usize) -> Vec<f32> {
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
