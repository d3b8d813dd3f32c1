//! The kernel benchmark suite behind `bitgrad bench` and the criterion benches: each case is a
//! one-op plan with inputs fed once, timed from submission to GPU completion.
//!
//! Binary kernels are compared with our own f32 kernels on the same adapter and shape; the ratio
//! is binary multiply-accumulates per second over f32 multiply-accumulates per second.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::Result;
use crate::graph::ops::random::random_bits;
use crate::tensor::{DType, HostTensor};
use crate::{Device, Graph, PackMode, ParamStore, Plan};

/// What a case's throughput counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Work {
    /// f32 multiply-accumulates (reported as GFLOP/s = 2 FLOP per MAC).
    FloatMacs,
    /// Binary multiply-accumulates (one bit of one XNOR-popcount dot product).
    BinaryMacs,
    /// Bytes read plus bytes written.
    Bytes,
}

/// A ready-to-run benchmark case.
pub struct Case {
    /// Kernel name.
    pub kernel: &'static str,
    /// Shape description, e.g. "1024x1024x1024".
    pub shape: String,
    /// GEMM sizes (m, k, n), used to pair binary with f32 cases.
    pub mnk: Option<(usize, usize, usize)>,
    /// Amount of work per run, in units of `work`.
    pub amount: f64,
    /// What `amount` counts.
    pub work: Work,
    plan: Plan,
}

impl Case {
    /// Runs once and waits for the GPU.
    pub fn run(&mut self) -> Result<()> {
        self.plan.run()?;
        self.plan.device().synchronize()
    }
}

fn random_f32(n: usize, seed: u64) -> Vec<f32> {
    (0..n as u32).map(|i| (random_bits(seed, i) >> 8) as f32 / 16_777_216.0 - 0.5).collect()
}

fn one_op_plan(device: &Device, g: &Graph, out: crate::ValueId, feeds: Vec<(&str, HostTensor)>) -> Result<Plan> {
    let mut plan = Plan::new(device, g, &[out], &mut ParamStore::new())?;
    for (name, t) in feeds {
        plan.feed(name, &t)?;
    }
    Ok(plan)
}

/// `[m, k] @ [k, n]` on the tiled f32 GEMM.
pub fn f32_gemm(device: &Device, m: usize, k: usize, n: usize) -> Result<Case> {
    let mut g = Graph::new();
    let a = g.input("a", [m, k], DType::F32)?;
    let b = g.input("b", [k, n], DType::F32)?;
    let c = g.matmul(a, b)?;
    let plan = one_op_plan(
        device,
        &g,
        c,
        vec![("a", HostTensor::f32([m, k], random_f32(m * k, 1))?), ("b", HostTensor::f32([k, n], random_f32(k * n, 2))?)],
    )?;
    Ok(Case {
        kernel: "f32_gemm",
        shape: format!("{m}x{k}x{n}"),
        mnk: Some((m, k, n)),
        amount: (m * k * n) as f64,
        work: Work::FloatMacs,
        plan,
    })
}

/// XNOR-popcount GEMM of `m` by `n` packed rows of `k` bits (already packed).
pub fn xnor_gemm(device: &Device, m: usize, k: usize, n: usize) -> Result<Case> {
    let w = k.div_ceil(32);
    let mut g = Graph::new();
    let a = g.input("a", [m, w], DType::U32)?;
    let b = g.input("b", [n, w], DType::U32)?;
    let c = g.xnor_gemm(a, b, k)?;
    let words = |len: usize, seed| (0..len as u32).map(|i| random_bits(seed, i)).collect::<Vec<_>>();
    let mask = |mut v: Vec<u32>| {
        // Bits past k are 0, as packing leaves them.
        if k % 32 != 0 {
            v.iter_mut().skip(w - 1).step_by(w).for_each(|x| *x &= (1 << (k % 32)) - 1);
        }
        v
    };
    let plan = one_op_plan(
        device,
        &g,
        c,
        vec![("a", HostTensor::u32([m, w], mask(words(m * w, 3)))?), ("b", HostTensor::u32([n, w], mask(words(n * w, 4)))?)],
    )?;
    Ok(Case {
        kernel: "xnor_gemm",
        shape: format!("{m}x{k}x{n}"),
        mnk: Some((m, k, n)),
        amount: (m * k * n) as f64,
        work: Work::BinaryMacs,
        plan,
    })
}

/// Sign-packing `rows` rows of `k` floats.
pub fn bit_pack(device: &Device, rows: usize, k: usize) -> Result<Case> {
    let mut g = Graph::new();
    let x = g.input("x", [rows, k], DType::F32)?;
    let bits = g.bit_pack(x, PackMode::Sign)?;
    let plan = one_op_plan(device, &g, bits, vec![("x", HostTensor::f32([rows, k], random_f32(rows * k, 5))?)])?;
    let bytes = rows * k * 4 + rows * k.div_ceil(32) * 4;
    Ok(Case { kernel: "bit_pack", shape: format!("{rows}x{k}"), mnk: None, amount: bytes as f64, work: Work::Bytes, plan })
}

