//! Metrics computed inside the step on the device and read only when asked. They sit below the
//! quantizers and layers that record them; `train::metrics` re-exports them.
//!
//! [`FlipRatio`] is Larq's `flip_ratio`: the fraction of a quantized kernel's values that changed
//! in an update, averaged over updates. [`metrics_scope`] enables metrics for every kernel
//! quantizer created inside it, as `larq.context.metrics_scope` does.

use std::cell::RefCell;

use crate::error::{Error, Result};
use crate::graph::{BinaryOp, Graph, Init, UnaryOp, ValueId};

/// Metric names Larq quantizers accept.
pub const QUANTIZER_METRICS: &[&str] = &["flip_ratio"];

thread_local! {
    static SCOPE: RefCell<Vec<Vec<String>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `metrics` enabled for the kernel quantizers created inside it (innermost scope
/// wins), like `larq.context.metrics_scope(["flip_ratio"])`. Unknown names are an error.
pub fn metrics_scope<T>(metrics: &[&str], f: impl FnOnce() -> T) -> Result<T> {
    if let Some(bad) = metrics.iter().find(|m| !QUANTIZER_METRICS.contains(m)) {
        return Err(Error::unknown("quantizer metric", bad, QUANTIZER_METRICS.iter().copied()));
    }
    SCOPE.with(|s| s.borrow_mut().push(metrics.iter().map(|m| m.to_string()).collect()));
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            SCOPE.with(|s| s.borrow_mut().pop());
        }
    }
    let _pop = Pop;
    Ok(f())
}

/// The metrics enabled by the innermost [`metrics_scope`], if any.
pub fn scoped_metrics() -> Vec<String> {
    active_scope().unwrap_or_default()
}

/// The innermost [`metrics_scope`]'s metrics, or `None` outside every scope (an empty scope is
/// `Some` of nothing: it turns metrics off). Layers take it when they are made, as Larq's
/// quantizers do, so a scope around the code that builds a model is honoured.
pub fn active_scope() -> Option<Vec<String>> {
    SCOPE.with(|s| s.borrow().last().cloned())
}

/// Larq's `flip_ratio` for one tensor of quantized values, recorded into a graph. Its state
/// (previous values as int8, total, count) lives in variables named `{name}/previous_values`,
/// `{name}/total` and `{name}/count`, updated on the device in the step that records it.
#[derive(Clone, Debug)]
pub struct FlipRatio {
    /// The metric after this step's update: total / (count - 1), 0 while count <= 1.
    pub result: ValueId,
    /// The running total.
    pub total: ValueId,
    /// The number of updates.
    pub count: ValueId,
}

impl FlipRatio {
    /// Records an update with `values` (this step's quantized kernel).
    pub fn record(g: &mut Graph, name: &str, values: ValueId) -> Result<Self> {
        let shape = g.value(values).shape.clone();
        let all: Vec<usize> = (0..shape.rank()).collect();
        let previous = g.variable(&format!("{name}/previous_values"), shape.clone(), Init::Zeros)?;
        let total = g.variable(&format!("{name}/total"), [1], Init::Zeros)?;
        let count = g.variable(&format!("{name}/count"), [1], Init::Zeros)?;
        // tf.cast(values, int8): truncation toward zero (saturated here to int8's range, where
        // TensorFlow's out-of-range result is unspecified).
        let clipped = g.unary(UnaryOp::Clip(-128.0, 127.0), values)?;
        let current = g.unary(UnaryOp::Trunc, clipped)?;
        let same = g.binary(BinaryOp::Eq, previous, current)?;
        let unchanged = g.sum(same, &all, false)?;
        let unchanged = g.reshape(unchanged, [1])?;
        let size = g.fill([1], shape.numel() as f32)?;
        let fraction = g.binary(BinaryOp::Div, unchanged, size)?;
        let changed = g.unary(UnaryOp::Neg, fraction)?;
        let ratio = g.unary(UnaryOp::Offset(1.0), changed)?;
        // total += ratio * sign(count): the first update only sets the previous values.
        let zero = g.fill([1], 0.0)?;
        let counted = g.binary(BinaryOp::Gt, count, zero)?;
        let increment = g.mul(ratio, counted)?;
        let new_total = g.add(total, increment)?;
        let new_count = g.unary(UnaryOp::Offset(1.0), count)?;
        // div_no_nan(total, count - 1)
        let denom = g.unary(UnaryOp::Offset(-1.0), new_count)?;
        let one = g.fill([1], 1.0)?;
        let safe = g.binary(BinaryOp::Max, denom, one)?;
        let quotient = g.binary(BinaryOp::Div, new_total, safe)?;
        let defined = g.binary(BinaryOp::Gt, denom, zero)?;
        let result = g.mul(quotient, defined)?;
        g.assign(previous, current)?;
        g.assign(total, new_total)?;
        g.assign(count, new_count)?;
        Ok(FlipRatio { result, total: new_total, count: new_count })
    }
}
