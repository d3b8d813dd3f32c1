//! The quantizer catalogue against the real Larq 0.14 (fixtures written by
//! tests/fixtures/gen_quantizers.py): forward values and pseudo-gradients on corner-case grids,
//! on the CPU reference and on the GPU; aliases, precisions, JSON round trips and errors.

mod common;

use bitgrad::quantizers::{DoReFaMode, Quantizer};
use bitgrad::{DType, Device, Graph, HostTensor};
use common::*;
use serde_json::Value;

struct Fixture {
    name: String,
    quantizer: Value,
    shape: Vec<usize>,
    x: Vec<f32>,
    dy: Vec<f32>,
    y: Vec<f32>,
    dx: Vec<f32>,
}

fn fixtures() -> Vec<Fixture> {
    let text = include_str!("fixtures/quantizers.json");
    let v: Value = serde_json::from_str(text).expect("fixture JSON parses");
    assert_eq!(v["larq"], "0.14.0");
    let floats = |c: &Value, k: &str| c[k].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect::<Vec<f32>>();
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Fixture {
            name: c["name"].as_str().unwrap().to_string(),
            quantizer: c["quantizer"].clone(),
            shape: c["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect(),
            x: floats(c, "x"),
            dy: floats(c, "dy"),
            y: floats(c, "y"),
            dx: floats(c, "dx"),
        })
        .collect()
}

/// Larq's f32 results against ours: transcendental functions (tanh, cosh) and reductions may
/// differ in the last bits between TensorFlow, Rust and the GPU.
const LARQ: Tol = Tol { abs: 2e-6, rel: 2e-5 };

#[test]
fn every_quantizer_matches_larq_forward_and_gradient() {
    let cases = fixtures();
    assert_eq!(cases.len(), 24);
    for f in &cases {
        let q = Quantizer::from_keras(&f.quantizer).unwrap_or_else(|e| panic!("{}: {e}", f.name));
        let mut g = Graph::new();
        let x = g.input("x", &f.shape[..], DType::F32).unwrap();
        let dy = g.input("dy", &f.shape[..], DType::F32).unwrap();
        let y = q.apply(&mut g, x).unwrap();
        let yd = g.mul(y, dy).unwrap();
        let loss = g.sum(yd, &(0..f.shape.len()).collect::<Vec<_>>(), false).unwrap();
        let dx = g.backward(loss, &[x]).unwrap()[0];
        let case = Case {
            graph: g,
            outputs: vec![y, dx],
            feeds: vec![
                ("x", HostTensor::f32(&f.shape[..], f.x.clone()).unwrap()),
                ("dy", HostTensor::f32(&f.shape[..], f.dy.clone()).unwrap()),
            ],
        };
        let want_y = HostTensor::f32(&f.shape[..], f.y.clone()).unwrap();
        let want_dx = HostTensor::f32(&f.shape[..], f.dx.clone()).unwrap();
        for device in [Some(Device::cpu()), gpu().cloned()].into_iter().flatten() {
            let out = run_on(&device, &case, 1).unwrap();
            assert_close(&format!("{} forward on {}", f.name, device.describe()), &out[0], &want_y, LARQ);
            assert_close(&format!("{} gradient on {}", f.name, device.describe()), &out[1], &want_dx, LARQ);
        }
    }
}

#[test]
fn larq_configs_round_trip_through_json() {
    for f in fixtures() {
        let q = Quantizer::from_keras(&f.quantizer).unwrap();
        assert_eq!(q.class_name(), f.quantizer["class_name"].as_str().unwrap(), "{}", f.name);
        let back = Quantizer::from_keras(&q.to_keras()).unwrap();
        assert_eq!(back, q, "{}", f.name);
        // Every parameter Larq wrote is one we read back.
        let ours = q.to_keras();
        for (k, v) in f.quantizer["config"].as_object().unwrap() {
            if ["name", "trainable", "dtype"].contains(&k.as_str()) {
                continue;
            }
            let mine = &ours["config"][k];
            let same = match (v.as_f64(), mine.as_f64()) {
                (Some(a), Some(b)) => (a as f32) == (b as f32),
                _ => v == mine,
            };
            assert!(same, "{}: `{k}` is {v} in Larq but {mine} here", f.name);
        }
    }
}