fn conv_opts() -> crate::ConvOptions {
    crate::ConvOptions { padding: crate::Padding::Same, ..crate::ConvOptions::new(&[3, 3]) }
}

fn signs(n: usize, seed: u64) -> Vec<f32> {
    (0..n as u32).map(|i| if random_bits(seed, i) & 1 == 0 { 1.0 } else { -1.0 }).collect()
}

/// A 3x3 "same" convolution of a `[batch, hw, hw, c]` image to `o` channels, in f32
/// (im2col + GEMM) or binary (pack + im2col of words + XNOR GEMM, weights packed every run as in
/// training).
pub fn conv(device: &Device, binary: bool, batch: usize, hw: usize, c: usize, o: usize) -> Result<Case> {
    let mut g = Graph::new();
    let x = g.input("x", [batch, hw, hw, c], DType::F32)?;
    let w = g.input("w", [3, 3, c, o], DType::F32)?;
    let y = if binary { g.binary_conv(x, w, &conv_opts(), 1.0, Some(1.0), Some(1.0))? } else { g.conv(x, w, &conv_opts(), 0.0)? };
    let plan = one_op_plan(
        device,
        &g,
        y,
        vec![
            ("x", HostTensor::f32([batch, hw, hw, c], signs(batch * hw * hw * c, 6))?),
            ("w", HostTensor::f32([3, 3, c, o], signs(9 * c * o, 7))?),
        ],
    )?;
    let macs = (batch * hw * hw * 9 * c * o) as f64;
    let (kernel, work) = if binary { ("xnor_conv", Work::BinaryMacs) } else { ("f32_conv", Work::FloatMacs) };
    Ok(Case { kernel, shape: format!("3x3 {c}->{o} {hw}x{hw} b{batch}"), mnk: Some((batch * hw * hw, 9 * c, o)), amount: macs, work, plan })
}

/// f32 im2col of a 3x3 "same" convolution over a `[batch, hw, hw, c]` image.
pub fn im2col(device: &Device, batch: usize, hw: usize, c: usize) -> Result<Case> {
    let mut g = Graph::new();
    let shape = crate::Shape::new([batch, hw, hw, c]);
    let x = g.input("x", shape.clone(), DType::F32)?;
    let o = conv_opts();
    let geom = crate::ConvGeometry::new(&shape, &o.kernel, &o.strides, &o.dilation, &o.padding, o.format)?;
    let cols = g.im2col(x, &geom, 0.0)?;
    let plan = one_op_plan(device, &g, cols, vec![("x", HostTensor::f32(shape.clone(), random_f32(shape.numel(), 8))?)])?;
    let bytes = 4 * (shape.numel() + geom.cols_shape().numel());
    Ok(Case { kernel: "im2col", shape: format!("3x3 {hw}x{hw}x{c} b{batch}"), mnk: None, amount: bytes as f64, work: Work::Bytes, plan })
}

/// One measured case.
#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    /// Kernel name.
    pub kernel: String,
    /// Shape.
    pub shape: String,
    /// Median wall time of one run, submission to completion, in milliseconds.
    pub median_ms: f64,
    /// Median GPU time of the run's dispatches from timestamp queries, in milliseconds, where
    /// the adapter has them: the kernels alone, without submission overhead.
    pub gpu_ms: Option<f64>,
    /// Runs timed.
    pub runs: usize,
    /// Throughput in `unit`.
    pub rate: f64,
    /// "GFLOP/s", "G binary MAC/s" or "GB/s".
    pub unit: &'static str,
    /// Binary MAC/s over f32 MAC/s on the same shape and adapter, for binary GEMM cases.
    pub vs_f32: Option<f64>,
    /// The adapter.
    pub adapter: String,
    #[serde(skip)]
    mnk: Option<(usize, usize, usize)>,
    #[serde(skip)]
    macs_per_s: Option<f64>,
}

