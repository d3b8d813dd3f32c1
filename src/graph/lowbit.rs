//! Products of discrete quantized values on bit planes: every built-in quantizer whose forward
//! takes a few values (±1, ±alpha per output channel, {0, 1}, ternary, DoReFa's k-bit levels)
//! is an integer of an [`Encoding`] divided by a scale, so a product of two such operands is
//! the exact integer plane product ([`Graph::plane_gemm`]) times one constant (and the channel
//! scale). docs/ENCODINGS.md lists the encodings.
//!
//! The gradients stay the quantizers' own: the product's rule is the float product's (`dx = dy
//! w^T`, `dw = x^T dy` of the quantized values), with the input's values read back from its
//! planes, so between forward and backward an input keeps its planes, not its f32 values; the
//! quantizer's straight-through window, where its pseudo-gradient is one, is kept as a packed
//! mask ([`Graph::straight_through_packed`]).

use super::op::{Encoding, Op, PackMode, QuantFn};
use super::{Graph, Source, ValueId};
use crate::error::{Error, Result};
use crate::tensor::Shape;

/// What a quantizer's values are as integers: `q = v / scale` for `v` of `encoding` (times a
/// channel scale for MagnitudeAwareSign).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LowBit {
    /// How the integers are held.
    pub encoding: Encoding,
    /// Integers per unit value (DoReFa's `2^k - 1`; 1 otherwise).
    pub scale: f32,
}

impl LowBit {
    /// The integer form of a quantizer function's values, when they are discrete and fit the
    /// kernels' planes (DoReFa up to 8 bits for activations, 7 for weights).
    pub fn of(f: QuantFn) -> Option<LowBit> {
        let form = |encoding, scale| Some(LowBit { encoding, scale });
        match f {
            QuantFn::SteSign { .. }
            | QuantFn::ApproxSign
            | QuantFn::SwishSign { .. }
            | QuantFn::ScaledSign { .. }
            | QuantFn::SteTern { .. } => form(Encoding::Signed, 1.0),
            QuantFn::SteHeaviside { .. } => form(Encoding::Unsigned { bits: 1 }, 1.0),
            QuantFn::DoReFaActivations { levels } if levels <= 255 => {
                form(Encoding::Unsigned { bits: (levels + 1).trailing_zeros() }, levels as f32)
            }
            QuantFn::DoReFaWeights { levels } if levels <= 127 => {
                form(Encoding::Odd { bits: (levels + 1).trailing_zeros() }, levels as f32)
            }
            _ => None,
        }
    }

    /// True when `value` (a value after quantization, such as a convolution's pad value) is one
    /// of the encoding's.
    pub fn holds(self, value: f32) -> bool {
        let v = value * self.scale;
        match self.encoding {
            Encoding::Signed => [-1.0, 0.0, 1.0].contains(&value),
            e => v == v.round() && v.abs() < 65536.0 && e.holds(v as i32),
        }
    }
}

/// A quantized operand of a low-bit product.
#[derive(Clone, Copy, Debug)]
pub struct Quantized {
    /// The quantizer's output (f32).
    pub q: ValueId,
    /// Its integer form.
    pub form: LowBit,
    /// MagnitudeAwareSign's per-channel scale (`q = scale * sign`), broadcast over the
    /// product's output; `None` for the others.
    pub channel_scale: Option<ValueId>,
    /// What the values are: `±1`, `±alpha`, `{0,1}`, `ternary`, `k-bit`.
    pub values: &'static str,
}

impl Quantized {
    /// The same operand through a reshape or permutation of `q` (the form and channel scale
    /// stay).
    pub fn with(self, q: ValueId) -> Quantized {
        Quantized { q, ..self }
    }
}

impl LowBit {
    /// What the values of `f` (one [`LowBit::of`] takes) are, for summaries: `±1`, `±alpha`,
    /// `ternary`, `{0,1}`, `k-bit`.
    pub fn values(f: QuantFn) -> &'static str {
        const BITS: [&str; 8] = ["1-bit", "2-bit", "3-bit", "4-bit", "5-bit", "6-bit", "7-bit", "8-bit"];
        match f {
            QuantFn::ScaledSign { .. } => "±alpha",
            QuantFn::SteTern { .. } => "ternary",
            QuantFn::SteHeaviside { .. } => "{0,1}",
            QuantFn::DoReFaActivations { levels } | QuantFn::DoReFaWeights { levels } => {
                BITS[((levels + 1).trailing_zeros() as usize).clamp(1, 8) - 1]
            }
            _ => "±1",
        }
    }
}

impl Graph {
    /// The integer form of `q` when a built-in quantizer function computed it (read from the
    /// node that did); `None` for float values, NoOp, custom and graph-op quantizers.
    /// MagnitudeAwareSign's scale is its statistic operand.
    pub fn quantized(&self, q: ValueId) -> Option<Quantized> {
        if let Some(d) = self.quantized.get(&q) {
            return Some(*d);
        }
        let Source::Node(i) = self.value(q).source else { return None };
        let node = &self.nodes[i];
        let Op::Quantize { f } = node.op else { return None };
        let form = LowBit::of(f)?;
        let channel_scale = matches!(f, QuantFn::ScaledSign { .. }).then(|| node.inputs[1]);
        Some(Quantized { q, form, channel_scale, values: LowBit::values(f) })
    }

