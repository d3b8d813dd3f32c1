//! Per-kernel GPU times of one step, from timestamp queries around every dispatch
//! (`Plan::profile`, `bitgrad train --profile`).

use super::gpu::{Encoded, GpuExec};
use crate::error::{Error, Result};

impl GpuExec {
    /// Runs one step with GPU timestamps around every dispatch and returns each kernel's time.
    pub(super) fn profile(&mut self) -> Result<Vec<KernelTime>> {
        let ctx = self.ctx.clone();
        if !ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(Error::Unsupported { feature: "timestamp queries", adapter: ctx.summary.name.clone() });
        }
        let kernels: Vec<(crate::kernels::Kernel, [u32; 3])> = self
            .steps
            .iter()
            .filter_map(|s| if let Encoded::Dispatch { kernel, workgroups, .. } = s { Some((kernel.clone(), *workgroups)) } else { None })
            .collect();
        let count = 2 * kernels.len() as u32;
        if count > wgpu::QUERY_SET_MAX_QUERIES {
            return Err(Error::invalid(
                "Plan::profile",
                "plan",
                format!("{} dispatches; profiling times at most {}", kernels.len(), wgpu::QUERY_SET_MAX_QUERIES / 2),
            ));
        }
        if kernels.is_empty() {
            return Ok(Vec::new());
        }
        let copies = std::mem::take(&mut self.pending_copies);
        let ns = ctx.time_passes("Plan::profile", kernels.len() as u32, |enc, query_set| self.encode(enc, &copies, Some(query_set)))?;
        Ok(kernels.iter().zip(ns).map(|((k, workgroups), ns)| KernelTime { kernel: k.to_string(), workgroups: *workgroups, ns }).collect())
    }
}

/// GPU time of one dispatch, from timestamps written at the start and end of its pass.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    /// "shader::entry point".
    pub kernel: String,
    /// Workgroups dispatched (x, y, z).
    pub workgroups: [u32; 3],
    /// Nanoseconds.
    pub ns: f64,
}
