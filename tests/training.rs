//! Losses, optimizers and schedules against the real Keras and Larq (fixtures by
//! tests/fixtures/gen_training.py), and the fit loop: learning, determinism, partial batches,
//! validation, early stopping, history files, data errors.

mod common;

use std::sync::Arc;

use bitgrad::layers::{Activation, ActivationLayer, BatchNormalization, Flatten, QuantDense, QuantLayer, Weight};
use bitgrad::models::Sequential;
use bitgrad::quantizers::Quantizer;
use bitgrad::train::data::{Dataset, Idx};
use bitgrad::train::optimizers::{Adam, Bop, CaseOptimizer, Optimizer, Predicate, Sgd, Updates};
use bitgrad::train::{EarlyStopping, FitOptions, Loss, Metric, ModelCheckpoint, Schedule, Trainer};
use bitgrad::{DType, Device, Graph, HostTensor, ParamStore, Plan, UnaryOp};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/training.json")).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn devices() -> Vec<Device> {
    [Some(Device::cpu()), common::gpu().cloned()].into_iter().flatten().collect()
}

fn close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (a, e)) in got.iter().zip(want).enumerate() {
        assert!((a - e).abs() <= tol * (1.0 + e.abs()), "{what}: element {i}: {a} vs Keras {e}");
    }
}

#[test]
fn losses_and_gradients_match_keras() {
    let f = fixture();
    let logits = floats(&f["logits"]);
    for case in f["losses"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let loss = match name {
            "sparse_categorical_crossentropy logits" => Loss::SparseCategoricalCrossentropy { from_logits: true },
            "categorical_crossentropy soft logits" => Loss::CategoricalCrossentropy { from_logits: true },
            "binary_crossentropy logits" => Loss::BinaryCrossentropy { from_logits: true },
            other => Loss::from_name(other).unwrap(),
        };
        let mut g = Graph::new();
        let z = g.input("z", [6, 5], DType::F32).unwrap();
        let pred = match case["activation"].as_str().unwrap() {
            "softmax" => g.softmax(z).unwrap(),
            "sigmoid" => g.unary(UnaryOp::Sigmoid, z).unwrap(),
            _ => z,
        };
        let (dtype, dims) = loss.target_spec(&[6, 5]);
        let t = g.input("t", dims.clone(), dtype).unwrap();
        let l = loss.build(&mut g, pred, t).unwrap();
        let dz = g.backward(l, &[z]).unwrap()[0];
        let target = match dtype {
            DType::I32 => HostTensor::i32(dims, floats(&case["target"]).iter().map(|&v| v as i32).collect()).unwrap(),
            _ => HostTensor::f32(dims, floats(&case["target"])).unwrap(),
        };
        for d in devices() {
            let mut plan = Plan::new(&d, &g, &[l, dz], &mut ParamStore::new()).unwrap();
            plan.feed("z", &HostTensor::f32([6, 5], logits.clone()).unwrap()).unwrap();
            plan.feed("t", &target).unwrap();
            plan.run().unwrap();
            let on = format!("{name} on {}", d.describe());
            close(&format!("{on}: loss"), plan.fetch(l).unwrap().as_f32().unwrap(), &[case["value"].as_f64().unwrap() as f32], 1e-5);
            close(&format!("{on}: gradient"), plan.fetch(dz).unwrap().as_f32().unwrap(), &floats(&case["gradient"]), 1e-5);
        }
    }
}

fn optimizer_for(name: &str) -> Arc<dyn Optimizer> {
    match name {
        "sgd" => Arc::new(Sgd::new(0.1)),
        "sgd momentum" => Arc::new(Sgd { momentum: Schedule::Constant(0.9), ..Sgd::new(0.1) }),
        "sgd nesterov" => Arc::new(Sgd { momentum: Schedule::Constant(0.9), nesterov: true, ..Sgd::new(0.1) }),
        "adam" => Arc::new(Adam::new(0.01)),
        "adamw" => Arc::new(Adam::w(0.01, 0.1)),
        "bop" => {
            let bop = Bop { threshold: Schedule::Constant(0.05), gamma: Schedule::Constant(0.5), ..Bop::new() };
            let binary: Predicate = Arc::new(Bop::is_binary_variable);
            Arc::new(CaseOptimizer::new(vec![(binary, Arc::new(bop))], None))
        }
        other => panic!("no optimizer for fixture case `{other}`"),
    }
}

