//! Convolution geometry (Keras padding rules) and the convolutions built from im2col, col2im
//! and matrix products: float, binary (packed XNOR), grouped/depthwise, transposed and locally
//! connected, in 1, 2 or 3 spatial dimensions, channels-last or channels-first.

use super::binary::PackedSigns;
use super::op::{words_for, Epilogue, Op, PackMode};
use super::{Graph, Quantized, ValueId};
use crate::error::{Error, Result};
use crate::tensor::{checked_size, DType, Shape};

/// Keras padding modes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding.
    Valid,
    /// Output size ceil(in / stride); total padding max((out-1)*s + (k-1)*d + 1 - in, 0), the
    /// start gets total / 2 and the end the rest.
    Same,
    /// 1-D only: (k-1)*d zeros before, none after.
    Causal,
    /// Explicit (begin, end) per spatial axis.
    Explicit(Vec<(usize, usize)>),
}

impl Padding {
    /// By Keras name: `valid`, `same` or `causal` (any case, as Keras lowers it).
    pub fn from_name(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "valid" => Ok(Padding::Valid),
            "same" => Ok(Padding::Same),
            "causal" => Ok(Padding::Causal),
            _ => Err(Error::unknown("padding", name, ["valid", "same", "causal"])),
        }
    }
}

/// Where the channel axis is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataFormat {
    /// `[N, spatial..., C]`
    ChannelsLast,
    /// `[N, C, spatial...]`
    ChannelsFirst,
}

impl DataFormat {
    /// By Keras name: `channels_last` or `channels_first` (any case, as Keras lowers it).
    pub fn from_name(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "channels_last" => Ok(DataFormat::ChannelsLast),
            "channels_first" => Ok(DataFormat::ChannelsFirst),
            _ => Err(Error::unknown("data_format", name, ["channels_last", "channels_first"])),
        }
    }
}

/// Everything im2col and col2im need to know about one convolution.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeometry {
    /// Batch size.
    pub batch: usize,
    /// Input channels (for packed input: words per pixel).
    pub channels: usize,
    /// Input spatial sizes (1 to 3 axes).
    pub input: Vec<usize>,
    /// Kernel sizes.
    pub kernel: Vec<usize>,
    /// Strides.
    pub strides: Vec<usize>,
    /// Dilation rates.
    pub dilation: Vec<usize>,
    /// Padding before each axis.
    pub pad_begin: Vec<usize>,
    /// Output spatial sizes.
    pub output: Vec<usize>,
    /// Layout of the image tensor.
    pub format: DataFormat,
}

/// The span `(kernel - 1) * dilation + 1` a dilated kernel of `kernel` taps covers (`kernel` at
/// least 1), or `None` when it overflows.
pub fn dilated_size(kernel: usize, dilation: usize) -> Option<usize> {
    (kernel - 1).checked_mul(dilation).and_then(|e| e.checked_add(1))
}

impl ConvGeometry {
    /// The geometry of a convolution of an image of shape `image` (`[N, spatial..., C]` or
    /// `[N, C, spatial...]`) with the given kernel sizes, strides, dilation and padding.
    pub fn new(
        image: &Shape,
        kernel: &[usize],
        strides: &[usize],
        dilation: &[usize],
        padding: &Padding,
        format: DataFormat,
    ) -> Result<Self> {
        let op = "conv";
        let r = kernel.len();
        if !(1..=3).contains(&r) || image.rank() != r + 2 {
            return Err(Error::invalid(
                op,
                "kernel_size",
                format!("{kernel:?} does not fit an input of shape {image:?} (1 to 3 spatial axes plus batch and channels)"),
            ));
        }
        for (name, v) in [("strides", strides), ("dilation_rate", dilation)] {
            if v.len() != r || v.contains(&0) {
                return Err(Error::invalid(op, name, format!("{v:?} needs {r} positive values")));
            }
        }
        if kernel.contains(&0) {
            return Err(Error::invalid(op, "kernel_size", format!("{kernel:?} has a zero size")));
        }
        let d = image.dims();
        let (channels, input) = match format {
            DataFormat::ChannelsLast => (d[r + 1], d[1..=r].to_vec()),
            DataFormat::ChannelsFirst => (d[1], d[2..].to_vec()),
        };
        let eff =
            (0..r).map(|i| checked_size(op, "dilation_rate", dilated_size(kernel[i], dilation[i]))).collect::<Result<Vec<usize>>>()?;
        let pads: Vec<(usize, usize)> = match padding {
            Padding::Valid => vec![(0, 0); r],
            Padding::Same => (0..r)
                .map(|i| {
                    let out = input[i].div_ceil(strides[i]);
                    let span = (out - 1).checked_mul(strides[i]).and_then(|s| s.checked_add(eff[i]));
                    let total = checked_size(op, "kernel_size", span)?.saturating_sub(input[i]);
                    Ok((total / 2, total - total / 2))
                })
                .collect::<Result<_>>()?,
            Padding::Causal if r == 1 => vec![(eff[0] - 1, 0)],
            Padding::Causal => return Err(Error::invalid(op, "padding", "causal padding exists only for 1-D convolutions")),
            Padding::Explicit(p) if p.len() == r => p.clone(),
            Padding::Explicit(p) => return Err(Error::invalid(op, "padding", format!("{p:?} needs {r} (begin, end) pairs"))),
        };
        let mut output = Vec::with_capacity(r);
        for i in 0..r {
            let padded = checked_size(op, "padding", input[i].checked_add(pads[i].0).and_then(|n| n.checked_add(pads[i].1)))?;
            if padded < eff[i] {
                return Err(Error::invalid(
                    op,
                    "kernel_size",
                    format!("dilated kernel {} exceeds padded input {} on spatial axis {i}", eff[i], padded),
                ));
            }
            output.push((padded - eff[i]) / strides[i] + 1);
        }
        Ok(ConvGeometry {
            batch: d[0],
            channels,
            input,
            kernel: kernel.to_vec(),
            strides: strides.to_vec(),
            dilation: dilation.to_vec(),
            pad_begin: pads.iter().map(|p| p.0).collect(),
            output,
            format,
        })
    }

