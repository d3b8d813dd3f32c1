//! Packed-bit kernels: the packing convention, bit-exact agreement with the CPU reference, and
//! the XNOR-popcount product checked against the float product of the unpacked ±1 values.

mod common;

use bitgrad::{DType, Device, Epilogue, Graph, HostTensor, PackMode};
use common::*;

const EXACT: Tol = Tol { abs: 0.0, rel: 0.0 };

/// Values with the edges that matter: 0, -0, and ±clip exactly.
fn signed_values(seed: u64, n: usize) -> Vec<f32> {
    let mut v = uniform(seed, n, 2.0);
    for (i, e) in [0.0, -0.0, 0.5, -0.5, 1e-30, -1e-30].into_iter().enumerate() {
        if i < n {
            v[(i * 11) % n] = e;
        }
    }
    v
}

fn pack_case(shape: &[usize], mode: PackMode, seed: u64) -> Case<'static> {
    let mut g = Graph::new();
    let x = g.input("x", shape, DType::F32).unwrap();
    let bits = g.bit_pack(x, mode).unwrap();
    let k = *shape.last().unwrap();
    let back = g.bit_unpack(bits, k, mode).unwrap();
    let n = shape.iter().product();
    Case { graph: g, outputs: vec![bits, back], feeds: vec![("x", HostTensor::f32(shape, signed_values(seed, n)).unwrap())] }
}

#[test]
fn packing_follows_the_larq_compute_engine_convention() {
    // Bit j of a word is element j; bit 1 means -1 (x < 0); 0 and -0 pack as +1.
    let c = pack_case(&[1, 5], PackMode::Sign, 0);
    let mut c = c;
    c.feeds = vec![("x", HostTensor::f32([1, 5], vec![-1.0, 1.0, 0.0, -0.0, -2.0]).unwrap())];
    for device in [Some(Device::cpu()), gpu().cloned()].into_iter().flatten() {
        let out = run_on(&device, &c, 1).unwrap();
        assert_eq!(out[0].as_u32().unwrap(), &[0b10001], "{}", device.describe());
        assert_eq!(out[1].as_f32().unwrap(), &[-1.0, 1.0, 1.0, 1.0, -1.0], "{}", device.describe());
    }
    // The clip mask is inclusive: |x| = clip passes the gradient.
    let mut m = pack_case(&[1, 4], PackMode::ClipMask(0.5), 0);
    m.feeds = vec![("x", HostTensor::f32([1, 4], vec![0.5, -0.5, 0.50001, 0.0]).unwrap())];
    let out = run_on(&Device::cpu(), &m, 1).unwrap();
    assert_eq!(out[0].as_u32().unwrap(), &[0b1011]);
}

#[test]
fn bit_pack_and_unpack_match_cpu_bit_exactly() {
    // K below, at and above one word, and not a multiple of 32.
    for shape in [vec![1, 1], vec![3, 31], vec![5, 32], vec![7, 33], vec![2, 3, 100], vec![1, 1000]] {
        for mode in PackMode::ALL.iter().copied().chain([PackMode::ClipMask(0.0)]) {
            check_case(&format!("pack {shape:?} {mode:?}"), &pack_case(&shape, mode, 3), EXACT);
        }
    }
}

#[test]
fn apply_mask_matches_cpu() {
    for (rows, k) in [(1, 1), (3, 33), (4, 100)] {
        let mut g = Graph::new();
        let x = g.input("x", [rows, k], DType::F32).unwrap();
        let dy = g.input("dy", [rows, k], DType::F32).unwrap();
        let mask = g.bit_pack(x, PackMode::ClipMask(1.0)).unwrap();
        let dx = g.apply_mask(mask, dy).unwrap();
        let c = Case {
            graph: g,
            outputs: vec![dx],
            feeds: vec![
                ("x", HostTensor::f32([rows, k], signed_values(5, rows * k)).unwrap()),
                ("dy", HostTensor::f32([rows, k], uniform(6, rows * k, 1.0)).unwrap()),
            ],
        };
        check_case(&format!("apply_mask {rows}x{k}"), &c, EXACT);
        // The reference itself: dy where |x| <= 1, else 0.
        let out = run_on(&Device::cpu(), &c, 1).unwrap();
        let (xs, dys) = (c.feeds[0].1.as_f32().unwrap(), c.feeds[1].1.as_f32().unwrap());
        let want: Vec<f32> = xs.iter().zip(dys).map(|(x, d)| if x.abs() <= 1.0 { *d } else { 0.0 }).collect();
        assert_eq!(out[0].as_f32().unwrap(), &want[..]);
    }
}

