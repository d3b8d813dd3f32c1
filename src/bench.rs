//! The kernel benchmark suite behind `bitgrad bench` and the criterion benches: each case is a
//! one-op plan with inputs fed once, timed from submission to GPU completion.
//!
//! Binary kernels are compared with our own f32 kernels on the same adapter and shape; the ratio
//! is binary multiply-accumulates per second over f32 multiply-accumulates per second.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::Result;
use crate::graph::ops::random::random_bits;
use crate::graph::Op;
use crate::tensor::{DType, HostTensor, Shape};
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
    /// Multiply-accumulates of two low-bit values (one element pair of a plane product).
    LowBitMacs,
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

/// An f32 product of one training step of a main-job model, as the step records it.
#[derive(Clone, Debug, PartialEq)]
pub struct StepGemm {
    /// "mlp" (Larq's user-guide MLP) or "cnn" (Larq's MNIST tutorial CNN).
    pub model: &'static str,
    /// Shape of A as stored (batch axes first).
    pub a: Shape,
    /// Shape of B as stored.
    pub b: Shape,
    /// A stored transposed.
    pub trans_a: bool,
    /// B stored transposed.
    pub trans_b: bool,
}

/// The main job's models, by the names `bitgrad train --model` takes.
pub const MAIN_JOB: [&str; 2] = ["mlp", "cnn"];

/// A main-job model ("mlp": Larq's user-guide MLP, "cnn": Larq's MNIST tutorial CNN) compiled
/// with Larq's recipe (Adam 1e-3, sparse categorical cross-entropy, accuracy) on `device`.
fn main_job_trainer(model: &str, device: &Device) -> Result<crate::train::Trainer> {
    use crate::train::{optimizers::Adam, Loss, Metric, Trainer};
    let m = match model {
        "mlp" => crate::models::zoo::larq_guide_mlp(),
        "cnn" => crate::models::zoo::larq_mnist_cnn(),
        other => return Err(crate::Error::invalid("bench --train", "model", format!("`{other}` is not one of mlp, cnn"))),
    };
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    Trainer::compile(m, loss, std::sync::Arc::new(Adam::new(1e-3)), &[Metric::Accuracy], device)
}

/// Every distinct f32 product (`Op::MatMul`) in one training step (forward, backward, updates)
/// of the main job's two models at batch `batch`, in step order: the shapes the GEMM variants
/// are tuned for when `bitgrad train` runs.
pub fn main_job_gemms(batch: usize) -> Result<Vec<StepGemm>> {
    let mut out: Vec<StepGemm> = Vec::new();
    for name in MAIN_JOB {
        let g = main_job_trainer(name, &Device::cpu())?.training_graph(batch)?;
        // The step's assignments (updates, metric sums) keep everything it runs alive.
        for node in crate::runtime::live_nodes(&g, &[]).into_iter().map(|i| &g.nodes()[i]) {
            if let Op::MatMul { trans_a, trans_b } = node.op {
                let (a, b) = (g.value(node.inputs[0]).shape.clone(), g.value(node.inputs[1]).shape.clone());
                let gemm = StepGemm { model: name, a, b, trans_a, trans_b };
                if !out.contains(&gemm) {
                    out.push(gemm);
                }
            }
        }
    }
    Ok(out)
}

/// One of the main job's products ([`main_job_gemms`]) as a one-op plan.
pub fn step_gemm(device: &Device, s: &StepGemm) -> Result<Case> {
    let d = crate::graph::ops::gemm::MatMulDims::new(&s.a, &s.b, s.trans_a, s.trans_b)?;
    let mut g = Graph::new();
    let a = g.input("a", s.a.clone(), DType::F32)?;
    let b = g.input("b", s.b.clone(), DType::F32)?;
    let c = g.push(Op::MatMul { trans_a: s.trans_a, trans_b: s.trans_b }, &[a, b])?.expect("a product has an output");
    let feed = |shape: &Shape, seed| HostTensor::f32(shape.clone(), random_f32(shape.numel(), seed));
    let plan = one_op_plan(device, &g, c, vec![("a", feed(&s.a, 1)?), ("b", feed(&s.b, 2)?)])?;
    let layout = format!("{}{}", if s.trans_a { 't' } else { 'n' }, if s.trans_b { 't' } else { 'n' });
    let batch = if d.batch > 1 { format!(" b{}", d.batch) } else { String::new() };
    Ok(Case {
        kernel: "f32_gemm",
        shape: format!("{} step {}x{}x{} {layout}{batch}", s.model, d.m, d.k, d.n),
        mnk: None,
        amount: (d.batch * d.m * d.k * d.n) as f64,
        work: Work::FloatMacs,
        plan,
    })
}