    /// Declares that the f32 value `d.q` holds discrete values of `d.form` (times
    /// `d.channel_scale`), for quantizers made of graph ops (Larq Zoo's `xnor_weight_scale`),
    /// so that products of it run on bit planes. The values must be what the form says: a
    /// signed form packs `sign(q)`, any other `round(q * scale)`.
    pub fn declare_quantized(&mut self, d: Quantized) -> Result<()> {
        self.check(d.q)?;
        if let Some(s) = d.channel_scale {
            let n = *self.value(d.q).shape.dims().last().unwrap_or(&1);
            let sn = self.check(s)?.shape.numel();
            if !(sn == n || sn == 1) || d.form.encoding != Encoding::Signed {
                return Err(Error::invalid("declare_quantized", "channel_scale", format!("{sn} scales for {n} channels of a signed form")));
            }
        }
        d.form.encoding.check("declare_quantized")?;
        self.quantized.insert(d.q, d);
        Ok(())
    }

    /// Replaces the pseudo-gradient of a quantizer's output `q = f(x)` by the same
    /// straight-through window read from a packed mask of `x` (1 bit per element) where `f`'s
    /// pseudo-gradient is such a window (SteSign, SteHeaviside, SteTern, DoReFa's activations),
    /// or by the identity where it has no window, so the backward does not keep `x` in f32.
    /// Other functions keep their rule (which reads `x`). Returns the bits per element of `x`
    /// the pseudo-gradient keeps: 1 (a mask), 0 (identity) or 32 (`x` itself).
    pub fn straight_through_packed(&mut self, q: ValueId) -> Result<u32> {
        let Source::Node(i) = self.value(q).source else { return Ok(32) };
        let node = self.nodes[i].clone();
        let Op::Quantize { f } = node.op else { return Ok(32) };
        let window = match f {
            QuantFn::SteSign { clip } | QuantFn::SteHeaviside { clip } | QuantFn::SteTern { clip, .. } => clip.map(PackMode::ClipMask),
            QuantFn::DoReFaActivations { .. } => Some(PackMode::UnitMask),
            _ => return Ok(32),
        };
        let x = node.inputs[0];
        let mask = window.map(|mode| self.bit_pack(x, mode)).transpose()?;
        self.override_gradient(q, &[x], move |g, dq| {
            Ok(vec![Some(match mask {
                Some(m) => g.apply_mask(m, dq)?,
                None => dq,
            })])
        })?;
        Ok(u32::from(window.is_some()))
    }

    /// `x.q @ w.q` on bit planes for `x [.., M, K]` and `w [K, N]` (or `[B, M, K]` and
    /// `[B, K, N]`): both packed into their encodings' planes, the exact integer product
    /// ([`Graph::plane_gemm`]) divided by both scales, times `w`'s channel scale. Equal to the
    /// f32 product of the quantized values up to its rounding (the integers are exact). The
    /// gradient is the float product's, `dx = dy w^T` and `dw = x^T dy`, with `x`'s values read
    /// back from its planes: its f32 values are not kept for the backward.
    pub fn lowbit_matmul(&mut self, x: &Quantized, w: &Quantized) -> Result<ValueId> {
        let op = "lowbit_matmul";
        if x.channel_scale.is_some() {
            return Err(Error::invalid(op, "x", "a channel scale (MagnitudeAwareSign) is taken on the kernel side only"));
        }
        let (xs, ws) = (self.value(x.q).shape.clone(), self.value(w.q).shape.clone());
        let (rx, rw) = (xs.rank(), ws.rank());
        let batched = rw == 3;
        let fits = rx >= 2 && (rw == 2 || (rw == 3 && rx == 3 && xs.dims()[0] == ws.dims()[0])) && ws.dims()[rw - 2] == xs.dims()[rx - 1];
        if !fits {
            return Err(Error::shapes(op, xs.dims(), ws.dims(), "needs x [.., M, K] and w [K, N], or x [B, M, K] and w [B, K, N]"));
        }
        let (k, n) = (ws.dims()[rw - 2], ws.dims()[rw - 1]);
        let (ex, ew) = (x.form, w.form);
        let rows = xs.numel() / k;
        let xm = if batched { x.q } else { self.reshape(x.q, [rows, k])? };
        let pa = self.plane_pack(xm, ex.encoding, ex.scale)?;
        let wt = self.transpose(w.q)?;
        let pb = self.plane_pack(wt, ew.encoding, ew.scale)?;
        let mut y = self.plane_gemm(pa, pb, &ex.encoding.weights(), &ew.encoding.weights())?;
        let unit = 1.0 / (ex.scale * ew.scale);
        if unit != 1.0 {
            y = self.scale(y, unit)?;
        }
        if let Some(s) = w.channel_scale {
            y = self.mul(y, s)?;
        }
        let mut out = xs.dims().to_vec();
        *out.last_mut().expect("rank >= 2") = n;
        let y = self.reshape(y, Shape::new(out))?;
        let (wq, ym) = (w.q, self.value(xm).shape.clone());
        self.override_gradient(y, &[x.q, w.q], move |g, dy| {
            let dym = if batched { dy } else { g.reshape(dy, [rows, n])? };
            let dx = g.matmul_t(dym, wq, false, true)?;
            let dx = g.reshape(dx, xs.clone())?;
            let xv = g.plane_unpack(pa, ex.encoding, k, ex.scale)?;
            let xv = g.reshape(xv, ym.clone())?;
            let dw = g.matmul_t(xv, dym, true, false)?;
            Ok(vec![Some(dx), Some(dw)])
        })?;
        Ok(y)
    }
}
