//! Keras JSON import and Keras weights, against fixtures from the real Larq (written by
//! tests/fixtures/gen_keras.py): each model's inference output on the CPU and the GPU.

mod common;

use common::{keras_fixture, FUNCTION_MODELS, KERAS_MODELS, ZOO};

use bitgrad::io::keras::{load_weights, read_model};
use bitgrad::io::safetensors::TensorFile;
use bitgrad::layers::Mode;
use bitgrad::models::Model;
use bitgrad::{Device, HostTensor, ParamStore, Plan};

fn devices() -> Vec<Device> {
    std::iter::once(Device::cpu()).chain(common::gpu().cloned()).collect()
}

/// Runs the imported model on `x` in inference mode.
fn infer(name: &str, device: &Device, x: &HostTensor) -> HostTensor {
    let model = read_model(&keras_fixture(&format!("{name}.json"))).unwrap_or_else(|e| panic!("{name}: {e}"));
    let built = model.build(x.shape().dims()[0], Mode::Inference).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut params = ParamStore::new();
    load_weights(&built, &mut params, device, &keras_fixture(&format!("{name}.safetensors"))).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut plan = Plan::new(device, built.graph(), &built.outputs, &mut params).unwrap();
    plan.feed(&model.inputs()[0].0, x).unwrap();
    plan.run().unwrap();
    plan.fetch(built.outputs[0]).unwrap()
}

#[test]
fn imported_models_compute_what_larq_computes() {
    for name in KERAS_MODELS.into_iter().chain(FUNCTION_MODELS) {
        let data = TensorFile::read(&keras_fixture(&format!("{name}.data.safetensors"))).unwrap();
        let (x, want) = (&data.tensors["input"], &data.tensors["output"]);
        for d in devices() {
            let got = infer(name, &d, x);
            assert_eq!(got.shape(), want.shape(), "{name}");
            for (i, (a, e)) in got.as_f32().unwrap().iter().zip(want.as_f32().unwrap()).enumerate() {
                assert!((a - e).abs() <= 1e-4 + 1e-4 * e.abs(), "{name} on {}: output {i}: {a} vs Larq's {e}", d.describe());
            }
        }
    }
}

/// The guide model's JSON with `edit` applied to its parsed form.
fn edited(edit: impl Fn(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(keras_fixture("guide_mlp.json")).unwrap()).unwrap();
    edit(&mut v);
    v.to_string()
}

#[test]
fn unsupported_or_malformed_configs_are_errors_naming_the_layer_and_field() {
    use bitgrad::io::keras::model_from_json;
    let cases: Vec<(String, &str)> = vec![
        (
            edited(|v| v["config"]["layers"][2]["class_name"] = "QuantConvLSTM".into()),
            "`QuantConvLSTM` is not a Larq layer bitgrad supports",
        ),
        (
            edited(|v| v["config"]["layers"][2]["config"]["units"] = "many".into()),
            "layer `quant_dense` (QuantDense): field `units`: expected a non-negative integer",
        ),
        (
            edited(|v| v["config"]["layers"][2]["config"]["frobnicate"] = 1.into()),
            "layer `quant_dense` (QuantDense): field `frobnicate`: is not supported",
        ),
        (
            edited(|v| v["config"]["layers"][3]["config"]["input_quantizer"] = "ste_sine".into()),
            "layer `quant_dense_1` (QuantDense): field `input_quantizer`: unknown quantizer `ste_sine",
        ),
        (
            edited(|v| v["config"]["layers"][2]["config"]["kernel_quantizer"]["config"]["clip_value"] = "x".into()),
            "layer `quant_dense` (QuantDense): field `kernel_quantizer`: SteSign: invalid `clip_value`: \"x\" is not a number",
        ),
        (
            edited(|v| v["config"]["layers"][2]["config"]["kernel_quantizer"]["config"]["beta"] = 5.into()),
            "field `kernel_quantizer`: SteSign: invalid `config`: `beta` is not a parameter of SteSign",
        ),
        (
            edited(|v| v["config"]["layers"][2]["config"]["kernel_constraint"] = "max_norm".into()),
            "field `kernel_constraint`: unknown constraint `max_norm` (known: weight_clip",
        ),
        (edited(|v| v["config"]["layers"][2]["config"]["dtype"] = "float16".into()), "field `dtype`: \"float16\" is not supported"),
        (edited(|v| v["class_name"] = "Graph".into()), "model class `Graph` is not Sequential or Functional"),
        (edited(|v| v["config"]["layers"] = serde_json::json!([])), "the model has no layers"),
        ("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [".to_string(), "not JSON"),
    ];
    for (text, want) in cases {
        let e = model_from_json("m.json", &text).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("m.json") && e.contains(want), "want `{want}`, got `{e}`");
    }
    // `trainable: false` freezes the layer, as Keras does (QuickNet's blurpool layers).
    let frozen = model_from_json("m.json", &edited(|v| v["config"]["layers"][2]["config"]["trainable"] = false.into())).unwrap();
    let built = frozen.build(1, Mode::Inference).unwrap();
    let name = frozen.summary().unwrap().layers[1].name.clone();
    let weights: Vec<_> = built.network.ctx.weights.iter().filter(|w| w.name.starts_with(&format!("{name}/"))).collect();
    assert!(!weights.is_empty() && weights.iter().all(|w| !w.trainable), "{name}");
    assert!(frozen.summary().unwrap().non_trainable_params > 0);
}

