//! Quantizers written as a composition of graph ops, as Keras' custom objects are Python
//! functions of TensorFlow ops: Keras JSON names them `{"class_name": "function", "config":
//! "<name>"}`. Larq Zoo's own come built in, with larq-zoo 2.4's exact semantics:
//!
//! - `xnor_weight_scale` (XNOR-Net's kernels): `clip(x, -1, 1)`, then its mean absolute value
//!   over every axis but the last (one scale per output channel) times `ste_sign` of it; the
//!   gradient flows through the clip, the sign's straight-through window and the scale.
//! - `magnitude_aware_sign_unclipped` (DoReFa-Net's kernels): `sign(x)` (0 counts as +1) times
//!   the mean absolute value of the whole tensor, with the identity as its gradient.
//!
//! A program registers its own with [`FunctionQuantizer::register`].

use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};
use crate::graph::{Graph, UnaryOp, ValueId};

/// What records a function quantizer on a value: its output.
pub type Record = dyn Fn(&mut Graph, ValueId) -> Result<ValueId> + Send + Sync;

/// A quantizer made of graph ops (see the module docs).
pub struct FunctionQuantizer {
    name: String,
    precision: u32,
    record: Box<Record>,
}

impl std::fmt::Debug for FunctionQuantizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FunctionQuantizer({}, precision {})", self.name, self.precision)
    }
}

impl PartialEq for FunctionQuantizer {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// Those a program registered, by name.
static REGISTRY: Mutex<Vec<Arc<FunctionQuantizer>>> = Mutex::new(Vec::new());

impl FunctionQuantizer {
    /// Registers a quantizer named `name` (the name Keras JSON gives it) of `precision` bits
    /// (what Larq's `set_precision` gives a function, shown by the summary) recorded by
    /// `record`, whose ops' gradients are its pseudo-gradient. A name already taken by any
    /// quantizer is an error.
    pub fn register(
        name: &str,
        precision: u32,
        record: impl Fn(&mut Graph, ValueId) -> Result<ValueId> + Send + Sync + 'static,
    ) -> Result<Arc<Self>> {
        if precision == 0 {
            return Err(Error::invalid("FunctionQuantizer", "precision", "must be at least 1"));
        }
        let q = Arc::new(FunctionQuantizer { name: name.to_string(), precision, record: Box::new(record) });
        let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        let taken = super::builtin_names().any(|n| n == name)
            || super::custom::by_name(name).is_some()
            || builtins().iter().any(|b| b.name == name)
            || registry.iter().any(|r| r.name == name);
        if taken {
            return Err(Error::invalid(
                "FunctionQuantizer",
                "name",
                format!("`{name}` is already the name of a quantizer; register this one under another name"),
            ));
        }
        registry.push(q.clone());
        Ok(q)
    }

    /// The name Keras JSON gives it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bits per value.
    pub fn precision(&self) -> u32 {
        self.precision
    }

    /// Records the quantizer on `x`.
    pub fn record(&self, g: &mut Graph, x: ValueId) -> Result<ValueId> {
        (self.record)(g, x)
    }
}

/// The function quantizer named `name`: a built-in one or one a program registered.
pub fn by_name(name: &str) -> Option<Arc<FunctionQuantizer>> {
    builtins()
        .iter()
        .find(|q| q.name == name)
        .cloned()
        .or_else(|| REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|q| q.name == name).cloned())
}

/// Every function quantizer's name, the built-in ones first.
pub fn names() -> Vec<String> {
    let registered = REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|q| q.name.clone()).collect::<Vec<_>>();
    builtins().iter().map(|q| q.name.clone()).chain(registered).collect()
}

/// Larq Zoo's function quantizers.
fn builtins() -> &'static [Arc<FunctionQuantizer>] {
    static BUILTINS: OnceLock<Vec<Arc<FunctionQuantizer>>> = OnceLock::new();
    BUILTINS.get_or_init(|| {
        let make = |name: &str, record: Box<Record>| Arc::new(FunctionQuantizer { name: name.to_string(), precision: 1, record });
        vec![
            make("xnor_weight_scale", Box::new(xnor_weight_scale)),
            make("magnitude_aware_sign_unclipped", Box::new(magnitude_aware_sign_unclipped)),
        ]
    })
}

/// larq-zoo's `xnor_weight_scale`: `x = clip(x, -1, 1)`, `alpha = mean(|x|)` over every axis but
/// the last (kept), `alpha * ste_sign(x)`; no gradient is stopped.
fn xnor_weight_scale(g: &mut Graph, x: ValueId) -> Result<ValueId> {
    let rank = g.value(x).shape.rank();
    let clipped = g.unary(UnaryOp::Clip(-1.0, 1.0), x)?;
    let abs = g.unary(UnaryOp::Abs, clipped)?;
    let axes: Vec<usize> = (0..rank.saturating_sub(1)).collect();
    let alpha = if axes.is_empty() { abs } else { g.mean(abs, &axes, true)? };
    let sign = super::Quantizer::SteSign { clip_value: Some(1.0) }.apply(g, clipped)?;
    let y = g.mul(alpha, sign)?;
    declare_scaled_sign(g, y, alpha)
}

/// larq-zoo's `magnitude_aware_sign_unclipped`: `sign(x) * mean(|x|)` (the mean over the whole
/// tensor, gradient stopped), with the identity gradient.
fn magnitude_aware_sign_unclipped(g: &mut Graph, x: ValueId) -> Result<ValueId> {
    let rank = g.value(x).shape.rank();
    let abs = g.unary(UnaryOp::Abs, x)?;
    let all: Vec<usize> = (0..rank).collect();
    let scale = g.mean(abs, &all, false)?;
    let scale = g.reshape(scale, vec![1; rank.max(1)])?;
    // lq.math.sign: +1 at 0, as ste_sign's forward.
    let sign = super::Quantizer::SteSign { clip_value: None }.apply(g, x)?;
    let y = g.mul(sign, scale)?;
    g.override_gradient(y, &[x], |_, dy| Ok(vec![Some(dy)]))?;
    declare_scaled_sign(g, y, scale)
}

/// Declares `y = scale * sign` as ±alpha values (one scale, or one per output channel), so
/// that a layer's product with them runs on bit planes; returns `y`.
fn declare_scaled_sign(g: &mut Graph, y: ValueId, scale: ValueId) -> Result<ValueId> {
    let n = g.value(scale).shape.numel();
    let scale = g.reshape(scale, [n])?;
    let form = crate::graph::LowBit { encoding: crate::graph::Encoding::Signed, scale: 1.0 };
    g.declare_quantized(crate::graph::Quantized { q: y, form, channel_scale: Some(scale), values: "±alpha" })?;
    Ok(y)
}
