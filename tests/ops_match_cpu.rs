//! Every GPU op against the CPU reference on seeded inputs with awkward shapes (1, primes,
//! sizes that are not multiples of 32 or of the workgroup size).

mod common;

use bitgrad::{BinaryOp, DType, Device, Distribution, Graph, HostTensor, Op, ReduceOp, Shape, UnaryOp};
use common::*;

/// A one-op case: inputs `x0`, `x1`, ... (up to five) with the given shapes and data.
fn case(op: Op, inputs: Vec<HostTensor>) -> Case<'static> {
    const NAMES: [&str; 5] = ["x0", "x1", "x2", "x3", "x4"];
    let mut g = Graph::new();
    let ids: Vec<_> = inputs.iter().enumerate().map(|(i, t)| g.input(NAMES[i], t.shape().clone(), t.dtype()).unwrap()).collect();
    let out = g.push(op, &ids).unwrap().unwrap();
    Case { graph: g, outputs: vec![out], feeds: NAMES.iter().copied().zip(inputs).collect() }
}

fn f32s(shape: &[usize], seed: u64, scale: f32) -> HostTensor {
    let n = shape.iter().product();
    HostTensor::f32(shape, uniform(seed, n, scale)).unwrap()
}

/// Inputs that include the edge values a function cares about.
fn with_edges(mut v: Vec<f32>, edges: &[f32]) -> Vec<f32> {
    let n = v.len();
    for (i, &e) in edges.iter().enumerate().take(n) {
        v[i * 7 % n] = e;
    }
    v
}

fn unary_input(op: UnaryOp, n: usize, seed: u64) -> Vec<f32> {
    match op {
        // Domains where the function is finite.
        UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip => uniform(seed, n, 4.0).iter().map(|x| x.abs() + 0.05).collect(),
        // Edges: 0, -0, clip bounds (inclusive), large magnitudes for tanh/sigmoid.
        _ => with_edges(uniform(seed, n, 3.0), &[0.0, -0.0, -0.5, 1.0, 60.0, -60.0]),
    }
}

#[test]
fn unary_matches_cpu() {
    for (k, &op) in UnaryOp::ALL.iter().enumerate() {
        for shape in [vec![1], vec![37], vec![3, 257]] {
            let n = shape.iter().product();
            let x = HostTensor::f32(&shape[..], unary_input(op, n, k as u64)).unwrap();
            check_case(&format!("{op:?} {shape:?}"), &case(Op::Unary(op), vec![x]), ELEMENTWISE);
        }
    }
}

#[test]
fn unary_grad_matches_cpu() {
    for (k, &op) in UnaryOp::ALL.iter().enumerate() {
        for shape in [vec![1], vec![3, 257]] {
            let n = shape.iter().product();
            let x = HostTensor::f32(&shape[..], unary_input(op, n, k as u64)).unwrap();
            let dy = f32s(&shape, 100 + k as u64, 2.0);
            check_case(&format!("d{op:?} {shape:?}"), &case(Op::UnaryGrad(op), vec![x, dy]), ELEMENTWISE);
        }
    }
}

#[test]
fn binary_broadcast_matches_cpu() {
    let pairs: [(&[usize], &[usize]); 6] = [
        (&[1], &[13]),
        (&[5, 1, 7], &[3, 1]),
        (&[2, 3, 5], &[2, 3, 5]),
        (&[31, 33], &[33]),
        (&[4, 1], &[1, 6]),
        (&[2, 1, 3, 1, 2], &[4, 3, 5, 1]),
    ];
    for (k, &op) in BinaryOp::ALL.iter().enumerate() {
        for (sa, sb) in pairs {
            let a = f32s(sa, k as u64, 2.0);
            let mut b = f32s(sb, 50 + k as u64, 2.0);
            if op == BinaryOp::Div {
                b = HostTensor::f32(sb, b.as_f32().unwrap().iter().map(|v| v.abs() + 0.25).collect()).unwrap();
            }
            if matches!(op, BinaryOp::Eq | BinaryOp::Ge) {
                // Make some elements equal so both outcomes occur.
                b = HostTensor::f32(
                    sb,
                    b.as_f32().unwrap().iter().enumerate().map(|(i, &v)| if i % 2 == 0 { a.as_f32().unwrap()[0] } else { v }).collect(),
                )
                .unwrap();
            }
            check_case(&format!("{op:?} {sa:?} {sb:?}"), &case(Op::Binary(op), vec![a, b]), ELEMENTWISE);
        }
    }
    // Operands that are one contiguous run of the output's axes (equal shapes, trailing or
    // leading runs, scalars) take the division-and-remainder kernel; the others the strided one.
    let Some(dev) = gpu() else { return };
    for ((sa, sb), blocks) in pairs.into_iter().zip([true, false, true, true, true, false]) {
        let c = case(Op::Binary(BinaryOp::Add), vec![f32s(sa, 1, 1.0), f32s(sb, 2, 1.0)]);
        let kernels = bitgrad::Plan::new(dev, &c.graph, &c.outputs, &mut bitgrad::ParamStore::new()).unwrap().kernels().unwrap();
        let want = if blocks { "elementwise::binary_blocks" } else { "elementwise::binary" };
        assert_eq!(kernels, [want], "{sa:?} {sb:?}");
    }
}