/// Times `case`: one warm-up run, then runs until `min_time` has passed and at least
/// `min_runs` were made (at most 100). Reports the median.
pub fn measure(case: &mut Case, min_runs: usize, min_time: Duration) -> Result<Measurement> {
    case.run()?;
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 100 && (times.len() < min_runs || start.elapsed() < min_time) {
        let t = Instant::now();
        case.run()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let gpu_ms = gpu_time(case)?;
    let per_s = case.amount / median;
    let (rate, unit, macs) = match case.work {
        Work::FloatMacs => (2.0 * per_s / 1e9, "GFLOP/s", Some(per_s)),
        Work::BinaryMacs => (per_s / 1e9, "G binary MAC/s", Some(per_s)),
        Work::Bytes => (per_s / 1e9, "GB/s", None),
    };
    Ok(Measurement {
        kernel: case.kernel.to_string(),
        shape: case.shape.clone(),
        median_ms: median * 1e3,
        gpu_ms,
        runs: times.len(),
        rate,
        unit,
        vs_f32: None,
        adapter: case.plan.device().describe(),
        mnk: case.mnk,
        macs_per_s: macs,
    })
}

/// Median over three profiled runs of the summed dispatch times, in ms; `None` without
/// timestamp queries.
fn gpu_time(case: &mut Case) -> Result<Option<f64>> {
    let mut totals = Vec::new();
    for _ in 0..3 {
        match case.plan.profile() {
            Ok(times) => totals.push(times.iter().map(|t| t.ns).sum::<f64>() / 1e6),
            Err(crate::Error::Unsupported { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    totals.sort_by(f64::total_cmp);
    Ok(Some(totals[1]))
}

/// Which cases to run.
#[derive(Clone, Copy, Debug)]
pub struct SuiteOptions {
    /// Also run f32 GEMMs that take minutes on a software adapter.
    pub all: bool,
    /// Minimum timed duration per case.
    pub min_time: Duration,
}

/// The standard suite: f32 and XNOR GEMMs on the same shapes (square, and batch-1 inference),
/// f32 and binary 3x3 convolutions, im2col and bit packing. Large f32 cases are skipped on
/// software adapters unless `all` is set, and cases over an adapter limit are reported skipped.
pub fn suite(device: &Device, opts: SuiteOptions, mut progress: impl FnMut(&str)) -> Result<Vec<Measurement>> {
    let software = device.gpu_context().is_none_or(|g| g.summary.is_software());
    let mut out = Vec::new();
    // Runs a case, or reports why it was skipped: too slow for a software adapter (unless
    // `all`), or over an adapter limit.
    let mut run = |name: String, slow: bool, make: &dyn Fn() -> Result<Case>| -> Result<()> {
        if slow && software && !opts.all {
            progress(&format!("{name}: skipped on a software adapter (pass --all to run it)"));
            return Ok(());
        }
        progress(&name);
        match make() {
            Ok(mut case) => out.push(measure(&mut case, 3, opts.min_time)?),
            Err(e @ crate::Error::LimitExceeded { .. }) => progress(&format!("{name}: skipped: {e}")),
            Err(e) => return Err(e),
        }
        Ok(())
    };
    let gemms = [(256, 256, 256), (1024, 1024, 1024), (4096, 4096, 4096), (1, 4096, 1024), (64, 4096, 4096)];
    for (m, k, n) in gemms {
        run(format!("f32_gemm {m}x{k}x{n}"), m * k * n > 1 << 30, &|| f32_gemm(device, m, k, n))?;
        run(format!("xnor_gemm {m}x{k}x{n}"), false, &|| xnor_gemm(device, m, k, n))?;
    }
    // Real BNN layers: 3x3 convolutions, 256 channels, batch 64.
    for hw in [14, 28] {
        run(format!("f32_conv 3x3 256->256 {hw}x{hw} b64"), true, &|| conv(device, false, 64, hw, 256, 256))?;
        run(format!("xnor_conv 3x3 256->256 {hw}x{hw} b64"), false, &|| conv(device, true, 64, hw, 256, 256))?;
        run(format!("im2col 3x3 {hw}x{hw}x256 b64"), false, &|| im2col(device, 64, hw, 256))?;
    }
    for (rows, k) in [(1024, 1024), (4096, 4096)] {
        run(format!("bit_pack {rows}x{k}"), false, &|| bit_pack(device, rows, k))?;
    }
    pair_ratios(&mut out);
    Ok(out)
}

/// Fills `vs_f32` for binary cases that have an f32 case of the same shape.
fn pair_ratios(ms: &mut [Measurement]) {
    let floats: Vec<((usize, usize, usize), f64)> =
        ms.iter().filter(|m| m.kernel == "f32_gemm").filter_map(|m| Some((m.mnk?, m.macs_per_s?))).collect();
    for m in ms.iter_mut().filter(|m| m.kernel == "xnor_gemm") {
        m.vs_f32 = floats.iter().find(|(s, _)| Some(*s) == m.mnk).and_then(|(_, f)| Some(m.macs_per_s? / f));
    }
}

/// A plain-text table of measurements.
pub fn table(ms: &[Measurement]) -> String {
    let row = |cells: [&str; 8]| {
        format!(
            "{:<10} {:<28} {:>10} {:>9} {:>5} {:>10}  {:<15} {:>7}\n",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7]
        )
    };
    let mut s = row(["kernel", "shape", "median ms", "gpu ms", "runs", "rate", "unit", "vs f32"]);
    for m in ms {
        let (median, runs, rate) = (format!("{:.3}", m.median_ms), m.runs.to_string(), format!("{:.2}", m.rate));
        let gpu = m.gpu_ms.map_or("-".to_string(), |g| format!("{g:.3}"));
        let ratio = m.vs_f32.map_or("-".to_string(), |r| format!("{r:.1}x"));
        s += &row([&m.kernel, &m.shape, &median, &gpu, &runs, &rate, m.unit, &ratio]);
    }
    s
}
