//! Choosing a wgpu adapter: what the environment asks for (`BITGRAD_BACKEND`, `BITGRAD_ADAPTER`),
//! how the adapters that meet it are ranked, and the process environment Mesa's drivers expect.

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

    /// Preference among adapters, higher first: discrete over integrated over virtual over
    /// software, native APIs over GL.
    fn rank(&self) -> (u8, u8) {
        let kind = match self.device_type {
            wgpu::DeviceType::DiscreteGpu => 4,
            wgpu::DeviceType::IntegratedGpu => 3,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Cpu => 1,
            wgpu::DeviceType::Other => 0,
        };
        // GL last: on lavapipe it compiled one shader 100x slower than Vulkan did.
        let api = match self.backend {
            wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 | wgpu::Backend::BrowserWebGpu => 2,
            wgpu::Backend::Gl => 1,
            wgpu::Backend::Noop => 0,
        };
        (kind, api)
    }
}

/// Name, backend and device type, as errors list adapters.
impl AdapterSummary {
    /// The graphics API, as people write it (`Vulkan`, `Metal`, `DX12`, `GL`, `WebGPU`).
    pub fn api(&self) -> &'static str {
        match self.backend {
            wgpu::Backend::Vulkan => "Vulkan",
            wgpu::Backend::Metal => "Metal",
            wgpu::Backend::Dx12 => "DX12",
            wgpu::Backend::Gl => "GL",
            wgpu::Backend::BrowserWebGpu => "WebGPU",
            wgpu::Backend::Noop => "no-op",
        }
    }

    /// The kind of device, as people say it (`discrete GPU`, `software rasterizer on the CPU`).
    pub fn kind(&self) -> &'static str {
        match self.device_type {
            wgpu::DeviceType::DiscreteGpu => "discrete GPU",
            wgpu::DeviceType::IntegratedGpu => "integrated GPU",
            wgpu::DeviceType::VirtualGpu => "virtual GPU",
            wgpu::DeviceType::Cpu => "software rasterizer on the CPU",
            wgpu::DeviceType::Other => "other device",
        }
    }
}

/// `name (API, kind)`, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, software rasterizer on
/// the CPU)`.
impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {})", self.name, self.api(), self.kind())
    }
}

/// The backends `BITGRAD_BACKEND` accepts: wgpu's spellings, the first of each the one
/// documented. (wgpu's own `noop` backend does no work, so it is not offered.)
const BACKEND_NAMES: &[(wgpu::Backends, &[&str])] = &[
    (wgpu::Backends::VULKAN, &["vulkan", "vk"]),
    (wgpu::Backends::METAL, &["metal", "mtl"]),
    (wgpu::Backends::DX12, &["dx12", "d3d12"]),
    (wgpu::Backends::GL, &["gl", "gles", "opengl"]),
    (wgpu::Backends::BROWSER_WEBGPU, &["webgpu"]),
];

/// Which adapter to use, as `BITGRAD_BACKEND` and `BITGRAD_ADAPTER` ask. An empty request
/// takes the best adapter there is; a request no adapter meets is an error, never a quiet
/// choice of something else.
///
/// ```
/// use bitgrad::device::AdapterRequest;
///
/// let request = AdapterRequest::parse(Some("vulkan,gl"), Some("llvmpipe"))?;
/// assert_eq!(request.backends, Some(wgpu::Backends::VULKAN | wgpu::Backends::GL));
/// assert!(AdapterRequest::parse(Some("cuda"), None).is_err());
/// # Ok::<(), bitgrad::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdapterRequest {
    /// Only adapters of these backends; `None`: any backend (`WGPU_BACKEND`, read by wgpu,
    /// may still limit what is enumerated).
    pub backends: Option<wgpu::Backends>,
    /// Only adapters whose name contains this, ignoring case; `None`: any name.
    pub name: Option<String>,
}

impl AdapterRequest {
    /// The variable naming the backends, a comma-separated list.
    pub const BACKEND_VAR: &'static str = "BITGRAD_BACKEND";
    /// The variable holding part of the adapter's name.
    pub const ADAPTER_VAR: &'static str = "BITGRAD_ADAPTER";

