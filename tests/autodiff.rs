//! Reverse-mode gradients checked against central finite differences on the CPU backend, and
//! whole backward graphs checked GPU against CPU.

mod common;

use bitgrad::{BinaryOp, DType, Device, Graph, HostTensor, ParamStore, Plan, ReduceOp, Result, UnaryOp, ValueId};
use common::*;

/// Builds `loss = sum(f(x0, x1, ...) * r)` with a fixed random `r`, so every output element
/// carries a different weight, and returns (graph, inputs, loss).
fn weighted_loss(shapes: &[&[usize]], f: &dyn Fn(&mut Graph, &[ValueId]) -> Result<ValueId>) -> (Graph, Vec<ValueId>, ValueId) {
    let mut g = Graph::new();
    let xs: Vec<ValueId> = shapes.iter().enumerate().map(|(i, s)| g.input(&format!("x{i}"), *s, DType::F32).unwrap()).collect();
    let y = f(&mut g, &xs).unwrap();
    let ys = g.value(y).shape.clone();
    let r = g.random(ys.clone(), bitgrad::Distribution::Uniform { low: -1.0, high: 1.0 }, 99).unwrap();
    let yr = g.mul(y, r).unwrap();
    let axes: Vec<usize> = (0..ys.rank()).collect();
    let loss = g.sum(yr, &axes, false).unwrap();
    (g, xs, loss)
}

fn eval(g: &Graph, outputs: &[ValueId], feeds: &[HostTensor]) -> Vec<HostTensor> {
    let mut plan = Plan::new(&Device::cpu(), g, outputs, &mut ParamStore::new()).unwrap();
    for (i, t) in feeds.iter().enumerate() {
        plan.feed(&format!("x{i}"), t).unwrap();
    }
    plan.run().unwrap();
    outputs.iter().map(|&o| plan.fetch(o).unwrap()).collect()
}

/// Compares analytic gradients with central differences of step `eps`.
fn check_gradients(what: &str, shapes: &[&[usize]], inputs: Vec<Vec<f32>>, f: &dyn Fn(&mut Graph, &[ValueId]) -> Result<ValueId>) {
    let (mut g, xs, loss) = weighted_loss(shapes, f);
    let grads = g.backward(loss, &xs).unwrap();
    let feeds: Vec<HostTensor> = shapes.iter().zip(&inputs).map(|(s, v)| HostTensor::f32(*s, v.clone()).unwrap()).collect();
    let analytic = eval(&g, &grads, &feeds);
    let eps = 1e-2f32;
    for (xi, shape) in shapes.iter().enumerate() {
        for e in 0..inputs[xi].len() {
            let mut plus = feeds.clone();
            let mut minus = feeds.clone();
            let mut p = inputs[xi].clone();
            p[e] += eps;
            plus[xi] = HostTensor::f32(*shape, p).unwrap();
            let mut m = inputs[xi].clone();
            m[e] -= eps;
            minus[xi] = HostTensor::f32(*shape, m).unwrap();
            let lp = eval(&g, &[loss], &plus)[0].as_f32().unwrap()[0];
            let lm = eval(&g, &[loss], &minus)[0].as_f32().unwrap()[0];
            let numeric = (lp - lm) / (2.0 * eps);
            let a = analytic[xi].as_f32().unwrap()[e];
            // f32 central differences: error ~ eps^2 * f''' + rounding / eps.
            let tol = 2e-3 + 5e-3 * numeric.abs();
            assert!((a - numeric).abs() <= tol, "{what}: d/dx{xi}[{e}]: analytic {a}, numeric {numeric}, difference {}", a - numeric);
        }
    }
}

/// Values away from the kinks of abs, relu, clip and max so finite differences are valid.
fn smooth(seed: u64, n: usize) -> Vec<f32> {
    uniform(seed, n, 2.0).iter().map(|&x| if x.abs() < 0.1 { x + 0.3 } else { x }).collect()
}

