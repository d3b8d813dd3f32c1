//! Every example of the reference pages in `../shared/larq-docs/` (Larq's user guide, key
//! concepts, `larq.layers` and `larq.quantizers` references, TF-MOT's quantization-aware
//! training guide), ported as docs/PORTING.md shows them, built and run on the CPU reference:
//! models are built, summarised and trained for a few steps on tiny synthetic data where the
//! page trains, and what the page states (output shapes, parameter counts, quantized values,
//! pseudo-gradients, which weights quantization adds) is checked.

use std::sync::{Arc, OnceLock};

use bitgrad::layers::{add_weight, BuildContext, WeightSpec};
use bitgrad::models::Built;
use bitgrad::prelude::*;
use bitgrad::quantizers::{CustomQuantizer, DoReFaMode};
use bitgrad::{DType, Graph, HostTensor, ParamStore, Plan, ValueId};

/// `n` 28x28x1 images of 10 classes a small network separates quickly: class `c` lights rows
/// `3c..3c+2`, over a little deterministic noise.
fn images(n: usize) -> Dataset {
    let mut x = Vec::with_capacity(n * 784);
    for i in 0..n {
        for p in 0..784 {
            let noise = ((i * 7919 + p * 104_729) % 97) as f32 / 97.0 * 0.2;
            x.push(if (p / 28) / 3 == i % 10 { 0.8 + noise } else { noise });
        }
    }
    Dataset::new(&[28, 28, 1], x, (0..n).map(|i| (i % 10) as i32).collect()).unwrap()
}

/// `n` samples of `shape` with seeded values in [-1, 1) and labels `i % classes`.
fn samples(shape: &[usize], n: usize, classes: usize) -> Dataset {
    let len: usize = shape.iter().product();
    let x = (0..n * len).map(|i| ((i * 2_654_435_761) % 1000) as f32 / 500.0 - 1.0).collect();
    Dataset::new(shape, x, (0..n).map(|i| (i % classes) as i32).collect()).unwrap()
}

/// `compile("adam", "sparse_categorical_crossentropy", ["accuracy"])` on the CPU, then `fit`.
fn fit(model: impl Model + 'static, data: &Dataset, epochs: usize, batch_size: usize) -> (Trainer, History) {
    let mut trainer = model.compile_on(&Device::cpu(), "adam", "sparse_categorical_crossentropy", &["accuracy"]).unwrap();
    let history = trainer.fit(data, None, &FitOptions { epochs, batch_size, ..FitOptions::default() }).unwrap();
    for e in &history.epochs {
        assert!(e.values["loss"].is_finite(), "epoch {}: {:?}", e.epoch, e.values);
    }
    (trainer, history)
}

/// The model's first output for the batch `x` (per-sample shape as the model's input), in
/// inference, with the weights in `params` (created from their initializers when missing).
fn run(model: &dyn Model, x: &HostTensor, params: &mut ParamStore) -> HostTensor {
    let built = bitgrad::models::build(model, x.shape().dims()[0], Mode::Inference).unwrap();
    let mut plan = Plan::new(&Device::cpu(), built.graph(), &built.outputs, params).unwrap();
    plan.feed(&model.inputs()[0].0, x).unwrap();
    plan.run().unwrap();
    plan.fetch(built.outputs[0]).unwrap()
}

/// As [`run`], with the gradient of the sum of the outputs with respect to the input.
fn run_with_input_gradient(model: &dyn Model, x: &HostTensor, params: &mut ParamStore) -> (Vec<f32>, Vec<f32>) {
    let mut built: Built = bitgrad::models::build(model, x.shape().dims()[0], Mode::Inference).unwrap();
    let (input, y) = (built.inputs[0], built.outputs[0]);
    let g = &mut built.network.graph;
    let axes: Vec<usize> = (0..g.value(y).shape.rank()).collect();
    let total = g.sum(y, &axes, false).unwrap();
    let dx = g.backward(total, &[input]).unwrap()[0];
    let mut plan = Plan::new(&Device::cpu(), built.graph(), &[y, dx], params).unwrap();
    plan.feed(&model.inputs()[0].0, x).unwrap();
    plan.run().unwrap();
    (plan.fetch(y).unwrap().as_f32().unwrap().to_vec(), plan.fetch(dx).unwrap().as_f32().unwrap().to_vec())
}

/// `q(x)` and its pseudo-gradient `dq/dx` (the gradient of `sum(q(x))`), on the CPU.
fn quantize(q: &Quantizer, shape: &[usize], x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut g = Graph::new();
    let xv = g.input("x", shape, DType::F32).unwrap();
    let y = q.apply(&mut g, xv).unwrap();
    let total = g.sum(y, &(0..shape.len()).collect::<Vec<_>>(), false).unwrap();
    let dx = g.backward(total, &[xv]).unwrap()[0];
    let mut plan = Plan::new(&Device::cpu(), &g, &[y, dx], &mut ParamStore::new()).unwrap();
    plan.feed("x", &HostTensor::f32(shape, x.to_vec()).unwrap()).unwrap();
    plan.run().unwrap();
    (plan.fetch(y).unwrap().as_f32().unwrap().to_vec(), plan.fetch(dx).unwrap().as_f32().unwrap().to_vec())
}

/// Each layer's output shape in the summary (batch axis -1).
fn output_shapes(s: &Summary) -> Vec<Vec<i64>> {
    s.layers.iter().map(|l| l.output_shape.clone().expect("one shape per layer")).collect()
}

fn layer_names(s: &Summary) -> Vec<&str> {
    s.layers.iter().map(|l| l.name.as_str()).collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (a, e)) in got.iter().zip(want).enumerate() {
        assert!((*a as f64 - e).abs() <= tol * (1.0 + e.abs()), "{what} [{i}]: {a} vs {e} (difference {})", *a as f64 - e);
    }
}

/// The identity-gradient sign of the key concepts page (`@tf.custom_gradient def
/// identity_sign`), registered once per test binary.
fn identity_sign() -> Quantizer {
    static Q: OnceLock<Arc<CustomQuantizer>> = OnceLock::new();
    let q = Q.get_or_init(|| {
        CustomQuantizer::new(
            "IdentitySign",
            1,
            "fn forward(x: f32) -> f32 { return sign(x); }
             fn gradient(x: f32, dy: f32) -> f32 { return dy; }",
            |x| {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }, // tf.sign(0) = 0
            |_x, dy| dy,
        )
        .unwrap()
    });
    Quantizer::Custom(q.clone())
}

/// larq-user-guide.md: the 32-bit models and the 1-bit model in the three Keras styles.
mod user_guide {
    use super::*;