#[test]
fn aliases_defaults_and_precisions_follow_larq() {
    let cases = [
        ("ste_sign", Quantizer::SteSign { clip_value: Some(1.0) }, 1),
        ("approx_sign", Quantizer::ApproxSign, 1),
        ("ste_heaviside", Quantizer::SteHeaviside { clip_value: Some(1.0) }, 1),
        ("swish_sign", Quantizer::SwishSign { beta: 5.0 }, 1),
        ("magnitude_aware_sign", Quantizer::MagnitudeAwareSign { clip_value: Some(1.0) }, 1),
        ("ste_tern", Quantizer::SteTern { threshold_value: 0.05, ternary_weight_networks: false, clip_value: Some(1.0) }, 2),
        ("dorefa_quantizer", Quantizer::DoReFa { k_bit: 2, mode: DoReFaMode::Activations }, 2),
    ];
    for (alias, want, precision) in cases {
        let q = Quantizer::from_name(alias).unwrap();
        assert_eq!(q, want, "{alias}");
        assert_eq!(q.precision(), precision, "{alias}");
        assert_eq!(Quantizer::from_keras(&Value::String(alias.into())).unwrap(), want);
        assert_eq!(Quantizer::from_name(want.class_name()).unwrap(), want, "by class name");
    }
    assert_eq!(Quantizer::NoOp { precision: 3 }.precision(), 3);
    assert_eq!(Quantizer::DoReFa { k_bit: 5, mode: DoReFaMode::Weights }.precision(), 5);
}

#[test]
fn bad_names_and_parameters_name_the_quantizer_and_parameter() {
    let err = Quantizer::from_name("ste_sgn").unwrap_err().to_string();
    assert!(err.contains("ste_sgn") && err.contains("ste_sign"), "{err}");
    let err = Quantizer::from_name("noop").unwrap_err().to_string();
    assert!(err.contains("NoOp") && err.contains("precision"), "{err}");
    let bad = [
        (serde_json::json!({"class_name": "DoReFa", "config": {"k_bit": 0}}), "DoReFa", "k_bit"),
        (serde_json::json!({"class_name": "DoReFa", "config": {"mode": "bias"}}), "DoReFa", "mode"),
        (serde_json::json!({"class_name": "SteSign", "config": {"clip_value": -1.0}}), "SteSign", "clip_value"),
        (serde_json::json!({"class_name": "SteTern", "config": {"threshold_value": -0.5}}), "SteTern", "threshold_value"),
        (serde_json::json!({"class_name": "SteTern", "config": {"ternary_weight_networks": "yes"}}), "SteTern", "ternary_weight_networks"),
        (serde_json::json!({"class_name": "SwishSign", "config": {"beta": "big"}}), "SwishSign", "beta"),
        (serde_json::json!({"class_name": "NoOp", "config": {}}), "NoOp", "precision"),
        (serde_json::json!({"class_name": "Sign", "config": {}}), "quantizer class", "Sign"),
    ];
    for (v, quantizer, param) in bad {
        let err = Quantizer::from_keras(&v).unwrap_err().to_string();
        assert!(err.contains(quantizer) && err.contains(param), "{v}: {err}");
    }
    let mut g = Graph::new();
    let x = g.input("x", [3], DType::F32).unwrap();
    let err = Quantizer::SteHeaviside { clip_value: Some(f32::NAN) }.apply(&mut g, x).unwrap_err().to_string();
    assert!(err.contains("SteHeaviside") && err.contains("clip_value"), "{err}");
}

fn identity_sign(name: &str) -> std::sync::Arc<bitgrad::quantizers::CustomQuantizer> {
    bitgrad::quantizers::CustomQuantizer::new(
        name,
        1,
        "// the Larq guide's identity-gradient sign
fn forward(x: f32) -> f32 { return sign(x); }
fn gradient(x: f32, dy: f32) -> f32 { return dy * scale_of(x); }
fn scale_of(x: f32) -> f32 { return 1.0; }",
        |x| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        },
        |_, dy| dy,
    )
    .unwrap()
}