/// XNOR GEMM of sign-packed random matrices plus the float product of their ±1 values.
fn xnor_case(a_shape: &[usize], b_shape: &[usize], epilogue: Epilogue, scale: Option<Vec<f32>>, bias: Option<Vec<f32>>) -> Case<'static> {
    let k = *a_shape.last().unwrap();
    let n = b_shape[b_shape.len() - 2];
    let mut g = Graph::new();
    let a = g.input("a", a_shape, DType::F32).unwrap();
    let b = g.input("b", b_shape, DType::F32).unwrap();
    let (pa, pb) = (g.bit_pack(a, PackMode::Sign).unwrap(), g.bit_pack(b, PackMode::Sign).unwrap());
    let mut feeds = vec![
        ("a", HostTensor::f32(a_shape, signed_values(7, a_shape.iter().product())).unwrap()),
        ("b", HostTensor::f32(b_shape, signed_values(8, b_shape.iter().product())).unwrap()),
    ];
    let out = match epilogue {
        Epilogue::Plain => g.xnor_gemm(pa, pb, k).unwrap(),
        _ => {
            let s = g.input("scale", [n], DType::F32).unwrap();
            let t = g.input("bias", [n], DType::F32).unwrap();
            feeds.push(("scale", HostTensor::f32([n], scale.unwrap()).unwrap()));
            feeds.push(("bias", HostTensor::f32([n], bias.unwrap()).unwrap()));
            g.xnor_gemm_scaled(pa, pb, k, s, t, epilogue).unwrap()
        }
    };
    // The float reference: sign(a) @ sign(b)^T on the float GEMM.
    let (sa, sb) = (g.unary(bitgrad::UnaryOp::Sign, a).unwrap(), g.unary(bitgrad::UnaryOp::Sign, b).unwrap());
    let float = g.matmul_t(sa, sb, false, true).unwrap();
    Case { graph: g, outputs: vec![out, float], feeds }
}

#[test]
fn xnor_gemm_matches_cpu_and_the_float_product_exactly() {
    // m below and above the small-M threshold (8) and the 64-row tile; n and k awkward.
    for m in [1, 3, 8, 65] {
        for n in [1, 31, 33, 100] {
            for k in [1, 31, 32, 33, 257] {
                let c = xnor_case(&[m, k], &[n, k], Epilogue::Plain, None, None);
                check_case(&format!("xnor m{m} n{n} k{k}"), &c, EXACT);
                let out = run_on(&Device::cpu(), &c, 1).unwrap();
                assert_eq!(out[0], out[1], "xnor m{m} n{n} k{k}: popcount dot differs from the ±1 float product");
            }
        }
    }
}

#[test]
fn batched_xnor_gemm_matches_cpu() {
    for (a, b) in [(vec![3, 5, 70], vec![9, 70]), (vec![2, 10, 33], vec![2, 7, 33]), (vec![2, 2, 9, 130], vec![2, 2, 66, 130])] {
        let c = xnor_case(&a, &b, Epilogue::Plain, None, None);
        check_case(&format!("batched xnor {a:?} x {b:?}"), &c, EXACT);
    }
}

#[test]
fn xnor_epilogues_match_cpu() {
    for (m, n, k) in [(1, 33, 40), (5, 64, 100), (70, 100, 65)] {
        let scale: Vec<f32> = uniform(9, n, 2.0);
        let bias: Vec<f32> = uniform(10, n, 5.0);
        let c = xnor_case(&[m, k], &[n, k], Epilogue::Affine, Some(scale), Some(bias));
        check_case(&format!("affine m{m} n{n} k{k}"), &c, ELEMENTWISE);
        // Exact scales (±powers of two) and half-integer biases keep dot * scale + bias exact, so
        // the sign bits must agree exactly; some biases make the result exactly 0 (packs as +1).
        let scale: Vec<f32> = (0..n).map(|i| [0.5, -1.0, 2.0, -0.25][i % 4]).collect();
        let bias: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) * 0.5).collect();
        let c = xnor_case(&[m, k], &[n, k], Epilogue::Binarize, Some(scale), Some(bias));
        check_case(&format!("binarize m{m} n{n} k{k}"), &c, EXACT);
    }
}

