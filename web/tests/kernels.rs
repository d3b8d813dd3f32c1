//! bitgrad's kernels on the browser's WebGPU, in headless Chromium (`scripts/web.sh test`):
//! bit-packing, the XNOR-popcount product and its straight-through gradients, and quantizer
//! pseudo-gradients must equal the values the CPU reference computed natively
//! (`kernels.json`, kept true by the main crate's `tests/web_kernels.rs`). Larq fixture models,
//! exported packed in the browser, must compute Larq's outputs on WebGPU.
#![cfg(target_arch = "wasm32")]

use bitgrad::graph::QuantFn;
use bitgrad::io::execute::infer_packed_async;
use bitgrad::io::keras::model_from_json;
use bitgrad::io::packed::{export, PackedModel};
use bitgrad::io::safetensors::TensorFile;
use bitgrad::layers::QuantLayer;
use bitgrad::train::optimizers::Sgd;
use bitgrad::train::{Dataset, Loss, Metric, Trainer};
use bitgrad::{Device, Error, GpuOptions, Graph, ParamStore, Plan};
use bitgrad_web::checks::{self, Case};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn webgpu() -> Device {
    Device::gpu_async(&GpuOptions::default()).await.expect("the browser offers a WebGPU adapter")
}

#[wasm_bindgen_test]
async fn adapter_is_the_browsers_webgpu() {
    let device = webgpu().await;
    assert!(device.describe().contains("(WebGPU, "), "{}", device.describe());
}

#[wasm_bindgen_test]
async fn kernels_equal_the_native_values() {
    let device = webgpu().await;
    let cases: Vec<Case> = serde_json::from_str(include_str!("kernels.json")).expect("kernels.json parses");
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["bit_pack", "binary_matmul", "quantizer_gradients"]);
    for case in &cases {
        let got = checks::run(&case.name, &case.inputs, &device).await.unwrap_or_else(|e| panic!("{}: {e}", case.name));
        checks::compare(case, &got).unwrap();
    }
}

#[wasm_bindgen_test]
async fn a_changed_value_is_caught() {
    let device = webgpu().await;
    let mut cases: Vec<Case> = serde_json::from_str(include_str!("kernels.json")).unwrap();
    let case = &mut cases[0];
    let got = checks::run(&case.name, &case.inputs, &device).await.unwrap();
    case.outputs.get_mut("signs").unwrap().values[0] += 1.0;
    assert!(checks::compare(case, &got).unwrap_err().contains("bit_pack/signs[0]"));
}