    /// The same geometry for another channel count (e.g. packed words per pixel).
    pub fn with_channels(&self, channels: usize) -> Self {
        ConvGeometry { channels, ..self.clone() }
    }

    /// Kernel taps (product of kernel sizes).
    pub fn taps(&self) -> usize {
        self.kernel.iter().product()
    }

    /// Output pixels per image.
    pub fn out_pixels(&self) -> usize {
        self.output.iter().product()
    }

    /// The image shape this geometry reads.
    pub fn image_shape(&self) -> Shape {
        let mut d = vec![self.batch];
        match self.format {
            DataFormat::ChannelsLast => {
                d.extend(&self.input);
                d.push(self.channels);
            }
            DataFormat::ChannelsFirst => {
                d.push(self.channels);
                d.extend(&self.input);
            }
        }
        Shape::new(d)
    }

    /// The patch matrix shape: `[N, out..., taps..., C]`.
    pub fn cols_shape(&self) -> Shape {
        let mut d = vec![self.batch];
        d.extend(&self.output);
        d.extend(&self.kernel);
        d.push(self.channels);
        Shape::new(d)
    }

    /// Element strides of the image's batch axis, spatial axes and channel axis.
    pub fn image_strides(&self) -> (usize, Vec<usize>, usize) {
        let s = self.image_shape().strides();
        let r = self.kernel.len();
        match self.format {
            DataFormat::ChannelsLast => (s[0], s[1..=r].to_vec(), s[r + 1]),
            DataFormat::ChannelsFirst => (s[0], s[2..].to_vec(), s[1]),
        }
    }

    /// Whether every patch is one pixel, in the image's own order: a 1x1 kernel, stride 1, no
    /// padding, channels last. Then im2col and col2im are reshapes.
    pub fn is_pointwise(&self) -> bool {
        self.format == DataFormat::ChannelsLast
            && self.kernel.iter().chain(&self.strides).all(|&k| k == 1)
            && self.output == self.input
            && !self.reads_padding()
    }

    /// True when some output reads a padded position.
    pub fn reads_padding(&self) -> bool {
        (0..self.kernel.len()).any(|i| {
            self.pad_begin[i] > 0
                || (self.output[i] - 1) * self.strides[i] + (self.kernel[i] - 1) * self.dilation[i] >= self.input[i] + self.pad_begin[i]
        })
    }

    /// The input coordinate read by output coordinate `o` through kernel tap `t` on axis `i`,
    /// or `None` where that falls in the padding.
    pub fn source(&self, i: usize, o: usize, t: usize) -> Option<usize> {
        (o * self.strides[i] + t * self.dilation[i]).checked_sub(self.pad_begin[i]).filter(|&x| x < self.input[i])
    }
}

/// A float or binary convolution's options besides its geometry.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvOptions {
    /// Kernel sizes.
    pub kernel: Vec<usize>,
    /// Strides.
    pub strides: Vec<usize>,
    /// Dilation rates.
    pub dilation: Vec<usize>,
    /// Padding mode.
    pub padding: Padding,
    /// Image layout (input and output).
    pub format: DataFormat,
    /// Channel groups (1: ordinary; C: depthwise).
    pub groups: usize,
}

impl ConvOptions {
    /// Stride 1, dilation 1, valid padding, channels last, one group.
    pub fn new(kernel: &[usize]) -> Self {
        let r = kernel.len();
        ConvOptions {
            kernel: kernel.to_vec(),
            strides: vec![1; r],
            dilation: vec![1; r],
            padding: Padding::Valid,
            format: DataFormat::ChannelsLast,
            groups: 1,
        }
    }
}

