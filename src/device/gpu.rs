//! The wgpu side of a device: logical device and queue, limits, the pipeline cache, buffer
//! creation, readback and error capture.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use super::select::{choose_adapter, AdapterRequest, AdapterSummary};
use super::tune::{TuneMode, Tuning};
use crate::error::{Error, Result};
use crate::kernels::{CustomShader, Kernel, ShaderRef};

/// Features used when the adapter has them.
const WANTED_FEATURES: wgpu::Features = wgpu::Features::SUBGROUP.union(wgpu::Features::SHADER_F16).union(wgpu::Features::TIMESTAMP_QUERY);

/// Choices made when creating a GPU device.
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Use kernel variants with subgroup operations where the adapter has them (default true).
    pub subgroups: bool,
    /// Bind at most this many bytes per storage buffer even where the adapter allows more
    /// (default `None`: the adapter's limit): leaves memory to others, and shows on any adapter
    /// how bitgrad behaves on a smaller one.
    pub max_binding_bytes: Option<u64>,
    /// How kernel variants are chosen (default `None`: what `BITGRAD_TUNE` says, see
    /// [`TuneMode::from_env`]).
    pub tune: Option<TuneMode>,
    /// Which adapter (default `None`: what `BITGRAD_BACKEND` and `BITGRAD_ADAPTER` say, see
    /// [`AdapterRequest::from_env`]).
    pub adapter: Option<AdapterRequest>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions { subgroups: true, max_binding_bytes: None, tune: None, adapter: None }
    }
}

/// A wgpu device and queue with bitgrad's caches.
pub struct GpuContext {
    /// The adapter the device came from.
    pub adapter: wgpu::Adapter,
    /// The logical device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// Adapter description.
    pub summary: AdapterSummary,
    /// The limits the device was created with (the adapter's own, not wgpu's defaults).
    pub limits: wgpu::Limits,
    /// The optional features that were enabled.
    pub features: wgpu::Features,
    /// Whether kernels with subgroup operations are used: the adapter has subgroups of at least
    /// 8 invocations and [`GpuOptions::subgroups`] allowed them.
    pub subgroup_kernels: bool,
    /// The kernel tuner's choices on this device.
    pub tuning: Tuning,
    modules: Mutex<HashMap<ShaderRef, Arc<wgpu::ShaderModule>>>,
    /// Run-time modules by source, so that plans generating the same module share its pipelines.
    interned: Mutex<HashMap<String, Arc<CustomShader>>>,
    pipelines: Mutex<HashMap<Kernel, Arc<wgpu::ComputePipeline>>>,
    /// In the browser, error scopes resolve only after control returns to the event loop: the
    /// scopes of [`GpuContext::scoped`] wait here, with their context, until the next readback.
    #[cfg(target_arch = "wasm32")]
    deferred: Mutex<Vec<(String, ScopeErrors)>>,
}

/// The errors two popped error scopes (validation, out of memory) captured.
#[cfg(target_arch = "wasm32")]
type ScopeErrors = std::pin::Pin<Box<dyn std::future::Future<Output = Option<wgpu::Error>>>>;

impl GpuContext {
    pub(crate) async fn new(opts: &GpuOptions) -> Result<Self> {
        let tune = match opts.tune {
            Some(t) => t,
            None => TuneMode::from_env()?,
        };
        let request = match &opts.adapter {
            Some(r) => r.clone(),
            None => AdapterRequest::from_env()?,
        };
        let (_instance, adapter) = choose_adapter(&request).await?;
        let summary = AdapterSummary::of(&adapter.get_info());
        if summary.is_software() {
            // Said once, for people, by the command line (`software_note`); a library user
            // reads `Device::describe` or `AdapterSummary::is_software`.
            log::info!("no hardware GPU adapter found; using the software adapter {summary}");
        }
        let features = WANTED_FEATURES & adapter.features();
        let mut limits = adapter.limits();
        if let Some(cap) = opts.max_binding_bytes {
            limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(cap);
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("bitgrad"),
                required_features: features,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|source| Error::RequestDevice { adapter: summary.name.clone(), source })?;
        // Everything bitgrad does runs inside error scopes; anything that escapes them is logged
        // rather than aborting the process (wgpu's default handler panics).
        device.on_uncaptured_error(Arc::new(|e| log::error!("uncaptured wgpu error: {e}")));
        let subgroup_kernels = opts.subgroups && features.contains(wgpu::Features::SUBGROUP) && adapter.get_info().subgroup_min_size >= 8;
        let tuning = Tuning::new(tune, &summary);
        Ok(GpuContext {
            adapter,
            device,
            queue,
            summary,
            limits,
            features,
            subgroup_kernels,
            tuning,
            modules: Mutex::default(),
            interned: Mutex::default(),
            pipelines: Mutex::default(),
            #[cfg(target_arch = "wasm32")]
            deferred: Mutex::default(),
        })
    }