#[wasm_bindgen_test]
async fn blocking_calls_are_named_errors() {
    let device = webgpu().await;
    let mut g = Graph::new();
    let x = g.input("x", [4], bitgrad::DType::F32).unwrap();
    let y = g.quantize(QuantFn::ApproxSign, x, None).unwrap();
    let mut plan = Plan::new(&device, &g, &[y], &mut ParamStore::new()).unwrap();
    plan.feed("x", &bitgrad::HostTensor::f32([4], vec![-2.0, -0.5, 0.0, 3.0]).unwrap()).unwrap();
    plan.run().unwrap();
    match plan.fetch(y) {
        Err(e @ Error::WouldBlock { .. }) => assert!(e.to_string().contains("Plan::fetch_async"), "{e}"),
        other => panic!("expected WouldBlock, got {other:?}"),
    }
    let y = plan.fetch_async(y).await.unwrap();
    assert_eq!(y.as_f32().unwrap(), [-1.0, -1.0, 1.0, 1.0]);
    assert!(matches!(device.synchronize(), Err(Error::WouldBlock { call: "Device::synchronize", .. })));
    plan.run().unwrap();
    device.synchronize_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn validation_errors_reach_the_next_readback() {
    let device = webgpu().await;
    let ctx = device.gpu_context().unwrap().clone();
    // A copy past the end of a buffer is a validation error the browser reports later.
    let small = ctx.device.create_buffer(&bitgrad::wgpu::BufferDescriptor {
        label: Some("small"),
        size: 4,
        usage: bitgrad::wgpu::BufferUsages::COPY_SRC | bitgrad::wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.scoped("an oversized copy", || {
        let mut enc = ctx.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&small, 0, &small, 0, 64);
        ctx.queue.submit([enc.finish()]);
        Ok(())
    })
    .unwrap();
    let t = device.upload(&bitgrad::HostTensor::f32([1], vec![1.0]).unwrap()).unwrap();
    let err = t.download_async().await.unwrap_err().to_string();
    assert!(err.contains("an oversized copy"), "{err}");
    assert_eq!(t.download_async().await.unwrap().as_f32().unwrap(), [1.0], "reported once");
}

#[wasm_bindgen_test]
async fn training_steps_lower_the_loss() {
    let device = webgpu().await;
    // Two separable classes: the sign of the first feature.
    let x: Vec<f32> = (0..64)
        .flat_map(|i| {
            let s = if i % 2 == 0 { 1.0 } else { -1.0 };
            [s * 0.8, 0.3, -0.2, s * 0.5]
        })
        .collect();
    let y: Vec<i32> = (0..64).map(|i| i % 2).collect();
    let data = Dataset::new(&[4], x, y).unwrap();
    let model = bitgrad::models::Sequential::new()
        .named("m")
        .input_shape(&[4])
        .add(bitgrad::layers::QuantDense::new(2).named("d").activation(bitgrad::layers::Activation::Softmax));
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    let mut t = Trainer::compile(model, loss, std::sync::Arc::new(Sgd::new(0.5)), &[Metric::Accuracy], &device).unwrap();
    let all: Vec<usize> = (0..64).collect();
    let first = t.train_on_batch_async(&data, &all).await.unwrap()["loss"];
    let mut last = first;
    for _ in 0..10 {
        last = t.train_on_batch_async(&data, &all).await.unwrap()["loss"];
    }
    assert!(last < first * 0.5, "loss {first} -> {last}");
    assert!(matches!(t.evaluate(&data, 64), Err(Error::WouldBlock { .. })));
    assert_eq!(t.evaluate_async(&data, 64).await.unwrap()["accuracy"], 1.0);
}

/// A Larq fixture model (`tests/fixtures/keras`): its JSON, weights, and Larq's input and output.
macro_rules! larq_fixture {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../tests/fixtures/keras/", $name, ".json")),
            &include_bytes!(concat!("../../tests/fixtures/keras/", $name, ".safetensors"))[..],
            &include_bytes!(concat!("../../tests/fixtures/keras/", $name, ".data.safetensors"))[..],
        )
    };
}

#[wasm_bindgen_test]
async fn packed_exports_compute_larqs_outputs() {
    let device = webgpu().await;
    for (name, json, weights, data) in [larq_fixture!("guide_mlp"), larq_fixture!("tutorial_cnn")] {
        let model = model_from_json(name, json).unwrap();
        let weights = TensorFile::from_bytes(name, weights).unwrap();
        let (file, report) = export(&model, &weights, name).unwrap();
        assert!(!report.packed.is_empty(), "{name}: binarized kernels are packed");
        let packed = PackedModel::from_file(name, TensorFile::from_bytes(name, &file.to_bytes().unwrap()).unwrap()).unwrap();
        let data = TensorFile::from_bytes(name, data).unwrap();
        let got = infer_packed_async(&packed, &device, &data.tensors["input"]).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = &data.tensors["output"];
        assert_eq!(got.shape(), want.shape(), "{name}");
        // Folding BatchNormalization reorders f32 operations: Larq's outputs to 2e-4, as natively.
        for (i, (a, e)) in got.as_f32().unwrap().iter().zip(want.as_f32().unwrap()).enumerate() {
            assert!((a - e).abs() <= 2e-4 + 2e-4 * e.abs(), "{name}: output {i}: {a} vs Larq's {e}");
        }
    }
}
