//! `QuantLocallyConnected1D` and `QuantLocallyConnected2D` (Larq), and with no quantizers Keras'
//! `LocallyConnected*D`: convolutions whose weights differ at every output position.

use super::{add_weight, precision_of, BuildContext, Layer, QuantArgs, QuantLayer, WeightSpec};
use crate::error::{Error, Result};
use crate::graph::{ConvGeometry, ConvOptions, DataFormat, Graph, Padding, ValueId};

/// Larq's quantized locally connected layer (1-D or 2-D). The product is a batch of per-pixel
/// GEMMs: XNOR-popcount on packed bits when both quantizers are SteSign (and no tap falls in
/// padding), f32 on the quantized values otherwise. Keras' three `implementation`s compute the
/// same function and differ in how the kernel is stored, which bitgrad keeps so that weights
/// move to and from Keras unchanged:
/// - 1: `[output pixels, taps x channels, filters]` (taps then channels for channels-last input,
///   channels then taps for channels-first, as Keras flattens the patches); valid padding only.
/// - 2: a dense kernel `[in..., C, out..., F]` (`[C, in..., F, out...]` channels-first) whose
///   unconnected entries are masked out; valid or same padding.
/// - 3: the connected entries only, `[nnz]`, in the sorted (output, input) order of Keras'
///   sparse kernel; valid or same padding.
///
/// Implementations 2 and 3 map their stored kernel onto implementation 1's with one constant
/// index map ([`Graph::take`]), whose adjoint sends the gradient back (masked entries get 0).
/// The bias has one value per output position, stored `[out..., filters]` as Keras stores it
/// in both layouts (a channels-first layer reads it reshaped to `[filters, out...]`, as Keras'
/// `bias_add` does).
#[derive(Clone, Debug)]
pub struct QuantLocallyConnected {
    /// Layer name, prefix of its variables.
    pub name: String,
    /// Output channels.
    pub filters: usize,
    /// Kernel size per spatial axis (1 or 2 values).
    pub kernel_size: Vec<usize>,
    /// Strides.
    pub strides: Vec<usize>,
    /// Valid, or same with implementations 2 and 3 (as in Keras).
    pub padding: Padding,
    /// Layout of input and output.
    pub data_format: DataFormat,
    /// Keras' `implementation` (1, 2 or 3): how the kernel is stored.
    pub implementation: u32,
    /// Quantizers, activation, bias, initializers, constraints, regularizers, metrics.
    pub args: QuantArgs,
    /// Its identity ([`Layer::id`]), kept by clones: a clone is the same layer.
    pub id: super::LayerId,
}

impl QuantLocallyConnected {
    /// Keras' defaults for the dimensionality of `kernel_size`: stride 1, valid, channels last,
    /// implementation 1, no quantizers, linear, bias.
    pub fn new(filters: usize, kernel_size: &[usize]) -> Self {
        super::auto_named(QuantLocallyConnected {
            id: super::LayerId::new(),
            name: String::new(),
            filters,
            kernel_size: kernel_size.to_vec(),
            strides: vec![1; kernel_size.len()],
            padding: Padding::Valid,
            data_format: DataFormat::ChannelsLast,
            implementation: 1,
            args: QuantArgs::default(),
        })
    }

    fn bad(&self, arg: &'static str, why: String) -> Error {
        Error::invalid("QuantLocallyConnected", arg, format!("layer `{}`: {why}", self.name))
    }

    fn check(&self) -> Result<()> {
        if !(1..=2).contains(&self.kernel_size.len()) {
            return Err(self.bad("kernel_size", format!("{:?} needs 1 or 2 values", self.kernel_size)));
        }
        if self.filters == 0 {
            return Err(self.bad("filters", "must be positive".into()));
        }
        match (self.implementation, &self.padding) {
            (1, Padding::Valid) | (2 | 3, Padding::Valid | Padding::Same) => Ok(()),
            (1, p) => Err(self.bad("padding", format!("{p:?}: implementation 1 supports only valid padding (as in Keras)"))),
            (2 | 3, p) => Err(self.bad("padding", format!("{p:?}: locally connected layers support valid and same padding"))),
            (other, _) => Err(self.bad("implementation", format!("{other} must be 1, 2 or 3"))),
        }
    }

    /// Keras' padding for "same": `k / 2` before each axis (not TensorFlow's convolution rule),
    /// and enough after for `ceil(in / stride)` outputs.
    fn padding_for(&self, input: &[usize]) -> Padding {
        match self.padding {
            Padding::Same => Padding::Explicit(
                (0..input.len())
                    .map(|d| {
                        let (k, s, n) = (self.kernel_size[d], self.strides[d], input[d]);
                        let before = k / 2;
                        (before, ((n.div_ceil(s) - 1) * s + k).saturating_sub(n + before))
                    })
                    .collect(),
            ),
            ref p => p.clone(),
        }
    }

