//! Models built the three Keras ways, and `summary()` against the real Larq (fixtures by
//! tests/fixtures/gen_summary.py).

mod common;

use bitgrad::constraints::WeightClip;
use bitgrad::layers::{
    Activation, ActivationLayer, BatchNormalization, DepthwiseOptions, Dropout, Flatten, GlobalPooling, Merge, MergeKind, Mode, Pooling,
    PoolingKind, QuantConv, QuantDense, QuantDepthwiseConv, QuantSeparableConv,
};
use bitgrad::models::{Functional, Model, Sequential};
use bitgrad::quantizers::Quantizer;
use bitgrad::Padding;

fn q(name: &str) -> Quantizer {
    Quantizer::from_name(name).unwrap()
}

fn clip() -> WeightClip {
    WeightClip::new(1.0).unwrap()
}

fn fixture(name: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(include_str!("fixtures/summary.json")).unwrap();
    v[name].as_str().unwrap().to_string()
}

/// The Larq user guide's model.
fn guide() -> Sequential {
    Sequential::new("sequential", &[28, 28, 1])
        .add(Flatten::new("flatten"))
        .add(QuantDense::new("quant_dense", 512).kernel_quantizer(q("ste_sign")).kernel_constraint(clip()))
        .add(
            QuantDense::new("quant_dense_1", 10)
                .input_quantizer(q("ste_sign"))
                .kernel_quantizer(q("ste_sign"))
                .kernel_constraint(clip())
                .activation(Activation::Softmax),
        )
}

fn binary_conv(name: &str, filters: usize) -> QuantConv {
    QuantConv { use_bias: false, ..QuantConv::new(name, filters, &[3, 3]) }
        .input_quantizer(q("ste_sign"))
        .kernel_quantizer(q("ste_sign"))
        .kernel_constraint(clip())
}

fn conv_model() -> Sequential {
    let depthwise = DepthwiseOptions {
        padding: Padding::Same,
        input_quantizer: Some(q("ste_sign")),
        depthwise_quantizer: Some(q("ste_sign")),
        use_bias: false,
        ..DepthwiseOptions::new(&[3, 3])
    };
    let separable = DepthwiseOptions {
        input_quantizer: Some(q("ste_sign")),
        depthwise_quantizer: Some(q("ste_sign")),
        ..DepthwiseOptions::new(&[3, 3])
    };
    Sequential::new("conv", &[28, 28, 1])
        .add(
            QuantConv { use_bias: false, ..QuantConv::new("conv1", 32, &[3, 3]) }.kernel_quantizer(q("ste_sign")).kernel_constraint(clip()),
        )
        .add(BatchNormalization { scale: false, momentum: 0.9, ..BatchNormalization::new("bn1") })
        .add(Pooling::new("pool1", PoolingKind::Max, &[2, 2]))
        .add(QuantConv { padding: Padding::Same, pad_values: 1.0, ..binary_conv("conv2", 64) })
        .add(BatchNormalization::new("bn2"))
        .add(QuantDepthwiseConv { name: "dw".into(), opts: depthwise })
        .add(QuantSeparableConv { pointwise_quantizer: Some(q("ste_sign")), ..QuantSeparableConv::new("sep", 32, separable) })
        .add(Pooling::new("pool2", PoolingKind::Average, &[2, 2]))
        .add(Dropout::new("drop", 0.2, 1))
        .add(Flatten::new("flat"))
        .add(QuantDense::new("tern", 16).input_quantizer(q("ste_sign")).kernel_quantizer(q("ste_tern")))
        .add(BatchNormalization::new("bn3"))
        .add(QuantDense::new("fc", 10))
        .add(ActivationLayer::new("act", Activation::Softmax))
}

fn functional_model() -> Functional {
    let stem = QuantConv { padding: Padding::Same, ..QuantConv::new("stem", 8, &[3, 3]) }.kernel_quantizer(q("ste_sign"));
    let body = QuantConv { padding: Padding::Same, ..binary_conv("body", 8) };
    let bn = BatchNormalization::new("body_bn");
    let head = QuantDense::new("head", 4).input_quantizer(q("ste_sign")).kernel_quantizer(q("ste_sign"));
    Functional::new("block", &[("image", &[8, 8, 3])], move |net, x| {
        let a = net.apply(&stem, x[0])?;
        let b = net.apply(&body, a)?;
        let b = net.apply(&bn, b)?;
        let s = net.merge(&Merge::new("shortcut", MergeKind::Add), &[a, b])?;
        let c = net.merge(&Merge::new("join", MergeKind::Concatenate { axis: -1 }), &[s, a])?;
        let p = net.apply(&GlobalPooling::new("gap", PoolingKind::Average), c)?;
        Ok(vec![net.apply(&head, p)?])
    })
}

#[test]
fn summaries_equal_larqs_text() {
    for (name, model) in [("guide", &guide() as &dyn Model), ("conv", &conv_model()), ("functional", &functional_model())] {
        for mode in [Mode::Inference, Mode::Training] {
            let built = bitgrad::models::build(model, 2, mode).unwrap();
            let ours = built.summary().table();
            assert_eq!(ours, fixture(name), "{name} ({mode:?}):\n{ours}");
        }
    }
}

#[test]
fn guide_summary_figures_equal_larqs() {
    let s = guide().build(1, Mode::Inference).unwrap().summary();
    assert_eq!((s.total_params, s.trainable_params, s.non_trainable_params), (406_528 + 522, 406_528 + 522, 0));
    assert_eq!(s.memory_bits, 406_528 + 522 * 32);
    assert_eq!(s.macs, 5_120 + 401_408);
    assert!((s.binarized_mac_ratio - 5_120.0 / 406_528.0).abs() < 1e-12);
    let json: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
    assert_eq!(json["layers"][1]["weights"][0]["bitwidth"], 1);
    assert_eq!(json["layers"][2]["macs"][0], serde_json::json!([1, 5120]));
}