impl Graph {
    /// Patches of an image as rows: `[N, out..., taps..., C]`; padded positions hold `pad_value`
    /// (f32 input) or +1 (packed input, whose padding must be 1).
    pub fn im2col(&mut self, image: ValueId, geom: &ConvGeometry, pad_value: f32) -> Result<ValueId> {
        if geom.is_pointwise() && self.value(image).shape == geom.image_shape() {
            // Each patch is its pixel: the image already is the patch matrix.
            return self.reshape(image, geom.cols_shape());
        }
        self.push1(Op::Im2Col { geom: geom.clone(), pad_value }, &[image])
    }

    /// Sums patch rows back into an image (the adjoint of [`Graph::im2col`]).
    pub fn col2im(&mut self, cols: ValueId, geom: &ConvGeometry) -> Result<ValueId> {
        if geom.is_pointwise() && self.value(cols).shape == geom.cols_shape() {
            return self.reshape(cols, geom.image_shape());
        }
        self.push1(Op::Col2Im { geom: geom.clone() }, &[cols])
    }

    /// Float convolution of `x` with `kernel` of shape `[k..., C / groups, O]` (Keras layout);
    /// the output has the input's layout. `pad_value` fills "same"/causal padding.
    pub fn conv(&mut self, x: ValueId, kernel: ValueId, opts: &ConvOptions, pad_value: f32) -> Result<ValueId> {
        let geom =
            ConvGeometry::new(&self.value(x).shape.clone(), &opts.kernel, &opts.strides, &opts.dilation, &opts.padding, opts.format)?;
        let (ci, co) = self.check_kernel(kernel, &geom, opts.groups)?;
        let cols = self.im2col(x, &geom, pad_value)?;
        let rows = geom.batch * geom.out_pixels();
        let g = opts.groups;
        // [rows, taps, g, ci] -> [g, rows, taps * ci] against [g, taps * ci, co / g].
        let cols = self.reshape(cols, [rows, geom.taps(), g, ci])?;
        let cols = self.permute(cols, &[2, 0, 1, 3])?;
        let cols = self.reshape(cols, [g, rows, geom.taps() * ci])?;
        let w = self.reshape(kernel, [geom.taps() * ci, g, co / g])?;
        let w = self.permute(w, &[1, 0, 2])?;
        let y = self.matmul(cols, w)?;
        let y = self.permute(y, &[1, 0, 2])?;
        self.rows_to_image(y, &geom, co)
    }