#[test]
fn optimizer_updates_match_keras_and_larq() {
    let f = fixture();
    let grads: Vec<Vec<f32>> = f["gradients"].as_array().unwrap().iter().map(floats).collect();
    for case in f["optimizers"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let opt = optimizer_for(name);
        let mut g = Graph::new();
        let w = g.variable("w", [5, 3], bitgrad::Init::Zeros).unwrap();
        let grad = g.input("grad", [5, 3], DType::F32).unwrap();
        let weight = Weight {
            variable: w,
            name: "w".into(),
            precision: if name == "bop" { 1 } else { 32 },
            constraint: None,
            trainable: true,
            optional: false,
        };
        opt.prepare(&[&weight]).unwrap();
        let mut u = Updates::default();
        let new = opt.update(&mut g, &mut u, &weight, grad).unwrap();
        g.assign(w, new).unwrap();
        u.finish(&mut g).unwrap();
        for d in devices() {
            let mut params = ParamStore::new();
            params.insert("w", d.upload(&HostTensor::f32([5, 3], floats(&case["initial"])).unwrap()).unwrap());
            let mut plan = Plan::new(&d, &g, &[], &mut params).unwrap();
            for (step, (gv, want)) in grads.iter().zip(case["after"].as_array().unwrap()).enumerate() {
                plan.feed("grad", &HostTensor::f32([5, 3], gv.clone()).unwrap()).unwrap();
                for (h, s) in opt.hyperparameters() {
                    plan.feed(&h, &HostTensor::f32([1], vec![s.at(step)]).unwrap()).unwrap();
                }
                plan.run().unwrap();
                let got = plan.fetch(w).unwrap();
                close(&format!("{name} step {} on {}", step + 1, d.describe()), got.as_f32().unwrap(), &floats(want), 2e-6);
            }
        }
    }
}

#[test]
fn schedules_match_keras() {
    for case in fixture()["schedules"].as_array().unwrap() {
        let s = match case["name"].as_str().unwrap() {
            "exponential" => Schedule::ExponentialDecay { initial: 0.1, decay_steps: 10, decay_rate: 0.5, staircase: false },
            "exponential staircase" => Schedule::ExponentialDecay { initial: 0.1, decay_steps: 10, decay_rate: 0.5, staircase: true },
            "cosine" => Schedule::CosineDecay { initial: 0.1, decay_steps: 20, alpha: 0.1 },
            _ => Schedule::PiecewiseConstant { boundaries: vec![5, 12], values: vec![0.1, 0.05, 0.01] },
        };
        s.check("lr").unwrap();
        let got: Vec<f32> = case["steps"].as_array().unwrap().iter().map(|t| s.at(t.as_u64().unwrap() as usize)).collect();
        close(case["name"].as_str().unwrap(), &got, &floats(&case["values"]), 1e-6);
    }
    assert_eq!(Schedule::custom(|t| t as f32 * 2.0).at(3), 6.0);
    let e = Schedule::PiecewiseConstant { boundaries: vec![5, 3], values: vec![1.0, 2.0, 3.0] }.check("adam/learning_rate").unwrap_err();
    assert!(e.to_string().contains("adam/learning_rate") && e.to_string().contains("increase"), "{e}");
}

#[test]
fn case_optimizer_reports_larqs_errors() {
    let mut g = Graph::new();
    let mk = |g: &mut Graph, name: &str, precision| Weight {
        variable: g.variable(name, [2], bitgrad::Init::Zeros).unwrap(),
        name: name.into(),
        precision,
        constraint: None,
        trainable: true,
        optional: false,
    };
    let (k, b) = (mk(&mut g, "k", 1), mk(&mut g, "b", 32));
    let binary: Predicate = Arc::new(Bop::is_binary_variable);
    let all: Predicate = Arc::new(|_: &Weight| true);
    let overlap = CaseOptimizer::new(vec![(binary.clone(), Arc::new(Bop::new())), (all, Arc::new(Adam::new(0.01)))], None);
    let e = overlap.prepare(&[&k, &b]).unwrap_err().to_string();
    assert!(e.contains("Variable `k` claimed by multiple optimizers."), "{e}");
    let empty = CaseOptimizer::new(vec![(binary, Arc::new(Bop::new()))], Some(Arc::new(Adam::new(0.01))));
    let e = empty.prepare(&[&b]).unwrap_err().to_string();
    assert!(e.contains("Optimizer `bop` did not claim any variables."), "{e}");
    assert!(empty.prepare(&[&k, &b]).is_ok());
}

