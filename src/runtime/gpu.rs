//! Running a plan on a GPU: buffers for every value (placed by `memory`), recording each node
//! through its op family, one uniform arena, pipelines and bind groups, and encoding a step.

use std::collections::HashMap;
use std::sync::Arc;

use super::{memory, PlanMemory};
use crate::device::{GpuContext, Storage, Tensor};
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
    /// Nodes computed inside another node's fused kernel.
    pub(super) fused_nodes: usize,
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
        outputs: &[ValueId],
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

        // A fused kernel runs at its root's position: its leaves stay live until then, and the
        // values it computes inside are never stored.
        let fusion = super::fuse::plan(graph, order, outputs);
        let mut last_use = last_use.clone();
        // Its exports are written there too, and an assignment deferred past it reads its value
        // right after it.
        let late_reads = fusion.groups.iter().flat_map(|(root, g)| g.leaves.iter().chain(&g.exports).map(move |l| (*l, *root)));
        let deferred = fusion.deferred.iter().map(|(a, root)| (graph.nodes[order[*a]].inputs[1], *root));
        let signs = fusion.signs.iter().map(|(pos, bits)| (*bits, *pos));
        let patches = fusion.col2im_signs.iter().flat_map(|(pos, p)| [(p.dy, *pos), (p.bits, *pos)]);
        for (value, pos) in late_reads.chain(deferred).chain(signs).chain(patches) {
            if let Some(last) = last_use.get_mut(&value) {
                *last = (*last).max(pos);
            }
        }
        let placed = memory::place(graph, order, &last_use, &fusion.inlined, bytes, |id, need| {
            ctx.check_binding(|| name_of(id), need, BATCH_ADVICE)
        })?;
        memory.unpooled_bytes = placed.unpooled_bytes;
        let (alias, placement, pool) = (placed.alias, placed.slots, placed.sizes);
        let buffers =
            pool.iter().enumerate().map(|(i, size)| ctx.buffer(&format!("pool {i}"), *size).map(Arc::new)).collect::<Result<Vec<_>>>()?;
        memory.pooled_bytes = buffers.iter().map(|b| b.size()).sum();
        memory.buffers = buffers.len();
        for (id, slot) in placement {
            views.insert(id, BufferView { buffer: buffers[slot].clone(), size: bytes(id) });
        }
        for (id, root) in &alias {
            let view = BufferView { buffer: views[root].buffer.clone(), size: bytes(*id) };
            views.insert(*id, view);
        }

        // Records the node at `pos` as its op records it (a product reading packed signs
        // binds the bits in place of the unpacked floats; `fusion.signs` holds only products).
        let record_node = |pos: usize| -> Result<Step> {
            let node = &graph.nodes[order[pos]];
            let shapes: Vec<&crate::Shape> = node.inputs.iter().map(|i| &graph.value(*i).shape).collect();
            let signs = fusion.signs.get(&pos);
            let ins: Vec<BufferView> =
                node.inputs.iter().enumerate().map(|(j, i)| views[signs.filter(|_| j == 1).unwrap_or(i)].clone()).collect();
            let out = node.output.map(|o| views[&o].clone());
            let dtypes: Vec<crate::DType> = node.inputs.iter().map(|i| graph.value(*i).dtype).collect();
            let operands = Gpu {
                name: node.op.name(),
                caps: Caps { subgroups: ctx.subgroup_kernels, software: ctx.summary.is_software() },
                shapes: &shapes,
                dtypes: &dtypes,
                inputs: &ins,
                out: node.output.map(|o| &graph.value(o).shape).and_then(|s| out.as_ref().map(|v| (v, s))),
            };
            let recorded_step = match (&node.op, signs) {
                (crate::graph::Op::MatMul { trans_a, .. }, Some(_)) => crate::graph::ops::gemm::record_signs(*trans_a, &operands)?,
                _ => node.op.record(&operands)?,
            };
            let step = match recorded_step {
                Step::Choice(c) => Step::Dispatch(super::tune::choose(ctx, c)?),
                step => step,
            };
            if let Step::Dispatch(d) = &step {
                let op = match &node.layer {
                    Some(layer) => format!("layer `{layer}`'s {}", node.op.name()),
                    None => node.op.name().to_string(),
                };
                check_grid(ctx, d, &op)?;
            }
            Ok(step)
        };
        let mut recorded = Vec::new();
        for (pos, &n) in order.iter().enumerate() {
            let node = &graph.nodes[n];
            if node.output.is_some_and(|o| alias.contains_key(&o) || fusion.inlined.contains(&o) || fusion.exported.contains(&o)) {
                continue; // an aliased reshape needs no work; an inlined or exported value is computed by a fused kernel
            }
            if fusion.moved(pos) {
                continue; // recorded with the later dispatch it joins
            }
            if let Some(pair) = fusion.pack_pairs.get(&pos) {
                let x = (&views[&pair.x], &graph.value(pair.x).shape);
                recorded.push(crate::graph::ops::bitpack::record_pack_both(pair.clip, x, &views[&pair.signs], &views[&pair.mask])?);
                continue;
            }
            if let (Some(p), crate::graph::Op::Col2Im { geom }, Some(out)) = (fusion.col2im_signs.get(&pos), &node.op, node.output) {
                let choice = crate::graph::ops::im2col::record_col2im_signs(geom, p.k, &views[&p.dy], &views[&p.bits], &views[&out]);
                recorded.push(Step::Dispatch(super::tune::choose(ctx, choice)?));
                continue;
            }
            if let (Some(group), Some(out)) = (fusion.groups.get(&pos), node.output) {
                let shader = ctx.intern_shader("fused", &group.source);
                let mut bindings: Vec<(u32, BufferView)> =
                    group.leaves.iter().enumerate().map(|(i, l)| (i as u32 + 1, views[l].clone())).collect();
                for (j, w) in group.writes(out).enumerate() {
                    bindings.push(((group.leaves.len() + 1 + j) as u32, views[&w].clone()));
                }
                recorded.push(Step::Dispatch(super::tune::choose(ctx, group.choice(&shader, bindings))?));
                let mut deferred: Vec<usize> = fusion.deferred.iter().filter(|(_, root)| **root == pos).map(|(a, _)| *a).collect();
                deferred.sort_unstable();
                for a in deferred {
                    recorded.push(record_node(a)?);
                }
                continue;
            }
            recorded.push(record_node(pos)?);
        }
        let (steps, uniforms, dispatches) = encode_steps(ctx, recorded)?;
        Ok(GpuExec {
            ctx: ctx.clone(),
            pool: buffers,
            views,
            steps,
            pending_copies: Vec::new(),
            memory,
            dispatches,
            fused_nodes: fusion.inlined.len() + fusion.exported.len(),
            _uniforms: uniforms,
        })
    }

    pub(super) fn kernels(&self) -> Vec<String> {
        self.steps.iter().filter_map(|s| if let Encoded::Dispatch { kernel, .. } = s { Some(kernel.to_string()) } else { None }).collect()
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
            // `GpuExec::new` resolves every choice before encoding.
            Step::Choice(c) => {
                return Err(Error::invalid("encoding a plan", "step", format!("the kernel choice `{}` was not resolved", c.class)))
            }
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
