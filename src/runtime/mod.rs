//! Planning and running a graph on a device.
//!
//! `Plan::new` does everything that does not change between steps: it prunes nodes that no
//! requested output or assignment needs, checks every buffer and dispatch against the adapter's
//! limits, places transient values in pooled buffers by liveness (reshapes share their input's
//! buffer), creates pipelines (cached per
//! device), uniform parameters and bind groups. `Plan::run` then only encodes the recorded steps
//! into one command encoder and submits once; nothing is read back unless `fetch` asks.

mod cpu;
mod fuse;
mod gpu;
mod memory;
mod params;
mod profile;
mod schedule;
mod tune;

pub use params::ParamStore;
pub use profile::KernelTime;

use cpu::CpuExec;
use gpu::GpuExec;
use params::bind_variable;
pub use schedule::live_nodes;
use schedule::liveness;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::device::{block, lock, Device, Storage, Tensor};
use crate::error::{Error, Result};
use crate::graph::{Graph, Source, ValueId};
use crate::kernels::BufferView;
use crate::tensor::{HostTensor, TensorData};

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
            Device::Gpu(ctx) => Exec::Gpu(GpuExec::new(ctx, graph, &order, &last_use, &variables, &inputs, outputs)?),
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

    /// How many nodes run inside another node's fused elementwise kernel instead of a dispatch
    /// of their own (GPU plans; see `runtime::fuse`), or `None` on the CPU.
    pub fn fused_nodes(&self) -> Option<usize> {
        match &self.exec {
            Exec::Gpu(g) => Some(g.fused_nodes),
            Exec::Cpu(_) => None,
        }
    }

    /// The kernel ("shader::entry") of each dispatch per run, in order, as chosen when the plan
    /// was built (tuned variants included); `None` on the CPU.
    pub fn kernels(&self) -> Option<Vec<String>> {
        match &self.exec {
            Exec::Gpu(g) => Some(g.kernels()),
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
        let id = self.graph.find_input(name).ok_or_else(|| {
            let known = self.inputs.iter().filter_map(|i| match &self.graph.value(*i).source {
                crate::graph::Source::Input { name } => Some(name.clone()),
                _ => None,
            });
            Error::unknown("input", name, known)
        })?;
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