    /// The shape of the stored kernel of implementation 2 or 3, whose `map` is
    /// [`Self::kernel_map`]'s.
    fn stored_shape(&self, geom: &ConvGeometry, map: &[i32]) -> Vec<usize> {
        let (c, f) = (geom.channels, self.filters);
        match (self.implementation, self.data_format) {
            (2, DataFormat::ChannelsLast) => [&geom.input[..], &[c], &geom.output, &[f]].concat(),
            (2, DataFormat::ChannelsFirst) => [&[c][..], &geom.input, &[f], &geom.output].concat(),
            _ => vec![map.iter().filter(|&&j| j >= 0).count()],
        }
    }

    /// For each element of implementation 1's kernel in the graph's patch order
    /// (`[pixels, taps..., C, F]`), its position in the stored kernel of implementation 2 or 3,
    /// or -1 for a tap in the padding.
    fn kernel_map(&self, geom: &ConvGeometry) -> Vec<i32> {
        let (c_in, f_out) = (geom.channels, self.filters);
        let first = self.data_format == DataFormat::ChannelsFirst;
        // Keras ravels (position, channel) pairs with the channel first or last, as the data.
        let ravel = |pos: &[usize], ch: usize, dims: &[usize], chans: usize| -> usize {
            let (idx, sizes) = if first {
                ([&[ch][..], pos].concat(), [&[chans][..], dims].concat())
            } else {
                ([pos, &[ch]].concat(), [dims, &[chans]].concat())
            };
            idx.iter().zip(&sizes).fold(0, |acc, (i, n)| acc * n + i)
        };
        let unravel = |mut i: usize, dims: &[usize]| -> Vec<usize> {
            let mut v = vec![0; dims.len()];
            for d in (0..dims.len()).rev() {
                v[d] = i % dims[d];
                i /= dims[d];
            }
            v
        };
        let mut entries = Vec::new(); // (key in the stored kernel, position in implementation 1)
        let mut map = vec![-1i32; geom.out_pixels() * geom.taps() * c_in * f_out];
        for p in 0..geom.out_pixels() {
            let out = unravel(p, &geom.output);
            for t in 0..geom.taps() {
                let tap = unravel(t, &geom.kernel);
                let inside: Option<Vec<usize>> = (0..out.len())
                    .map(|d| (out[d] * geom.strides[d] + tap[d]).checked_sub(geom.pad_begin[d]).filter(|&i| i < geom.input[d]))
                    .collect();
                let Some(input) = inside else { continue };
                for c in 0..c_in {
                    for f in 0..f_out {
                        let at = ((p * geom.taps() + t) * c_in + c) * f_out + f;
                        let in_idx = ravel(&input, c, &geom.input, c_in);
                        let out_idx = ravel(&out, f, &geom.output, f_out);
                        let key = match self.implementation {
                            // Dense [in, out] kernel: the input index is the major one.
                            2 => (in_idx * geom.out_pixels() * f_out + out_idx, 0),
                            // Sparse entries sorted by (output, input) index.
                            _ => (out_idx, in_idx),
                        };
                        entries.push((key, at));
                    }
                }
            }
        }
        entries.sort_unstable();
        for (rank, ((dense, _), at)) in entries.into_iter().enumerate() {
            map[at] = if self.implementation == 2 { dense as i32 } else { rank as i32 };
        }
        map
    }
}

super::arguments::conv_builders!(QuantLocallyConnected {});

impl QuantLocallyConnected {
    /// Sets Keras' `implementation` (1, 2 or 3: how the kernel is stored).
    pub fn implementation(mut self, i: u32) -> Self {
        self.implementation = i;
        self
    }
}

impl QuantLayer for QuantLocallyConnected {
    fn args_mut(&mut self) -> &mut QuantArgs {
        &mut self.args
    }
}