/// `len` seeded random words (packed bits).
fn random_words(len: usize, seed: u64) -> Vec<u32> {
    (0..len as u32).map(|i| random_bits(seed, i)).collect()
}

/// XNOR-popcount GEMM of `m` by `n` packed rows of `k` bits (already packed).
pub fn xnor_gemm(device: &Device, m: usize, k: usize, n: usize) -> Result<Case> {
    let w = k.div_ceil(32);
    let mut g = Graph::new();
    let a = g.input("a", [m, w], DType::U32)?;
    let b = g.input("b", [n, w], DType::U32)?;
    let c = g.xnor_gemm(a, b, k)?;
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
        vec![("a", HostTensor::u32([m, w], mask(random_words(m * w, 3)))?), ("b", HostTensor::u32([n, w], mask(random_words(n * w, 4)))?)],
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

/// The low-bit encoding pairs of the suite, as the layers run them (docs/ENCODINGS.md): the
/// input's and the kernel's name and plane weights. ±1, ±alpha and ternary share the signed
/// encoding's planes, so one case measures all their pairs.
pub const PLANE_PAIRS: [(&str, &[i32], &str, &[i32]); 6] = [
    ("ternary", &[-2, 1], "ternary", &[-2, 1]),
    ("{0,1}", &[1], "±1", &[-2, 1]),
    ("2-bit", &[1, 2], "±1", &[-2, 1]),
    ("2-bit", &[1, 2], "2-bit", &[1, 2]),
    ("2-bit", &[1, 2], "2-bit odd", &[2, 4, -3]),
    ("4-bit", &[1, 2, 4, 8], "ternary", &[-2, 1]),
];

/// The plane product of `m` by `n` rows of `k` values of encodings with plane weights `wa` and
/// `wb` (random planes; a ternary value's sign plane is read under its nonzero plane).
pub fn plane_gemm(device: &Device, name: &str, wa: &[i32], wb: &[i32], m: usize, k: usize, n: usize) -> Result<Case> {
    let w = k.div_ceil(32);
    let mut g = Graph::new();
    let a = g.input("a", [wa.len(), m, w], DType::U32)?;
    let b = g.input("b", [wb.len(), n, w], DType::U32)?;
    let c = g.plane_gemm(a, b, wa, wb)?;
    let plan = one_op_plan(
        device,
        &g,
        c,
        vec![
            ("a", HostTensor::u32([wa.len(), m, w], random_words(wa.len() * m * w, 5))?),
            ("b", HostTensor::u32([wb.len(), n, w], random_words(wb.len() * n * w, 6))?),
        ],
    )?;
    Ok(Case {
        kernel: "plane_gemm",
        shape: format!("{name} {m}x{k}x{n}"),
        mnk: Some((m, k, n)),
        amount: (m * k * n) as f64,
        work: Work::LowBitMacs,
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
    /// "GFLOP/s", "G binary MAC/s", "G low-bit MAC/s" or "GB/s".
    pub unit: &'static str,
    /// Binary (or low-bit) MAC/s over f32 MAC/s on the same shape and adapter, for binary and
    /// low-bit GEMM cases.
    pub vs_f32: Option<f64>,
    /// The adapter.
    pub adapter: String,
    /// The kernel of each dispatch of a run ("shader::entry"), as the plan chose them.
    pub kernels: Vec<String>,
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
        Work::LowBitMacs => (per_s / 1e9, "G low-bit MAC/s", Some(per_s)),
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
        kernels: case.plan.kernels().unwrap_or_default(),
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
        if (m, k, n) == (1024, 1024, 1024) || (m, k, n) == (256, 256, 256) {
            for (xa, wa, xb, wb) in PLANE_PAIRS {
                let name = format!("{xa} x {xb}");
                run(format!("plane_gemm {name} {m}x{k}x{n}"), false, &|| plane_gemm(device, &name, wa, wb, m, k, n))?;
            }
        }
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
    // The products of the main job's training steps, at its batch of 64.
    for s in main_job_gemms(64)? {
        run(format!("f32_gemm {} step {:?} x {:?} ta {} tb {}", s.model, s.a.dims(), s.b.dims(), s.trans_a, s.trans_b), false, &|| {
            step_gemm(device, &s)
        })?;
    }
    pair_ratios(&mut out);
    Ok(out)
}

/// Fills `vs_f32` for binary cases that have an f32 case of the same shape.
fn pair_ratios(ms: &mut [Measurement]) {
    let floats: Vec<((usize, usize, usize), f64)> =
        ms.iter().filter(|m| m.kernel == "f32_gemm").filter_map(|m| Some((m.mnk?, m.macs_per_s?))).collect();
    for m in ms.iter_mut().filter(|m| m.kernel == "xnor_gemm" || m.kernel == "plane_gemm") {
        m.vs_f32 = floats.iter().find(|(s, _)| Some(*s) == m.mnk).and_then(|(_, f)| Some(m.macs_per_s? / f));
    }
}

/// A plain-text table of measurements; `variant` is the kernel of a one-dispatch run (the
/// tuned variant of a product) or the number of dispatches.
pub fn table(ms: &[Measurement]) -> String {
    let row = |cells: [&str; 9]| {
        format!(
            "{:<10} {:<36} {:>10} {:>9} {:>5} {:>10}  {:<15} {:>7}  {}\n",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7], cells[8]
        )
    };
    let mut s = row(["kernel", "shape", "median ms", "gpu ms", "runs", "rate", "unit", "vs f32", "variant"]);
    for m in ms {
        let (median, runs, rate) = (format!("{:.3}", m.median_ms), m.runs.to_string(), format!("{:.2}", m.rate));
        let gpu = m.gpu_ms.map_or("-".to_string(), |g| format!("{g:.3}"));
        let ratio = m.vs_f32.map_or("-".to_string(), |r| format!("{r:.1}x"));
        let variant = match m.kernels.as_slice() {
            [one] => one.clone(),
            many => format!("{} dispatches", many.len()),
        };
        s += &row([&m.kernel, &m.shape, &median, &gpu, &runs, &rate, m.unit, &ratio, &variant]);
    }
    s
}

/// The tuner's choices on `device` (made in this process or read from its cache): per shape
/// class the winner, how it was chosen, and how much slower the runner-up and the slowest
/// candidate were.
pub fn tuning_table(device: &Device) -> String {
    let Some(ctx) = device.gpu_context() else { return String::new() };
    let mut s = format!("{:<36} {:<24} {:<12} {:>9} {:<34} {:>8}\n", "tuned class", "chosen", "how", "best ms", "runner-up", "slowest");
    for r in ctx.tuning.records() {
        let entry = |k: &str| k.split("::").nth(1).unwrap_or(k).to_string();
        let mut t = r.timings.clone();
        t.sort_by(|a, b| a.1.total_cmp(&b.1));
        let best = t.first().map_or("-".into(), |b| format!("{:.3}", b.1));
        let runner = t.get(1).map_or("-".into(), |(k, ms)| format!("{} {:.2}x", entry(k), ms / t[0].1.max(1e-9)));
        let slowest = t.last().filter(|_| t.len() > 2).map_or("-".into(), |(_, ms)| format!("{:.2}x", ms / t[0].1.max(1e-9)));
        s += &format!("{:<36} {:<24} {:<12} {:>9} {:<34} {:>8}\n", r.class, entry(&r.chosen), r.how, best, runner, slowest);
    }
    s
}

/// One main-job model's training step, measured (`bitgrad bench --train`).
#[derive(Clone, Debug, Serialize)]
pub struct StepMeasurement {
    /// "mlp" or "cnn".
    pub model: String,
    /// The adapter.
    pub adapter: String,
    /// Samples per step.
    pub batch: usize,
    /// Steps timed (after one warm-up step that builds the plan and tunes its kernels).
    pub steps: usize,
    /// Median wall time of a step (`Trainer::train_on_batch`: feed, run, read back the loss).
    pub wall_ms: f64,
    /// Training images per second at the median step.
    pub images_per_s: f64,
    /// Compute dispatches per step.
    pub dispatches: usize,
    /// GPU time of one profiled step (timestamps around each dispatch), where the adapter has
    /// timestamp queries.
    pub gpu_ms: Option<f64>,
    /// Per kernel family: (family, dispatches, GPU ms) of the profiled step, most time first.
    pub families: Vec<(String, usize, f64)>,
    /// Pooled transient bytes of the step's plan.
    pub transient_bytes: u64,
    /// Bytes of the weights, statistics and optimizer slots.
    pub param_bytes: u64,
}

/// Trains `model` ("mlp": Larq's user-guide MLP, "cnn": Larq's MNIST tutorial CNN, each with
/// Larq's recipe: Adam 1e-3, accuracy as the metric) on seeded random 28x28 images for one warm-up step and `steps`
/// timed ones of `batch` samples, then profiles one more. No data files are needed, so any
/// machine can run it; the arithmetic per step is that of `bitgrad train`.
pub fn train_step(device: &Device, model: &str, batch: usize, steps: usize) -> Result<StepMeasurement> {
    use crate::train::data::Dataset;
    let mut t = main_job_trainer(model, device)?;
    if batch == 0 || steps == 0 {
        return Err(crate::Error::invalid("bench --train", "steps", "batch and steps must be at least 1"));
    }
    let x: Vec<f32> = random_f32(batch * 784, 11).iter().map(|v| 2.0 * v).collect();
    let y: Vec<i32> = (0..batch as u32).map(|i| (random_bits(12, i) % 10) as i32).collect();
    let data = Dataset::new(&[28, 28, 1], x, y)?;
    let indices: Vec<usize> = (0..batch).collect();
    t.train_on_batch(&data, &indices)?;
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let start = Instant::now();
        t.train_on_batch(&data, &indices)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let wall_ms = times[times.len() / 2];
    let memory = t.step_memory(batch)?;
    let (dispatches, gpu_ms, families) = match t.profile_step(&data, batch) {
        Ok(k) => {
            let mut families: Vec<(String, usize, f64)> = Vec::new();
            for d in &k {
                let family = d.kernel.split("::").next().unwrap_or(&d.kernel).to_string();
                match families.iter_mut().find(|f| f.0 == family) {
                    Some(f) => {
                        f.1 += 1;
                        f.2 += d.ns / 1e6;
                    }
                    None => families.push((family, 1, d.ns / 1e6)),
                }
            }
            families.sort_by(|a, b| b.2.total_cmp(&a.2));
            (k.len(), Some(k.iter().map(|d| d.ns).sum::<f64>() / 1e6), families)
        }
        Err(crate::Error::Unsupported { .. }) => (0, None, Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(StepMeasurement {
        model: model.to_string(),
        adapter: device.describe(),
        batch,
        steps,
        wall_ms,
        images_per_s: batch as f64 / (wall_ms / 1e3),
        dispatches,
        gpu_ms,
        families,
        transient_bytes: memory.map_or(0, |m| m.pooled_bytes),
        param_bytes: t.param_bytes(),
    })
}

/// A plain-text report of measured training steps: one line per model, then its kernel
/// families by GPU time.
pub fn step_table(ms: &[StepMeasurement]) -> String {
    let mut s = format!(
        "{:<6} {:>6} {:>10} {:>10} {:>11} {:>9} {:>14}\n",
        "model", "batch", "wall ms", "images/s", "dispatches", "gpu ms", "transient MiB"
    );
    for m in ms {
        let gpu = m.gpu_ms.map_or("-".into(), |g| format!("{g:.3}"));
        let disp = if m.gpu_ms.is_some() { m.dispatches.to_string() } else { "-".into() };
        s += &format!(
            "{:<6} {:>6} {:>10.3} {:>10.1} {:>11} {:>9} {:>14.1}\n",
            m.model,
            m.batch,
            m.wall_ms,
            m.images_per_s,
            disp,
            gpu,
            m.transient_bytes as f64 / (1 << 20) as f64
        );
        for (family, n, ms) in &m.families {
            s += &format!("         {family:<22} {n:>4} dispatches {ms:>10.3} ms\n");
        }
    }
    s
}
