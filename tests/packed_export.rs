//! Packed export: every fixture model from the real Larq exported with packed kernels and folded
//! BatchNormalization, read back and run on the CPU and the GPU, computes Larq's output; the
//! files are as small as the bits say; damaged files are named errors.

mod common;

use common::{keras_fixture, FUNCTION_MODELS, KERAS_MODELS};

use bitgrad::io::execute::infer_packed;
use bitgrad::io::keras::read_model;
use bitgrad::io::packed::{export, PackReport, PackedModel};
use bitgrad::io::safetensors::TensorFile;
use bitgrad::{Device, HostTensor};

fn devices() -> Vec<Device> {
    std::iter::once(Device::cpu()).chain(common::gpu().cloned()).collect()
}

/// The fixture model `name` exported, and what the export did.
fn exported(name: &str) -> (TensorFile, PackReport) {
    let model = read_model(&keras_fixture(&format!("{name}.json"))).unwrap();
    let weights = TensorFile::read(&keras_fixture(&format!("{name}.safetensors"))).unwrap();
    export(&model, &weights, name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Folding BatchNormalization reorders a few f32 operations, so outputs match Larq's to a
/// little more than the float model's 1e-4.
fn assert_near(what: &str, got: &HostTensor, want: &HostTensor) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    for (i, (a, e)) in got.as_f32().unwrap().iter().zip(want.as_f32().unwrap()).enumerate() {
        assert!((a - e).abs() <= 2e-4 + 2e-4 * e.abs(), "{what}: output {i}: {a} vs Larq's {e}");
    }
}

#[test]
fn packed_models_compute_what_larq_computes() {
    for name in KERAS_MODELS.into_iter().chain(FUNCTION_MODELS) {
        let (file, report) = exported(name);
        let bytes = file.to_bytes().unwrap();
        let packed = PackedModel::from_file(name, TensorFile::from_bytes(name, &bytes).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        eprintln!(
            "{name}: {} kernels packed, {:?} folded, {} -> {} bytes",
            report.packed.len(),
            report.folded,
            report.float_bytes,
            report.packed_bytes
        );
        let data = TensorFile::read(&keras_fixture(&format!("{name}.data.safetensors"))).unwrap();
        for d in devices() {
            let got = infer_packed(&packed, &d, &data.tensors["input"]).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_near(&format!("{name} on {}", d.describe()), &got, &data.tensors["output"]);
        }
    }
}

/// The value `v` comes from, looking through reshapes.
fn origin(g: &bitgrad::Graph, mut v: bitgrad::ValueId) -> bitgrad::ValueId {
    while let bitgrad::graph::Source::Node(n) = g.value(v).source {
        match &g.nodes()[n].op {
            bitgrad::graph::Op::Reshape { .. } => v = g.nodes()[n].inputs[0],
            _ => break,
        }
    }
    v
}

#[test]
fn binarized_products_read_the_files_bits_as_they_are() {
    // The tutorial CNN's binary layers (a convolution, two dense) and the guide MLP's second
    // dense layer take sign-quantized inputs: each XNOR product's kernel operand is a packed
    // variable loaded from the file, not signs packed again at run time.
    for (name, products) in [("tutorial_cnn", 3), ("guide_mlp", 1)] {
        let (file, _) = exported(name);
        let packed = PackedModel::from_file(name, file).unwrap();
        let built = bitgrad::io::packed::build_packed(&packed.model, 2).unwrap();
        let g = built.graph();
        let mut kernels = Vec::new();
        for n in g.nodes().iter().filter(|n| matches!(n.op, bitgrad::graph::Op::XnorGemm { .. })) {
            let k = origin(g, n.inputs[1]);
            let v = g.value(k);
            assert_eq!(v.dtype, bitgrad::DType::U32, "{name}: an XNOR product's kernel is not packed bits");
            match &v.source {
                bitgrad::graph::Source::Variable { name: var, .. } => kernels.push(var.clone()),
                s => panic!("{name}: an XNOR product's kernel comes from {s:?}, not the file"),
            }
        }
        assert_eq!(kernels.len(), products, "{name}: {kernels:?}");
        assert!(kernels.iter().all(|k| packed.file.tensors[k].dtype() == bitgrad::DType::U32));
    }
}

/// The Larq MNIST CNN of the main job with its initial weights.
fn main_job_cnn() -> (bitgrad::models::Sequential, TensorFile) {
    let model = bitgrad::models::zoo::larq_mnist_cnn();
    let built = bitgrad::models::build(&model, 1, bitgrad::layers::Mode::Inference).unwrap();
    let mut params = bitgrad::ParamStore::new();
    bitgrad::Plan::new(&Device::cpu(), built.graph(), &built.outputs, &mut params).unwrap();
    let mut weights = TensorFile::default();
    for w in &built.network.ctx.weights {
        weights.tensors.insert(w.name.clone(), params.get(&w.name).unwrap().download().unwrap());
    }
    (model, weights)
}

#[test]
fn packed_kernels_are_32_times_smaller() {
    // The main job's CNN: 3x3 kernels over 32 and 64 channels and dense kernels over 576 and
    // 64 features pack 32 signs a word exactly; the first convolution reads one channel, so
    // each of its 1-bit taps takes a word (no saving), and it stays a float-input layer.
    let (model, weights) = main_job_cnn();
    let (file, report) = export(&model, &weights, "initial weights").unwrap();
    for k in &report.packed {
        let t = &file.tensors[&k.name];
        assert_eq!(k.packed_bytes, 4 * t.shape().numel(), "{}", k.name);
        let ratio = if k.name == "quant_conv2d/kernel" { 1 } else { 32 };
        assert_eq!(k.float_bytes, ratio * k.packed_bytes, "{}: {} -> {} bytes", k.name, k.float_bytes, k.packed_bytes);
    }
    assert_eq!(report.packed.len(), 5, "{:?}", report.packed);
    // The BatchNormalizations after max pooling stay (a negative scale would not commute with
    // the maximum); the three after a convolution or dense layer fold.
    assert_eq!(report.folded.len(), 3, "{:?}", report.folded);
    // Tensors 25x smaller (the float first kernel and per-channel vectors remain); the file
    // also carries the model's Keras JSON.
    assert!(report.packed_bytes * 24 < report.float_bytes, "{} tensor bytes packed vs {} as f32", report.packed_bytes, report.float_bytes);
    let (bytes, float) = (file.to_bytes().unwrap().len(), weights.to_bytes().unwrap().len());
    assert!(bytes * 15 < float, "{bytes} bytes packed vs {float} as f32");
}

#[test]
fn damaged_packed_files_are_errors_naming_the_problem() {
    let (file, _) = exported("tutorial_cnn");
    type Edit<'a> = &'a dyn Fn(&mut TensorFile);
    let damaged = |edit: Edit| {
        let mut f = file.clone();
        edit(&mut f);
        PackedModel::from_file("m.safetensors", f).err().map(|e| e.to_string()).unwrap_or_default()
    };
    let cases: Vec<(Edit, &str)> = vec![
        (&|f| drop(f.metadata.remove("format")), "not a packed export"),
        (&|f| drop(f.metadata.insert("version".into(), "3".into())), "this bitgrad reads version 2"),
        (&|f| drop(f.metadata.remove("model")), "no `model` in its metadata"),
        (&|f| drop(f.metadata.insert("model".into(), "{\"class_name\": \"Sequential\"".into())), "not JSON"),
        (&|f| drop(f.tensors.remove("quant_dense_2/kernel")), "missing tensors: quant_dense_2/kernel"),
        (&|f| drop(f.tensors.insert("extra".into(), HostTensor::f32([1], vec![0.0]).unwrap())), "tensors the model does not have: extra"),
        (
            &|f| {
                let n = f.tensors["quant_dense_2/kernel"].shape().numel();
                f.tensors.insert("quant_dense_2/kernel".into(), HostTensor::f32([n], vec![0.0; n]).unwrap());
            },
            "tensor `quant_dense_2/kernel` is F32",
        ),
        (&|f| drop(f.tensors.insert("quant_dense_2/scale".into(), HostTensor::f32([2], vec![1.0; 2]).unwrap())), "`quant_dense_2/scale`"),
    ];
    for (edit, want) in cases {
        let e = damaged(edit);
        assert!(e.contains("m.safetensors") && e.contains(want), "want `{want}`: {e:?}");
    }
    // A float weights file is not a packed model, and the export checks its weights.
    let weights = TensorFile::read(&keras_fixture("tutorial_cnn.safetensors")).unwrap();
    assert!(PackedModel::from_file("w", weights.clone()).is_err_and(|e| e.to_string().contains("not a packed export")));
    let model = read_model(&keras_fixture("tutorial_cnn.json")).unwrap();
    let mut partial = weights.clone();
    partial.tensors.remove("batch_normalization_1/moving_mean");
    let e = export(&model, &partial, "w.safetensors").unwrap_err().to_string();
    assert!(e.contains("w.safetensors") && e.contains("missing tensors: batch_normalization_1/moving_mean"), "{e}");
}

#[test]
fn a_trainer_checkpoint_exports_like_its_weights() {
    // A trainer state holds optimizer slots and metric sums besides the weights: the export
    // takes the weights and leaves the rest.
    let (model, weights) = main_job_cnn();
    let mut state = weights.clone();
    state.tensors.insert("adam/m/quant_dense/kernel".into(), HostTensor::f32([1], vec![0.5]).unwrap());
    state.metadata.insert("format".into(), bitgrad::train::checkpoint::FORMAT.into());
    assert_eq!(export(&model, &state, "state").unwrap(), export(&model, &weights, "weights").unwrap());
    // Any other file with extra tensors is refused.
    state.metadata.clear();
    assert!(export(&model, &state, "state").is_err_and(|e| e.to_string().contains("adam/m/quant_dense/kernel")));
}

/// Kernels of discrete quantizers that are not ±1 are stored as bit planes of their integers:
/// ternary in 2 bits (16x smaller than f32), {0,1} in 1, DoReFa's k-bit weights and activations
/// in k (32/k x), and the model computes from them what the latent model computes, its
/// products on bit planes, on the CPU and the GPU.
#[test]
fn ternary_and_k_bit_kernels_are_stored_in_their_bits() {
    use bitgrad::layers::{Flatten, QuantConv2D, QuantDense, QuantLayer};
    use bitgrad::quantizers::{DoReFaMode, Quantizer};
    let tern = Quantizer::SteTern { threshold_value: 0.05, ternary_weight_networks: true, clip_value: Some(1.0) };
    let dorefa = |k_bit, mode| Quantizer::DoReFa { k_bit, mode };
    let model = bitgrad::models::Sequential::new()
        .add(
            QuantConv2D::new(32, (3, 3))
                .named("c1")
                .input_quantizer(dorefa(2, DoReFaMode::Activations))
                .kernel_quantizer(tern.clone())
                .input_shape(&[6, 6, 32]),
        )
        .add(QuantConv2D::new(32, (3, 3)).named("c2").input_quantizer(tern.clone()).kernel_quantizer(dorefa(2, DoReFaMode::Weights)))
        .add(Flatten::new())
        .add(QuantDense::new(64).named("d1").input_quantizer("ste_sign").kernel_quantizer("ste_heaviside"))
        .add(
            QuantDense::new(10)
                .named("d2")
                .input_quantizer(dorefa(4, DoReFaMode::Activations))
                .kernel_quantizer(dorefa(4, DoReFaMode::Activations)),
        );
    let built = bitgrad::models::build(&model, 1, bitgrad::layers::Mode::Inference).unwrap();
    let mut params = bitgrad::ParamStore::new();
    bitgrad::Plan::new(&Device::cpu(), built.graph(), &built.outputs, &mut params).unwrap();
    let mut weights = TensorFile::default();
    for w in &built.network.ctx.weights {
        let t = params.get(&w.name).unwrap().download().unwrap();
        // Latent weights over both DoReFa weight levels and the ternary threshold.
        let v: Vec<f32> = t.as_f32().unwrap().iter().map(|x| x * 3.0).collect();
        weights.tensors.insert(w.name.clone(), HostTensor::f32(t.shape().clone(), v).unwrap());
    }
    let (file, report) = export(&model, &weights, "weights").unwrap();
    let ratios: Vec<(&str, usize)> = report.packed.iter().map(|k| (k.name.as_str(), k.float_bytes / k.packed_bytes)).collect();
    assert_eq!(ratios, [("c1/kernel", 16), ("c2/kernel", 16), ("d1/kernel", 32), ("d2/kernel", 8)], "{:?}", report.packed);
    assert!(report.kept_float.is_empty(), "{:?}", report.kept_float);
    let packed = PackedModel::from_file("lowbit", TensorFile::from_bytes("lowbit", &file.to_bytes().unwrap()).unwrap()).unwrap();
    let x: Vec<f32> = (0..2 * 6 * 6 * 32).map(|i| ((i * 37 % 101) as f32 / 101.0) * 1.4 - 0.2).collect();
    let x = HostTensor::f32([2, 6, 6, 32], x).unwrap();
    let want = bitgrad::io::execute::infer_with(&model, &Device::cpu(), &weights, "weights", &x).unwrap();
    let built = bitgrad::io::packed::build_packed(&packed.model, 2).unwrap();
    let planes = built.graph().nodes().iter().filter(|n| matches!(n.op, bitgrad::Op::PlaneGemm { .. })).count();
    assert_eq!(planes, 4, "every layer's product runs on bit planes");
    for d in devices() {
        let got = infer_packed(&packed, &d, &x).unwrap();
        let (g, w) = (got.as_f32().unwrap(), want.as_f32().unwrap());
        for (i, (a, e)) in g.iter().zip(w).enumerate() {
            assert!((a - e).abs() <= 1e-4 + 1e-4 * e.abs(), "on {}: output {i}: {a} vs the latent model's {e}", d.describe());
        }
    }
}
