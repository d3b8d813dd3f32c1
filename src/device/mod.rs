//! Devices: the CPU reference backend and wgpu GPUs, and tensors that live on them.
//!
//! Getting a device is separate from doing work: create one [`Device`] and share it (it is a
//! cheap handle) between plans, tests and benchmarks.

mod gpu;
mod select;
pub mod tune;

pub use gpu::{GpuContext, GpuOptions};
#[cfg(not(target_arch = "wasm32"))]
pub use select::list_adapters;
pub use select::{ensure_runtime_dir, AdapterRequest, AdapterSummary};
pub use tune::{TuneMode, TuneRecord, Tuning};

use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::tensor::{DType, HostTensor, Shape, TensorData};

/// Where a graph runs: the CPU reference implementation, or a GPU through wgpu.
#[derive(Clone)]
pub enum Device {
    /// Plain-loop reference backend: obviously correct, not fast.
    Cpu,
    /// A wgpu adapter with its device, queue and pipeline cache.
    Gpu(Arc<GpuContext>),
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Device {
    /// The CPU reference backend.
    pub fn cpu() -> Self {
        Device::Cpu
    }

    /// The best GPU adapter: discrete over integrated over software, native APIs over GL.
    ///
    /// `BITGRAD_BACKEND` (vulkan, metal, dx12, gl, webgpu, comma-separated) restricts the backend
    /// and `BITGRAD_ADAPTER` the adapters to those whose name contains it (case-insensitive); see
    /// [`AdapterRequest`]. A value that names no backend is [`Error::InvalidArgument`], and a
    /// request no adapter meets is [`Error::NoAdapter`] listing the adapters there are. When
    /// only a software adapter such as lavapipe exists it is used, and a warning says so.
    pub fn gpu() -> Result<Self> {
        Self::gpu_with(&GpuOptions::default())
    }

    /// [`Device::gpu`] with explicit options.
    pub fn gpu_with(opts: &GpuOptions) -> Result<Self> {
        block("Device::gpu", "Device::gpu_async", Self::gpu_async(opts))
    }

    /// [`Device::gpu_with`] without blocking, as the browser needs (there the adapter is the one
    /// `navigator.gpu` offers).
    pub async fn gpu_async(opts: &GpuOptions) -> Result<Self> {
        Ok(Device::Gpu(Arc::new(GpuContext::new(opts).await?)))
    }

    /// The best GPU, or the CPU backend when there is no adapter and none was asked for (with a
    /// warning saying so).
    ///
    /// What [`Device::gpu`] fails on otherwise is an error here too: a `BITGRAD_BACKEND` or
    /// `BITGRAD_ADAPTER` that cannot be met, a bad `BITGRAD_TUNE`, an adapter that gives no
    /// device. Programs whose users set those variables (the command line) use this, so that a
    /// mistake is reported instead of quietly running on the CPU.
    pub fn try_best() -> Result<Self> {
        let request = AdapterRequest::from_env()?;
        let asked = !request.is_empty();
        match Self::gpu_with(&GpuOptions { adapter: Some(request), ..GpuOptions::default() }) {
            Err(e @ Error::NoAdapter(_)) if !asked => {
                log::warn!("falling back to the CPU backend: {e}");
                Ok(Device::Cpu)
            }
            other => other,
        }
    }

    /// [`Device::try_best`], falling back to the CPU backend where that fails (the reason is
    /// logged as a warning), for code that must have some device whatever the environment says.
    pub fn best() -> Self {
        Self::try_best().unwrap_or_else(|e| {
            log::warn!("falling back to the CPU backend: {e}");
            Device::Cpu
        })
    }

    /// One line naming the backend and adapter.
    pub fn describe(&self) -> String {
        match self {
            Device::Cpu => "cpu (reference backend)".to_string(),
            Device::Gpu(g) => g.describe(),
        }
    }

    /// The GPU context, if this is a GPU device.
    pub fn gpu_context(&self) -> Option<&Arc<GpuContext>> {
        match self {
            Device::Gpu(g) => Some(g),
            Device::Cpu => None,
        }
    }

    /// True when both handles denote the same device.
    pub fn same(&self, other: &Device) -> bool {
        match (self, other) {
            (Device::Cpu, Device::Cpu) => true,
            (Device::Gpu(a), Device::Gpu(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Copies a host tensor to the device.
    pub fn upload(&self, t: &HostTensor) -> Result<Tensor> {
        t.shape().validate("upload")?;
        let storage = match self {
            Device::Cpu => Storage::Cpu(Arc::new(Mutex::new(t.data().clone()))),
            Device::Gpu(g) => Storage::Gpu { buffer: Arc::new(g.buffer_with_data("upload", t.data().as_bytes())?), ctx: g.clone() },
        };
        Ok(Tensor { shape: t.shape().clone(), dtype: t.dtype(), storage })
    }

    /// Waits until all submitted GPU work has finished (no-op on the CPU).
    pub fn synchronize(&self) -> Result<()> {
        block("Device::synchronize", "Device::synchronize_async", self.synchronize_async())
    }

    /// [`Device::synchronize`] without blocking, as the browser needs.
    pub async fn synchronize_async(&self) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Gpu(g) => g.finish().await,
        }
    }
}

/// Where a tensor's elements are.
#[derive(Clone)]
pub(crate) enum Storage {
    /// In host memory, shared between plans that use the same variable.
    Cpu(Arc<Mutex<TensorData>>),
    /// In a storage buffer of exactly `numel * 4` bytes.
    Gpu {
        /// The buffer.
        buffer: Arc<wgpu::Buffer>,
        /// Its device.
        ctx: Arc<GpuContext>,
    },
}

/// A tensor resident on a device. Cloning shares the storage (it is a handle), which is how
/// several plans (training, evaluation, a last partial batch) update one set of weights.
#[derive(Clone)]
pub struct Tensor {
    shape: Shape,
    dtype: DType,
    pub(crate) storage: Storage,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?}, {:?}, {})", self.shape, self.dtype, self.device().describe())
    }
}