    /// "Larq 32-bit model".
    fn larq_32_bit() -> Sequential {
        Sequential::new()
            .add(Flatten::new().input_shape(&[28, 28, 1]))
            .add(QuantDense::new(512).activation("relu"))
            .add(QuantDense::new(10).activation("softmax"))
    }

    /// "Keras 32-bit model": Keras' `Dense` is a `QuantDense` without quantizers.
    fn keras_32_bit() -> Sequential {
        Sequential::new()
            .add(Flatten::new().input_shape(&[28, 28, 1]))
            .add(QuantDense::new(512).activation("relu").named("dense"))
            .add(QuantDense::new(10).activation("softmax").named("dense_1"))
    }

    /// "Larq 1-bit model".
    pub fn sequential() -> Sequential {
        Sequential::new()
            .add(Flatten::new().input_shape(&[28, 28, 1]))
            .add(QuantDense::new(512).kernel_quantizer("ste_sign").kernel_constraint("weight_clip"))
            .add(
                QuantDense::new(10)
                    .input_quantizer("ste_sign")
                    .kernel_quantizer("ste_sign")
                    .kernel_constraint("weight_clip")
                    .activation("softmax"),
            )
    }

    /// "Larq 1-bit model functional". The layers are made once, outside the function, which
    /// runs at every build.
    pub fn functional() -> Functional {
        let flatten = Flatten::new();
        let dense1 = QuantDense::new(512).kernel_quantizer("ste_sign").kernel_constraint("weight_clip");
        let dense2 = QuantDense::new(10)
            .input_quantizer("ste_sign")
            .kernel_quantizer("ste_sign")
            .kernel_constraint("weight_clip")
            .activation("softmax");
        Functional::new("model", &[("input_1", &[28, 28, 1])], move |net, x| {
            let y = net.apply(&flatten, x[0])?;
            let y = net.apply(&dense1, y)?;
            let y = net.apply(&dense2, y)?;
            Ok(vec![y])
        })
    }

    /// "Larq 1-bit model subclassing".
    pub struct MyModel {
        flatten: Flatten,
        dense1: QuantDense,
        dense2: QuantDense,
    }

    impl MyModel {
        pub fn new() -> Self {
            MyModel {
                flatten: Flatten::new(),
                dense1: QuantDense::new(512).kernel_quantizer("ste_sign").kernel_constraint("weight_clip"),
                dense2: QuantDense::new(10)
                    .input_quantizer("ste_sign")
                    .kernel_quantizer("ste_sign")
                    .kernel_constraint("weight_clip")
                    .activation("softmax"),
            }
        }
    }

    impl Model for MyModel {
        fn name(&self) -> &str {
            "my_model"
        }

        fn inputs(&self) -> Vec<(String, Vec<usize>)> {
            vec![("input_1".into(), vec![28, 28, 1])]
        }

        fn call(&self, net: &mut Network, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
            let x = net.apply(&self.flatten, inputs[0])?;
            let x = net.apply(&self.dense1, x)?;
            Ok(vec![net.apply(&self.dense2, x)?])
        }
    }

    #[test]
    fn the_32_bit_models_are_full_precision_and_train() {
        for (name, model) in [("larq", larq_32_bit as fn() -> Sequential), ("keras", keras_32_bit)] {
            reset_names();
            let s = model().summary().unwrap();
            println!("{s}");
            assert_eq!(output_shapes(&s), [vec![-1, 784], vec![-1, 512], vec![-1, 10]], "{name}");
            assert!(s.layers.iter().all(|l| l.input_precision.is_none() && l.weights.iter().all(|w| w.bitwidth == 32)), "{name}");
            assert_eq!(s.total_params, 784 * 512 + 512 + 5130, "{name}");
            let (mut trainer, _) = fit(model(), &images(16), 1, 8);
            let p = trainer.predict(&images(4), 4).unwrap();
            assert_eq!(p.shape().dims(), [4, 10], "{name}");
            for row in p.as_f32().unwrap().chunks(10) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{name}: softmax rows sum to 1: {row:?}");
            }
        }
    }

    #[test]
    fn the_1_bit_model_three_ways_is_one_model() {
        reset_names();
        let seq = sequential();
        reset_names();
        let fun = functional();
        reset_names();
        let sub = MyModel::new();
        let summaries = [seq.summary().unwrap(), fun.summary().unwrap(), sub.summary().unwrap()];
        println!("{}", summaries[0]);
        assert_eq!(layer_names(&summaries[0]), ["flatten", "quant_dense", "quant_dense_1"]);
        assert_eq!(layer_names(&summaries[1]), ["input_1", "flatten", "quant_dense", "quant_dense_1"], "functional lists its input");
        assert_eq!(layer_names(&summaries[2]), ["flatten", "quant_dense", "quant_dense_1"]);
        for s in &summaries {
            assert_eq!(s.total_params, 406_528 + 522);
            assert_eq!(s.memory_bits, 406_528 + 522 * 32, "1-bit kernels, 32-bit biases");
            assert_eq!(s.layers.last().unwrap().input_precision, Some(1));
        }
        // One store, weights found by name: the three compute the same function.
        let x = HostTensor::f32([3, 28, 28, 1], images(3).gather(&[0, 1, 2]).0).unwrap();
        let mut params = ParamStore::new();
        let outs: Vec<Vec<f32>> =
            [&seq as &dyn Model, &fun, &sub].iter().map(|m| run(*m, &x, &mut params).as_f32().unwrap().to_vec()).collect();
        assert_eq!(outs[0], outs[1]);
        assert_eq!(outs[0], outs[2]);
    }

    #[test]
    fn the_1_bit_model_learns_in_each_style() {
        let data = images(40);
        for style in 0..3 {
            reset_names();
            let (mut trainer, history) = match style {
                0 => fit(sequential(), &data, 3, 8),
                1 => fit(functional(), &data, 3, 8),
                _ => fit(MyModel::new(), &data, 3, 8),
            };
            let loss: Vec<f64> = history.epochs.iter().map(|e| e.values["loss"]).collect();
            assert!(loss[2] < loss[0], "style {style}: the loss falls: {loss:?}");
            let m = trainer.evaluate(&data, 20).unwrap();
            assert!((0.0..=1.0).contains(&m["accuracy"]) && m["loss"].is_finite(), "{m:?}");
            assert!(trainer.warnings().is_empty(), "kernels are clipped: {:?}", trainer.warnings());
        }
    }
}

/// larq-key-concepts.md: quantizers as activations and on their own, custom quantizers.
mod key_concepts {
    use super::*;