#[test]
fn unary_gradients_match_finite_differences() {
    // Clip is moved so that no input sits on a bound.
    let ops = UnaryOp::ALL.iter().map(|&op| if let UnaryOp::Clip(..) = op { UnaryOp::Clip(-0.55, 0.65) } else { op });
    // Sign and Trunc are piecewise constant: their derivative is 0 where it exists.
    for op in ops.filter(|op| !matches!(op, UnaryOp::Sign | UnaryOp::Trunc)) {
        let x: Vec<f32> = match op {
            UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip => smooth(1, 7).iter().map(|v| v.abs() + 0.5).collect(),
            _ => smooth(1, 7),
        };
        check_gradients(&format!("{op:?}"), &[&[7]], vec![x], &|g, x| g.unary(op, x[0]));
    }
}

#[test]
fn binary_gradients_reduce_over_broadcast_axes() {
    for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Max, BinaryOp::Min] {
        let b: Vec<f32> = smooth(3, 3).iter().map(|v| if op == BinaryOp::Div { v.abs() + 0.5 } else { *v }).collect();
        check_gradients(&format!("{op:?}"), &[&[2, 1, 4], &[3, 1]], vec![smooth(2, 8), b], &|g, x| g.binary(op, x[0], x[1]));
    }
}

#[test]
fn reduction_gradients_match_finite_differences() {
    for (op, keep) in [(ReduceOp::Sum, false), (ReduceOp::Mean, true), (ReduceOp::Max, false)] {
        // Distinct values so that max has a unique argmax per output.
        let x: Vec<f32> = (0..24).map(|i| ((i * 7) % 24) as f32 * 0.1 - 1.0).collect();
        check_gradients(&format!("{op:?}"), &[&[2, 3, 4]], vec![x], &|g, x| g.reduce(op, x[0], &[0, 2], keep));
    }
}

#[test]
fn max_gradient_splits_ties_equally() {
    let mut g = Graph::new();
    let x = g.input("x0", [4], DType::F32).unwrap();
    let m = g.max(x, &[0], false).unwrap();
    let dx = g.backward(m, &[x]).unwrap()[0];
    let out = eval(&g, &[dx], &[HostTensor::f32([4], vec![2.0, 1.0, 2.0, 0.0]).unwrap()]);
    assert_eq!(out[0].as_f32().unwrap(), &[0.5, 0.0, 0.5, 0.0]);
}

#[test]
fn matmul_gradients_match_finite_differences() {
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let sa: &[usize] = if ta { &[4, 3] } else { &[3, 4] };
        let sb: &[usize] = if tb { &[2, 4] } else { &[4, 2] };
        check_gradients(&format!("matmul ta{ta} tb{tb}"), &[sa, sb], vec![smooth(4, 12), smooth(5, 8)], &|g, x| {
            g.matmul_t(x[0], x[1], ta, tb)
        });
    }
    // A 2-D weight shared across a batch: its gradient sums over the batch.
    check_gradients("batched matmul", &[&[2, 3, 4], &[4, 2]], vec![smooth(6, 24), smooth(7, 8)], &|g, x| g.matmul(x[0], x[1]));
}

#[test]
fn layout_gradients_match_finite_differences() {
    check_gradients("permute", &[&[2, 3, 4]], vec![smooth(8, 24)], &|g, x| g.permute(x[0], &[2, 0, 1]));
    check_gradients("broadcast", &[&[3, 1]], vec![smooth(9, 3)], &|g, x| g.broadcast_to(x[0], [2, 3, 5]));
    check_gradients("reshape", &[&[2, 6]], vec![smooth(10, 12)], &|g, x| g.reshape(x[0], [3, 4]));
}

#[test]
fn softmax_and_cross_entropy_gradients_match_finite_differences() {
    check_gradients("softmax", &[&[3, 5]], vec![smooth(11, 15)], &|g, x| g.softmax(x[0]));
}

