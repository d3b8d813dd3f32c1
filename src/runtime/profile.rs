//! Per-kernel GPU times of one step, from timestamp queries around every dispatch
//! (`Plan::profile`, `bitgrad train --profile`).

use super::gpu::{Encoded, GpuExec};
use crate::device::block;
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
        let bytes = count as u64 * 8;
        let resolved = ctx.scoped("profiling a plan", || {
            let query_set = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("bitgrad profile"),
                ty: wgpu::QueryType::Timestamp,
                count,
            });
            let resolved = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("bitgrad profiled step") });
            self.encode(&mut enc, &copies, Some(&query_set));
            enc.resolve_query_set(&query_set, 0..count, &resolved, 0);
            ctx.queue.submit([enc.finish()]);
            Ok(resolved)
        })?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&block(
            "Plan::profile",
            "GPU timestamps natively (not offered in the browser)",
            ctx.read(&resolved, bytes),
        )?);
        let period = ctx.queue.get_timestamp_period() as f64;
        Ok(kernels
            .iter()
            .zip(ticks.chunks(2))
            .map(|((k, workgroups), t)| KernelTime {
                kernel: k.to_string(),
                workgroups: *workgroups,
                ns: t[1].saturating_sub(t[0]) as f64 * period,
            })
            .collect())
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
