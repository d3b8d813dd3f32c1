//! Models built the three Keras ways, and `summary()` against the real Larq (fixtures by
//! tests/fixtures/gen_summary.py).

mod common;

use bitgrad::constraints::WeightClip;
use bitgrad::layers::{
    add_weight, Activation, ActivationLayer, BatchNormalization, BuildContext, DepthwiseOptions, Dropout, Flatten, GlobalPooling,
    Initializer, Layer, Merge, MergeKind, Mode, Pooling, PoolingKind, QuantConv, QuantDense, QuantDepthwiseConv, QuantLayer,
    QuantSeparableConv, Regularizer, WeightSpec,
};
use bitgrad::models::{Functional, Model, Network, Sequential};
use bitgrad::quantizers::{CustomQuantizer, Quantizer};
use bitgrad::{Device, Graph, HostTensor, Padding, ParamStore, Plan, ValueId};

fn q(name: &str) -> Quantizer {
    Quantizer::from_name(name).unwrap()
}

fn clip() -> WeightClip {
    WeightClip::new(1.0).unwrap()
}

fn fixture(name: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(include_str!("fixtures/summary.json")).unwrap();
    v[name].as_str().unwrap().to_string()
}

/// The Larq user guide's model.
fn guide() -> Sequential {
    Sequential::new()
        .named("sequential")
        .input_shape(&[28, 28, 1])
        .add(Flatten::new().named("flatten"))
        .add(QuantDense::new(512).named("quant_dense").kernel_quantizer(q("ste_sign")).kernel_constraint(clip()))
        .add(
            QuantDense::new(10)
                .named("quant_dense_1")
                .input_quantizer(q("ste_sign"))
                .kernel_quantizer(q("ste_sign"))
                .kernel_constraint(clip())
                .activation(Activation::Softmax),
        )
}

fn binary_conv(name: &str, filters: usize) -> QuantConv {
    QuantConv::new(filters, &[3, 3])
        .named(name)
        .use_bias(false)
        .input_quantizer(q("ste_sign"))
        .kernel_quantizer(q("ste_sign"))
        .kernel_constraint(clip())
}

fn conv_model() -> Sequential {
    let depthwise = DepthwiseOptions {
        padding: Padding::Same,
        input_quantizer: Some(q("ste_sign")),
        depthwise_quantizer: Some(q("ste_sign")),
        use_bias: false,
        ..DepthwiseOptions::new(&[3, 3])
    };
    let separable = DepthwiseOptions {
        input_quantizer: Some(q("ste_sign")),
        depthwise_quantizer: Some(q("ste_sign")),
        ..DepthwiseOptions::new(&[3, 3])
    };
    Sequential::new()
        .named("conv")
        .input_shape(&[28, 28, 1])
        .add(QuantConv::new(32, &[3, 3]).named("conv1").use_bias(false).kernel_quantizer(q("ste_sign")).kernel_constraint(clip()))
        .add(BatchNormalization { scale: false, momentum: 0.9, ..BatchNormalization::new().named("bn1") })
        .add(Pooling::new(PoolingKind::Max, &[2, 2]).named("pool1"))
        .add(QuantConv { padding: Padding::Same, pad_values: 1.0, ..binary_conv("conv2", 64) })
        .add(BatchNormalization::new().named("bn2"))
        .add(QuantDepthwiseConv { name: "dw".into(), opts: depthwise })
        .add(QuantSeparableConv { pointwise_quantizer: Some(q("ste_sign")), ..QuantSeparableConv::new(32, separable).named("sep") })
        .add(Pooling::new(PoolingKind::Average, &[2, 2]).named("pool2"))
        .add(Dropout::new(0.2).seed(1).named("drop"))
        .add(Flatten::new().named("flat"))
        .add(QuantDense::new(16).named("tern").input_quantizer(q("ste_sign")).kernel_quantizer(q("ste_tern")))
        .add(BatchNormalization::new().named("bn3"))
        .add(QuantDense::new(10).named("fc"))
        .add(ActivationLayer::new(Activation::Softmax).named("act"))
}