/// Every tiled-size XNOR GEMM variant (the tiled kernel and the barrier-free `xnor_direct*`
/// ones), pinned in turn on a device of its own, against the CPU reference for the plain and
/// affine epilogues: words a multiple of 4 (the vec4 forms) or not, rows and columns off every
/// tile, a batched B; each variant must have run.
#[test]
fn every_xnor_variant_matches_cpu() {
    if gpu().is_none() {
        return;
    }
    let opts = bitgrad::GpuOptions { tune: Some(bitgrad::TuneMode::Off), ..Default::default() };
    let dev = Device::gpu_with(&opts).unwrap();
    let Device::Gpu(ctx) = &dev else { unreachable!() };
    let variants: Vec<&str> = bitgrad::kernels::xnor_gemm::KERNELS
        .iter()
        .map(|k| k.entry)
        .filter(|e| e.starts_with("xnor_direct") || *e == "xnor_gemm" || *e == "xnor_gemm_affine")
        .collect();
    let mut ran: Vec<&str> = Vec::new();
    let shapes: [(&[usize], &[usize]); 6] = [
        (&[8, 128], &[4, 128]),
        (&[13, 100], &[5, 100]),
        (&[70, 257], &[33, 257]),
        (&[9, 512], &[260, 512]),
        (&[2, 11, 64], &[2, 7, 64]),
        (&[3, 10, 40], &[6, 40]),
    ];
    for (sa, sb) in shapes {
        let n = sb[sb.len() - 2];
        for epilogue in [Epilogue::Plain, Epilogue::Affine] {
            let (s, b) = match epilogue {
                Epilogue::Plain => (None, None),
                _ => (Some(uniform(9, n, 2.0)), Some(uniform(10, n, 5.0))),
            };
            let c = xnor_case(sa, sb, epilogue, s, b);
            let cpu = run_on(&Device::cpu(), &c, 1).unwrap();
            for &entry in &variants {
                ctx.tuning.pin(Some(entry));
                let kernels = bitgrad::Plan::new(&dev, &c.graph, &c.outputs, &mut bitgrad::ParamStore::new()).unwrap().kernels().unwrap();
                if !kernels.contains(&format!("xnor_gemm::{entry}")) {
                    continue; // not offered for this shape and epilogue
                }
                ran.push(entry);
                let got = run_on(&dev, &c, 1).unwrap();
                let tol = if epilogue == Epilogue::Plain { EXACT } else { ELEMENTWISE };
                assert_close(&format!("{epilogue:?} {sa:?} x {sb:?} on {entry}"), &got[0], &cpu[0], tol);
            }
        }
    }
    ctx.tuning.pin(None);
    let missing: Vec<&&str> = variants.iter().filter(|v| !ran.contains(v)).collect();
    assert!(missing.is_empty(), "variants never offered by these shapes: {missing:?}");
}

#[test]
fn xnor_shape_errors_name_the_problem() {
    let mut g = Graph::new();
    let a = g.input("a", [4, 2], DType::U32).unwrap();
    let b = g.input("b", [3, 2], DType::U32).unwrap();
    let err = g.xnor_gemm(a, b, 100).unwrap_err().to_string();
    assert!(err.contains("xnor_gemm") && err.contains("ceil(k/32) = 4"), "{err}");
    let c = g.input("c", [5, 3, 2], DType::U32).unwrap();
    let err = g.xnor_gemm(a, c, 64).unwrap_err().to_string();
    assert!(err.contains("batch"), "{err}");
    let x = g.input("x", [4, 64], DType::F32).unwrap();
    let err = g.bit_pack(x, PackMode::ClipMask(-1.0)).unwrap_err().to_string();
    assert!(err.contains("clip"), "{err}");
    let bits = g.bit_pack(x, PackMode::Sign).unwrap();
    let err = g.backward(bits, &[x]).unwrap_err().to_string();
    assert!(err.contains("loss") && err.contains("U32"), "{err}");
    // A gradient asked for through packing is an error, never a silent zero.
    let signs = g.bit_unpack(bits, 64, PackMode::Sign).unwrap();
    let loss = g.sum(signs, &[0, 1], false).unwrap();
    let err = g.backward(loss, &[x]).unwrap_err().to_string();
    assert!(err.contains("bit_unpack") && err.contains("not differentiable"), "{err}");
}

