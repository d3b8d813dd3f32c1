//! Choosing an adapter: `BITGRAD_BACKEND` and `BITGRAD_ADAPTER` parsed and applied to lists of
//! made-up adapters (no GPU needed), a request no adapter meets reported as an error, and the
//! command line run without `XDG_RUNTIME_DIR` printing none of Mesa's complaints about it.

use std::process::{Command, Output};

use bitgrad::device::{AdapterRequest, AdapterSummary};
use bitgrad::Error;
use wgpu::{Backend, Backends, DeviceType};

/// Every backend name the error must list.
const BACKENDS: &[&str] = &["vulkan", "metal", "dx12", "gl", "webgpu"];

fn adapter(name: &str, backend: Backend, device_type: DeviceType) -> AdapterSummary {
    AdapterSummary { name: name.to_string(), backend, device_type, driver: String::new() }
}

/// A machine with a bit of everything, in no particular order.
fn machine() -> Vec<AdapterSummary> {
    vec![
        adapter("llvmpipe (LLVM 15.0.6, 256 bits)", Backend::Gl, DeviceType::Cpu),
        adapter("Intel(R) UHD Graphics 630", Backend::Vulkan, DeviceType::IntegratedGpu),
        adapter("NVIDIA H200", Backend::Gl, DeviceType::DiscreteGpu),
        adapter("NVIDIA H200", Backend::Vulkan, DeviceType::DiscreteGpu),
        adapter("llvmpipe (LLVM 15.0.6, 256 bits)", Backend::Vulkan, DeviceType::Cpu),
        adapter("Noop", Backend::Noop, DeviceType::DiscreteGpu),
    ]
}

fn request(backend: Option<&str>, name: Option<&str>) -> AdapterRequest {
    AdapterRequest::parse(backend, name).unwrap()
}

/// The name and backend of the adapter `r` chooses on [`machine`].
fn chosen(r: &AdapterRequest) -> (String, Backend) {
    let all = machine();
    let a = &all[r.choose(&all).unwrap()];
    (a.name.clone(), a.backend)
}

fn message(e: Error) -> String {
    e.to_string()
}

#[test]
fn unset_or_blank_variables_ask_for_nothing() {
    for (b, n) in [(None, None), (Some(""), Some("")), (Some(" "), Some("  ")), (Some(","), None)] {
        assert!(request(b, n).is_empty(), "{b:?} {n:?}");
    }
}

#[test]
fn backend_lists_take_wgpus_names_and_aliases_in_any_case() {
    let cases: &[(&str, Backends)] = &[
        ("vulkan", Backends::VULKAN),
        ("VK", Backends::VULKAN),
        ("Metal", Backends::METAL),
        ("mtl", Backends::METAL),
        ("dx12", Backends::DX12),
        ("d3d12", Backends::DX12),
        ("gl", Backends::GL),
        ("gles", Backends::GL),
        ("opengl", Backends::GL),
        ("webgpu", Backends::BROWSER_WEBGPU),
        (" vulkan , gl ", Backends::VULKAN.union(Backends::GL)),
        ("vulkan,", Backends::VULKAN),
    ];
    for (value, want) in cases {
        assert_eq!(request(Some(value), None).backends, Some(*want), "{value:?}");
    }
}

#[test]
fn an_unknown_backend_is_an_error_naming_the_variable_value_and_backends() {
    for value in ["cuda", "vulkan,cuda", "noop", "vulkan gl"] {
        let e = AdapterRequest::parse(Some(value), None).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { arg: "BITGRAD_BACKEND", .. }), "{value}: {e:?}");
        let msg = message(e);
        let bad = value.rsplit(',').next().unwrap();
        assert!(msg.contains("BITGRAD_BACKEND") && msg.contains(&format!("`{bad}`")), "{value}: {msg}");
        for b in BACKENDS {
            assert!(msg.contains(b), "{value}: `{b}` missing from {msg}");
        }
    }
}

#[test]
fn the_best_adapter_is_discrete_then_integrated_then_software_native_before_gl() {
    assert_eq!(chosen(&request(None, None)), ("NVIDIA H200".into(), Backend::Vulkan));
    assert_eq!(chosen(&request(Some("gl"), None)), ("NVIDIA H200".into(), Backend::Gl));
    assert_eq!(chosen(&request(None, Some("llvmpipe"))), ("llvmpipe (LLVM 15.0.6, 256 bits)".into(), Backend::Vulkan));
    assert_eq!(chosen(&request(Some("gl"), Some("LLVMPIPE"))), ("llvmpipe (LLVM 15.0.6, 256 bits)".into(), Backend::Gl));
    assert_eq!(chosen(&request(None, Some("intel"))), ("Intel(R) UHD Graphics 630".into(), Backend::Vulkan));
    // Of equals, the first.
    let twins = [adapter("a", Backend::Vulkan, DeviceType::Cpu), adapter("b", Backend::Vulkan, DeviceType::Cpu)];
    assert_eq!(request(None, None).choose(&twins).unwrap(), 0);
}