    /// [`Graph::conv`] of two quantized operands on bit planes. Each pixel's channels are packed
    /// into `x`'s planes (per group), the patches of words are gathered (padding reads 0 words,
    /// the value 0 of every encoding; a nonzero `pad_value`, which must be a value of `x`'s
    /// encoding, adds `pad_value` times the padded taps' kernel sums), and each group's patches
    /// multiply the kernel's planes, packed per tap, as [`Graph::plane_gemm`]: the integers
    /// divided by both scales, times `w`'s channel scale. The gradient is the float
    /// convolution's with respect to the quantized values; the backward keeps the image's
    /// planes (not its f32 values, nor a patch matrix) and gathers the patches from them again,
    /// as [`Graph::binary_conv`] does from its signs. Channels-first input is permuted to
    /// channels-last around it.
    pub fn lowbit_conv(&mut self, x: &Quantized, w: &Quantized, opts: &ConvOptions, pad_value: f32) -> Result<ValueId> {
        let op = "lowbit_conv";
        if !x.form.holds(pad_value) {
            return Err(Error::invalid(op, "pad_values", format!("{pad_value} is not a value of the input's {:?}", x.form.encoding)));
        }
        if x.channel_scale.is_some() {
            return Err(Error::invalid(op, "x", "a channel scale (MagnitudeAwareSign) is taken on the kernel side only"));
        }
        if opts.format == DataFormat::ChannelsFirst {
            let r = opts.kernel.len();
            let to_last: Vec<usize> = std::iter::once(0).chain(2..r + 2).chain([1]).collect();
            let to_first: Vec<usize> = [0, r + 1].into_iter().chain(1..=r).collect();
            let xl = self.permute(x.q, &to_last)?;
            let last = ConvOptions { format: DataFormat::ChannelsLast, ..opts.clone() };
            let y = self.lowbit_conv(&x.with(xl), w, &last, pad_value)?;
            return self.permute(y, &to_first);
        }
        let x_shape = self.value(x.q).shape.clone();
        let geom = ConvGeometry::new(&x_shape, &opts.kernel, &opts.strides, &opts.dilation, &opts.padding, opts.format)?;
        let groups = opts.groups;
        let (ci, o) = self.check_kernel(w.q, &geom, groups)?;
        let (cog, ciw, taps, rows) = (o / groups, words_for(ci), geom.taps(), geom.batch * geom.out_pixels());
        let (ex, ew) = (x.form, w.form);
        let (pa, pb) = (ex.encoding.planes(), ew.encoding.planes());
        // The image's planes per pixel, [N, in..., Pa, groups, ciw]: an image of words.
        let mut by_group = x_shape.dims().to_vec();
        by_group.pop();
        by_group.extend([groups, ci]);
        let xg = self.reshape(x.q, by_group)?;
        let planes = self.plane_pack(xg, ex.encoding, ex.scale)?;
        let mut words = x_shape.dims().to_vec();
        *words.last_mut().expect("rank >= 3") = pa * groups * ciw;
        let image = self.reshape(planes, words)?;
        let word_geom = geom.with_channels(pa * groups * ciw);
        // Patches as [groups, Pa, rows, taps * ciw]; padded taps read 0 words.
        let gather = move |g: &mut Graph| -> Result<ValueId> {
            let cols = g.im2col(image, &word_geom, 1.0)?;
            let cols = g.reshape(cols, [rows, taps, pa, groups, ciw])?;
            let cols = g.permute(cols, &[3, 2, 0, 1, 4])?;
            g.reshape(cols, [groups, pa, rows, taps * ciw])
        };
        let cols = gather(self)?;
        // The kernel's planes per tap, [groups, Pb, cog, taps * ciw].
        let wk = self.reshape(w.q, [taps, ci, groups, cog])?;
        let wk = self.permute(wk, &[2, 3, 0, 1])?;
        let wp = self.plane_pack(wk, ew.encoding, ew.scale)?; // [groups, cog, Pb, taps, ciw]
        let wp = self.permute(wp, &[0, 2, 1, 3, 4])?;
        let wp = self.reshape(wp, [groups, pb, cog, taps * ciw])?;
        let mut y = self.plane_gemm(cols, wp, &ex.encoding.weights(), &ew.encoding.weights())?; // [groups, rows, cog]
        let unit = 1.0 / (ex.scale * ew.scale);
        if unit != 1.0 {
            y = self.scale(y, unit)?;
        }
        if let Some(s) = w.channel_scale {
            // One scale per filter, or per depth multiplier (repeated in every group), or one.
            let n = self.value(s).shape.numel();
            let s = if n == o { self.reshape(s, [groups, 1, cog])? } else { self.reshape(s, [1, 1, n])? };
            y = self.mul(y, s)?;
        }
        let y = self.permute(y, &[1, 0, 2])?;
        let mut y = self.reshape(y, [rows, o])?;
        // [rows, taps], -1 where a tap reads padding.
        let padded = if pad_value != 0.0 && geom.reads_padding() { Some(self.padded_taps(&geom)?) } else { None };
        if let Some(padded) = padded {
            let sums = self.reshape(w.q, [taps, ci, o])?;
            let sums = self.sum(sums, &[1], false)?;
            let correction = self.matmul(padded, sums)?;
            let correction = self.scale(correction, -pad_value)?;
            y = self.add(y, correction)?;
        }
        let (xq, wq, g0) = (x.q, w.q, geom.clone());
        self.override_gradient(y, &[x.q, w.q], move |gr, dy| {
            let dy = gr.reshape(dy, [rows, groups, cog])?;
            let dy = gr.permute(dy, &[1, 0, 2])?; // [groups, rows, cog]
            let wm = gr.reshape(wq, [taps * ci, groups, cog])?;
            let wm = gr.permute(wm, &[1, 0, 2])?; // [groups, taps * ci, cog]
            let dcols = gr.matmul_t(dy, wm, false, true)?; // [groups, rows, taps * ci]
            let dcols = gr.reshape(dcols, [groups, rows, taps, ci])?;
            let dcols = gr.permute(dcols, &[1, 2, 0, 3])?;
            let dcols = gr.reshape(dcols, g0.cols_shape())?;
            let dx = gr.col2im(dcols, &g0)?;
            let dx = gr.reshape(dx, gr.value(xq).shape.clone())?;
            // The patches' values, gathered again from the image's planes.
            let cols = gather(gr)?;
            let cols = gr.reshape(cols, [groups, pa, rows * taps, ciw])?;
            let mut values = gr.plane_unpack(cols, ex.encoding, ci, ex.scale)?; // [groups, rows * taps, ci]
            if let Some(padded) = padded {
                let fill = gr.scale(padded, -pad_value)?;
                let fill = gr.reshape(fill, [1, rows * taps, 1])?;
                values = gr.add(values, fill)?;
            }
            let values = gr.reshape(values, [groups, rows, taps * ci])?;
            let dw = gr.matmul_t(values, dy, true, false)?; // [groups, taps * ci, cog]
            let dw = gr.permute(dw, &[1, 0, 2])?;
            let dw = gr.reshape(dw, gr.value(wq).shape.clone())?;
            Ok(vec![Some(dx), Some(dw)])
        })?;
        self.rows_to_image(y, &geom, o)
    }

    /// `[rows, ..., co]` results (rows = N x output pixels) as an image in `geom`'s layout.
    pub(crate) fn rows_to_image(&mut self, y: ValueId, geom: &ConvGeometry, co: usize) -> Result<ValueId> {
        let mut d = vec![geom.batch];
        d.extend(&geom.output);
        d.push(co);
        let y = self.reshape(y, d)?;
        match geom.format {
            DataFormat::ChannelsLast => Ok(y),
            DataFormat::ChannelsFirst => {
                let r = geom.kernel.len();
                let mut perm = vec![0, r + 1];
                perm.extend(1..=r);
                self.permute(y, &perm)
            }
        }
    }

