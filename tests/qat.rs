//! Quantization-aware training against TF Model Optimization (fixtures written by
//! tests/fixtures/gen_qat.py): its quantizers' outputs, input gradients and range updates over
//! training steps and in inference, on the CPU reference and the GPU.

mod common;

use common::gpu;

use bitgrad::layers::{BuildContext, Mode};
use bitgrad::qat::{AllValuesQuantizer, LastValueQuantizer, MovingAverageQuantizer, Quantizer};
use bitgrad::{DType, Device, Graph, HostTensor, ParamStore, Plan, Shape};
use serde_json::Value;

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect()
}

fn quantizer(case: &Value) -> Box<dyn Quantizer> {
    let c = &case["config"];
    let (bits, axis, sym, narrow) = (
        c["num_bits"].as_u64().unwrap() as u32,
        c["per_axis"].as_bool().unwrap(),
        c["symmetric"].as_bool().unwrap(),
        c["narrow_range"].as_bool().unwrap(),
    );
    match case["quantizer"].as_str().unwrap() {
        "LastValueQuantizer" => Box::new(LastValueQuantizer::new(bits, axis, sym, narrow)),
        "MovingAverageQuantizer" => Box::new(MovingAverageQuantizer::new(bits, axis, sym, narrow)),
        "AllValuesQuantizer" => Box::new(AllValuesQuantizer::new(bits, axis, sym, narrow)),
        other => panic!("unknown quantizer {other}"),
    }
}

/// The quantizer applied to an input `x` in `mode`: (graph, outputs to fetch).
fn graph(q: &dyn Quantizer, shape: &[usize], mode: Mode) -> (Graph, Vec<bitgrad::ValueId>) {
    let mut g = Graph::new();
    let mut ctx = BuildContext::new(mode);
    let x = g.input("x", shape, DType::F32).unwrap();
    let state = q.build(&mut g, &mut ctx, &Shape::new(shape), "layer", "t").unwrap();
    let y = q.apply(&mut g, &mut ctx, x, &state).unwrap();
    if mode == Mode::Inference {
        return (g, vec![y]);
    }
    let dy = g.input("dy", shape, DType::F32).unwrap();
    let weighted = g.mul(y, dy).unwrap();
    let loss = g.sum(weighted, &(0..shape.len()).collect::<Vec<_>>(), false).unwrap();
    let dx = g.backward(loss, &[x]).unwrap()[0];
    (g, vec![y, dx])
}

fn assert_bits(what: &str, got: &HostTensor, want: &[f32]) {
    for (i, (a, e)) in got.as_f32().unwrap().iter().zip(want).enumerate() {
        assert!(a.to_bits() == e.to_bits() || (*a == 0.0 && *e == 0.0), "{what} {i}: {a} vs TF-MOT's {e}");
    }
}

#[test]
fn quantizers_match_tf_model_optimization_over_steps() {
    let cases: Value = serde_json::from_str(include_str!("fixtures/qat_quantizers.json")).unwrap();
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 44);
    for case in cases {
        let q = quantizer(case);
        let shape: Vec<usize> = case["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        let name = format!("{} {} {:?}", case["quantizer"], case["config"], shape);
        for device in [Some(Device::cpu()), gpu().cloned()].into_iter().flatten() {
            let mut params = ParamStore::new();
            let (train, train_out) = graph(q.as_ref(), &shape, Mode::Training);
            let (infer, infer_out) = graph(q.as_ref(), &shape, Mode::Inference);
            let mut train_plan = Plan::new(&device, &train, &train_out, &mut params).unwrap();
            let mut infer_plan = Plan::new(&device, &infer, &infer_out, &mut params).unwrap();
            for (step, call) in case["calls"].as_array().unwrap().iter().enumerate() {
                let at = format!("{name} on {}, call {step}", device.describe());
                let x = HostTensor::f32(&shape[..], floats(&call["x"])).unwrap();
                let got = if call["training"].as_bool().unwrap() {
                    train_plan.feed("x", &x).unwrap();
                    train_plan.feed("dy", &HostTensor::f32(&shape[..], floats(&call["upstream"])).unwrap()).unwrap();
                    train_plan.run().unwrap();
                    let dx = train_plan.fetch(train_out[1]).unwrap();
                    assert_bits(&format!("{at}: input gradient"), &dx, &floats(&call["dx"]));
                    train_plan.fetch(train_out[0]).unwrap()
                } else {
                    infer_plan.feed("x", &x).unwrap();
                    infer_plan.run().unwrap();
                    infer_plan.fetch(infer_out[0]).unwrap()
                };
                assert_bits(&format!("{at}: value"), &got, &floats(&call["y"]));
                for end in ["min", "max"] {
                    let var = params.get(&format!("layer/t_{end}")).unwrap().download().unwrap();
                    assert_bits(&format!("{at}: {end}"), &var, &floats(&call[end]));
                }
            }
        }
    }
}