fn functional_model() -> Functional {
    let stem = QuantConv { padding: Padding::Same, ..QuantConv::new(8, &[3, 3]).named("stem") }.kernel_quantizer(q("ste_sign"));
    let body = QuantConv { padding: Padding::Same, ..binary_conv("body", 8) };
    let bn = BatchNormalization::new().named("body_bn");
    let head = QuantDense::new(4).named("head").input_quantizer(q("ste_sign")).kernel_quantizer(q("ste_sign"));
    Functional::new("block", &[("image", &[8, 8, 3])], move |net, x| {
        let a = net.apply(&stem, x[0])?;
        let b = net.apply(&body, a)?;
        let b = net.apply(&bn, b)?;
        let s = net.merge(&Merge::new(MergeKind::Add).named("shortcut"), &[a, b])?;
        let c = net.merge(&Merge::new(MergeKind::Concatenate { axis: -1 }).named("join"), &[s, a])?;
        let p = net.apply(&GlobalPooling::new(PoolingKind::Average).named("gap"), c)?;
        Ok(vec![net.apply(&head, p)?])
    })
}

#[test]
fn summaries_equal_larqs_text() {
    for (name, model) in [("guide", &guide() as &dyn Model), ("conv", &conv_model()), ("functional", &functional_model())] {
        for mode in [Mode::Inference, Mode::Training] {
            let built = bitgrad::models::build(model, 2, mode).unwrap();
            let ours = built.summary().table();
            assert_eq!(ours, fixture(name), "{name} ({mode:?}):\n{ours}");
        }
    }
}

#[test]
fn guide_summary_figures_equal_larqs() {
    let s = guide().build(1, Mode::Inference).unwrap().summary();
    assert_eq!((s.total_params, s.trainable_params, s.non_trainable_params), (406_528 + 522, 406_528 + 522, 0));
    assert_eq!(s.memory_bits, 406_528 + 522 * 32);
    assert_eq!(s.macs, 5_120 + 401_408);
    assert!((s.binarized_mac_ratio - 5_120.0 / 406_528.0).abs() < 1e-12);
    let json: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
    assert_eq!(json["layers"][1]["weights"][0]["bitwidth"], 1);
    assert_eq!(json["layers"][2]["macs"][0], serde_json::json!([1, 5120]));
}

/// The Larq guide's subclassing example: a user type composing layers in its own `call`.
struct MyModel {
    flatten: Flatten,
    dense1: QuantDense,
    dense2: QuantDense,
}

impl Model for MyModel {
    fn name(&self) -> &str {
        "my_model"
    }

    fn inputs(&self) -> Vec<(String, Vec<usize>)> {
        vec![("input".into(), vec![28, 28, 1])]
    }

    fn call(&self, net: &mut Network, x: &[ValueId]) -> bitgrad::Result<Vec<ValueId>> {
        let h = net.apply(&self.flatten, x[0])?;
        let h = net.apply(&self.dense1, h)?;
        Ok(vec![net.apply(&self.dense2, h)?])
    }
}

/// Runs a built model's first output on `device` with `params` for one input.
fn forward(built: &bitgrad::models::Built, device: &Device, params: &mut ParamStore, x: &HostTensor) -> Vec<f32> {
    let mut plan = Plan::new(device, built.graph(), &built.outputs, params).unwrap();
    plan.feed("input", x).unwrap();
    plan.run().unwrap();
    plan.fetch(built.outputs[0]).unwrap().as_f32().unwrap().to_vec()
}