    /// Checks a Keras kernel `[k..., C / groups, O]` against the geometry; returns
    /// (input channels per group, output channels).
    fn check_kernel(&self, kernel: ValueId, geom: &ConvGeometry, groups: usize) -> Result<(usize, usize)> {
        let ks = &self.value(kernel).shape;
        let r = geom.kernel.len();
        if groups == 0 || geom.channels % groups != 0 {
            return Err(Error::invalid("conv", "groups", format!("{groups} must divide the {} input channels", geom.channels)));
        }
        let ci = geom.channels / groups;
        let ok = ks.rank() == r + 2 && ks.dims()[..r] == geom.kernel[..] && ks.dims()[r] == ci && ks.dims()[r + 1] % groups == 0;
        if !ok {
            let mut want = geom.kernel.clone();
            want.extend([ci, groups]);
            return Err(Error::shapes(
                "conv",
                ks.dims(),
                &want,
                format!("kernel must be [kernel..., channels/groups = {ci}, filters (a multiple of {groups})]"),
            ));
        }
        Ok((ci, ks.dims()[r + 1]))
    }

    /// Like [`Graph::check_kernel`] for a kernel's packed signs `[filters, kernel..., words(C/groups)]`.
    fn check_packed_kernel(&self, bits: ValueId, geom: &ConvGeometry, groups: usize) -> Result<(usize, usize)> {
        let ks = &self.value(bits).shape;
        let r = geom.kernel.len();
        if groups == 0 || geom.channels % groups != 0 {
            return Err(Error::invalid("conv", "groups", format!("{groups} must divide the {} input channels", geom.channels)));
        }
        let ci = geom.channels / groups;
        let d = ks.dims();
        if !(d.len() == r + 2 && d[1..=r] == geom.kernel[..] && d[r + 1] == words_for(ci) && d[0] % groups == 0) {
            return Err(Error::shapes(
                "binary_conv",
                d,
                &geom.kernel,
                format!("packed kernel must be [filters (a multiple of {groups}), kernel..., words(channels/groups = {ci})]"),
            ));
        }
        Ok((ci, d[0]))
    }