fn qat_fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qat_models").join(name)
}

/// `got` against TF-MOT's `want`: products and sums run in another order, and an output that
/// lands next to a rounding boundary may take the next level, so values agree within 1e-4 and
/// at most `steps` elements may differ by up to one quantization step `step`.
fn assert_quantized_close(what: &str, got: &HostTensor, want: &HostTensor, step: f32, steps: usize) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    let mut off = 0;
    for (i, (a, e)) in got.as_f32().unwrap().iter().zip(want.as_f32().unwrap()).enumerate() {
        let d = (a - e).abs();
        if d > 1e-4 + 1e-4 * e.abs() {
            off += 1;
            assert!(d <= step * 1.01 && off <= steps, "{what} {i}: {a} vs TF-MOT's {e}");
        }
    }
}

#[test]
fn quantized_models_match_tf_model_optimization() {
    use bitgrad::io::keras::{load_weights, read_model};
    use bitgrad::io::safetensors::TensorFile;
    use bitgrad::models::Model;
    for name in ["qat_cnn", "qat_branches"] {
        let model = read_model(&qat_fixture(&format!("{name}.json"))).unwrap();
        let q = bitgrad::qat::quantize_model(model).unwrap_or_else(|e| panic!("{name}: {e}"));
        let data = TensorFile::read(&qat_fixture(&format!("{name}.data.safetensors"))).unwrap();
        for device in [Some(Device::cpu()), gpu().cloned()].into_iter().flatten() {
            let on = format!("{name} on {}", device.describe());
            let mut train = q.build(4, Mode::Training).unwrap();
            let mut params = ParamStore::new();
            // The float model's weights; the quantization ranges start from their initializers.
            load_weights(&train, &mut params, &device, &qat_fixture(&format!("{name}.safetensors")))
                .unwrap_or_else(|e| panic!("{on}: {e}"));
            let trainable: Vec<(String, bitgrad::ValueId)> =
                train.network.ctx.weights.iter().filter(|w| w.trainable).map(|w| (w.name.clone(), w.variable)).collect();
            let (x, y) = (train.inputs[0], train.outputs[0]);
            let g = &mut train.network.graph;
            let up = g.constant(data.tensors["upstream"].clone()).unwrap();
            let weighted = g.mul(y, up).unwrap();
            let loss = g.sum(weighted, &[0, 1], false).unwrap();
            let wrt: Vec<bitgrad::ValueId> = std::iter::once(x).chain(trainable.iter().map(|(_, v)| *v)).collect();
            let grads = g.backward(loss, &wrt).unwrap();
            let mut outs = vec![y];
            outs.extend(&grads);
            let mut plan = Plan::new(&device, train.graph(), &outs, &mut params).unwrap();
            plan.feed(&q.inputs()[0].0, &data.tensors["input"]).unwrap();
            plan.run().unwrap();
            assert_quantized_close(&format!("{on}: training output"), &plan.fetch(y).unwrap(), &data.tensors["output_training"], 0.01, 1);
            let names = std::iter::once("input".to_string()).chain(trainable.iter().map(|(n, _)| n.clone()));
            for (n, v) in names.zip(&grads) {
                let want = &data.tensors[&format!("grad/{n}")];
                let got = plan.fetch(*v).unwrap();
                let scale = want.as_f32().unwrap().iter().fold(1f32, |m, v| m.max(v.abs()));
                for (i, (a, e)) in got.as_f32().unwrap().iter().zip(want.as_f32().unwrap()).enumerate() {
                    assert!((a - e).abs() <= 2e-4 * scale, "{on}: gradient of {n} [{i}]: {a} vs TF-MOT's {e}");
                }
            }
            // Ranges and BatchNorm statistics after the step.
            for (key, want) in data.tensors.iter().filter(|(k, _)| k.starts_with("after/")) {
                let var = key.strip_prefix("after/").unwrap();
                let got = params.get(var).unwrap_or_else(|| panic!("{on}: no variable `{var}`")).download().unwrap();
                for (a, e) in got.as_f32().unwrap().iter().zip(want.as_f32().unwrap()) {
                    assert!((a - e).abs() <= 1e-5 * (1.0 + e.abs()), "{on}: `{var}` after the step: {a} vs TF-MOT's {e}");
                }
            }
            let infer = q.build(4, Mode::Inference).unwrap();
            let mut plan = Plan::new(&device, infer.graph(), &infer.outputs, &mut params).unwrap();
            plan.feed(&q.inputs()[0].0, &data.tensors["input_inference"]).unwrap();
            plan.run().unwrap();
            let got = plan.fetch(infer.outputs[0]).unwrap();
            assert_quantized_close(&format!("{on}: inference output"), &got, &data.tensors["output_inference"], 0.01, 1);
        }
    }
}

