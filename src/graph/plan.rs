//! Planning and running a graph on a device.
//!
//! `Plan::new` does everything that does not change between steps: it prunes nodes that no
//! requested output or assignment needs, checks every buffer and dispatch against the adapter's
//! limits, places transient values in pooled buffers by liveness (reshapes share their input's
//! buffer), creates pipelines (cached per
//! device), uniform parameters and bind groups. `Plan::run` then only encodes the recorded steps
//! into one command encoder and submits once; nothing is read back unless `fetch` asks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::{Graph, Init, Source, ValueId};
use crate::backend::{cpu, gpu};
use crate::device::{block, lock, Device, GpuContext, Storage, Tensor};
use crate::error::{Error, Result};
use crate::kernels::{BufferView, Dispatch};
use crate::tensor::{DType, HostTensor, TensorData};

/// Named persistent tensors (latent weights, statistics, optimizer slots) shared by the plans
/// of one model. A plan creates the variables it needs but does not find here, from their
/// [`Init`], on its own device.
#[derive(Clone, Debug, Default)]
pub struct ParamStore {
    tensors: BTreeMap<String, Tensor>,
}

impl ParamStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tensor named `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// Adds or replaces a tensor.
    pub fn insert(&mut self, name: impl Into<String>, tensor: Tensor) {
        self.tensors.insert(name.into(), tensor);
    }

    /// All tensors by name, sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Tensor)> {
        self.tensors.iter()
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}

/// Memory figures of a GPU plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanMemory {
    /// Bytes of the pooled buffers holding transient values.
    pub pooled_bytes: u64,
    /// Bytes the same values would take with one buffer each.
    pub unpooled_bytes: u64,
    /// Number of pooled buffers.
    pub buffers: usize,
    /// Bytes of input buffers.
    pub input_bytes: u64,
}

/// A graph made ready to run on one device. See the module docs.
pub struct Plan {
    device: Device,
    graph: Graph,
    order: Vec<usize>,
    outputs: Vec<ValueId>,
    /// Values with a tensor of their own: variables (shared through the [`ParamStore`]) and
    /// constants (uploaded by this plan).
    variables: Vec<(ValueId, Tensor)>,
    inputs: Vec<ValueId>,
    fed: HashSet<ValueId>,
    exec: Exec,
}

enum Exec {
    Cpu(CpuExec),
    Gpu(GpuExec),
}

struct CpuExec {
    feeds: HashMap<ValueId, TensorData>,
    /// Position in `order` after which a node output is dead.
    last_use: HashMap<ValueId, usize>,
    results: HashMap<ValueId, TensorData>,
}

struct GpuExec {
    ctx: Arc<GpuContext>,
    /// The buffers holding transient values (inputs and variables have their own).
    pool: Vec<Arc<wgpu::Buffer>>,
    views: HashMap<ValueId, BufferView>,
    steps: Vec<Encoded>,
    pending_copies: Vec<(BufferView, BufferView)>,
    memory: PlanMemory,
    dispatches: usize,
    // Keeps the uniform arena alive for the bind groups that point into it.
    _uniforms: Option<wgpu::Buffer>,
}

enum Encoded {
    Dispatch { pipeline: Arc<wgpu::ComputePipeline>, bind_group: wgpu::BindGroup, workgroups: [u32; 3], kernel: crate::kernels::Kernel },
    Copy { src: BufferView, dst: BufferView },
}

impl Plan {
    /// Plans `graph` on `device` so that `outputs` can be fetched after each run. Variables not
    /// in `params` are created there.
    pub fn new(device: &Device, graph: &Graph, outputs: &[ValueId], params: &mut ParamStore) -> Result<Plan> {
        for &o in outputs {
            graph.check(o)?;
        }
        let order = live_nodes(graph, outputs);
        let mut used: Vec<ValueId> = outputs.to_vec();
        order.iter().for_each(|&n| used.extend(&graph.nodes[n].inputs));
        used.sort();
        used.dedup();

        let mut variables = Vec::new();
        let mut inputs = Vec::new();
        for &id in &used {
            match &graph.value(id).source {
                Source::Variable { name, init } => variables.push((id, bind_variable(device, graph, id, name, init, params)?)),
                Source::Constant { data } => variables.push((id, device.upload(data)?)),
                Source::Input { .. } => inputs.push(id),
                Source::Node(_) => {}
            }
        }
        let last_use = liveness(graph, &order, outputs);
        let exec = match device {
            Device::Cpu => Exec::Cpu(CpuExec { feeds: HashMap::new(), last_use, results: HashMap::new() }),
            Device::Gpu(ctx) => Exec::Gpu(GpuExec::new(ctx, graph, &order, &last_use, &variables, &inputs)?),
        };
        Ok(Plan {
            device: device.clone(),
            graph: graph.clone(),
            order,
            outputs: outputs.to_vec(),
            variables,
            inputs,
            fed: HashSet::new(),
            exec,
        })
    }

    /// The device this plan runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Number of nodes that run each step (after pruning).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when no node runs.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Number of compute dispatches per run (GPU plans), or `None` on the CPU.
    pub fn dispatches(&self) -> Option<usize> {
        match &self.exec {
            Exec::Gpu(g) => Some(g.dispatches),
            Exec::Cpu(_) => None,
        }
    }

    /// Buffer figures of a GPU plan, or `None` on the CPU.
    pub fn memory(&self) -> Option<PlanMemory> {
        match &self.exec {
            Exec::Gpu(g) => Some(g.memory),
            Exec::Cpu(_) => None,
        }
    }

    /// Fills every pooled (transient) buffer of a GPU plan with the 32-bit `word`, so that an
    /// element a kernel fails to write shows up as that value after the next run. A debugging
    /// aid; a no-op on the CPU, whose values are always freshly computed.
    pub fn poison_buffers(&self, word: u32) {
        if let Exec::Gpu(g) = &self.exec {
            for buffer in &g.pool {
                let words = vec![word; (buffer.size() / 4) as usize];
                g.ctx.queue.write_buffer(buffer, 0, bytemuck::cast_slice(&words));
            }
        }
    }

    fn input_id(&self, name: &str, t_shape: &crate::Shape, t_dtype: crate::DType) -> Result<ValueId> {
        let id = self.graph.find_input(name).ok_or_else(|| Error::Unknown { kind: "input", name: name.to_string() })?;
        let v = self.graph.value(id);
        if &v.shape != t_shape || v.dtype != t_dtype {
            return Err(Error::ShapeMismatch {
                op: "feed",
                lhs: v.shape.dims().to_vec(),
                rhs: t_shape.dims().to_vec(),
                reason: format!("input `{name}` is declared {:?} {:?} but was fed {:?} {t_dtype:?}", v.dtype, v.shape, t_shape),
            });
        }
        Ok(id)
    }

    /// Sets input `name` for the following runs from host memory.
    pub fn feed(&mut self, name: &str, t: &HostTensor) -> Result<()> {
        let id = self.input_id(name, t.shape(), t.dtype())?;
        match &mut self.exec {
            Exec::Cpu(c) => {
                c.feeds.insert(id, t.data().clone());
            }
            Exec::Gpu(g) => {
                if let Some(v) = g.views.get(&id) {
                    g.ctx.queue.write_buffer(&v.buffer, 0, t.data().as_bytes());
                }
            }
        }
        self.fed.insert(id);
        Ok(())
    }

    /// Sets input `name` from a tensor already on this plan's device; on the GPU the copy is
    /// part of the next run's submission, so no data crosses to the host.
    pub fn feed_tensor(&mut self, name: &str, t: &Tensor) -> Result<()> {
        let id = self.input_id(name, t.shape(), t.dtype())?;
        if !t.device().same(&self.device) {
            return Err(Error::WrongDevice {
                what: format!("input `{name}`"),
                tensor_device: t.device().describe(),
                plan_device: self.device.describe(),
            });
        }
        match (&mut self.exec, &t.storage) {
            (Exec::Cpu(c), Storage::Cpu(d)) => {
                c.feeds.insert(id, lock(d).clone());
            }
            (Exec::Gpu(g), Storage::Gpu { buffer, .. }) => {
                if let Some(v) = g.views.get(&id) {
                    g.pending_copies.push((BufferView { buffer: buffer.clone(), size: v.size }, v.clone()));
                }
            }
            _ => unreachable!("device equality checked above"),
        }
        self.fed.insert(id);
        Ok(())
    }

    fn check_feeds(&self) -> Result<()> {
        if let Some(&missing) = self.inputs.iter().find(|i| !self.fed.contains(i)) {
            let name = match &self.graph.value(missing).source {
                Source::Input { name } => name.clone(),
                _ => format!("{missing:?}"),
            };
            return Err(Error::invalid("Plan::run", "feeds", format!("input `{name}` was never fed")));
        }
        Ok(())
    }

    /// Runs one step: every planned node in order, as one GPU submission.
    pub fn run(&mut self) -> Result<()> {
        self.check_feeds()?;
        match &mut self.exec {
            Exec::Cpu(c) => c.run(&self.graph, &self.order, &self.outputs, &self.variables),
            Exec::Gpu(g) => g.run(),
        }
    }

    /// Runs one step (like [`Plan::run`]) with GPU timestamps around every dispatch, and returns
    /// each dispatch's GPU time in order. GPU plans on adapters with timestamp queries only.
    pub fn profile(&mut self) -> Result<Vec<KernelTime>> {
        if matches!(self.exec, Exec::Gpu(_)) {
            self.check_feeds()?;
        }
        match &mut self.exec {
            Exec::Gpu(g) => g.profile(),
            Exec::Cpu(_) => Err(Error::Unsupported { feature: "GPU timestamps", adapter: "cpu (reference backend)".into() }),
        }
    }

    fn readable(&self, id: ValueId) -> Result<()> {
        let ok = self.outputs.contains(&id) || self.inputs.contains(&id) || self.variables.iter().any(|(v, _)| *v == id);
        if !ok {
            return Err(Error::invalid("Plan::fetch", "value", format!("{id:?} was not requested as an output when the plan was made")));
        }
        Ok(())
    }

    /// Copies an output (or an input or variable) of the last run to host memory.
    pub fn fetch(&self, id: ValueId) -> Result<HostTensor> {
        block("Plan::fetch", "Plan::fetch_async", self.fetch_async(id))
    }

    /// [`Plan::fetch`] without blocking, as the browser needs.
    pub async fn fetch_async(&self, id: ValueId) -> Result<HostTensor> {
        self.readable(id)?;
        let v = self.graph.value(id);
        if let Some((_, t)) = self.variables.iter().find(|(vid, _)| *vid == id) {
            return t.download_async().await;
        }
        let data = match &self.exec {
            Exec::Cpu(c) => c
                .results
                .get(&id)
                .or_else(|| c.feeds.get(&id))
                .cloned()
                .ok_or_else(|| Error::invalid("Plan::fetch", "value", format!("{id:?} has no value yet: call run first")))?,
            Exec::Gpu(g) => {
                let view = &g.views[&id];
                TensorData::from_bytes(v.dtype, &g.ctx.read(&view.buffer, view.size).await?)
            }
        };
        HostTensor::new(v.shape.clone(), data)
    }

    /// Copies an output of the last run into a new tensor on the same device (no host trip).
    pub fn output_tensor(&self, id: ValueId) -> Result<Tensor> {
        self.readable(id)?;
        let v = self.graph.value(id);
        let storage = match &self.exec {
            Exec::Cpu(_) => Storage::Cpu(Arc::new(Mutex::new(self.fetch(id)?.into_data()))),
            Exec::Gpu(g) => {
                let src = &g.views[&id];
                let dst = g.ctx.buffer("output", src.size)?;
                g.ctx.scoped("copying an output", || {
                    let mut enc = g.ctx.device.create_command_encoder(&Default::default());
                    enc.copy_buffer_to_buffer(&src.buffer, 0, &dst, 0, src.size);
                    g.ctx.queue.submit([enc.finish()]);
                    Ok(())
                })?;
                Storage::Gpu { buffer: Arc::new(dst), ctx: g.ctx.clone() }
            }
        };
        Ok(Tensor::from_storage(v.shape.clone(), v.dtype, storage))
    }
}

/// Nodes needed for `outputs` plus every assignment (a side effect), in graph order.
fn live_nodes(graph: &Graph, outputs: &[ValueId]) -> Vec<usize> {
    let mut needed = vec![false; graph.values.len()];
    outputs.iter().for_each(|o| needed[o.index()] = true);
    let mut live = vec![false; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate().rev() {
        if node.output.is_none_or(|o| needed[o.index()]) {
            live[i] = true;
            node.inputs.iter().for_each(|x| needed[x.index()] = true);
        }
    }
    (0..graph.nodes.len()).filter(|&i| live[i]).collect()
}

/// For each node output, the last position in `order` that reads it (outputs live to the end).
fn liveness(graph: &Graph, order: &[usize], outputs: &[ValueId]) -> HashMap<ValueId, usize> {
    let mut last = HashMap::new();
    for (pos, &n) in order.iter().enumerate() {
        let node = &graph.nodes[n];
        if let Some(o) = node.output {
            last.insert(o, pos);
        }
        for x in &node.inputs {
            if let Some(l) = last.get_mut(x) {
                *l = pos;
            }
        }
    }
    for o in outputs {
        if let Some(l) = last.get_mut(o) {
            *l = order.len();
        }
    }
    last
}

/// Finds or creates the tensor behind a variable and checks it fits the graph.
fn bind_variable(device: &Device, graph: &Graph, id: ValueId, name: &str, init: &Init, params: &mut ParamStore) -> Result<Tensor> {
    let v = graph.value(id);
    if let Some(t) = params.get(name) {
        if t.shape() != &v.shape || t.dtype() != v.dtype {
            return Err(Error::ShapeMismatch {
                op: "variable",
                lhs: v.shape.dims().to_vec(),
                rhs: t.shape().dims().to_vec(),
                reason: format!(
                    "variable `{name}` is declared {:?} but the parameter store holds {:?} {:?}",
                    v.dtype,
                    t.dtype(),
                    t.shape()
                ),
            });
        }
        if !t.device().same(device) {
            return Err(Error::WrongDevice {
                what: format!("variable `{name}`"),
                tensor_device: t.device().describe(),
                plan_device: device.describe(),
            });
        }
        return Ok(t.clone());
    }
    if v.dtype != DType::F32 {
        return Err(Error::invalid(
            "variable",
            "value",
            format!("packed variable `{name}` has no initializer; load it (a packed export's kernel) before planning"),
        ));
    }
    // Initialisation is itself a one-node graph, so both backends draw the same numbers.
    let mut g = Graph::new();
    let out = g.push1(init.op(&v.shape), &[])?;
    let mut p = Plan::new(device, &g, &[out], &mut ParamStore::new())?;
    p.run()?;
    let t = p.output_tensor(out)?;
    params.insert(name, t.clone());
    Ok(t)
}

impl CpuExec {
    fn run(&mut self, graph: &Graph, order: &[usize], outputs: &[ValueId], variables: &[(ValueId, Tensor)]) -> Result<()> {
        // Variables are moved into the working set for the step and always moved back, even
        // when an op fails, so a failed step never loses weights.
        let mut vals: HashMap<ValueId, TensorData> = HashMap::new();
        for (id, t) in variables {
            if let Storage::Cpu(d) = &t.storage {
                vals.insert(*id, std::mem::replace(&mut *lock(d), TensorData::F32(Vec::new())));
            }
        }
        let result = self.steps(graph, order, &mut vals);
        for (id, t) in variables {
            if let (Storage::Cpu(d), Some(data)) = (&t.storage, vals.remove(id)) {
                *lock(d) = data;
            }
        }
        result?;
        self.results = outputs.iter().filter_map(|o| vals.remove(o).map(|d| (*o, d))).collect();
        Ok(())
    }

    /// A planned value: computed this step, a variable's working copy, or a feed.
    fn value<'a>(&'a self, vals: &'a HashMap<ValueId, TensorData>, id: &ValueId) -> &'a TensorData {
        vals.get(id).or_else(|| self.feeds.get(id)).expect("planned values exist")
    }

    fn steps(&self, graph: &Graph, order: &[usize], vals: &mut HashMap<ValueId, TensorData>) -> Result<()> {
        for (pos, &n) in order.iter().enumerate() {
            let node = &graph.nodes[n];
            match node.output {
                None => {
                    // Assign: the variable's working copy becomes the value.
                    let value = self.value(vals, &node.inputs[1]).clone();
                    vals.insert(node.inputs[0], value);
                }
                Some(out) => {
                    let ins: Vec<(&crate::Shape, &TensorData)> =
                        node.inputs.iter().map(|i| (&graph.value(*i).shape, self.value(vals, i))).collect();
                    let y = cpu::eval(&node.op, &ins, &graph.value(out).shape)?;
                    vals.insert(out, y);
                }
            }
            for i in &node.inputs {
                if self.last_use.get(i) == Some(&pos) {
                    vals.remove(i);
                }
            }
        }
        Ok(())
    }
}

impl GpuExec {
    fn new(
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
            if let (super::Op::Reshape { .. }, Some(out)) = (&node.op, node.output) {
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
            let out_shape = node.output.map(|o| &graph.value(o).shape);
            let dtypes: Vec<crate::DType> = node.inputs.iter().map(|i| graph.value(*i).dtype).collect();
            let step =
                gpu::record(&node.op, gpu::Caps { subgroups: ctx.subgroup_kernels }, &shapes, &dtypes, &ins, out.as_ref(), out_shape)?;
            if let gpu::Step::Dispatch(d) = &step {
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

    fn run(&mut self) -> Result<()> {
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
    fn encode(&self, enc: &mut wgpu::CommandEncoder, copies: &[(BufferView, BufferView)], timestamps: Option<&wgpu::QuerySet>) {
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
    fn profile(&mut self) -> Result<Vec<KernelTime>> {
        let ctx = self.ctx.clone();
        if !ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Err(Error::Unsupported { feature: "timestamp queries", adapter: ctx.summary.name.clone() });
        }
        let kernels: Vec<(crate::kernels::Kernel, [u32; 3])> = self
            .steps
            .iter()
            .filter_map(|s| if let Encoded::Dispatch { kernel, workgroups, .. } = s { Some((*kernel, *workgroups)) } else { None })
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
                kernel: format!("{}::{}", k.shader, k.entry),
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
const BATCH_ADVICE: &str = "; a smaller batch needs less (inference splits a batch to fit by itself)";

fn check_grid(ctx: &GpuContext, d: &Dispatch, op: &str) -> Result<()> {
    let limit = ctx.limits.max_compute_workgroups_per_dimension.min(crate::kernels::MAX_GROUPS_PER_DIM);
    if let Some(&w) = d.workgroups.iter().find(|&&w| w > limit) {
        return Err(Error::LimitExceeded {
            what: format!("{op} ({}::{}) dispatch", d.kernel.shader, d.kernel.entry),
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
fn encode_steps(ctx: &GpuContext, recorded: Vec<gpu::Step>) -> Result<(Vec<Encoded>, Option<wgpu::Buffer>, usize)> {
    let align = ctx.limits.min_uniform_buffer_offset_alignment as usize;
    let mut arena: Vec<u8> = Vec::new();
    let mut offsets = Vec::new();
    for step in &recorded {
        if let gpu::Step::Dispatch(d) = step {
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
            gpu::Step::Copy { src, dst } => out.push(Encoded::Copy { src, dst }),
            gpu::Step::Dispatch(d) => {
                dispatches += 1;
                let pipeline = ctx.pipeline(d.kernel)?;
                let offset = offsets.next().expect("one offset per dispatch");
                let uniforms = uniforms.as_ref().expect("dispatches have params");
                let bind_group = ctx.scoped(&format!("binding {}::{}", d.kernel.shader, d.kernel.entry), || {
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