/// Reductions of millions of elements per output (a 4096x4096 kernel's mean |w|) are recorded in
/// stages (`Graph::reduce`), with or without a remainder to the chunks, and equal the exact
/// (f64) result to f32 precision on both backends; the staged mean's gradient is 1/n everywhere.
#[test]
fn long_reductions_are_staged_and_exact() {
    for (dims, axes) in
        [(vec![1 << 22], vec![0]), (vec![3, 1_398_107], vec![1]), (vec![2_000_003, 2], vec![0]), (vec![5, 1000, 999], vec![1, 2])]
    {
        let n: usize = axes.iter().map(|&a| dims[a]).product();
        let len: usize = dims.iter().product();
        let values: Vec<f32> = (0..len).map(|i| ((i * 7919) % 1000) as f32 * 1e-3 + 0.25).collect();
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max] {
            let mut g = Graph::new();
            let x = g.input("x", dims.clone(), DType::F32).unwrap();
            let y = g.reduce(op, x, &axes, true).unwrap();
            let loss = g.sum(y, &(0..dims.len()).collect::<Vec<_>>(), false).unwrap();
            let dx = g.backward(loss, &[x]).unwrap()[0];
            assert!(g.value(y).shape.dims().iter().zip(&dims).enumerate().all(|(d, (o, i))| if axes.contains(&d) {
                *o == 1
            } else {
                o == i
            }));
            // The exact result, per output, in f64.
            let outer: Vec<usize> = (0..dims.len()).filter(|d| !axes.contains(d)).collect();
            let exact = |o: usize| -> f64 {
                let strides: Vec<usize> = (0..dims.len()).map(|d| dims[d + 1..].iter().product()).collect();
                let (mut vals, mut base) = (Vec::with_capacity(n), 0);
                let mut rem = o;
                for &d in outer.iter().rev() {
                    base += (rem % dims[d]) * strides[d];
                    rem /= dims[d];
                }
                for j in 0..n {
                    let (mut off, mut r) = (0, j);
                    for &d in axes.iter().rev() {
                        off += (r % dims[d]) * strides[d];
                        r /= dims[d];
                    }
                    vals.push(values[base + off] as f64);
                }
                match op {
                    ReduceOp::Sum => vals.iter().sum(),
                    ReduceOp::Mean => vals.iter().sum::<f64>() / n as f64,
                    ReduceOp::Max => vals.iter().cloned().fold(f64::MIN, f64::max),
                }
            };
            let devices: Vec<Device> = std::iter::once(Device::cpu()).chain(gpu().cloned()).collect();
            for d in &devices {
                let mut plan = bitgrad::Plan::new(d, &g, &[y, dx], &mut bitgrad::ParamStore::new()).unwrap();
                plan.feed("x", &HostTensor::f32(dims.clone(), values.clone()).unwrap()).unwrap();
                plan.run().unwrap();
                let got = plan.fetch(y).unwrap();
                for (o, &v) in got.as_f32().unwrap().iter().enumerate() {
                    let e = exact(o);
                    assert!(
                        (v as f64 - e).abs() <= 1e-6 * e.abs(),
                        "{op:?} {dims:?} axes {axes:?} on {}: output {o}: {v} vs {e}",
                        d.describe()
                    );
                }
                if op == ReduceOp::Mean {
                    let grad = plan.fetch(dx).unwrap();
                    assert!(grad.as_f32().unwrap().iter().all(|&v| (v as f64 - 1.0 / n as f64).abs() <= 1e-6 / n as f64), "{dims:?}");
                }
            }
        }
    }
}

#[test]
fn reduce_matches_cpu() {
    let shapes: [&[usize]; 3] = [&[1], &[257], &[7, 13, 5]];
    for &op in ReduceOp::ALL {
        for shape in shapes {
            let rank = shape.len();
            // Every non-empty subset of axes, with and without keep_dims.
            for mask in 1..(1u32 << rank) {
                let axes: Vec<usize> = (0..rank).filter(|a| mask & (1 << a) != 0).collect();
                for keep_dims in [false, true] {
                    let x = f32s(shape, 7, 3.0);
                    let k = axes.iter().map(|&a| shape[a]).product();
                    let c = case(Op::Reduce { op, axes: axes.clone(), keep_dims }, vec![x]);
                    check_case(&format!("{op:?} {shape:?} axes {axes:?} keep {keep_dims}"), &c, accumulation(k));
                }
            }
        }
    }
    // A long reduction: more elements than threads in a workgroup, not a multiple of 64.
    let x = f32s(&[3, 4099], 9, 1.0);
    check_case(
        "sum [3, 4099] axis 1",
        &case(Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keep_dims: false }, vec![x]),
        accumulation(4099),
    );
    // Many short reductions (pooling windows): one thread per output, over many workgroups.
    for op in [ReduceOp::Max, ReduceOp::Mean] {
        let x = f32s(&[4099, 4, 3], 5, 2.0);
        check_case(
            &format!("{op:?} [4099, 4, 3] axis 1"),
            &case(Op::Reduce { op, axes: vec![1], keep_dims: false }, vec![x]),
            accumulation(4),
        );
    }
}