mod api {
    use std::sync::Arc;

    use bitgrad::layers::{Activation, Flatten, Layer, Mode, QuantDense, QuantLayer, QuantLocallyConnected};
    use bitgrad::models::{Built, Model, Network, Sequential};
    use bitgrad::qat::{
        quantize_annotate_layer, quantize_apply, quantize_model, LayerQuantizeConfig, MovingAverageQuantizer, NoOpQuantizeConfig,
        QuantizeConfig, Scheme,
    };
    use bitgrad::quantizers::Quantizer as LarqQuantizer;
    use bitgrad::{Device, Graph, HostTensor, ParamStore, Plan, ValueId};

    fn names(built: &Built) -> Vec<String> {
        built.network.ctx.weights.iter().map(|w| w.name.clone()).collect()
    }

    fn has(built: &Built, name: &str) -> bool {
        names(built).iter().any(|n| n == name)
    }

    #[test]
    fn quantize_apply_quantizes_only_annotated_layers() {
        let noop: Arc<dyn QuantizeConfig> = Arc::new(NoOpQuantizeConfig);
        let model = Sequential::new()
            .named("m")
            .input_shape(&[6])
            .add(quantize_annotate_layer(QuantDense::new(5).named("a"), None))
            .add(QuantDense::new(4).named("b"))
            .add(quantize_annotate_layer(QuantDense::new(3).named("c"), Some(noop)));
        let q = quantize_apply(model, Scheme::default_8bit()).unwrap();
        let built = q.build(2, Mode::Training).unwrap();
        for n in ["a/kernel_min", "a/kernel_max", "a/post_activation_min", "a/post_activation_max"] {
            assert!(has(&built, n), "{n} missing: {:?}", names(&built));
        }
        let extra: Vec<String> = names(&built).into_iter().filter(|n| n.contains("_min") && !n.starts_with("a/")).collect();
        assert!(extra.is_empty(), "only `a` is quantized, and no input quantizer: {extra:?}");
    }

    /// A layer bitgrad does not know: y = 2x.
    struct Double;

    impl Layer for Double {
        fn name(&self) -> &str {
            "double"
        }

        fn build(&self, g: &mut Graph, x: ValueId, _: &mut bitgrad::layers::BuildContext) -> bitgrad::Result<ValueId> {
            g.scale(x, 2.0)
        }
    }

