//! The planner and executor: whole training steps, shared variables, pruning, buffer reuse,
//! feeds, limits and error reporting.

mod common;

use bitgrad::{DType, Device, Distribution, Error, Graph, HostTensor, Init, ParamStore, Plan, UnaryOp, ValueId};
use common::*;

/// A linear softmax classifier whose graph ends with SGD updates `w <- w - lr * dw`.
fn sgd_graph(batch: usize) -> (Graph, ValueId, Vec<ValueId>) {
    let mut g = Graph::new();
    let x = g.input("x", [batch, 19], DType::F32).unwrap();
    let labels = g.input("labels", [batch], DType::I32).unwrap();
    let w = g.variable("w", [19, 7], Init::Random { dist: Distribution::Normal { mean: 0.0, std: 0.2 }, seed: 11 }).unwrap();
    let b = g.variable("b", [7], Init::Zeros).unwrap();
    let z = g.matmul(x, w).unwrap();
    let z = g.add(z, b).unwrap();
    let per_row = g.softmax_cross_entropy(z, labels).unwrap();
    let loss = g.mean(per_row, &[0], false).unwrap();
    let vars = [w, b];
    let grads = g.backward(loss, &vars).unwrap();
    for (v, dv) in vars.iter().zip(grads) {
        let step = g.scale(dv, -0.5).unwrap();
        let updated = g.add(*v, step).unwrap();
        g.assign(*v, updated).unwrap();
    }
    (g, loss, vars.to_vec())
}

/// The plan's kernels, a fused kernel by its module whichever entry point the tuner chose (one
/// element per invocation, or four).
fn kernels(plan: &Plan) -> Vec<String> {
    plan.kernels().unwrap().into_iter().map(|k| if k.starts_with("fused::") { "fused::fused".to_string() } else { k }).collect()
}

fn feed_batch(plan: &mut Plan, batch: usize, seed: u64) {
    plan.feed("x", &HostTensor::f32([batch, 19], uniform(seed, batch * 19, 1.0)).unwrap()).unwrap();
    plan.feed("labels", &HostTensor::i32([batch], ints(seed + 1, batch, 7)).unwrap()).unwrap();
}

fn train(device: &Device, steps: usize) -> (Vec<f32>, ParamStore) {
    let (g, loss, _) = sgd_graph(23);
    let mut params = ParamStore::new();
    let mut plan = Plan::new(device, &g, &[loss], &mut params).unwrap();
    feed_batch(&mut plan, 23, 5);
    let losses = (0..steps)
        .map(|_| {
            plan.run().unwrap();
            plan.fetch(loss).unwrap().as_f32().unwrap()[0]
        })
        .collect();
    (losses, params)
}

#[test]
fn training_steps_update_variables_in_place() {
    let (losses, params) = train(&Device::cpu(), 20);
    assert!(losses[19] < 0.6 * losses[0], "loss should fall on a fixed batch: {losses:?}");
    assert_eq!(params.len(), 2);
    // Same seed, same backend: the same curve bit for bit.
    let (again, _) = train(&Device::cpu(), 20);
    assert_eq!(losses, again);
}

#[test]
fn training_steps_match_cpu_on_gpu() {
    let Some(dev) = gpu() else { return };
    let (cpu_losses, cpu_params) = train(&Device::cpu(), 6);
    let (gpu_losses, gpu_params) = train(dev, 6);
    for (i, (g, c)) in gpu_losses.iter().zip(&cpu_losses).enumerate() {
        assert!((g - c).abs() <= 1e-4 + 1e-4 * c.abs(), "step {i}: gpu loss {g}, cpu loss {c}");
    }
    for (name, t) in cpu_params.iter() {
        let g = gpu_params.get(name).unwrap().download().unwrap();
        assert_close(&format!("variable {name} after 6 steps"), &g, &t.download().unwrap(), accumulation(100));
    }
}