impl Tensor {
    pub(crate) fn from_storage(shape: Shape, dtype: DType, storage: Storage) -> Self {
        Tensor { shape, dtype, storage }
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device holding the elements.
    pub fn device(&self) -> Device {
        match &self.storage {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Gpu { ctx, .. } => Device::Gpu(ctx.clone()),
        }
    }

    /// Copies the elements to host memory (waits for the GPU).
    pub fn download(&self) -> Result<HostTensor> {
        block("Tensor::download", "Tensor::download_async", self.download_async())
    }

    /// [`Tensor::download`] without blocking, as the browser needs.
    pub async fn download_async(&self) -> Result<HostTensor> {
        let data = match &self.storage {
            Storage::Cpu(d) => lock(d).clone(),
            Storage::Gpu { buffer, ctx } => TensorData::from_bytes(self.dtype, &ctx.read(buffer, self.byte_size()).await?),
        };
        HostTensor::new(self.shape.clone(), data)
    }

    /// Overwrites the elements from host memory; shape and dtype must match.
    pub fn write(&self, t: &HostTensor) -> Result<()> {
        if t.shape() != &self.shape || t.dtype() != self.dtype {
            return Err(Error::shapes(
                "Tensor::write",
                self.shape.dims(),
                t.shape().dims(),
                format!("shape/dtype must match ({:?} vs {:?})", self.dtype, t.dtype()),
            ));
        }
        match &self.storage {
            Storage::Cpu(d) => *lock(d) = t.data().clone(),
            Storage::Gpu { buffer, ctx } => ctx.queue.write_buffer(buffer, 0, t.data().as_bytes()),
        }
        Ok(())
    }

    pub(crate) fn byte_size(&self) -> u64 {
        (self.shape.numel() * self.dtype.size()) as u64
    }
}

/// Finishes a device future from synchronous code: natively by blocking on it. In the browser
/// GPU work completes only after control returns to the event loop, so there a future that is
/// not already complete (any GPU readback) is [`Error::WouldBlock`] naming `call` and what to
/// use `instead`; CPU work completes at once and is returned.
pub(crate) fn block<T>(call: &'static str, instead: &'static str, fut: impl Future<Output = Result<T>>) -> Result<T> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = (call, instead);
        pollster::block_on(fut)
    }
    #[cfg(target_arch = "wasm32")]
    {
        let mut fut = std::pin::pin!(fut);
        match fut.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => Err(Error::WouldBlock { call, instead }),
        }
    }
}

/// Locks a CPU tensor; a poisoned lock still holds valid data (every writer replaces it whole).
pub(crate) fn lock(d: &Mutex<TensorData>) -> std::sync::MutexGuard<'_, TensorData> {
    d.lock().unwrap_or_else(|e| e.into_inner())
}
