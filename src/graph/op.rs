//! The closed set of operations a graph can hold, and their shape rules.
//!
//! `Op` is a closed enum on purpose: the CPU backend, the GPU backend and autodiff each match on
//! it exhaustively, so adding an op fails to compile until all three handle it.

use super::conv::{check_image, ConvGeometry};
use crate::error::{Error, Result};
use crate::tensor::{DType, Shape};

/// Elementwise functions of one `f32` operand. Parameters are part of the op.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `|x|`
    Abs,
    /// `e^x`
    Exp,
    /// natural logarithm
    Log,
    /// square root
    Sqrt,
    /// `x * x`
    Square,
    /// `1 / x`
    Recip,
    /// `max(x, 0)`
    Relu,
    /// `1 / (1 + e^-x)`
    Sigmoid,
    /// hyperbolic tangent
    Tanh,
    /// Larq's sign: +1 for x >= 0 (sign(0) = +1), -1 otherwise. Its true derivative is 0.
    Sign,
    /// `x * s`
    Scale(f32),
    /// `x + c`
    Offset(f32),
    /// `min(max(x, lo), hi)`; the gradient passes where lo <= x <= hi (inclusive, as TensorFlow).
    Clip(f32, f32),
    /// Rounds toward zero (a float-to-integer cast); derivative 0.
    Trunc,
}

impl UnaryOp {
    /// Numeric code shared with `shaders/elementwise.wgsl`.
    pub(crate) fn code(self) -> u32 {
        match self {
            UnaryOp::Neg => 0,
            UnaryOp::Abs => 1,
            UnaryOp::Exp => 2,
            UnaryOp::Log => 3,
            UnaryOp::Sqrt => 4,
            UnaryOp::Square => 5,
            UnaryOp::Recip => 6,
            UnaryOp::Relu => 7,
            UnaryOp::Sigmoid => 8,
            UnaryOp::Tanh => 9,
            UnaryOp::Sign => 10,
            UnaryOp::Scale(_) => 11,
            UnaryOp::Offset(_) => 12,
            UnaryOp::Clip(..) => 13,
            UnaryOp::Trunc => 14,
        }
    }

    /// The op's two scalar parameters (unused ones are 0).
    pub(crate) fn params(self) -> (f32, f32) {
        match self {
            UnaryOp::Scale(s) => (s, 0.0),
            UnaryOp::Offset(c) => (c, 0.0),
            UnaryOp::Clip(lo, hi) => (lo, hi),
            _ => (0.0, 0.0),
        }
    }
}

/// Elementwise functions of two `f32` operands with NumPy broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `max(a, b)`
    Max,
    /// `min(a, b)`
    Min,
    /// 1.0 where `a >= b`, else 0.0 (no gradient)
    Ge,
    /// 1.0 where `a > b`, else 0.0 (no gradient)
    Gt,
    /// 1.0 where `a == b`, else 0.0 (no gradient)
    Eq,
}

impl BinaryOp {
    /// Numeric code shared with `shaders/elementwise.wgsl`.
    pub(crate) fn code(self) -> u32 {
        self as u32
    }
}

/// Reductions over a set of axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Sum.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Maximum.
    Max,
}

impl ReduceOp {
    /// Numeric code shared with `shaders/reduce.wgsl`.
    pub(crate) fn code(self) -> u32 {
        self as u32
    }
}

/// What a packed bit means (see `shaders/bitpack.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PackMode {
    /// Sign bits: 1 for x < 0 (-1), 0 for x >= 0 (+1), Larq Compute Engine convention.
    Sign,
    /// Straight-through mask: 1 where |x| <= clip (inclusive).
    ClipMask(f32),
}

impl PackMode {
    /// Code and clip value shared with `shaders/bitpack.wgsl`.
    pub(crate) fn params(self) -> (u32, f32) {
        match self {
            PackMode::Sign => (0, 0.0),
            PackMode::ClipMask(c) => (1, c),
        }
    }
}

