//! Metrics computed inside the step on the device and read only when asked: Larq's
//! [`FlipRatio`] and [`metrics_scope`], which live in [`crate::metrics`] (below the quantizers
//! that record them) and are re-exported here, where training code looks for them.

pub use crate::metrics::{metrics_scope, scoped_metrics, FlipRatio, QUANTIZER_METRICS};