#[test]
fn cross_entropy_gradient_matches_finite_differences() {
    let mut g = Graph::new();
    let x = g.input("x0", [4, 6], DType::F32).unwrap();
    let labels = g.input("labels", [4], DType::I32).unwrap();
    let per_row = g.softmax_cross_entropy(x, labels).unwrap();
    let w = g.random([4], bitgrad::Distribution::Uniform { low: 0.5, high: 1.5 }, 3).unwrap();
    let weighted = g.mul(per_row, w).unwrap();
    let loss = g.sum(weighted, &[0], false).unwrap();
    let dx = g.backward(loss, &[x]).unwrap()[0];
    let xs = smooth(12, 24);
    let run = |xv: &[f32], out: ValueId| {
        let mut plan = Plan::new(&Device::cpu(), &g, &[out], &mut ParamStore::new()).unwrap();
        plan.feed("x0", &HostTensor::f32([4, 6], xv.to_vec()).unwrap()).unwrap();
        plan.feed("labels", &HostTensor::i32([4], vec![0, 5, 2, 2]).unwrap()).unwrap();
        plan.run().unwrap();
        plan.fetch(out).unwrap().as_f32().unwrap().to_vec()
    };
    let analytic = run(&xs, dx);
    for e in 0..xs.len() {
        let (mut p, mut m) = (xs.clone(), xs.clone());
        p[e] += 1e-2;
        m[e] -= 1e-2;
        let numeric = (run(&p, loss)[0] - run(&m, loss)[0]) / 2e-2;
        assert!(
            (analytic[e] - numeric).abs() <= 2e-3 + 5e-3 * numeric.abs(),
            "xent d/dx[{e}]: analytic {}, numeric {numeric}",
            analytic[e]
        );
    }
}

#[test]
fn gather_gradient_accumulates_repeated_rows() {
    let mut g = Graph::new();
    let table = g.input("x0", [4, 2], DType::F32).unwrap();
    let idx = g.input("idx", [5], DType::I32).unwrap();
    let rows = g.gather(table, idx).unwrap();
    let loss = g.sum(rows, &[0, 1], false).unwrap();
    let dt = g.backward(loss, &[table]).unwrap()[0];
    let mut plan = Plan::new(&Device::cpu(), &g, &[dt], &mut ParamStore::new()).unwrap();
    plan.feed("x0", &HostTensor::f32([4, 2], vec![0.0; 8]).unwrap()).unwrap();
    plan.feed("idx", &HostTensor::i32([5], vec![1, 3, 1, 1, 0]).unwrap()).unwrap();
    plan.run().unwrap();
    assert_eq!(plan.fetch(dt).unwrap().as_f32().unwrap(), &[1.0, 1.0, 3.0, 3.0, 0.0, 0.0, 1.0, 1.0]);
}

#[test]
fn gradient_of_an_unrelated_variable_is_zero() {
    let mut g = Graph::new();
    let x = g.input("x0", [3], DType::F32).unwrap();
    let y = g.input("x1", [2], DType::F32).unwrap();
    let loss = g.sum(x, &[0], false).unwrap();
    let gy = g.backward(loss, &[y]).unwrap()[0];
    let out = eval(&g, &[gy], &[HostTensor::f32([3], vec![1.0; 3]).unwrap(), HostTensor::f32([2], vec![1.0; 2]).unwrap()]);
    assert_eq!(out[0].as_f32().unwrap(), &[0.0, 0.0]);
}

