//! Running a plan on a GPU: the buffer pool, recording each node through its op family, one
//! uniform arena, pipelines and bind groups, encoding, and per-kernel profiling.

use std::collections::HashMap;
use std::sync::Arc;

use super::PlanMemory;
use crate::device::{block, GpuContext, Storage, Tensor};
use crate::error::{Error, Result};
use crate::graph::ops::Gpu;
use crate::graph::{Graph, Source, ValueId};
use crate::kernels::{BufferView, Caps, Dispatch, Step};

pub(super) struct GpuExec {
    pub(super) ctx: Arc<GpuContext>,
    /// The buffers holding transient values (inputs and variables have their own).
    pub(super) pool: Vec<Arc<wgpu::Buffer>>,
    pub(super) views: HashMap<ValueId, BufferView>,
    pub(super) steps: Vec<Encoded>,
    pub(super) pending_copies: Vec<(BufferView, BufferView)>,
    pub(super) memory: PlanMemory,
    pub(super) dispatches: usize,
    // Keeps the uniform arena alive for the bind groups that point into it.
    pub(super) _uniforms: Option<wgpu::Buffer>,
}

pub(super) enum Encoded {
    Dispatch { pipeline: Arc<wgpu::ComputePipeline>, bind_group: wgpu::BindGroup, workgroups: [u32; 3], kernel: crate::kernels::Kernel },
    Copy { src: BufferView, dst: BufferView },
}

