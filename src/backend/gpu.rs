//! The GPU backend: records each op as WGSL dispatches or buffer copies.

use crate::graph::op::{broadcast_strides, MatMulDims, XnorDims};
use crate::graph::{Op, QuantFn};
use crate::kernels::{
    bitpack, custom_quantize, elementwise, fake_quant, gather, gemm, im2col, layout, quantize, random, reduce, softmax, xnor_gemm,
    BufferView, Dispatch,
};
use crate::tensor::{DType, Shape};
use crate::Result;

/// One unit of recorded GPU work.
#[derive(Clone, Debug)]
pub enum Step {
    /// A compute dispatch.
    Dispatch(Dispatch),
    /// A whole-value buffer copy (reshape, assign). Source and destination are always different
    /// buffers: the planner never gives two simultaneously live values the same buffer.
    Copy {
        /// Source.
        src: BufferView,
        /// Destination.
        dst: BufferView,
    },
}

/// What the adapter lets the recorder choose.
#[derive(Clone, Copy, Debug, Default)]
pub struct Caps {
    /// Subgroup kernel variants may be used.
    pub subgroups: bool,
}

/// Records `op` reading `inputs` (with shapes `shapes` and types `dtypes`) and writing `out`.
pub fn record(
    op: &Op,
    caps: Caps,
    shapes: &[&Shape],
    dtypes: &[DType],
    inputs: &[BufferView],
    out: Option<&BufferView>,
    out_shape: Option<&Shape>,
) -> Result<Step> {
    let o = || out.expect("ops other than assign have an output");
    let os = || out_shape.expect("ops other than assign have an output shape");
    let x = |i: usize| &inputs[i];
    let d = match op {
        Op::Unary(u) => elementwise::unary(*u, shapes[0].numel(), x(0), o()),
        Op::UnaryGrad(u) => elementwise::unary_grad(*u, shapes[0].numel(), x(0), x(1), o()),
        Op::Binary(b) => {
            let (sa, sb) = (broadcast_strides(shapes[0], os()), broadcast_strides(shapes[1], os()));
            elementwise::binary(*b, os().dims(), &sa, &sb, x(0), x(1), o())
        }
        Op::Reduce { op: r, axes, .. } => reduce::reduce(*r, shapes[0].dims(), axes, x(0), o()),
        Op::MatMul { trans_a, trans_b } => {
            let d = MatMulDims::new(shapes[0], shapes[1], *trans_a, *trans_b)?;
            gemm::matmul(&d, *trans_a, *trans_b, x(0), x(1), o())
        }
        Op::Permute { perm } => {
            let xs = shapes[0].strides();
            let strides: Vec<usize> = perm.iter().map(|&p| xs[p]).collect();
            layout::strided_copy(os().dims(), &strides, x(0), o())
        }
        Op::Broadcast { shape } => layout::strided_copy(shape.dims(), &broadcast_strides(shapes[0], shape), x(0), o()),
        Op::Window { offset, shape } => layout::window(shapes[0].dims(), offset, shape.dims(), x(0), o()),
        Op::Reshape { .. } => return Ok(Step::Copy { src: x(0).clone(), dst: o().clone() }),
        Op::Gather => {
            let rows = shapes[0].dims()[0];
            gather::gather(shapes[1].numel(), rows, shapes[0].numel() / rows, x(0), x(1), o())
        }
        Op::Take { shape } => gather::take(shape.numel(), shapes[0].numel(), x(0), x(1), o()),
        Op::GatherGrad { rows } => {
            let m = shapes[0].numel();
            gather::gather_grad(m, *rows, shapes[1].numel() / m, x(0), x(1), o())
        }
        Op::Softmax => {
            let cols = *shapes[0].dims().last().expect("rank >= 1");
            softmax::softmax(shapes[0].numel() / cols, cols, x(0), o())
        }
        Op::SoftmaxCrossEntropy => softmax::xent(shapes[0].dims()[0], shapes[0].dims()[1], x(0), x(1), o()),
        Op::SoftmaxCrossEntropyGrad => softmax::xent_grad(shapes[0].dims()[0], shapes[0].dims()[1], x(0), x(1), x(2), o()),
        Op::BitPack { mode } => {
            let k = *shapes[0].dims().last().expect("rank >= 1");
            bitpack::pack(shapes[0].numel() / k, k, *mode, x(0), o())
        }
        Op::BitUnpack { k, mode } => bitpack::unpack(os().numel() / k, *k, *mode, x(0), o()),
        Op::ApplyMask => {
            let k = *shapes[1].dims().last().expect("rank >= 1");
            bitpack::masked(shapes[1].numel() / k, k, x(0), x(1), o())
        }
        Op::XnorGemm { k, epilogue } => {
            let d = XnorDims::new(shapes[0], shapes[1], *k)?;
            let scale_bias = (inputs.len() == 4).then(|| (x(2), x(3)));
            xnor_gemm::xnor_gemm(&d, *epilogue, xnor_gemm::Operands { a: x(0), b: x(1), scale_bias, out: o() }, caps.subgroups)
        }
        Op::Quantize { f: QuantFn::Custom { id } } => custom_quantize::quantize(custom_shader(*id)?, shapes[0].numel(), x(0), o()),
        Op::QuantizeGrad { f: QuantFn::Custom { id } } => {
            custom_quantize::quantize_grad(custom_shader(*id)?, shapes[0].numel(), x(0), x(1), o())
        }
        Op::Quantize { f } => quantize::quantize(*f, shapes[0].numel(), x(0), f.needs_stat().then(|| x(1)), o()),
        Op::QuantizeGrad { f } => {
            quantize::quantize_grad(*f, shapes[0].numel(), x(0), f.needs_stat().then(|| x(1)), x(inputs.len() - 1), o())
        }
        Op::FakeQuant { spec, part } => fake_quant::fake_quant(*spec, *part, shapes[0].numel(), shapes[1].numel(), [x(0), x(1), x(2)], o()),
        Op::Im2Col { geom, pad_value } => {
            // Packed images pad with +1, which is the all-zero word.
            let pad_word = if dtypes[0] == DType::U32 { 0 } else { pad_value.to_bits() };
            im2col::im2col(geom, pad_word, x(0), o())
        }
        Op::Col2Im { geom } => im2col::col2im(geom, x(0), o()),
        Op::Random { dist, seed, shape, streamed: false } => random::random(*dist, *seed, shape.numel(), o()),
        Op::Random { dist, seed, shape, streamed: true } => random::random_streamed(*dist, *seed, shape.numel(), x(0), o()),
        Op::Fill { value, shape } => elementwise::fill(*value, shape.numel(), o()),
        Op::Assign => return Ok(Step::Copy { src: x(1).clone(), dst: x(0).clone() }),
    };
    Ok(Step::Dispatch(d))
}

fn custom_shader(id: u32) -> Result<&'static str> {
    crate::quantizers::custom::by_id(id)
        .map(|q| q.shader)
        .ok_or_else(|| crate::Error::Unknown { kind: "custom quantizer id", name: id.to_string() })
}