fn small_bnn() -> Sequential {
    let ste = || Quantizer::from_name("ste_sign").unwrap();
    Sequential::new()
        .named("small")
        .input_shape(&[4, 4, 1])
        .add(Flatten::new().named("flatten"))
        .add(QuantDense::new(32).named("dense").kernel_quantizer(ste()).use_bias(false))
        .add(BatchNormalization { scale: false, ..BatchNormalization::new().named("bn") })
        .add(QuantDense::new(3).named("dense_1").input_quantizer(ste()).kernel_quantizer(ste()).use_bias(false))
        .add(BatchNormalization { scale: false, ..BatchNormalization::new().named("bn_1") })
        .add(ActivationLayer::new(Activation::Softmax).named("softmax"))
}

fn fit_losses(device: &Device, epochs: usize) -> (Vec<f64>, Trainer) {
    let mut t = Trainer::compile(
        small_bnn(),
        Loss::SparseCategoricalCrossentropy { from_logits: false },
        Arc::new(Adam::new(0.01)),
        &[Metric::Accuracy, Metric::TopK(2)],
        device,
    )
    .unwrap();
    // 100 samples in batches of 24: four full steps and a partial one of 4.
    let opts = FitOptions { epochs, batch_size: 24, shuffle_seed: Some(3), ..FitOptions::default() };
    let h = t.fit(&common::blobs(100, 1), None, &opts).unwrap();
    (h.epochs.iter().map(|e| e.values["loss"]).collect(), t)
}

#[test]
fn fit_learns_and_evaluates_with_partial_batches() {
    for d in devices() {
        let (losses, mut t) = fit_losses(&d, 8);
        assert!(losses[7] < 0.6 * losses[0], "loss falls on {}: {losses:?}", d.describe());
        assert_eq!(t.steps(), 8 * 5, "four full steps and a partial one per epoch");
        let test = common::blobs(50, 2);
        let m = t.evaluate(&test, 16).unwrap();
        assert!(m["accuracy"] > 0.9, "accuracy {m:?} on {}", d.describe());
        assert!(m["top_2"] >= m["accuracy"]);
        let p = t.predict(&test, 16).unwrap();
        assert_eq!(p.shape().dims(), [50, 3], "predict is [samples, classes]");
        let p = p.as_f32().unwrap();
        let argmax_right = (0..50)
            .filter(|&i| {
                let row = &p[i * 3..i * 3 + 3];
                let best = (0..3).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
                best as i32 == test.y[i]
            })
            .count();
        assert!((argmax_right as f64 / 50.0 - m["accuracy"]).abs() < 1e-9, "predict agrees with evaluate");
        // The loss over all 50 samples (three full batches and a partial one of 2).
        let nll = (0..50).map(|i| -(p[i * 3 + test.y[i] as usize].max(1e-7) as f64).ln()).sum::<f64>() / 50.0;
        assert!((nll - m["loss"]).abs() < 1e-4 * (1.0 + nll), "evaluate loss {} vs {nll} from predict on {}", m["loss"], d.describe());
    }
}

#[test]
fn the_same_seed_gives_the_same_loss_curve() {
    let (a, _) = fit_losses(&Device::cpu(), 3);
    let (b, _) = fit_losses(&Device::cpu(), 3);
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        "bit for bit on the CPU"
    );
    if let Some(gpu) = common::gpu() {
        let (c, _) = fit_losses(gpu, 3);
        for (x, y) in a.iter().zip(&c) {
            assert!((x - y).abs() <= 0.05 * x.abs(), "GPU loss curve {c:?} vs CPU {a:?}");
        }
    }
}

