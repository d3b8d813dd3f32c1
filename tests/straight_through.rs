//! Binarized products trained with straight-through gradients on packed state: forward equals
//! the float product of the signs, gradients equal Larq's SteSign rule computed with float ops,
//! and the backward pass never reads the f32 operands (only packed signs and masks).

mod common;

use bitgrad::{BinaryOp, ConvOptions, DType, Device, Graph, HostTensor, Padding, UnaryOp, ValueId};
use common::*;

/// `[|v| <= clip]` as 1/0 with float ops.
fn clip_mask(g: &mut Graph, v: ValueId, clip: f32) -> ValueId {
    let a = g.unary(UnaryOp::Abs, v).unwrap();
    let c = g.fill([1], clip).unwrap();
    g.binary(BinaryOp::Ge, c, a).unwrap()
}

/// Values around the clip edges: beyond ±1, exactly ±1 (inclusive), 0.
fn around_clip(seed: u64, n: usize) -> Vec<f32> {
    let mut v = uniform(seed, n, 1.6);
    for (i, e) in [1.0, -1.0, 0.0, 1.5, -1.2].into_iter().enumerate() {
        if i < n {
            v[(i * 5) % n] = e;
        }
    }
    v
}

/// `sum(y * dy)`, whose gradient with respect to `y` is `dy`.
fn against(g: &mut Graph, y: ValueId, dy: ValueId) -> ValueId {
    let yd = g.mul(y, dy).unwrap();
    let axes: Vec<usize> = (0..g.value(y).shape.rank()).collect();
    g.sum(yd, &axes, false).unwrap()
}

/// Backpropagates a fed upstream gradient `dy` (a new input) from `y` to `wrt`; returns `dy`, the
/// gradients, and the range of nodes the backward appended.
fn backward_of(g: &mut Graph, y: ValueId, wrt: &[ValueId]) -> (ValueId, Vec<ValueId>, std::ops::Range<usize>) {
    let dy = g.input("dy", g.value(y).shape.clone(), DType::F32).unwrap();
    let loss = against(g, y, dy);
    let start = g.nodes().len();
    let grads = g.backward(loss, wrt).unwrap();
    (dy, grads, start..g.nodes().len())
}

struct Built {
    case: Case<'static>,
    backward: std::ops::Range<usize>,
    f32_operands: Vec<ValueId>,
}

fn dense_case(batch: &[usize], k: usize, n: usize, clip: Option<f32>) -> Built {
    let mut g = Graph::new();
    let mut xs = batch.to_vec();
    xs.push(k);
    let x = g.input("x", &xs[..], DType::F32).unwrap();
    let w = g.input("w", [k, n], DType::F32).unwrap();
    let y = g.binary_matmul(x, w, clip, clip).unwrap();
    let ys = g.value(y).shape.clone();
    let (dy, grads, backward) = backward_of(&mut g, y, &[x, w]);
    // Reference: float product of signs, gradients by the SteSign rule.
    let (sx, sw) = (g.unary(UnaryOp::Sign, x).unwrap(), g.unary(UnaryOp::Sign, w).unwrap());
    let y_ref = g.matmul(sx, sw).unwrap();
    let mut dx_ref = g.matmul_t(dy, sw, false, true).unwrap();
    let dw_full = g.matmul_t(sx, dy, true, false).unwrap();
    let mut dw_ref = g.sum_to(dw_full, &bitgrad::Shape::new([k, n])).unwrap();
    if let Some(c) = clip {
        let (mx, mw) = (clip_mask(&mut g, x, c), clip_mask(&mut g, w, c));
        dx_ref = g.mul(dx_ref, mx).unwrap();
        dw_ref = g.mul(dw_ref, mw).unwrap();
    }
    let xn = xs.iter().product();
    Built {
        case: Case {
            graph: g,
            outputs: vec![y, grads[0], grads[1], y_ref, dx_ref, dw_ref],
            feeds: vec![
                ("x", HostTensor::f32(&xs[..], around_clip(1, xn)).unwrap()),
                ("w", HostTensor::f32([k, n], around_clip(2, k * n)).unwrap()),
                ("dy", HostTensor::f32(ys.clone(), uniform(3, ys.numel(), 1.0)).unwrap()),
            ],
        },
        backward,
        f32_operands: vec![x, w],
    }
}

fn check_against_reference(what: &str, b: &Built, k: usize) {
    for device in [Some(Device::cpu()), gpu().cloned()].into_iter().flatten() {
        let out = run_on(&device, &b.case, 1).unwrap();
        let tol = accumulation(k);
        assert_close(&format!("{what} forward on {}", device.describe()), &out[0], &out[3], Tol { abs: 0.0, rel: 0.0 });
        assert_close(&format!("{what} dx on {}", device.describe()), &out[1], &out[4], tol);
        assert_close(&format!("{what} dw on {}", device.describe()), &out[2], &out[5], tol);
    }
    check_case(what, &b.case, accumulation(k));
}

fn assert_backward_reads_only_packed_state(what: &str, b: &Built) {
    let g = &b.case.graph;
    assert!(!b.backward.is_empty(), "{what}: backward appended nothing");
    for node in &g.nodes()[b.backward.clone()] {
        for x in &b.f32_operands {
            assert!(!node.inputs.contains(x), "{what}: backward node {:?} reads an f32 operand", node.op);
        }
    }
}

