//! Keras' `MaxPooling1D/2D/3D`, `AveragePooling1D/2D/3D` and the global poolings, built from
//! im2col and reductions (so their gradients come from those ops', except max pooling's, which
//! follows TensorFlow's rules for ties).

use super::{BuildContext, Layer, MacCount};
use crate::error::{Error, Result};
use crate::graph::{ConvGeometry, DataFormat, Graph, Padding, ValueId};

/// Maximum or average.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolingKind {
    /// Maximum over the window.
    Max,
    /// Mean over the window; with "same" padding, padded positions are not counted (as in
    /// TensorFlow).
    Average,
}

/// A pooling layer over 1 to 3 spatial axes.
#[derive(Clone, Debug)]
pub struct Pooling {
    /// Layer name.
    pub name: String,
    /// Maximum or average.
    pub kind: PoolingKind,
    /// Window per spatial axis (its length is the dimensionality).
    pub pool_size: Vec<usize>,
    /// Strides (Keras' default: the pool size).
    pub strides: Vec<usize>,
    /// Valid or same.
    pub padding: Padding,
    /// Layout of input and output.
    pub data_format: DataFormat,
    /// Its identity ([`Layer::id`]), kept by clones: a clone is the same layer.
    pub id: super::LayerId,
    /// The first argument given by a name that stands for nothing, reported by the build.
    pub invalid: super::arguments::Invalid,
}

impl Pooling {
    /// Keras' defaults: strides = pool size, valid, channels last.
    pub fn new(kind: PoolingKind, pool_size: &[usize]) -> Self {
        super::auto_named(Pooling {
            id: super::LayerId::new(),
            name: String::new(),
            kind,
            pool_size: pool_size.to_vec(),
            strides: pool_size.to_vec(),
            padding: Padding::Valid,
            data_format: DataFormat::ChannelsLast,
            invalid: Default::default(),
        })
    }
}

impl Layer for Pooling {
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
        let r = self.pool_size.len().clamp(1, 3) - 1;
        match self.kind {
            PoolingKind::Max => ["MaxPooling1D", "MaxPooling2D", "MaxPooling3D"][r],
            PoolingKind::Average => ["AveragePooling1D", "AveragePooling2D", "AveragePooling3D"][r],
        }
    }

    fn macs(&self) -> MacCount {
        // Larq counts (zero) operations for 1-D and 2-D pooling only.
        if self.pool_size.len() <= 2 {
            MacCount::Zero
        } else {
            MacCount::Unknown
        }
    }

    fn build(&self, g: &mut Graph, x: ValueId, _ctx: &mut BuildContext) -> Result<ValueId> {
        self.invalid.check()?;
        if !matches!(self.padding, Padding::Valid | Padding::Same) {
            return Err(Error::invalid("Pooling", "padding", format!("layer `{}`: must be valid or same", self.name)));
        }
        let xs = g.value(x).shape.clone();
        let r = self.pool_size.len();
        let geom = ConvGeometry::new(&xs, &self.pool_size, &self.strides, &vec![1; r], &self.padding, self.data_format)
            .map_err(|e| Error::invalid("Pooling", "pool_size", format!("layer `{}` on input {:?}: {e}", self.name, xs.dims())))?;
        let (rows, taps, c) = (geom.batch * geom.out_pixels(), geom.taps(), geom.channels);
        let pad = match self.kind {
            PoolingKind::Max => f32::NEG_INFINITY,
            PoolingKind::Average => 0.0,
        };
        let cols = g.im2col(x, &geom, pad)?;
        let cols = g.reshape(cols, [rows, taps, c])?;
        let y = match self.kind {
            PoolingKind::Max => max_pool(g, cols, r == 3)?,
            PoolingKind::Average if geom.reads_padding() => {
                // Divide by the number of real (unpadded) positions in each window.
                let ones = g.fill(geom.with_channels(1).image_shape(), 1.0)?;
                let counts = g.im2col(ones, &geom.with_channels(1), 0.0)?;
                let counts = g.reshape(counts, [rows, taps])?;
                let counts = g.sum(counts, &[1], true)?;
                let sums = g.sum(cols, &[1], false)?;
                g.div(sums, counts)?
            }
            PoolingKind::Average => g.mean(cols, &[1], false)?,
        };
        g.rows_to_image(y, &geom, c)
    }
}

/// The maximum of `cols` `[rows, taps, c]` over its taps, with TensorFlow's gradients for ties:
/// 1-D and 2-D max pooling (`MaxPoolGrad`) send a window's gradient to its first maximal tap
/// only, 3-D max pooling (`MaxPool3DGrad`) sends all of it to every maximal tap. (A plain
/// reduce-max splits it among ties, as `tf.reduce_max` does; after binarized layers, windows
/// full of equal values are the rule, so the difference matters.)
fn max_pool(g: &mut Graph, cols: ValueId, every_tie: bool) -> Result<ValueId> {
    let y = g.max(cols, &[1], false)?;
    // One pass over the windows (Op::MaxGrad) rather than comparisons, ranks and products over
    // the whole patch matrix.
    g.override_gradient(y, &[cols], move |g, dy| Ok(vec![Some(g.max_grad(cols, y, dy, !every_tie)?)]))?;
    Ok(y)
}