#[test]
fn validation_early_stopping_and_history_files() {
    let mut t = Trainer::compile(
        small_bnn(),
        Loss::from_name("sparse_categorical_crossentropy").unwrap(),
        Arc::new(Sgd::new(0.0)),
        &[Metric::Accuracy],
        &Device::cpu(),
    )
    .unwrap();
    // A zero learning rate never improves val_accuracy: patience 2 stops after 3 epochs.
    let es = EarlyStopping { monitor: "val_accuracy".into(), patience: 2, min_delta: 0.0 };
    let opts = FitOptions { epochs: 10, batch_size: 16, validation_split: 0.25, early_stopping: Some(es), ..FitOptions::default() };
    let h = t.fit(&common::blobs(64, 4), None, &opts).unwrap();
    assert!(h.stopped_early && h.epochs.len() == 3, "{h:?}");
    assert!(h.epochs[0].values.contains_key("val_loss") && h.epochs[0].values.contains_key("val_accuracy"));
    let csv = h.to_csv();
    assert!(csv.starts_with("epoch,accuracy,loss,val_accuracy,val_loss,seconds,images_per_second\n") && csv.lines().count() == 4, "{csv}");
    let json: Value = serde_json::from_str(&h.to_json()).unwrap();
    assert_eq!(json["epochs"].as_array().unwrap().len(), 3);
    let mut wrong = common::blobs(64, 4);
    wrong.y[37] = 3;
    let e = t.fit(&wrong, None, &FitOptions { shuffle_seed: None, ..FitOptions::default() }).unwrap_err().to_string();
    assert!(e.contains("label 3 of sample 37 is not a class below 3"), "{e}");
    let bad = EarlyStopping { monitor: "val_acc".into(), patience: 1, min_delta: 0.0 };
    let e = t.fit(&common::blobs(64, 4), None, &FitOptions { early_stopping: Some(bad), ..opts }).unwrap_err().to_string();
    assert!(e.contains("val_acc") && e.contains("val_accuracy"), "{e}");
}

#[test]
fn idx_files_parse_and_bad_ones_are_named_errors() {
    let mut raw = vec![0u8, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3];
    raw.extend(0..12u8);
    let idx = Idx::parse(&raw, "images").unwrap();
    assert_eq!((idx.dims.clone(), idx.data.len()), (vec![2, 2, 3], 12));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &raw).unwrap();
    assert_eq!(Idx::parse(&gz.finish().unwrap(), "images.gz").unwrap(), idx);
    assert_eq!(idx.to_bytes(), raw, "to_bytes inverts parse");
    let first = idx.first(1);
    assert_eq!((first.dims.clone(), first.data.clone()), (vec![1, 2, 3], (0..6).collect::<Vec<u8>>()));
    assert_eq!(Idx::parse(&first.to_bytes(), "first").unwrap(), first);
    assert_eq!(idx.first(5), idx, "fewer entries than asked: all of them");
    let labels = Idx::parse(&[0, 0, 8, 1, 0, 0, 0, 2, 1, 0], "labels").unwrap();
    let d = Dataset::from_idx(&idx, &labels, "set").unwrap();
    assert_eq!((d.sample_shape.clone(), d.x[0], d.x[11]), (vec![2, 3, 1], -1.0, 11.0 / 127.5 - 1.0));
    for (bytes, what) in [
        (&raw[..raw.len() - 1], "need 12 data bytes"),
        (&raw[..6], "header"),
        (&[1u8, 0, 8, 1][..], "magic"),
        (&[0u8, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0][..], "0x0d"),
        (&[0x1f, 0x8b, 1, 2][..], "gzip"),
    ] {
        let e = Idx::parse(bytes, "f.idx").unwrap_err().to_string();
        assert!(e.starts_with("f.idx: ") && e.contains(what), "{e}");
    }
    let e = Dataset::from_idx(&idx, &Idx::parse(&[0, 0, 8, 1, 0, 0, 0, 3, 1, 0, 2], "l").unwrap(), "set").unwrap_err().to_string();
    assert!(e.contains("labels [3] do not match 2 images"), "{e}");
    let e = bitgrad::train::data::load_mnist_format(std::path::Path::new("/nonexistent")).unwrap_err().to_string();
    assert!(e.contains("train-images-idx3-ubyte") && e.contains("missing"), "{e}");
}

