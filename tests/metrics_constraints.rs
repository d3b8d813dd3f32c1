//! flip_ratio and weight_clip against the real Larq 0.14 (fixtures written by
//! tests/fixtures/gen_metrics.py), on the CPU reference and the GPU, and metrics scopes.

mod common;

use bitgrad::constraints::{self, WeightClip};
use bitgrad::train::metrics::{metrics_scope, scoped_metrics, FlipRatio};
use bitgrad::{DType, Device, Graph, HostTensor, Init, ParamStore, Plan};
use common::*;
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/metrics.json")).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

#[test]
fn flip_ratio_matches_larq_update_by_update() {
    for seq in fixture()["flip_ratio"].as_array().unwrap() {
        let name = seq["name"].as_str().unwrap();
        let shape: Vec<usize> = seq["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        let mut g = Graph::new();
        let v = g.input("values", &shape[..], DType::F32).unwrap();
        let m = FlipRatio::record(&mut g, "flip_ratio/kernel", v).unwrap();
        for device in [Some(Device::cpu()), gpu().cloned()].into_iter().flatten() {
            let mut plan = Plan::new(&device, &g, &[m.result, m.total, m.count], &mut ParamStore::new()).unwrap();
            for (i, step) in seq["steps"].as_array().unwrap().iter().enumerate() {
                plan.feed("values", &HostTensor::f32(&shape[..], floats(&step["values"])).unwrap()).unwrap();
                plan.run().unwrap();
                let got = |id| plan.fetch(id).unwrap().as_f32().unwrap()[0];
                let (r, t, c) = (got(m.result), got(m.total), got(m.count));
                let want = |k: &str| step[k].as_f64().unwrap() as f32;
                let ok = |a: f32, b: f32| (a - b).abs() <= 1e-6 * (1.0 + b.abs());
                assert!(
                    ok(r, want("result")) && ok(t, want("total")) && ok(c, want("count")),
                    "{name} step {i} on {}: (result, total, count) = ({r}, {t}, {c}), Larq ({}, {}, {})",
                    device.describe(),
                    want("result"),
                    want("total"),
                    want("count")
                );
            }
        }
    }
}

#[test]
fn weight_clip_matches_larq_and_runs_inside_the_step() {
    for case in fixture()["weight_clip"].as_array().unwrap() {
        let c = case["clip_value"].as_f64().unwrap() as f32;
        let (x, y) = (floats(&case["x"]), floats(&case["y"]));
        let constraint = constraints::from_keras(&serde_json::json!({"class_name": "WeightClip", "config": case["config"]})).unwrap();
        assert_eq!(constraint.to_keras()["config"]["clip_value"].as_f64().unwrap() as f32, c);
        let mut g = Graph::new();
        let w = g.variable("w", [x.len()], Init::Zeros).unwrap();
        let fresh = g.input("fresh", [x.len()], DType::F32).unwrap();
        g.assign(w, fresh).unwrap(); // stands in for an optimizer update
        g.constrain(w, constraint.as_ref()).unwrap();
        let probe = g.scale(w, 1.0).unwrap();
        for device in [Some(Device::cpu()), gpu().cloned()].into_iter().flatten() {
            let mut params = ParamStore::new();
            let mut plan = Plan::new(&device, &g, &[probe], &mut params).unwrap();
            plan.feed("fresh", &HostTensor::f32([x.len()], x.clone()).unwrap()).unwrap();
            plan.run().unwrap();
            let stored = params.get("w").unwrap().download().unwrap();
            assert_eq!(stored.as_f32().unwrap(), &y[..], "clip {c} on {}", device.describe());
        }
    }
}

#[test]
fn constraint_names_and_errors() {
    assert_eq!(constraints::from_keras(&Value::String("weight_clip".into())).unwrap().to_keras()["config"]["clip_value"], 1.0);
    let err = constraints::from_keras(&Value::String("max_norm".into())).unwrap_err().to_string();
    assert!(err.contains("max_norm") && err.contains("weight_clip"), "{err}");
    let err = WeightClip::new(-0.5).unwrap_err().to_string();
    assert!(err.contains("WeightClip") && err.contains("clip_value"), "{err}");
    let mut g = Graph::new();
    let x = g.input("x", [2], DType::F32).unwrap();
    let err = g.constrain(x, &WeightClip::default()).unwrap_err().to_string();
    assert!(err.contains("not a variable"), "{err}");
}

#[test]
fn metrics_scopes_nest_and_reject_unknown_metrics() {
    assert!(scoped_metrics().is_empty());
    metrics_scope(&["flip_ratio"], || {
        assert_eq!(scoped_metrics(), ["flip_ratio"]);
        metrics_scope(&[], || assert!(scoped_metrics().is_empty())).unwrap();
        assert_eq!(scoped_metrics(), ["flip_ratio"]);
    })
    .unwrap();
    assert!(scoped_metrics().is_empty());
    let err = metrics_scope(&["accuracy"], || ()).unwrap_err().to_string();
    assert!(err.contains("accuracy") && err.contains("flip_ratio"), "{err}");
}

#[test]
fn kernel_quantizers_track_flip_ratio_by_argument_or_scope() {
    use bitgrad::quantizers::Quantizer;
    let q = Quantizer::from_name("ste_sign").unwrap();
    let mut g = Graph::new();
    let w = g.variable("dense/kernel", [3, 2], Init::Zeros).unwrap();
    let (_, none) = q.apply_to_kernel(&mut g, w, "dense/kernel", None).unwrap();
    assert!(none.is_empty(), "no metrics outside a scope");
    let (_, by_arg) = q.apply_to_kernel(&mut g, w, "a/kernel", Some(&["flip_ratio"])).unwrap();
    assert_eq!(by_arg.len(), 1);
    let scoped = metrics_scope(&["flip_ratio"], || q.apply_to_kernel(&mut g, w, "b/kernel", None)).unwrap().unwrap();
    assert_eq!(scoped.1.len(), 1);
    assert!(g.find_variable("flip_ratio/b/kernel/count").is_some());
    let err = q.apply_to_kernel(&mut g, w, "c/kernel", Some(&["accuracy"])).unwrap_err().to_string();
    assert!(err.contains("metrics") && err.contains("accuracy"), "{err}");
}