#[test]
fn matmul_matches_cpu() {
    // (m, k, n): ones, primes, non-multiples of the 64x64 tile and the 16-deep K slice; m < 8 takes
    // the one-thread-per-column kernel (n = 300 spans two of its workgroups).
    let sizes = [(1, 1, 1), (17, 31, 13), (65, 33, 129), (64, 64, 64), (2, 100, 3), (3, 40, 300)];
    for (m, k, n) in sizes {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let sa = if ta { [k, m] } else { [m, k] };
            let sb = if tb { [n, k] } else { [k, n] };
            let c = case(Op::MatMul { trans_a: ta, trans_b: tb }, vec![f32s(&sa, 1, 1.0), f32s(&sb, 2, 1.0)]);
            check_case(&format!("matmul m{m} k{k} n{n} ta{ta} tb{tb}"), &c, accumulation(k));
        }
    }
    // Batched, with broadcast batch axes on either side.
    let batched: [(&[usize], &[usize]); 3] = [(&[3, 5, 7], &[3, 7, 4]), (&[2, 1, 5, 7], &[3, 7, 4]), (&[5, 7], &[3, 7, 4])];
    for (sa, sb) in batched {
        let c = case(Op::MatMul { trans_a: false, trans_b: false }, vec![f32s(sa, 3, 1.0), f32s(sb, 4, 1.0)]);
        check_case(&format!("batched matmul {sa:?} x {sb:?}"), &c, accumulation(7));
    }
}

/// A product of more rows than a grid dimension holds (65536, the first convolution of a zoo
/// model at batch 256) never gets a variant whose grid does not fit (`gemv`, one workgroup per
/// row), even pinned; it was a candidate, failed the tuner's timing and was then taken.
#[test]
fn a_product_of_65536_rows_takes_only_variants_whose_grid_fits() {
    if gpu().is_none() {
        return;
    }
    let opts = bitgrad::GpuOptions { tune: Some(bitgrad::TuneMode::Off), ..Default::default() };
    let dev = Device::gpu_with(&opts).unwrap();
    let bitgrad::Device::Gpu(ctx) = &dev else { unreachable!() };
    for (rows, pin) in [(65536, Some("gemv")), (65536, None), (65535, Some("gemv"))] {
        let c = case(Op::MatMul { trans_a: false, trans_b: false }, vec![f32s(&[rows, 27], 1, 1.0), f32s(&[27, 8], 2, 1.0)]);
        ctx.tuning.pin(pin);
        let kernel = bitgrad::Plan::new(&dev, &c.graph, &c.outputs, &mut bitgrad::ParamStore::new()).unwrap().kernels().unwrap().remove(0);
        assert_eq!(kernel == "gemm::gemv", rows < 65536, "{rows} rows, pinned {pin:?}: {kernel}");
        let got = run_on(&dev, &c, 1).unwrap().remove(0);
        let cpu = run_on(&Device::cpu(), &c, 1).unwrap().remove(0);
        assert_close(&format!("{rows}x27 x 27x8 by {kernel}"), &got, &cpu, accumulation(27));
    }
    ctx.tuning.pin(None);
}