    /// The request `BITGRAD_BACKEND` and `BITGRAD_ADAPTER` make (unset or empty: no
    /// restriction). Fails when `BITGRAD_BACKEND` names something that is not a backend.
    pub fn from_env() -> Result<Self> {
        Self::parse(env_var(Self::BACKEND_VAR).as_deref(), env_var(Self::ADAPTER_VAR).as_deref())
    }

    /// The request those two variables' values make: `backend` is a comma-separated list of
    /// vulkan, metal, dx12, gl, webgpu (or wgpu's aliases vk, mtl, d3d12, gles, opengl), in any
    /// case; `adapter` part of a name. `None`, empty or blank values restrict nothing.
    pub fn parse(backend: Option<&str>, adapter: Option<&str>) -> Result<Self> {
        let name = adapter.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        Ok(AdapterRequest { backends: parse_backends(backend)?, name })
    }

    /// True when nothing is asked for, so that any adapter (or none) will do.
    pub fn is_empty(&self) -> bool {
        self.backends.is_none() && self.name.is_none()
    }

    /// True when `adapter` meets the request.
    pub fn accepts(&self, adapter: &AdapterSummary) -> bool {
        let backend_ok = self.backends.is_none_or(|b| b.contains(wgpu::Backends::from(adapter.backend)));
        let name_ok = self.name.as_ref().is_none_or(|n| adapter.name.to_lowercase().contains(&n.to_lowercase()));
        adapter.backend != wgpu::Backend::Noop && backend_ok && name_ok
    }

    /// The index in `adapters` of the one to use: the best ranked that meets the request (the
    /// first of equals). With no adapter at all and nothing asked for the error is
    /// [`Error::NoAdapter`] with advice on getting one; when the request meets none, it is
    /// [`Error::NoAdapter`] naming the variables and listing the adapters there are.
    pub fn choose(&self, adapters: &[AdapterSummary]) -> Result<usize> {
        adapters
            .iter()
            .enumerate()
            .filter(|(_, a)| self.accepts(a))
            .min_by_key(|(_, a)| std::cmp::Reverse(a.rank()))
            .map(|(i, _)| i)
            .ok_or_else(|| self.unmet(adapters))
    }

    /// Why no adapter of `adapters` (all there are) meets the request.
    fn unmet(&self, adapters: &[AdapterSummary]) -> Error {
        if self.is_empty() {
            return Error::NoAdapter(NO_ADAPTER_HINT.into());
        }
        let real: Vec<String> = adapters.iter().filter(|a| a.backend != wgpu::Backend::Noop).map(|a| a.to_string()).collect();
        let mut asked = Vec::new();
        if let Some(b) = self.backends {
            asked.push(format!("{}={}", Self::BACKEND_VAR, backend_list(b)));
        }
        if let Some(n) = &self.name {
            asked.push(format!("{}={n}", Self::ADAPTER_VAR));
        }
        let asked = asked.join(" with ");
        match real.is_empty() {
            true => Error::NoAdapter(format!("{asked} was asked for, but wgpu found no adapter at all")),
            false => Error::NoAdapter(format!("{asked} matches none of the adapters wgpu found: {}", real.join("; "))),
        }
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A `BITGRAD_BACKEND` value as backends; `None` when it restricts nothing.
fn parse_backends(value: Option<&str>) -> Result<Option<wgpu::Backends>> {
    let mut backends = wgpu::Backends::empty();
    for word in value.unwrap_or("").split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let lc = word.to_lowercase();
        match BACKEND_NAMES.iter().find(|(_, names)| names.contains(&lc.as_str())) {
            Some((b, _)) => backends |= *b,
            None => {
                let names: Vec<&str> = BACKEND_NAMES.iter().map(|(_, names)| names[0]).collect();
                let aliases: Vec<&str> = BACKEND_NAMES.iter().flat_map(|(_, names)| &names[1..]).copied().collect();
                return Err(Error::invalid(
                    "environment",
                    AdapterRequest::BACKEND_VAR,
                    format!(
                        "`{word}` is not a wgpu backend; {} takes a comma-separated list of {} (or {})",
                        AdapterRequest::BACKEND_VAR,
                        names.join(", "),
                        aliases.join(", ")
                    ),
                ));
            }
        }
    }
    Ok((!backends.is_empty()).then_some(backends))
}

/// Backends as the documented names, comma-separated.
fn backend_list(backends: wgpu::Backends) -> String {
    let names: Vec<&str> = BACKEND_NAMES.iter().filter(|(b, _)| backends.contains(*b)).map(|(_, names)| names[0]).collect();
    names.join(",")
}

fn instance(backends: Option<wgpu::Backends>) -> wgpu::Instance {
    ensure_runtime_dir();
    // `from_env` honours WGPU_BACKEND and related variables; ours overrides the backends.
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if let Some(b) = backends {
        desc.backends = b;
    }
    wgpu::Instance::new(desc)
}

/// Every adapter `instance` enumerates, but wgpu's no-op one.
async fn adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let mut adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
    adapters.retain(|a| a.get_info().backend != wgpu::Backend::Noop);
    adapters
}