#[test]
fn binary_matmul_trains_with_the_ste_sign_rule() {
    for (batch, k, n, clip) in
        [(vec![5], 37, 9, Some(1.0)), (vec![1], 64, 3, Some(0.5)), (vec![2, 3], 33, 4, Some(1.0)), (vec![9], 70, 5, None)]
    {
        let what = format!("binary_matmul {batch:?} k{k} n{n} clip {clip:?}");
        let b = dense_case(&batch, k, n, clip);
        check_against_reference(&what, &b, k.max(n) * batch.iter().product::<usize>());
        assert_backward_reads_only_packed_state(&what, &b);
    }
}

fn conv_case(image: &[usize], o: &ConvOptions, filters: usize, pad: f32) -> Built {
    let mut g = Graph::new();
    let x = g.input("x", image, DType::F32).unwrap();
    let mut ks = o.kernel.clone();
    ks.extend([*image.last().unwrap() / o.groups, filters]);
    let w = g.input("w", &ks[..], DType::F32).unwrap();
    let y = g.binary_conv(x, w, o, pad, Some(1.0), Some(1.0)).unwrap();
    let ys = g.value(y).shape.clone();
    let (dy, grads, backward) = backward_of(&mut g, y, &[x, w]);
    // Reference: the float convolution of the signs; its gradients with respect to the signs,
    // masked by the clip rule. The signs are inputs here, so ordinary autodiff applies.
    let sx = g.input("sx", image, DType::F32).unwrap();
    let sw = g.input("sw", &ks[..], DType::F32).unwrap();
    let y_ref = g.conv(sx, sw, o, pad).unwrap();
    let loss_ref = against(&mut g, y_ref, dy);
    let rg = g.backward(loss_ref, &[sx, sw]).unwrap();
    let (mx, mw) = (clip_mask(&mut g, x, 1.0), clip_mask(&mut g, w, 1.0));
    let dx_ref = g.mul(rg[0], mx).unwrap();
    let dw_ref = g.mul(rg[1], mw).unwrap();
    let xv = around_clip(4, image.iter().product());
    let wv = around_clip(5, ks.iter().product());
    let sign = |v: &[f32]| v.iter().map(|&a| if a < 0.0 { -1.0 } else { 1.0 }).collect::<Vec<f32>>();
    Built {
        case: Case {
            graph: g,
            outputs: vec![y, grads[0], grads[1], y_ref, dx_ref, dw_ref],
            feeds: vec![
                ("x", HostTensor::f32(image, xv.clone()).unwrap()),
                ("w", HostTensor::f32(&ks[..], wv.clone()).unwrap()),
                ("dy", HostTensor::f32(ys.clone(), uniform(6, ys.numel(), 1.0)).unwrap()),
                ("sx", HostTensor::f32(image, sign(&xv)).unwrap()),
                ("sw", HostTensor::f32(&ks[..], sign(&wv)).unwrap()),
            ],
        },
        backward,
        f32_operands: vec![x, w],
    }
}

#[test]
fn binary_conv_trains_with_the_ste_sign_rule() {
    let same = |k: &[usize], s: usize| ConvOptions { padding: Padding::Same, strides: vec![s; k.len()], ..ConvOptions::new(k) };
    for (name, image, o, filters) in [
        ("3x3 same c5", vec![2, 5, 4, 5], same(&[3, 3], 1), 3),
        ("3x3 same s2 c33", vec![1, 6, 5, 33], same(&[3, 3], 2), 2),
        ("2x2 valid c40", vec![1, 4, 4, 40], ConvOptions::new(&[2, 2]), 3),
        ("1d same c7", vec![2, 7, 7], same(&[3], 1), 2),
        ("3x3 same groups 2 c6", vec![1, 4, 4, 6], ConvOptions { groups: 2, ..same(&[3, 3], 1) }, 4),
        ("3x3 same depthwise x2 c3", vec![2, 4, 5, 3], ConvOptions { groups: 3, ..same(&[3, 3], 1) }, 6),
    ] {
        for pad in [1.0, 0.0] {
            let what = format!("binary_conv {name} pad {pad}");
            let b = conv_case(&image, &o, filters, pad);
            check_against_reference(&what, &b, 9 * 40);
            assert_backward_reads_only_packed_state(&what, &b);
        }
    }
}

#[test]
fn saved_state_is_at_least_16x_smaller_than_f32() {
    // What the backward keeps of a [64, 1024] activation: packed signs and a packed mask, 2 bits
    // per element (rows round up to whole words, so a K that is not a multiple of 32 saves a
    // little more).
    let mut g = Graph::new();
    let x = g.input("x", [64, 1024], DType::F32).unwrap();
    let w = g.input("w", [1024, 10], DType::F32).unwrap();
    let _ = g.binary_matmul(x, w, Some(1.0), Some(1.0)).unwrap();
    let saved: usize = g
        .nodes()
        .iter()
        .filter(|n| matches!(n.op, bitgrad::Op::BitPack { .. }) && n.inputs == [x])
        .map(|n| g.value(n.output.unwrap()).shape.numel() * 4)
        .sum();
    let f32_bytes = 64 * 1024 * 4;
    assert!(saved * 16 <= f32_bytes, "saved {saved} bytes for a {f32_bytes}-byte activation");
}