#[test]
fn cifar10_batches_parse_and_bad_ones_are_named_errors() {
    use bitgrad::train::data::{load_cifar10, load_dir, parse_cifar10, CIFAR10_FILES};
    let pixel = |c: usize, y: usize, x: usize| ((c * 85 + y * 3 + x) % 256) as u8;
    let mut bytes = common::cifar10_record(3, pixel);
    bytes.extend(common::cifar10_record(9, |c, y, x| 255 - pixel(c, y, x)));
    let d = parse_cifar10(&bytes, "b.bin").unwrap();
    assert_eq!((d.sample_shape.clone(), d.y.clone(), d.len()), (vec![32, 32, 3], vec![3, 9], 2));
    // Channels last: sample n, row y, column x, channel c.
    for (n, y, x, c) in [(0, 0, 0, 0), (0, 5, 7, 1), (0, 31, 31, 2), (1, 2, 30, 0), (1, 17, 4, 2)] {
        let byte = if n == 0 { pixel(c, y, x) } else { 255 - pixel(c, y, x) };
        assert_eq!(d.x[n * 3072 + (y * 32 + x) * 3 + c], byte as f32 / 127.5 - 1.0, "{n} {y} {x} {c}");
    }
    assert!(d.x.iter().all(|v| (-1.0..=1.0).contains(v)));
    for (bad, what) in [
        (bytes[..3072].to_vec(), "3072 bytes are not a whole number of 3073-byte CIFAR-10 records"),
        (Vec::new(), "0 bytes"),
        (vec![0; 2 * 3074], "CIFAR-100"),
        ([common::cifar10_record(10, pixel), bytes.clone()].concat(), "record 0 has label 10"),
    ] {
        let e = parse_cifar10(&bad, "b.bin").unwrap_err().to_string();
        assert!(e.starts_with("b.bin: ") && e.contains(what), "{e}");
    }
    // The five training batches in order, then the test batch; the folder itself or the one
    // the archive extracts.
    let dir = common::cifar10_folder("cifar-parse", 3);
    let (train, test) = load_cifar10(&dir).unwrap();
    assert_eq!((train.len(), test.len()), (15, 3));
    let first = parse_cifar10(&std::fs::read(dir.join(CIFAR10_FILES[0])).unwrap(), "1").unwrap();
    let last = parse_cifar10(&std::fs::read(dir.join(CIFAR10_FILES[4])).unwrap(), "5").unwrap();
    assert_eq!((&train.x[..3 * 3072], &train.x[12 * 3072..]), (&first.x[..], &last.x[..]));
    assert_eq!((&train.y[..3], &train.y[12..]), (&first.y[..], &last.y[..]));
    let outer = common::scratch("cifar-outer");
    std::fs::rename(&*dir, outer.join("cifar-10-batches-bin")).unwrap();
    let (again, _) = load_dir(&outer).unwrap();
    assert_eq!(again, train, "load_dir finds the batches in cifar-10-batches-bin/");
    std::fs::remove_file(outer.join("cifar-10-batches-bin").join("data_batch_3.bin")).unwrap();
    let e = load_dir(&outer).unwrap_err().to_string();
    assert!(e.contains("data_batch_3.bin") && e.contains("missing"), "{e}");
    let empty = common::scratch("cifar-empty");
    let e = load_dir(&empty).unwrap_err().to_string();
    assert!(e.contains("neither MNIST-format files") && e.contains("data_batch_1.bin"), "{e}");
}

#[test]
fn train_on_batch_is_one_step_of_fit_and_reports_that_batch() {
    let data = common::blobs(24, 2);
    let all: Vec<usize> = (0..24).collect();
    for d in devices() {
        let compile = || {
            let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
            Trainer::compile(small_bnn(), loss, Arc::new(Adam::new(0.01)), &[Metric::Accuracy], &d).unwrap()
        };
        let (mut fitted, mut stepped) = (compile(), compile());
        let opts = FitOptions { epochs: 1, batch_size: 24, shuffle_seed: None, verbose: 0, ..FitOptions::default() };
        let epoch = fitted.fit(&data, None, &opts).unwrap().epochs.remove(0).values;
        let batch = stepped.train_on_batch(&data, &all).unwrap();
        assert_eq!((batch["loss"], batch["accuracy"]), (epoch["loss"], epoch["accuracy"]), "{}", d.describe());
        assert_eq!(stepped.steps(), 1);
        for name in ["dense/kernel", "bn/moving_mean", "adam/dense/kernel/m"] {
            let (a, b) = (fitted.params.get(name).unwrap().download().unwrap(), stepped.params.get(name).unwrap().download().unwrap());
            assert_eq!(a, b, "{name} after one step, {}", d.describe());
        }
        // A batch reports its own metrics, not a running mean: with a zero learning rate the
        // second batch's figures are what a fresh trainer reports for it first.
        let frozen = || {
            let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
            Trainer::compile(small_bnn(), loss, Arc::new(Sgd::new(0.0)), &[Metric::Accuracy], &d).unwrap()
        };
        let mut twice = frozen();
        twice.train_on_batch(&data, &all).unwrap();
        assert_eq!(twice.train_on_batch(&data, &all[..8]).unwrap(), frozen().train_on_batch(&data, &all[..8]).unwrap());
        stepped.train_on_batch(&data, &all[..8]).unwrap();
        for (bad, what) in [(&[][..], "no samples"), (&[3, 24][..], "sample 24")] {
            let e = stepped.train_on_batch(&data, bad).unwrap_err().to_string();
            assert!(e.contains("train_on_batch") && e.contains(what), "{e}");
        }
        assert_eq!(stepped.steps(), 2, "refused batches take no step");
    }
}

