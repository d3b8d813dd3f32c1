//! Binarized products that run forward on packed bits and train with straight-through
//! gradients, saving only 1-bit state.
//!
//! The forward packs the signs of the operands (bit 1 = -1) and multiplies them with the
//! XNOR-popcount GEMM. For the backward it keeps, per operand, the packed signs and a packed
//! straight-through mask (1 where |v| <= clip): 2 bits per element instead of a 32-bit float. The
//! gradient rule expands them inside the backward kernels: float GEMMs against the unpacked ±1
//! values, then `apply_mask`.

use super::op::{words_for, Epilogue, Op, PackMode};
use super::{Graph, ValueId};
use crate::error::{Error, Result};
use crate::tensor::DType;

/// Packed signs of `x` and, with a clip value, its packed straight-through mask.
pub(crate) struct PackedSigns {
    /// Sign bits along the last axis.
    pub bits: ValueId,
    /// Mask bits (|x| <= clip), or `None` for an identity gradient.
    pub mask: Option<ValueId>,
}

impl Graph {
    pub(crate) fn pack_signs(&mut self, x: ValueId, clip: Option<f32>) -> Result<PackedSigns> {
        let bits = self.bit_pack(x, PackMode::Sign)?;
        let mask = clip.map(|c| self.bit_pack(x, PackMode::ClipMask(c))).transpose()?;
        Ok(PackedSigns { bits, mask })
    }

    /// `g` where the straight-through mask passes it (all of it without a mask).
    pub(crate) fn straight_through(&mut self, packed: &PackedSigns, g: ValueId) -> Result<ValueId> {
        match packed.mask {
            Some(m) => self.apply_mask(m, g),
            None => Ok(g),
        }
    }

    /// `sign(x) @ sign(w)` for `x [.., M, K]` and a Keras-layout kernel `w [K, N]` (or one kernel
    /// per batch entry, `[.., K, N]`), computed on
    /// packed bits, with straight-through gradients: `dx = (dy @ sign(w)^T) * [|x| <= input_clip]`
    /// and `dw = (sign(x)^T @ dy) * [|w| <= kernel_clip]` (a `None` clip passes the gradient
    /// everywhere), the SteSign rule of Larq. Between forward and backward only packed signs and
    /// masks are kept.
    ///
    /// `w` may instead be the kernel's packed signs, `u32 [N, words(K)]` (a packed export's
    /// layout, [`crate::layers::packed_kernel_shape`]): they are read as they are, and get no
    /// gradient.
    pub fn binary_matmul(&mut self, x: ValueId, w: ValueId, input_clip: Option<f32>, kernel_clip: Option<f32>) -> Result<ValueId> {
        let (xs, ws) = (self.value(x).shape.clone(), self.value(w).shape.clone());
        let k = *xs.dims().last().ok_or_else(|| Error::invalid("binary_matmul", "x", "needs rank >= 2"))?;
        if self.value(w).dtype == DType::U32 {
            if xs.rank() < 2 || !matches!(ws.dims(), [_, kw] if *kw == words_for(k)) {
                return Err(Error::shapes(
                    "binary_matmul",
                    xs.dims(),
                    ws.dims(),
                    "packed kernel needs x [.., M, K] and bits [N, words(K)]",
                ));
            }
            let px = self.pack_signs(x, input_clip)?;
            let y = self.push1(Op::XnorGemm { k, epilogue: Epilogue::Plain }, &[px.bits, w])?;
            self.override_gradient(y, &[x, w], move |g, dy| {
                let w_signs = g.bit_unpack(w, k, PackMode::Sign)?; // [N, K]
                let dx = g.matmul(dy, w_signs)?;
                Ok(vec![Some(g.straight_through(&px, dx)?), None])
            })?;
            return Ok(y);
        }
        let rw = ws.rank();
        let batched = rw > 2;
        if xs.rank() < 2 || rw < 2 || ws.dims()[rw - 2] != k || (batched && ws.dims()[..rw - 2] != xs.dims()[..xs.rank() - 2]) {
            return Err(Error::shapes(
                "binary_matmul",
                xs.dims(),
                ws.dims(),
                "needs x [.., M, K] and a kernel [K, N], or [.., K, N] with x's batch axes",
            ));
        }
        let mut wt_shape = ws.dims().to_vec();
        wt_shape.swap(rw - 2, rw - 1);
        let px = self.pack_signs(x, input_clip)?;
        let wt = self.transpose(w)?;
        let pw = self.pack_signs(wt, kernel_clip)?;
        let y = self.push1(Op::XnorGemm { k, epilogue: Epilogue::Plain }, &[px.bits, pw.bits])?;
        self.override_gradient(y, &[x, w], move |g, dy| {
            let w_signs = g.bit_unpack(pw.bits, k, PackMode::Sign)?; // [N, K]
            let dx = g.matmul(dy, w_signs)?;
            let dx = g.straight_through(&px, dx)?;
            let x_signs = g.bit_unpack(px.bits, k, PackMode::Sign)?; // [.., M, K]
            let dwt = g.matmul_t(dy, x_signs, true, false)?; // [.., N, K]
            let dwt = g.sum_to(dwt, &crate::Shape::new(wt_shape.clone()))?;
            let dwt = g.straight_through(&pw, dwt)?;
            Ok(vec![Some(dx), Some(g.transpose(dwt)?)])
        })?;
        Ok(y)
    }

    /// Larq's `sign(w)` (+1 at 0) in f32 through its sign bits packed along the last axis, with
    /// SteSign's gradient `dw = ds * [|w| <= clip]` (all of it without a clip). A product that
    /// reads it (through reshapes) binds the bits instead on the GPU when the last axis is a
    /// multiple of 32 (`runtime::fuse::sign_products`): a float-input layer with a binary kernel
    /// (the first layer of most BNNs) reads 32x fewer kernel bytes. The same values as the
    /// quantizer's.
    pub fn packed_sign(&mut self, w: ValueId, clip: Option<f32>) -> Result<ValueId> {
        let n = *self.value(w).shape.dims().last().ok_or_else(|| Error::invalid("packed_sign", "w", "needs rank >= 1"))?;
        let pw = self.pack_signs(w, clip)?;
        let signs = self.bit_unpack(pw.bits, n, PackMode::Sign)?;
        self.override_gradient(signs, &[w], move |g, ds| Ok(vec![Some(g.straight_through(&pw, ds)?)]))?;
        Ok(signs)
    }

    /// The ±1 output `q` of a sign quantizer applied to `w` (ApproxSign, SwishSign: Larq's
    /// `sign`, +1 at 0) read through `w`'s sign bits, as [`Graph::packed_sign`] does for
    /// SteSign: the same values, so a product reads the bits on the GPU, and the gradient goes
    /// to `q` unchanged, from where the quantizer's own pseudo-gradient takes it to `w`.
    pub fn sign_bits_of(&mut self, w: ValueId, q: ValueId) -> Result<ValueId> {
        let n = *self.value(w).shape.dims().last().ok_or_else(|| Error::invalid("sign_bits_of", "w", "needs rank >= 1"))?;
        if self.value(q).shape != self.value(w).shape {
            return Err(Error::shapes("sign_bits_of", self.value(w).shape.dims(), self.value(q).shape.dims(), "q must be w's shape"));
        }
        let bits = self.bit_pack(w, PackMode::Sign)?;
        let signs = self.bit_unpack(bits, n, PackMode::Sign)?;
        self.override_gradient(signs, &[q], |_, ds| Ok(vec![Some(ds)]))?;
        Ok(signs)
    }
}