/// One of Larq's quantizer functions with its parameters: the elementwise part of a quantizer.
/// Statistics that some quantizers need (see [`QuantFn::needs_stat`]) are computed by graph
/// reductions and passed as a second operand; no gradient flows into them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum QuantFn {
    /// sign(x), gradient 1 where |x| <= clip (`None`: everywhere).
    SteSign {
        /// Straight-through window.
        clip: Option<f32>,
    },
    /// sign(x), gradient 2 - 2|x| where |x| <= 1.
    ApproxSign,
    /// 1 for x > 0 else 0, gradient 1 where |x| <= clip.
    SteHeaviside {
        /// Straight-through window.
        clip: Option<f32>,
    },
    /// sign(x), gradient b(2 - bx tanh(bx/2)) / (1 + cosh(bx)).
    SwishSign {
        /// Sharpness.
        beta: f32,
    },
    /// s * sign(x) with a per-channel scale `s` (the statistic), gradient s where |x| <= clip:
    /// MagnitudeAwareSign.
    ScaledSign {
        /// Straight-through window.
        clip: Option<f32>,
    },
    /// sign(sign(x + D) + sign(x - D)) with TensorFlow's sign (0 at 0), gradient 1 where
    /// |x| <= clip; D is `threshold`, or the statistic when `None` (ternary weight networks).
    SteTern {
        /// Fixed threshold, or `None` to read it from the statistic.
        threshold: Option<f32>,
        /// Straight-through window.
        clip: Option<f32>,
    },
    /// round(clip(x, 0, 1) * n) / n, gradient 1 on [0, 1].
    DoReFaActivations {
        /// n = 2^k_bit - 1.
        levels: u32,
    },
    /// 2 round(n (tanh(x) / (2m) + 1/2)) / n - 1 with m = max|tanh(x)| (the statistic),
    /// gradient (1 - tanh(x)^2) / m.
    DoReFaWeights {
        /// n = 2^k_bit - 1.
        levels: u32,
    },
    /// x, gradient 1.
    Identity,
    /// A user-defined quantizer, by its id in the registry of
    /// [`CustomQuantizer`](crate::quantizers::CustomQuantizer)s.
    Custom {
        /// Registry id.
        id: u32,
    },
}

impl QuantFn {
    /// True when the function reads a statistic operand.
    pub fn needs_stat(self) -> bool {
        matches!(self, QuantFn::ScaledSign { .. } | QuantFn::SteTern { threshold: None, .. } | QuantFn::DoReFaWeights { .. })
    }

    /// Code and parameters shared with `shaders/quantize.wgsl`: (code, clip, a, levels).
    pub(crate) fn params(self) -> (u32, f32, f32, f32) {
        let clip = |c: Option<f32>| c.unwrap_or(f32::INFINITY);
        match self {
            QuantFn::SteSign { clip: c } => (0, clip(c), 0.0, 0.0),
            QuantFn::ApproxSign => (1, 1.0, 0.0, 0.0),
            QuantFn::SteHeaviside { clip: c } => (2, clip(c), 0.0, 0.0),
            QuantFn::SwishSign { beta } => (3, f32::INFINITY, beta, 0.0),
            QuantFn::ScaledSign { clip: c } => (4, clip(c), 0.0, 0.0),
            QuantFn::SteTern { threshold, clip: c } => (5, clip(c), threshold.unwrap_or(0.0), 0.0),
            QuantFn::DoReFaActivations { levels } => (6, 1.0, 0.0, levels as f32),
            QuantFn::DoReFaWeights { levels } => (7, f32::INFINITY, 0.0, levels as f32),
            QuantFn::Identity | QuantFn::Custom { .. } => (8, f32::INFINITY, 0.0, 0.0),
        }
    }
}

/// What an XNOR GEMM writes (see `shaders/xnor_gemm.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Epilogue {
    /// The integer dot product as f32.
    Plain,
    /// `dot * scale[n] + bias[n]`: takes two extra f32 [N] operands.
    Affine,
    /// Sign bits of `dot * scale[n] + bias[n]` packed along N: takes two extra f32 [N] operands
    /// and produces u32 words, ready for the next binary layer.
    Binarize,
}

/// Number of u32 words holding `k` packed bits.
pub fn words_for(k: usize) -> usize {
    k.div_ceil(32)
}

/// Distributions for random tensors. Both backends draw the same numbers for the same seed:
/// uniform draws bit-exactly, normal draws within transcendental-function rounding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    /// Uniform on `[low, high)`.
    Uniform {
        /// Lower bound (inclusive).
        low: f32,
        /// Upper bound (exclusive).
        high: f32,
    },
    /// Normal with the given mean and standard deviation (Box-Muller).
    Normal {
        /// Mean.
        mean: f32,
        /// Standard deviation.
        std: f32,
    },
    /// Normal truncated at two standard deviations (Keras' `TruncatedNormal`).
    TruncatedNormal {
        /// Mean.
        mean: f32,
        /// Standard deviation of the untruncated normal.
        std: f32,
    },
}

