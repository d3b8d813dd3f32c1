//! The two backends. Each maps every [`crate::graph::Op`] to its implementation through an
//! exhaustive `match`, so both always have the same op set:
//! - [`cpu`] evaluates an op on host data with plain loops (the reference: clarity over speed);
//! - [`gpu`] records an op as WGSL dispatches and buffer copies for the plan to encode.

pub mod cpu;
pub mod gpu;