#[test]
fn weights_must_match_the_model_by_name_and_shape() {
    let dir = common::scratch("keras");
    let model = read_model(&keras_fixture("guide_mlp.json")).unwrap();
    let built = model.build(2, Mode::Inference).unwrap();
    let good = TensorFile::read(&keras_fixture("guide_mlp.safetensors")).unwrap();
    let kernel = good.tensors["quant_dense/kernel"].clone();
    let mut missing = good.clone();
    missing.tensors.remove("quant_dense/bias");
    let mut extra = good.clone();
    extra.tensors.insert("quant_dense_7/kernel".into(), kernel.clone());
    let mut reshaped = good.clone();
    reshaped.tensors.insert("quant_dense/kernel".into(), HostTensor::f32([16, 36], kernel.as_f32().unwrap().to_vec()).unwrap());
    for (name, file, want) in [
        ("missing", missing, "missing tensors: quant_dense/bias"),
        ("extra", extra, "tensors the model does not have: quant_dense_7/kernel"),
        ("reshaped", reshaped, "tensor `quant_dense/kernel` is F32 [16, 36]; the model expects F32 [36, 16]"),
    ] {
        let path = dir.join(format!("{name}.safetensors"));
        file.write(&path).unwrap();
        let mut params = ParamStore::new();
        let e = load_weights(&built, &mut params, &Device::cpu(), &path).unwrap_err().to_string();
        assert!(e.contains(want) && e.contains(&format!("{name}.safetensors")), "{e}");
        assert!(params.is_empty(), "{name}: nothing loaded");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn training_mode_gradients_equal_larqs() {
    for name in KERAS_MODELS.into_iter().chain(FUNCTION_MODELS) {
        let data = TensorFile::read(&keras_fixture(&format!("{name}.data.safetensors"))).unwrap();
        let x = &data.tensors["input"];
        let model = read_model(&keras_fixture(&format!("{name}.json"))).unwrap();
        let mut built = model.build(x.shape().dims()[0], Mode::Training).unwrap();
        let weights: Vec<(String, bitgrad::ValueId)> =
            built.network.ctx.weights.iter().filter(|w| w.trainable).map(|w| (w.name.clone(), w.variable)).collect();
        let (input, y) = (built.inputs[0], built.outputs[0]);
        let g = &mut built.network.graph;
        let upstream = g.constant(data.tensors["upstream"].clone()).unwrap();
        let yu = g.mul(y, upstream).unwrap();
        let axes: Vec<usize> = (0..g.value(yu).shape.rank()).collect();
        let loss = g.sum(yu, &axes, false).unwrap();
        let wrt: Vec<bitgrad::ValueId> = std::iter::once(input).chain(weights.iter().map(|(_, v)| *v)).collect();
        let grads = g.backward(loss, &wrt).unwrap();
        let keys: Vec<String> = std::iter::once("grad/input".to_string()).chain(weights.iter().map(|(n, _)| format!("grad/{n}"))).collect();
        for d in devices() {
            let mut params = ParamStore::new();
            // Weights first, so the plan finds them instead of initialising its own.
            let inference = model.build(1, Mode::Inference).unwrap();
            load_weights(&inference, &mut params, &d, &keras_fixture(&format!("{name}.safetensors"))).unwrap();
            let mut plan = Plan::new(&d, built.graph(), &grads, &mut params).unwrap();
            plan.feed(&model.inputs()[0].0, x).unwrap();
            plan.run().unwrap();
            for (key, &gv) in keys.iter().zip(&grads) {
                let want = &data.tensors[key];
                let got = plan.fetch(gv).unwrap();
                assert_eq!(got.shape(), want.shape(), "{name} {key}");
                let scale = want.as_f32().unwrap().iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
                for (i, (a, e)) in got.as_f32().unwrap().iter().zip(want.as_f32().unwrap()).enumerate() {
                    assert!((a - e).abs() <= 1e-4 * scale, "{name} on {}: {key}[{i}]: {a} vs Larq's {e}", d.describe());
                }
            }
        }
    }
}

#[test]
fn exported_json_imports_back_to_the_same_model() {
    use bitgrad::io::keras::{export::model_to_json, model_from_json};
    for name in KERAS_MODELS.into_iter().chain(FUNCTION_MODELS) {
        let model = read_model(&keras_fixture(&format!("{name}.json"))).unwrap();
        let text = model_to_json(&model).unwrap_or_else(|e| panic!("{name}: {e}"));
        let back = model_from_json("exported.json", &text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        let (a, b) = (model.build(1, Mode::Inference).unwrap().summary(), back.build(1, Mode::Inference).unwrap().summary());
        assert_eq!(a.table(), b.table(), "{name}");
        assert_eq!(model_to_json(&back).unwrap(), text, "{name}: a second round trip changes nothing");
        // Same function: the exported model with Larq's weights computes Larq's output.
        let data = TensorFile::read(&keras_fixture(&format!("{name}.data.safetensors"))).unwrap();
        let x = &data.tensors["input"];
        let built = back.build(x.shape().dims()[0], Mode::Inference).unwrap();
        let mut params = ParamStore::new();
        load_weights(&built, &mut params, &Device::cpu(), &keras_fixture(&format!("{name}.safetensors"))).unwrap();
        let mut plan = Plan::new(&Device::cpu(), built.graph(), &built.outputs, &mut params).unwrap();
        plan.feed(&back.inputs()[0].0, x).unwrap();
        plan.run().unwrap();
        let got = plan.fetch(built.outputs[0]).unwrap();
        for (a, e) in got.as_f32().unwrap().iter().zip(data.tensors["output"].as_f32().unwrap()) {
            assert!((a - e).abs() <= 1e-4 + 1e-4 * e.abs(), "{name}: {a} vs {e}");
        }
    }
    // Models defined in Rust export too: the main job's CNN.
    let cnn = bitgrad::models::zoo::larq_mnist_cnn();
    let back = model_from_json("cnn.json", &model_to_json(&cnn).unwrap()).unwrap();
    assert_eq!(cnn.build(1, Mode::Inference).unwrap().summary().table(), back.build(1, Mode::Inference).unwrap().summary().table());
}

fn zoo_fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zoo").join(name)
}

#[test]
fn every_larq_zoo_model_imports_summarizes_as_larq_records_its_training_step_and_exports() {
    for name in ZOO {
        let model = read_model(&zoo_fixture(&format!("{name}.json"))).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = std::fs::read_to_string(zoo_fixture(&format!("{name}.summary.txt"))).unwrap();
        let summary = model.build(1, Mode::Inference).unwrap_or_else(|e| panic!("{name}: {e}")).summary();
        assert_eq!(summary.to_string(), want, "{name}");
        // The training graph (forward, loss and every gradient) is recorded.
        let mut built = model.build(2, Mode::Training).unwrap_or_else(|e| panic!("{name}: {e}"));
        let wrt: Vec<bitgrad::ValueId> = built.network.ctx.weights.iter().filter(|w| w.trainable).map(|w| w.variable).collect();
        let g = &mut built.network.graph;
        let y = built.outputs[0];
        let axes: Vec<usize> = (0..g.value(y).shape.rank()).collect();
        let loss = g.sum(y, &axes, false).unwrap();
        assert_eq!(g.backward(loss, &wrt).unwrap_or_else(|e| panic!("{name}: {e}")).len(), wrt.len(), "{name}");
        // Written back as Keras JSON, it reads as the same model.
        let text = bitgrad::io::keras::export::model_to_json(&model).unwrap_or_else(|e| panic!("{name}: {e}"));
        let back = bitgrad::io::keras::model_from_json("exported.json", &text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = back.build(1, Mode::Inference).unwrap().summary().to_string();
        let differ = again.lines().zip(want.lines()).find(|(a, b)| a != b);
        assert!(differ.is_none() && again.len() == want.len(), "{name}: {differ:?}");
    }
}

#[test]
fn unknown_functions_and_lambdas_are_errors_saying_how_to_supply_them() {
    use bitgrad::io::keras::{functions::register_lambda, model_from_json};
    let text = |name: &str| std::fs::read_to_string(zoo_fixture(name)).unwrap();
    // A tf.* function bitgrad does not run is named, with the supported ones listed.
    let ops =
        std::fs::read_to_string(keras_fixture("tf_ops.json")).unwrap().replace("\"function\": \"nn.relu\"", "\"function\": \"nn.gelu\"");
    let e = model_from_json("tf_ops.json", &ops).and_then(|m| m.build(1, Mode::Inference).map(|_| ())).unwrap_err().to_string();
    assert!(e.contains("tf.nn.gelu") && e.contains("tf.nn.relu"), "{e}");
    // tf.image.resize's methods and flags beyond bitgrad's are named.
    let resize = std::fs::read_to_string(keras_fixture("tf_resize.json")).unwrap();
    for (from, to, why) in [
        ("\"method\": \"nearest\"", "\"method\": \"bicubic\"", "`bicubic` is not one of bilinear, nearest"),
        ("\"size\": [8, 9]", "\"size\": [8, 9], \"antialias\": true", "`antialias`: only false"),
        ("\"size\": [8, 9]", "\"size\": [8, 9], \"preserve_aspect_ratio\": true", "`preserve_aspect_ratio`: only false"),
        ("\"size\": [8, 9]", "\"size\": [8, 0]", "[8, 0] is not a (height, width) pair"),
        ("\"size\": [8, 9]", "\"size\": [8]", "[8] is not a (height, width) pair"),
    ] {
        assert!(resize.contains(from), "{from}");
        let bad = resize.replacen(from, to, 1);
        let e = model_from_json("tf_resize.json", &bad).and_then(|m| m.build(1, Mode::Inference).map(|_| ())).unwrap_err().to_string();
        assert!(e.contains("tf.image.resize") && e.contains(why), "{e}");
    }
    // A Lambda whose body is not known names the layer and how to register one; registered, it runs.
    let melius = text("meliusnet22.json").replace("larq_zoo.literature.meliusnet", "my_models.blocks");
    let model = model_from_json("meliusnet22.json", &melius).unwrap();
    let e = model.build(1, Mode::Inference).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("section_0_block_0_improve_merge") && e.contains("register_lambda"), "{e}");
    for block in 0..4 {
        let _ = register_lambda(&format!("section_0_block_{block}_improve_merge"), |g, x, _| {
            let (a, b) = (x[0], x[1]);
            let (ca, cb) = (*g.value(a).shape.dims().last().unwrap(), *g.value(b).shape.dims().last().unwrap());
            let padded = g.pad(b, &[(0, 0), (0, 0), (0, 0), (ca - cb, 0)])?;
            Ok(vec![g.add(a, padded)?])
        });
    }
    let e = model.build(1, Mode::Inference).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("section_1_block_0_improve_merge"), "the next unregistered one: {e}");
    assert!(register_lambda("section_0_block_0_improve_merge", |_, x, _| Ok(x.to_vec())).unwrap_err().to_string().contains("already"));
}

#[test]
fn larq_zoo_function_quantizers_are_built_in_and_a_program_registers_its_own() {
    use bitgrad::quantizers::{FunctionQuantizer, Quantizer};
    let q = Quantizer::from_keras(&serde_json::json!({"class_name": "function", "config": "xnor_weight_scale"})).unwrap();
    assert_eq!((q.class_name(), q.precision()), ("xnor_weight_scale", 1));
    assert_eq!(Quantizer::from_keras(&q.to_keras()).unwrap(), q);
    // xnor_weight_scale: clip to [-1, 1], then mean |x| per output channel times the sign.
    let mut g = bitgrad::Graph::new();
    let w = g.constant(HostTensor::f32([2, 2], vec![0.5, -2.0, -0.25, 1.0]).unwrap()).unwrap();
    let y = q.apply(&mut g, w).unwrap();
    let mut plan = Plan::new(&Device::cpu(), &g, &[y], &mut ParamStore::new()).unwrap();
    plan.run().unwrap();
    assert_eq!(plan.fetch(y).unwrap().as_f32().unwrap(), [0.375, -1.0, -0.375, 1.0]);
    let mine = FunctionQuantizer::register("doubled_sign_for_test", 1, |g, x| {
        let s = Quantizer::SteSign { clip_value: Some(1.0) }.apply(g, x)?;
        g.scale(s, 2.0)
    })
    .unwrap();
    assert_eq!(Quantizer::from_name("doubled_sign_for_test").unwrap(), Quantizer::Function(mine));
    let e = FunctionQuantizer::register("ste_sign", 1, |_, x| Ok(x)).unwrap_err().to_string();
    assert!(e.contains("already the name of a quantizer"), "{e}");
}

#[test]
fn separable_convolutions_count_depthwise_and_pointwise_macs_as_larq() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/summary");
    let model = read_model(&dir.join("separable.json")).unwrap();
    let want = std::fs::read_to_string(dir.join("separable.txt")).unwrap();
    assert_eq!(model.build(1, Mode::Inference).unwrap().summary().to_string(), want);
}