#[test]
fn a_gpu_step_is_all_dispatches_with_no_host_work() {
    let Some(dev) = gpu() else { return };
    let (g, loss, _) = sgd_graph(8);
    let plan = Plan::new(dev, &g, &[loss], &mut ParamStore::new()).unwrap();
    // Assignments are buffer copies inside the same submission and reshapes share their input's
    // buffer; every other node is one compute dispatch, or runs inside the fused elementwise
    // kernel of the one node that reads it.
    // The gradient with respect to the input `x` is recorded by backward but read by no one.
    assert_eq!(plan.len(), g.nodes().len() - 1, "the unused input gradient is pruned");
    let no_dispatch = g.nodes().iter().filter(|n| matches!(n.op, bitgrad::Op::Assign | bitgrad::Op::Reshape { .. })).count();
    assert!(no_dispatch >= 3, "two assignments and the mean's reshape");
    let fused = plan.fused_nodes().unwrap();
    assert_eq!(plan.dispatches(), Some(plan.len() - no_dispatch - fused));
    assert_eq!(plan.kernels().unwrap().len(), plan.dispatches().unwrap());
}

#[test]
fn plans_share_variables_through_the_param_store() {
    for device in [Some(Device::cpu()), gpu().cloned()].into_iter().flatten() {
        let mut params = ParamStore::new();
        let (train_g, loss, _) = sgd_graph(16);
        let mut train = Plan::new(&device, &train_g, &[loss], &mut params).unwrap();
        // An evaluation plan with another batch size reads the same weights.
        let (eval_g, eval_loss, vars) = sgd_graph(5);
        let eval = Plan::new(&device, &eval_g, &[eval_loss, vars[0]], &mut params).unwrap();
        let before = eval.fetch(vars[0]).unwrap();
        feed_batch(&mut train, 16, 1);
        train.run().unwrap();
        let after = eval.fetch(vars[0]).unwrap();
        assert_ne!(before, after, "{}: the eval plan must see the training update", device.describe());
        assert_eq!(after, params.get("w").unwrap().download().unwrap());
    }
}

#[test]
fn unused_nodes_are_pruned_and_buffers_reused() {
    let mut g = Graph::new();
    let x = g.input("x", [1000], DType::F32).unwrap();
    let mut y = x;
    for _ in 0..20 {
        y = g.unary(UnaryOp::Tanh, y).unwrap();
    }
    let _unused = g.unary(UnaryOp::Exp, x).unwrap();
    let plan_cpu = Plan::new(&Device::cpu(), &g, &[y], &mut ParamStore::new()).unwrap();
    assert_eq!(plan_cpu.len(), 20);
    let Some(dev) = gpu() else { return };
    let plan = Plan::new(dev, &g, &[y], &mut ParamStore::new()).unwrap();
    let mem = plan.memory().unwrap();
    // A chain needs two buffers in turn, not one per value.
    assert_eq!(mem.buffers, 2, "{mem:?}");
    assert_eq!(mem.unpooled_bytes, 20 * 4000);
    assert_eq!(mem.pooled_bytes, 2 * 4000);
}

#[test]
fn feed_errors_name_the_input() {
    let (g, loss, _) = sgd_graph(4);
    let mut plan = Plan::new(&Device::cpu(), &g, &[loss], &mut ParamStore::new()).unwrap();
    let err = plan.feed("x", &HostTensor::f32([4, 18], vec![0.0; 72]).unwrap()).unwrap_err().to_string();
    assert!(err.contains("`x`") && err.contains("[4, 19]") && err.contains("[4, 18]"), "{err}");
    let err = plan.feed("labels", &HostTensor::f32([4], vec![0.0; 4]).unwrap()).unwrap_err().to_string();
    assert!(err.contains("`labels`") && err.contains("I32") && err.contains("F32"), "{err}");
    let err = plan.feed("nope", &HostTensor::f32([1], vec![0.0]).unwrap()).unwrap_err();
    assert!(matches!(&err, Error::Unknown { kind: "input", name, known } if name == "nope" && known.contains(&"x".to_string())), "{err}");
    assert!(err.to_string().starts_with("unknown input `nope` (known: "), "{err}");
    plan.feed("x", &HostTensor::f32([4, 19], vec![0.0; 76]).unwrap()).unwrap();
    let err = plan.run().unwrap_err().to_string();
    assert!(err.contains("input `labels` was never fed"), "{err}");
    let err = plan
        .fetch(ValueId::clone(&g.find_input("x").unwrap()))
        .map(|_| ())
        .and_then(|_| plan.fetch(g.find_variable("w").unwrap()).map(|_| ()));
    assert!(err.is_ok(), "inputs and variables can be fetched");
}