#[test]
fn small_m_xnor_kernels_agree_with_and_without_subgroups() {
    let Some(dev) = gpu() else { return };
    let ctx = dev.gpu_context().unwrap();
    eprintln!(
        "subgroup kernels on {}: {} (subgroup sizes {}..={})",
        ctx.summary.name,
        ctx.subgroup_kernels,
        ctx.adapter.get_info().subgroup_min_size,
        ctx.adapter.get_info().subgroup_max_size
    );
    let fallback = Device::gpu_with(&bitgrad::GpuOptions { subgroups: false, ..Default::default() }).unwrap();
    assert!(!fallback.gpu_context().unwrap().subgroup_kernels);
    for m in [1, 3, 7] {
        for (n, k) in [(1, 1), (33, 100), (100, 257), (64, 32)] {
            let scale: Vec<f32> = (0..n).map(|i| [0.5, -1.0, 2.0][i % 3]).collect();
            let bias: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 3.0) * 0.5).collect();
            for &epilogue in Epilogue::ALL {
                let (s, b) = if epilogue == Epilogue::Plain { (None, None) } else { (Some(scale.clone()), Some(bias.clone())) };
                let c = xnor_case(&[m, k], &[n, k], epilogue, s, b);
                let cpu = run_on(&Device::cpu(), &c, 1).unwrap();
                for device in [dev, &fallback] {
                    let out = run_on(device, &c, 1).unwrap();
                    assert_close(&format!("{epilogue:?} m{m} n{n} k{k} on {}", device.describe()), &out[0], &cpu[0], EXACT);
                }
            }
        }
    }
}

/// An encoding of low-bit values as weighted bit planes (src/graph/ops/planes.rs), written here
/// from its definition: the values it takes, and the planes and weights of a value.
struct Encoding {
    name: &'static str,
    values: &'static [i64],
    weights: &'static [i32],
    bits: fn(i64) -> Vec<bool>,
}

const ENCODINGS: [Encoding; 5] = [
    // ±1: [s, ones] with s = 1 for -1 (the packing convention); 1 - 2 s.
    Encoding { name: "±1", values: &[-1, 1], weights: &[-2, 1], bits: |v| vec![v < 0, true] },
    Encoding { name: "{0,1}", values: &[0, 1], weights: &[1], bits: |v| vec![v == 1] },
    // Ternary: [s & m, m] with s = 1 for -1; m - 2 (s & m).
    Encoding { name: "ternary", values: &[-1, 0, 1], weights: &[-2, 1], bits: |v| vec![v < 0, v != 0] },
    Encoding { name: "2-bit", values: &[0, 1, 2, 3], weights: &[1, 2], bits: |v| vec![v & 1 != 0, v & 2 != 0] },
    Encoding { name: "3-bit", values: &[0, 1, 2, 3, 4, 5, 6, 7], weights: &[1, 2, 4], bits: |v| (0..3).map(|i| v >> i & 1 != 0).collect() },
];

/// `rows` x `k` values of `e` (seeded) and their planes `[P, rows, words]`.
fn encoded(e: &Encoding, rows: usize, k: usize, seed: u64) -> (Vec<i64>, HostTensor) {
    let picks = ints(seed, rows * k, e.values.len() as u32);
    let values: Vec<i64> = picks.iter().map(|&i| e.values[i as usize]).collect();
    let words = k.div_ceil(32);
    let planes = e.weights.len();
    let mut data = vec![0u32; planes * rows * words];
    for r in 0..rows {
        for c in 0..k {
            for (p, bit) in (e.bits)(values[r * k + c]).into_iter().enumerate() {
                if bit {
                    data[(p * rows + r) * words + c / 32] |= 1 << (c % 32);
                }
            }
        }
    }
    (values, HostTensor::u32([planes, rows, words], data).unwrap())
}