#[test]
fn subclassed_and_sequential_models_compute_the_same_function() {
    let seq = guide();
    let mine = MyModel {
        flatten: Flatten::new().named("flatten"),
        dense1: QuantDense::new(512).named("quant_dense").kernel_quantizer(q("ste_sign")).kernel_constraint(clip()),
        dense2: QuantDense::new(10)
            .named("quant_dense_1")
            .input_quantizer(q("ste_sign"))
            .kernel_quantizer(q("ste_sign"))
            .kernel_constraint(clip())
            .activation(Activation::Softmax),
    };
    let x = HostTensor::f32([3, 28, 28, 1], common::uniform(4, 3 * 784, 1.0)).unwrap();
    for device in [Some(Device::cpu()), common::gpu().cloned()].into_iter().flatten() {
        // One store: the second model reads the weights the first initialised, by name.
        let mut params = ParamStore::new();
        let a = forward(&seq.build(3, Mode::Inference).unwrap(), &device, &mut params, &x);
        let b = forward(&mine.build(3, Mode::Inference).unwrap(), &device, &mut params, &x);
        assert_eq!(a, b, "{}", device.describe());
        assert!(a.iter().all(|p| p.is_finite() && *p >= 0.0) && (a[..10].iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
    let s = mine.build(1, Mode::Inference).unwrap().summary();
    assert_eq!(s.layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["flatten", "quant_dense", "quant_dense_1"]);
    assert_eq!(s.total_params, 406_528 + 522);
}

/// A user's layer with its own WGSL kernel and gradient (a custom quantizer used as an op) and
/// its own weight, mixed with built-in layers.
struct ScaledSoftsign {
    name: String,
    op: Quantizer,
}

impl ScaledSoftsign {
    fn new() -> Self {
        let op = CustomQuantizer::new(
            "Softsign",
            32,
            "fn forward(x: f32) -> f32 { return x / (1.0 + abs(x)); }
fn gradient(x: f32, dy: f32) -> f32 { let d = 1.0 + abs(x); return dy / (d * d); }",
            |x| x / (1.0 + x.abs()),
            |x, dy| dy / ((1.0 + x.abs()) * (1.0 + x.abs())),
        )
        .unwrap();
        ScaledSoftsign { name: "softsign".into(), op: Quantizer::Custom(op) }
    }
}

impl Layer for ScaledSoftsign {
    fn name(&self) -> &str {
        &self.name
    }

    fn build(&self, g: &mut Graph, x: ValueId, ctx: &mut BuildContext) -> bitgrad::Result<ValueId> {
        let c = *g.value(x).shape.dims().last().unwrap();
        let spec = WeightSpec::plain(&self.name, "scale", [c], Initializer::Constant(1.5));
        let (scale, _) = add_weight(g, ctx, spec)?;
        let y = self.op.apply(g, x)?;
        g.mul(y, scale)
    }
}

#[test]
fn custom_layers_with_their_own_kernels_train_on_gpu_as_on_cpu() {
    let model = Sequential::new()
        .named("custom")
        .input_shape(&[5, 5, 3])
        .add(QuantConv { padding: Padding::Same, ..QuantConv::new(4, &[3, 3]).named("conv") }.kernel_quantizer(q("ste_sign")))
        .add(ScaledSoftsign::new())
        .add(Flatten::new().named("flatten"))
        .add(QuantDense::new(3).named("dense").input_quantizer(q("ste_sign")).kernel_quantizer(q("ste_sign")));
    let mut built = model.build(2, Mode::Training).unwrap();
    let y = built.outputs[0];
    let g = &mut built.network.graph;
    let axes = [0, 1];
    let sq = g.unary(bitgrad::UnaryOp::Square, y).unwrap();
    let loss = g.sum(sq, &axes, false).unwrap();
    let wrt: Vec<ValueId> = built.network.ctx.weights.iter().map(|w| w.variable).collect();
    let grads = built.network.graph.backward(loss, &wrt).unwrap();
    let x = HostTensor::f32([2, 5, 5, 3], common::uniform(8, 150, 1.0)).unwrap();
    let run = |device: &Device| {
        let mut params = ParamStore::new();
        let mut outputs = vec![loss];
        outputs.extend(&grads);
        let mut plan = Plan::new(device, built.graph(), &outputs, &mut params).unwrap();
        plan.feed("input", &x).unwrap();
        plan.run().unwrap();
        outputs.iter().map(|&o| plan.fetch(o).unwrap()).collect::<Vec<_>>()
    };
    let cpu = run(&Device::cpu());
    let scale_grad = cpu[3].as_f32().unwrap();
    assert!(scale_grad.iter().all(|g| g.abs() > 0.0), "the custom layer's weight receives gradient: {scale_grad:?}");
    if let Some(gpu) = common::gpu() {
        for (i, (a, b)) in cpu.iter().zip(run(gpu)).enumerate() {
            common::assert_close(&format!("custom model output {i}"), &b, a, common::accumulation(75));
        }
    }
}

#[test]
fn incompatible_shapes_are_errors_naming_the_layer() {
    let bad = Sequential::new()
        .named("bad")
        .input_shape(&[8, 8, 3])
        .add(QuantConv::new(4, &[3]).named("conv"))
        .add(Flatten::new().named("flatten"));
    let e = bad.build(1, Mode::Inference).unwrap_err().to_string();
    assert!(e.contains("layer `conv` (QuantConv1D)") && e.contains("rank 3"), "{e}");
    let join = Functional::new("join", &[("a", &[4, 4, 2]), ("b", &[5, 4, 2])], |net, x| {
        Ok(vec![net.merge(&Merge::new(MergeKind::Concatenate { axis: -1 }).named("cat"), &[x[0], x[1]])?])
    });
    let e = bitgrad::models::build(&join, 1, Mode::Inference).unwrap_err().to_string();
    assert!(e.contains("layer `cat` (Concatenate)") && e.contains("[1, 4, 4, 2]") && e.contains("[1, 5, 4, 2]"), "{e}");
    let twice = Sequential::new().named("twice").input_shape(&[4]).add(QuantDense::new(4).named("d")).add(QuantDense::new(4).named("d"));
    let e = twice.build(1, Mode::Inference).unwrap_err().to_string();
    assert!(e.contains("layer `d`") && e.contains("unique"), "{e}");
}

#[test]
fn dropout_is_seeded_fresh_each_step_and_off_in_inference() {
    let model = Sequential::new().named("drop").input_shape(&[400]).add(Dropout::new(0.25).seed(7).named("dropout"));
    let x = HostTensor::f32([1, 400], vec![2.0; 400]).unwrap();
    let infer = model.build(1, Mode::Inference).unwrap();
    assert_eq!(forward(&infer, &Device::cpu(), &mut ParamStore::new(), &x), vec![2.0; 400]);
    let train = model.build(1, Mode::Training).unwrap();
    let mut masks = Vec::new();
    for device in [Some(Device::cpu()), common::gpu().cloned()].into_iter().flatten() {
        let mut params = ParamStore::new();
        let mut plan = Plan::new(&device, train.graph(), &train.outputs, &mut params).unwrap();
        plan.feed("input", &x).unwrap();
        let mut steps = Vec::new();
        for _ in 0..2 {
            plan.run().unwrap();
            steps.push(plan.fetch(train.outputs[0]).unwrap().as_f32().unwrap().to_vec());
        }
        for s in &steps {
            let dropped = s.iter().filter(|&&v| v == 0.0).count();
            assert!(s.iter().all(|&v| v == 0.0 || (v - 2.0 / 0.75).abs() < 1e-6));
            assert!((70..130).contains(&dropped), "{dropped} of 400 dropped at rate 0.25");
        }
        assert_ne!(steps[0], steps[1], "a new mask each step");
        masks.push(steps);
    }
    if masks.len() == 2 {
        assert_eq!(masks[0], masks[1], "the same masks on both backends");
    }
}

#[test]
fn regularization_penalties_enter_the_loss() {
    let dense = QuantDense::new(3).named("d").bias_regularizer(Regularizer::l2(0.5)).kernel_regularizer(Regularizer::l1_l2(0.01, 0.02));
    let mut built = Sequential::new().named("reg").input_shape(&[4]).add(dense).build(1, Mode::Training).unwrap();
    let penalty = built.regularization_loss().unwrap().unwrap();
    let mut params = ParamStore::new();
    let kernel: Vec<f32> = (0..12).map(|i| i as f32 * 0.25 - 1.5).collect();
    let bias = vec![0.5, -1.0, 2.0];
    let device = Device::cpu();
    params.insert("d/kernel", device.upload(&HostTensor::f32([4, 3], kernel.clone()).unwrap()).unwrap());
    params.insert("d/bias", device.upload(&HostTensor::f32([3], bias.clone()).unwrap()).unwrap());
    let mut plan = Plan::new(&device, built.graph(), &[penalty], &mut params).unwrap();
    plan.run().unwrap();
    let got = plan.fetch(penalty).unwrap().as_f32().unwrap()[0];
    let want = 0.01 * kernel.iter().map(|w| w.abs()).sum::<f32>()
        + 0.02 * kernel.iter().map(|w| w * w).sum::<f32>()
        + 0.5 * bias.iter().map(|b| b * b).sum::<f32>();
    assert!((got - want).abs() < 1e-5, "penalty {got}, expected {want}");
    assert!(Regularizer::from_name("l3").unwrap_err().to_string().contains("l1_l2"));
    // Keras' class L1L2 defaults to no penalty, its name `l1_l2` to 0.01 each.
    assert_eq!(Regularizer::from_name("L1L2").unwrap(), Regularizer::l1_l2(0.0, 0.0));
    assert_eq!(Regularizer::from_name("l1_l2").unwrap(), Regularizer::l1_l2(0.01, 0.01));
}

#[test]
fn merges_add_multiply_and_concatenate() {
    let model = Functional::new("merge", &[("a", &[2, 3]), ("b", &[2, 3])], |net, x| {
        let s = net.merge(&Merge::new(MergeKind::Add).named("add"), &[x[0], x[1]])?;
        let p = net.merge(&Merge::new(MergeKind::Multiply).named("mul"), &[x[0], x[1]])?;
        Ok(vec![net.merge(&Merge::new(MergeKind::Concatenate { axis: 1 }).named("cat"), &[s, p])?])
    });
    let built = bitgrad::models::build(&model, 1, Mode::Inference).unwrap();
    let a: Vec<f32> = (0..6).map(|i| i as f32).collect();
    let b: Vec<f32> = (0..6).map(|i| 10.0 - i as f32).collect();
    let mut plan = Plan::new(&Device::cpu(), built.graph(), &built.outputs, &mut ParamStore::new()).unwrap();
    plan.feed("a", &HostTensor::f32([1, 2, 3], a.clone()).unwrap()).unwrap();
    plan.feed("b", &HostTensor::f32([1, 2, 3], b.clone()).unwrap()).unwrap();
    plan.run().unwrap();
    let y = plan.fetch(built.outputs[0]).unwrap();
    assert_eq!(y.shape().dims(), &[1, 4, 3]);
    let mut want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    want.extend(a.iter().zip(&b).map(|(x, y)| x * y));
    assert_eq!(y.as_f32().unwrap(), &want[..]);
}

/// The fixture's siamese model: one binary encoder applied to both inputs, one pooling layer
/// applied to two shapes, an activity and a kernel regularizer.
fn siamese_model() -> Functional {
    let enc = binary_conv("encoder", 4).use_bias(true).activity_regularizer(Regularizer::l2(0.01));
    let pool = Pooling::new(PoolingKind::Max, &[2, 2]).named("pool");
    let head = QuantDense::new(3).named("head").kernel_quantizer(q("ste_sign")).kernel_regularizer(Regularizer::l1(0.01));
    Functional::new("siamese", &[("left", &[6, 6, 3]), ("right", &[6, 6, 3])], move |net, x| {
        let a = net.apply(&enc, x[0])?;
        let b = net.apply(&enc, x[1])?;
        let s = net.merge(&Merge::new(MergeKind::Add).named("sum"), &[a, b])?;
        let p = net.apply(&pool, s)?;
        let p1 = net.apply(&Flatten::new().named("flat_a"), p)?;
        let p = net.apply(&pool, x[0])?;
        let p2 = net.apply(&Flatten::new().named("flat_b"), p)?;
        let c = net.merge(&Merge::new(MergeKind::Concatenate { axis: -1 }).named("cat"), &[p1, p2])?;
        Ok(vec![net.apply(&head, c)?])
    })
}

#[test]
fn shared_layers_reuse_their_weights_as_in_keras() {
    let model = siamese_model();
    let mut built = bitgrad::models::build(&model, 2, Mode::Training).unwrap();
    assert_eq!(built.summary().table(), fixture("siamese"));
    assert_eq!(built.network.ctx.weights.len(), 4, "the encoder's weights exist once");

    let v: serde_json::Value = serde_json::from_str(include_str!("fixtures/summary.json")).unwrap();
    let n = &v["siamese_numbers"];
    let floats = |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect::<Vec<f32>>();
    let y = built.outputs[0];
    let penalty = built.regularization_loss().unwrap().unwrap();
    let g = &mut built.network.graph;
    let dy = g.input("dy", [2, 3], bitgrad::DType::F32).unwrap();
    let yd = g.mul(y, dy).unwrap();
    let s = g.sum(yd, &[0, 1], false).unwrap();
    let loss = g.add(s, penalty).unwrap();
    let names = ["encoder/kernel", "encoder/bias", "head/kernel", "head/bias"];
    let vars: Vec<ValueId> = names.iter().map(|w| g.find_variable(w).unwrap()).collect();
    let grads = g.backward(loss, &vars).unwrap();
    let mut outputs = vec![y, penalty];
    outputs.extend(&grads);
    for device in [Some(Device::cpu()), common::gpu().cloned()].into_iter().flatten() {
        let mut params = ParamStore::new();
        for w in names {
            let shape: Vec<usize> = n["weights"][w]["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            params.insert(w, device.upload(&HostTensor::f32(shape, floats(&n["weights"][w]["value"])).unwrap()).unwrap());
        }
        let mut plan = Plan::new(&device, built.graph(), &outputs, &mut params).unwrap();
        plan.feed("left", &HostTensor::f32([2, 6, 6, 3], floats(&n["left"])).unwrap()).unwrap();
        plan.feed("right", &HostTensor::f32([2, 6, 6, 3], floats(&n["right"])).unwrap()).unwrap();
        plan.feed("dy", &HostTensor::f32([2, 3], floats(&n["dy"])).unwrap()).unwrap();
        plan.run().unwrap();
        let on = device.describe();
        let close = |what: &str, got: &[f32], want: &[f32]| {
            assert_eq!(got.len(), want.len(), "{what} on {on}");
            for (i, (a, e)) in got.iter().zip(want).enumerate() {
                assert!((a - e).abs() <= 1e-4 + 1e-4 * e.abs(), "{what} on {on}: element {i}: {a} vs Keras {e}");
            }
        };
        close("output", plan.fetch(y).unwrap().as_f32().unwrap(), &floats(&n["output"]));
        close("penalty", plan.fetch(penalty).unwrap().as_f32().unwrap(), &[n["penalty"].as_f64().unwrap() as f32]);
        for (w, g) in names.iter().zip(&grads) {
            close(&format!("gradient of {w}"), plan.fetch(*g).unwrap().as_f32().unwrap(), &floats(&n["gradients"][w]));
        }
    }
}

#[test]
fn a_shared_layer_must_fit_every_input_it_is_applied_to() {
    let dense = QuantDense::new(2).named("d");
    let model = Functional::new("misfit", &[("a", &[4]), ("b", &[5])], move |net, x| {
        let y = net.apply(&dense, x[0])?;
        Ok(vec![y, net.apply(&dense, x[1])?])
    });
    let e = bitgrad::models::build(&model, 1, Mode::Inference).unwrap_err().to_string();
    assert!(e.contains("layer `d`") && e.contains("d/kernel") && e.contains("[5, 2]") && e.contains("[4, 2]"), "{e}");
}

/// The first layer's initial kernel of the guide model built for `batch` in `mode`.
fn initial_kernel(model: &Sequential, batch: usize, mode: Mode) -> Vec<f32> {
    let built = model.build(batch, mode).unwrap();
    let mut params = ParamStore::new();
    Plan::new(&Device::cpu(), built.graph(), &built.outputs, &mut params).unwrap();
    params.get("quant_dense/kernel").unwrap().download().unwrap().as_f32().unwrap().to_vec()
}

#[test]
fn the_model_seed_sets_the_initial_weights() {
    let default = initial_kernel(&guide(), 1, Mode::Inference);
    assert_eq!(initial_kernel(&guide().with_seed(0), 4, Mode::Training), default, "seed 0 is the default");
    let seeded = initial_kernel(&guide().with_seed(7), 1, Mode::Inference);
    assert_ne!(seeded, default);
    assert_eq!(initial_kernel(&guide().with_seed(7), 8, Mode::Training), seeded, "independent of batch and mode");
    let limit = (6.0f32 / (784.0 + 512.0)).sqrt();
    assert!(seeded.iter().all(|v| v.abs() <= limit), "still Glorot uniform");
    let mean = seeded.iter().sum::<f32>() / seeded.len() as f32;
    assert!(mean.abs() < 0.01 * limit, "centred: mean {mean}");
}

/// A subclassed model that applies a fresh layer named `d` on every pass of `call`.
struct Temporaries;

impl Model for Temporaries {
    fn name(&self) -> &str {
        "temporaries"
    }

    fn inputs(&self) -> Vec<(String, Vec<usize>)> {
        vec![("input".into(), vec![4])]
    }

    fn call(&self, net: &mut Network, x: &[ValueId]) -> bitgrad::Result<Vec<ValueId>> {
        let mut h = x[0];
        for _ in 0..2 {
            h = net.apply(&QuantDense::new(4).named("d"), h)?;
        }
        Ok(vec![h])
    }
}

#[test]
fn layers_are_one_layer_by_identity_not_by_address() {
    // Two distinct layers named alike, the first a temporary dropped before the second exists
    // (so the second may take its place in memory): an error, never one silently shared layer.
    let addresses = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = addresses.clone();
    let twins = Functional::new("twins", &[("x", &[4])], move |net, x| {
        let y = {
            let first = QuantDense::new(4).named("d");
            seen.borrow_mut().push(&first as *const QuantDense as usize);
            net.apply(&first, x[0])?
        };
        let second = QuantDense::new(4).named("d");
        seen.borrow_mut().push(&second as *const QuantDense as usize);
        Ok(vec![net.apply(&second, y)?])
    });
    let e = bitgrad::models::build(&twins, 1, Mode::Inference).unwrap_err().to_string();
    assert!(e.contains("layer `d` (QuantDense)") && e.contains("unique"), "{e}");
    eprintln!("the two layers' addresses: {:?}", addresses.borrow());
    let e = Temporaries.build(1, Mode::Inference).expect_err("two layers named `d`").to_string();
    assert!(e.contains("layer `d` (QuantDense)") && e.contains("unique"), "{e}");

    // One layer object applied twice, and a clone of it (the same identity), share its weights.
    let dense = QuantDense::new(4).named("d").kernel_quantizer(q("ste_sign"));
    assert_eq!(dense.id(), dense.clone().id());
    assert_ne!(dense.id(), QuantDense::new(4).named("d").id());
    let shared = Functional::new("shared", &[("x", &[4])], move |net, x| {
        let y = net.apply(&dense, x[0])?;
        let z = net.apply(&dense.clone(), y)?;
        Ok(vec![net.apply(&dense, z)?])
    });
    let built = bitgrad::models::build(&shared, 2, Mode::Training).unwrap();
    let names: Vec<&str> = built.network.ctx.weights.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["d/kernel", "d/bias"], "one layer's weights");
    assert_eq!(built.network.layers.iter().filter(|l| l.name == "d").count(), 1, "one summary row");
    // A depthwise layer is a plain struct literal; its identity comes with its options.
    let dw = |opts: DepthwiseOptions| QuantDepthwiseConv { name: "dw".into(), opts };
    let two = Functional::new("two_dw", &[("x", &[5, 5, 2])], move |net, x| {
        let y = net.apply(&dw(DepthwiseOptions::new(&[1, 1])), x[0])?;
        Ok(vec![net.apply(&dw(DepthwiseOptions::new(&[1, 1])), y)?])
    });
    let e = bitgrad::models::build(&two, 1, Mode::Inference).unwrap_err().to_string();
    assert!(e.contains("layer `dw`") && e.contains("unique"), "{e}");
    let one = QuantDepthwiseConv { name: "dw".into(), opts: DepthwiseOptions::new(&[1, 1]) };
    let twice = Functional::new("one_dw", &[("x", &[5, 5, 2])], move |net, x| {
        let y = net.apply(&one, x[0])?;
        Ok(vec![net.apply(&one.clone(), y)?])
    });
    let built = bitgrad::models::build(&twice, 1, Mode::Inference).unwrap();
    assert_eq!(built.network.layers.iter().filter(|l| l.name == "dw").count(), 1, "one summary row");
}