    /// Binary convolution on packed bits: `sign(x) * sign(kernel)` for `x` (channels last or
    /// first) and a Keras kernel `[k..., C, O]`, with Larq's straight-through gradients (1 where
    /// |v| <= clip; `None` passes everything). Activations are sign-packed along channels per
    /// pixel, patches of words are gathered, and the XNOR-popcount GEMM multiplies them with the
    /// packed kernel. `pad_value` 1 pads with +1 (free in the bit encoding); 0 pads with zeros, for
    /// which `sum over padded taps of the tap's kernel-sign sum` is subtracted, as the Larq
    /// Compute Engine does. Only packed signs and masks are kept for the backward pass, which
    /// re-gathers the patches from the packed image. Groups (and depthwise, groups = C) pack each
    /// group's channels separately and run as the batch axis of the XNOR GEMM; channels-first
    /// input is permuted to channels-last around the packed computation.
    ///
    /// `kernel` may instead be its packed signs, `u32 [O, k..., words(C/groups)]` (a packed
    /// export's layout, [`crate::layers::packed_kernel_shape`]), read as they are; it then gets
    /// no gradient.
    pub fn binary_conv(
        &mut self,
        x: ValueId,
        kernel: ValueId,
        opts: &ConvOptions,
        pad_value: f32,
        input_clip: Option<f32>,
        kernel_clip: Option<f32>,
    ) -> Result<ValueId> {
        if opts.format == DataFormat::ChannelsFirst {
            // Channels must be the packed (last) axis: permute in and out; gradients follow.
            let r = opts.kernel.len();
            let to_last: Vec<usize> = std::iter::once(0).chain(2..r + 2).chain([1]).collect();
            let to_first: Vec<usize> = [0, r + 1].into_iter().chain(1..=r).collect();
            let xl = self.permute(x, &to_last)?;
            let last = ConvOptions { format: DataFormat::ChannelsLast, ..opts.clone() };
            let y = self.binary_conv(xl, kernel, &last, pad_value, input_clip, kernel_clip)?;
            return self.permute(y, &to_first);
        }
        if pad_value != 0.0 && pad_value != 1.0 {
            return Err(Error::invalid("binary_conv", "pad_values", format!("{pad_value} must be 0 or 1")));
        }
        let geom =
            ConvGeometry::new(&self.value(x).shape.clone(), &opts.kernel, &opts.strides, &opts.dilation, &opts.padding, opts.format)?;
        let groups = opts.groups;
        let packed = self.value(kernel).dtype == DType::U32;
        let (ci, o) = if packed { self.check_packed_kernel(kernel, &geom, groups)? } else { self.check_kernel(kernel, &geom, groups)? };
        let (cog, ciw, taps, rows) = (o / groups, words_for(ci), geom.taps(), geom.batch * geom.out_pixels());
        // Activations: each group's ci channels packed per pixel, [N, in..., groups, ciw]; the
        // image of words [N, in..., groups * ciw] is what im2col gathers.
        let x_shape = self.value(x).shape.clone();
        let mut by_group = x_shape.dims().to_vec();
        by_group.pop();
        by_group.extend([groups, ci]);
        let xg = self.reshape(x, by_group.clone())?;
        let px = self.pack_signs(xg, input_clip)?;
        let mut words_shape = x_shape.dims().to_vec();
        *words_shape.last_mut().expect("rank >= 3") = groups * ciw;
        let image = self.reshape(px.bits, words_shape)?;
        let word_geom = geom.with_channels(groups * ciw);
        let cols = self.im2col(image, &word_geom, 1.0)?;
        let cols = self.group_major(cols, rows, taps, groups, ciw)?; // [groups, rows, taps * ciw]
                                                                     // Weights as [groups, cog, taps, ciw], packed along ci per tap: a packed kernel
                                                                     // [o, k..., ciw] already is; a latent one [taps, ci, groups, cog] is permuted and packed.
        let pw = if packed {
            PackedSigns { bits: self.reshape(kernel, [groups, cog, taps, ciw])?, mask: None }
        } else {
            let w = self.reshape(kernel, [taps, ci, groups, cog])?;
            let w = self.permute(w, &[2, 3, 0, 1])?;
            self.pack_signs(w, kernel_clip)?
        };
        let wb = self.reshape(pw.bits, [groups, cog, taps * ciw])?;
        let y = self.push1(Op::XnorGemm { k: taps * ci, epilogue: Epilogue::Plain }, &[cols, wb])?; // [groups, rows, cog]
        let y = self.permute(y, &[1, 0, 2])?;
        let mut y = self.reshape(y, [rows, o])?;
        let zero_pad = pad_value == 0.0 && geom.reads_padding();
        if zero_pad {
            // A padded tap read +1 for every channel, adding sum_c sign(w[tap, c, o]); remove it:
            // (valid - 1) @ tap_sums = -(sum over padded taps).
            let padded = self.padded_taps(&geom)?;
            let signs = self.bit_unpack(pw.bits, ci, PackMode::Sign)?; // [groups, cog, taps, ci]
            let tap_sums = self.sum(signs, &[3], false)?;
            let tap_sums = self.reshape(tap_sums, [o, taps])?;
            let tap_sums = self.transpose(tap_sums)?;
            let correction = self.matmul(padded, tap_sums)?;
            y = self.add(y, correction)?;
        }
        let g = geom.clone();
        self.override_gradient(y, &[x, kernel], move |gr, dy| {
            let dy = gr.reshape(dy, [rows, groups, cog])?;
            let dy = gr.permute(dy, &[1, 0, 2])?; // [groups, rows, cog]
                                                  // dx: the gradient of each patch entry, summed back into the image, then masked.
            let w_signs = gr.bit_unpack(pw.bits, ci, PackMode::Sign)?; // [groups, cog, taps, ci]
            let w_signs = gr.reshape(w_signs, [groups, cog, taps * ci])?;
            let dcols = gr.matmul(dy, w_signs)?; // [groups, rows, taps * ci]
            let dcols = gr.reshape(dcols, [groups, rows, taps, ci])?;
            let dcols = gr.permute(dcols, &[1, 2, 0, 3])?;
            let dcols = gr.reshape(dcols, g.cols_shape())?;
            let dx = gr.col2im(dcols, &g)?;
            let dx = gr.reshape(dx, by_group.clone())?;
            let dx = gr.straight_through(&px, dx)?;
            let dx = gr.reshape(dx, x_shape.clone())?;
            if packed {
                return Ok(vec![Some(dx), None]);
            }
            // dw: patches of signs re-gathered from the packed image; padded taps count 0 when
            // padding with zeros.
            let cols = gr.im2col(image, &word_geom, 1.0)?;
            let cols = gr.group_major(cols, rows, taps, groups, ciw)?;
            let cols = gr.reshape(cols, [groups, rows, taps, ciw])?;
            let mut x_signs = gr.bit_unpack(cols, ci, PackMode::Sign)?; // [groups, rows, taps, ci]
            if zero_pad {
                let valid = gr.padded_taps(&g)?;
                let valid = gr.unary(super::UnaryOp::Offset(1.0), valid)?;
                let valid = gr.reshape(valid, [1, rows, taps, 1])?;
                x_signs = gr.mul(x_signs, valid)?;
            }
            let x_signs = gr.reshape(x_signs, [groups, rows, taps * ci])?;
            let dw = gr.matmul_t(dy, x_signs, true, false)?; // [groups, cog, taps * ci]
            let dw = gr.reshape(dw, [groups, cog, taps, ci])?;
            let dw = gr.straight_through(&pw, dw)?;
            let dw = gr.permute(dw, &[2, 3, 0, 1])?;
            let dw = gr.reshape(dw, gr.value(kernel).shape.clone())?;
            Ok(vec![Some(dx), Some(dw)])
        })?;
        self.rows_to_image(y, &geom, o)
    }