/// Each kernel variant on a device of its own, pinned (so the pin reaches no other test).
#[test]
fn plane_products_of_every_encoding_pair_are_the_exact_dot_products() {
    let mut devices: Vec<(Device, Option<&str>)> = vec![(Device::cpu(), None)];
    if gpu().is_some() {
        let opts = bitgrad::GpuOptions { tune: Some(bitgrad::TuneMode::Off), ..Default::default() };
        for entry in ["plane_gemm4_signed", "plane_gemm4", "plane_gemm"] {
            devices.push((Device::gpu_with(&opts).unwrap(), Some(entry)));
        }
    }
    let mut ran = std::collections::BTreeSet::new();
    for (m, n, k) in [(37, 45, 100), (5, 3, 32), (64, 66, 257)] {
        for (ia, ea) in ENCODINGS.iter().enumerate() {
            for (ib, eb) in ENCODINGS.iter().enumerate() {
                let (va, a) = encoded(ea, m, k, 11 + ia as u64);
                let (vb, b) = encoded(eb, n, k, 23 + ib as u64);
                let mut g = Graph::new();
                let (a, b) = (g.constant(a).unwrap(), g.constant(b).unwrap());
                let y = g.plane_gemm(a, b, ea.weights, eb.weights).unwrap();
                let want: Vec<f32> =
                    (0..m * n).map(|i| (0..k).map(|c| va[(i / n) * k + c] * vb[(i % n) * k + c]).sum::<i64>() as f32).collect();
                for (d, pin) in &devices {
                    if let (Device::Gpu(ctx), Some(entry)) = (d, pin) {
                        ctx.tuning.pin(Some(entry));
                    }
                    let mut plan = bitgrad::Plan::new(d, &g, &[y], &mut bitgrad::ParamStore::new()).unwrap();
                    ran.extend(plan.kernels());
                    plan.run().unwrap();
                    let got = plan.fetch(y).unwrap();
                    let kernels = plan.kernels();
                    assert_eq!(got.as_f32().unwrap(), &want[..], "{} x {} {m}x{n}x{k} on {} {kernels:?}", ea.name, eb.name, d.describe());
                }
            }
        }
    }
    if gpu().is_some() {
        let ran: Vec<String> = ran.into_iter().flatten().collect();
        let all = ["planes::plane_gemm4_signed", "planes::plane_gemm4", "planes::plane_gemm"];
        assert!(all.iter().all(|k| ran.iter().any(|r| r == k)), "{ran:?}");
    }
}

#[test]
fn plane_product_errors_name_the_problem() {
    let mut g = Graph::new();
    let a = g.constant(HostTensor::u32([2, 4, 3], vec![0; 24]).unwrap()).unwrap();
    let b = g.constant(HostTensor::u32([1, 5, 3], vec![0; 15]).unwrap()).unwrap();
    let c = g.constant(HostTensor::u32([1, 5, 2], vec![0; 10]).unwrap()).unwrap();
    let e = g.plane_gemm(a, b, &[1], &[1]).unwrap_err().to_string();
    assert!(e.contains("a_weights") && e.contains("1 weights for 2 planes"), "{e}");
    let e = g.plane_gemm(a, c, &[1, 2], &[1]).unwrap_err().to_string();
    assert!(e.contains("same words per row"), "{e}");
    let e = g.plane_gemm(a, b, &[1 << 20, 1], &[1 << 10]).unwrap_err().to_string();
    assert!(e.contains("overflow"), "{e}");
    let y = g.plane_gemm(a, b, &[2, -1], &[1]).unwrap();
    assert_eq!(g.value(y).shape.dims(), [4, 5]);
}