#[test]
fn a_request_no_adapter_meets_is_an_error_listing_the_adapters() {
    let all = machine();
    for (b, n, asked) in [
        (None, Some("radeon"), "BITGRAD_ADAPTER=radeon"),
        (Some("metal,dx12"), None, "BITGRAD_BACKEND=metal,dx12"),
        (Some("gl"), Some("intel"), "BITGRAD_BACKEND=gl with BITGRAD_ADAPTER=intel"),
        // wgpu's no-op adapter does no work, so it is never a match.
        (None, Some("noop"), "BITGRAD_ADAPTER=noop"),
    ] {
        let e = request(b, n).choose(&all).unwrap_err();
        assert!(matches!(e, Error::NoAdapter(_)), "{e:?}");
        let msg = message(e);
        assert!(msg.contains(asked), "{asked}: {msg}");
        for a in all.iter().filter(|a| a.backend != Backend::Noop) {
            assert!(msg.contains(&format!("{} ({}, {})", a.name, a.api(), a.kind())), "{asked}: {a} missing from {msg}");
        }
        assert!(!msg.contains("Noop") && !msg.contains("no-op") && !msg.contains("apt-get"), "{msg}");
    }
    let e = message(request(None, Some("nvidia")).choose(&[]).unwrap_err());
    assert!(e.contains("BITGRAD_ADAPTER=nvidia") && e.contains("no adapter"), "{e}");
}

#[test]
fn no_adapter_and_no_request_advises_installing_one() {
    let e = request(None, None).choose(&[adapter("Noop", Backend::Noop, DeviceType::Other)]).unwrap_err();
    assert!(matches!(&e, Error::NoAdapter(m) if m.contains("lavapipe")), "{e:?}");
}

/// The command line with `env` set and `remove` unset.
fn cli(args: &[&str], env: &[(&str, &str)], remove: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bitgrad"));
    cmd.args(args).envs(env.iter().copied());
    for r in remove {
        cmd.env_remove(r);
    }
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn gpu_commands_without_xdg_runtime_dir_print_no_complaint_about_it() {
    for (env, remove) in [(&[][..], &["XDG_RUNTIME_DIR"][..]), (&[("XDG_RUNTIME_DIR", "relative/dir")][..], &[][..])] {
        let out = cli(&["devices"], env, remove);
        let err = stderr(&out);
        assert!(out.status.success(), "{err}");
        assert!(!err.contains("XDG_RUNTIME_DIR"), "{env:?} {remove:?}: {err}");
    }
}

#[test]
fn device_gpu_with_an_unknown_backend_fails_listing_the_backends() {
    let out = cli(&["bench", "--device", "gpu"], &[("BITGRAD_BACKEND", "cuda")], &[]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("BITGRAD_BACKEND") && err.contains("`cuda`"), "{err}");
    for b in BACKENDS {
        assert!(err.contains(b), "`{b}` missing from {err}");
    }
}

#[test]
fn device_gpu_with_an_adapter_no_one_has_fails_listing_the_adapters() {
    let out = cli(&["bench", "--device", "gpu"], &[("BITGRAD_ADAPTER", "no-such-adapter")], &[]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("BITGRAD_ADAPTER=no-such-adapter"), "{err}");
    for a in bitgrad::device::list_adapters() {
        assert!(err.contains(&a.to_string()), "{a} missing from {err}");
    }
}

/// Needs `bitgrad devices` to choose with `Device::try_best()?` (it used `Device::best()`, which
/// falls back to the CPU).
#[test]
fn devices_with_an_unmet_request_fails() {
    let out = cli(&["devices"], &[("BITGRAD_BACKEND", "cuda")], &[]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("BITGRAD_BACKEND") && err.contains("`cuda`"), "{err}");
    for b in BACKENDS {
        assert!(err.contains(b), "`{b}` missing from {err}");
    }
    let out = cli(&["devices"], &[("BITGRAD_ADAPTER", "no-such-adapter")], &[]);
    assert!(!out.status.success() && stderr(&out).contains("BITGRAD_ADAPTER=no-such-adapter"), "{}", stderr(&out));
}