impl GpuExec {
    pub(super) fn new(
        ctx: &Arc<GpuContext>,
        graph: &Graph,
        order: &[usize],
        last_use: &HashMap<ValueId, usize>,
        variables: &[(ValueId, Tensor)],
        inputs: &[ValueId],
    ) -> Result<Self> {
        let bytes = |id: ValueId| (graph.value(id).shape.numel() * graph.value(id).dtype.size()) as u64;
        let name_of = |id: ValueId| match &graph.value(id).source {
            Source::Input { name } => format!("input `{name}`"),
            Source::Variable { name, .. } => format!("variable `{name}`"),
            Source::Constant { .. } => "constant".to_string(),
            Source::Node(n) => match &graph.nodes[*n].layer {
                Some(layer) => format!("layer `{layer}` (its {} output)", graph.nodes[*n].op.name()),
                None => format!("output of node {n} ({})", graph.nodes[*n].op.name()),
            },
        };
        let mut views: HashMap<ValueId, BufferView> = HashMap::new();
        let mut memory = PlanMemory::default();
        for &id in inputs {
            ctx.check_binding(|| name_of(id), bytes(id), BATCH_ADVICE)?;
            let b = ctx.buffer(&name_of(id), bytes(id))?;
            memory.input_bytes += b.size();
            views.insert(id, BufferView { buffer: Arc::new(b), size: bytes(id) });
        }
        for (id, t) in variables {
            ctx.check_binding(|| name_of(*id), bytes(*id), "")?;
            let Storage::Gpu { buffer, .. } = &t.storage else { unreachable!("bind_variable checked the device") };
            views.insert(*id, BufferView { buffer: buffer.clone(), size: bytes(*id) });
        }

        // A reshape of anything but a variable shares its input's buffer: values are immutable
        // once written, and only variables are rewritten (by assign). The shared buffer stays busy
        // until the last reader of any of its names.
        let mut alias: HashMap<ValueId, ValueId> = HashMap::new();
        for &n in order {
            let node = &graph.nodes[n];
            if let (crate::graph::Op::Reshape { .. }, Some(out)) = (&node.op, node.output) {
                let src = node.inputs[0];
                if !matches!(graph.value(src).source, Source::Variable { .. }) {
                    alias.insert(out, *alias.get(&src).unwrap_or(&src));
                }
            }
        }
        let mut busy_until = last_use.clone();
        for (a, root) in &alias {
            if let (Some(&la), Some(lr)) = (last_use.get(a), busy_until.get_mut(root)) {
                *lr = (*lr).max(la);
            }
        }

        // Pool transient values: a value takes a free buffer (best fit, growing the largest free
        // one if none fits) and releases it after its last reader. Two values that are live at
        // the same time never share a buffer, so a dispatch never binds one buffer both as input
        // and as output, which WebGPU forbids.
        let mut pool: Vec<(u64, Option<usize>)> = Vec::new(); // (size, busy until position)
        let mut placement: Vec<(ValueId, usize)> = Vec::new();
        for (pos, &n) in order.iter().enumerate() {
            let Some(out) = graph.nodes[n].output else { continue };
            if alias.contains_key(&out) {
                continue;
            }
            let need = bytes(out);
            ctx.check_binding(|| name_of(out), need, BATCH_ADVICE)?;
            memory.unpooled_bytes += need;
            let free = |(_, (_, busy)): &(usize, &(u64, Option<usize>))| busy.is_none_or(|b| b < pos);
            let best_fit =
                pool.iter().enumerate().filter(free).filter(|(_, (s, _))| *s >= need).min_by_key(|(_, (s, _))| *s).map(|(i, _)| i);
            let largest_free = || pool.iter().enumerate().filter(free).max_by_key(|(_, (s, _))| *s).map(|(i, _)| i);
            let slot = match best_fit.or_else(largest_free) {
                Some(i) => i,
                None => {
                    pool.push((0, None));
                    pool.len() - 1
                }
            };
            pool[slot].0 = pool[slot].0.max(need);
            pool[slot].1 = Some(busy_until[&out]);
            placement.push((out, slot));
        }
        let buffers = pool
            .iter()
            .enumerate()
            .map(|(i, (size, _))| ctx.buffer(&format!("pool {i}"), *size).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        memory.pooled_bytes = buffers.iter().map(|b| b.size()).sum();
        memory.buffers = buffers.len();
        for (id, slot) in placement {
            views.insert(id, BufferView { buffer: buffers[slot].clone(), size: bytes(id) });
        }
        for (id, root) in &alias {
            let view = BufferView { buffer: views[root].buffer.clone(), size: bytes(*id) };
            views.insert(*id, view);
        }

        let mut recorded = Vec::new();
        for &n in order {
            let node = &graph.nodes[n];
            if node.output.is_some_and(|o| alias.contains_key(&o)) {
                continue; // an aliased reshape needs no work
            }
            let shapes: Vec<&crate::Shape> = node.inputs.iter().map(|i| &graph.value(*i).shape).collect();
            let ins: Vec<BufferView> = node.inputs.iter().map(|i| views[i].clone()).collect();
            let out = node.output.map(|o| views[&o].clone());
            let dtypes: Vec<crate::DType> = node.inputs.iter().map(|i| graph.value(*i).dtype).collect();
            let operands = Gpu {
                name: node.op.name(),
                caps: Caps { subgroups: ctx.subgroup_kernels },
                shapes: &shapes,
                dtypes: &dtypes,
                inputs: &ins,
                out: node.output.map(|o| &graph.value(o).shape).and_then(|s| out.as_ref().map(|v| (v, s))),
            };
            let step = node.op.record(&operands)?;
            if let Step::Dispatch(d) = &step {
                let op = match &node.layer {
                    Some(layer) => format!("layer `{layer}`'s {}", node.op.name()),
                    None => node.op.name().to_string(),
                };
                check_grid(ctx, d, &op)?;
            }
            recorded.push(step);
        }
        let (steps, uniforms, dispatches) = encode_steps(ctx, recorded)?;
        Ok(GpuExec { ctx: ctx.clone(), pool: buffers, views, steps, pending_copies: Vec::new(), memory, dispatches, _uniforms: uniforms })
    }

    pub(super) fn run(&mut self) -> Result<()> {
        let ctx = self.ctx.clone();
        let copies = std::mem::take(&mut self.pending_copies);
        ctx.scoped("running a plan", || {
            let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("bitgrad step") });
            self.encode(&mut enc, &copies, None);
            ctx.queue.submit([enc.finish()]);
            Ok(())
        })
    }

    /// Encodes the step. With a query set, every dispatch gets its own compute pass with begin
    /// and end timestamps (slots 2i and 2i + 1); without, consecutive dispatches share a pass.
    pub(super) fn encode(&self, enc: &mut wgpu::CommandEncoder, copies: &[(BufferView, BufferView)], timestamps: Option<&wgpu::QuerySet>) {
        for (src, dst) in copies {
            enc.copy_buffer_to_buffer(&src.buffer, 0, &dst.buffer, 0, dst.size);
        }
        let mut i = 0;
        let mut dispatch = 0u32;
        while i < self.steps.len() {
            if let Encoded::Copy { src, dst } = &self.steps[i] {
                enc.copy_buffer_to_buffer(&src.buffer, 0, &dst.buffer, 0, dst.size);
                i += 1;
                continue;
            }
            let timestamp_writes = timestamps.map(|query_set| wgpu::ComputePassTimestampWrites {
                query_set,
                beginning_of_pass_write_index: Some(2 * dispatch),
                end_of_pass_write_index: Some(2 * dispatch + 1),
            });
            // Consecutive dispatches share one compute pass; wgpu orders them by their buffer
            // usage.
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("bitgrad dispatches"), timestamp_writes });
            while let Some(Encoded::Dispatch { pipeline, bind_group, workgroups, .. }) = self.steps.get(i) {
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, bind_group, &[]);
                pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
                i += 1;
                dispatch += 1;
                if timestamps.is_some() {
                    break;
                }
            }
        }
    }

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