/// `Op::PlanePack` holds each value's integer in its encoding's planes and `Op::PlaneUnpack`
/// reads it back: values of every encoding (0, -0, ties, out of range: clamped, NaN: 0), rows
/// within and across words, a batch axis; the GPU's planes equal the CPU's bit for bit, the
/// values come back exactly, and the (batched) plane product of two packs is the integer dot
/// product.
#[test]
fn plane_pack_and_unpack_hold_every_encodings_integers() {
    use bitgrad::Encoding;
    let encodings = [
        (Encoding::Signed, 1.0),
        (Encoding::Unsigned { bits: 1 }, 1.0),
        (Encoding::Unsigned { bits: 2 }, 3.0),
        (Encoding::Unsigned { bits: 8 }, 255.0),
        (Encoding::Odd { bits: 1 }, 1.0),
        (Encoding::Odd { bits: 2 }, 3.0),
        (Encoding::Odd { bits: 7 }, 127.0),
    ];
    for (e, scale) in encodings {
        for shape in [vec![3, 37], vec![2, 3, 70]] {
            let n: usize = shape.iter().product();
            let (lo, hi) = match e {
                Encoding::Signed => (-1, 1),
                Encoding::Unsigned { bits } => (0, (1 << bits) - 1),
                Encoding::Odd { bits } => (-((1 << bits) - 1), (1 << bits) - 1),
            };
            let legal: Vec<i64> = (lo..=hi).filter(|v| !matches!(e, Encoding::Odd { .. }) || v % 2 != 0 || *v == 0).collect();
            let picks = ints(7 + n as u64, n, legal.len() as u32);
            let mut v: Vec<i64> = picks.iter().map(|&i| legal[i as usize]).collect();
            let mut q: Vec<f32> = v.iter().map(|&x| x as f32 / scale).collect();
            // Edges: -0 is 0; past the range clamps; NaN is 0.
            for (i, (qi, vi)) in
                [(-0.0, 0), ((hi + 5) as f32 / scale, hi), (f32::NAN, 0), ((lo - 9) as f32 / scale, lo)].into_iter().enumerate()
            {
                q[i * 13] = qi;
                v[i * 13] = vi;
            }
            let mut g = Graph::new();
            let x = g.input("q", shape.as_slice(), DType::F32).unwrap();
            let planes = g.plane_pack(x, e, scale).unwrap();
            let k = *shape.last().unwrap();
            let back = g.plane_unpack(planes, e, k, scale).unwrap();
            let batched = shape.len() == 3;
            let y = g.plane_gemm(planes, planes, &e.weights(), &e.weights()).unwrap();
            let c = Case { graph: g, outputs: vec![planes, back, y], feeds: vec![("q", HostTensor::f32(shape.as_slice(), q).unwrap())] };
            let cpu = run_on(&Device::cpu(), &c, 1).unwrap();
            let what = format!("{e:?} {shape:?}");
            let want: Vec<f32> = v.iter().map(|&x| x as f32 / scale).collect();
            assert_eq!(cpu[1].as_f32().unwrap(), &want[..], "{what}: values read back");
            let rows = shape[shape.len() - 2];
            let dots: Vec<f32> = (0..n / k / rows)
                .flat_map(|b| {
                    let v = &v;
                    (0..rows * rows).map(move |i| {
                        let (r, s) = (b * rows + i / rows, b * rows + i % rows);
                        (0..k).map(|c| v[r * k + c] * v[s * k + c]).sum::<i64>() as f32
                    })
                })
                .collect();
            assert_eq!(cpu[2].as_f32().unwrap(), &dots[..], "{what}: plane product (batched: {batched})");
            if let Some(gpu) = gpu() {
                let got = run_on(gpu, &c, 1).unwrap();
                for (i, name) in ["planes", "values", "product"].into_iter().enumerate() {
                    assert_close(&format!("{what}: {name} on {}", gpu.describe()), &got[i], &cpu[i], EXACT);
                }
            }
        }
    }
    let mut g = Graph::new();
    let x = g.input("q", [2, 8], DType::F32).unwrap();
    let e = g.plane_pack(x, Encoding::Unsigned { bits: 9 }, 1.0).unwrap_err().to_string();
    assert!(e.contains("more than 8 planes"), "{e}");
    let e = g.plane_pack(x, Encoding::Signed, 0.0).unwrap_err().to_string();
    assert!(e.contains("scale") && e.contains("positive"), "{e}");
    let p = g.plane_pack(x, Encoding::Signed, 1.0).unwrap();
    let e = g.plane_unpack(p, Encoding::Unsigned { bits: 3 }, 8, 1.0).unwrap_err().to_string();
    assert!(e.contains("3 planes"), "{e}");
}