/// Every f32 GEMM variant, pinned in turn on a device of its own (so the pin does not reach the
/// other tests), against the CPU reference and bit for bit against each other: each sums K in
/// order with one fma per term. Shapes are multiples of 4 (the vec4 variants' need) or not (the
/// K-at-a-time ones'), never of the tiles, with few rows, one row, and broadcast batches; each
/// variant must have run on some of them.
#[test]
fn every_matmul_variant_matches_cpu_and_the_others_bit_exactly() {
    if gpu().is_none() {
        return;
    }
    let opts = bitgrad::GpuOptions { tune: Some(bitgrad::TuneMode::Off), ..Default::default() };
    let dev = Device::gpu_with(&opts).unwrap();
    let bitgrad::Device::Gpu(ctx) = &dev else { unreachable!() };
    let variants: Vec<&str> = bitgrad::kernels::gemm::KERNELS.iter().map(|k| k.entry).collect();
    let mut ran: Vec<&str> = Vec::new();
    let shapes: [(&[usize], &[usize], usize); 8] = [
        (&[4], &[4], 4),
        (&[12], &[260], 36),
        (&[68], &[8], 132),
        (&[6], &[132], 20),
        (&[1], &[4], 8),
        (&[3, 8], &[2, 1, 12], 16),
        (&[9], &[32], 13),
        (&[70], &[12], 9),
    ];
    for (m, n, k) in shapes {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let (bm, m) = (&m[..m.len() - 1], m[m.len() - 1]);
            let (bn, n) = (&n[..n.len() - 1], n[n.len() - 1]);
            let sa = [bm, &(if ta { [k, m] } else { [m, k] })[..]].concat();
            let sb = [bn, &(if tb { [n, k] } else { [k, n] })[..]].concat();
            let c = case(Op::MatMul { trans_a: ta, trans_b: tb }, vec![f32s(&sa, 1, 1.0), f32s(&sb, 2, 1.0)]);
            let what = format!("matmul {sa:?} x {sb:?} ta{ta} tb{tb}");
            let cpu = run_on(&Device::cpu(), &c, 1).unwrap().remove(0);
            let mut first: Option<(String, HostTensor)> = None;
            for &entry in &variants {
                ctx.tuning.pin(Some(entry));
                let mut params = bitgrad::ParamStore::new();
                let kernel = bitgrad::Plan::new(&dev, &c.graph, &c.outputs, &mut params).unwrap().kernels().unwrap().remove(0);
                if kernel != format!("gemm::{entry}") {
                    continue; // not offered for this shape and layout
                }
                ran.push(entry);
                let got = run_on(&dev, &c, 1).unwrap().remove(0);
                assert_close(&format!("{what} {kernel}"), &got, &cpu, accumulation(k));
                match &first {
                    None => first = Some((kernel, got)),
                    Some((k0, t0)) => assert_close(&format!("{what}: {kernel} against {k0}"), &got, t0, Tol { abs: 0.0, rel: 0.0 }),
                }
            }
        }
    }
    // Products with the unpacked signs of packed bits as B (the backward of binarized layers)
    // read the bits: the direct_signs variants, against the CPU's unpack and product.
    let signed =
        [(5, 12, 64, false, 1), (12, 7, 96, true, 1), (3, 4, 32, false, 3), (8, 5, 64, true, 2), (8, 8, 64, true, 2), (6, 9, 32, false, 1)];
    for (m, k, n, ta, batch) in signed {
        let mut g = Graph::new();
        let a_shape = [&[batch][..], &(if ta { [k, m] } else { [m, k] })[..]].concat();
        let a = g.input("x0", a_shape.clone(), DType::F32).unwrap();
        let x = g.input("x1", [batch * k, n], DType::F32).unwrap();
        let bits = g.bit_pack(x, bitgrad::PackMode::Sign).unwrap();
        let signs = g.bit_unpack(bits, n, bitgrad::PackMode::Sign).unwrap();
        let signs = g.reshape(signs, [batch, k, n]).unwrap();
        let y = g.matmul_t(a, signs, ta, false).unwrap();
        let c = Case { graph: g, outputs: vec![y], feeds: vec![("x0", f32s(&a_shape, 3, 1.0)), ("x1", f32s(&[batch * k, n], 4, 1.0))] };
        let what = format!("signs matmul m{m} k{k} n{n} ta{ta} batch {batch}");
        let cpu = run_on(&Device::cpu(), &c, 1).unwrap().remove(0);
        for &entry in variants.iter().filter(|v| v.starts_with("direct_signs")) {
            ctx.tuning.pin(Some(entry));
            let mut params = bitgrad::ParamStore::new();
            let kernels = bitgrad::Plan::new(&dev, &c.graph, &c.outputs, &mut params).unwrap().kernels().unwrap();
            assert!(!kernels.iter().any(|k| k.contains("unpack")), "{what}: the bits are read directly: {kernels:?}");
            if kernels.contains(&format!("gemm::{entry}")) {
                ran.push(entry);
                let got = run_on(&dev, &c, 1).unwrap().remove(0);
                assert_close(&format!("{what} {entry}"), &got, &cpu, accumulation(k));
            }
        }
    }
    ctx.tuning.pin(None);
    let missing: Vec<&&str> = variants.iter().filter(|v| !ran.contains(v)).collect();
    assert!(missing.is_empty(), "variants never offered by these shapes: {missing:?}");
}

