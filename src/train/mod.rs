//! Training support: metrics (more arrives with losses, optimizers and the fit loop).

pub mod metrics;