    /// Patch words `[N, out..., taps..., groups * ciw]` as `[groups, rows, taps * ciw]`.
    fn group_major(&mut self, cols: ValueId, rows: usize, taps: usize, groups: usize, ciw: usize) -> Result<ValueId> {
        let c = self.reshape(cols, [rows, taps, groups, ciw])?;
        let c = self.permute(c, &[2, 0, 1, 3])?;
        self.reshape(c, [groups, rows, taps * ciw])
    }

    /// `[rows, taps]`: 0 where a tap reads the image, -1 where it reads padding.
    fn padded_taps(&mut self, geom: &ConvGeometry) -> Result<ValueId> {
        let ones = self.fill(geom.with_channels(1).image_shape(), 1.0)?;
        let valid = self.im2col(ones, &geom.with_channels(1), 0.0)?;
        let valid = self.reshape(valid, [geom.batch * geom.out_pixels(), geom.taps()])?;
        self.unary(super::UnaryOp::Offset(-1.0), valid)
    }

    /// Transposed convolution (the adjoint of [`Graph::conv`] with respect to its input): `x` is
    /// `[N, in..., C]` (or channels-first), `kernel` is `[k..., O, C]` (Keras layout), and
    /// `output` gives the spatial size of the result, whose forward convolution with these
    /// options must have `x`'s spatial size.
    pub fn conv_transpose(&mut self, x: ValueId, kernel: ValueId, opts: &ConvOptions, output: &[usize]) -> Result<ValueId> {
        self.conv_transpose_with(x, kernel, opts, output, Patch::Float)
    }

    /// [`Graph::conv_transpose`] of `sign(x)` and `sign(kernel)`: the per-pixel product runs as
    /// an XNOR-popcount GEMM over the input channels ([`Graph::binary_matmul`], with its
    /// straight-through gradients and clips), then the patches are summed into the image.
    pub fn binary_conv_transpose(
        &mut self,
        x: ValueId,
        kernel: ValueId,
        opts: &ConvOptions,
        output: &[usize],
        input_clip: Option<f32>,
        kernel_clip: Option<f32>,
    ) -> Result<ValueId> {
        self.conv_transpose_with(x, kernel, opts, output, Patch::Binary(input_clip, kernel_clip))
    }

    /// [`Graph::conv_transpose`] of two quantized operands: the per-pixel product runs on bit
    /// planes over the input channels ([`Graph::lowbit_matmul`], with its gradients). The
    /// kernel may not carry a channel scale (a transposed kernel's would run over its input
    /// channels, the reduced axis).
    pub fn lowbit_conv_transpose(&mut self, x: &Quantized, w: &Quantized, opts: &ConvOptions, output: &[usize]) -> Result<ValueId> {
        if w.channel_scale.is_some() {
            return Err(Error::invalid(
                "lowbit_conv_transpose",
                "kernel",
                "a channel scale runs over the input channels of a transposed kernel",
            ));
        }
        self.conv_transpose_with(x.q, w.q, opts, output, Patch::LowBit(*x, *w))
    }

    /// Transposed convolution with a float product, or a binary one given the clips.
    fn conv_transpose_with(
        &mut self,
        x: ValueId,
        kernel: ValueId,
        opts: &ConvOptions,
        output: &[usize],
        product: Patch,
    ) -> Result<ValueId> {
        let xs = self.value(x).shape.clone();
        let r = opts.kernel.len();
        let ks = self.value(kernel).shape.clone();
        if ks.rank() != r + 2 || xs.rank() != r + 2 || opts.groups != 1 {
            return Err(Error::shapes(
                "conv_transpose",
                xs.dims(),
                ks.dims(),
                "needs [N, spatial..., C] input, a [k..., O, C] kernel and one group",
            ));
        }
        let (o, c) = (ks.dims()[r], ks.dims()[r + 1]);
        let mut image = vec![xs.dims()[0]];
        match opts.format {
            DataFormat::ChannelsLast => {
                image.extend(output);
                image.push(o);
            }
            DataFormat::ChannelsFirst => {
                image.push(o);
                image.extend(output);
            }
        }
        let geom = ConvGeometry::new(&Shape::new(image), &opts.kernel, &opts.strides, &opts.dilation, &opts.padding, opts.format)?;
        let x_last = match opts.format {
            DataFormat::ChannelsLast => x,
            DataFormat::ChannelsFirst => {
                let mut perm = vec![0];
                perm.extend(2..r + 2);
                perm.push(1);
                self.permute(x, &perm)?
            }
        };
        let x_spatial = &self.value(x_last).shape.dims()[1..=r];
        if x_spatial != geom.output.as_slice() || self.value(x_last).shape.dims()[r + 1] != c {
            return Err(Error::shapes(
                "conv_transpose",
                xs.dims(),
                &geom.output,
                format!("input spatial size and channels must equal the forward convolution's output {:?} x {c}", geom.output),
            ));
        }
        let rows = geom.batch * geom.out_pixels();
        let xm = self.reshape(x_last, [rows, c])?;
        // cols[rows, taps, O] = x[rows, C] @ kernel[taps, O, C]^T, then scattered back.
        let w = self.reshape(kernel, [geom.taps() * o, c])?;
        let cols = match product {
            Patch::Float => self.matmul_t(xm, w, false, true)?,
            Patch::Binary(input_clip, kernel_clip) => {
                let wt = self.transpose(w)?;
                self.binary_matmul(xm, wt, input_clip, kernel_clip)?
            }
            Patch::LowBit(qx, qw) => {
                let wt = self.transpose(w)?;
                self.lowbit_matmul(&qx.with(xm), &qw.with(wt))?
            }
        };
        let cols = self.reshape(cols, geom.cols_shape())?;
        self.col2im(cols, &geom)
    }