/// A two-layer MLP with softmax cross-entropy: forward plus backward, GPU against CPU.
fn mlp_case() -> Case<'static> {
    let mut g = Graph::new();
    let x = g.input("x", [13, 17], DType::F32).unwrap();
    let labels = g.input("labels", [13], DType::I32).unwrap();
    let normal = |seed| bitgrad::Init::Random { dist: bitgrad::Distribution::Normal { mean: 0.0, std: 0.3 }, seed };
    let w1 = g.variable("w1", [17, 33], normal(1)).unwrap();
    let b1 = g.variable("b1", [33], bitgrad::Init::Constant(0.1)).unwrap();
    let w2 = g.variable("w2", [33, 10], normal(2)).unwrap();
    let h = g.matmul(x, w1).unwrap();
    let h = g.add(h, b1).unwrap();
    let h = g.unary(UnaryOp::Tanh, h).unwrap();
    let logits = g.matmul(h, w2).unwrap();
    let per_row = g.softmax_cross_entropy(logits, labels).unwrap();
    let loss = g.mean(per_row, &[0], false).unwrap();
    let grads = g.backward(loss, &[w1, b1, w2]).unwrap();
    let mut outputs = vec![loss];
    outputs.extend(grads);
    Case {
        graph: g,
        outputs,
        feeds: vec![
            ("x", HostTensor::f32([13, 17], uniform(3, 13 * 17, 1.0)).unwrap()),
            ("labels", HostTensor::i32([13], ints(4, 13, 10)).unwrap()),
        ],
    }
}

#[test]
fn mlp_backward_graph_matches_cpu_on_gpu() {
    check_case("mlp loss and gradients", &mlp_case(), accumulation(33));
}

#[test]
fn second_derivatives_are_a_clear_error() {
    let mut g = Graph::new();
    let x = g.input("x", [3], DType::F32).unwrap();
    let y = g.unary(UnaryOp::Exp, x).unwrap();
    let s = g.sum(y, &[0], false).unwrap();
    let dx = g.backward(s, &[x]).unwrap()[0];
    let s2 = g.sum(dx, &[0], false).unwrap();
    let err = g.backward(s2, &[x]).unwrap_err().to_string();
    assert!(err.contains("unary_grad") && err.contains("not differentiable"), "{err}");
}

#[test]
fn window_and_concat_gradients_match_finite_differences() {
    check_gradients("pad", &[&[2, 3]], vec![smooth(3, 6)], &|g, x| g.pad(x[0], &[(1, 0), (2, 1)]));
    check_gradients("slice", &[&[3, 4]], vec![smooth(4, 12)], &|g, x| g.slice(x[0], &[1, 1], [2, 2]));
    check_gradients("concat", &[&[2, 1, 3], &[2, 2, 3]], vec![smooth(5, 6), smooth(6, 12)], &|g, x| g.concat(&[x[0], x[1]], 1));
}

#[test]
fn take_gradient_matches_finite_differences() {
    // A permutation with gaps both ways: some outputs read nothing (-1), some inputs are unread.
    check_gradients("take", &[&[2, 3]], vec![smooth(7, 6)], &|g, x| g.take(x[0], &[5, -1, 0, 3, -1, 1, 2], [7]));
}

#[test]
fn window_rejects_bad_slices_and_concats() {
    let mut g = Graph::new();
    let x = g.input("x", [2, 3], DType::F32).unwrap();
    let y = g.input("y", [3, 3], DType::F32).unwrap();
    let e = g.slice(x, &[1, 0], [2, 3]).unwrap_err().to_string();
    assert!(e.contains("slice") && e.contains("inside"), "{e}");
    let e = g.concat(&[x, y], 1).unwrap_err().to_string();
    assert!(e.contains("concat") && e.contains("[2, 3]") && e.contains("[3, 3]"), "{e}");
    assert!(g.concat(&[x, y], 0).is_ok());
    assert!(g.concat(&[x], 2).unwrap_err().to_string().contains("axis"));
}

/// `a^T @ b` in f64 for K-major `a` [K, M] and `b` [K, N].
fn naive_tn(a: &[f32], b: &[f32], k: usize, m: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0f64; m * n];
    for kk in 0..k {
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] += a[kk * m + i] as f64 * b[kk * n + j] as f64;
            }
        }
    }
    c.into_iter().map(|v| v as f32).collect()
}