/// TensorFlow's fake quantization (`tf.quantization.fake_quant_with_min_max_vars` and its
/// `_per_channel` variant), which TF-MOT's quantizers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FakeQuantSpec {
    /// Bits, 2..=16: integer levels `[narrow_range as u32, 2^num_bits - 1]`.
    pub num_bits: u32,
    /// Leave out the lowest level (symmetric ranges).
    pub narrow_range: bool,
    /// One range per last-axis channel (`min`, `max` of shape `[C]`) rather than one (`[1]`).
    /// TensorFlow's two kernels also round differently (the per-tensor one divides by the scale,
    /// the per-channel one multiplies by its inverse), so a one-channel per-axis range is not the
    /// same as a per-tensor one.
    pub per_channel: bool,
}

/// What an [`Op::FakeQuant`] computes: the value, or one of the masks its gradients need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeQuantPart {
    /// The fake-quantized value.
    Value,
    /// 1 where `nudged_min <= x <= nudged_max` (the gradient of the input), else 0.
    InRange,
    /// 1 where `x < nudged_min` (summed, the gradient of `min`), else 0.
    BelowMin,
    /// 1 where `x > nudged_max` (summed, the gradient of `max`), else 0.
    AboveMax,
}

/// One operation in a [`crate::Graph`].
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Elementwise unary function: `(x) -> y`.
    Unary(UnaryOp),
    /// Derivative of a unary function times the upstream gradient: `(x, dy) -> dx`.
    UnaryGrad(UnaryOp),
    /// Elementwise binary function with broadcasting: `(a, b) -> y`.
    Binary(BinaryOp),
    /// Reduction over `axes`: `(x) -> y`.
    Reduce {
        /// Which reduction.
        op: ReduceOp,
        /// Axes to reduce (sorted, distinct).
        axes: Vec<usize>,
        /// Keep reduced axes as size 1.
        keep_dims: bool,
    },
    /// Batched matrix product `op(a) @ op(b)` over the last two axes; leading (batch) axes
    /// broadcast: `(a, b) -> c`.
    MatMul {
        /// Use `a` transposed in its last two axes.
        trans_a: bool,
        /// Use `b` transposed in its last two axes.
        trans_b: bool,
    },
    /// Axis permutation, `y.shape[i] = x.shape[perm[i]]`: `(x) -> y`.
    Permute {
        /// The permutation.
        perm: Vec<usize>,
    },
    /// Broadcast to a larger shape (NumPy rules): `(x) -> y`.
    Broadcast {
        /// Target shape.
        shape: Shape,
    },
    /// A window of `x` at an offset, zero outside it: `y[i] = x[i + offset]` where that index
    /// lies inside `x`, else 0 (`(x) -> y`). Slicing (positive offsets, smaller shape), padding
    /// (negative offsets, larger shape) and concatenation (a sum of paddings) are windows, and
    /// the adjoint of a window is the window back (negated offset, the input's shape).
    Window {
        /// Offset of `y`'s origin in `x`, per axis.
        offset: Vec<isize>,
        /// Output shape (same rank as `x`).
        shape: Shape,
    },
    /// Same elements, new shape: `(x) -> y`.
    Reshape {
        /// Target shape (same element count).
        shape: Shape,
    },
    /// Row gather along axis 0: `(table [R, ...], idx [M] i32) -> [M, ...]`. An index outside
    /// `0..R` yields NaN rows, so a bad label cannot pass silently.
    Gather,
    /// Gradient of [`Op::Gather`] with respect to the table: `(idx [M], dy [M, ...]) -> [rows, ...]`.
    GatherGrad {
        /// Rows of the table.
        rows: usize,
    },
    /// Elements picked by a flat index map: `(x f32, idx i32 [M]) -> y` of `shape` (M elements),
    /// `y[i] = x[idx[i]]`, and 0 where `idx[i]` is outside `x` (-1 by convention). Built by
    /// [`crate::Graph::take`] with constant, injective indices, so its adjoint is another take.
    Take {
        /// Output shape.
        shape: Shape,
    },
    /// Softmax over the last axis: `(x) -> y`.
    Softmax,
    /// Fused, numerically stable softmax cross-entropy per row:
    /// `(logits [N, C], labels [N] i32) -> loss [N]`. A label outside `0..C` gives a NaN loss.
    SoftmaxCrossEntropy,
    /// Gradient of [`Op::SoftmaxCrossEntropy`]: `(logits, labels, dloss [N]) -> dlogits`.
    SoftmaxCrossEntropyGrad,
    /// Packs the last axis 32 values per u32 word: `(x f32 [.., K]) -> u32 [.., ceil(K/32)]`.
    /// Binarized values carry no gradient here; quantizers define pseudo-gradients.
    BitPack {
        /// Sign bits or clip mask.
        mode: PackMode,
    },
    /// Expands packed bits: `(bits u32 [.., W]) -> f32 [.., k]`, ±1 for sign bits, 1/0 for masks.
    BitUnpack {
        /// Values per row (W must be ceil(k/32)).
        k: usize,
        /// How to read the bits.
        mode: PackMode,
    },
    /// `dy` where the packed mask bit is 1, else 0: `(mask u32 [.., W], dy f32 [.., K]) -> f32`.
    /// The backward of a binarized activation, reading 1 bit per saved element.
    ApplyMask,
    /// XNOR-popcount product of packed rows: `(a u32 [.., M, W], b u32 [N, W] or [.., N, W]
    /// [, scale f32 [N], bias f32 [N]]) -> f32 [.., M, N]` (or u32 [.., M, ceil(N/32)] with
    /// [`Epilogue::Binarize`]). `dot = k - 2 * popcount(a ^ b)`, exact.
    XnorGemm {
        /// Real bits per row. Rows may hold more than ceil(k/32) words (a convolution packs each
        /// tap's channels separately); padding bits are 0 in both operands and cancel.
        k: usize,
        /// Output form.
        epilogue: Epilogue,
    },
    /// A quantizer function: `(x [, stat]) -> q(x)`, same shape as `x`.
    Quantize {
        /// The function.
        f: QuantFn,
    },
    /// Its pseudo-gradient: `(x [, stat], dy) -> dq/dx * dy`.
    QuantizeGrad {
        /// The function.
        f: QuantFn,
    },
    /// Fake quantization: `(x, min, max) -> f32` shaped as `x`, with `min` and `max` of shape
    /// `[1]`, or `[C]` (the last axis of `x`) when per channel.
    FakeQuant {
        /// Bits, narrow range, per channel.
        spec: FakeQuantSpec,
        /// The value or a gradient mask.
        part: FakeQuantPart,
    },
    /// Image patches as rows: `(image [N, in..., C] or [N, C, in...]) -> [N, out..., taps..., C]`,
    /// for f32 values or packed words. Padded positions hold `pad_value` (f32) or +1 (packed).
    Im2Col {
        /// The convolution's geometry.
        geom: ConvGeometry,
        /// Value of padded positions for f32 images (packed images pad with +1 only).
        pad_value: f32,
    },
    /// The adjoint of [`Op::Im2Col`]: sums patch rows back into an f32 image.
    Col2Im {
        /// The convolution's geometry.
        geom: ConvGeometry,
    },
    /// A random tensor, seeded: `() -> y`, or with a stream, `(stream [1]) -> y`: the stream's
    /// value (a step counter, read as an integer) is mixed into the seed when the step runs, so
    /// one recorded op draws fresh numbers each step (dropout) and the same ones on every backend.
    Random {
        /// Distribution.
        dist: Distribution,
        /// Seed; the same seed gives the same tensor on every backend.
        seed: u64,
        /// Output shape.
        shape: Shape,
        /// Takes a stream input.
        streamed: bool,
    },
    /// A tensor filled with one value: `() -> y`.
    Fill {
        /// The value.
        value: f32,
        /// Output shape.
        shape: Shape,
    },
    /// Writes `value` into `variable` at this point of the step: `(variable, value) -> ()`.
    Assign,
}