    /// Locally connected layer (unshared weights): `kernel` is `[out_pixels, taps * C, O]`.
    pub fn locally_connected(&mut self, x: ValueId, kernel: ValueId, opts: &ConvOptions) -> Result<ValueId> {
        self.locally_connected_with(x, kernel, opts, Patch::Float)
    }

    /// [`Graph::locally_connected`] of `sign(x)` and `sign(kernel)`: each output pixel's product
    /// is an XNOR-popcount GEMM over its patch ([`Graph::binary_matmul`] with one kernel per
    /// pixel, its straight-through gradients and clips).
    pub fn binary_locally_connected(
        &mut self,
        x: ValueId,
        kernel: ValueId,
        opts: &ConvOptions,
        input_clip: Option<f32>,
        kernel_clip: Option<f32>,
    ) -> Result<ValueId> {
        self.locally_connected_with(x, kernel, opts, Patch::Binary(input_clip, kernel_clip))
    }

    /// [`Graph::locally_connected`] of two quantized operands (`w.q` in the patch layout
    /// `[out pixels, taps x C, O]`): each output pixel's product runs on bit planes
    /// ([`Graph::lowbit_matmul`], one kernel per pixel, with its gradients). Padded taps read
    /// 0, a value of every encoding.
    pub fn lowbit_locally_connected(&mut self, x: &Quantized, w: &Quantized, opts: &ConvOptions) -> Result<ValueId> {
        self.locally_connected_with(x.q, w.q, opts, Patch::LowBit(*x, *w))
    }

    fn locally_connected_with(&mut self, x: ValueId, kernel: ValueId, opts: &ConvOptions, product: Patch) -> Result<ValueId> {
        let geom =
            ConvGeometry::new(&self.value(x).shape.clone(), &opts.kernel, &opts.strides, &opts.dilation, &opts.padding, opts.format)?;
        let p = geom.out_pixels();
        let kc = geom.taps() * geom.channels;
        let ks = self.value(kernel).shape.clone();
        if ks.rank() != 3 || ks.dims()[..2] != [p, kc] {
            return Err(Error::shapes(
                "locally_connected",
                ks.dims(),
                &[p, kc],
                "kernel must be [output pixels, taps x channels, filters]",
            ));
        }
        let o = ks.dims()[2];
        let cols = self.im2col(x, &geom, 0.0)?;
        let cols = self.reshape(cols, [geom.batch, p, kc])?;
        let cols = self.permute(cols, &[1, 0, 2])?;
        let y = match product {
            Patch::Float => self.matmul(cols, kernel)?, // [p, N, O]
            Patch::Binary(input_clip, kernel_clip) => self.binary_matmul(cols, kernel, input_clip, kernel_clip)?,
            Patch::LowBit(qx, qw) => self.lowbit_matmul(&qx.with(cols), &qw.with(kernel))?,
        };
        let y = self.permute(y, &[1, 0, 2])?;
        self.rows_to_image(y, &geom, o)
    }
}

/// The product a transposed or locally connected layer runs per pixel.
#[derive(Clone, Copy)]
enum Patch {
    /// f32.
    Float,
    /// XNOR-popcount of signs, with the input's and kernel's straight-through windows.
    Binary(Option<f32>, Option<f32>),
    /// Bit planes of the two quantized operands' encodings.
    LowBit(Quantized, Quantized),
}

/// Shape rule shared by [`Op::Im2Col`] and [`Op::Col2Im`].
pub(crate) fn check_image(op: &'static str, geom: &ConvGeometry, image: &Shape, dtype: DType) -> Result<()> {
    if image != &geom.image_shape() {
        return Err(Error::shapes(op, image.dims(), geom.image_shape().dims(), "image does not match the convolution geometry"));
    }
    if dtype == DType::I32 {
        return Err(Error::DTypeMismatch { op, operand: "image", expected: DType::F32, got: dtype });
    }
    Ok(())
}