#[test]
fn long_products_into_small_outputs_are_split_along_k_with_the_same_values_and_gradients() {
    // K = 2048 into a 9x5 output: recorded as 8 chunks of 256 and a sum.
    let (k, m, n) = (2048, 9, 5);
    let (av, bv, rv) = (uniform(11, k * m, 1.0), uniform(12, k * n, 1.0), uniform(13, m * n, 1.0));
    let mut g = Graph::new();
    let a = g.input("a", [k, m], DType::F32).unwrap();
    let b = g.input("b", [k, n], DType::F32).unwrap();
    let nodes = g.nodes().len();
    let c = g.matmul_t(a, b, true, false).unwrap();
    assert_eq!(g.nodes().len() - nodes, 4, "reshape a, reshape b, batched product, sum");
    let r = g.constant(HostTensor::f32([m, n], rv.clone()).unwrap()).unwrap();
    let cr = g.mul(c, r).unwrap();
    let loss = g.sum(cr, &[0, 1], false).unwrap();
    let grads = g.backward(loss, &[a, b]).unwrap();
    // da[k, i] = sum_j b[k, j] r[i, j]; db[k, j] = sum_i a[k, i] r[i, j].
    let mut da = vec![0.0f32; k * m];
    let mut db = vec![0.0f32; k * n];
    for kk in 0..k {
        for i in 0..m {
            for j in 0..n {
                da[kk * m + i] += bv[kk * n + j] * rv[i * n + j];
                db[kk * n + j] += av[kk * m + i] * rv[i * n + j];
            }
        }
    }
    let case = Case {
        graph: g,
        outputs: vec![c, grads[0], grads[1]],
        feeds: vec![("a", HostTensor::f32([k, m], av.clone()).unwrap()), ("b", HostTensor::f32([k, n], bv.clone()).unwrap())],
    };
    let cpu = run_on(&Device::cpu(), &case, 1).unwrap();
    assert_close("split product", &cpu[0], &HostTensor::f32([m, n], naive_tn(&av, &bv, k, m, n)).unwrap(), accumulation(k));
    assert_close("d/da", &cpu[1], &HostTensor::f32([k, m], da).unwrap(), accumulation(n));
    assert_close("d/db", &cpu[2], &HostTensor::f32([k, n], db).unwrap(), accumulation(m));
    check_case("split product and gradients", &case, accumulation(k));

    // A batch of products against one shared operand, and a K with no divisor in range: K = 2053
    // is prime, so it stays one product.
    let mut g = Graph::new();
    let a = g.input("a", [2, k, m], DType::F32).unwrap();
    let b = g.input("b", [k, n], DType::F32).unwrap();
    let c = g.matmul_t(a, b, true, false).unwrap();
    assert_eq!(g.value(c).shape.dims(), &[2, m, n]);
    let a2 = uniform(14, 2 * k * m, 1.0);
    let case = Case {
        graph: g,
        outputs: vec![c],
        feeds: vec![("a", HostTensor::f32([2, k, m], a2.clone()).unwrap()), ("b", HostTensor::f32([k, n], bv.clone()).unwrap())],
    };
    let mut expected = naive_tn(&a2[..k * m], &bv, k, m, n);
    expected.extend(naive_tn(&a2[k * m..], &bv, k, m, n));
    assert_close(
        "batched split",
        &run_on(&Device::cpu(), &case, 1).unwrap()[0],
        &HostTensor::f32([2, m, n], expected).unwrap(),
        accumulation(k),
    );
    check_case("batched split", &case, accumulation(k));
    let mut g = Graph::new();
    let a = g.input("a", [2053, m], DType::F32).unwrap();
    let b = g.input("b", [2053, n], DType::F32).unwrap();
    let nodes = g.nodes().len();
    g.matmul_t(a, b, true, false).unwrap();
    assert_eq!(g.nodes().len() - nodes, 1, "a prime K is not split");
}