#[test]
fn custom_quantizers_run_spliced_wgsl_on_the_gpu_and_closures_on_the_cpu() {
    let q = Quantizer::Custom(identity_sign("IdentitySignTest"));
    let mut g = Graph::new();
    let x = g.input("x", [17], DType::F32).unwrap();
    let dy = g.input("dy", [17], DType::F32).unwrap();
    let y = q.apply(&mut g, x).unwrap();
    let yd = g.mul(y, dy).unwrap();
    let loss = g.sum(yd, &[0], false).unwrap();
    let dx = g.backward(loss, &[x]).unwrap()[0];
    let xs: Vec<f32> = (0..17).map(|i| i as f32 * 0.25 - 2.0).collect(); // includes 0
    let dys = uniform(3, 17, 1.0);
    let case = Case {
        graph: g,
        outputs: vec![y, dx],
        feeds: vec![("x", HostTensor::f32([17], xs.clone()).unwrap()), ("dy", HostTensor::f32([17], dys.clone()).unwrap())],
    };
    let cpu = run_on(&Device::cpu(), &case, 1).unwrap();
    let want: Vec<f32> = xs
        .iter()
        .map(|&v| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                0.0
            }
        })
        .collect();
    assert_eq!(cpu[0].as_f32().unwrap(), &want[..]);
    assert_eq!(cpu[1].as_f32().unwrap(), &dys[..], "identity gradient");
    check_case("custom identity sign", &case, Tol { abs: 0.0, rel: 0.0 });
    // Known by its class name in Keras JSON once defined.
    assert_eq!(Quantizer::from_keras(&serde_json::json!({"class_name": "IdentitySignTest", "config": {}})).unwrap(), q);
    assert_eq!(Quantizer::from_name("IdentitySignTest").unwrap(), q);
}

#[test]
fn invalid_custom_wgsl_is_reported_against_the_users_code() {
    let err = bitgrad::quantizers::CustomQuantizer::new(
        "Broken",
        1,
        "fn forward(x: f32) -> f32 { return sgn(x); }\nfn gradient(x: f32, dy: f32) -> f32 { return dy; }",
        |x| x,
        |_, dy| dy,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("custom quantizer Broken") && err.contains("sgn") && err.contains("return sgn(x);"), "{err}");
    let err = bitgrad::quantizers::CustomQuantizer::new(
        "WrongSig",
        1,
        "fn forward(x: f32) -> i32 { return 0; }\nfn gradient(x: f32, dy: f32) -> f32 { return dy; }",
        |x| x,
        |_, dy| dy,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("WrongSig") && err.contains("fn forward(x: f32) -> f32"), "{err}");
    let err = bitgrad::quantizers::CustomQuantizer::new("NoPrecision", 0, "", |x| x, |_, dy| dy).unwrap_err().to_string();
    assert!(err.contains("precision"), "{err}");
}

#[test]
fn binary_kernel_quantizers_without_a_constraint_warn_about_starved_weights() {
    use bitgrad::quantizers::starved_weights_warning;
    let ste = Quantizer::from_name("ste_sign").unwrap();
    let msg = starved_weights_warning(Some(&ste), "kernel_constraint", false).unwrap();
    assert!(msg.contains("`kernel_constraint`") && msg.contains("starved weights"), "{msg}");
    assert!(starved_weights_warning(Some(&ste), "kernel_constraint", true).is_none());
    assert!(starved_weights_warning(None, "kernel_constraint", false).is_none());
    // Larq's rule: precision 1 and not NoOp.
    assert!(starved_weights_warning(Some(&Quantizer::NoOp { precision: 1 }), "kernel_constraint", false).is_none());
    assert!(starved_weights_warning(Some(&Quantizer::DoReFa { k_bit: 2, mode: DoReFaMode::Weights }), "kernel_constraint", false).is_none());
    assert!(starved_weights_warning(Some(&Quantizer::DoReFa { k_bit: 1, mode: DoReFaMode::Weights }), "kernel_constraint", false).is_some());
    assert!(starved_weights_warning(Some(&Quantizer::from_name("ste_tern").unwrap()), "kernel_constraint", false).is_none());
}