#[test]
fn layout_ops_match_cpu_bit_exactly() {
    let x = f32s(&[2, 3, 5, 7], 5, 1.0);
    for perm in [vec![0, 1, 2, 3], vec![3, 2, 1, 0], vec![1, 3, 0, 2], vec![0, 1, 3, 2]] {
        check_case(&format!("permute {perm:?}"), &case(Op::Permute { perm: perm.clone() }, vec![x.clone()]), Tol { abs: 0.0, rel: 0.0 });
    }
    // Integer and packed-bit tensors move as raw bits.
    let words = HostTensor::u32([33, 65], (0..33 * 65).map(|i| bitgrad::graph::ops::random::random_bits(3, i)).collect()).unwrap();
    check_case("transpose u32", &case(Op::Permute { perm: vec![1, 0] }, vec![words.clone()]), Tol { abs: 0.0, rel: 0.0 });
    let ints = HostTensor::i32([4, 1, 3], ints(4, 12, 1000)).unwrap();
    check_case("broadcast i32", &case(Op::Broadcast { shape: Shape::new([2, 4, 5, 3]) }, vec![ints]), Tol { abs: 0.0, rel: 0.0 });
    check_case(
        "broadcast f32",
        &case(Op::Broadcast { shape: Shape::new([3, 7, 257]) }, vec![f32s(&[7, 1], 6, 1.0)]),
        Tol { abs: 0.0, rel: 0.0 },
    );
    check_case("reshape u32", &case(Op::Reshape { shape: Shape::new([65, 33]) }, vec![words.clone()]), Tol { abs: 0.0, rel: 0.0 });
    // Windows: padding (negative offsets), slicing (positive), both at once, a window lying
    // wholly outside (all zeros), and raw words.
    let windows: [(&[isize], &[usize]); 4] = [
        (&[-1, 0, -2, -3], &[4, 3, 9, 13]),
        (&[1, 1, 2, 3], &[1, 2, 3, 4]),
        (&[0, -1, 3, -2], &[2, 5, 4, 8]),
        (&[0, 0, 9, 0], &[2, 3, 2, 7]),
    ];
    for (offset, shape) in windows {
        let op = Op::Window { offset: offset.to_vec(), shape: Shape::new(shape) };
        check_case(&format!("window {offset:?} {shape:?}"), &case(op, vec![x.clone()]), Tol { abs: 0.0, rel: 0.0 });
    }
    let op = Op::Window { offset: vec![-2, 5], shape: Shape::new([37, 31]) };
    check_case("window u32", &case(op, vec![words]), Tol { abs: 0.0, rel: 0.0 });
}

#[test]
fn gather_matches_cpu() {
    let table = f32s(&[11, 3, 5], 8, 1.0);
    // Repeated rows and out-of-range indices (which must give NaN rows on both backends).
    let idx = HostTensor::i32([9], vec![0, 10, 3, 3, -1, 11, 7, 0, 3]).unwrap();
    check_case("gather", &case(Op::Gather, vec![table, idx.clone()]), Tol { abs: 0.0, rel: 0.0 });
    let dy = f32s(&[9, 3, 5], 9, 1.0);
    check_case("gather_grad", &case(Op::GatherGrad { rows: 11 }, vec![idx, dy]), accumulation(9));
}

/// Label ranks, by hand on tied rows and out-of-range labels, then the GPU against the CPU
/// reference on random rows with many ties, for integer labels and one-hot targets.
#[test]
fn label_rank_counts_higher_scores_and_earlier_ties() {
    let scores = HostTensor::f32([5, 4], vec![1., 3., 3., 0., 1., 3., 3., 0., 1., 3., 3., 0., 2., 2., 2., 2., 5., 1., 1., 1.]).unwrap();
    let labels = HostTensor::i32([5], vec![2, 1, 3, 3, 4]).unwrap();
    let onehot: Vec<f32> = [2usize, 1, 3, 3, 0].iter().flat_map(|&l| (0..4).map(move |c| if c == l { 1.0 } else { 0.0 })).collect();
    let onehot = HostTensor::f32([5, 4], onehot).unwrap();
    // Row 0: label 2 ties with class 1 (an earlier index); row 2: class 3 scores below all
    // three others; row 3: all tied, label 3 last; row 4: label 4 is outside 0..4.
    for (first_ties, target, want) in
        [(false, &labels, vec![0., 0., 3., 0., 4.]), (true, &labels, vec![1., 0., 3., 3., 4.]), (true, &onehot, vec![1., 0., 3., 3., 0.])]
    {
        let c = case(Op::LabelRank { first_ties }, vec![scores.clone(), target.clone()]);
        let got = run_on(&Device::cpu(), &c, 1).unwrap().remove(0);
        assert_eq!(got.as_f32().unwrap(), &want[..], "first_ties {first_ties}, {:?} target", target.dtype());
        check_case("label_rank by hand", &c, Tol { abs: 0.0, rel: 0.0 });
    }
    let (rows, classes) = (37, 10);
    // Scores on a grid of five values: most rows have ties.
    let scores: Vec<f32> = uniform(21, rows * classes, 1.0).iter().map(|v| (v * 2.0).round()).collect();
    let scores = HostTensor::f32([rows, classes], scores).unwrap();
    let labels = HostTensor::i32([rows], ints(22, rows, classes as u32)).unwrap();
    let onehot = HostTensor::f32([rows, classes], uniform(23, rows * classes, 1.0)).unwrap();
    for first_ties in [false, true] {
        for target in [&labels, &onehot] {
            let c = case(Op::LabelRank { first_ties }, vec![scores.clone(), target.clone()]);
            check_case(&format!("label_rank first_ties {first_ties} {:?}", target.dtype()), &c, Tol { abs: 0.0, rel: 0.0 });
        }
    }
}