/// tests/fixtures/gen_zoo.py's rule: `n` uniform values in [0, 1) for `name` (FNV-1a of the name, then
/// splitmix64 of each index).
fn seeded_uniform(name: &str, n: usize) -> Vec<f64> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..n as u64)
        .map(|i| {
            let mut z = h.wrapping_add((i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (z >> 40) as f64 / (1u64 << 24) as f64
        })
        .collect()
}

/// A weight by tests/fixtures/gen_zoo.py's rule, from its name and shape.
fn seeded_weight(name: &str, shape: &[usize]) -> HostTensor {
    let n: usize = shape.iter().product();
    let fan = |axes: usize| shape[..shape.len().saturating_sub(axes)].iter().product::<usize>() as f64;
    let last = name.rsplit('/').next().unwrap_or(name);
    let values = seeded_uniform(name, n)
        .into_iter()
        .map(|u| {
            let r = 2.0 * u - 1.0;
            (match last {
                "kernel" | "pointwise_kernel" => r * (3.0 / fan(1)).sqrt(),
                "depthwise_kernel" => r * (3.0 / fan(2)).sqrt(),
                "gamma" => 1.0 + 0.1 * r,
                "moving_variance" => 1.0 + 0.5 * u,
                "alpha" => 0.25 + 0.1 * r,
                _ => 0.1 * r,
            }) as f32
        })
        .collect();
    HostTensor::f32(shape.to_vec(), values).unwrap()
}

/// The largest difference of `got` from `want` relative to `want`'s largest magnitude (at least
/// 1e-3), and where.
fn relative_error(got: &[f32], want: &[f32]) -> (f32, usize) {
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
    got.iter().zip(want).enumerate().map(|(i, (a, e))| ((a - e).abs() / scale, i)).fold((0.0, 0), |m, x| if x.0 > m.0 { x } else { m })
}

/// A gradient fingerprint's differences ([sum G, sum |G|, sum G R]) relative to `want`'s sum |G|:
/// the signed sums cancel, so their f32 accumulation-order differences show more. Layers far
/// from the output get small gradients (sum |G| of 1e-4 in MeliusNet22's last blocks, 1e-8 for a
/// BatchNormalization beta of Real-to-Binary Net), whose f32 sums are noise at their own scale:
/// 1e-3 is the floor of the scale.
fn fingerprint_error(got: &[f64; 3], want: &[f32]) -> [f64; 3] {
    let scale = (want[1] as f64).max(1e-3);
    [0, 1, 2].map(|k| (got[k] - want[k] as f64).abs() / scale)
}

/// Larq's own spread of a fixture's quantity `key` (`output`, `fp/W`, ...), by `error` (one
/// figure or several): per figure, the largest difference of Larq's numbers for the input
/// changed by one part in a million (gen_zoo.py's `perturbed{k}/`) from its numbers for the
/// input.
fn larq_spread<const N: usize>(data: &TensorFile, key: &str, error: impl Fn(&[f32], &[f32]) -> [f64; N]) -> [f64; N] {
    let want = data.tensors[key].as_f32().unwrap();
    (1..=3)
        .filter_map(|k| data.tensors.get(&format!("perturbed{k}/{key}")))
        .map(|p| error(p.as_f32().unwrap(), want))
        .fold([0.0; N], |m, e| std::array::from_fn(|i| m[i].max(e[i])))
}

/// Larq's spread counts this many times in a bound: bitgrad may differ from Larq by as much as
/// Larq's numbers move under a change of one part in a million of its input, times this (the
/// sums of two implementations round apart by about as much as such a change does).
const SPREAD_FACTOR: f64 = 3.0;

/// Where Larq's float32 numbers are themselves far from the exact result (its float64 run,
/// gen_zoo.py's `f64/`), bitgrad's may be as far from that result as Larq's times this.
const EXACT_FACTOR: f64 = 2.0;

/// Zoo models whose numbers at this configuration (batch 2, 32x32) are ill-conditioned beyond
/// what the spread and the float64 run capture, and the factor their bounds get. In Larq
/// itself, QuickNet's gradients of `quant_conv2d_39/40` and QuickNetLarge's of
/// `quant_conv2d_74/76` change by factors of 10^3 to 10^6 when the input changes by one part in
/// 10^5 (their last stages normalize 2 values per channel); BinaryDenseNet45's signs take
/// several patterns under rounding (Larq's float32 and float64 runs and its perturbed runs
/// land on different ones, its training output 2 to 5% apart), and bitgrad's CPU and GPU
/// land on yet another, as close to Larq's as those are to each other within this factor.
/// DoReFa-Net's 2-bit activations times a ±alpha kernel make convolution outputs that tie
/// exactly in Larq (6344 distinct values among the 37632 of `quant_conv2d_268`) and lie a few
/// ulps apart in bitgrad's sums, so max pooling's first-maximum rule sends some gradients to
/// another tap (470 of 37632 at `batch_normalization_300`), which moves the first layer's bias
/// gradient by 2.7%; every layer's output and gradient before that matches to 2e-5. XNOR-Net
/// matches everywhere but the gradient of its first BatchNormalization's beta (2.3%, Larq's
/// float32 0.3% from its float64), upstream of a max pooling of a binary convolution's scaled
/// outputs as in DoReFa-Net (not traced to the tap).
const ILL_CONDITIONED: [(&str, f64); 5] =
    [("quicknet", 2.0), ("quicknet_large", 2.0), ("binary_densenet45", 6.0), ("dorefanet", 6.0), ("xnornet", 6.0)];

/// How a quantity compares: its error against Larq's float32 numbers, the bound of that error
/// (the tolerance, or Larq's spread), and the errors of bitgrad's and Larq's numbers against
/// Larq's float64 ones.
struct Compared {
    error: f64,
    bound: f64,
    spread: f64,
    exact: f64,
    larq_exact: f64,
    /// The model's `ILL_CONDITIONED` factor (else 1).
    factor: f64,
}

impl Compared {
    /// Within the bound of Larq's float32 numbers, or at least about as close to the exact
    /// result as they are.
    fn passes(&self, tol: f64) -> bool {
        self.ratio(tol) <= 1.0
    }

    /// How close to failing, as a fraction of what passes.
    fn ratio(&self, tol: f64) -> f64 {
        (self.error / self.bound).min(self.exact / tol.max(EXACT_FACTOR * self.larq_exact)) / self.factor
    }

    fn describe(&self, tol: f64) -> String {
        format!(
            "error {:.2e} > bound {:.2e} (Larq's spread {:.2e}); against Larq's float64 result {:.2e} > {:.2e} (Larq's float32 {:.2e}); \
             factor {}",
            self.error,
            self.bound,
            self.spread,
            self.exact,
            tol.max(EXACT_FACTOR * self.larq_exact),
            self.larq_exact,
            self.factor
        )
    }
}

/// Every zoo model's inference output, training output, input gradient and weight gradient
/// fingerprints equal larq-zoo's within a bound: a fixed tolerance, or where Larq's own numbers
/// move more than that when its input changes by one part in a million (a deep binary network
/// where values land within rounding of a sign's zero), `SPREAD_FACTOR` times Larq's spread.
/// A perturbed input does not reach float sums after a sign that keeps its value, so the spread
/// misses those that cancel (a training-mode BatchNormalization of 2 values per channel far
/// apart relative to its epsilon, as at the 1x1 pixels of the last stages at 32x32: its
/// gradient goes through 1 - xhat^2 ~ 1e-7, and Larq's float32 gradient there is 0.6% off
/// Larq's own float64 one): there bitgrad passes when it is at least about as close to the
/// float64 result as Larq's float32 numbers are (`EXACT_FACTOR`). Five models get wider
/// bounds (`ILL_CONDITIONED`). How close each model comes to failing is printed.
#[test]
fn larq_zoo_models_compute_larqs_outputs_and_gradients() {
    let mut failures: Vec<String> = Vec::new();
    for name in ZOO {
        let data = TensorFile::read(&zoo_fixture(&format!("{name}.data.safetensors"))).unwrap();
        let x = &data.tensors["input"];
        let model = read_model(&zoo_fixture(&format!("{name}.json"))).unwrap();
        let inference = model.build(2, Mode::Inference).unwrap();
        let weights = TensorFile {
            tensors: inference.all_weights().iter().map(|(n, (s, _))| (n.clone(), seeded_weight(n, s.dims()))).collect(),
            metadata: Default::default(),
        };
        let mut built = model.build(2, Mode::Training).unwrap();
        let trainable: Vec<(String, bitgrad::ValueId)> =
            built.network.ctx.weights.iter().filter(|w| w.trainable).map(|w| (w.name.clone(), w.variable)).collect();
        let (input, y) = (built.inputs[0], built.outputs[0]);
        let g = &mut built.network.graph;
        let upstream = g.constant(data.tensors["upstream"].clone()).unwrap();
        let yu = g.mul(y, upstream).unwrap();
        let loss = g.sum(yu, &[0, 1], false).unwrap();
        let wrt: Vec<bitgrad::ValueId> = std::iter::once(input).chain(trainable.iter().map(|(_, v)| *v)).collect();
        let grads = g.backward(loss, &wrt).unwrap();
        let factor = ILL_CONDITIONED.iter().find(|(m, _)| *m == name).map_or(1.0, |(_, f)| *f);
        // XNOR-Net (224x224, 58M weights) runs on the CPU only here: its first fully connected
        // kernel (a 6x6 convolution, 151 MB) exceeds lavapipe's largest storage binding (128
        // MiB), which the GPU plan reports as an error naming the variable. Its fixture has no
        // perturbed runs (their input gradients would add 3.6 MB).
        let on = if name == "xnornet" { vec![Device::cpu()] } else { devices() };
        if let (true, Some(gpu)) = (name == "xnornet", common::gpu()) {
            let mut params = ParamStore::new();
            let e = bitgrad::io::keras::load_tensors(&inference, &mut params, gpu, weights.clone(), name)
                .and_then(|_| Plan::new(gpu, inference.graph(), &inference.outputs, &mut params).map(|_| ()));
            if let Err(e) = e {
                let e = e.to_string();
                assert!(e.contains("max_storage_buffer_binding_size") && e.contains("`quant_conv2d_261/kernel` needs 150994944"), "{e}");
            }
        }
        for d in on {
            // On the GPU the f32 sums (BatchNormalization's batch statistics above all) run in
            // another order: the fixed tolerances are looser there.
            let slack = if matches!(d, Device::Cpu) { 1.0 } else { 20.0f32 };
            let mut worst = (0f64, String::new());
            let f32s = |key: &str| data.tensors[key].as_f32().unwrap();
            let mut check = |what: &str, got: &[f32], key: &str, tol: f32| {
                let tol = (tol * slack) as f64;
                let (err, i) = relative_error(got, f32s(key));
                let [spread] = larq_spread(&data, key, |a, e| [relative_error(a, e).0 as f64]);
                let exact = f32s(&format!("f64/{key}"));
                let c = Compared {
                    error: err as f64,
                    bound: tol.max(SPREAD_FACTOR * spread),
                    spread,
                    exact: relative_error(got, exact).0 as f64,
                    larq_exact: relative_error(f32s(key), exact).0 as f64,
                    factor,
                };
                if c.ratio(tol) > worst.0 {
                    worst = (c.ratio(tol), what.to_string());
                }
                if !c.passes(tol) {
                    let (a, e) = (got[i], f32s(key)[i]);
                    failures.push(format!("{name} on {}: {what}[{i}]: {a} vs Larq's {e}: {}", d.describe(), c.describe(tol)));
                }
            };
            let mut params = ParamStore::new();
            bitgrad::io::keras::load_tensors(&inference, &mut params, &d, weights.clone(), name).unwrap();
            let mut plan = Plan::new(&d, inference.graph(), &inference.outputs, &mut params).unwrap();
            plan.feed(&model.inputs()[0].0, x).unwrap();
            plan.run().unwrap();
            check("output", plan.fetch(inference.outputs[0]).unwrap().as_f32().unwrap(), "output", 1e-4);
            let mut outputs = vec![y];
            outputs.extend(&grads);
            let mut plan = Plan::new(&d, built.graph(), &outputs, &mut params).unwrap();
            plan.feed(&model.inputs()[0].0, x).unwrap();
            plan.run().unwrap();
            check("training output", plan.fetch(y).unwrap().as_f32().unwrap(), "training_output", 1e-4);
            check("grad/input", plan.fetch(grads[0]).unwrap().as_f32().unwrap(), "grad/input", 1e-3);
            for ((w, _), &gv) in trainable.iter().zip(&grads[1..]) {
                let got = plan.fetch(gv).unwrap();
                let g = got.as_f32().unwrap();
                let r: Vec<f64> = seeded_uniform(&format!("fingerprint/{w}"), g.len()).into_iter().map(|u| 2.0 * u - 1.0).collect();
                let fp = [
                    g.iter().map(|&v| v as f64).sum::<f64>(),
                    g.iter().map(|&v| (v as f64).abs()).sum::<f64>(),
                    g.iter().zip(&r).map(|(&v, r)| v as f64 * r).sum::<f64>(),
                ];
                let key = format!("fp/{w}");
                let as64 = |a: &[f32]| [a[0] as f64, a[1] as f64, a[2] as f64];
                let err = fingerprint_error(&fp, f32s(&key));
                let spread = larq_spread(&data, &key, |a, e| fingerprint_error(&as64(a), e));
                let exact = f32s(&format!("f64/{key}"));
                let (exact_err, larq_exact) = (fingerprint_error(&fp, exact), fingerprint_error(&as64(f32s(&key)), exact));
                for k in 0..3 {
                    let tol = if k == 1 { 5e-3 } else { 2e-2 } * (slack as f64 / 4.0).max(1.0);
                    let c = Compared {
                        error: err[k],
                        bound: tol.max(SPREAD_FACTOR * spread[k]),
                        spread: spread[k],
                        exact: exact_err[k],
                        larq_exact: larq_exact[k],
                        factor,
                    };
                    if c.ratio(tol) > worst.0 {
                        worst = (c.ratio(tol), format!("gradient fingerprint {k} of {w}"));
                    }
                    if !c.passes(tol) {
                        failures.push(format!(
                            "{name} on {}: gradient fingerprint {k} of {w}: {} vs Larq's {}: {}",
                            d.describe(),
                            fp[k],
                            f32s(&key)[k],
                            c.describe(tol)
                        ));
                    }
                }
            }
            eprintln!("{name} on {}: closest to its bound: {} at {:.2} of it", d.describe(), worst.1, worst.0);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn larq_zoo_models_run_from_their_packed_export() {
    use bitgrad::io::execute::infer_packed;
    use bitgrad::io::packed::{export, PackedModel};
    for name in ZOO {
        let data = TensorFile::read(&zoo_fixture(&format!("{name}.data.safetensors"))).unwrap();
        let model = read_model(&zoo_fixture(&format!("{name}.json"))).unwrap();
        let inference = model.build(2, Mode::Inference).unwrap();
        let weights = TensorFile {
            tensors: inference.all_weights().iter().map(|(n, (s, _))| (n.clone(), seeded_weight(n, s.dims()))).collect(),
            metadata: Default::default(),
        };
        let (file, report) = export(&model, &weights, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(report.packed_bytes < report.float_bytes, "{name}: {report:?}");
        let packed = PackedModel::from_file(name, file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = infer_packed(&packed, &Device::cpu(), &data.tensors["input"]).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The float model's output: Larq's, within the bound of the test above (folding
        // reorders the sums).
        let (err, i) = relative_error(got.as_f32().unwrap(), data.tensors["output"].as_f32().unwrap());
        let [spread] = larq_spread(&data, "output", |a, e| [relative_error(a, e).0 as f64]);
        let bound = 2e-4f32.max((SPREAD_FACTOR * spread) as f32);
        assert!(err <= bound, "{name}: packed output {i}: error {err:.2e} > bound {bound:.2e}");
    }
}

#[test]
fn a_program_registers_initializers_and_constraints_that_keras_json_names() {
    use bitgrad::io::keras::model_from_json;
    #[derive(Debug)]
    struct NonNeg;
    impl bitgrad::constraints::Constraint for NonNeg {
        fn apply(&self, g: &mut bitgrad::Graph, w: bitgrad::ValueId) -> bitgrad::Result<bitgrad::ValueId> {
            g.unary(bitgrad::graph::UnaryOp::Relu, w)
        }
        fn to_keras(&self) -> serde_json::Value {
            serde_json::json!({"class_name": "NonNegForTest", "config": {}})
        }
    }
    let json = edited(|v| {
        let c = &mut v["config"]["layers"][2]["config"];
        c["kernel_initializer"] = serde_json::json!({"class_name": "function", "config": "counting_for_test"});
        c["kernel_constraint"] = serde_json::json!({"class_name": "NonNegForTest", "config": {}});
    });
    let e = model_from_json("m.json", &json).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("counting_for_test"), "{e}");
    bitgrad::layers::initializers::register("counting_for_test", |s| (0..s.numel()).map(|i| i as f32).collect()).unwrap();
    let e = model_from_json("m.json", &json).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("NonNegForTest") && e.contains("weight_clip"), "{e}");
    bitgrad::constraints::register("NonNegForTest", |_| Ok(Box::new(NonNeg))).unwrap();
    let model = model_from_json("m.json", &json).unwrap();
    let built = model.build(1, Mode::Inference).unwrap();
    let w = built.network.ctx.weights.iter().find(|w| w.name.ends_with("kernel") && w.constraint.is_some()).unwrap();
    let mut params = ParamStore::new();
    let mut plan = Plan::new(&Device::cpu(), built.graph(), &[w.variable], &mut params).unwrap();
    plan.run().unwrap();
    assert_eq!(&plan.fetch(w.variable).unwrap().as_f32().unwrap()[..4], [0.0, 1.0, 2.0, 3.0]);
    // Both write back under their names; built-in names cannot be taken.
    let text = bitgrad::io::keras::export::model_to_json(&model).unwrap();
    assert!(text.contains("counting_for_test") && text.contains("NonNegForTest"), "{text}");
    assert!(bitgrad::layers::initializers::register("glorot_uniform", |_| Vec::new()).is_err());
    assert!(bitgrad::constraints::register("weight_clip", |_| Ok(Box::new(NonNeg))).is_err());
}
