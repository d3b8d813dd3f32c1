//! Choosing a wgpu adapter.

use crate::error::{Error, Result};

/// What bitgrad reports about an adapter.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    /// Adapter name, e.g. "NVIDIA H100 80GB HBM3" or "llvmpipe (LLVM 15.0.6, 256 bits)".
    pub name: String,
    /// Graphics API.
    pub backend: wgpu::Backend,
    /// Discrete, integrated, virtual, CPU (software) or other.
    pub device_type: wgpu::DeviceType,
    /// Driver name and version.
    pub driver: String,
}

impl AdapterSummary {
    pub(crate) fn of(info: &wgpu::AdapterInfo) -> Self {
        // Browsers may withhold the description wgpu takes the name from.
        let name = match (info.name.is_empty(), info.backend) {
            (false, _) => info.name.clone(),
            (true, wgpu::Backend::BrowserWebGpu) => "the browser's WebGPU adapter".to_string(),
            (true, _) => "an unnamed adapter".to_string(),
        };
        AdapterSummary {
            name,
            backend: info.backend,
            device_type: info.device_type,
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
        }
    }

    /// True for software rasterisers such as lavapipe or SwiftShader.
    pub fn is_software(&self) -> bool {
        self.device_type == wgpu::DeviceType::Cpu
    }
}

fn instance() -> wgpu::Instance {
    // `from_env` honours WGPU_BACKEND and related variables as well as our own.
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if let Some(b) = std::env::var("BITGRAD_BACKEND").ok().filter(|s| !s.is_empty()) {
        desc.backends = wgpu::Backends::from_comma_list(&b);
    }
    wgpu::Instance::new(desc)
}

/// Every adapter wgpu can see, best first (the order [`crate::Device::gpu`] chooses in). Not in
/// the browser, which offers one adapter: the one [`crate::Device::gpu_async`] gets.
#[cfg(not(target_arch = "wasm32"))]
pub fn list_adapters() -> Vec<AdapterSummary> {
    let instance = instance();
    let mut adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    adapters.sort_by_key(|a| std::cmp::Reverse(rank(&a.get_info())));
    adapters.iter().map(|a| AdapterSummary::of(&a.get_info())).collect()
}

fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 1,
        wgpu::DeviceType::Other => 0,
    };
    // GL last: on lavapipe it compiled one shader 100x slower than Vulkan did.
    let api = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 | wgpu::Backend::BrowserWebGpu => 2,
        wgpu::Backend::Gl => 1,
        wgpu::Backend::Noop => 0,
    };
    (kind, api)
}

#[cfg(not(target_arch = "wasm32"))]
const NO_ADAPTER_HINT: &str =
    "wgpu found no adapter; on Debian/Ubuntu without a GPU, `apt-get install mesa-vulkan-drivers libvulkan1` provides lavapipe";
#[cfg(target_arch = "wasm32")]
const NO_ADAPTER_HINT: &str = "this browser offers no WebGPU adapter (navigator.gpu is missing or returned none)";

/// The adapter [`crate::Device::gpu`] uses.
pub(crate) async fn choose_adapter() -> Result<(wgpu::Instance, wgpu::Adapter)> {
    let instance = instance();
    let mut adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
    adapters.retain(|a| a.get_info().backend != wgpu::Backend::Noop);
    let seen: Vec<String> = adapters.iter().map(|a| format!("{} ({:?})", a.get_info().name, a.get_info().backend)).collect();
    if let Some(want) = std::env::var("BITGRAD_ADAPTER").ok().filter(|s| !s.is_empty()) {
        let want_lc = want.to_lowercase();
        adapters.retain(|a| a.get_info().name.to_lowercase().contains(&want_lc));
        if adapters.is_empty() {
            return Err(Error::NoAdapter(format!("BITGRAD_ADAPTER={want} matches none of {seen:?}")));
        }
    }
    adapters.sort_by_key(|a| std::cmp::Reverse(rank(&a.get_info())));
    let adapter = adapters.into_iter().next().ok_or_else(|| Error::NoAdapter(NO_ADAPTER_HINT.into()))?;
    Ok((instance, adapter))
}