/// Every adapter wgpu can see, best first (the order [`crate::Device::gpu`] chooses in), of the
/// backends `BITGRAD_BACKEND` names (of all when it is unset or names no backend: choosing a
/// device reports that). Not in the browser, which offers one adapter: the one
/// [`crate::Device::gpu_async`] gets.
#[cfg(not(target_arch = "wasm32"))]
pub fn list_adapters() -> Vec<AdapterSummary> {
    let backends = parse_backends(env_var(AdapterRequest::BACKEND_VAR).as_deref()).ok().flatten();
    let mut found = summaries(&pollster::block_on(adapters(&instance(backends))));
    found.sort_by_key(|a| std::cmp::Reverse(a.rank()));
    found
}

#[cfg(not(target_arch = "wasm32"))]
const NO_ADAPTER_HINT: &str =
    "wgpu found no adapter; on Debian/Ubuntu without a GPU, `apt-get install mesa-vulkan-drivers libvulkan1` provides lavapipe";
#[cfg(target_arch = "wasm32")]
const NO_ADAPTER_HINT: &str = "this browser offers no WebGPU adapter (navigator.gpu is missing or returned none)";

/// The adapter [`crate::Device::gpu`] uses for `request`.
pub(crate) async fn choose_adapter(request: &AdapterRequest) -> Result<(wgpu::Instance, wgpu::Adapter)> {
    let restricted = instance(request.backends);
    let mut found = adapters(&restricted).await;
    match request.choose(&summaries(&found)) {
        Ok(i) => Ok((restricted, found.swap_remove(i))),
        // That instance saw only the requested backends; the error lists every adapter there is.
        Err(_) if request.backends.is_some() => Err(request.unmet(&summaries(&adapters(&instance(None)).await))),
        Err(e) => Err(e),
    }
}

fn summaries(adapters: &[wgpu::Adapter]) -> Vec<AdapterSummary> {
    adapters.iter().map(|a| AdapterSummary::of(&a.get_info())).collect()
}