impl Op {
    /// Short name used in errors and debug labels.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Unary(_) => "unary",
            Op::UnaryGrad(_) => "unary_grad",
            Op::Binary(_) => "binary",
            Op::Reduce { .. } => "reduce",
            Op::MatMul { .. } => "matmul",
            Op::Permute { .. } => "permute",
            Op::Broadcast { .. } => "broadcast",
            Op::Window { .. } => "window",
            Op::Reshape { .. } => "reshape",
            Op::Gather => "gather",
            Op::Take { .. } => "take",
            Op::GatherGrad { .. } => "gather_grad",
            Op::Softmax => "softmax",
            Op::SoftmaxCrossEntropy => "softmax_cross_entropy",
            Op::SoftmaxCrossEntropyGrad => "softmax_cross_entropy_grad",
            Op::BitPack { .. } => "bit_pack",
            Op::BitUnpack { .. } => "bit_unpack",
            Op::ApplyMask => "apply_mask",
            Op::XnorGemm { .. } => "xnor_gemm",
            Op::Quantize { .. } => "quantize",
            Op::QuantizeGrad { .. } => "quantize_grad",
            Op::FakeQuant { .. } => "fake_quant",
            Op::Im2Col { .. } => "im2col",
            Op::Col2Im { .. } => "col2im",
            Op::Random { .. } => "random",
            Op::Fill { .. } => "fill",
            Op::Assign => "assign",
        }
    }

    /// Number of inputs the op takes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Random { streamed, .. } => usize::from(*streamed),
            Op::Fill { .. } => 0,
            Op::BitPack { .. } | Op::BitUnpack { .. } | Op::Im2Col { .. } | Op::Col2Im { .. } => 1,
            Op::Quantize { f } => 1 + usize::from(f.needs_stat()),
            Op::QuantizeGrad { f } => 2 + usize::from(f.needs_stat()),
            Op::ApplyMask => 2,
            Op::FakeQuant { .. } => 3,
            Op::XnorGemm { epilogue: Epilogue::Plain, .. } => 2,
            Op::XnorGemm { .. } => 4,
            Op::Unary(_)
            | Op::Reduce { .. }
            | Op::Permute { .. }
            | Op::Broadcast { .. }
            | Op::Window { .. }
            | Op::Reshape { .. }
            | Op::Softmax => 1,
            Op::UnaryGrad(_)
            | Op::Binary(_)
            | Op::MatMul { .. }
            | Op::Gather
            | Op::GatherGrad { .. }
            | Op::Take { .. }
            | Op::SoftmaxCrossEntropy
            | Op::Assign => 2,
            Op::SoftmaxCrossEntropyGrad => 3,
        }
    }

    /// Output shape and dtype from input shapes and dtypes, or `None` for ops with no output
    /// ([`Op::Assign`]). Every rule violation is an error naming the op and the shapes.
    pub fn infer(&self, inputs: &[(&Shape, DType)]) -> Result<Option<(Shape, DType)>> {
        let name = self.name();
        if inputs.len() != self.arity() {
            return Err(Error::invalid(name, "inputs", format!("takes {} inputs, got {}", self.arity(), inputs.len())));
        }
        let want = |i: usize, operand: &'static str, dtype: DType| -> Result<()> {
            if inputs[i].1 != dtype {
                return Err(Error::DTypeMismatch { op: name, operand, expected: dtype, got: inputs[i].1 });
            }
            Ok(())
        };
        let out = match self {
            Op::Unary(_) | Op::Softmax => {
                want(0, "x", DType::F32)?;
                (inputs[0].0.clone(), DType::F32)
            }
            Op::UnaryGrad(_) => {
                want(0, "x", DType::F32)?;
                want(1, "dy", DType::F32)?;
                same_shape(name, inputs[0].0, inputs[1].0)?;
                (inputs[0].0.clone(), DType::F32)
            }
            Op::Binary(_) => {
                want(0, "a", DType::F32)?;
                want(1, "b", DType::F32)?;
                (broadcast_shapes(name, inputs[0].0, inputs[1].0)?, DType::F32)
            }
            Op::Reduce { axes, keep_dims, .. } => {
                want(0, "x", DType::F32)?;
                (reduced_shape(name, inputs[0].0, axes, *keep_dims)?, DType::F32)
            }
            Op::MatMul { trans_a, trans_b } => {
                want(0, "a", DType::F32)?;
                want(1, "b", DType::F32)?;
                let d = MatMulDims::new(inputs[0].0, inputs[1].0, *trans_a, *trans_b)?;
                (d.out_shape, DType::F32)
            }
            Op::Permute { perm } => (permuted_shape(name, inputs[0].0, perm)?, inputs[0].1),
            Op::Broadcast { shape } => {
                let b = broadcast_shapes(name, inputs[0].0, shape)?;
                if &b != shape {
                    return Err(Error::shapes(name, inputs[0].0.dims(), shape.dims(), "cannot broadcast to the target shape"));
                }
                (shape.clone(), inputs[0].1)
            }
            Op::Window { offset, shape } => {
                shape.validate(name)?;
                if shape.rank() != inputs[0].0.rank() || offset.len() != shape.rank() {
                    return Err(Error::shapes(
                        name,
                        inputs[0].0.dims(),
                        shape.dims(),
                        format!("offset {offset:?} and shape need x's rank"),
                    ));
                }
                (shape.clone(), inputs[0].1)
            }
            Op::Reshape { shape } => {
                shape.validate(name)?;
                if shape.numel() != inputs[0].0.numel() {
                    return Err(Error::shapes(name, inputs[0].0.dims(), shape.dims(), "element counts differ"));
                }
                (shape.clone(), inputs[0].1)
            }
            Op::Gather => {
                want(0, "table", DType::F32)?;
                want(1, "idx", DType::I32)?;
                let (t, i) = (inputs[0].0, inputs[1].0);
                if t.rank() < 1 || i.rank() != 1 {
                    return Err(Error::shapes(name, t.dims(), i.dims(), "needs a table of rank >= 1 and rank-1 indices"));
                }
                let mut d = vec![i.dims()[0]];
                d.extend_from_slice(&t.dims()[1..]);
                (Shape::new(d), DType::F32)
            }
            Op::Take { shape } => {
                want(0, "x", DType::F32)?;
                want(1, "idx", DType::I32)?;
                shape.validate(name)?;
                if inputs[1].0.rank() != 1 || inputs[1].0.numel() != shape.numel() {
                    return Err(Error::shapes(name, inputs[1].0.dims(), shape.dims(), "needs one index per output element"));
                }
                (shape.clone(), DType::F32)
            }
            Op::GatherGrad { rows } => {
                want(0, "idx", DType::I32)?;
                want(1, "dy", DType::F32)?;
                let (i, dy) = (inputs[0].0, inputs[1].0);
                if i.rank() != 1 || dy.rank() < 1 || dy.dims()[0] != i.dims()[0] || *rows == 0 {
                    return Err(Error::shapes(name, i.dims(), dy.dims(), "needs idx [M] and dy [M, ...], rows > 0"));
                }
                let mut d = vec![*rows];
                d.extend_from_slice(&dy.dims()[1..]);
                (Shape::new(d), DType::F32)
            }
            Op::SoftmaxCrossEntropy => {
                want(0, "logits", DType::F32)?;
                want(1, "labels", DType::I32)?;
                let (l, y) = (inputs[0].0, inputs[1].0);
                if l.rank() != 2 || y.dims() != [l.dims()[0]] {
                    return Err(Error::shapes(name, l.dims(), y.dims(), "needs logits [N, C] and labels [N]"));
                }
                (y.clone(), DType::F32)
            }
            Op::SoftmaxCrossEntropyGrad => {
                want(0, "logits", DType::F32)?;
                want(1, "labels", DType::I32)?;
                want(2, "dloss", DType::F32)?;
                let (l, y, g) = (inputs[0].0, inputs[1].0, inputs[2].0);
                if l.rank() != 2 || y.dims() != [l.dims()[0]] || g != y {
                    return Err(Error::shapes(name, l.dims(), g.dims(), "needs logits [N, C], labels [N], dloss [N]"));
                }
                (l.clone(), DType::F32)
            }
            Op::BitPack { mode } => {
                want(0, "x", DType::F32)?;
                if let PackMode::ClipMask(c) = mode {
                    if c.is_nan() || *c < 0.0 {
                        return Err(Error::invalid(name, "clip", format!("{c} must be >= 0")));
                    }
                }
                let x = inputs[0].0;
                let mut d = x.dims().to_vec();
                let last = d.last_mut().ok_or_else(|| Error::invalid(name, "x", "needs rank >= 1"))?;
                *last = words_for(*last);
                (Shape::new(d), DType::U32)
            }
            Op::BitUnpack { k, .. } => {
                want(0, "bits", DType::U32)?;
                let mut d = inputs[0].0.dims().to_vec();
                match d.last_mut() {
                    Some(w) if *k > 0 && *w == words_for(*k) => *w = *k,
                    _ => {
                        return Err(Error::invalid(
                            name,
                            "k",
                            format!("{k} bits do not fill the last axis of {:?} (ceil(k/32) words)", inputs[0].0),
                        ))
                    }
                }
                (Shape::new(d), DType::F32)
            }
            Op::ApplyMask => {
                want(0, "mask", DType::U32)?;
                want(1, "dy", DType::F32)?;
                let (m, dy) = (inputs[0].0, inputs[1].0);
                let ok = m.rank() == dy.rank()
                    && m.rank() >= 1
                    && m.dims()[..m.rank() - 1] == dy.dims()[..dy.rank() - 1]
                    && m.dims()[m.rank() - 1] == words_for(dy.dims()[dy.rank() - 1]);
                if !ok {
                    return Err(Error::shapes(name, m.dims(), dy.dims(), "mask must be dy's shape with the last axis packed 32 per word"));
                }
                (dy.clone(), DType::F32)
            }
            Op::XnorGemm { k, epilogue } => {
                want(0, "a", DType::U32)?;
                want(1, "b", DType::U32)?;
                let d = XnorDims::new(inputs[0].0, inputs[1].0, *k)?;
                if *epilogue != Epilogue::Plain {
                    want(2, "scale", DType::F32)?;
                    want(3, "bias", DType::F32)?;
                    for (i, operand) in [(2, "scale"), (3, "bias")] {
                        if inputs[i].0.dims() != [d.n] {
                            return Err(Error::shapes(
                                name,
                                inputs[i].0.dims(),
                                &[d.n],
                                format!("`{operand}` must have one value per output column"),
                            ));
                        }
                    }
                }
                let mut out = inputs[0].0.dims().to_vec();
                let r = out.len();
                out[r - 1] = if *epilogue == Epilogue::Binarize { words_for(d.n) } else { d.n };
                (Shape::new(out), if *epilogue == Epilogue::Binarize { DType::U32 } else { DType::F32 })
            }
            Op::Quantize { f } | Op::QuantizeGrad { f } => {
                want(0, "x", DType::F32)?;
                let x = inputs[0].0;
                if f.needs_stat() {
                    want(1, "stat", DType::F32)?;
                    let st = inputs[1].0;
                    let len = st.numel();
                    let last = x.dims().last().copied().unwrap_or(1);
                    if st.rank() != 1 || (len != 1 && len != last) {
                        return Err(Error::shapes(
                            name,
                            x.dims(),
                            st.dims(),
                            "the statistic must be [1] or one value per last-axis channel",
                        ));
                    }
                }
                if matches!(self, Op::QuantizeGrad { .. }) {
                    let dy = inputs.len() - 1;
                    want(dy, "dy", DType::F32)?;
                    same_shape(name, x, inputs[dy].0)?;
                }
                (x.clone(), DType::F32)
            }
            Op::FakeQuant { spec, .. } => {
                want(0, "x", DType::F32)?;
                want(1, "min", DType::F32)?;
                want(2, "max", DType::F32)?;
                if !(2..=16).contains(&spec.num_bits) {
                    return Err(Error::invalid(name, "num_bits", format!("{} is not in 2..=16", spec.num_bits)));
                }
                let x = inputs[0].0;
                let channels = if spec.per_channel { x.dims().last().copied().unwrap_or(1) } else { 1 };
                for (i, what) in [(1, "min"), (2, "max")] {
                    if inputs[i].0.dims() != [channels] {
                        let want = if spec.per_channel { "one value per last-axis channel" } else { "shape [1]" };
                        return Err(Error::shapes(name, x.dims(), inputs[i].0.dims(), format!("`{what}` must have {want}")));
                    }
                }
                (x.clone(), DType::F32)
            }
            Op::Im2Col { geom, pad_value } => {
                check_image(name, geom, inputs[0].0, inputs[0].1)?;
                if inputs[0].1 == DType::U32 && *pad_value != 1.0 {
                    return Err(Error::invalid(
                        name,
                        "pad_value",
                        format!("packed bits pad with +1 only, not {pad_value}; zero padding needs a correction term"),
                    ));
                }
                (geom.cols_shape(), inputs[0].1)
            }
            Op::Col2Im { geom } => {
                want(0, "cols", DType::F32)?;
                if inputs[0].0 != &geom.cols_shape() {
                    return Err(Error::shapes(
                        name,
                        inputs[0].0.dims(),
                        geom.cols_shape().dims(),
                        "cols do not match the convolution geometry",
                    ));
                }
                (geom.image_shape(), DType::F32)
            }
            Op::Random { shape, dist, streamed, .. } => {
                shape.validate(name)?;
                if *streamed {
                    want(0, "stream", DType::F32)?;
                    if inputs[0].0.numel() != 1 {
                        return Err(Error::shapes(name, inputs[0].0.dims(), &[1], "the stream is one counter"));
                    }
                }
                match *dist {
                    Distribution::Uniform { low, high } if low >= high || !low.is_finite() || !high.is_finite() => {
                        return Err(Error::invalid(name, "dist", format!("uniform bounds [{low}, {high}) are empty or not finite")))
                    }
                    Distribution::Normal { mean, std } | Distribution::TruncatedNormal { mean, std }
                        if std < 0.0 || !mean.is_finite() || !std.is_finite() =>
                    {
                        return Err(Error::invalid(name, "dist", format!("normal std {std} must be finite and >= 0")))
                    }
                    _ => {}
                }
                (shape.clone(), DType::F32)
            }
            Op::Fill { shape, .. } => {
                shape.validate(name)?;
                (shape.clone(), DType::F32)
            }
            Op::Assign => {
                if inputs[0].0 != inputs[1].0 || inputs[0].1 != inputs[1].1 {
                    return Err(Error::shapes(
                        name,
                        inputs[0].0.dims(),
                        inputs[1].0.dims(),
                        "variable and value must have the same shape and dtype",
                    ));
                }
                return Ok(None);
            }
        };
        out.0.validate(name)?;
        Ok(Some(out))
    }
}