    #[test]
    fn unsupported_layers_need_a_config_and_custom_configs_work() {
        let e = quantize_model(Sequential::new().named("m").input_shape(&[6]).add(QuantDense::new(4).named("d")).add(Double))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("`double`") && e.contains("quantize_annotate_layer") && e.contains("NoOpQuantizeConfig"), "{e}");
        let lc = Sequential::new().named("m").input_shape(&[6, 2]).add(QuantLocallyConnected::new(2, &[3]).named("local"));
        let e = quantize_model(lc).err().unwrap().to_string();
        assert!(e.contains("`local`") && e.contains("QuantLocallyConnected1D"), "{e}");
        // With a config of its own the custom layer's output is quantized.
        let config: Arc<dyn QuantizeConfig> = Arc::new(LayerQuantizeConfig {
            output: Some(Arc::new(MovingAverageQuantizer::new(8, false, false, false))),
            ..Default::default()
        });
        let model = Sequential::new()
            .named("m")
            .input_shape(&[6])
            .add(QuantDense::new(4).named("d"))
            .add(quantize_annotate_layer(Double, Some(config)));
        let built = quantize_model(model).unwrap().build(1, Mode::Inference).unwrap();
        assert!(has(&built, "double/output_min") && has(&built, "quantize_layer/quantize_layer_min"), "{:?}", names(&built));
    }

    /// A subclassed model: its own struct holds the layers and applies them.
    struct TwoDense {
        first: QuantDense,
        second: QuantDense,
    }

    impl Model for TwoDense {
        fn name(&self) -> &str {
            "two_dense"
        }

        fn inputs(&self) -> Vec<(String, Vec<usize>)> {
            vec![("x".into(), vec![6])]
        }

        fn call(&self, net: &mut Network, inputs: &[ValueId]) -> bitgrad::Result<Vec<ValueId>> {
            let h = net.apply(&self.first, inputs[0])?;
            Ok(vec![net.apply(&self.second, h)?])
        }
    }

    #[test]
    fn subclassed_models_quantize_and_their_outputs_take_256_levels_at_most() {
        let model =
            TwoDense { first: QuantDense::new(16).named("first").activation(Activation::Relu), second: QuantDense::new(8).named("second") };
        let q = quantize_model(model).unwrap();
        let infer = q.build(64, Mode::Inference).unwrap();
        for n in ["first/kernel_min", "second/post_activation_max", "quantize_layer/quantize_layer_max"] {
            assert!(has(&infer, n), "{n}: {:?}", names(&infer));
        }
        let mut params = ParamStore::new();
        let mut plan = Plan::new(&Device::cpu(), infer.graph(), &infer.outputs, &mut params).unwrap();
        let x: Vec<f32> = (0..64 * 6).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
        plan.feed("x", &HostTensor::f32([64, 6], x).unwrap()).unwrap();
        plan.run().unwrap();
        let y = plan.fetch(infer.outputs[0]).unwrap();
        // On the initial range [-6, 6] an 8-bit output takes multiples of 12/255.
        let step = 12.0f32 / 255.0;
        for v in y.as_f32().unwrap() {
            let levels = v / step;
            assert!((levels - levels.round()).abs() < 1e-3, "{v} is not on the 8-bit grid of [-6, 6]");
        }
    }

    #[test]
    fn binary_layers_mix_with_8_bit_first_and_last_layers() {
        let ste = || LarqQuantizer::SteSign { clip_value: Some(1.0) };
        let model = Sequential::new()
            .named("mixed")
            .input_shape(&[4, 4, 1])
            .add(Flatten::new().named("flatten"))
            .add(QuantDense::new(32).named("first"))
            .add(QuantDense::new(32).named("binary").input_quantizer(ste()).kernel_quantizer(ste()))
            .add(QuantDense::new(10).named("last"));
        let q = quantize_model(model).unwrap();
        let mut built = q.build(8, Mode::Training).unwrap();
        assert!(has(&built, "first/kernel_min") && has(&built, "last/kernel_min"));
        assert!(!names(&built).iter().any(|n| n.starts_with("binary/") && n.contains("_min")), "the binary layer keeps its own quantizers");
        // A training step with gradients for every trainable weight runs on both paths.
        let trainable: Vec<ValueId> = built.network.ctx.weights.iter().filter(|w| w.trainable).map(|w| w.variable).collect();
        let y = built.outputs[0];
        let g = &mut built.network.graph;
        let loss = g.sum(y, &[0, 1], false).unwrap();
        let grads = g.backward(loss, &trainable).unwrap();
        let mut params = ParamStore::new();
        let mut plan = Plan::new(&Device::cpu(), built.graph(), &grads, &mut params).unwrap();
        plan.feed("input", &HostTensor::f32([8, 4, 4, 1], vec![0.25; 128]).unwrap()).unwrap();
        plan.run().unwrap();
        for g in grads {
            assert!(plan.fetch(g).unwrap().as_f32().unwrap().iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn the_n_bit_scheme_sets_weight_and_activation_widths() {
        let dense = QuantDense::new(3).named("d");
        let config = Scheme::n_bit(4, 8).config_for(&dense).unwrap();
        assert_eq!(config.weight_quantizer("kernel").unwrap().num_bits(), 4);
        assert_eq!(config.activation_quantizer().unwrap().num_bits(), 8);
        let e = quantize_apply(
            bitgrad::qat::quantize_annotate_model(Sequential::new().named("m").input_shape(&[3]).add(dense)),
            Scheme::n_bit(17, 8),
        );
        assert!(e.err().unwrap().to_string().contains("17"));
    }
}

#[test]
fn per_axis_ranges_are_each_channels_own() {
    // TF-MOT's MovingAverage and AllValues quantizers cannot quantize per axis; here a per-axis
    // quantizer keeps, per channel, exactly the range a per-tensor one keeps for that channel.
    let (rows, channels) = (5, 3);
    let x: Vec<f32> = (0..rows * channels).map(|i| ((i * 29 % 31) as f32 - 13.0) / 7.0 + (i % channels) as f32).collect();
    let kinds: [fn(bool) -> Box<dyn Quantizer>; 2] = [
        |axis| Box::new(MovingAverageQuantizer::new(8, axis, false, false)),
        |axis| Box::new(AllValuesQuantizer::new(6, axis, true, false)),
    ];
    for make in kinds {
        let mut params = ParamStore::new();
        let (g, outs) = graph(make(true).as_ref(), &[rows, channels], Mode::Training);
        let mut plan = Plan::new(&Device::cpu(), &g, &outs, &mut params).unwrap();
        plan.feed("x", &HostTensor::f32([rows, channels], x.clone()).unwrap()).unwrap();
        plan.feed("dy", &HostTensor::f32([rows, channels], vec![1.0; rows * channels]).unwrap()).unwrap();
        plan.run().unwrap();
        let per_axis = [params.get("layer/t_min").unwrap().download().unwrap(), params.get("layer/t_max").unwrap().download().unwrap()];
        for c in 0..channels {
            let column: Vec<f32> = (0..rows).map(|r| x[r * channels + c]).collect();
            let mut p = ParamStore::new();
            let (g, outs) = graph(make(false).as_ref(), &[rows, 1], Mode::Training);
            let mut plan = Plan::new(&Device::cpu(), &g, &outs, &mut p).unwrap();
            plan.feed("x", &HostTensor::f32([rows, 1], column).unwrap()).unwrap();
            plan.feed("dy", &HostTensor::f32([rows, 1], vec![1.0; rows]).unwrap()).unwrap();
            plan.run().unwrap();
            for (i, end) in ["t_min", "t_max"].iter().enumerate() {
                let own = p.get(&format!("layer/{end}")).unwrap().download().unwrap().as_f32().unwrap()[0];
                assert_eq!(per_axis[i].as_f32().unwrap()[c], own, "{end} of channel {c}");
            }
        }
    }
}

/// The fixture model `name` quantized with `scheme` and trained one step on the CPU: the model and
/// its weights with their ranges.
fn trained(name: &str, scheme: bitgrad::qat::Scheme) -> (bitgrad::qat::QuantizedModel, bitgrad::io::safetensors::TensorFile) {
    use bitgrad::io::keras::{load_weights, read_model};
    use bitgrad::io::safetensors::TensorFile;
    use bitgrad::models::Model;
    let model = read_model(&qat_fixture(&format!("{name}.json"))).unwrap();
    let q = bitgrad::qat::quantize_apply(bitgrad::qat::quantize_annotate_model(model), scheme).unwrap();
    let data = TensorFile::read(&qat_fixture(&format!("{name}.data.safetensors"))).unwrap();
    let train = q.build(4, Mode::Training).unwrap();
    let mut params = ParamStore::new();
    load_weights(&train, &mut params, &Device::cpu(), &qat_fixture(&format!("{name}.safetensors"))).unwrap();
    let mut plan = Plan::new(&Device::cpu(), train.graph(), &train.outputs, &mut params).unwrap();
    plan.feed(&q.inputs()[0].0, &data.tensors["input"]).unwrap();
    plan.run().unwrap();
    let mut file = TensorFile::default();
    for w in &train.network.ctx.weights {
        file.tensors.insert(w.name.clone(), params.get(&w.name).unwrap().download().unwrap());
    }
    (q, file)
}

#[test]
fn integer_exports_are_4_to_8_times_smaller_and_infer_bit_for_bit() {
    use bitgrad::io::execute::infer_with;
    use bitgrad::io::safetensors::TensorFile;
    use bitgrad::qat::export::{export, QuantizedExport};
    use bitgrad::qat::Scheme;
    for name in ["qat_cnn", "qat_branches"] {
        let x = TensorFile::read(&qat_fixture(&format!("{name}.data.safetensors"))).unwrap().tensors["input_inference"].clone();
        for (scheme, ratio) in [(Scheme::default_8bit(), 4), (Scheme::n_bit(4, 8), 8)] {
            let (q, weights) = trained(name, scheme);
            let (file, report) = export(&q, &weights, name).unwrap();
            assert!(!report.coded.is_empty());
            for w in &report.coded {
                // Codes take bits/32 of the f32 bytes, rounded up to a word.
                let n = w.float_bytes / 4;
                assert_eq!(w.bits, scheme.weight_bits);
                assert_eq!(w.code_bytes, 4 * (n * w.bits as usize).div_ceil(32), "{name} {}", w.name);
                assert!(w.float_bytes + 4 * ratio > ratio * w.code_bytes, "{name} {}: {} -> {} bytes", w.name, w.float_bytes, w.code_bytes);
            }
            let bytes = file.to_bytes().unwrap();
            let back =
                QuantizedExport::from_file(name, TensorFile::from_bytes(name, &bytes).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
            for device in [Some(Device::cpu()), gpu().cloned()].into_iter().flatten() {
                let want = infer_with(&q, &device, &weights, "trained", &x).unwrap();
                let got = infer_with(&back.model, &device, &back.weights, name, &x).unwrap();
                assert_bits(
                    &format!("{name} {scheme:?} from its export on {}, against the trained model there", device.describe()),
                    &got,
                    want.as_f32().unwrap(),
                );
            }
        }
    }
}

#[test]
fn damaged_integer_exports_are_named_errors() {
    use bitgrad::io::safetensors::TensorFile;
    use bitgrad::qat::export::{export, QuantizedExport};
    let (q, weights) = trained("qat_cnn", bitgrad::qat::Scheme::default_8bit());
    let (file, _) = export(&q, &weights, "w").unwrap();
    type Edit<'a> = &'a dyn Fn(&mut TensorFile);
    let err = |edit: Edit| {
        let mut f = file.clone();
        edit(&mut f);
        QuantizedExport::from_file("e.safetensors", f).err().map(|e| e.to_string()).unwrap_or_default()
    };
    let cases: Vec<(Edit, &str)> = vec![
        (&|f| drop(f.metadata.remove("format")), "not an integer export"),
        (&|f| drop(f.metadata.insert("weight_bits".into(), "x".into())), "`weight_bits` is not a number"),
        (&|f| drop(f.tensors.remove("dense/kernel/scale")), "`dense/kernel`: missing `dense/kernel/scale`"),
        (&|f| drop(f.tensors.insert("dense/kernel".into(), HostTensor::u32([3], vec![0; 3]).unwrap())), "3 words for 80 values"),
        (&|f| drop(f.tensors.remove("dense/bias")), "missing tensors: dense/bias"),
    ];
    for (edit, want) in cases {
        let e = err(edit);
        assert!(e.contains("e.safetensors") && e.contains(want), "want `{want}`: {e:?}");
    }
    // Ranges are part of what an export needs.
    let mut partial = weights.clone();
    partial.tensors.remove("dense/kernel_min");
    assert!(export(&q, &partial, "w").is_err_and(|e| e.to_string().contains("dense/kernel_min")));
}

#[test]
fn batch_norm_folds_into_the_layer_before_it() {
    use bitgrad::layers::{Activation, ActivationLayer, BatchNormalization, Flatten, QuantConv, QuantDense};
    use bitgrad::models::{Model, Sequential};
    use bitgrad::qat::{quantize_annotate_model, quantize_apply, Scheme};
    let float = || {
        Sequential::new()
            .named("m")
            .input_shape(&[5, 5, 2])
            .add(QuantConv::new(3, &[3, 3]).named("conv2d"))
            .add(BatchNormalization::new().named("batch_normalization"))
            .add(ActivationLayer::new(Activation::Relu).named("relu"))
            .add(Flatten::new().named("flatten"))
            .add(QuantDense::new(4).named("dense"))
            .add(BatchNormalization::new().named("batch_normalization_1"))
    };
    let device = Device::cpu();
    // Float weights, with moving statistics away from their initial values.
    let mut params = ParamStore::new();
    let f = bitgrad::models::build(&float(), 6, Mode::Inference).unwrap();
    let mut float_plan = Plan::new(&device, f.graph(), &f.outputs, &mut params).unwrap();
    for (name, c, lo) in [("batch_normalization", 3, 0.5f32), ("batch_normalization_1", 4, 0.2)] {
        let vals = |k: f32| HostTensor::f32([c], (0..c).map(|i| lo + k * i as f32).collect()).unwrap();
        params.get(&format!("{name}/moving_mean")).unwrap().write(&vals(0.3)).unwrap();
        params.get(&format!("{name}/moving_variance")).unwrap().write(&vals(0.7)).unwrap();
        params.get(&format!("{name}/gamma")).unwrap().write(&vals(-0.4)).unwrap();
    }
    let x = HostTensor::f32([6, 5, 5, 2], (0..300).map(|i| ((i * 53 % 97) as f32 / 48.0) - 1.0).collect()).unwrap();
    float_plan.feed("input", &x).unwrap();
    float_plan.run().unwrap();
    let float_y = float_plan.fetch(f.outputs[0]).unwrap();

    let q = quantize_apply(quantize_annotate_model(float()), Scheme::n_bit(16, 16).with_batch_norm_folding()).unwrap();
    let train = q.build(6, Mode::Training).unwrap();
    let names: Vec<&str> = train.network.ctx.weights.iter().map(|w| w.name.as_str()).collect();
    for n in ["conv2d/kernel_min", "batch_normalization/gamma", "batch_normalization_1/output_min", "relu/output_min"] {
        assert!(names.contains(&n), "{n}: {names:?}");
    }
    for n in ["conv2d/post_activation_min", "batch_normalization/output_min", "dense/post_activation_min"] {
        assert!(!names.contains(&n), "{n} should not exist: {names:?}");
    }
    let before = params.get("batch_normalization/moving_mean").unwrap().download().unwrap();
    let mut plan = Plan::new(&device, train.graph(), &train.outputs, &mut params).unwrap();
    plan.feed("input", &x).unwrap();
    plan.run().unwrap();
    // Frozen statistics; the kernel's range is that of kernel * gamma / sqrt(var + eps) per channel.
    assert_eq!(params.get("batch_normalization/moving_mean").unwrap().download().unwrap(), before);
    let kernel = params.get("conv2d/kernel").unwrap().download().unwrap();
    let (k, kmax) = (kernel.as_f32().unwrap(), params.get("conv2d/kernel_max").unwrap().download().unwrap());
    for c in 0..3 {
        let s = (-0.4 * c as f32 + 0.5) / (0.7 * c as f32 + 0.5 + 1e-3).sqrt();
        let most = k.iter().skip(c).step_by(3).map(|w| (w * s).abs()).fold(0f32, f32::max);
        assert!((kmax.as_f32().unwrap()[c] - most).abs() <= 1e-5 * most, "channel {c}: {} vs {most}", kmax.as_f32().unwrap()[c]);
    }
    // At 16 bits the folded, quantized model computes what the float one does.
    let infer = q.build(6, Mode::Inference).unwrap();
    let mut plan = Plan::new(&device, infer.graph(), &infer.outputs, &mut params).unwrap();
    plan.feed("input", &x).unwrap();
    plan.run().unwrap();
    let y = plan.fetch(infer.outputs[0]).unwrap();
    for (a, e) in y.as_f32().unwrap().iter().zip(float_y.as_f32().unwrap()) {
        assert!((a - e).abs() <= 2e-3 * (1.0 + e.abs()), "{a} vs float {e}");
    }
}
