//! Layer arguments given as values or, as Larq and Keras take them, by name:
//! `.kernel_quantizer("ste_sign")`, `.kernel_constraint("weight_clip")`, `.activation("relu")`,
//! `.padding("same")`. A name that means nothing is not a panic in the builder: the layer keeps
//! the error and its build (so `compile`, `summary`, `fit`) returns it, naming the layer, the
//! argument, the closest known name and the list.

use std::sync::Arc;

use super::{Activation, Initializer, Regularizer};
use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::graph::{DataFormat, Padding};
use crate::quantizers::Quantizer;

/// A value of `T`, or a name that stands for one (Keras' string identifiers).
pub trait Arg<T> {
    /// The value, or why the name stands for none.
    fn resolve(self) -> Result<T>;
}

/// Implements [`Arg`] for the type itself and for names read by its `from_name`.
macro_rules! by_name {
    ($($t:ty => $from_name:path),* $(,)?) => {
        $(
            impl Arg<$t> for $t {
                fn resolve(self) -> Result<$t> {
                    Ok(self)
                }
            }
            impl Arg<$t> for &str {
                fn resolve(self) -> Result<$t> {
                    $from_name(self)
                }
            }
            impl Arg<$t> for String {
                fn resolve(self) -> Result<$t> {
                    $from_name(&self)
                }
            }
        )*
    };
}

by_name! {
    Quantizer => Quantizer::from_name,
    Activation => Activation::from_name,
    Initializer => Initializer::from_name,
    Regularizer => Regularizer::from_name,
    Padding => Padding::from_name,
    DataFormat => DataFormat::from_name,
}

/// A constraint object, or the name of one (`"weight_clip"`, Larq's default clip of 1).
impl<C: Constraint + 'static> Arg<Arc<dyn Constraint>> for C {
    fn resolve(self) -> Result<Arc<dyn Constraint>> {
        Ok(Arc::new(self))
    }
}

impl Arg<Arc<dyn Constraint>> for &str {
    fn resolve(self) -> Result<Arc<dyn Constraint>> {
        crate::constraints::from_keras(&serde_json::Value::String(self.to_string())).map(Arc::from)
    }
}