#[test]
fn take_matches_cpu_and_reads_constant_indices() {
    // Fed indices: in range, -1 and past the end (both read 0).
    let x = f32s(&[5, 7], 12, 1.0);
    let idx = HostTensor::i32([6], vec![34, -1, 0, 35, 7, 100]).unwrap();
    check_case("take", &case(Op::Take { shape: Shape::new([2, 3]) }, vec![x.clone(), idx]), Tol { abs: 0.0, rel: 0.0 });
    // Graph::take keeps its indices as a constant, uploaded by the plan.
    let mut g = Graph::new();
    let xi = g.input("x0", [5, 7], DType::F32).unwrap();
    let y = g.take(xi, &[34, -1, 0, 7], [2, 2]).unwrap();
    let c = Case { graph: g, outputs: vec![y], feeds: vec![("x0", x.clone())] };
    let v = x.as_f32().unwrap();
    let want = HostTensor::f32([2, 2], vec![v[34], 0.0, v[0], v[7]]).unwrap();
    let mut devices = vec![bitgrad::Device::cpu()];
    devices.extend(gpu().cloned());
    for dev in &devices {
        let got = run_on(dev, &c, 2).unwrap();
        assert_close(&format!("take with constant indices on {}", dev.describe()), &got[0], &want, Tol { abs: 0.0, rel: 0.0 });
    }
}

#[test]
fn take_rejects_indices_it_cannot_invert() {
    let mut g = Graph::new();
    let x = g.input("x", [4], DType::F32).unwrap();
    for (idx, bad) in [(vec![0, 4], "entry 1 is 4"), (vec![1, -2], "entry 1 is -2"), (vec![2, 0, 2], "entry 2 is 2")] {
        let e = g.take(x, &idx, [idx.len()]).unwrap_err().to_string();
        assert!(e.contains("take") && e.contains(bad), "{e}");
    }
    let e = g.take(x, &[0, 1], [3]).unwrap_err().to_string();
    assert!(e.contains("take") && e.contains("one index per output element"), "{e}");
}

#[test]
fn softmax_and_cross_entropy_match_cpu() {
    for (rows, cols) in [(1, 1), (37, 10), (5, 129), (3, 1000)] {
        let mut x = uniform(11, rows * cols, 8.0);
        x[0] = 1000.0; // no overflow with large logits
        let x = HostTensor::f32([rows, cols], x).unwrap();
        let mut labels = ints(12, rows, cols as u32);
        if rows > 2 {
            labels[1] = -1; // invalid labels give NaN, never a silent number
            labels[2] = cols as i32;
        }
        let labels = HostTensor::i32([rows], labels).unwrap();
        let dloss = f32s(&[rows], 13, 1.0);
        let tol = accumulation(cols);
        check_case(&format!("softmax {rows}x{cols}"), &case(Op::Softmax, vec![x.clone()]), tol);
        check_case(&format!("xent {rows}x{cols}"), &case(Op::SoftmaxCrossEntropy, vec![x.clone(), labels.clone()]), tol);
        check_case(&format!("xent_grad {rows}x{cols}"), &case(Op::SoftmaxCrossEntropyGrad, vec![x, labels, dloss]), tol);
    }
}

#[test]
fn random_and_fill_match_cpu() {
    for shape in [vec![1], vec![1000], vec![7, 131]] {
        let uni =
            Op::Random { dist: Distribution::Uniform { low: -0.5, high: 2.0 }, seed: 42, shape: Shape::new(&shape[..]), streamed: false };
        check_case(&format!("uniform {shape:?}"), &case(uni, vec![]), ELEMENTWISE);
        // Normal draws go through log, sqrt and cos, which differ by a few ulp between backends.
        let nor = Op::Random {
            dist: Distribution::Normal { mean: 1.0, std: 0.5 },
            seed: 1 << 40,
            shape: Shape::new(&shape[..]),
            streamed: false,
        };
        check_case(&format!("normal {shape:?}"), &case(nor, vec![]), Tol { abs: 1e-5, rel: 1e-5 });
        let tn = Op::Random {
            dist: Distribution::TruncatedNormal { mean: 0.0, std: 2.0 },
            seed: 3,
            shape: Shape::new(&shape[..]),
            streamed: false,
        };
        check_case(&format!("truncated normal {shape:?}"), &case(tn, vec![]), Tol { abs: 1e-5, rel: 1e-5 });
        let streamed =
            Op::Random { dist: Distribution::Uniform { low: 0.0, high: 1.0 }, seed: 42, shape: Shape::new(&shape[..]), streamed: true };
        for step in [0.0, 1.0, 12345.0] {
            let stream = HostTensor::f32([1], vec![step]).unwrap();
            check_case(&format!("streamed uniform {shape:?} at {step}"), &case(streamed.clone(), vec![stream]), ELEMENTWISE);
        }
        check_case(
            &format!("fill {shape:?}"),
            &case(Op::Fill { value: -3.25, shape: Shape::new(&shape[..]) }, vec![]),
            Tol { abs: 0.0, rel: 0.0 },
        );
    }
}