impl Layer for QuantLocallyConnected {
    fn id(&self) -> Option<super::LayerId> {
        Some(self.id)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn class(&self) -> &str {
        if self.kernel_size.len() == 1 {
            "QuantLocallyConnected1D"
        } else {
            "QuantLocallyConnected2D"
        }
    }

    fn input_precision(&self) -> Option<u32> {
        precision_of(&self.args.input_quantizer)
    }

    fn build(&self, g: &mut Graph, x: ValueId, ctx: &mut BuildContext) -> Result<ValueId> {
        self.check()?;
        let xs = g.value(x).shape.clone();
        let spatial = match self.data_format {
            DataFormat::ChannelsLast => &xs.dims()[1..xs.rank().saturating_sub(1)],
            DataFormat::ChannelsFirst => &xs.dims()[2.min(xs.rank())..],
        };
        let opts = ConvOptions {
            strides: self.strides.clone(),
            format: self.data_format,
            padding: self.padding_for(spatial),
            ..ConvOptions::new(&self.kernel_size)
        };
        let geom = ConvGeometry::new(&xs, &opts.kernel, &opts.strides, &opts.dilation, &opts.padding, opts.format)
            .map_err(|e| self.bad("kernel_size", format!("input {:?}: {e}", xs.dims())))?;
        let (p, taps, c) = (geom.out_pixels(), geom.taps(), geom.channels);
        let impl1 = crate::Shape::new([p, taps * c, self.filters]);
        // The index map has an entry per element of implementation 1's kernel, and
        // implementation 2 stores more than that: both sizes are refused before the map is made
        // if no kernel of that size can exist.
        let too_large = |shape: &crate::Shape| {
            shape
                .validate("QuantLocallyConnected")
                .map_err(|_| self.bad("kernel_size", format!("its kernel {shape:?} would hold more than 2^32-1 elements")))
        };
        too_large(&impl1)?;
        if self.implementation == 2 {
            too_large(&crate::Shape::new(self.stored_shape(&geom, &[])))?;
        }
        let map = (self.implementation != 1).then(|| self.kernel_map(&geom));
        let stored = match &map {
            Some(m) => crate::Shape::new(self.stored_shape(&geom, m)),
            None => impl1.clone(),
        };
        let (w, wq) = self.args.add_kernel(g, ctx, &self.name, stored)?;
        // The kernel as implementation 1's, in the graph's patch order (taps-major, channels
        // innermost): a constant index map for 2 and 3, a reorder for channels-first 1.
        let as_patches = |g: &mut Graph, k: ValueId| -> Result<ValueId> {
            match (&map, self.data_format) {
                (Some(map), _) => g.take(k, map, impl1.clone()),
                (None, DataFormat::ChannelsLast) => Ok(k),
                (None, DataFormat::ChannelsFirst) => {
                    let k = g.reshape(k, [p, c, taps, self.filters])?;
                    let k = g.permute(k, &[0, 2, 1, 3])?;
                    g.reshape(k, [p, taps * c, self.filters])
                }
            }
        };
        // Sign bits have no zero for a tap in the padding: those layers take the bit-plane (or float) path.
        let padded = map.as_ref().is_some_and(|m| m.contains(&-1));
        let y = match self.args.packed_clips().filter(|_| !padded) {
            Some((ci, ck)) => {
                super::QuantArgs::record_xnor(ctx, &self.name, ci);
                let w = as_patches(g, super::binary_operand(g, w, wq))?;
                g.binary_locally_connected(x, w, &opts, ci, ck)?
            }
            None => {
                let wp = as_patches(g, wq)?;
                let xq = self.args.quantize_input(g, x)?;
                // Bit planes have a zero: padded taps (0 in the patches) cost nothing there.
                match self.args.lowbit_operands(g, xq, wq) {
                    Some(pair) => {
                        pair.commit(g, ctx, &self.name)?;
                        g.lowbit_locally_connected(&pair.x, &pair.w.with(wp), &opts)?
                    }
                    None => {
                        self.args.record_float(ctx, &self.name, false);
                        g.locally_connected(xq, wp, &opts)?
                    }
                }
            }
        };
        let y = if self.args.use_bias {
            let mut dims = geom.output.clone();
            dims.push(self.filters);
            let spec = WeightSpec {
                layer: &self.name,
                weight: "bias",
                shape: crate::Shape::new(dims.clone()),
                initializer: self.args.bias_initializer,
                quantizer: None,
                constraint: self.args.bias_constraint.clone(),
                constraint_argument: "bias_constraint",
                metrics: None,
                regularizer: self.args.bias_regularizer,
                trainable: self.args.trainable,
            };
            let (b, _) = add_weight(g, ctx, spec)?;
            // Keras declares the bias [out..., filters] in both layouts, and its bias_add reads a
            // channels-first one by reshaping (not transposing) it to [filters, out...].
            let b = match self.data_format {
                DataFormat::ChannelsLast => b,
                DataFormat::ChannelsFirst => {
                    dims.rotate_right(1);
                    g.reshape(b, dims)?
                }
            };
            g.add(y, b)?
        } else {
            y
        };
        self.args.activate(g, ctx, y)
    }
}

super::arguments::class_constructors!(
    "Larq's quantized locally connected layer, a [`QuantLocallyConnected`]", QuantLocallyConnected,
    |filters, k, _class| QuantLocallyConnected::new(filters, &k);
    QuantLocallyConnected1D => 1, QuantLocallyConnected2D => 2
);
