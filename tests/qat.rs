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
    let (bits, axis, sym, narrow) =
        (c["num_bits"].as_u64().unwrap() as u32, c["per_axis"].as_bool().unwrap(), c["symmetric"].as_bool().unwrap(), c["narrow_range"].as_bool().unwrap());
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