/// Keras' `GlobalMaxPooling1D/2D/3D` and `GlobalAveragePooling1D/2D/3D`: the maximum or mean
/// over all spatial axes.
#[derive(Clone, Debug)]
pub struct GlobalPooling {
    /// Layer name.
    pub name: String,
    /// Maximum or average.
    pub kind: PoolingKind,
    /// Layout of the input.
    pub data_format: DataFormat,
    /// Keep the spatial axes with size 1.
    pub keepdims: bool,
    /// Its identity ([`Layer::id`]), kept by clones: a clone is the same layer.
    pub id: super::LayerId,
}

impl GlobalPooling {
    /// Channels last, spatial axes dropped.
    pub fn new(kind: PoolingKind) -> Self {
        super::auto_named(GlobalPooling {
            id: super::LayerId::new(),
            name: String::new(),
            kind,
            data_format: DataFormat::ChannelsLast,
            keepdims: false,
        })
    }
}

impl Layer for GlobalPooling {
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
        match self.kind {
            PoolingKind::Max => "GlobalMaxPooling",
            PoolingKind::Average => "GlobalAveragePooling",
        }
    }

    fn build(&self, g: &mut Graph, x: ValueId, _ctx: &mut BuildContext) -> Result<ValueId> {
        let rank = g.value(x).shape.rank();
        if !(3..=5).contains(&rank) {
            return Err(Error::shapes(
                "GlobalPooling",
                g.value(x).shape.dims(),
                &[],
                format!("layer `{}` needs [batch, 1 to 3 spatial axes, channels]", self.name),
            ));
        }
        let axes: Vec<usize> = match self.data_format {
            DataFormat::ChannelsLast => (1..rank - 1).collect(),
            DataFormat::ChannelsFirst => (2..rank).collect(),
        };
        match self.kind {
            PoolingKind::Max => g.max(x, &axes, self.keepdims),
            PoolingKind::Average => g.mean(x, &axes, self.keepdims),
        }
    }
}

impl Pooling {
    /// Sets `strides` (a number for every axis, or one per axis; by default the pool size).
    pub fn strides(mut self, s: impl Into<super::arguments::Size>) -> Self {
        self.strides = s.into().for_rank(self.pool_size.len());
        self
    }

    /// Sets `padding` (`"valid"` or `"same"`).
    pub fn padding(mut self, p: impl super::Arg<Padding>) -> Self {
        if let Some(p) = self.invalid.take("padding", p) {
            self.padding = p;
        }
        self
    }

    /// Sets `data_format` (`"channels_last"` or `"channels_first"`).
    pub fn data_format(mut self, f: impl super::Arg<DataFormat>) -> Self {
        if let Some(f) = self.invalid.take("data_format", f) {
            self.data_format = f;
        }
        self
    }
}

/// Keras' class names as constructors of [`Pooling`] and [`GlobalPooling`]:
/// `MaxPooling2D::new((2, 2))`, `GlobalAveragePooling2D::new()`.
macro_rules! pooling_constructors {
    ($($class:ident => $kind:ident, $rank:literal);*) => {
        $(
            #[doc = concat!("Keras' `", stringify!($class), "`: a [`Pooling`] over ", stringify!($rank), " spatial axes.")]
            pub struct $class;

            impl $class {
                /// Windows of `pool_size` (one number for every axis, or one per axis), strides
                /// equal to it, valid padding, channels last.
                #[allow(clippy::new_ret_no_self)]
                pub fn new(pool_size: impl Into<super::arguments::Size>) -> Pooling {
                    Pooling::new(PoolingKind::$kind, &pool_size.into().for_rank($rank))
                }
            }
        )*
    };
}

pooling_constructors!(
    MaxPooling1D => Max, 1; MaxPooling2D => Max, 2; MaxPooling3D => Max, 3;
    AveragePooling1D => Average, 1; AveragePooling2D => Average, 2; AveragePooling3D => Average, 3
);

macro_rules! global_constructors {
    ($($class:ident => $kind:ident);*) => {
        $(
            #[doc = concat!("Keras' `", stringify!($class), "`: a [`GlobalPooling`].")]
            pub struct $class;

            impl $class {
                /// Over every spatial axis, channels last, the axes dropped; named after the class.
                #[allow(clippy::new_ret_no_self)]
                pub fn new() -> GlobalPooling {
                    super::auto_named_as(GlobalPooling::new(PoolingKind::$kind), stringify!($class))
                }
            }
        )*
    };
}

global_constructors!(
    GlobalMaxPooling1D => Max; GlobalMaxPooling2D => Max; GlobalMaxPooling3D => Max;
    GlobalAveragePooling1D => Average; GlobalAveragePooling2D => Average; GlobalAveragePooling3D => Average
);