fn same_shape(op: &'static str, a: &Shape, b: &Shape) -> Result<()> {
    if a != b {
        return Err(Error::shapes(op, a.dims(), b.dims(), "shapes must be equal"));
    }
    Ok(())
}

/// NumPy broadcasting of two shapes (aligned at the last axis).
pub fn broadcast_shapes(op: &'static str, a: &Shape, b: &Shape) -> Result<Shape> {
    let r = a.rank().max(b.rank());
    let mut out = vec![0; r];
    for (i, o) in out.iter_mut().enumerate() {
        let da = dim_from_end(a, r - 1 - i);
        let db = dim_from_end(b, r - 1 - i);
        *o = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(Error::shapes(op, a.dims(), b.dims(), format!("axis {i} of the broadcast has sizes {da} and {db}"))),
        };
    }
    Ok(Shape::new(out))
}

fn dim_from_end(s: &Shape, k: usize) -> usize {
    if k < s.rank() {
        s.dims()[s.rank() - 1 - k]
    } else {
        1
    }
}

/// Strides (in elements) for reading `x` as if broadcast to `out`: 0 on broadcast axes.
pub fn broadcast_strides(x: &Shape, out: &Shape) -> Vec<usize> {
    let xs = x.strides();
    let off = out.rank() - x.rank();
    (0..out.rank()).map(|i| if i < off || x.dims()[i - off] == 1 { 0 } else { xs[i - off] }).collect()
}

/// Shape after reducing `axes` of `x`.
pub fn reduced_shape(op: &'static str, x: &Shape, axes: &[usize], keep_dims: bool) -> Result<Shape> {
    if axes.windows(2).any(|w| w[0] >= w[1]) || axes.iter().any(|&a| a >= x.rank()) {
        return Err(Error::invalid(op, "axes", format!("{axes:?} must be sorted, distinct and below rank {} of {x:?}", x.rank())));
    }
    let dims = x
        .dims()
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keep_dims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect::<Vec<_>>();
    Ok(Shape::new(dims))
}

pub(crate) fn permuted_shape(op: &'static str, x: &Shape, perm: &[usize]) -> Result<Shape> {
    let mut seen = vec![false; x.rank()];
    if perm.len() != x.rank() || perm.iter().any(|&p| p >= x.rank() || std::mem::replace(&mut seen[p], true)) {
        return Err(Error::invalid(op, "perm", format!("{perm:?} is not a permutation of the {} axes of {x:?}", x.rank())));
    }
    Ok(Shape::new(perm.iter().map(|&p| x.dims()[p]).collect::<Vec<_>>()))
}

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