#[test]
fn fetching_an_unrequested_value_is_an_error() {
    let mut g = Graph::new();
    let x = g.input("x", [3], DType::F32).unwrap();
    let h = g.unary(UnaryOp::Exp, x).unwrap();
    let y = g.unary(UnaryOp::Log, h).unwrap();
    let mut plan = Plan::new(&Device::cpu(), &g, &[y], &mut ParamStore::new()).unwrap();
    plan.feed("x", &HostTensor::f32([3], vec![1.0, 2.0, 3.0]).unwrap()).unwrap();
    plan.run().unwrap();
    let err = plan.fetch(h).unwrap_err().to_string();
    assert!(err.contains("not requested as an output"), "{err}");
}

#[test]
fn shape_errors_name_the_op_and_both_shapes() {
    let mut g = Graph::new();
    let a = g.input("a", [3, 4], DType::F32).unwrap();
    let b = g.input("b", [5, 2], DType::F32).unwrap();
    let err = g.matmul(a, b).unwrap_err().to_string();
    assert!(err.contains("matmul") && err.contains("[3, 4]") && err.contains("[5, 2]"), "{err}");
    let err = g.add(a, b).unwrap_err().to_string();
    assert!(err.contains("binary") && err.contains("[3, 4]") && err.contains("[5, 2]"), "{err}");
    let err = g.reshape(a, [5]).unwrap_err().to_string();
    assert!(err.contains("reshape") && err.contains("element counts"), "{err}");
    let err = g.permute(a, &[0, 0]).unwrap_err().to_string();
    assert!(err.contains("perm"), "{err}");
    let err = g.sum(a, &[2], false).unwrap_err().to_string();
    assert!(err.contains("axes"), "{err}");
    let err = g.input("z", [2, 0], DType::F32).unwrap_err().to_string();
    assert!(err.contains("zero dimension"), "{err}");
    let err = g.random([2], Distribution::Uniform { low: 1.0, high: 1.0 }, 0).unwrap_err().to_string();
    assert!(err.contains("random") && err.contains("dist"), "{err}");
}

#[test]
fn a_param_store_tensor_of_the_wrong_shape_is_rejected() {
    let (g, loss, _) = sgd_graph(4);
    let mut params = ParamStore::new();
    params.insert("w", Device::cpu().upload(&HostTensor::f32([7, 19], vec![0.0; 133]).unwrap()).unwrap());
    let err = Plan::new(&Device::cpu(), &g, &[loss], &mut params).err().unwrap().to_string();
    assert!(err.contains("variable `w`") && err.contains("[19, 7]") && err.contains("[7, 19]"), "{err}");
}

#[test]
fn tensors_from_another_device_are_rejected() {
    let Some(dev) = gpu() else { return };
    let (g, loss, _) = sgd_graph(4);
    let mut params = ParamStore::new();
    params.insert("w", Device::cpu().upload(&HostTensor::f32([19, 7], vec![0.0; 133]).unwrap()).unwrap());
    let err = Plan::new(dev, &g, &[loss], &mut params).err().unwrap().to_string();
    assert!(err.contains("variable `w`") && err.contains("cpu"), "{err}");
}

#[test]
fn buffers_over_the_binding_limit_are_rejected_with_the_limit() {
    let Some(dev) = gpu() else { return };
    let limit = dev.gpu_context().unwrap().limits.max_storage_buffer_binding_size as usize;
    let mut g = Graph::new();
    let x = g.input("huge", [limit / 4 + 1], DType::F32).unwrap();
    let y = g.unary(UnaryOp::Neg, x).unwrap();
    let err = Plan::new(dev, &g, &[y], &mut ParamStore::new()).err().unwrap();
    match &err {
        Error::LimitExceeded { what, limit_name, .. } => {
            assert!(what.contains("input `huge`"), "{err}");
            assert_eq!(*limit_name, "max_storage_buffer_binding_size");
        }
        e => panic!("expected LimitExceeded, got {e}"),
    }
}

