//! What a new Larq user meets first: errors that say what to do, messages written for people,
//! and Larq's idioms working where Larq users put them (issue 20's bugs).

mod common;

use std::sync::Arc;

use bitgrad::layers::{Activation, Flatten, QuantDense, QuantLayer};
use bitgrad::models::Sequential;
use bitgrad::train::optimizers::Adam;
use bitgrad::train::{Dataset, FitOptions, Loss, Metric, Trainer};
use bitgrad::Device;

fn images(n: usize) -> Dataset {
    images_of(&[28, 28], n)
}

fn images_of(shape: &[usize], n: usize) -> Dataset {
    let x = (0..n * 28 * 28).map(|i| ((i * 7919) % 255) as f32 / 255.0).collect();
    Dataset::new(shape, x, (0..n as i32).map(|i| i % 10).collect()).unwrap()
}

fn compile(model: Sequential) -> bitgrad::Result<Trainer> {
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    Trainer::compile(model, loss, Arc::new(Adam::new(1e-3)), &[Metric::Accuracy], &Device::cpu())
}

#[test]
fn a_dense_layer_on_images_without_flatten_says_to_add_flatten() {
    let model = Sequential::new()
        .named("sequential")
        .input_shape(&[28, 28])
        .add(QuantDense::new(10).named("quant_dense").activation(Activation::Softmax));
    let err = compile(model).and_then(|mut t| t.fit(&images(8), None, &FitOptions { epochs: 1, batch_size: 8, ..FitOptions::default() }));
    let msg = err.map(|_| ()).expect_err("an error").to_string();
    println!("{msg}");
    assert!(msg.contains("Flatten"), "{msg}");
    // With Flatten it trains.
    let model = Sequential::new()
        .named("sequential")
        .input_shape(&[28, 28])
        .add(Flatten::new().named("flatten"))
        .add(QuantDense::new(10).named("quant_dense").activation(Activation::Softmax));
    compile(model).unwrap().fit(&images(8), None, &FitOptions { epochs: 1, batch_size: 8, ..FitOptions::default() }).unwrap();
}

fn guide_like() -> Sequential {
    let ste = || bitgrad::quantizers::Quantizer::SteSign { clip_value: Some(1.0) };
    Sequential::new()
        .named("sequential")
        .input_shape(&[28, 28])
        .add(Flatten::new().named("flatten"))
        .add(QuantDense::new(16).named("quant_dense").kernel_quantizer(ste()))
        .add(QuantDense::new(10).named("quant_dense_1").input_quantizer(ste()).kernel_quantizer(ste()).activation(Activation::Softmax))
}

fn flip_ratios(model: Sequential) -> Vec<String> {
    let history =
        compile(model).unwrap().fit(&images(16), None, &FitOptions { epochs: 1, batch_size: 8, ..FitOptions::default() }).unwrap();
    history.epochs[0].values.keys().filter(|k| k.starts_with("flip_ratio")).cloned().collect()
}

#[test]
fn a_metrics_scope_around_model_construction_records_flip_ratios() {
    use bitgrad::train::metrics::metrics_scope;
    let expected = ["flip_ratio/quant_dense/kernel", "flip_ratio/quant_dense_1/kernel"];
    // Larq's idiom: the scope wraps building the model, and fit runs outside it.
    let model = metrics_scope(&["flip_ratio"], guide_like).unwrap();
    assert_eq!(flip_ratios(model), expected);
    // Without a scope nothing is recorded; an empty scope inside turns them off.
    assert!(flip_ratios(guide_like()).is_empty());
    let model = metrics_scope(&["flip_ratio"], || metrics_scope(&[], guide_like).unwrap()).unwrap();
    assert!(flip_ratios(model).is_empty());
    // A scope around fit still works, and a layer's own `.metrics(..)` wins over any scope.
    let model = guide_like();
    let names = metrics_scope(&["flip_ratio"], || flip_ratios(model)).unwrap();
    assert_eq!(names, expected);
    let ste = bitgrad::quantizers::Quantizer::SteSign { clip_value: Some(1.0) };
    let model = metrics_scope(&["flip_ratio"], || {
        Sequential::new()
            .named("sequential")
            .input_shape(&[28, 28])
            .add(Flatten::new().named("flatten"))
            .add(QuantDense::new(10).named("quant_dense").kernel_quantizer(ste).metrics(&[]).activation(Activation::Softmax))
    })
    .unwrap();
    assert!(flip_ratios(model).is_empty());
}