#[test]
fn random_draws_have_the_requested_statistics() {
    let mut g = Graph::new();
    let n = 20_000;
    let u = g.random([n], Distribution::Uniform { low: 2.0, high: 4.0 }, 5).unwrap();
    let z = g.random([n], Distribution::Normal { mean: -1.0, std: 3.0 }, 5).unwrap();
    let other = g.random([n], Distribution::Uniform { low: 2.0, high: 4.0 }, 6).unwrap();
    let t = g.random([n], Distribution::TruncatedNormal { mean: 1.0, std: 0.5 }, 7).unwrap();
    let c = Case { graph: g, outputs: vec![u, z, other, t], feeds: vec![] };
    let out = run_on(&bitgrad::Device::cpu(), &c, 1).unwrap();
    let stats = |v: &[f32]| {
        let m = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        (m, (v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt())
    };
    let (u, z, other) = (out[0].as_f32().unwrap(), out[1].as_f32().unwrap(), out[2].as_f32().unwrap());
    assert!(u.iter().all(|&x| (2.0..4.0).contains(&x)));
    let (mu, su) = stats(u);
    assert!((mu - 3.0).abs() < 0.02 && (su - 2.0 / 12f64.sqrt()).abs() < 0.02, "uniform mean {mu} std {su}");
    let (mz, sz) = stats(z);
    assert!((mz + 1.0).abs() < 0.06 && (sz - 3.0).abs() < 0.06, "normal mean {mz} std {sz}");
    assert_ne!(u, other, "different seeds must give different draws");
    // Truncated at 2 std: all within [0, 2]; the std of a 2-sigma-truncated normal is 0.8796 std.
    let t = out[3].as_f32().unwrap();
    assert!(t.iter().all(|&v| (0.0..=2.0).contains(&v)));
    let (mt, st) = stats(t);
    assert!((mt - 1.0).abs() < 0.02 && (st - 0.5 * 0.87962566).abs() < 0.02, "truncated normal mean {mt} std {st}");
}

#[test]
fn dtype_mismatch_is_rejected() {
    let mut g = Graph::new();
    let x = g.input("x", [3], DType::I32).unwrap();
    let err = g.unary(UnaryOp::Exp, x).unwrap_err().to_string();
    assert!(err.contains("unary") && err.contains("F32") && err.contains("I32"), "{err}");
}

#[test]
fn grids_past_65535_workgroups_fold_into_y() {
    // One workgroup per output row: 70,001 rows need a second grid row.
    let rows = 70_001;
    let x = f32s(&[rows, 3], 21, 2.0);
    check_case(
        "sum over 70001 rows",
        &case(Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keep_dims: false }, vec![x.clone()]),
        accumulation(3),
    );
    check_case("softmax over 70001 rows", &case(Op::Softmax, vec![x]), accumulation(3));
}

#[test]
fn streamed_random_draws_change_with_the_stream() {
    let mut g = Graph::new();
    let stream = g.input("step", [1], DType::F32).unwrap();
    let r = g.random_streamed([64], Distribution::Uniform { low: 0.0, high: 1.0 }, 9, stream).unwrap();
    let plain = g.random([64], Distribution::Uniform { low: 0.0, high: 1.0 }, 9).unwrap();
    let mut plan = bitgrad::Plan::new(&bitgrad::Device::cpu(), &g, &[r, plain], &mut Default::default()).unwrap();
    let mut draw = |step: f32| {
        plan.feed("step", &HostTensor::f32([1], vec![step]).unwrap()).unwrap();
        plan.run().unwrap();
        (plan.fetch(r).unwrap().as_f32().unwrap().to_vec(), plan.fetch(plain).unwrap().as_f32().unwrap().to_vec())
    };
    let (a0, p0) = draw(0.0);
    let (a1, _) = draw(1.0);
    let (a1_again, _) = draw(1.0);
    assert_eq!(a0, p0, "stream 0 is the unstreamed draw");
    assert_eq!(a1, a1_again, "a stream value always gives the same draw");
    assert!(a0.iter().zip(&a1).filter(|(x, y)| x != y).count() > 60, "another stream value gives other numbers");
}

/// Every quantizer function (`QuantFn::ALL`) and its pseudo-gradient, with a per-channel
/// statistic where the function reads one, on inputs that include 0 and the clip bounds.
#[test]
fn quantize_functions_match_cpu() {
    for (k, &f) in bitgrad::graph::QuantFn::ALL.iter().enumerate() {
        for shape in [vec![1], vec![5, 37]] {
            let n: usize = shape.iter().product();
            let x = HostTensor::f32(&shape[..], with_edges(uniform(10 + k as u64, n, 1.5), &[0.0, -0.0, 1.0, -1.0, 0.05])).unwrap();
            let mut inputs = vec![x];
            if f.needs_stat() {
                let c = *shape.last().unwrap();
                inputs.push(HostTensor::f32([c], uniform(20 + k as u64, c, 1.0).iter().map(|v| v.abs() + 0.1).collect()).unwrap());
            }
            check_case(&format!("quantize {f:?} {shape:?}"), &case(Op::Quantize { f }, inputs.clone()), ELEMENTWISE);
            inputs.push(f32s(&shape, 30 + k as u64, 2.0));
            check_case(&format!("quantize_grad {f:?} {shape:?}"), &case(Op::QuantizeGrad { f }, inputs), ELEMENTWISE);
        }
    }
}