#[test]
fn a_profiled_step_times_every_dispatch_and_is_a_real_step() {
    let data = common::blobs(40, 5);
    let compile = |d: &Device| {
        Trainer::compile(small_bnn(), Loss::SparseCategoricalCrossentropy { from_logits: false }, Arc::new(Adam::new(0.01)), &[], d)
            .unwrap()
    };
    let e = compile(&Device::cpu()).profile_step(&data, 8).unwrap_err().to_string();
    assert!(e.contains("timestamps") && e.contains("cpu"), "{e}");
    let Some(gpu) = common::gpu() else { return };
    let mut t = compile(gpu);
    for bad in [0, 41] {
        let e = t.profile_step(&data, bad).unwrap_err().to_string();
        assert!(e.contains("profile_step") && e.contains(&bad.to_string()), "{e}");
    }
    t.profile_step(&data, 8).unwrap();
    let before = t.params.get("dense/kernel").unwrap().download().unwrap();
    let times = t.profile_step(&data, 8).unwrap();
    assert_eq!(t.steps(), 4, "each profile is a warm-up step and a timed one");
    assert_ne!(t.params.get("dense/kernel").unwrap().download().unwrap(), before, "the optimizer ran");
    assert!(times.iter().any(|k| k.kernel.starts_with("xnor_gemm::")), "the binary layer's product is timed");
    assert!(times.iter().all(|k| k.ns >= 0.0 && k.workgroups.iter().all(|&w| w >= 1)));
    assert!(times.iter().map(|k| k.ns).sum::<f64>() > 0.0);
}

fn adam_trainer(device: &Device) -> Trainer {
    Trainer::compile(
        small_bnn(),
        Loss::SparseCategoricalCrossentropy { from_logits: false },
        Arc::new(Adam::new(0.01)),
        &[Metric::Accuracy],
        device,
    )
    .unwrap()
}