    /// "adapter name (backend, type)" plus "software" when it is one.
    pub fn describe(&self) -> String {
        let s = &self.summary;
        let no_subgroups =
            if self.features.contains(wgpu::Features::SUBGROUP) && !self.subgroup_kernels { ", subgroup kernels off" } else { "" };
        format!("{} ({}, {}{no_subgroups})", s.name, s.api(), s.kind())
    }

    /// True when the adapter has subgroup operations.
    pub fn has_subgroups(&self) -> bool {
        self.features.contains(wgpu::Features::SUBGROUP)
    }

    /// Runs `f` inside validation and out-of-memory error scopes; a captured wgpu error becomes
    /// [`Error::Wgpu`] with `context`. Use it around your own wgpu calls on this device.
    ///
    /// In the browser the scopes' results arrive later: an error captured here is returned by the
    /// next readback (`*_async` fetches and downloads) or `Device::synchronize_async` instead,
    /// still with `context`.
    pub fn scoped<T>(&self, context: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let result = f();
        // Popping takes effect at once; only the results are futures.
        let (v, o) = (validation.pop(), oom.pop());
        let errors = async move { v.await.or(o.await) };
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(e) = pollster::block_on(errors) {
            return Err(Error::Wgpu { context: context.to_string(), message: e.to_string() });
        }
        #[cfg(target_arch = "wasm32")]
        {
            let mut deferred = self.deferred.lock().unwrap_or_else(|e| e.into_inner());
            // Forget the scopes that have come back clean, so steps run without a readback do
            // not pile them up; keep errors until a readback returns them.
            deferred.retain_mut(|(_, errors)| match errors.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
                std::task::Poll::Pending => true,
                std::task::Poll::Ready(None) => false,
                std::task::Poll::Ready(Some(e)) => {
                    *errors = Box::pin(std::future::ready(Some(e)));
                    true
                }
            });
            deferred.push((context.to_string(), Box::pin(errors)));
        }
        result
    }

    /// The first error the deferred scopes of [`GpuContext::scoped`] captured (browser only).
    async fn deferred_errors(&self) -> Result<()> {
        #[cfg(target_arch = "wasm32")]
        {
            let pending = std::mem::take(&mut *self.deferred.lock().unwrap_or_else(|e| e.into_inner()));
            let mut first = None;
            for (context, errors) in pending {
                if let Some(e) = errors.await {
                    first.get_or_insert(Error::Wgpu { context, message: e.to_string() });
                }
            }
            if let Some(e) = first {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Checks a storage binding against the adapter's limit; `advice` says what to change.
    pub(crate) fn check_binding(&self, what: impl FnOnce() -> String, bytes: u64, advice: &'static str) -> Result<()> {
        let limit = self.limits.max_storage_buffer_binding_size;
        if bytes > limit {
            return Err(Error::LimitExceeded {
                what: what(),
                needed: bytes,
                limit,
                limit_name: "max_storage_buffer_binding_size",
                adapter: self.summary.name.clone(),
                advice,
            });
        }
        Ok(())
    }

    /// A storage buffer of `bytes` (rounded up to 4) usable as copy source and destination.
    pub(crate) fn buffer(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        let size = bytes.max(4).next_multiple_of(4);
        let limit = self.limits.max_buffer_size;
        if size > limit {
            return Err(Error::LimitExceeded {
                what: format!("buffer `{label}`"),
                needed: size,
                limit,
                limit_name: "max_buffer_size",
                adapter: self.summary.name.clone(),
                advice: "",
            });
        }
        self.scoped(&format!("creating buffer `{label}`"), || {
            Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }))
        })
    }

    /// A storage buffer holding `data`.
    pub(crate) fn buffer_with_data(&self, label: &str, data: &[u8]) -> Result<wgpu::Buffer> {
        let b = self.buffer(label, data.len() as u64)?;
        self.queue.write_buffer(&b, 0, data);
        Ok(b)
    }

    /// A uniform buffer holding `data`.
    pub(crate) fn uniform_with_data(&self, label: &str, data: &[u8]) -> Result<wgpu::Buffer> {
        self.scoped("creating a uniform buffer", || {
            Ok(self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: data,
                usage: wgpu::BufferUsages::UNIFORM,
            }))
        })
    }

    /// The run-time module with this source: one per source per device, so its pipelines are
    /// compiled once however many plans generate it.
    pub(crate) fn intern_shader(&self, name: &str, module: &str) -> Arc<CustomShader> {
        let mut interned = self.interned.lock().unwrap_or_else(|e| e.into_inner());
        interned
            .entry(module.to_string())
            .or_insert_with(|| Arc::new(CustomShader { name: name.to_string(), module: module.to_string() }))
            .clone()
    }

    /// The compute pipeline for `kernel`, compiled once per device.
    pub(crate) fn pipeline(&self, kernel: &Kernel) -> Result<Arc<wgpu::ComputePipeline>> {
        if let Some(p) = self.pipelines.lock().unwrap_or_else(|e| e.into_inner()).get(kernel) {
            return Ok(p.clone());
        }
        let module = self.module(&kernel.shader)?;
        let label = kernel.to_string();
        let pipeline = self.scoped(&format!("creating pipeline {label}"), || {
            Ok(Arc::new(self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&label),
                layout: None,
                module: &module,
                entry_point: Some(kernel.entry),
                compilation_options: Default::default(),
                cache: None,
            })))
        })?;
        self.pipelines.lock().unwrap_or_else(|e| e.into_inner()).insert(kernel.clone(), pipeline.clone());
        Ok(pipeline)
    }

    fn module(&self, shader: &ShaderRef) -> Result<Arc<wgpu::ShaderModule>> {
        let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = modules.get(shader) {
            return Ok(m.clone());
        }
        let m = self.scoped(&format!("compiling shaders/{}.wgsl", shader.name()), || {
            Ok(Arc::new(self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(shader.name()),
                source: wgpu::ShaderSource::Wgsl(shader.source().into()),
            })))
        })?;
        modules.insert(shader.clone(), m.clone());
        Ok(m)
    }

    /// Records work with `record`, which writes the begin and end timestamps of pass `i` to slots
    /// `2i` and `2i + 1` of the query set it is given, submits it, and returns each of the
    /// `passes` passes' GPU nanoseconds. Needs timestamp queries, and a native build (`call`
    /// names the caller in the error the browser gets).
    pub(crate) fn time_passes(
        &self,
        call: &'static str,
        passes: u32,
        record: impl FnOnce(&mut wgpu::CommandEncoder, &wgpu::QuerySet),
    ) -> Result<Vec<f64>> {
        let count = 2 * passes;
        let bytes = count as u64 * 8;
        let resolved = self.scoped(&format!("{call}: timestamp queries"), || {
            let query_set =
                self.device.create_query_set(&wgpu::QuerySetDescriptor { label: Some(call), ty: wgpu::QueryType::Timestamp, count });
            let resolved = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(call) });
            record(&mut enc, &query_set);
            enc.resolve_query_set(&query_set, 0..count, &resolved, 0);
            self.queue.submit([enc.finish()]);
            Ok(resolved)
        })?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&super::block(
            call,
            "GPU timestamps natively (not offered in the browser)",
            self.read(&resolved, bytes),
        )?);
        let period = self.queue.get_timestamp_period() as f64;
        Ok(ticks.chunks(2).map(|t| t[1].saturating_sub(t[0]) as f64 * period).collect())
    }

    /// Waits for all submitted work (natively; the browser runs it on its own).
    pub(crate) fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Wgpu { context: "waiting for the GPU".into(), message: e.to_string() })
    }

    /// Resolves when all work submitted so far has finished: natively after polling the device,
    /// in the browser when the queue reports it done. Errors deferred by `scoped` come back here.
    pub(crate) async fn finish(&self) -> Result<()> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.queue.on_submitted_work_done(move || {
            let _ = tx.send(());
        });
        self.wait()?;
        let done = rx.await.map_err(|e| Error::Wgpu { context: "waiting for the GPU".into(), message: e.to_string() });
        self.deferred_errors().await?;
        done
    }

    /// Copies the first `bytes` of `src` to host memory once prior work is done. Natively the
    /// GPU is polled here; in the browser the mapping completes when control returns to the
    /// event loop.
    pub(crate) async fn read(&self, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let staging = self.scoped("creating a readback buffer", || {
            Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }))
        })?;
        self.scoped("copying for readback", || {
            let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
            enc.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
            self.queue.submit([enc.finish()]);
            Ok(())
        })?;
        let slice = staging.slice(..);
        let (tx, rx) = futures_channel::oneshot::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        let mapped = rx.await.map_err(|e| Error::Wgpu { context: "mapping a readback buffer".into(), message: e.to_string() });
        self.deferred_errors().await?;
        mapped?.map_err(|e| Error::Wgpu { context: "mapping a readback buffer".into(), message: e.to_string() })?;
        let data = slice
            .get_mapped_range()
            .map_err(|e| Error::Wgpu { context: "reading a mapped buffer".into(), message: e.to_string() })?
            .to_vec();
        staging.unmap();
        Ok(data)
    }
}
