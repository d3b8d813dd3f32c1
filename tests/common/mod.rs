//! Shared test support: one GPU device per test binary, seeded inputs, graph runs on both
//! backends, and comparisons that print index, actual, expected and difference.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use bitgrad::graph::ops::random::random_bits;
use bitgrad::{Device, Graph, HostTensor, ParamStore, Plan, Result, TensorData, ValueId};

/// Sentinel written into every transient GPU buffer before a test run: NaN as f32, -1 as i32,
/// all bits set as packed words. An element a kernel forgets to write keeps it and fails.
pub const SENTINEL: u32 = u32::MAX;

/// The GPU device shared by the tests of this binary, or `None` (test skipped) when no adapter
/// exists. With `BITGRAD_REQUIRE_GPU=1` (set in CI) a missing adapter fails the test instead.
pub fn gpu() -> Option<&'static Device> {
    static DEVICE: OnceLock<Option<Device>> = OnceLock::new();
    DEVICE
        .get_or_init(|| match Device::gpu() {
            Ok(d) => {
                eprintln!("GPU tests run on {}", d.describe());
                Some(d)
            }
            Err(e) if std::env::var("BITGRAD_REQUIRE_GPU").is_ok_and(|v| v == "1") => {
                panic!("BITGRAD_REQUIRE_GPU=1 but no GPU adapter: {e}")
            }
            Err(e) => {
                eprintln!("skipping GPU test: {e}");
                None
            }
        })
        .as_ref()
}

