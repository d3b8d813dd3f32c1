//! The closed set of operations a graph can hold.
//!
//! `Op` is a closed enum on purpose: shape inference, autodiff, the CPU reference and the GPU
//! recorder each match on it exhaustively, and every arm is a one-line delegation into the op's
//! family (`super::ops`), so adding an op fails to compile until its family handles all four.

use std::sync::Arc;

use super::ops::custom_quantize::CustomFn;
use super::ops::{self, Gpu, Grads};
use super::{Graph, Node, ValueId};
use crate::error::{Error, Result};
use crate::kernels::Step;
use crate::tensor::{DType, Shape, TensorData};

use super::conv::ConvGeometry;
pub use super::ops::bitpack::{words_for, PackMode};
pub use super::ops::elementwise::{BinaryOp, UnaryOp};
pub use super::ops::fake_quant::{FakeQuantPart, FakeQuantSpec};
pub use super::ops::gemm::MatMulDims;
pub use super::ops::layout::permuted_shape;
pub use super::ops::planes::Encoding;
pub use super::ops::quantize::QuantFn;
pub use super::ops::random::Distribution;
pub use super::ops::reduce::{reduced_shape, ReduceOp};
pub use super::ops::update::UpdateFn;
pub use super::ops::xnor::{Epilogue, XnorDims};

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
    /// Where each row's label ranks among its scores: `(scores [N, C], target) -> [N]` f32,
    /// the target being labels `[N]` i32 or one-hot rows `[N, C]` f32 (the first largest entry
    /// is the label): how many classes score above the label, plus, with `first_ties`, how many
    /// tie with it at a lower index. `rank < k` is TensorFlow's `in_top_k` (ties count in); with
    /// `first_ties`, rank 0 is argmax picking the label (Keras' accuracy). A label outside
    /// `0..C` ranks C.
    LabelRank {
        /// Whether ties at a lower index rank above the label.
        first_ties: bool,
    },
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
    /// Weighted AND-popcount product of bit planes, the integer dot products of low-bit
    /// encodings: `(a u32 [Pa, M, W], b u32 [Pb, N, W]) -> f32 [M, N]`,
    /// `sum_i sum_j a_weights[i] b_weights[j] popcount(a[i] & b[j])` over each row pair's
    /// words, exact (see [`super::ops::planes`]).
    PlaneGemm {
        /// One weight per plane of A.
        a_weights: Vec<i32>,
        /// One weight per plane of B.
        b_weights: Vec<i32>,
    },
    /// Packs values into the bit planes of an encoding: `(q f32 [.., M, K]) -> u32 [.., P, M,
    /// ceil(K/32)]`, each value the integer `round(q * scale)` (a signed one `sign(q)`),
    /// clamped to the encoding's range; bits past K are 0. Carries no gradient.
    PlanePack {
        /// The encoding.
        encoding: Encoding,
        /// Integers per unit value.
        scale: f32,
    },
    /// Expands planes back to values: `(planes u32 [.., P, M, W]) -> f32 [.., M, k]`,
    /// `sum_i weight_i plane_i / scale`.
    PlaneUnpack {
        /// The encoding.
        encoding: Encoding,
        /// Values per row (W must be ceil(k/32)).
        k: usize,
        /// Integers per unit value.
        scale: f32,
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
    /// A user-defined quantizer function: `(x) -> q(x)`.
    CustomQuantize {
        /// The function, held by the op.
        f: Arc<CustomFn>,
    },
    /// Its pseudo-gradient: `(x, dy) -> dq/dx * dy`.
    CustomQuantizeGrad {
        /// The function, held by the op.
        f: Arc<CustomFn>,
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
    /// An optimizer's fused update of a variable or slot: `(x, ...) -> x'`, shaped as `x` (see
    /// [`UpdateFn`] for each function's operands).
    Update {
        /// The update.
        f: UpdateFn,
    },
    /// The gradient of the maximum over the middle axis with TensorFlow's rules for ties:
    /// `(x [rows, taps, c], y [rows, c], dy [rows, c]) -> dx` shaped as `x`; the first maximal tap
    /// of each window receives `dy` (`first`, as `MaxPoolGrad`), or every maximal one (as
    /// `MaxPool3DGrad`).
    MaxGrad {
        /// Only the first maximal tap.
        first: bool,
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
            Op::LabelRank { .. } => "label_rank",
            Op::SoftmaxCrossEntropy => "softmax_cross_entropy",
            Op::SoftmaxCrossEntropyGrad => "softmax_cross_entropy_grad",
            Op::BitPack { .. } => "bit_pack",
            Op::BitUnpack { .. } => "bit_unpack",
            Op::ApplyMask => "apply_mask",
            Op::XnorGemm { .. } => "xnor_gemm",
            Op::PlaneGemm { .. } => "plane_gemm",
            Op::PlanePack { .. } => "plane_pack",
            Op::PlaneUnpack { .. } => "plane_unpack",
            Op::Quantize { .. } => "quantize",
            Op::QuantizeGrad { .. } => "quantize_grad",
            Op::CustomQuantize { .. } => "custom_quantize",
            Op::CustomQuantizeGrad { .. } => "custom_quantize_grad",
            Op::FakeQuant { .. } => "fake_quant",
            Op::Im2Col { .. } => "im2col",
            Op::Col2Im { .. } => "col2im",
            Op::Random { .. } => "random",
            Op::Fill { .. } => "fill",
            Op::Update { .. } => "update",
            Op::MaxGrad { .. } => "max_grad",
            Op::Assign => "assign",
        }
    }

    /// Number of inputs the op takes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Random { streamed, .. } => usize::from(*streamed),
            Op::Fill { .. } => 0,
            Op::Update { f } => f.arity(),
            Op::BitPack { .. } | Op::BitUnpack { .. } | Op::Im2Col { .. } | Op::Col2Im { .. } => 1,
            Op::PlanePack { .. } | Op::PlaneUnpack { .. } => 1,
            Op::Quantize { f } => 1 + usize::from(f.needs_stat()),
            Op::QuantizeGrad { f } => 2 + usize::from(f.needs_stat()),
            Op::ApplyMask | Op::CustomQuantizeGrad { .. } | Op::PlaneGemm { .. } => 2,
            Op::FakeQuant { .. } => 3,
            Op::XnorGemm { epilogue: Epilogue::Plain, .. } => 2,
            Op::XnorGemm { .. } => 4,
            Op::Unary(_)
            | Op::Reduce { .. }
            | Op::Permute { .. }
            | Op::Broadcast { .. }
            | Op::Window { .. }
            | Op::Reshape { .. }
            | Op::Softmax
            | Op::CustomQuantize { .. } => 1,
            Op::UnaryGrad(_)
            | Op::Binary(_)
            | Op::MatMul { .. }
            | Op::Gather
            | Op::GatherGrad { .. }
            | Op::Take { .. }
            | Op::SoftmaxCrossEntropy
            | Op::LabelRank { .. }
            | Op::Assign => 2,
            Op::SoftmaxCrossEntropyGrad | Op::MaxGrad { .. } => 3,
        }
    }

    /// Output shape and dtype from input shapes and dtypes, or `None` for ops with no output
    /// ([`Op::Assign`]). Every rule violation is an error naming the op and the shapes.
    pub fn infer(&self, inputs: &[(&Shape, DType)]) -> Result<Option<(Shape, DType)>> {
        use ops::*;
        let name = self.name();
        if inputs.len() != self.arity() {
            return Err(Error::invalid(name, "inputs", format!("takes {} inputs, got {}", self.arity(), inputs.len())));
        }
        let a = &Operands { name, inputs };
        let out = match self {
            Op::Unary(_) => elementwise::infer_unary(a),
            Op::UnaryGrad(_) => elementwise::infer_unary_grad(a),
            Op::Binary(_) => elementwise::infer_binary(a),
            Op::Fill { shape, .. } => elementwise::infer_fill(a, shape),
            Op::Reduce { axes, keep_dims, .. } => reduce::infer(axes, *keep_dims, a),
            Op::MatMul { trans_a, trans_b } => gemm::infer(*trans_a, *trans_b, a),
            Op::Permute { perm } => layout::infer_permute(perm, a),
            Op::Broadcast { shape } => layout::infer_broadcast(shape, a),
            Op::Window { offset, shape } => layout::infer_window(offset, shape, a),
            Op::Reshape { shape } => layout::infer_reshape(shape, a),
            Op::Assign => return layout::infer_assign(a).map(|()| None),
            Op::Gather => gather::infer_gather(a),
            Op::Take { shape } => gather::infer_take(shape, a),
            Op::GatherGrad { rows } => gather::infer_gather_grad(*rows, a),
            Op::Softmax => softmax::infer_softmax(a),
            Op::SoftmaxCrossEntropy => softmax::infer_xent(a),
            Op::LabelRank { .. } => ranking::infer(a),
            Op::SoftmaxCrossEntropyGrad => softmax::infer_xent_grad(a),
            Op::BitPack { mode } => bitpack::infer_pack(*mode, a),
            Op::BitUnpack { k, .. } => bitpack::infer_unpack(*k, a),
            Op::ApplyMask => bitpack::infer_apply_mask(a),
            Op::XnorGemm { k, epilogue } => xnor::infer(*k, *epilogue, a),
            Op::PlaneGemm { a_weights, b_weights } => planes::infer(a_weights, b_weights, a),
            Op::PlanePack { encoding, scale } => planes::infer_pack(*encoding, *scale, a),
            Op::PlaneUnpack { encoding, k, scale } => planes::infer_unpack(*encoding, *k, *scale, a),
            Op::Quantize { f } => quantize::infer(*f, false, a),
            Op::QuantizeGrad { f } => quantize::infer(*f, true, a),
            Op::CustomQuantize { .. } => custom_quantize::infer(false, a),
            Op::CustomQuantizeGrad { .. } => custom_quantize::infer(true, a),
            Op::FakeQuant { spec, .. } => fake_quant::infer(*spec, a),
            Op::Im2Col { geom, pad_value } => im2col::infer_im2col(geom, *pad_value, a),
            Op::Col2Im { geom } => im2col::infer_col2im(geom, a),
            Op::Random { dist, shape, streamed, .. } => random::infer(*dist, shape, *streamed, a),
            Op::Update { f } => update::infer(*f, a),
            Op::MaxGrad { .. } => pool::infer(a),
        }?;
        out.0.validate(name)?;
        Ok(Some(out))
    }

    /// Gradients of one node's inputs given the gradient `dy` of its output `y`, appended to
    /// `g`. `None` means "no gradient flows to this input" (integer operands, comparisons).
    pub(crate) fn backward(&self, g: &mut Graph, node: &Node, y: ValueId, dy: ValueId) -> Result<Grads> {
        use ops::*;
        let r = &Grad { node, y, dy };
        let second = || Err(Error::NotDifferentiable { op: self.name(), reason: "second derivatives are not supported".into() });
        match self {
            Op::Unary(u) => elementwise::backward_unary(g, *u, r),
            Op::Binary(b) => elementwise::backward_binary(g, *b, r),
            Op::Fill { .. } => Ok(vec![]),
            Op::Reduce { op, axes, keep_dims } => reduce::backward(g, *op, axes, *keep_dims, r),
            Op::MatMul { trans_a, trans_b } => gemm::backward(g, *trans_a, *trans_b, r),
            Op::Permute { perm } => layout::backward_permute(g, perm, r),
            Op::Broadcast { .. } => layout::backward_broadcast(g, r),
            Op::Window { offset, .. } => layout::backward_window(g, offset, r),
            Op::Reshape { .. } => layout::backward_reshape(g, r),
            Op::Assign => Ok(vec![None, None]),
            Op::Gather => gather::backward_gather(g, r),
            Op::Take { .. } => gather::backward_take(g, r),
            Op::GatherGrad { .. } => gather::backward_gather_grad(g, r),
            Op::Softmax => softmax::backward_softmax(g, r),
            Op::SoftmaxCrossEntropy => softmax::backward_xent(g, r),
            Op::LabelRank { .. } => ranking::backward(),
            Op::BitPack { .. } | Op::BitUnpack { .. } | Op::XnorGemm { .. } | Op::PlaneGemm { .. } => bitpack::no_gradient(self.name()),
            Op::PlanePack { .. } | Op::PlaneUnpack { .. } => bitpack::no_gradient(self.name()),
            Op::ApplyMask => bitpack::backward_apply_mask(g, r),
            Op::Quantize { f } => quantize::backward(g, *f, r),
            Op::CustomQuantize { f } => custom_quantize::backward(g, f, r),
            Op::FakeQuant { spec, part } => fake_quant::backward(g, *spec, *part, r),
            Op::Im2Col { geom, .. } => im2col::backward_im2col(g, geom, r),
            Op::Col2Im { geom } => im2col::backward_col2im(g, geom, r),
            Op::Random { streamed, .. } => Ok(vec![None; usize::from(*streamed)]),
            Op::Update { .. } => update::backward(self.name()),
            Op::MaxGrad { .. } => pool::backward(self.name()),
            Op::UnaryGrad(_) | Op::SoftmaxCrossEntropyGrad | Op::QuantizeGrad { .. } | Op::CustomQuantizeGrad { .. } => second(),
        }
    }

    /// Evaluates the op on host data with the CPU reference, producing `out_shape`.
    /// [`Op::Assign`] is executed by the plan, which owns the variables.
    pub fn eval(&self, inputs: &[(&Shape, &TensorData)], out_shape: &Shape) -> Result<TensorData> {
        use ops::*;
        let h = &Host { name: self.name(), inputs, out_shape };
        match self {
            Op::Unary(u) => elementwise::eval_unary(*u, h),
            Op::UnaryGrad(u) => elementwise::eval_unary_grad(*u, h),
            Op::Binary(b) => elementwise::eval_binary(*b, h),
            Op::Fill { value, shape } => elementwise::eval_fill(*value, shape),
            Op::Reduce { op, axes, .. } => reduce::eval(*op, axes, h),
            Op::MatMul { trans_a, trans_b } => gemm::eval(*trans_a, *trans_b, h),
            Op::Permute { perm } => layout::eval_permute(perm, h),
            Op::Broadcast { shape } => layout::eval_broadcast(shape, h),
            Op::Window { offset, shape } => layout::eval_window(offset, shape, h),
            Op::Reshape { .. } => layout::eval_reshape(h),
            Op::Assign => Err(Error::invalid("eval", "op", "assign is executed by the plan")),
            Op::Gather => gather::eval_gather(h),
            Op::Take { .. } => gather::eval_take(h),
            Op::GatherGrad { rows } => gather::eval_gather_grad(*rows, h),
            Op::Softmax => softmax::eval_softmax(h),
            Op::SoftmaxCrossEntropy => softmax::eval_xent(h),
            Op::LabelRank { first_ties } => ranking::eval(*first_ties, h),
            Op::SoftmaxCrossEntropyGrad => softmax::eval_xent_grad(h),
            Op::BitPack { mode } => bitpack::eval_pack(*mode, h),
            Op::BitUnpack { k, mode } => bitpack::eval_unpack(*k, *mode, h),
            Op::ApplyMask => bitpack::eval_apply_mask(h),
            Op::XnorGemm { k, epilogue } => xnor::eval(*k, *epilogue, h),
            Op::PlaneGemm { a_weights, b_weights } => planes::eval(a_weights, b_weights, h),
            Op::PlanePack { encoding, scale } => planes::eval_pack(*encoding, *scale, h),
            Op::PlaneUnpack { encoding, k, scale } => planes::eval_unpack(*encoding, *k, *scale, h),
            Op::Quantize { f } => quantize::eval(*f, h),
            Op::QuantizeGrad { f } => quantize::eval_grad(*f, h),
            Op::CustomQuantize { f } => custom_quantize::eval(f, h),
            Op::CustomQuantizeGrad { f } => custom_quantize::eval_grad(f, h),
            Op::FakeQuant { spec, part } => fake_quant::eval(*spec, *part, h),
            Op::Im2Col { geom, pad_value } => im2col::eval_im2col(geom, *pad_value, h),
            Op::Col2Im { geom } => im2col::eval_col2im(geom, h),
            Op::Random { dist, seed, shape, streamed } => random::eval(*dist, *seed, shape, *streamed, h),
            Op::Update { f } => update::eval(*f, h),
            Op::MaxGrad { first } => pool::eval(*first, h),
        }
    }

    /// Records the op as a GPU dispatch or buffer copy over the operands in `d`.
    pub(crate) fn record(&self, d: &Gpu) -> Result<Step> {
        use ops::*;
        match self {
            Op::Unary(u) => elementwise::record_unary(*u, d),
            Op::UnaryGrad(u) => elementwise::record_unary_grad(*u, d),
            Op::Binary(b) => elementwise::record_binary(*b, d),
            Op::Fill { value, shape } => elementwise::record_fill(*value, shape, d),
            Op::Reduce { op, axes, .. } => reduce::record(*op, axes, d),
            Op::MatMul { trans_a, trans_b } => gemm::record(*trans_a, *trans_b, d),
            Op::Permute { perm } => layout::record_permute(perm, d),
            Op::Broadcast { shape } => layout::record_broadcast(shape, d),
            Op::Window { offset, shape } => layout::record_window(offset, shape, d),
            Op::Reshape { .. } => layout::record_reshape(d),
            Op::Assign => layout::record_assign(d),
            Op::Gather => gather::record_gather(d),
            Op::Take { shape } => gather::record_take(shape, d),
            Op::GatherGrad { rows } => gather::record_gather_grad(*rows, d),
            Op::Softmax => softmax::record_softmax(d),
            Op::SoftmaxCrossEntropy => softmax::record_xent(d),
            Op::LabelRank { first_ties } => ranking::record(*first_ties, d),
            Op::SoftmaxCrossEntropyGrad => softmax::record_xent_grad(d),
            Op::BitPack { mode } => bitpack::record_pack(*mode, d),
            Op::BitUnpack { k, mode } => bitpack::record_unpack(*k, *mode, d),
            Op::ApplyMask => bitpack::record_apply_mask(d),
            Op::XnorGemm { k, epilogue } => xnor::record(*k, *epilogue, d),
            Op::PlaneGemm { a_weights, b_weights } => planes::record(a_weights, b_weights, d),
            Op::PlanePack { encoding, scale } => planes::record_pack(*encoding, *scale, d),
            Op::PlaneUnpack { encoding, k, scale } => planes::record_unpack(*encoding, *k, *scale, d),
            Op::Quantize { f } => quantize::record(*f, d),
            Op::QuantizeGrad { f } => quantize::record_grad(*f, d),
            Op::CustomQuantize { f } => custom_quantize::record(f, d),
            Op::CustomQuantizeGrad { f } => custom_quantize::record_grad(f, d),
            Op::FakeQuant { spec, part } => fake_quant::record(*spec, *part, d),
            Op::Im2Col { geom, pad_value } => im2col::record_im2col(geom, *pad_value, d),
            Op::Col2Im { geom } => im2col::record_col2im(geom, d),
            Op::Random { dist, seed, shape, streamed } => random::record(*dist, *seed, shape, *streamed, d),
            Op::Update { f } => update::record(*f, d),
            Op::MaxGrad { first } => pool::record(*first, d),
        }
    }
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