/// Gives the process a private `XDG_RUNTIME_DIR` when it has none, before bitgrad creates its
/// first wgpu instance; later calls do nothing. bitgrad calls it itself; a program that starts
/// threads before it first uses the GPU should call it at the start of `main`, for the reason
/// below.
///
/// Mesa's drivers (lavapipe's Vulkan WSI and EGL) try to reach a Wayland display while wgpu
/// enumerates adapters, and libwayland prints "XDG_RUNTIME_DIR is invalid or not set in the
/// environment" on each attempt when the variable is unset or not an absolute path: two to four
/// lines of noise on every headless run (ssh, containers, CI). With the variable naming an empty
/// directory of our own the attempt fails quietly, as there is no display socket in it. The
/// directory is `bitgrad-runtime-<uid>` in the temporary folder, mode 0700 as the XDG spec
/// requires; one that exists but is not a directory of ours with that mode is left alone (and
/// the variable unset), so another user can never hand us theirs.
///
/// Setting a variable races with C code reading the environment on other threads (glibc's
/// `setenv` may move the array `getenv` walks). Hence once only, and before the first instance:
/// no driver thread runs yet, and instance creation waits for this to finish. The command line
/// calls it before anything else.
pub fn ensure_runtime_dir() {
    #[cfg(all(unix, not(target_vendor = "apple")))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let current = std::env::var_os("XDG_RUNTIME_DIR").map(std::path::PathBuf::from);
            if current.is_some_and(|d| d.is_absolute() && d.is_dir()) {
                return;
            }
            // SAFETY: geteuid has no preconditions and cannot fail.
            let uid = unsafe { libc::geteuid() };
            match runtime_dir::private(&std::env::temp_dir(), uid) {
                Ok(dir) => std::env::set_var("XDG_RUNTIME_DIR", dir),
                Err(why) => log::warn!("XDG_RUNTIME_DIR is not set and bitgrad's own cannot be used: {why}"),
            }
        });
    }
}

#[cfg(all(unix, not(target_vendor = "apple")))]
mod runtime_dir {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    use std::path::{Path, PathBuf};

    /// `parent/bitgrad-runtime-<uid>`, created with mode 0700 if missing; an existing entry must
    /// be a directory (not a link) owned by `uid` with mode 0700. The error says what is wrong.
    pub(super) fn private(parent: &Path, uid: u32) -> Result<PathBuf, String> {
        let dir = parent.join(format!("bitgrad-runtime-{uid}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            // The umask may have cleared bits; the directory is new and ours, so set them.
            Ok(()) => {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| format!("{}: {e}", dir.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        }
        // Not following links: a link to a directory of ours is still not ours to trust.
        let meta = std::fs::symlink_metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if !meta.file_type().is_dir() {
            return Err(format!("{} exists and is not a directory", dir.display()));
        }
        if meta.uid() != uid {
            return Err(format!("{} belongs to uid {}, not {uid}", dir.display(), meta.uid()));
        }
        if meta.mode() & 0o7777 != 0o700 {
            return Err(format!("{} has mode {:o}, not 700", dir.display(), meta.mode() & 0o7777));
        }
        Ok(dir)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn scratch(name: &str) -> PathBuf {
            let dir = std::env::temp_dir().join(format!("bitgrad-runtime-test-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            dir
        }

        fn uid() -> u32 {
            // SAFETY: geteuid has no preconditions and cannot fail.
            unsafe { libc::geteuid() }
        }

        #[test]
        fn creates_a_private_directory_and_reuses_it() {
            let parent = scratch("create");
            let dir = private(&parent, uid()).unwrap();
            assert_eq!(dir, parent.join(format!("bitgrad-runtime-{}", uid())));
            assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);
            assert_eq!(private(&parent, uid()).unwrap(), dir);
            std::fs::remove_dir_all(&parent).unwrap();
        }

        #[test]
        fn refuses_what_is_not_a_private_directory_of_ours() {
            let parent = scratch("refuse");
            let dir = parent.join(format!("bitgrad-runtime-{}", uid()));
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            assert!(private(&parent, uid()).unwrap_err().contains("mode 755"));
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
            // Named for another user, the directory we made is not theirs.
            let other = uid().wrapping_add(1);
            std::fs::create_dir(parent.join(format!("bitgrad-runtime-{other}"))).unwrap();
            assert!(private(&parent, other).unwrap_err().contains("belongs to uid"));
            let (link_parent, file_parent) = (scratch("link"), scratch("file"));
            std::os::unix::fs::symlink(&dir, link_parent.join(format!("bitgrad-runtime-{}", uid()))).unwrap();
            assert!(private(&link_parent, uid()).unwrap_err().contains("not a directory"));
            std::fs::write(file_parent.join(format!("bitgrad-runtime-{}", uid())), b"").unwrap();
            assert!(private(&file_parent, uid()).unwrap_err().contains("not a directory"));
            for p in [parent, link_parent, file_parent] {
                std::fs::remove_dir_all(p).unwrap();
            }
        }
    }
}