/// The first argument a builder could not resolve, kept until the layer is built: Keras raises
/// in the constructor, a builder chain cannot, and a layer that silently dropped the argument
/// would train something else than what was written.
#[derive(Clone, Debug, Default)]
pub struct Invalid(Option<(&'static str, String)>);

impl Invalid {
    /// Resolves `value` for argument `arg`, keeping the first failure; `None` when it failed.
    pub fn take<T>(&mut self, arg: &'static str, value: impl Arg<T>) -> Option<T> {
        match value.resolve() {
            Ok(v) => Some(v),
            Err(e) => {
                if self.0.is_none() {
                    self.0 = Some((arg, e.to_string()));
                }
                None
            }
        }
    }

    /// The kept failure, as the error of the layer's build (which names the layer).
    pub fn check(&self) -> Result<()> {
        match &self.0 {
            Some((arg, why)) => Err(Error::invalid("", arg, why.clone())),
            None => Ok(()),
        }
    }
}

/// `Into<Vec<usize>>` for Keras' size arguments: one value for every spatial axis (`3`) or one
/// per axis (`(3, 3)`, `[3, 3]`, `&[3, 3]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Size {
    /// The same on every axis.
    All(usize),
    /// One per axis.
    PerAxis(Vec<usize>),
}

impl Size {
    /// The sizes for `rank` spatial axes (a per-axis size keeps its own length; the layer checks
    /// it against its rank).
    pub fn for_rank(&self, rank: usize) -> Vec<usize> {
        match self {
            Size::All(n) => vec![*n; rank],
            Size::PerAxis(v) => v.clone(),
        }
    }
}

impl From<usize> for Size {
    fn from(n: usize) -> Self {
        Size::All(n)
    }
}

impl From<(usize, usize)> for Size {
    fn from((a, b): (usize, usize)) -> Self {
        Size::PerAxis(vec![a, b])
    }
}

impl From<(usize, usize, usize)> for Size {
    fn from((a, b, c): (usize, usize, usize)) -> Self {
        Size::PerAxis(vec![a, b, c])
    }
}

impl<const N: usize> From<[usize; N]> for Size {
    fn from(v: [usize; N]) -> Self {
        Size::PerAxis(v.to_vec())
    }
}

impl From<&[usize]> for Size {
    fn from(v: &[usize]) -> Self {
        Size::PerAxis(v.to_vec())
    }
}

impl From<Vec<usize>> for Size {
    fn from(v: Vec<usize>) -> Self {
        Size::PerAxis(v)
    }
}

/// Builder methods for the convolution arguments a layer struct has as fields (`strides`,
/// `padding`, `data_format`, and any of `dilation_rate`, `groups`, `pad_values`), with Keras'
/// forms: sizes as a number or one per axis, padding and data format by name. Names that stand
/// for nothing are kept in `args.invalid`, as [`super::QuantLayer`]'s are.
macro_rules! conv_builders {
    ($t:ty { $($field:ident),* }) => {
        impl $t {
            /// Sets `strides` (a number for every axis, or one per axis).
            pub fn strides(mut self, s: impl Into<$crate::layers::arguments::Size>) -> Self {
                self.strides = s.into().for_rank(self.kernel_size.len());
                self
            }

            /// Sets `padding` (`"valid"`, `"same"`, `"causal"` for 1-D, or a [`$crate::graph::Padding`]).
            pub fn padding(mut self, p: impl $crate::layers::arguments::Arg<$crate::graph::Padding>) -> Self {
                if let Some(p) = self.args.invalid.take("padding", p) {
                    self.padding = p;
                }
                self
            }

            /// Sets `data_format` (`"channels_last"` or `"channels_first"`).
            pub fn data_format(mut self, f: impl $crate::layers::arguments::Arg<$crate::graph::DataFormat>) -> Self {
                if let Some(f) = self.args.invalid.take("data_format", f) {
                    self.data_format = f;
                }
                self
            }

            $($crate::layers::arguments::conv_builders!(@ $field);)*
        }
    };
    (@ dilation_rate) => {
        /// Sets `dilation_rate` (a number for every axis, or one per axis).
        pub fn dilation_rate(mut self, d: impl Into<$crate::layers::arguments::Size>) -> Self {
            self.dilation_rate = d.into().for_rank(self.kernel_size.len());
            self
        }
    };
    (@ groups) => {
        /// Sets `groups` (channel groups; filters and input channels must be multiples).
        pub fn groups(mut self, groups: usize) -> Self {
            self.groups = groups;
            self
        }
    };
    (@ pad_values) => {
        /// Sets Larq's `pad_values` (0 or 1: the value "same" padding adds after the input
        /// quantizer).
        pub fn pad_values(mut self, v: f32) -> Self {
            self.pad_values = v;
            self
        }
    };
}

/// Constructors under Larq's and Keras' class names for a layer with `filters` and a
/// `kernel_size`: a unit struct per class whose `new(filters, kernel_size)` makes the general
/// layer (`QuantConv2D::new(64, (3, 3))` is a `QuantConv` with two spatial axes). `$make` builds
/// it from `$filters`, the sizes `$k` for the class's rank, and `$class`, the class's name.
macro_rules! class_constructors {
    ($doc:literal, $target:ty, |$filters:ident, $k:ident, $class:ident| $make:expr; $($name:ident => $rank:literal),* $(,)?) => {
        $(
            #[doc = concat!("`", stringify!($name), "`: ", $doc, " with ", stringify!($rank), " spatial axes.")]
            pub struct $name;

            impl $name {
                /// `filters` output channels, a kernel of `kernel_size` (one number for every axis,
                /// or one per axis), Keras' defaults otherwise.
                #[allow(clippy::new_ret_no_self)]
                pub fn new($filters: usize, kernel_size: impl Into<$crate::layers::arguments::Size>) -> $target {
                    let $k = kernel_size.into().for_rank($rank);
                    let $class = stringify!($name);
                    $make
                }
            }
        )*
    };
}

pub(crate) use class_constructors;
pub(crate) use conv_builders;
