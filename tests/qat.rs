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