/// What to change when a value that grows with the batch exceeds a limit.
pub(super) const BATCH_ADVICE: &str = "; a smaller batch needs less (inference splits a batch to fit by itself)";

pub(super) fn check_grid(ctx: &GpuContext, d: &Dispatch, op: &str) -> Result<()> {
    let limit = ctx.limits.max_compute_workgroups_per_dimension.min(crate::kernels::MAX_GROUPS_PER_DIM);
    if let Some(&w) = d.workgroups.iter().find(|&&w| w > limit) {
        return Err(Error::LimitExceeded {
            what: format!("{op} ({}) dispatch", d.kernel),
            needed: w as u64,
            limit: limit as u64,
            limit_name: "max_compute_workgroups_per_dimension",
            adapter: ctx.summary.name.clone(),
            advice: BATCH_ADVICE,
        });
    }
    Ok(())
}

/// Creates pipelines, one uniform arena holding every dispatch's params, and bind groups.
pub(super) fn encode_steps(ctx: &GpuContext, recorded: Vec<Step>) -> Result<(Vec<Encoded>, Option<wgpu::Buffer>, usize)> {
    let align = ctx.limits.min_uniform_buffer_offset_alignment as usize;
    let mut arena: Vec<u8> = Vec::new();
    let mut offsets = Vec::new();
    for step in &recorded {
        if let Step::Dispatch(d) = step {
            arena.resize(arena.len().next_multiple_of(align), 0);
            offsets.push(arena.len() as u64);
            arena.extend_from_slice(&d.params);
        }
    }
    let uniforms = if arena.is_empty() { None } else { Some(ctx.uniform_with_data("params", &arena)?) };
    let mut out = Vec::with_capacity(recorded.len());
    let mut offsets = offsets.into_iter();
    let mut dispatches = 0;
    for step in recorded {
        match step {
            Step::Copy { src, dst } => out.push(Encoded::Copy { src, dst }),
            Step::Dispatch(d) => {
                dispatches += 1;
                let pipeline = ctx.pipeline(&d.kernel)?;
                let offset = offsets.next().expect("one offset per dispatch");
                let uniforms = uniforms.as_ref().expect("dispatches have params");
                let bind_group = ctx.scoped(&format!("binding {}", d.kernel), || {
                    let layout = pipeline.get_bind_group_layout(0);
                    let mut entries = vec![wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: uniforms,
                            offset,
                            size: std::num::NonZeroU64::new(d.params.len() as u64),
                        }),
                    }];
                    entries.extend(d.bindings.iter().map(|(b, v)| wgpu::BindGroupEntry {
                        binding: *b,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &v.buffer,
                            offset: 0,
                            size: std::num::NonZeroU64::new(v.size),
                        }),
                    }));
                    Ok(ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some(d.kernel.entry),
                        layout: &layout,
                        entries: &entries,
                    }))
                })?;
                out.push(Encoded::Dispatch { pipeline, bind_group, workgroups: d.workgroups, kernel: d.kernel });
            }
        }
    }
    Ok((out, uniforms, dispatches))
}