#[test]
fn a_checkpointed_trainer_resumes_exactly_where_it_stopped() {
    let dir = common::scratch("resume");
    let data = common::blobs(100, 1);
    let opts = |epochs| FitOptions { epochs, batch_size: 24, shuffle_seed: Some(3), ..FitOptions::default() };
    for d in devices() {
        let mut straight = adam_trainer(&d);
        let whole = straight.fit(&data, None, &opts(3)).unwrap();
        // Train one epoch with a checkpoint per epoch, then restore it into a fresh trainer.
        let mut first = adam_trainer(&d);
        let every = ModelCheckpoint::new(dir.join("state-{epoch}.safetensors"));
        first.fit(&data, None, &FitOptions { checkpoint: Some(every), ..opts(1) }).unwrap();
        let saved = dir.join("state-1.safetensors");
        let mut resumed = adam_trainer(&d);
        resumed.load_state(&saved).unwrap();
        assert_eq!(resumed.steps(), 5);
        for (name, t) in first.params.iter() {
            assert_eq!(resumed.params.get(name).unwrap().download().unwrap(), t.download().unwrap(), "{name} restored exactly");
        }
        let rest = resumed.fit(&data, None, &opts(2)).unwrap();
        let (a, b): (Vec<f64>, Vec<f64>) =
            (whole.epochs[1..].iter().map(|e| e.values["loss"]).collect(), rest.epochs.iter().map(|e| e.values["loss"]).collect());
        assert_eq!(a, b, "epochs 2 and 3 resumed equal epochs 2 and 3 straight through on {}", d.describe());
        assert_eq!(rest.epochs[0].epoch, 1);
        // Loading into a trainer that already made its plans overwrites their tensors.
        first.fit(&data, None, &opts(1)).unwrap();
        first.load_state(&saved).unwrap();
        let again = first.fit(&data, None, &opts(2)).unwrap();
        assert_eq!(again.epochs.iter().map(|e| e.values["loss"]).collect::<Vec<_>>(), b);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn checkpoints_keep_only_the_best_epochs_when_asked() {
    let dir = common::scratch("best");
    let mut t = Trainer::compile(
        small_bnn(),
        Loss::SparseCategoricalCrossentropy { from_logits: false },
        Arc::new(Sgd::new(0.0)),
        &[Metric::Accuracy],
        &Device::cpu(),
    )
    .unwrap();
    // A zero learning rate never improves val_accuracy after the first epoch (as in the early
    // stopping test): only epoch 1 is saved.
    let best = ModelCheckpoint {
        monitor: "val_accuracy".into(),
        save_best_only: true,
        ..ModelCheckpoint::new(dir.join("best-{epoch}.safetensors"))
    };
    let opts = FitOptions { epochs: 3, batch_size: 16, validation_split: 0.25, checkpoint: Some(best), ..FitOptions::default() };
    t.fit(&common::blobs(64, 4), None, &opts).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    files.sort();
    assert_eq!(files, ["best-1.json", "best-1.safetensors"]);
    let bad = ModelCheckpoint { monitor: "val_acc".into(), save_best_only: true, ..ModelCheckpoint::new(dir.join("x.safetensors")) };
    let e = t.fit(&common::blobs(64, 4), None, &FitOptions { checkpoint: Some(bad), ..opts }).unwrap_err().to_string();
    assert!(e.contains("val_acc") && e.contains("val_accuracy"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_trainer_state_files_are_named_errors_and_change_nothing() {
    use bitgrad::io::safetensors::TensorFile;
    let dir = common::scratch("badstate");
    let mut t = adam_trainer(&Device::cpu());
    // Saved before training: the initial weights.
    let path = dir.join("init.safetensors");
    t.save_state(&path).unwrap();
    let file = TensorFile::read(&path).unwrap();
    assert!(file.tensors.contains_key("dense/kernel") && file.tensors.contains_key("bn/moving_mean"));
    assert_eq!(file.metadata["format"], "bitgrad-trainer-state");
    let kernel = file.tensors["dense/kernel"].clone();
    t.fit(&common::blobs(48, 2), None, &FitOptions { batch_size: 16, ..FitOptions::default() }).unwrap();
    let trained = t.params.get("dense/kernel").unwrap().download().unwrap();
    assert_ne!(trained, kernel);

    let write = |name: &str, f: &TensorFile| {
        let p = dir.join(name);
        f.write(&p).unwrap();
        p
    };
    let mut missing = file.clone();
    missing.tensors.remove("bn/moving_variance");
    let mut extra = file.clone();
    extra.tensors.insert("dense_9/kernel".into(), kernel.clone());
    let mut reshaped = file.clone();
    reshaped.tensors.insert("dense/kernel".into(), HostTensor::f32([32, 16], kernel.as_f32().unwrap().to_vec()).unwrap());
    let mut foreign = file.clone();
    foreign.metadata.clear();
    let bytes = std::fs::read(&path).unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();
    let cases = [
        (write("missing.safetensors", &missing), "missing tensors: bn/moving_variance"),
        (write("extra.safetensors", &extra), "the model does not have: dense_9/kernel"),
        (write("reshaped.safetensors", &reshaped), "tensor `dense/kernel` is F32 [32, 16]; the model expects F32 [16, 32]"),
        (write("foreign.safetensors", &foreign), "not a bitgrad trainer state"),
        (truncated, "not a safetensors file"),
        (dir.join("absent.safetensors"), "absent.safetensors"),
    ];
    for (p, want) in cases {
        let e = t.load_state(&p).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains(&p.file_name().unwrap().to_string_lossy().to_string()), "{}: {e}", p.display());
        assert_eq!(t.params.get("dense/kernel").unwrap().download().unwrap(), trained, "{}: nothing changed", p.display());
    }
    t.load_state(&path).unwrap();
    assert_eq!(t.params.get("dense/kernel").unwrap().download().unwrap(), kernel);
    assert_eq!(t.steps(), 0);
    // A failed write leaves neither the file nor a temporary one.
    let e = t.save_state(&dir.join("no-such-dir").join("s.safetensors")).unwrap_err().to_string();
    assert!(e.contains("no-such-dir"), "{e}");
    let mut left: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    left.retain(|n| n.contains(".tmp"));
    assert!(left.is_empty(), "{left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_checkpoint_of_model_json_and_state_resumes_exactly() {
    let dir = common::scratch("checkpoint");
    let data = common::blobs(100, 1);
    let opts = |epochs| FitOptions { epochs, batch_size: 24, shuffle_seed: Some(3), ..FitOptions::default() };
    let d = Device::cpu();
    let mut straight = adam_trainer(&d);
    let whole = straight.fit(&data, None, &opts(2)).unwrap();
    let mut first = adam_trainer(&d);
    first.fit(&data, None, &opts(1)).unwrap();
    let (json, state) = (dir.join("model.json"), dir.join("state.safetensors"));
    first.save_checkpoint(&json, &state).unwrap();
    let mut resumed = Trainer::from_checkpoint(
        &json,
        &state,
        Loss::SparseCategoricalCrossentropy { from_logits: false },
        Arc::new(Adam::new(0.01)),
        &[Metric::Accuracy],
        &d,
    )
    .unwrap();
    let rest = resumed.fit(&data, None, &opts(1)).unwrap();
    assert_eq!(rest.epochs[0].values["loss"].to_bits(), whole.epochs[1].values["loss"].to_bits(), "bit for bit on the CPU");
    // Another optimizer does not fit the saved slots.
    let e = Trainer::from_checkpoint(
        &json,
        &state,
        Loss::SparseCategoricalCrossentropy { from_logits: false },
        Arc::new(Sgd::new(0.1)),
        &[],
        &d,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("state.safetensors") && e.contains("adam/"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn accuracy_takes_the_first_of_tied_scores_as_keras_argmax_does() {
    // All-zero weights score every class the same: argmax picks class 0, so only the samples
    // labelled 0 count (Keras' sparse_categorical_accuracy); in_top_k counts ties as in.
    use bitgrad::layers::Initializer;
    let model = Sequential::new()
        .named("flat")
        .input_shape(&[2])
        .add(QuantDense::new(3).named("d").kernel_initializer(Initializer::Zeros))
        .add(ActivationLayer::new(Activation::Softmax).named("softmax"));
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let metrics = [Metric::Accuracy, Metric::TopK(2)];
    let mut t = Trainer::compile(model, loss, Arc::new(Adam::new(1e-3)), &metrics, &Device::cpu()).unwrap();
    let data = Dataset::new(&[2], vec![0.5; 8], vec![0, 1, 2, 0]).unwrap();
    let m = t.evaluate(&data, 4).unwrap();
    assert_eq!((m["accuracy"], m["top_2"]), (0.5, 1.0), "{m:?}");
}

#[test]
fn the_main_job_products_are_those_its_steps_run() {
    let gemms = bitgrad::bench::main_job_gemms(64).unwrap();
    let has = |model: &str, a: &[usize], b: &[usize], ta: bool, tb: bool| {
        gemms.iter().any(|g| g.model == model && g.a.dims() == a && g.b.dims() == b && g.trans_a == ta && g.trans_b == tb)
    };
    // The MLP's first layer: its forward and its kernel gradient (x^T dy).
    assert!(has("mlp", &[64, 784], &[784, 512], false, false), "{gemms:?}");
    assert!(has("mlp", &[64, 784], &[64, 512], true, false), "{gemms:?}");
    // Its input gradient is never needed, so the step does not run it.
    assert!(!has("mlp", &[64, 512], &[784, 512], false, true), "{gemms:?}");
    assert!(gemms.iter().any(|g| g.model == "cnn"));
    let distinct = gemms.iter().enumerate().all(|(i, g)| !gemms[..i].contains(g));
    assert!(distinct, "each product once");
}

#[test]
fn a_benchmarked_training_step_reports_what_it_ran() {
    let e = bitgrad::bench::train_step(&Device::cpu(), "resnet", 8, 1).unwrap_err().to_string();
    assert!(e.contains("resnet"), "{e}");
    let cpu = bitgrad::bench::train_step(&Device::cpu(), "mlp", 4, 1).unwrap();
    assert!(cpu.images_per_s > 0.0 && cpu.gpu_ms.is_none() && cpu.families.is_empty());
    let Some(gpu) = common::gpu() else { return };
    let m = bitgrad::bench::train_step(gpu, "mlp", 8, 2).unwrap();
    assert_eq!((m.batch, m.steps), (8, 2));
    assert!(m.wall_ms > 0.0 && m.transient_bytes > 0 && m.param_bytes > 0);
    let listed: usize = m.families.iter().map(|f| f.1).sum();
    assert!(m.dispatches > 0 && listed == m.dispatches, "{m:?}");
    assert!(m.families.iter().any(|f| f.0 == "xnor_gemm") && m.families.iter().any(|f| f.0 == "gemm"), "{m:?}");
}