/// Every part of TensorFlow's fake quantization (`FakeQuantPart::ALL`), per tensor and per
/// channel, bit for bit.
#[test]
fn fake_quant_parts_match_cpu() {
    use bitgrad::graph::{FakeQuantPart, FakeQuantSpec};
    for &part in FakeQuantPart::ALL {
        for per_channel in [false, true] {
            let spec = FakeQuantSpec { num_bits: 4, narrow_range: per_channel, per_channel };
            let c = if per_channel { 7 } else { 1 };
            let x = f32s(&[9, 7], 40, 2.0);
            let min = HostTensor::f32([c], vec![-1.0; c]).unwrap();
            let max = HostTensor::f32([c], (0..c).map(|i| 0.5 + i as f32 * 0.25).collect()).unwrap();
            let op = Op::FakeQuant { spec, part };
            check_case(&format!("fake_quant {part:?} per_channel {per_channel}"), &case(op, vec![x, min, max]), Tol { abs: 0.0, rel: 0.0 });
        }
    }
}

/// Every distribution (`Distribution::ALL`), plain and streamed.
#[test]
fn every_distribution_matches_cpu() {
    for &dist in Distribution::ALL {
        // Normal draws go through log, sqrt and cos, which differ by a few ulp between backends.
        let tol = if matches!(dist, Distribution::Uniform { .. }) { ELEMENTWISE } else { Tol { abs: 1e-5, rel: 1e-5 } };
        let plain = Op::Random { dist, seed: 11, shape: Shape::new([3, 67]), streamed: false };
        check_case(&format!("{dist:?}"), &case(plain, vec![]), tol);
        let streamed = Op::Random { dist, seed: 11, shape: Shape::new([3, 67]), streamed: true };
        check_case(&format!("streamed {dist:?}"), &case(streamed, vec![HostTensor::f32([1], vec![7.0]).unwrap()]), tol);
    }
}

/// Every fused optimizer update (`UpdateFn::ALL`), with second moments that include 0 and a
/// Bop threshold that some `w * m` equal.
#[test]
fn optimizer_updates_match_cpu() {
    use bitgrad::graph::UpdateFn;
    for (k, &f) in UpdateFn::ALL.iter().enumerate() {
        let (arrays, scalars) = f.operands();
        for shape in [vec![1], vec![3, 257]] {
            let n: usize = shape.iter().product();
            let seed = 50 + 10 * k as u64;
            let mut inputs = vec![f32s(&shape, seed, 2.0), f32s(&shape, seed + 1, 1.0)];
            if arrays == 3 {
                let second = with_edges(uniform(seed + 2, n, 1.0).iter().map(|v| v * v).collect(), &[0.0]);
                inputs.push(HostTensor::f32(&shape[..], second).unwrap());
            }
            if matches!(f, UpdateFn::AdamAlpha { .. }) {
                // Iteration counts (the first step's is 0).
                let counts = ints(seed, n, 5000).iter().enumerate().map(|(i, &c)| if i == 0 { 0.0 } else { c as f32 }).collect();
                inputs = vec![HostTensor::f32(&shape[..], counts).unwrap()];
            }
            if f == UpdateFn::BopFlip {
                // w = 1, m = 0.5 at element 0: w m equals the threshold there.
                let (mut w, mut m) = (uniform(seed, n, 2.0), uniform(seed + 1, n, 1.0));
                (w[0], m[0]) = (1.0, 0.5);
                inputs = vec![HostTensor::f32(&shape[..], w).unwrap(), HostTensor::f32(&shape[..], m).unwrap()];
            }
            for (j, value) in [0.5f32, 0.9].into_iter().enumerate().take(scalars) {
                inputs.push(HostTensor::f32([1], vec![value / (1 + 99 * j) as f32]).unwrap());
            }
            check_case(&format!("{f:?} {shape:?}"), &case(Op::Update { f }, inputs), ELEMENTWISE);
        }
    }
}

/// The window-maximum gradient, first maximal tap only and every one, on windows full of ties.
#[test]
fn max_grad_matches_cpu_bit_exactly() {
    for first in [true, false] {
        for (rows, taps, c) in [(1, 1, 1), (7, 4, 3), (33, 9, 5)] {
            // Values on a coarse grid, so that windows have several maximal taps.
            let x: Vec<f32> = ints(60, rows * taps * c, 3).iter().map(|&v| v as f32).collect();
            let y: Vec<f32> =
                (0..rows * c).map(|w| (0..taps).map(|t| x[((w / c) * taps + t) * c + w % c]).fold(f32::NEG_INFINITY, f32::max)).collect();
            let inputs =
                vec![HostTensor::f32([rows, taps, c], x).unwrap(), HostTensor::f32([rows, c], y).unwrap(), f32s(&[rows, c], 61, 2.0)];
            check_case(
                &format!("max_grad first {first} [{rows}, {taps}, {c}]"),
                &case(Op::MaxGrad { first }, inputs),
                Tol { abs: 0.0, rel: 0.0 },
            );
        }
    }
}