    #[test]
    fn a_quantizer_is_an_activation() {
        // y = larq.layers.QuantDense(512, activation="ste_sign")(x)
        let dense = QuantDense::new(512).activation("ste_sign");
        let model = Functional::new("model", &[("x", &[16])], move |net, x| {
            let y = net.apply(&dense, x[0])?;
            Ok(vec![y])
        });
        let x = HostTensor::f32([2, 16], samples(&[16], 2, 2).gather(&[0, 1]).0).unwrap();
        let y = run(&model, &x, &mut ParamStore::new());
        assert_eq!(y.shape().dims(), [2, 512]);
        assert!(y.as_f32().unwrap().iter().all(|v| *v == 1.0 || *v == -1.0));
    }

    #[test]
    fn a_quantizer_on_its_own_equals_the_activation_layer() {
        let mut g = Graph::new();
        let x = g.input("x", [1, 9], DType::F32).unwrap();
        // x_binarized = larq.quantizers.SteSign(clip_value=1.0)(x)
        let a = Quantizer::SteSign { clip_value: Some(1.0) }.apply(&mut g, x).unwrap();
        // x_binarized = tf.keras.layers.Activation("ste_sign")(x)
        let layer = ActivationLayer::new("ste_sign");
        let b = layer.build(&mut g, x, &mut BuildContext::new(Mode::Inference)).unwrap();
        let sum_a = g.sum(a, &[0, 1], false).unwrap();
        let sum_b = g.sum(b, &[0, 1], false).unwrap();
        let da = g.backward(sum_a, &[x]).unwrap()[0];
        let db = g.backward(sum_b, &[x]).unwrap()[0];
        let mut plan = Plan::new(&Device::cpu(), &g, &[a, b, da, db], &mut ParamStore::new()).unwrap();
        let xs = vec![-2.0, -1.0, -0.5, -0.0, 0.0, 0.25, 1.0, 1.5, 3.0];
        plan.feed("x", &HostTensor::f32([1, 9], xs).unwrap()).unwrap();
        plan.run().unwrap();
        let get = |v| plan.fetch(v).unwrap().as_f32().unwrap().to_vec();
        assert_eq!(get(a), [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(get(a), get(b));
        assert_eq!(get(da), [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        assert_eq!(get(da), get(db));
    }

    #[test]
    fn a_custom_quantizer_has_its_own_gradient() {
        let xs = [-3.0, -1.0, -0.25, 0.0, 0.5, 2.0];
        let (y, dx) = quantize(&identity_sign(), &[6], &xs);
        assert_eq!(y, [-1.0, -1.0, -1.0, 0.0, 1.0, 1.0], "tf.sign");
        assert_eq!(dx, [1.0; 6], "the identity gradient, unclipped");
    }

    #[test]
    fn a_custom_quantizer_serves_as_input_and_kernel_quantizer() {
        // larq.layers.QuantDense(10, input_quantizer=identity_sign, kernel_quantizer=identity_sign)
        let model = Sequential::new()
            .add(QuantDense::new(10).input_quantizer(identity_sign()).kernel_quantizer(identity_sign()).input_shape(&[16]));
        let s = model.summary().unwrap();
        assert_eq!(s.layers[0].input_precision, Some(1));
        assert_eq!(s.layers[0].weights.iter().map(|w| w.bitwidth).collect::<Vec<_>>(), [1, 32]);
        // Signs times signs, summed over 16 inputs, plus a zero bias: whole numbers up to 16.
        let x = HostTensor::f32([4, 16], samples(&[16], 4, 2).gather(&[0, 1, 2, 3]).0).unwrap();
        let y = run(&model, &x, &mut ParamStore::new());
        assert!(y.as_f32().unwrap().iter().all(|v| v.fract() == 0.0 && v.abs() <= 16.0), "{y:?}");
        // It trains (Larq warns of starved weights here, as bitgrad does: no kernel_constraint).
        let model = Sequential::new().add(
            QuantDense::new(2).input_quantizer(identity_sign()).kernel_quantizer(identity_sign()).activation("softmax").input_shape(&[16]),
        );
        let (trainer, _) = fit(model, &samples(&[16], 8, 2), 1, 4);
        assert!(trainer.warnings().iter().any(|w| w.contains("starved weights")), "{:?}", trainer.warnings());
    }
}

/// larq-quantizers.md: the three formulations, names and objects, NoOp, and each quantizer's
/// stated forward and pseudo-gradient.
mod quantizers {
    use super::*;

    /// The page's three formulations of a binarized input to the second layer.
    fn formulation(i: usize) -> Sequential {
        reset_names();
        let model = Sequential::new().add(Input::new(&[8]));
        match i {
            // x = lq.layers.QuantDense(64, activation=None)(x)
            // x = lq.layers.QuantDense(64, input_quantizer="ste_sign")(x)
            0 => model.add(QuantDense::new(64).activation("linear")).add(QuantDense::new(64).input_quantizer("ste_sign")),
            // x = lq.layers.QuantDense(64)(x)
            // x = tf.keras.layers.Activation("ste_sign")(x)
            // x = lq.layers.QuantDense(64)(x)
            1 => model.add(QuantDense::new(64)).add(ActivationLayer::new("ste_sign")).add(QuantDense::new(64)),
            // x = lq.layers.QuantDense(64, activation="ste_sign")(x)
            // x = lq.layers.QuantDense(64)(x)
            _ => model.add(QuantDense::new(64).activation("ste_sign")).add(QuantDense::new(64)),
        }
    }

    #[test]
    fn the_three_formulations_compute_the_same_values_and_gradients() {
        let x = HostTensor::f32([4, 8], samples(&[8], 4, 2).gather(&[0, 1, 2, 3]).0).unwrap();
        let mut params = ParamStore::new();
        let results: Vec<_> = (0..3).map(|i| run_with_input_gradient(&formulation(i), &x, &mut params)).collect();
        assert_eq!(results[0], results[1]);
        assert_eq!(results[0], results[2]);
        assert!(results[0].1.iter().any(|d| *d != 0.0), "a gradient flows through the sign");
    }

    #[test]
    fn a_quantizer_by_name_is_the_quantizer_object() {
        // lq.layers.QuantDense(64, kernel_quantizer="ste_sign")
        let by_name = QuantDense::new(64).kernel_quantizer("ste_sign");
        // lq.layers.QuantDense(64, kernel_quantizer=lq.quantizers.SteSign(clip_value=1.0))
        let by_object = QuantDense::new(64).kernel_quantizer(Quantizer::SteSign { clip_value: Some(1.0) });
        assert_eq!(by_name.args.kernel_quantizer, by_object.args.kernel_quantizer);
        assert_eq!(by_name.args.kernel_quantizer, Some(Quantizer::SteSign { clip_value: Some(1.0) }));
    }

    #[test]
    fn noop_marks_the_precision_of_a_kernel() {
        // layer = lq.layers.QuantDense(16, kernel_quantizer=lq.quantizers.NoOp(precision=1))
        let layer = QuantDense::new(16).kernel_quantizer(Quantizer::NoOp { precision: 1 });
        // layer.build((32,))
        let mut g = Graph::new();
        let mut ctx = BuildContext::new(Mode::Inference);
        let x = g.input("x", [1, 32], DType::F32).unwrap();
        layer.build(&mut g, x, &mut ctx).unwrap();
        // assert layer.kernel.precision == 1
        let kernel = ctx.weights.iter().find(|w| w.name.ends_with("/kernel")).unwrap();
        assert_eq!(kernel.precision, 1);
        assert!(ctx.warnings.is_empty(), "NoOp is no binary quantizer: {:?}", ctx.warnings);
        // q(x) = x, gradient 1.
        let (y, dx) = quantize(&Quantizer::NoOp { precision: 1 }, &[3], &[-2.0, 0.5, 7.0]);
        assert_eq!((y, dx), (vec![-2.0, 0.5, 7.0], vec![1.0; 3]));
    }

    const GRID: [f32; 9] = [-2.0, -1.0, -0.6, -0.04, 0.0, 0.04, 0.6, 1.0, 2.0];

    #[test]
    fn ste_sign_is_a_sign_with_a_clipped_identity_gradient() {
        let (y, dx) = quantize(&Quantizer::from_name("ste_sign").unwrap(), &[9], &GRID);
        assert_eq!(y, [-1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0], "x >= 0 gives 1");
        assert_eq!(dx, [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0], "|x| <= clip_value");
        let (_, dx) = quantize(&Quantizer::SteSign { clip_value: Some(0.5) }, &[9], &GRID);
        assert_eq!(dx, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
        let (_, dx) = quantize(&Quantizer::SteSign { clip_value: None }, &[9], &GRID);
        assert_eq!(dx, [1.0; 9], "clip_value=None: not clipped");
    }

    #[test]
    fn approx_sign_has_a_triangular_gradient() {
        let (y, dx) = quantize(&Quantizer::from_name("approx_sign").unwrap(), &[9], &GRID);
        assert_eq!(y, [-1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
        let want: Vec<f64> = GRID.iter().map(|&x| if x.abs() <= 1.0 { 2.0 - 2.0 * (x.abs() as f64) } else { 0.0 }).collect();
        assert_close("approx_sign gradient", &dx, &want, 1e-6);
    }

    #[test]
    fn ste_heaviside_gives_zero_and_one() {
        let (y, dx) = quantize(&Quantizer::from_name("ste_heaviside").unwrap(), &[9], &GRID);
        assert_eq!(y, [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0], "1 for x > 0, 0 for x <= 0");
        assert_eq!(dx, [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn swish_sign_has_the_signswish_gradient() {
        for beta in [5.0f32, 2.0] {
            let q = if beta == 5.0 { Quantizer::from_name("swish_sign").unwrap() } else { Quantizer::SwishSign { beta } };
            let (y, dx) = quantize(&q, &[9], &GRID);
            assert_eq!(y, [-1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
            let b = beta as f64;
            let want: Vec<f64> = GRID
                .iter()
                .map(|&x| (x as f64, b))
                .map(|(x, b)| b * (2.0 - b * x * (b * x / 2.0).tanh()) / (1.0 + (b * x).cosh()))
                .collect();
            assert_close(&format!("swish_sign(beta={beta}) gradient"), &dx, &want, 1e-5);
        }
    }

    #[test]
    fn magnitude_aware_sign_scales_each_output_channel_by_its_mean_magnitude() {
        // A kernel [2, 3]: three output channels (the last axis).
        let x = [0.5, -2.0, 0.1, -1.5, 0.4, -0.3];
        let (y, dx) = quantize(&Quantizer::from_name("magnitude_aware_sign").unwrap(), &[2, 3], &x);
        let scale = [(0.5 + 1.5) / 2.0, (2.0 + 0.4) / 2.0, (0.1 + 0.3) / 2.0];
        let want: Vec<f64> = x.iter().enumerate().map(|(i, &v)| scale[i % 3] * if v < 0.0 { -1.0 } else { 1.0 }).collect();
        assert_close("magnitude_aware_sign", &y, &want, 1e-6);
        // The scale is a constant to the gradient: scale times SteSign's window.
        let want: Vec<f64> = x.iter().enumerate().map(|(i, &v)| if v.abs() <= 1.0 { scale[i % 3] } else { 0.0 }).collect();
        assert_close("magnitude_aware_sign gradient", &dx, &want, 1e-6);
    }

    #[test]
    fn ste_tern_ternarizes_around_its_threshold() {
        let (y, dx) = quantize(&Quantizer::from_name("ste_tern").unwrap(), &[9], &GRID);
        assert_eq!(y, [-1.0, -1.0, -1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0], "threshold_value 0.05");
        assert_eq!(dx, [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
        // ternary_weight_networks: threshold 0.7 * mean|x| = 0.7 * 0.52 = 0.364.
        let twn = Quantizer::SteTern { threshold_value: 0.05, ternary_weight_networks: true, clip_value: Some(1.0) };
        let (y, _) = quantize(&twn, &[5], &[-1.0, -0.2, 0.1, 0.3, 1.0]);
        assert_eq!(y, [-1.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(twn.precision(), 2);
    }

    #[test]
    fn dorefa_quantizes_activations_and_weights_to_k_bits() {
        // Activations, k_bit = 2: n = 3 levels above 0 on [0, 1].
        let x = [-0.5, 0.0, 0.1, 0.4, 0.6, 0.9, 1.0, 1.5];
        let (y, dx) = quantize(&Quantizer::from_name("dorefa_quantizer").unwrap(), &[8], &x);
        assert_close("DoReFa activations", &y, &[0.0, 0.0, 0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0, 1.0, 1.0], 1e-6);
        assert_eq!(dx, [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0], "1 on [0, 1]");
        // Weights: q(w) = 2 quantize_k(tanh(w) / (2 max|tanh(w)|) + 1/2) - 1.
        let w = [-0.9, -0.3, 0.05, 0.2, 0.7];
        let q = Quantizer::DoReFa { k_bit: 3, mode: DoReFaMode::Weights };
        let (y, _) = quantize(&q, &[5], &w);
        let n = 7.0;
        let max = w.iter().map(|v| (*v as f64).tanh().abs()).fold(0.0, f64::max);
        let want: Vec<f64> = w.iter().map(|v| 2.0 * ((((*v as f64).tanh() / (2.0 * max) + 0.5) * n).round() / n) - 1.0).collect();
        assert_close("DoReFa weights", &y, &want, 1e-6);
        assert_eq!(q.precision(), 3);
        // "Raises ValueError for bad value of mode."
        let bad = serde_json::json!({"class_name": "DoReFa", "config": {"k_bit": 2, "mode": "kernel"}});
        let e = Quantizer::from_keras(&bad).unwrap_err().to_string();
        assert!(e.contains("mode"), "{e}");
    }

    #[test]
    fn precision_is_what_the_summary_logs() {
        for (name, bits) in [("ste_sign", 1), ("approx_sign", 1), ("ste_heaviside", 1), ("swish_sign", 1), ("magnitude_aware_sign", 1)] {
            assert_eq!(Quantizer::from_name(name).unwrap().precision(), bits, "{name}");
        }
        assert_eq!(Quantizer::from_name("ste_tern").unwrap().precision(), 2);
        assert_eq!(Quantizer::from_name("dorefa_quantizer").unwrap().precision(), 2);
        let model = Sequential::new()
            .add(QuantDense::new(4).kernel_quantizer(Quantizer::DoReFa { k_bit: 4, mode: DoReFaMode::Weights }).input_shape(&[3]));
        assert_eq!(model.summary().unwrap().layers[0].weights[0].bitwidth, 4);
    }
}

/// larq-layers.md: its three examples, and every argument of every layer as PORTING.md maps it.
mod layers {
    use super::*;

    #[test]
    fn quant_dense_as_first_layer_takes_its_input_shape() {
        // model = Sequential()
        let model = Sequential::new();
        // model.add(QuantDense(32, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
        //                      kernel_constraint="weight_clip", input_shape=(16,)))
        let model = model.add(
            QuantDense::new(32)
                .input_quantizer("ste_sign")
                .kernel_quantizer("ste_sign")
                .kernel_constraint("weight_clip")
                .input_shape(&[16]),
        );
        // now the model will take as input arrays of shape (*, 16) and output arrays of shape (*, 32)
        assert_eq!(output_shapes(&model.summary().unwrap()), [vec![-1, 32]]);
        // after the first layer, you don't need to specify the size of the input anymore:
        let model =
            model.add(QuantDense::new(32).input_quantizer("ste_sign").kernel_quantizer("ste_sign").kernel_constraint("weight_clip"));
        assert_eq!(output_shapes(&model.summary().unwrap()), [vec![-1, 32], vec![-1, 32]]);
        let y = run(&model, &HostTensor::f32([5, 16], samples(&[16], 5, 2).gather(&[0, 1, 2, 3, 4]).0).unwrap(), &mut ParamStore::new());
        assert_eq!(y.shape().dims(), [5, 32]);
    }

    #[test]
    fn quant_locally_connected_1d_shapes() {
        // model = Sequential()
        // model.add(QuantLocallyConnected1D(64, 3, input_shape=(10, 32)))
        let model = Sequential::new().add(QuantLocallyConnected1D::new(64, 3).input_shape(&[10, 32]));
        // now model.output_shape == (None, 8, 64)
        assert_eq!(model.output_shape().unwrap(), [8, 64]);
        assert_eq!(output_shapes(&model.summary().unwrap()).last().unwrap(), &[-1, 8, 64]);
        // model.add(QuantLocallyConnected1D(32, 3))
        let model = model.add(QuantLocallyConnected1D::new(32, 3));
        // now model.output_shape == (None, 6, 32)
        assert_eq!(model.output_shape().unwrap(), [6, 32]);
        let x = HostTensor::f32([2, 10, 32], samples(&[10, 32], 2, 2).gather(&[0, 1]).0).unwrap();
        assert_eq!(run(&model, &x, &mut ParamStore::new()).shape().dims(), [2, 6, 32]);
    }

    #[test]
    fn quant_locally_connected_2d_shapes_and_parameters() {
        // model = Sequential()
        // model.add(QuantLocallyConnected2D(64, (3, 3), input_shape=(32, 32, 3)))
        let model = Sequential::new().add(QuantLocallyConnected2D::new(64, (3, 3)).input_shape(&[32, 32, 3]));
        // now model.output_shape == (None, 30, 30, 64)
        let s = model.summary().unwrap();
        assert_eq!(output_shapes(&s).last().unwrap(), &[-1, 30, 30, 64]);
        // this layer will consume (30*30)*(3*3*3*64) + (30*30)*64 parameters
        assert_eq!(s.total_params, (30 * 30) * (3 * 3 * 3 * 64) + (30 * 30) * 64);
        // model.add(QuantLocallyConnected2D(32, (3, 3)))
        let model = model.add(QuantLocallyConnected2D::new(32, (3, 3)));
        // now model.output_shape == (None, 28, 28, 32)
        assert_eq!(model.output_shape().unwrap(), [28, 28, 32]);
    }

    /// `layer` between an input of `shape` and a softmax head, trained one step.
    fn trains(what: &str, shape: &[usize], layer: impl Layer + 'static) -> History {
        let model = Sequential::new().add(Input::new(shape)).add(layer).add(Flatten::new()).add(QuantDense::new(3).activation("softmax"));
        let mut trainer = model
            .compile_on(&Device::cpu(), "adam", "sparse_categorical_crossentropy", &["accuracy"])
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let history = trainer
            .fit(&samples(shape, 4, 3), None, &FitOptions { epochs: 1, batch_size: 4, ..FitOptions::default() })
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(history.epochs[0].values["loss"].is_finite(), "{what}: {:?}", history.epochs[0].values);
        history
    }

    /// The arguments every layer with one kernel shares, each set away from its default.
    fn quant_args<L: QuantLayer>(layer: L) -> L {
        layer
            .activation("relu")
            .use_bias(true)
            .input_quantizer("ste_sign")
            .kernel_quantizer("ste_sign")
            .kernel_initializer("glorot_normal")
            .bias_initializer("ones")
            .kernel_regularizer("l2")
            .bias_regularizer("l1")
            .activity_regularizer("l2")
            .kernel_constraint("weight_clip")
            .bias_constraint(WeightClip::new(0.5).unwrap())
            .metrics(&["flip_ratio"])
    }

    #[test]
    fn every_argument_of_every_layer_is_accepted_and_trains() {
        let h = trains("QuantDense", &[6], quant_args(QuantDense::new(4)));
        assert!(h.epochs[0].values.keys().any(|k| k.starts_with("flip_ratio/")), "{:?}", h.epochs[0].values);
        trains("QuantConv1D", &[8, 3], quant_args(QuantConv1D::new(4, 3)).strides(2).padding("same").data_format("channels_last"));
        trains("QuantConv1D causal dilated", &[8, 3], quant_args(QuantConv1D::new(4, 3)).padding("causal").dilation_rate(2));
        trains("QuantConv2D", &[6, 6, 2], quant_args(QuantConv2D::new(4, (3, 3))).strides((2, 2)).padding("same").pad_values(1.0));
        trains("QuantConv2D channels_first", &[2, 6, 6], quant_args(QuantConv2D::new(4, 3)).data_format("channels_first").dilation_rate(2));
        trains("QuantConv2D groups", &[6, 6, 4], quant_args(QuantConv2D::new(4, 3)).groups(2));
        trains("QuantConv3D", &[4, 4, 4, 2], quant_args(QuantConv3D::new(2, 3)).strides(1).padding("valid").dilation_rate(1));
        let mut depthwise = QuantDepthwiseConv2D::new((3, 3))
            .strides(1)
            .padding("same")
            .depth_multiplier(2)
            .data_format("channels_last")
            .dilation_rate(1)
            .activation("relu")
            .use_bias(true)
            .input_quantizer("ste_sign")
            .depthwise_quantizer("ste_sign")
            .depthwise_initializer("he_normal")
            .depthwise_regularizer("l2")
            .depthwise_constraint("weight_clip")
            .pad_values(1.0)
            .metrics(&["flip_ratio"]);
        depthwise.opts.bias_regularizer = Some(Regularizer::l2(0.01));
        depthwise.opts.activity_regularizer = Some(Regularizer::l1(0.01));
        trains("QuantDepthwiseConv2D", &[6, 6, 2], depthwise);
        for (what, shape, layer) in [
            ("QuantSeparableConv1D", &[8, 3][..], QuantSeparableConv1D::new(4, 3).padding("causal").dilation_rate(2)),
            ("QuantSeparableConv2D", &[6, 6, 2][..], QuantSeparableConv2D::new(4, (3, 3)).strides(2).padding("same")),
        ] {
            let mut separable = layer
                .data_format("channels_last")
                .depth_multiplier(2)
                .activation("relu")
                .use_bias(true)
                .input_quantizer("ste_sign")
                .depthwise_quantizer("ste_sign")
                .pointwise_quantizer("ste_sign")
                .depthwise_initializer("glorot_normal")
                .pointwise_initializer("he_uniform")
                .depthwise_regularizer("l2")
                .pointwise_regularizer("l1")
                .depthwise_constraint("weight_clip")
                .pointwise_constraint("weight_clip")
                .metrics(&["flip_ratio"]);
            separable.opts.bias_regularizer = Some(Regularizer::l2(0.01));
            separable.opts.activity_regularizer = Some(Regularizer::l2(0.01));
            trains(what, shape, separable);
        }
        let transpose =
            quant_args(QuantConv2DTranspose::new(4, (3, 3))).strides(2).padding("valid").output_padding(1).data_format("channels_last");
        trains("QuantConv2DTranspose", &[3, 3, 2], transpose);
        trains("QuantConv2DTranspose dilated", &[3, 3, 2], quant_args(QuantConv2DTranspose::new(4, 3)).padding("same").dilation_rate(2));
        trains("QuantConv3DTranspose", &[2, 2, 2, 2], quant_args(QuantConv3DTranspose::new(2, 2)).strides(2).padding("same"));
        trains("QuantLocallyConnected1D", &[8, 3], quant_args(QuantLocallyConnected1D::new(4, 3)).strides(2).padding("valid"));
        let local =
            quant_args(QuantLocallyConnected2D::new(4, (3, 3))).strides(1).padding("same").data_format("channels_first").implementation(2);
        trains("QuantLocallyConnected2D", &[2, 5, 5], local);
    }
}

/// tfmot-qat-guide.md: a whole model, a subset, a custom config, a custom quantizer, a custom
/// layer.
mod qat {
    use super::*;
    use bitgrad::qat::{
        fake_quantized, quantize_annotate_layer, quantize_annotate_model, quantize_apply, quantize_model, LastValueQuantizer,
        NoOpQuantizeConfig, QuantizeConfig, Quantizer as QatQuantizer, Scheme,
    };
    use bitgrad::BinaryOp;

    fn weight_names(built: &Built) -> Vec<String> {
        built.network.ctx.weights.iter().map(|w| w.name.clone()).collect()
    }

    fn has(built: &Built, name: &str) -> bool {
        weight_names(built).iter().any(|n| n == name)
    }

    fn small_cnn() -> Sequential {
        Sequential::new()
            .add(QuantConv2D::new(4, 3).input_shape(&[8, 8, 1]))
            .add(ActivationLayer::new("relu"))
            .add(Flatten::new())
            .add(QuantDense::new(3).activation("softmax"))
    }

    #[test]
    fn quantize_an_entire_model_then_compile_and_fit() {
        reset_names();
        // model = tf.keras.Sequential([...])
        let model = small_cnn();
        // quantized_model = tfmo.quantization.keras.quantize_model(model)
        let quantized_model = quantize_model(model).unwrap();
        let built = quantized_model.build(1, Mode::Training).unwrap();
        for name in ["quantize_layer/quantize_layer_min", "quant_conv2d/kernel_min", "activation/output_max", "quant_dense/kernel_max"] {
            assert!(has(&built, name), "{name}: {:?}", weight_names(&built));
        }
        assert!(!has(&built, "quant_conv2d/post_activation_min"), "Conv + ReLU: the ReLU quantizes");
        // quantized_model.compile(...); quantized_model.fit(...)
        let (trainer, _) = fit(quantized_model, &samples(&[8, 8, 1], 8, 3), 2, 4);
        let max = trainer.params.get("quant_conv2d/kernel_max").unwrap().download().unwrap();
        assert!(max.as_f32().unwrap().iter().all(|m| *m > 0.0 && *m < 6.0), "the range follows the kernel: {max:?}");
    }

    #[test]
    fn quantize_a_subset_of_a_model() {
        reset_names();
        let model = Sequential::new()
            .add(Input::new(&[8, 8, 1]))
            // Only annotated layers will be quantized.
            .add(quantize_annotate_layer(QuantConv2D::new(4, 3), None))
            .add(quantize_annotate_layer(ActivationLayer::new("relu"), None))
            .add(Flatten::new())
            // Dense won't be quantized since it hasn't been annotated.
            .add(QuantDense::new(3).activation("softmax"));
        let quantized_model = quantize_apply(model, Scheme::default_8bit()).unwrap();
        let built = quantized_model.build(1, Mode::Training).unwrap();
        assert!(has(&built, "quant_conv2d/kernel_min") && has(&built, "activation/output_min"), "{:?}", weight_names(&built));
        let floats = ["quant_dense/kernel_min", "quantize_layer/quantize_layer_min", "quant_conv2d/post_activation_min"];
        assert!(floats.iter().all(|n| !has(&built, n)), "{:?}", weight_names(&built));
        fit(quantized_model, &samples(&[8, 8, 1], 8, 3), 1, 4);
    }

    /// TF-MOT's `ConvQuantizeConfig`: 4-bit weights, activations not quantized.
    #[derive(Debug)]
    struct ConvQuantizeConfig;

    impl QuantizeConfig for ConvQuantizeConfig {
        fn weight_quantizer(&self, weight: &str) -> Option<Arc<dyn QatQuantizer>> {
            // Use 4-bits to quantize weights instead of 8.
            (weight == "kernel").then(|| Arc::new(LastValueQuantizer::new(4, true, true, true)) as Arc<dyn QatQuantizer>)
        }

        fn activation_quantizer(&self) -> Option<Arc<dyn QatQuantizer>> {
            None // Don't quantize the activation.
        }

        fn output_quantizer(&self) -> Option<Arc<dyn QatQuantizer>> {
            None
        }
    }

    #[test]
    fn a_custom_quantize_config_for_a_layer() {
        reset_names();
        let model = quantize_annotate_model(
            Sequential::new()
                .add(Input::new(&[8, 8, 1]))
                // Quantize Conv2D with custom config.
                .add(quantize_annotate_layer(QuantConv2D::new(4, 3), Some(Arc::new(ConvQuantizeConfig))))
                // Other layers get quantized with default config.
                .add(ActivationLayer::new("relu"))
                .add(Flatten::new())
                .add(QuantDense::new(3).activation("softmax")),
        );
        let quantized_model = quantize_apply(model, Scheme::default_8bit()).unwrap();
        let built = quantized_model.build(1, Mode::Training).unwrap();
        let quantized: Vec<(&str, u32)> = fake_quantized(&built.network.ctx).iter().map(|(n, q, _)| (n.as_str(), q.num_bits())).collect();
        assert_eq!(quantized, [("quant_conv2d/kernel", 4), ("quant_dense/kernel", 8)]);
        let per_axis = built.network.ctx.weights.iter().find(|w| w.name == "quant_conv2d/kernel_min").unwrap();
        assert_eq!(built.graph().value(per_axis.variable).shape.dims(), [4], "per_axis: one range per filter");
        assert!(!has(&built, "quant_conv2d/post_activation_min") && has(&built, "activation/output_min"));
        fit(quantized_model, &samples(&[8, 8, 1], 8, 3), 1, 4);
    }

    /// TF-MOT's `FixedRangeQuantizer`: values clipped to a range held in two non-trainable
    /// weights made when the quantizer is built.
    #[derive(Debug)]
    struct FixedRangeQuantizer;

    impl QatQuantizer for FixedRangeQuantizer {
        fn build(&self, g: &mut Graph, ctx: &mut BuildContext, _shape: &bitgrad::Shape, layer: &str, tensor: &str) -> Result<Vec<ValueId>> {
            // Create any variables needed by your quantizer.
            let mut weight = |end: &str, value: f32| -> Result<ValueId> {
                let name = format!("{tensor}_{end}");
                let spec = WeightSpec { trainable: false, ..WeightSpec::plain(layer, &name, [1], Initializer::Constant(value)) };
                Ok(add_weight(g, ctx, spec)?.0)
            };
            Ok(vec![weight("min", -1.0)?, weight("max", 1.0)?])
        }

        fn apply(&self, g: &mut Graph, _ctx: &mut BuildContext, x: ValueId, state: &[ValueId]) -> Result<ValueId> {
            let above_min = g.binary(BinaryOp::Max, x, state[0])?;
            g.binary(BinaryOp::Min, above_min, state[1])
        }

        fn num_bits(&self) -> u32 {
            32
        }
    }

    /// The second `ConvQuantizeConfig`: FixedRangeQuantizer instead of the default quantizer.
    #[derive(Debug)]
    struct FixedRangeConvQuantizeConfig;

    impl QuantizeConfig for FixedRangeConvQuantizeConfig {
        fn weight_quantizer(&self, weight: &str) -> Option<Arc<dyn QatQuantizer>> {
            (weight == "kernel").then(|| Arc::new(FixedRangeQuantizer) as Arc<dyn QatQuantizer>)
        }

        fn activation_quantizer(&self) -> Option<Arc<dyn QatQuantizer>> {
            None
        }

        fn output_quantizer(&self) -> Option<Arc<dyn QatQuantizer>> {
            None
        }
    }

    #[test]
    fn a_custom_quantization_algorithm() {
        reset_names();
        let conv = || QuantConv2D::new(1, 3).kernel_initializer(Initializer::Constant(3.0)).use_bias(false);
        let ones = HostTensor::f32([1, 3, 3, 1], vec![1.0; 9]).unwrap();
        let float = Sequential::new().add(Input::new(&[3, 3, 1])).add(conv());
        assert_eq!(run(&float, &ones, &mut ParamStore::new()).as_f32().unwrap(), [27.0]);
        reset_names();
        let annotated = Sequential::new()
            .add(Input::new(&[3, 3, 1]))
            .add(quantize_annotate_layer(conv(), Some(Arc::new(FixedRangeConvQuantizeConfig))));
        let quantized = quantize_apply(annotated, Scheme::default_8bit()).unwrap();
        assert_eq!(run(&quantized, &ones, &mut ParamStore::new()).as_f32().unwrap(), [9.0], "the kernel clipped to [-1, 1]");
        let built = quantized.build(1, Mode::Inference).unwrap();
        let range = built.network.ctx.weights.iter().find(|w| w.name == "quant_conv2d/kernel_min").unwrap();
        assert!(!range.trainable);
    }

    /// TF-MOT's `MyLayer`, a custom layer with a kernel: `y = x @ kernel`.
    struct MyLayer {
        name: String,
        units: usize,
        initializer: Initializer,
    }

    impl MyLayer {
        fn new(units: usize, initializer: Initializer) -> Self {
            MyLayer { name: bitgrad::layers::unique_name("MyLayer"), units, initializer }
        }
    }

    impl Layer for MyLayer {
        fn name(&self) -> &str {
            &self.name
        }

        fn build(&self, g: &mut Graph, x: ValueId, ctx: &mut BuildContext) -> Result<ValueId> {
            let k = *g.value(x).shape.dims().last().unwrap();
            let (_, kernel) = add_weight(g, ctx, WeightSpec::plain(&self.name, "kernel", [k, self.units], self.initializer))?;
            g.matmul(x, kernel)
        }
    }

    /// TF-MOT's `MyLayerQuantizeConfig`.
    #[derive(Debug)]
    struct MyLayerQuantizeConfig;

    impl QuantizeConfig for MyLayerQuantizeConfig {
        fn weight_quantizer(&self, weight: &str) -> Option<Arc<dyn QatQuantizer>> {
            (weight == "kernel").then(|| Arc::new(LastValueQuantizer::new(8, false, true, true)) as Arc<dyn QatQuantizer>)
        }

        fn activation_quantizer(&self) -> Option<Arc<dyn QatQuantizer>> {
            None
        }

        fn output_quantizer(&self) -> Option<Arc<dyn QatQuantizer>> {
            None
        }
    }

    #[test]
    fn quantize_a_custom_layer() {
        reset_names();
        let model = quantize_annotate_model(
            Sequential::new()
                .add(Input::new(&[4]))
                // Quantize layer with MyLayerQuantizeConfig.
                .add(quantize_annotate_layer(MyLayer::new(4, Initializer::GlorotUniform), Some(Arc::new(MyLayerQuantizeConfig))))
                // NoOpQuantizeConfig implies layer won't be quantized.
                .add(quantize_annotate_layer(MyLayer::new(1, Initializer::Constant(1.0)), Some(Arc::new(NoOpQuantizeConfig)))),
        );
        let quantized_model = quantize_apply(model, Scheme::default_8bit()).unwrap();
        // In training the kernel's range is its own [-max|k|, max|k|]: 8 bits, narrow range.
        let built = quantized_model.build(4, Mode::Training).unwrap();
        assert!(
            has(&built, "my_layer/kernel_min") && !weight_names(&built).iter().any(|n| n.starts_with("my_layer_1/") && n.contains("_m"))
        );
        let mut params = ParamStore::new();
        let mut plan = Plan::new(&Device::cpu(), built.graph(), &built.outputs, &mut params).unwrap();
        let eye: Vec<f32> = (0..16).map(|i| if i % 5 == 0 { 1.0 } else { 0.0 }).collect();
        plan.feed("input", &HostTensor::f32([4, 4], eye).unwrap()).unwrap();
        plan.run().unwrap();
        let y = plan.fetch(built.outputs[0]).unwrap().as_f32().unwrap().to_vec();
        let k = params.get("my_layer/kernel").unwrap().download().unwrap().as_f32().unwrap().to_vec();
        let step = k.iter().fold(0f32, |m, v| m.max(v.abs())) as f64 / 127.0;
        // One-hot rows through the float second layer (a column of ones): the row sums of the
        // fake-quantized kernel, each a whole number of steps.
        let want: Vec<f64> = k.chunks(4).map(|row| row.iter().map(|v| (*v as f64 / step).round() * step).sum()).collect();
        assert_close("row sums of the 8-bit kernel", &y, &want, 1e-5);
        let float: Vec<f64> = k.chunks(4).map(|row| row.iter().map(|v| *v as f64).sum()).collect();
        assert!(y.iter().zip(&float).any(|(a, f)| (*a as f64 - f).abs() > 1e-4), "quantized, not float: {y:?} vs {float:?}");
    }
}

/// The forms docs/PORTING.md's tables give for Keras' and Larq's training names, as written
/// there: CaseOptimizer with Bop, a HyperparameterScheduler, metrics_scope, validation data,
/// EarlyStopping, ModelCheckpoint, TensorBoard, the weights API and the summary's forms.
mod tables {
    use super::*;
    use bitgrad::train::callbacks::shared;
    use bitgrad::train::{Every, HyperparameterScheduler, UpdateFreq};

    #[test]
    fn the_training_names_work_as_the_tables_write_them() {
        let dir = std::env::temp_dir().join(format!("bitgrad-larq-docs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        reset_names();
        let model = metrics_scope(&["flip_ratio"], user_guide::sequential).unwrap();
        let summary = model.summary().unwrap();
        assert!(summary.table_with(false).len() < summary.to_string().len() && summary.table() == summary.to_string());
        let bop = Bop { threshold: Schedule::Constant(1e-7), gamma: Schedule::Constant(1e-3), ..Bop::new() };
        let optimizer = CaseOptimizer::new(vec![(Arc::new(Bop::is_binary_variable), Arc::new(bop))], Some(Arc::new(Adam::new(0.01))));
        let mut trainer = model.compile_on(&Device::cpu(), optimizer, "sparse_categorical_crossentropy", &["accuracy", "top_5"]).unwrap();
        let decay = Schedule::ExponentialDecay { initial: 1e-3, decay_steps: 1, decay_rate: 0.5, staircase: true };
        trainer.schedulers.push(HyperparameterScheduler::new("bop/gamma", decay, Every::Epoch));
        let tensorboard = shared(TensorBoard::new(dir.join("logs")).update_freq(UpdateFreq::Batches(2)));
        let (train, validation) = images(40).split(0.2).unwrap();
        let opts = FitOptions {
            epochs: 2,
            batch_size: 8,
            early_stopping: Some(EarlyStopping { monitor: "val_loss".into(), patience: 3, min_delta: 0.0 }),
            checkpoint: Some(ModelCheckpoint { save_best_only: false, ..ModelCheckpoint::new(dir.join("ckpt-{epoch}.safetensors")) }),
            callbacks: vec![tensorboard.clone()],
            ..FitOptions::default()
        };
        let history = trainer.fit(&train, Some(&validation), &opts).unwrap();
        let keys: Vec<&String> = history.epochs[1].values.keys().collect();
        for key in ["loss", "accuracy", "top_5", "val_loss", "val_accuracy", "flip_ratio/quant_dense/kernel"] {
            assert!(keys.iter().any(|k| *k == key), "{key}: {keys:?}");
        }
        assert!(!tensorboard.lock().unwrap().files().is_empty());
        assert!(dir.join("ckpt-1.safetensors").exists() && dir.join("ckpt-2.safetensors").exists());
        // get_weights / set_weights / save_weights / load_weights, by Keras name.
        let weights = trainer.get_weights().unwrap();
        let names: Vec<&str> = weights.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["quant_dense/kernel", "quant_dense/bias", "quant_dense_1/kernel", "quant_dense_1/bias"]);
        trainer.save_weights(&dir.join("weights.safetensors")).unwrap();
        let (name, kernel) = &weights[0];
        trainer
            .set_weights(&[(name.clone(), HostTensor::f32(kernel.shape().clone(), vec![0.0; kernel.shape().numel()]).unwrap())])
            .unwrap();
        assert!(trainer.get_weights().unwrap()[0].1.as_f32().unwrap().iter().all(|v| *v == 0.0));
        trainer.load_weights(&dir.join("weights.safetensors")).unwrap();
        assert_eq!(trainer.get_weights().unwrap()[0].1.as_f32().unwrap(), kernel.as_f32().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
