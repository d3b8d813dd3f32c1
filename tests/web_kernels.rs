//! The kernel checks the browser test runs (`web/tests/kernels.rs`): their expected outputs in
//! `web/tests/kernels.json` are the CPU reference's, and lavapipe must match them as WebGPU must.
//! `BITGRAD_BLESS=1 cargo test --test web_kernels` rewrites the file after a change to the cases.

mod common;

#[path = "../web/src/checks.rs"]
mod checks;

use std::collections::BTreeMap;

use bitgrad::HostTensor;
use checks::{Case, Stored};
use common::{gpu, ints, uniform};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/web/tests/kernels.json");

/// Values on a 1/64 grid in [-1.5, 1.5], led by the edge cases: zeros of both signs, |x| = 1
/// (the clip, inclusive), values just inside and outside it. On the grid every piecewise-linear
/// gradient is exact, so only the transcendental ones need a tolerance.
fn edgy(seed: u64, n: usize) -> Vec<f32> {
    let edges = [0.0, -0.0, 1.0, -1.0, 1.015625, -1.015625, 0.984375, -0.984375, 0.5, -0.5, 1.5, -1.5];
    let rest = uniform(seed, n, 1.5).into_iter().map(|v| (v * 64.0).round() / 64.0);
    edges.into_iter().chain(rest).take(n).collect()
}

fn stored(shape: &[usize], values: Vec<f32>) -> Stored {
    Stored::of(&HostTensor::f32(shape.to_vec(), values).unwrap()).unwrap()
}

/// The cases' inputs: K = 70 is not a multiple of 32, so the last word of every packed row is
/// partial; upstream gradients are small multiples of 1/2 so products are exact.
fn inputs() -> Vec<(&'static str, BTreeMap<String, Stored>)> {
    let halves = |seed, n| ints(seed, n, 7).into_iter().map(|i| (i - 3) as f32 * 0.5).collect::<Vec<f32>>();
    vec![
        ("bit_pack", BTreeMap::from([("x".to_string(), stored(&[3, 70], edgy(1, 210)))])),
        (
            "binary_matmul",
            BTreeMap::from([
                ("x".to_string(), stored(&[5, 70], edgy(2, 350))),
                ("w".to_string(), stored(&[70, 7], edgy(3, 490))),
                ("dy".to_string(), stored(&[5, 7], halves(4, 35))),
            ]),
        ),
        (
            "quantizer_gradients",
            BTreeMap::from([("x".to_string(), stored(&[2, 20], edgy(5, 40))), ("dy".to_string(), stored(&[2, 20], halves(6, 40)))]),
        ),
    ]
}

/// Every case run on the CPU reference.
fn reference() -> Vec<Case> {
    inputs()
        .into_iter()
        .map(|(name, inputs)| {
            let outputs = pollster::block_on(checks::run(name, &inputs, &bitgrad::Device::cpu())).unwrap();
            Case { name: name.into(), inputs, outputs }
        })
        .collect()
}

#[test]
fn fixture_holds_the_cpu_reference_outputs() {
    let cases = reference();
    if std::env::var("BITGRAD_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(FIXTURE, serde_json::to_string(&cases).unwrap() + "\n").unwrap();
    }
    let stored: Vec<Case> = serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    assert_eq!(stored.len(), cases.len(), "cases in {FIXTURE}; rewrite it with BITGRAD_BLESS=1");
    for (s, c) in stored.iter().zip(&cases) {
        assert_eq!(s, c, "{} in {FIXTURE} differs from the CPU reference; rewrite it with BITGRAD_BLESS=1", c.name);
    }
}

#[test]
fn gpu_matches_the_fixture() {
    let Some(device) = gpu() else { return };
    let stored: Vec<Case> = serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    for case in &stored {
        let got = pollster::block_on(checks::run(&case.name, &case.inputs, device)).unwrap();
        checks::compare(case, &got).unwrap();
    }
}

#[test]
fn comparison_reports_the_first_difference() {
    let mut case = reference().remove(1);
    let mut got = case.outputs.clone();
    got.get_mut("y").unwrap().values[3] += 2.0;
    let err = checks::compare(&case, &got).unwrap_err();
    assert!(err.contains("binary_matmul/y[3]"), "{err}");
    case.outputs.get_mut("dw").unwrap().shape = vec![7, 70];
    assert!(checks::compare(&case, &case.outputs.clone()).is_ok(), "a case equals itself");
    got = case.outputs.clone();
    got.get_mut("dw").unwrap().shape = vec![70, 7];
    assert!(checks::compare(&case, &got).unwrap_err().contains("binary_matmul/dw"));
}