/// A tiny MNIST-format folder: `n` training and `n` test images of 28x28 with labels.
fn idx_folder(name: &str, n: usize) -> common::Scratch {
    let dir = common::scratch(name);
    let images = |n: usize| {
        let mut b = vec![0, 0, 8, 3];
        for d in [n as u32, 28, 28] {
            b.extend(d.to_be_bytes());
        }
        b.extend((0..n * 784).map(|i| (i * 31 % 251) as u8));
        b
    };
    let labels = |n: usize| {
        let mut b = vec![0, 0, 8, 1];
        b.extend((n as u32).to_be_bytes());
        b.extend((0..n).map(|i| (i % 10) as u8));
        b
    };
    for (name, bytes) in [
        ("train-images-idx3-ubyte", images(n)),
        ("train-labels-idx1-ubyte", labels(n)),
        ("t10k-images-idx3-ubyte", images(n)),
        ("t10k-labels-idx1-ubyte", labels(n)),
    ] {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    dir
}

/// `bitgrad train` of the MLP for one epoch of 64 images from `data` on the CPU, with `extra`.
fn train_cli(data: &std::path::Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec!["train", "--model", "mlp", "--epochs", "1", "--limit", "64", "--device", "cpu", "--data", data.to_str().unwrap()];
    args.extend(extra);
    common::bitgrad(&args)
}

#[test]
fn the_train_command_writes_for_people() {
    let data = idx_folder("usability-idx-people", 64);
    let (ok, out, err) = train_cli(&data, &[]);
    assert!(ok, "{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains("mlp (larq recipe), 1 epoch, batch 64, optimizer Adam (learning_rate 0.001, beta_1 0.9, beta_2 0.999, epsilon 1e-7)"),
        "{all}"
    );
    assert!(all.contains("after 1 epoch;"), "{all}");
    for debug in ["{", "Constant(", "name:", "1 epochs"] {
        assert!(!all.contains(debug), "Debug output `{debug}` in:\n{all}");
    }
    // No epochs is refused as such, not as a resumed state.
    let (ok, _, err) = common::bitgrad(&["train", "--epochs", "0", "--limit", "64", "--device", "cpu", "--data", data.to_str().unwrap()]);
    assert!(!ok && err.contains("--epochs") && err.contains("at least 1") && !err.contains("resumed"), "{err}");
}

#[test]
fn the_train_command_trains_a_zoo_architecture_from_its_keras_json_on_cifar10_batches() {
    let data = common::cifar10_folder("usability-cifar", 16);
    let out = common::scratch("usability-cifar-out");
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zoo/quicknet_small.json");
    let history = out.join("h.csv");
    let device = if common::gpu().is_some() { "gpu" } else { "cpu" };
    let args = ["train", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--device", device];
    let more = ["--epochs", "3", "--batch-size", "8", "--limit", "32", "--verbose", "2", "--history", history.to_str().unwrap()];
    let (ok, stdout, err) = common::bitgrad(&[&args[..], &more[..]].concat());
    assert!(ok, "{err}");
    assert!(err.contains("(32 train, 16 test)") && err.contains("model: quicknet_small (larq recipe), 3 epochs, batch 8"), "{err}");
    assert!(stdout.contains("quicknet_small (larq recipe): test accuracy") && stdout.contains("images/s training on"), "{stdout}");
    let csv = std::fs::read_to_string(out.join("h-quicknet_small.csv")).unwrap();
    let losses: Vec<f64> = csv.lines().skip(1).map(|l| l.split(',').nth(2).unwrap().parse().unwrap()).collect();
    assert!(csv.starts_with("epoch,accuracy,loss,"), "{csv}");
    assert!(losses.len() == 3 && losses[2] < losses[0], "the loss falls: {losses:?}");
    // A JSON that is no model, and a model whose input the data does not fit, are named errors.
    let mnist = idx_folder("usability-cifar-mnist", 8);
    let (ok, _, err) =
        common::bitgrad(&["train", "--model", model.to_str().unwrap(), "--data", mnist.to_str().unwrap(), "--device", "cpu"]);
    assert!(!ok && err.contains("[28, 28, 1]") && err.contains("[32, 32, 3]"), "{err}");
    let (ok, _, err) = common::bitgrad(&["train", "--model", "nope.txt", "--device", "cpu"]);
    assert!(!ok && err.contains("`nope.txt` is not one of mlp, cnn, both, nor a Keras model's .json file"), "{err}");
}

#[test]
fn optimizers_and_schedules_describe_themselves_for_people() {
    use bitgrad::train::optimizers::{Bop, CaseOptimizer, Optimizer, Predicate, Sgd};
    use bitgrad::train::Schedule;
    let adam = Adam::new(Schedule::CosineDecay { initial: 0.01, decay_steps: 20, alpha: 0.01 });
    assert_eq!(
        adam.describe(),
        "Adam (learning_rate CosineDecay from 0.01 over 20 steps to 0.01 of it, beta_1 0.9, beta_2 0.999, epsilon 1e-7)"
    );
    let adamw = Adam { weight_decay: Schedule::Constant(1e-4), ..Adam::new(1e-3) };
    assert!(
        adamw.describe().starts_with("AdamW (learning_rate 0.001,") && adamw.describe().ends_with("weight_decay 1e-4)"),
        "{}",
        adamw.describe()
    );
    let sgd = Sgd { momentum: Schedule::Constant(0.9), nesterov: true, ..Sgd::new(0.01) };
    assert_eq!(sgd.describe(), "SGD (learning_rate 0.01, momentum 0.9, nesterov)");
    let binary: Predicate = Arc::new(Bop::is_binary_variable);
    let case = CaseOptimizer::new(vec![(binary, Arc::new(Bop::new()))], Some(Arc::new(Adam::new(1e-3))));
    assert_eq!(
        case.describe(),
        "CaseOptimizer (Bop (threshold 1e-8, gamma 1e-4) for the variables its predicate claims; Adam (learning_rate 0.001, beta_1 0.9, beta_2 0.999, epsilon 1e-7) for the rest)"
    );
    let piecewise = Schedule::PiecewiseConstant { boundaries: vec![10, 20], values: vec![0.1, 0.01, 0.001] };
    assert_eq!(piecewise.to_string(), "PiecewiseConstantDecay 0.1, 0.01 after step 10, 0.001 after step 20");
    let exp = Schedule::ExponentialDecay { initial: 0.1, decay_steps: 1, decay_rate: 0.5, staircase: true };
    assert_eq!(exp.to_string(), "ExponentialDecay from 0.1, x0.5 every 1 step (staircase)");
}

#[test]
fn errors_print_their_message_from_main() {
    // `fn main() -> bitgrad::Result<()>` prints the error's Debug: it must be the message.
    let model = Sequential::new().named("sequential").input_shape(&[28, 28]).add(QuantDense::new(0).named("quant_dense"));
    let err = bitgrad::models::build(&model, 1, bitgrad::layers::Mode::Inference).unwrap_err();
    assert_eq!(format!("{err:?}"), err.to_string());
    assert!(err.to_string().starts_with("layer `quant_dense` (QuantDense): "), "{err}");
}

#[test]
fn unknown_names_are_quoted_alone_listed_and_the_closest_suggested() {
    use bitgrad::quantizers::Quantizer;
    let err = Quantizer::from_name("ste_sgn").unwrap_err().to_string();
    assert!(err.starts_with("unknown quantizer `ste_sgn`: did you mean `ste_sign`? (known: ste_sign, "), "{err}");
    let err = bitgrad::layers::Activation::from_name("rel").unwrap_err().to_string();
    assert!(err.starts_with("unknown activation `rel`: did you mean `relu`? (known: linear, relu,"), "{err}");
    let err = Loss::from_name("sparse_categorical_crossentopy").unwrap_err().to_string();
    assert!(err.contains("`sparse_categorical_crossentopy`: did you mean `sparse_categorical_crossentropy`?"), "{err}");
    // Nothing close: the list alone.
    let err = Metric::from_name("precision").unwrap_err().to_string();
    assert_eq!(err, "unknown metric `precision` (known: accuracy, top_k, top_N)");
}

#[test]
fn a_custom_quantizer_cannot_take_a_name_in_use() {
    use bitgrad::quantizers::CustomQuantizer;
    let wgsl = "fn forward(x: f32) -> f32 { return sign(x); }\nfn gradient(x: f32, dy: f32) -> f32 { return dy; }";
    let make = |name: &str| CustomQuantizer::new(name, 1, wgsl, f32::signum, |_, dy| dy);
    let first = make("UsabilitySign").unwrap();
    let err = make("UsabilitySign").unwrap_err().to_string();
    assert!(err.contains("`UsabilitySign` is already the name of a quantizer"), "{err}");
    assert!(std::sync::Arc::ptr_eq(&bitgrad::quantizers::custom::by_name("UsabilitySign").unwrap(), &first), "the first stays");
    for builtin in ["SteSign", "ste_sign", "DoReFa"] {
        let err = make(builtin).unwrap_err().to_string();
        assert!(err.contains(&format!("`{builtin}` is already the name")), "{err}");
    }
}

#[test]
fn keras_json_writes_f32_values_as_their_shortest_decimal() {
    use bitgrad::quantizers::Quantizer;
    let q = Quantizer::SteTern { threshold_value: 0.05, ternary_weight_networks: false, clip_value: Some(1.0) };
    let text = q.to_keras().to_string();
    assert!(text.contains(r#""threshold_value":0.05"#) && !text.contains("0.0500000"), "{text}");
    let model = Sequential::new().named("sequential").input_shape(&[4]).add(
        QuantDense::new(3).named("quant_dense").kernel_quantizer(q).kernel_constraint(bitgrad::constraints::WeightClip::new(1.3).unwrap()),
    );
    let json = bitgrad::io::keras::export::model_to_json(&model).unwrap();
    assert!(json.contains("0.05") && json.contains("1.3") && !json.contains("0.0500000") && !json.contains("1.299999"), "{json}");
}

/// The Larq user guide's model as a Larq user writes it in Python, line for line.
fn guide_model() -> Sequential {
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

#[test]
fn the_user_guide_model_reads_as_in_larq_and_matches_the_zoo_model() {
    use bitgrad::models::Model;
    bitgrad::layers::reset_names();
    let model = guide_model();
    let names: Vec<&str> = model.layers().iter().map(|l| l.name()).collect();
    assert_eq!(names, ["flatten", "quant_dense", "quant_dense_1"], "Keras' automatic names");
    assert_eq!(model.name(), "sequential");
    // The same summary as the zoo's model, whose summary is Larq's to the byte (tests/cli.rs).
    assert_eq!(model.summary().unwrap().to_string(), bitgrad::models::zoo::larq_guide_mlp().summary().unwrap().table());
    // A second model in the same thread continues the count, as Keras does until clear_session.
    let again = guide_model();
    let names: Vec<&str> = again.layers().iter().map(|l| l.name()).collect();
    assert_eq!(names, ["flatten_1", "quant_dense_2", "quant_dense_3"]);
    assert_eq!(again.name(), "sequential_1");
    bitgrad::layers::reset_names();
    // An explicit name gives the automatic one back.
    let named = QuantDense::new(4).named("logits");
    assert_eq!((named.name.as_str(), QuantDense::new(4).name.as_str()), ("logits", "quant_dense"));
}

#[test]
fn larqs_class_names_construct_the_layers() {
    use bitgrad::layers::*;
    reset_names();
    let conv = QuantConv2D::new(64, (3, 3)).padding("same").strides(2).pad_values(1.0).input_quantizer("ste_sign");
    assert_eq!((conv.name.as_str(), conv.kernel_size.clone(), conv.strides.clone()), ("quant_conv2d", vec![3, 3], vec![2, 2]));
    assert_eq!(conv.padding, bitgrad::Padding::Same);
    assert_eq!(QuantConv1D::new(8, 5).kernel_size, vec![5]);
    assert_eq!(QuantConv3D::new(8, 3).name, "quant_conv3d");
    let dw = QuantDepthwiseConv2D::new(3).depthwise_quantizer("ste_sign").depth_multiplier(2).use_bias(false);
    assert_eq!((dw.name.as_str(), dw.opts.depth_multiplier), ("quant_depthwise_conv2d", 2));
    assert_eq!(QuantSeparableConv2D::new(16, 3).pointwise_quantizer("ste_sign").name, "quant_separable_conv2d");
    assert_eq!(QuantConv2DTranspose::new(16, 3).name, "quant_conv2d_transpose");
    assert_eq!(QuantLocallyConnected2D::new(4, 3).name, "quant_locally_connected2d");
    assert_eq!(MaxPooling2D::new(2).name, "max_pooling2d");
    assert_eq!(AveragePooling1D::new(3).strides, vec![3]);
    assert_eq!(GlobalAveragePooling2D::new().name, "global_average_pooling2d");
    assert_eq!(BatchNormalization::new().scale(false).momentum(0.9).name, "batch_normalization");
    assert_eq!((Add::new().name, Concatenate::axis(1).name), ("add".to_string(), "concatenate".to_string()));
    assert_eq!((Dropout::new(0.5).seed(3).seed, ActivationLayer::new("relu").activation), (3, Activation::Relu));
    assert_eq!(QuantConv2DTranspose::new(4, 3).output_padding(1).output_padding, Some(vec![1, 1]));
    assert_eq!(QuantLocallyConnected1D::new(4, 3).implementation(2).implementation, 2);
    let err =
        bitgrad::models::build(&Sequential::new().add(ActivationLayer::new("rellu").input_shape(&[4])), 1, Mode::Inference).unwrap_err();
    assert!(err.to_string().contains("invalid `activation`: unknown activation `rellu`: did you mean `relu`?"), "{err}");
    // An unknown name is the layer's error when it is built, with the closest name.
    let model = Sequential::new().add(Flatten::new().input_shape(&[4])).add(QuantDense::new(2).kernel_quantizer("ste_sgn"));
    let err = bitgrad::models::build(&model, 1, Mode::Inference).unwrap_err().to_string();
    assert_eq!(
        err.split(" (known").next().unwrap(),
        "layer `quant_dense` (QuantDense): invalid `kernel_quantizer`: unknown quantizer `ste_sgn`: did you mean `ste_sign`?"
    );
    let err =
        bitgrad::models::build(&Sequential::new().add(MaxPooling2D::new(2).padding("sam").input_shape(&[4, 4, 1])), 1, Mode::Inference)
            .unwrap_err()
            .to_string();
    assert!(err.contains("invalid `padding`: unknown padding `sam`: did you mean `same`?"), "{err}");
    // A model without an input shape says how to give one.
    let err = bitgrad::models::build(&Sequential::new().add(QuantDense::new(2)), 1, Mode::Inference).unwrap_err().to_string();
    assert!(err.contains("has no input shape") && err.contains("input_shape"), "{err}");
    // `Input` first sets the shape and is no layer.
    let model = Sequential::new().add(bitgrad::models::Input::new(&[4])).add(QuantDense::new(2));
    assert_eq!(model.layers().len(), 1);
    bitgrad::models::build(&model, 1, Mode::Inference).unwrap();
}

#[test]
fn larqs_warnings_are_returned_by_build_and_compile_and_printed_by_the_command_line() {
    use bitgrad::train::Compile;
    let model = || {
        Sequential::new().add(Flatten::new().input_shape(&[28, 28])).add(QuantDense::new(10).kernel_quantizer("ste_sign").named("binary"))
    };
    let starved = "layer `binary`: Using a binary weight quantizer without setting `kernel_constraint` may result in starved weights";
    let built = bitgrad::models::build(&model(), 1, bitgrad::layers::Mode::Inference).unwrap();
    assert!(built.warnings().iter().any(|w| w.starts_with(starved)), "{:?}", built.warnings());
    let trainer = model().compile_on(&Device::cpu(), "adam", "sparse_categorical_crossentropy", &["accuracy"]).unwrap();
    assert!(trainer.warnings().iter().any(|w| w.starts_with(starved)), "{:?}", trainer.warnings());
    // With the constraint there is nothing to say.
    let clipped = Sequential::new()
        .add(Flatten::new().input_shape(&[28, 28]))
        .add(QuantDense::new(10).kernel_quantizer("ste_sign").kernel_constraint("weight_clip"));
    assert!(clipped.compile_on(&Device::cpu(), "adam", "sparse_categorical_crossentropy", &["accuracy"]).unwrap().warnings().is_empty());
    // The command line prints them.
    let dir = common::scratch("usability-warnings");
    let json = dir.join("m.json");
    std::fs::write(&json, bitgrad::io::keras::export::model_to_json(&model()).unwrap()).unwrap();
    let (ok, _, err) = common::bitgrad(&["summary", json.to_str().unwrap()]);
    assert!(ok && err.contains(&format!("warning: {starved}")), "{err}");
    // Names in compile resolve as Keras' do, with the usual errors.
    let err =
        model().compile_on(&Device::cpu(), "adan", "sparse_categorical_crossentropy", &["accuracy"]).map(|_| ()).unwrap_err().to_string();
    assert!(err.starts_with("unknown optimizer `adan`: did you mean `adam`?"), "{err}");
}

#[test]
fn train_writes_tensorboard_files_and_follows_verbose() {
    let data = idx_folder("usability-idx-tensorboard", 64);
    let logs = common::scratch("usability-tensorboard");
    let (ok, _, err) = train_cli(&data, &["--tensorboard", logs.to_str().unwrap(), "--verbose", "2"]);
    assert!(ok, "{err}");
    let files: Vec<_> =
        std::fs::read_dir(logs.join("mlp").join("train")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert!(files.len() == 1 && files[0].starts_with("events.out.tfevents."), "{files:?}");
    assert!(err.contains("Epoch 1/1 - ") && !err.contains('\r'), "one line per epoch at verbose 2: {err}");
    let (ok, _, err) = train_cli(&data, &["--verbose", "0"]);
    assert!(ok && !err.contains("Epoch 1/1"), "{err}");
}

#[test]
fn weights_are_got_set_saved_and_loaded_by_keras_name_and_predict_is_shaped() {
    use bitgrad::train::Compile;
    let model = || {
        bitgrad::layers::reset_names();
        guide_model().named("m")
    };
    let mut a = model().compile_on(&Device::cpu(), "adam", "sparse_categorical_crossentropy", &["accuracy"]).unwrap();
    let names: Vec<String> = a.get_weights().unwrap().into_iter().map(|(n, _)| n).collect();
    assert!(names.iter().all(|n| !n.contains("adam")), "no optimizer slots: {names:?}");
    assert_eq!(names, ["quant_dense/kernel", "quant_dense/bias", "quant_dense_1/kernel", "quant_dense_1/bias"].map(String::from));
    // Samples of another shape than the model's input are refused by name.
    let err = a.fit(&images(16), None, &FitOptions { epochs: 1, batch_size: 8, ..FitOptions::default() }).unwrap_err().to_string();
    assert!(err.contains("the training set has samples of shape [28, 28], but the model's input `input` takes [28, 28, 1]"), "{err}");
    a.fit(&images_of(&[28, 28, 1], 16), None, &FitOptions { epochs: 1, batch_size: 8, ..FitOptions::default() }).unwrap();
    let dir = common::scratch("usability-weights");
    let file = dir.join("w.safetensors");
    a.save_weights(&file).unwrap();
    let mut b = model().compile_on(&Device::cpu(), "adam", "sparse_categorical_crossentropy", &["accuracy"]).unwrap();
    let x = images_of(&[28, 28, 1], 4);
    assert_ne!(a.predict(&x, 4).unwrap(), b.predict(&x, 4).unwrap(), "different weights before loading");
    b.load_weights(&file).unwrap();
    let p = b.predict(&x, 4).unwrap();
    assert_eq!(p.shape().dims(), [4, 10]);
    assert_eq!(p, a.predict(&x, 4).unwrap(), "the same model after loading");
    // set_weights by name, checked.
    let mut w = a.get_weights().unwrap();
    let err = b.set_weights(&[("nope/kernel".to_string(), w[0].1.clone())]).unwrap_err().to_string();
    assert!(err.contains("nope/kernel"), "{err}");
    let (name, t) = w.remove(1);
    let wrong = bitgrad::HostTensor::f32([1], vec![0.0]).unwrap();
    let err = b.set_weights(&[(name.clone(), wrong)]).unwrap_err().to_string();
    assert!(err.contains(&name) && err.contains("expects"), "{err}");
    b.set_weights(&[(name, t)]).unwrap();
}

#[test]
fn the_summary_prints_larqs_tables_with_and_without_macs() {
    use bitgrad::models::Model;
    bitgrad::layers::reset_names();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/summary");
    let summary = guide_model().summary().unwrap();
    assert_eq!(summary.to_string(), std::fs::read_to_string(fixtures.join("guide_mlp.txt")).unwrap());
    assert_eq!(summary.table_with(false), std::fs::read_to_string(fixtures.join("guide_mlp_no_macs.txt")).unwrap());
}

#[test]
fn data_sets_read_numpy_files() {
    let dir = common::scratch("usability-npy");
    let (x, y) = (dir.join("x.npy"), dir.join("y.npy"));
    bitgrad::io::npy::write(&x, &bitgrad::HostTensor::f32([3, 2, 2], (0..12).map(|i| i as f32).collect()).unwrap()).unwrap();
    bitgrad::io::npy::write(&y, &bitgrad::HostTensor::f32([3, 1], vec![2.0, 0.0, 1.0]).unwrap()).unwrap();
    let d = Dataset::from_npy(&x, &y).unwrap();
    assert_eq!((d.sample_shape.clone(), d.y.clone(), d.x.len()), (vec![2, 2], vec![2, 0, 1], 12));
    bitgrad::io::npy::write(&y, &bitgrad::HostTensor::f32([3], vec![0.5, 0.0, 1.0]).unwrap()).unwrap();
    let err = Dataset::from_npy(&x, &y).unwrap_err().to_string();
    assert!(err.contains("y.npy") && err.contains("whole class numbers"), "{err}");
    bitgrad::io::npy::write(&y, &bitgrad::HostTensor::f32([2], vec![0.0, 1.0]).unwrap()).unwrap();
    let err = Dataset::from_npy(&x, &y).unwrap_err().to_string();
    assert!(err.contains("must be [3] or [3, 1] for 3 samples"), "{err}");
}

#[test]
fn each_command_has_its_own_help() {
    let (_, run, _) = common::bitgrad(&["run", "--help"]);
    let (_, grad, _) = common::bitgrad(&["grad", "--help"]);
    let first = |s: &str| s.lines().next().unwrap_or_default().to_string();
    assert_ne!(first(&run), first(&grad));
    assert!(first(&grad).starts_with("Gradients"), "{grad}");
}

#[test]
fn an_annotated_first_layer_passes_on_its_input_shape_and_padding_names_take_any_case() {
    use bitgrad::layers::*;
    let layer = QuantConv2D::new(4, 3).padding("SAME").input_shape(&[6, 6, 1]);
    let model = Sequential::new().add(bitgrad::qat::quantize_annotate_layer(layer, None)).add(Flatten::new());
    let built = bitgrad::models::build(&model, 1, Mode::Inference).unwrap();
    assert_eq!(built.graph().value(built.outputs[0]).shape.dims(), [1, 6 * 6 * 4]);
}

#[test]
fn a_sequential_without_an_input_shape_takes_its_datas_at_the_first_fit() {
    use bitgrad::train::Compile;
    // The user guide's first model, as Keras has it: no input shape anywhere.
    let model =
        Sequential::new().add(Flatten::new()).add(QuantDense::new(16).activation("relu")).add(QuantDense::new(10).activation("softmax"));
    let err = bitgrad::models::build(&model, 1, bitgrad::layers::Mode::Inference).unwrap_err().to_string();
    assert!(err.contains("has no input shape"), "{err}");
    let mut trainer = model.compile_on(&Device::cpu(), "adam", "sparse_categorical_crossentropy", &["accuracy"]).unwrap();
    let history =
        trainer.fit(&images_of(&[28, 28, 1], 16), None, &FitOptions { epochs: 1, batch_size: 8, ..FitOptions::default() }).unwrap();
    assert!(history.epochs[0].values["loss"].is_finite());
    assert_eq!(trainer.predict(&images_of(&[28, 28, 1], 2), 2).unwrap().shape().dims(), [2, 10]);
    // Once built, other data must fit the shape it took.
    let err = trainer.fit(&images(8), None, &FitOptions { epochs: 1, batch_size: 8, ..FitOptions::default() }).unwrap_err().to_string();
    assert!(err.contains("takes [28, 28, 1]"), "{err}");
}

#[test]
fn fit_takes_float_targets_for_the_losses_that_read_them() {
    use bitgrad::train::Compile;
    // The same names, so the same initial weights (initializers are seeded by weight name).
    let model = || {
        bitgrad::layers::reset_names();
        Sequential::new()
            .add(Flatten::new().input_shape(&[28, 28]))
            .add(QuantDense::new(10).kernel_quantizer("ste_sign").kernel_constraint("weight_clip").activation("softmax"))
    };
    let data = images(16);
    let one_hot: Vec<f32> = data.y.iter().flat_map(|&c| (0..10).map(move |k| if k == c { 1.0 } else { 0.0 })).collect();
    let soft = Dataset::with_targets(&[28, 28], data.x.clone(), &[10], one_hot.iter().map(|&v| 0.9 * v + 0.01).collect()).unwrap();
    let hard = Dataset::with_targets(&[28, 28], data.x.clone(), &[10], one_hot).unwrap();
    let opts = FitOptions { epochs: 1, batch_size: 8, shuffle_seed: None, ..FitOptions::default() };
    // One-hot float targets train exactly as the integer labels they encode.
    let by_labels =
        model().compile_on(&Device::cpu(), "adam", "categorical_crossentropy", &["accuracy"]).unwrap().fit(&data, None, &opts).unwrap();
    let by_targets =
        model().compile_on(&Device::cpu(), "adam", "categorical_crossentropy", &["accuracy"]).unwrap().fit(&hard, None, &opts).unwrap();
    assert_eq!(by_labels.epochs[0].values, by_targets.epochs[0].values);
    // Soft targets train too, and with a validation split.
    let mut t = model().compile_on(&Device::cpu(), "adam", "categorical_crossentropy", &["accuracy"]).unwrap();
    let h = t.fit(&soft, None, &FitOptions { validation_split: 0.25, ..opts.clone() }).unwrap();
    assert!(h.epochs[0].values["val_loss"].is_finite());
    // A loss that takes labels says so; targets of another shape than the output are named.
    let mut t = model().compile_on(&Device::cpu(), "adam", "sparse_categorical_crossentropy", &["accuracy"]).unwrap();
    let err = t.fit(&soft, None, &opts).unwrap_err().to_string();
    assert!(err.contains("sparse_categorical_crossentropy takes one integer class label per sample"), "{err}");
    let wrong = Dataset::with_targets(&[28, 28], data.x.clone(), &[5], vec![0.2; 16 * 5]).unwrap();
    let mut t = model().compile_on(&Device::cpu(), "adam", "categorical_crossentropy", &[]).unwrap();
    let err = t.fit(&wrong, None, &opts).unwrap_err().to_string();
    assert!(err.contains("targets of shape [5] per sample, but the model's output is [10]"), "{err}");
    assert!(Dataset::with_targets(&[28, 28], data.x, &[10], vec![0.0; 3]).is_err());
}

#[test]
fn keras_class_names_and_frozen_layers() {
    use bitgrad::layers::*;
    use bitgrad::models::Model;
    use bitgrad::train::Compile;
    reset_names();
    let (d, c, d2) = (Dense::new(4), Conv2D::new(8, 3), Dense::new(2));
    assert_eq!((d.name.as_str(), c.name.as_str(), d2.name.as_str()), ("dense", "conv2d", "dense_1"));
    assert_eq!(QuantDense::new(3).name, "quant_dense", "a Dense gives the QuantDense name back");
    assert_eq!(
        (DepthwiseConv2D::new(3).name, SeparableConv2D::new(4, 3).name),
        ("depthwise_conv2d".to_string(), "separable_conv2d".to_string())
    );
    assert_eq!(
        (Conv2DTranspose::new(4, 3).name, GlobalAveragePooling2D::new().name),
        ("conv2d_transpose".to_string(), "global_average_pooling2d".to_string())
    );
    assert_eq!(GlobalPooling::new(PoolingKind::Max).name, "global_max_pooling", "the named constructor gave its automatic name back");
    // A frozen layer keeps its weights through training and counts as non-trainable.
    reset_names();
    let model = Sequential::new()
        .add(Flatten::new().input_shape(&[28, 28]))
        .add(Dense::new(16).trainable(false))
        .add(Dense::new(10).activation("softmax"));
    let summary = model.summary().unwrap();
    assert_eq!((summary.trainable_params, summary.non_trainable_params), (16 * 10 + 10, 28 * 28 * 16 + 16));
    let mut t = model.compile_on(&Device::cpu(), "adam", "sparse_categorical_crossentropy", &[]).unwrap();
    let before = t.get_weights().unwrap();
    t.fit(&images(16), None, &FitOptions { epochs: 1, batch_size: 8, ..FitOptions::default() }).unwrap();
    let after = t.get_weights().unwrap();
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a == b, name.starts_with("dense/"), "{name}: frozen weights stay, the others train");
    }
}

#[test]
fn depthwise_and_separable_layers_take_every_bias_argument() {
    use bitgrad::layers::*;
    use bitgrad::train::Compile;
    reset_names();
    let model = || {
        Sequential::new()
            .add(
                QuantDepthwiseConv2D::new(3)
                    .bias_initializer("ones")
                    .bias_constraint("weight_clip")
                    .bias_regularizer("l2")
                    .input_shape(&[5, 5, 2]),
            )
            .add(QuantSeparableConv2D::new(4, 3).bias_initializer("ones").activity_regularizer("l1"))
            .add(Flatten::new())
            .add(Dense::new(3).activation("softmax"))
    };
    let mut t = model().compile_on(&Device::cpu(), "adam", "sparse_categorical_crossentropy", &[]).unwrap();
    let weights = t.get_weights().unwrap();
    for layer in ["quant_depthwise_conv2d", "quant_separable_conv2d"] {
        let (_, bias) = weights.iter().find(|(n, _)| *n == format!("{layer}/bias")).unwrap();
        assert!(bias.as_f32().unwrap().iter().all(|&b| b == 1.0), "{layer}: ones");
    }
    let json = bitgrad::io::keras::export::model_to_json(&model()).unwrap();
    assert!(
        json.contains(r#""bias_initializer":{"class_name":"Ones""#) && json.contains(r#""bias_constraint":{"class_name":"WeightClip""#),
        "{json}"
    );
    let dir = common::scratch("usability-depthwise");
    std::fs::write(dir.join("m.json"), &json).unwrap();
    let back = bitgrad::io::keras::read_model(&dir.join("m.json")).unwrap();
    assert_eq!(bitgrad::io::keras::export::model_to_json(&back).unwrap(), json, "the Keras JSON round trip keeps them");
}

#[test]
fn frozen_depthwise_and_separable_layers_count_as_non_trainable() {
    use bitgrad::layers::*;
    use bitgrad::models::Model;
    let model = Sequential::new()
        .add(QuantDepthwiseConv2D::new(3).trainable(false).input_shape(&[5, 5, 2]))
        .add(QuantSeparableConv2D::new(4, 3).trainable(false))
        .add(Flatten::new())
        .add(Dense::new(3));
    let s = model.summary().unwrap();
    // depthwise 3x3x2 + bias 2; separable depthwise 3x3x2 + pointwise 2x4 + bias 4; dense 4x3 + 3.
    assert_eq!((s.non_trainable_params, s.trainable_params), (9 * 2 + 2 + 9 * 2 + 2 * 4 + 4, 4 * 3 + 3));
}

#[test]
fn a_frozen_batch_normalization_normalizes_with_its_moving_statistics_and_keeps_them() {
    use bitgrad::layers::*;
    use bitgrad::train::Compile;
    reset_names();
    let model = Sequential::new()
        .add(Flatten::new().input_shape(&[28, 28]))
        .add(Dense::new(8))
        .add(BatchNormalization::new().trainable(false))
        .add(Dense::new(10).activation("softmax"));
    let mut t = model.compile_on(&Device::cpu(), "sgd", "sparse_categorical_crossentropy", &[]).unwrap();
    let bn =
        |w: &[(String, bitgrad::HostTensor)]| w.iter().filter(|(n, _)| n.starts_with("batch_normalization/")).cloned().collect::<Vec<_>>();
    let before = t.get_weights().unwrap();
    t.fit(&images(16), None, &FitOptions { epochs: 1, batch_size: 8, ..FitOptions::default() }).unwrap();
    let after = t.get_weights().unwrap();
    assert_eq!(bn(&before).len(), 4, "gamma, beta and the moving statistics");
    assert_eq!(bn(&before), bn(&after), "frozen: nothing of it changes in training");
    assert_ne!(before, after, "the other layers train");
}

/// A functional model of two inputs (4x4 images and 3 extra values) and two outputs: `classes`
/// (3 class probabilities) and, when `two_heads`, `values` (2 regression values). The layers
/// have fixed names, so every build has the same initial weights.
fn two_input_model(two_heads: bool) -> bitgrad::models::Functional {
    use bitgrad::layers::{Concatenate, Dense};
    let flatten = Flatten::new().named("flatten");
    let cat = Concatenate::new().named("cat");
    let trunk = Dense::new(8).activation("relu").named("trunk");
    let classes = Dense::new(3).activation("softmax").named("classes");
    let values = Dense::new(2).named("values");
    bitgrad::models::Functional::new("two", &[("image", &[4, 4, 1]), ("extra", &[3])], move |net, x| {
        let f = net.apply(&flatten, x[0])?;
        let j = net.merge(&cat, &[f, x[1]])?;
        let t = net.apply(&trunk, j)?;
        let mut out = vec![net.apply(&classes, t)?];
        if two_heads {
            out.push(net.apply(&values, t)?);
        }
        Ok(out)
    })
}

/// The blobs with a second input of 3 noisy values and, per sample, 2 regression targets (the
/// image's mean and the first extra value).
fn two_input_data(n: usize) -> (Dataset, Vec<bitgrad::train::Samples>, Vec<i32>, Vec<f32>) {
    use bitgrad::train::Samples;
    let blobs = common::blobs(n, 3);
    let extra = common::uniform(9, n * 3, 1.0);
    let targets: Vec<f32> = (0..n).flat_map(|i| [blobs.x[i * 16..(i + 1) * 16].iter().sum::<f32>() / 16.0, extra[i * 3]]).collect();
    let inputs = vec![Samples::new(&[4, 4, 1], blobs.x.clone()), Samples::new(&[3], extra)];
    let data = Dataset::from_arrays(
        inputs.clone(),
        vec![bitgrad::train::Labels::Classes(blobs.y.clone()), bitgrad::train::Labels::targets(&[2], targets.clone())],
    )
    .unwrap();
    (data, inputs, blobs.y, targets)
}

#[test]
fn fit_trains_models_of_several_inputs_and_outputs_with_a_loss_each() {
    use bitgrad::train::{Compile, Labels};
    let (data, inputs, labels, targets) = two_input_data(48);
    let opts = FitOptions { epochs: 2, batch_size: 16, shuffle_seed: None, ..FitOptions::default() };
    let compile = |device: &Device, weights: &[f32]| {
        two_input_model(true)
            .compile_on(device, "adam", "sparse_categorical_crossentropy", &["accuracy"])
            .unwrap()
            .losses(["sparse_categorical_crossentropy", "mse"])
            .unwrap()
            .loss_weights(weights)
            .unwrap()
    };
    let mut t = compile(&Device::cpu(), &[1.0, 0.5]);
    let history = t.fit(&data, None, &FitOptions { validation_split: 0.25, ..opts.clone() }).unwrap();
    let names: Vec<&str> = history.epochs[0].values.keys().map(|k| k.as_str()).collect();
    for name in ["loss", "classes_loss", "values_loss", "classes_accuracy", "val_loss", "val_classes_loss", "val_values_loss"] {
        assert!(names.contains(&name), "{name} not among {names:?}");
    }
    // Keras' total: the weighted sum of the outputs' losses; each output's loss is its own.
    let m = t.evaluate(&data, 16).unwrap();
    let total = m["classes_loss"] + 0.5 * m["values_loss"];
    assert!((m["loss"] - total).abs() < 1e-5 * total.abs().max(1.0), "{m:?}");
    let out = t.predict_outputs(&data, 16).unwrap();
    assert_eq!((out[0].shape().dims(), out[1].shape().dims()), (&[48, 3][..], &[48, 2][..]));
    let (p, v) = (out[0].as_f32().unwrap(), out[1].as_f32().unwrap());
    let ce = (0..48).map(|i| -(p[i * 3 + labels[i] as usize].max(1e-7) as f64).ln()).sum::<f64>() / 48.0;
    let mse = v.iter().zip(&targets).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / 96.0;
    let hits = (0..48).filter(|&i| (0..3).all(|k| p[i * 3 + k] <= p[i * 3 + labels[i] as usize])).count() as f64 / 48.0;
    assert!((m["classes_loss"] - ce).abs() < 1e-4 && (m["values_loss"] - mse).abs() < 1e-4, "{m:?} vs {ce} {mse}");
    assert!((m["classes_accuracy"] - hits).abs() < 1e-9, "{m:?} vs {hits}");
    // Predictions need no labels.
    let samples = Dataset::from_arrays(inputs.clone(), Vec::new()).unwrap();
    assert_eq!(t.predict_outputs(&samples, 7).unwrap(), out);
    let err = t.evaluate(&samples, 16).unwrap_err().to_string();
    assert!(err.contains("no labels"), "{err}");

    // An output of loss weight 0 leaves the rest to train as the model without it does.
    let mut zero = compile(&Device::cpu(), &[1.0, 0.0]);
    zero.fit(&data, None, &opts).unwrap();
    let single = Dataset::from_arrays(inputs.clone(), vec![Labels::Classes(labels.clone())]).unwrap();
    let mut alone = two_input_model(false).compile_on(&Device::cpu(), "adam", "sparse_categorical_crossentropy", &["accuracy"]).unwrap();
    alone.fit(&single, None, &opts).unwrap();
    let with: std::collections::BTreeMap<String, bitgrad::HostTensor> = zero.get_weights().unwrap().into_iter().collect();
    for (name, w) in alone.get_weights().unwrap() {
        assert_eq!(with[&name], w, "{name}");
    }

    // The GPU trains it as the CPU does.
    if let Some(gpu) = common::gpu() {
        let (mut a, mut b) = (compile(&Device::cpu(), &[1.0, 0.5]), compile(gpu, &[1.0, 0.5]));
        let (ha, hb) = (a.fit(&data, None, &opts).unwrap(), b.fit(&data, None, &opts).unwrap());
        for (k, va) in &ha.epochs[1].values {
            assert!((va - hb.epochs[1].values[k]).abs() < 1e-4, "{k}: cpu {va} gpu {}", hb.epochs[1].values[k]);
        }
    }
}

#[test]
fn several_inputs_and_outputs_are_checked_against_the_model() {
    use bitgrad::models::Model;
    use bitgrad::train::{Compile, Labels, Samples};
    let (data, inputs, labels, _) = two_input_data(8);
    assert_eq!(two_input_model(true).output_shapes().unwrap(), vec![vec![3], vec![2]]);
    assert_eq!(two_input_model(false).output_shape().unwrap(), vec![3]);
    assert!(two_input_model(true).output_shape().unwrap_err().to_string().contains("output_shapes"));
    let opts = FitOptions { epochs: 1, batch_size: 4, ..FitOptions::default() };
    let mut t = two_input_model(true).compile_on(&Device::cpu(), "adam", "sparse_categorical_crossentropy", &[]).unwrap();
    let one_input = Dataset::new(&[4, 4, 1], inputs[0].values.clone(), labels.clone()).unwrap();
    let err = t.fit(&one_input, None, &opts).unwrap_err().to_string();
    assert!(err.contains("samples for 1 input, but the model takes 2 inputs"), "{err}");
    let err = t.predict_outputs(&one_input, 4).unwrap_err().to_string();
    assert!(err.contains("samples for 1 input, but the model takes 2 inputs"), "{err}");
    let one_output = Dataset::from_arrays(inputs.clone(), vec![Labels::Classes(labels.clone())]).unwrap();
    let err = t.fit(&one_output, None, &opts).unwrap_err().to_string();
    assert!(err.contains("labels for 1 output, but the model has 2 outputs (classes, values)"), "{err}");
    // The default loss is each output's: integer labels for `values`, whose targets are floats.
    let err = t.fit(&data, None, &opts).unwrap_err().to_string();
    assert!(err.contains("sparse_categorical_crossentropy takes one integer class label"), "{err}");
    let err = t.predict(&data, 4).unwrap_err().to_string();
    assert!(err.contains("2 outputs (classes, values): predict_outputs returns each"), "{err}");
    let mut t = two_input_model(true).compile_on(&Device::cpu(), "adam", "mse", &[]).unwrap().losses(["mse", "mse", "mse"]).unwrap();
    let err = t.fit(&data, None, &opts).unwrap_err().to_string();
    assert!(err.contains("`losses`: 3 given for a model of 2 outputs (classes, values)"), "{err}");
    assert!(two_input_model(true).compile_on(&Device::cpu(), "adam", "mse", &[]).unwrap().loss_weights(&[f32::NAN]).is_err());
    // A second input of another shape, and labels of another sample count.
    let wrong = Dataset::from_arrays(vec![inputs[0].clone(), Samples::new(&[4], vec![0.0; 32])], vec![]).unwrap();
    let err = t.predict_outputs(&wrong, 4).unwrap_err().to_string();
    assert!(err.contains("shape [4] for input 1, but the model's input `extra` takes [3]"), "{err}");
    let err = Dataset::from_arrays(inputs.clone(), vec![Labels::Classes(vec![0; 7])]).unwrap_err().to_string();
    assert!(err.contains("output 0: 7 labels are not the 8 samples"), "{err}");
    let err = Dataset::from_arrays(vec![inputs[0].clone(), Samples::new(&[3], vec![0.0; 9])], vec![]).unwrap_err().to_string();
    assert!(err.contains("input 1: 9 values of shape [3] are not the 8 samples"), "{err}");
}

#[test]
fn float_targets_train_outputs_of_any_rank() {
    use bitgrad::train::{Compile, Labels, Samples};
    // A Dense layer on a sequence acts on its last axis: [5, 4] in, [5, 3] out, MSE per element.
    bitgrad::layers::reset_names();
    let model = Sequential::new().add(bitgrad::layers::Dense::new(3).input_shape(&[5, 4]));
    let x = common::uniform(4, 32 * 20, 1.0);
    let y: Vec<f32> = x.chunks(4).flat_map(|r| [r[0] - r[1], r[2] * 0.5, r[3]]).collect();
    let data = Dataset::from_arrays(vec![Samples::new(&[5, 4], x.clone())], vec![Labels::targets(&[5, 3], y)]).unwrap();
    let adam: Arc<dyn bitgrad::train::optimizers::Optimizer> = Arc::new(Adam::new(0.05));
    let mut t = model.compile_on(&Device::cpu(), adam, "mse", &[]).unwrap();
    let h = t.fit(&data, None, &FitOptions { epochs: 10, batch_size: 8, ..FitOptions::default() }).unwrap();
    let (first, last) = (h.epochs[0].values["loss"], h.epochs[9].values["loss"]);
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    assert_eq!(t.predict(&Dataset::unlabeled(&[5, 4], x).unwrap(), 8).unwrap().shape().dims(), [32, 5, 3]);
    // Integer labels still need one score row per sample.
    let labeled = Dataset::new(&[5, 4], vec![0.0; 8 * 20], vec![0; 8]).unwrap();
    let err = t.fit(&labeled, None, &FitOptions::default()).unwrap_err().to_string();
    assert!(err.contains("has shape [batch, 5, 3], but the labels give one class per sample"), "{err}");
}