/// A fresh, empty scratch folder `bitgrad-<name>-<pid>` under the temporary folder, removed
/// with everything in it when the value is dropped (a failing test's folder too: its assertion
/// message names what it needs).
pub fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("bitgrad-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// One CIFAR-10 binary record, as the data set's documentation lays it out: the label byte, then
/// the red, green and blue 32x32 planes, row-major; `pixel(channel, row, col)`.
pub fn cifar10_record(label: u8, pixel: impl Fn(usize, usize, usize) -> u8) -> Vec<u8> {
    let mut r = vec![label];
    for c in 0..3 {
        r.extend((0..1024).map(|p| pixel(c, p / 32, p % 32)));
    }
    r
}

/// A folder of CIFAR-10's six binary batches, `per_batch` records each, that a BNN can learn
/// from: each class a colour of its own plus position-dependent noise.
pub fn cifar10_folder(name: &str, per_batch: usize) -> Scratch {
    let dir = scratch(name);
    for (b, file) in bitgrad::train::data::CIFAR10_FILES.iter().enumerate() {
        let mut bytes = Vec::new();
        for i in 0..per_batch {
            let label = ((i * 7 + b * 3) % 10) as u8;
            let colour = [label as usize * 25, (9 - label as usize) * 25, (label as usize % 3) * 100];
            let noise = |c: usize, y: usize, x: usize| (i * 31 + c * 17 + y * 13 + x * 7) % 64;
            bytes.extend(cifar10_record(label, |c, y, x| (colour[c] * 3 / 4 + noise(c, y, x)) as u8));
        }
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    dir
}

/// See [`scratch`].
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<std::path::Path> for Scratch {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the `bitgrad` command line with `args`; returns (success, stdout, stderr).
pub fn bitgrad(args: &[&str]) -> (bool, String, String) {
    bitgrad_with(args, &[])
}

/// [`bitgrad`] with extra environment variables.
pub fn bitgrad_with(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bitgrad")).args(args).envs(env.iter().copied()).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// `n` seeded values, uniform in [-scale, scale).
pub fn uniform(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    (0..n as u32).map(|i| ((random_bits(seed, i) >> 8) as f32 / 16_777_216.0 * 2.0 - 1.0) * scale).collect()
}

/// `n` seeded integers in `0..hi`.
pub fn ints(seed: u64, n: usize, hi: u32) -> Vec<i32> {
    (0..n as u32).map(|i| (random_bits(seed, i) % hi) as i32).collect()
}

/// A graph built by `build` (returning the values to fetch), fed with `feeds`.
pub struct Case<'a> {
    pub graph: Graph,
    pub outputs: Vec<ValueId>,
    pub feeds: Vec<(&'a str, HostTensor)>,
}

/// Runs a case on `device` `runs` times and fetches its outputs.
pub fn run_on(device: &Device, case: &Case, runs: usize) -> Result<Vec<HostTensor>> {
    let mut params = ParamStore::new();
    let mut plan = Plan::new(device, &case.graph, &case.outputs, &mut params)?;
    plan.poison_buffers(SENTINEL);
    for (name, t) in &case.feeds {
        plan.feed(name, t)?;
    }
    for _ in 0..runs {
        plan.run()?;
    }
    case.outputs.iter().map(|&o| plan.fetch(o)).collect()
}

/// Tolerance for comparing GPU floats with the CPU reference:
/// `|gpu - cpu| <= abs + rel * |cpu|`.
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub abs: f32,
    pub rel: f32,
}

/// Elementwise ops: a few ulp of the shader's transcendental functions.
pub const ELEMENTWISE: Tol = Tol { abs: 1e-6, rel: 1e-5 };

/// Ops that accumulate `k` terms of order 1 in a different order on each backend: rounding
/// grows with the number of terms.
pub fn accumulation(k: usize) -> Tol {
    Tol { abs: 1e-6 * k as f32 + 1e-5, rel: 1e-5 }
}

/// Asserts two tensors are equal: bit-exact for integer and packed data, within `tol` for
/// floats. NaN matches NaN, but never the sentinel left by an unwritten element.
pub fn assert_close(what: &str, gpu: &HostTensor, cpu: &HostTensor, tol: Tol) {
    assert_eq!(gpu.shape(), cpu.shape(), "{what}: shapes differ");
    match (gpu.data(), cpu.data()) {
        (TensorData::F32(g), TensorData::F32(c)) => {
            for (i, (&a, &e)) in g.iter().zip(c).enumerate() {
                assert!(a.to_bits() != SENTINEL, "{what}: element {i} was never written (sentinel), expected {e}");
                let ok = if e.is_nan() {
                    a.is_nan()
                } else if e.is_infinite() {
                    a == e
                } else {
                    (a - e).abs() <= tol.abs + tol.rel * e.abs()
                };
                assert!(ok, "{what}: element {i}: actual {a}, expected {e}, difference {} (tolerance {tol:?})", a - e);
            }
        }
        (g, c) => {
            assert_eq!(g.dtype(), c.dtype(), "{what}: dtypes differ");
            let (g, c): (&[u32], &[u32]) = (bytemuck::cast_slice(g.as_bytes()), bytemuck::cast_slice(c.as_bytes()));
            if let Some(i) = (0..g.len()).find(|&i| g[i] != c[i]) {
                panic!("{what}: element {i}: actual {:#010x}, expected {:#010x}", g[i], c[i]);
            }
        }
    }
}

/// Runs a case on the CPU and on the GPU and compares every output with `tol`.
pub fn check_case(what: &str, case: &Case, tol: Tol) {
    let Some(dev) = gpu() else { return };
    let cpu = run_on(&Device::cpu(), case, 1).unwrap_or_else(|e| panic!("{what}: cpu: {e}"));
    let gpu = run_on(dev, case, 1).unwrap_or_else(|e| panic!("{what}: gpu: {e}"));
    for (i, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
        assert_close(&format!("{what} output {i}"), g, c, tol);
    }
}

/// The Keras models of tests/fixtures/keras (written from the real Larq by
/// tests/fixtures/gen_keras.py).
pub const KERAS_MODELS: [&str; 12] = [
    "guide_mlp",
    "tutorial_cnn",
    "shortcut_functional",
    "sequence_1d",
    "upsampling",
    "volumes",
    "channels_first",
    "gated_functional",
    "shared_conv",
    "dorefa_mlp",
    "depthwise_stack",
    "transposed_1d",
];

/// Keras models of tests/fixtures/keras with `TFOpLambda` layers (tensor operators and `tf.*`
/// calls), which bitgrad imports, runs and trains but does not write back as Keras JSON.
pub const FUNCTION_MODELS: [&str; 2] = ["tf_ops", "tf_resize"];

/// The Larq Zoo architectures of tests/fixtures/zoo (JSON and summaries by
/// tests/fixtures/gen_zoo_models.py, numbers by tests/fixtures/gen_zoo.py).
pub const ZOO: [&str; 14] = [
    "quicknet_small",
    "quicknet",
    "quicknet_large",
    "birealnet",
    "binary_resnet_e18",
    "binary_densenet28",
    "binary_densenet37",
    "binary_densenet37_dilated",
    "binary_densenet45",
    "meliusnet22",
    "xnornet",
    "dorefanet",
    "binary_alexnet",
    "real_to_binary_net",
];

/// A file of tests/fixtures/keras.
pub fn keras_fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras").join(name)
}

/// Three classes of 4x4 images with class-dependent bright quadrants and noise.
pub fn blobs(n: usize, seed: u64) -> bitgrad::train::Dataset {
    let noise = uniform(seed, n * 16, 0.6);
    let mut x = Vec::with_capacity(n * 16);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let c = (i * 7 + seed as usize) % 3;
        for p in 0..16 {
            let (r, col) = (p / 4, p % 4);
            let on = match c {
                0 => r < 2,
                1 => col < 2,
                _ => (r + col) % 2 == 0,
            };
            x.push(if on { 0.7 } else { -0.7 } + noise[i * 16 + p]);
        }
        y.push(c as i32);
    }
    bitgrad::train::Dataset::new(&[4, 4, 1], x, y).unwrap()
}