#[test]
fn wgpu_validation_errors_are_returned_not_panicked() {
    let Some(dev) = gpu() else { return };
    let ctx = dev.gpu_context().unwrap();
    let r = ctx.scoped("making an invalid buffer", || {
        // MAP_READ may only be combined with COPY_DST: a validation error.
        Ok(ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 16,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        }))
    });
    match r {
        Err(Error::Wgpu { context, message }) => assert!(context.contains("invalid buffer") && !message.is_empty()),
        other => panic!("expected a captured wgpu error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn upload_download_and_device_feeds_round_trip_exactly() {
    for device in [Some(Device::cpu()), gpu().cloned()].into_iter().flatten() {
        let words = HostTensor::u32([3, 5], (0..15).map(|i| bitgrad::graph::ops::random::random_bits(1, i)).collect()).unwrap();
        let ints = HostTensor::i32([7], vec![i32::MIN, -1, 0, 1, i32::MAX, 3, -3]).unwrap();
        let floats = HostTensor::f32([2], vec![f32::MIN_POSITIVE, -0.0]).unwrap();
        for t in [&words, &ints, &floats] {
            let d = device.upload(t).unwrap();
            assert_eq!(&d.download().unwrap(), t, "{}", device.describe());
        }
        // A device-resident tensor fed to a plan never visits the host.
        let mut g = Graph::new();
        let x = g.input("x", [3, 5], DType::U32).unwrap();
        let y = g.transpose(x).unwrap();
        let mut plan = Plan::new(&device, &g, &[y], &mut ParamStore::new()).unwrap();
        plan.feed_tensor("x", &device.upload(&words).unwrap()).unwrap();
        plan.run().unwrap();
        let out = plan.output_tensor(y).unwrap().download().unwrap();
        let w = words.as_u32().unwrap();
        assert_eq!(out.as_u32().unwrap()[1], w[5], "{}", device.describe());
    }
}

#[test]
fn variable_initialisation_is_the_same_on_both_backends() {
    let Some(dev) = gpu() else { return };
    let mut g = Graph::new();
    let w = g.variable("w", [31, 17], Init::Random { dist: Distribution::Uniform { low: -0.3, high: 0.3 }, seed: 77 }).unwrap();
    let y = g.scale(w, 1.0).unwrap();
    let (mut pc, mut pg) = (ParamStore::new(), ParamStore::new());
    Plan::new(&Device::cpu(), &g, &[y], &mut pc).unwrap();
    Plan::new(dev, &g, &[y], &mut pg).unwrap();
    assert_close("initial w", &pg.get("w").unwrap().download().unwrap(), &pc.get("w").unwrap().download().unwrap(), ELEMENTWISE);
}

#[test]
fn profiling_times_every_dispatch_on_the_gpu() {
    let (g, loss, _) = sgd_graph(8);
    let mut cpu = Plan::new(&Device::cpu(), &g, &[loss], &mut ParamStore::new()).unwrap();
    assert!(matches!(cpu.profile(), Err(Error::Unsupported { .. })));
    let Some(dev) = gpu() else { return };
    if !dev.gpu_context().unwrap().features.contains(wgpu::Features::TIMESTAMP_QUERY) {
        return;
    }
    let mut params = ParamStore::new();
    let mut plan = Plan::new(dev, &g, &[loss], &mut params).unwrap();
    assert!(plan.profile().unwrap_err().to_string().contains("never fed"));
    feed_batch(&mut plan, 8, 3);
    let times = plan.profile().unwrap();
    assert_eq!(times.len(), plan.dispatches().unwrap());
    assert!(times.iter().any(|t| t.kernel == "gemm::gemv" || t.kernel == "gemm::matmul"), "{times:?}");
    assert!(times.iter().all(|t| t.ns.is_finite() && t.ns >= 0.0), "{times:?}");
    assert!(times.iter().map(|t| t.ns).sum::<f64>() > 0.0, "{times:?}");
    // A profiled step is a real step: the weights moved like a plain run's would.
    let mut reference = ParamStore::new();
    let mut plain = Plan::new(dev, &g, &[loss], &mut reference).unwrap();
    feed_batch(&mut plain, 8, 3);
    plain.run().unwrap();
    assert_eq!(params.get("w").unwrap().download().unwrap(), reference.get("w").unwrap().download().unwrap());
}

#[test]
fn reshapes_share_buffers_and_trivial_permutes_record_nothing() {
    let mut g = Graph::new();
    let x = g.input("x", [6, 5], DType::F32).unwrap();
    assert_eq!(g.permute(x, &[0, 1]).unwrap(), x, "identity permutation");
    let h = g.unary(UnaryOp::Tanh, x).unwrap();
    let r = g.reshape(h, [3, 10]).unwrap();
    let r = g.reshape(r, [1, 30]).unwrap();
    let moved = g.permute(r, &[1, 0]).unwrap(); // moves only a size-1 axis
    assert!(matches!(g.nodes().last().unwrap().op, bitgrad::Op::Reshape { .. }));
    let y = g.unary(UnaryOp::Exp, moved).unwrap();
    // `h` is read after its reshapes: the shared buffer must stay live until then.
    let h2 = g.reshape(h, [30, 1]).unwrap();
    let out = g.add(y, h2).unwrap();
    let feeds = vec![("x", HostTensor::f32([6, 5], uniform(9, 30, 1.0)).unwrap())];
    let case = Case { graph: g.clone(), outputs: vec![out, r], feeds };
    check_case("aliased reshapes", &case, ELEMENTWISE);
    let Some(dev) = gpu() else { return };
    let plan = Plan::new(dev, &g, &[out, r], &mut ParamStore::new()).unwrap();
    // tanh, then exp fused into the add that is its only reader: two dispatches; the four
    // reshapes need no work at all.
    assert_eq!(kernels(&plan), ["elementwise::unary", "fused::fused"]);
    assert_eq!(plan.fused_nodes(), Some(1));
}

#[test]
fn poisoning_touches_only_transient_buffers() {
    let Some(dev) = gpu() else { return };
    let mut g = Graph::new();
    let x = g.input("x", [4, 3], DType::F32).unwrap();
    let r = g.reshape(x, [12]).unwrap(); // aliases the input's buffer
    let y = g.unary(UnaryOp::Neg, r).unwrap();
    let mut plan = Plan::new(dev, &g, &[y], &mut ParamStore::new()).unwrap();
    plan.feed("x", &HostTensor::f32([4, 3], (0..12).map(|i| i as f32).collect()).unwrap()).unwrap();
    plan.poison_buffers(SENTINEL);
    plan.run().unwrap();
    assert_eq!(plan.fetch(y).unwrap().as_f32().unwrap(), &(0..12).map(|i| -(i as f32)).collect::<Vec<_>>()[..]);
}

#[test]
fn async_forms_give_what_the_blocking_calls_give() {
    for device in std::iter::once(Device::cpu()).chain(gpu().cloned()) {
        let (g, loss, vars) = sgd_graph(23);
        let mut params = ParamStore::new();
        let mut plan = Plan::new(&device, &g, &[loss], &mut params).unwrap();
        feed_batch(&mut plan, 23, 5);
        for _ in 0..3 {
            plan.run().unwrap();
        }
        device.synchronize().unwrap();
        pollster::block_on(device.synchronize_async()).unwrap();
        let fetched = pollster::block_on(plan.fetch_async(loss)).unwrap();
        assert_eq!(fetched, plan.fetch(loss).unwrap(), "{}", device.describe());
        let w = params.get("w").unwrap();
        assert_eq!(pollster::block_on(w.download_async()).unwrap(), w.download().unwrap());
        assert_eq!(pollster::block_on(plan.fetch_async(vars[1])).unwrap(), params.get("b").unwrap().download().unwrap());
    }
}

/// Trees of elementwise ops whose intermediates have one reader run as one generated kernel on
/// the GPU, and give the CPU reference's results; a value that later nodes also read (or the
/// plan returns) is written out by the kernel as well, and so is a sibling tree of the same
/// shape computed shortly before. Not fused: a tree with a leaf that is not
/// one contiguous run of the output's axes, and a tree that would read a variable after the
/// step reassigned it.
#[test]
fn elementwise_chains_run_as_one_fused_kernel_and_match_cpu() {
    let mut g = Graph::new();
    let x = g.input("x", [4, 6, 8], DType::F32).unwrap();
    let c = g.input("c", [8], DType::F32).unwrap();
    let r = g.input("r", [4, 1, 1], DType::F32).unwrap();
    let m = g.input("m", [4, 1, 8], DType::F32).unwrap();
    // tanh -> * c -> + r -> exp -> neg: one kernel (three values inlined); exp's result is
    // returned, so the kernel writes it out too.
    let t = g.unary(UnaryOp::Tanh, x).unwrap();
    let u = g.mul(t, c).unwrap();
    let v = g.add(u, r).unwrap();
    let w = g.unary(UnaryOp::Exp, v).unwrap();
    let w_neg = g.unary(UnaryOp::Neg, w).unwrap();
    // m broadcasts along the middle axis: not a block, so x * m and its sigmoid run unfused.
    let a = g.mul(x, m).unwrap();
    let b = g.unary(UnaryOp::Sigmoid, a).unwrap();
    // s is read twice, both times in the sum's kernel: not stored.
    let s = g.unary(UnaryOp::Square, x).unwrap();
    let s2 = g.add(s, s).unwrap();
    // A variable read before its assignment by an op whose reader comes after it.
    let var = g.variable("var", [4, 6, 8], Init::Constant(0.5)).unwrap();
    let before = g.scale(var, 2.0).unwrap();
    g.assign(var, x).unwrap();
    let one = g.unary(UnaryOp::Offset(1.0), before).unwrap();
    // An optimizer step (Adam's, with its [1] step size) and the weight clip after it: fused.
    let (mm, vv) = (g.unary(UnaryOp::Abs, c).unwrap(), g.unary(UnaryOp::Square, c).unwrap());
    let alpha = g.input("alpha", [1], DType::F32).unwrap();
    let stepped = g.update(bitgrad::graph::ops::update::UpdateFn::AdamStep { epsilon: 1e-7 }, &[c, mm, vv, alpha]).unwrap();
    let clipped = g.unary(UnaryOp::Clip(-0.3, 0.3), stepped).unwrap();
    let outputs = vec![w, w_neg, b, s2, one, clipped];
    let feeds = vec![
        ("x", HostTensor::f32([4, 6, 8], uniform(1, 192, 1.0)).unwrap()),
        ("c", HostTensor::f32([8], uniform(2, 8, 1.0)).unwrap()),
        ("r", HostTensor::f32([4, 1, 1], uniform(3, 4, 1.0)).unwrap()),
        ("m", HostTensor::f32([4, 1, 8], uniform(4, 32, 1.0)).unwrap()),
        ("alpha", HostTensor::f32([1], vec![0.25]).unwrap()),
    ];
    let case = Case { graph: g.clone(), outputs: outputs.clone(), feeds };
    check_case("fused elementwise chains", &case, ELEMENTWISE);
    let Some(dev) = gpu() else { return };
    let plan = Plan::new(dev, &g, &outputs, &mut ParamStore::new()).unwrap();
    let kernels = kernels(&plan);
    assert_eq!(
        kernels,
        ["elementwise::binary", "elementwise::unary", "fused::fused", "elementwise::unary", "elementwise::unary", "fused::fused"]
    );
    // tanh, the product, the sum, exp and its negation (written out) join s, computed before
    // the root s + s, as siblings of its shape; |c|, c^2 and the step (the clip is the second
    // root).
    assert_eq!(plan.fused_nodes(), Some(9), "{kernels:?}");
}

/// Each entry point of a large generated kernel (one element per invocation in workgroups of 256
/// or 64, or four a quarter of the range apart), pinned in turn on a device of its own, against the CPU reference; the
/// size is odd, so the last quarter is short.
#[test]
fn every_entry_point_of_a_fused_kernel_gives_the_cpu_values() {
    let n = 70_001;
    let mut g = Graph::new();
    let x = g.input("x", [n], DType::F32).unwrap();
    let c = g.input("c", [1], DType::F32).unwrap();
    let t = g.unary(UnaryOp::Tanh, x).unwrap();
    let u = g.mul(t, c).unwrap();
    let w = g.unary(UnaryOp::Exp, u).unwrap();
    let v = g.unary(UnaryOp::Neg, w).unwrap();
    let outputs = vec![v, w];
    let feeds = vec![("x", HostTensor::f32([n], uniform(5, n, 2.0)).unwrap()), ("c", HostTensor::f32([1], vec![0.75]).unwrap())];
    let case = Case { graph: g.clone(), outputs: outputs.clone(), feeds };
    if gpu().is_none() {
        return;
    }
    let pinned = Device::gpu_with(&bitgrad::GpuOptions { tune: Some(bitgrad::TuneMode::Off), ..Default::default() }).unwrap();
    let cpu = run_on(&Device::cpu(), &case, 1).unwrap();
    for entry in ["fused", "fused4", "fused_wg64"] {
        pinned.gpu_context().unwrap().tuning.pin(Some(entry));
        let plan = Plan::new(&pinned, &g, &outputs, &mut ParamStore::new()).unwrap();
        assert_eq!(plan.kernels().unwrap(), [format!("fused::{entry}")]);
        for (i, (got, want)) in run_on(&pinned, &case, 1).unwrap().iter().zip(&cpu).enumerate() {
            assert_close(&format!("{entry}: output {i}"), got, want, ELEMENTWISE);
        }
    }
}

/// An optimizer-shaped step: a slot's new value is assigned to the slot and read by the
/// variable's update. The update's kernel computes the slot too and writes it out, and the
/// slot's assignment waits until after that kernel; three steps give the CPU reference's values.
/// When a node between reads the slot, the assignment cannot wait: the slot is computed on its
/// own.
#[test]
fn a_kernel_writes_out_values_that_later_nodes_read_and_assignments_wait_for_it() {
    let build = |read_between: bool| {
        let mut g = Graph::new();
        let grad = g.input("g", [6, 5], DType::F32).unwrap();
        let m = g.variable("m", [6, 5], Init::Constant(0.25)).unwrap();
        let w = g.variable("w", [6, 5], Init::Constant(1.0)).unwrap();
        let decayed = g.scale(m, 0.5).unwrap();
        let m_new = g.add(decayed, grad).unwrap();
        g.assign(m, m_new).unwrap();
        let mut outputs = Vec::new();
        if read_between {
            // Reads the slot after its assignment: the new value.
            outputs.push(g.scale(m, 3.0).unwrap());
        }
        let step = g.unary(UnaryOp::Tanh, m_new).unwrap();
        let w_new = g.sub(w, step).unwrap();
        g.assign(w, w_new).unwrap();
        outputs.extend([w_new, m_new]);
        let feeds = vec![("g", HostTensor::f32([6, 5], uniform(7, 30, 1.0)).unwrap())];
        Case { graph: g, outputs, feeds }
    };
    for read_between in [false, true] {
        let case = build(read_between);
        let Some(dev) = gpu() else { return };
        let cpu = run_on(&Device::cpu(), &case, 3).unwrap();
        let on_gpu = run_on(dev, &case, 3).unwrap();
        for (i, (g, c)) in on_gpu.iter().zip(&cpu).enumerate() {
            assert_close(&format!("read_between {read_between}: output {i} after three steps"), g, c, ELEMENTWISE);
        }
        let plan = Plan::new(dev, &case.graph, &case.outputs, &mut ParamStore::new()).unwrap();
        let kernels = kernels(&plan);
        if read_between {
            // m_new on its own (the scale inlined); then the read of m, and tanh and the
            // difference in one kernel.
            assert_eq!(kernels, ["fused::fused", "elementwise::unary", "fused::fused"]);
            assert_eq!(plan.fused_nodes(), Some(2));
        } else {
            // One kernel: the scale and tanh inlined, m_new written out.
            assert_eq!(kernels, ["fused::fused"]);
            assert_eq!(plan.fused_nodes(), Some(3));
        }
    }
}
