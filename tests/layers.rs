//! Layers against the real Larq 0.14 (fixtures by tests/fixtures/gen_dense.py) on the CPU
//! reference and the GPU, plus activations and initializers.

mod common;

use bitgrad::constraints::WeightClip;
use bitgrad::layers::{Activation, BuildContext, Initializer, Layer, QuantConv, QuantDense, QuantLayer};
use bitgrad::quantizers::Quantizer;
use bitgrad::{DType, Device, Graph, HostTensor, Padding, ParamStore, Plan, Shape};
use common::*;
use serde_json::Value;

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn quantizer(v: &Value) -> Option<Quantizer> {
    (!v.is_null()).then(|| Quantizer::from_keras(v).unwrap())
}

/// Larq's f32 results against ours: sums over up to 64 terms in another order, and tanh/cosh.
const LARQ: Tol = Tol { abs: 2e-5, rel: 2e-5 };

/// One layer case recorded from Larq: input, weights, upstream gradient and Larq's results.
struct LarqCase {
    name: String,
    x_shape: Vec<usize>,
    x: Vec<f32>,
    dy: Vec<f32>,
    y: Vec<f32>,
    /// (variable name, values) for the layer's weights, in the order the layer creates them.
    weights: Vec<(String, Vec<f32>)>,
    /// Larq's gradients: input first, then each weight.
    grads: Vec<Vec<f32>>,
}

impl LarqCase {
    /// A fixture case whose weights are listed by Keras name (`weight_names`, `weights`, `dx`,
    /// `dweights`), for the layer named `layer`.
    fn with_named_weights(c: &Value, layer: &str) -> LarqCase {
        let names = c["weight_names"].as_array().unwrap().iter().map(|n| format!("{layer}/{}", n.as_str().unwrap()));
        LarqCase {
            name: c["name"].as_str().unwrap().to_string(),
            x_shape: dims(&c["shape"]),
            x: floats(&c["x"]),
            dy: floats(&c["dy"]),
            y: floats(&c["y"]),
            weights: names.zip(c["weights"].as_array().unwrap().iter().map(floats)).collect(),
            grads: std::iter::once(floats(&c["dx"])).chain(c["dweights"].as_array().unwrap().iter().map(floats)).collect(),
        }
    }
}

/// Builds `layer` in training mode, loads Larq's weights, and compares output and gradients on
/// both backends.
fn compare_with_larq(layer: &dyn Layer, c: &LarqCase) {
    let (g, ctx, outputs) = build_case(layer, &c.x_shape, bitgrad::layers::Mode::Training);
    let wants: Vec<&Vec<f32>> = std::iter::once(&c.y).chain(&c.grads).collect();
    assert_eq!(wants.len(), outputs.len(), "{}: outputs", c.name);
    for device in [Some(Device::cpu()), gpu().cloned()].into_iter().flatten() {
        let (got, _) = run_case(&device, &g, &ctx, &outputs, &c.weights, &c.x_shape, &c.x, Some(&c.dy));
        for (i, (want, got)) in wants.iter().zip(&got).enumerate() {
            let what = if i == 0 {
                "output".to_string()
            } else if i == 1 {
                "input gradient".to_string()
            } else {
                format!("gradient of {}", c.weights[i - 2].0)
            };
            let expected = HostTensor::f32(got.shape().clone(), (*want).clone()).unwrap();
            assert_close(&format!("{}: {what} on {}", c.name, device.describe()), got, &expected, LARQ);
        }
    }
}

/// Loads `weights` (checked against the layer's, by name and order) into a fresh store, feeds
/// `x` (and `dy` when the graph has it), runs once on `device`; returns the fetched outputs and
/// the store (whose variables hold their values after the step).
#[allow(clippy::too_many_arguments)]
fn run_case(
    device: &Device,
    g: &Graph,
    ctx: &BuildContext,
    outputs: &[bitgrad::ValueId],
    weights: &[(String, Vec<f32>)],
    x_shape: &[usize],
    x: &[f32],
    dy: Option<&[f32]>,
) -> (Vec<HostTensor>, ParamStore) {
    let names: Vec<&str> = ctx.weights.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, weights.iter().map(|w| w.0.as_str()).collect::<Vec<_>>(), "weights");
    let mut params = ParamStore::new();
    for (w, (name, values)) in ctx.weights.iter().zip(weights) {
        let t = HostTensor::f32(g.value(w.variable).shape.clone(), values.clone()).unwrap();
        params.insert(name.clone(), device.upload(&t).unwrap());
    }
    let mut plan = Plan::new(device, g, outputs, &mut params).unwrap();
    plan.feed("x", &HostTensor::f32(x_shape, x.to_vec()).unwrap()).unwrap();
    if let Some(dy) = dy {
        plan.feed("dy", &HostTensor::f32(g.value(outputs[0]).shape.clone(), dy.to_vec()).unwrap()).unwrap();
    }
    plan.run().unwrap();
    let got = outputs.iter().map(|&o| plan.fetch(o).unwrap()).collect();
    (got, params)
}

fn activation_of(v: &Value) -> Activation {
    match v {
        Value::String(s) => Activation::from_name(s).unwrap(),
        v => Activation::Quantizer(Quantizer::from_keras(v).unwrap()),
    }
}

fn dims(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect()
}

#[test]
fn quant_dense_matches_larq_forward_and_gradients() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/quant_dense.json")).unwrap();
    for c in fixture["cases"].as_array().unwrap() {
        let mut layer =
            QuantDense::new(c["units"].as_u64().unwrap() as usize).named("quant_dense").use_bias(c["use_bias"].as_bool().unwrap());
        layer.args.input_quantizer = quantizer(&c["input_quantizer"]);
        layer.args.kernel_quantizer = quantizer(&c["kernel_quantizer"]);
        layer.args.activation = activation_of(&c["activation"]);
        let mut weights = vec![("quant_dense/kernel".to_string(), floats(&c["kernel"]))];
        let mut grads = vec![floats(&c["dx"]), floats(&c["dkernel"])];
        if layer.args.use_bias {
            weights.push(("quant_dense/bias".to_string(), floats(&c["bias"])));
            grads.push(floats(&c["dbias"]));
        }
        let case = LarqCase {
            name: c["name"].as_str().unwrap().to_string(),
            x_shape: dims(&c["shape"]),
            x: floats(&c["x"]),
            dy: floats(&c["dy"]),
            y: floats(&c["y"]),
            weights,
            grads,
        };
        compare_with_larq(&layer, &case);
    }
}

#[test]
fn quant_conv_matches_larq_forward_and_gradients() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/quant_conv.json")).unwrap();
    for c in fixture["cases"].as_array().unwrap() {
        let mut layer = QuantConv::new(c["filters"].as_u64().unwrap() as usize, &dims(&c["kernel_size"])).named("quant_conv");
        layer.strides = dims(&c["strides"]);
        layer.dilation_rate = dims(&c["dilation_rate"]);
        layer.padding = match c["padding"].as_str().unwrap() {
            "same" => Padding::Same,
            "causal" => Padding::Causal,
            _ => Padding::Valid,
        };
        layer.pad_values = c["pad_values"].as_f64().unwrap() as f32;
        layer.args.input_quantizer = quantizer(&c["input_quantizer"]);
        layer.args.kernel_quantizer = quantizer(&c["kernel_quantizer"]);
        layer.args.activation = activation_of(&c["activation"]);
        let case = LarqCase {
            name: c["name"].as_str().unwrap().to_string(),
            x_shape: dims(&c["shape"]),
            x: floats(&c["x"]),
            dy: floats(&c["dy"]),
            y: floats(&c["y"]),
            weights: vec![("quant_conv/kernel".into(), floats(&c["kernel"])), ("quant_conv/bias".into(), floats(&c["bias"]))],
            grads: vec![floats(&c["dx"]), floats(&c["dkernel"]), floats(&c["dbias"])],
        };
        compare_with_larq(&layer, &case);
    }
}

#[test]
fn ste_sign_on_both_sides_runs_on_packed_bits() {
    let layer = QuantDense::new(8)
        .named("d")
        .input_quantizer(Quantizer::from_name("ste_sign").unwrap())
        .kernel_quantizer(Quantizer::from_name("ste_sign").unwrap())
        .kernel_constraint(WeightClip::default());
    let mut g = Graph::new();
    let x = g.input("x", [4, 70], DType::F32).unwrap();
    let mut ctx = BuildContext::default();
    layer.build(&mut g, x, &mut ctx).unwrap();
    assert!(g.nodes().iter().any(|n| matches!(n.op, bitgrad::Op::XnorGemm { .. })), "packed path expected");
    assert!(ctx.warnings.is_empty(), "a constrained binary kernel raises no warning");
    assert_eq!((ctx.weights[0].precision, ctx.weights[1].precision), (1, 32));
    assert!(ctx.weights[0].constraint.is_some());
    // Without the constraint, Larq's starved-weights warning.
    let mut ctx = BuildContext::default();
    let mut g = Graph::new();
    let x = g.input("x", [4, 70], DType::F32).unwrap();
    QuantDense::new(8).named("e").kernel_quantizer(Quantizer::from_name("ste_sign").unwrap()).build(&mut g, x, &mut ctx).unwrap();
    assert!(ctx.warnings[0].contains("starved weights") && ctx.warnings[0].contains("`e`"), "{:?}", ctx.warnings);
    assert!(!g.nodes().iter().any(|n| matches!(n.op, bitgrad::Op::XnorGemm { .. })), "float input: fake-quantized path");
}

#[test]
fn activations_follow_larq() {
    let xs = vec![-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0];
    let want_hard = [-1.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.0];
    // leaky_tanh(x, 0.2) = clip(x, -1, 1) + (max(x, 1) - 1) * 0.2 + (min(x, -1) + 1) * 0.2
    let want_leaky = [-1.4, -1.0, -0.5, 0.0, 0.5, 1.0, 1.4];
    let want_sign = [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0];
    for (name, want) in [("hard_tanh", &want_hard), ("leaky_tanh", &want_leaky), ("ste_sign", &want_sign)] {
        let a = Activation::from_name(name).unwrap();
        let mut g = Graph::new();
        let x = g.input("x", [7], DType::F32).unwrap();
        let y = a.apply(&mut g, x).unwrap();
        let c = Case { graph: g, outputs: vec![y], feeds: vec![("x", HostTensor::f32([7], xs.clone()).unwrap())] };
        let out = run_on(&Device::cpu(), &c, 1).unwrap();
        let got = out[0].as_f32().unwrap();
        assert!(got.iter().zip(want.iter()).all(|(a, b)| (a - b).abs() < 1e-6), "{name}: {got:?}");
        check_case(name, &c, ELEMENTWISE);
    }
    let err = Activation::from_name("swish").unwrap_err().to_string();
    assert!(err.contains("activation") && err.contains("swish"), "{err}");
}

#[test]
fn initializers_follow_keras_fans_and_bounds() {
    assert_eq!(Initializer::fans(&Shape::new([784, 512])), (784.0, 512.0));
    assert_eq!(Initializer::fans(&Shape::new([3, 3, 32, 64])), (288.0, 576.0));
    for (name, init) in [
        ("glorot_uniform", Initializer::GlorotUniform),
        ("he_normal", Initializer::HeNormal),
        ("random_uniform", Initializer::RandomUniform { minval: -0.05, maxval: 0.05 }),
    ] {
        assert_eq!(Initializer::from_name(name).unwrap(), init);
    }
    let err = Initializer::from_name("lecun_normal").unwrap_err().to_string();
    assert!(err.contains("lecun_normal") && err.contains("glorot_uniform"), "{err}");
    // glorot_uniform of a [300, 100] kernel stays inside +-sqrt(6/400) and fills it.
    let layer = QuantDense::new(100).named("d");
    let mut g = Graph::new();
    let x = g.input("x", [1, 300], DType::F32).unwrap();
    let y = layer.build(&mut g, x, &mut BuildContext::default()).unwrap();
    let mut params = ParamStore::new();
    Plan::new(&Device::cpu(), &g, &[y], &mut params).unwrap();
    let w = params.get("d/kernel").unwrap().download().unwrap();
    let w = w.as_f32().unwrap();
    let limit = (6.0f32 / 400.0).sqrt();
    assert!(w.iter().all(|v| v.abs() <= limit) && w.iter().any(|v| v.abs() > 0.9 * limit));
    assert!(params.get("d/bias").unwrap().download().unwrap().as_f32().unwrap().iter().all(|&b| b == 0.0));
}

#[test]
fn depthwise_and_separable_layers_match_larq() {
    use bitgrad::layers::{DepthwiseOptions, QuantDepthwiseConv, QuantSeparableConv};
    let fixture: Value = serde_json::from_str(include_str!("fixtures/quant_depthwise.json")).unwrap();
    for c in fixture["cases"].as_array().unwrap() {
        let mut opts = DepthwiseOptions::new(&dims(&c["kernel_size"]));
        opts.strides = dims(&c["strides"]);
        opts.padding = if c["padding"] == "same" { Padding::Same } else { Padding::Valid };
        opts.pad_values = c["pad_values"].as_f64().unwrap() as f32;
        opts.depth_multiplier = c["depth_multiplier"].as_u64().unwrap() as usize;
        opts.input_quantizer = quantizer(&c["input_quantizer"]);
        opts.depthwise_quantizer = quantizer(&c["depthwise_quantizer"]);
        let name = "layer";
        let layer: Box<dyn Layer> = if c["kind"] == "depthwise" {
            Box::new(QuantDepthwiseConv { name: name.into(), opts })
        } else {
            Box::new(QuantSeparableConv {
                pointwise_quantizer: quantizer(&c["pointwise_quantizer"]),
                ..QuantSeparableConv::new(c["filters"].as_u64().unwrap() as usize, opts).named(name)
            })
        };
        let case = LarqCase::with_named_weights(c, name);
        compare_with_larq(layer.as_ref(), &case);
    }
}

/// Every pair of discrete input and kernel quantizers (but SteSign x SteSign, the XNOR path) in
/// dense, convolution (padding with 0 and 1, causal, strides, groups, dilation), depthwise,
/// transposed and locally connected (implementations 1 to 3) layers runs its product on bit planes and matches Larq's fake-quantized float
/// layers (tests/fixtures/gen_lowbit.py), forward and every gradient, on the CPU and the GPU.
/// Where the input quantizer's pseudo-gradient is a straight-through window, the backward reads
/// its packed mask and never the input's f32 values through a `quantize_grad`. A float input
/// against an ApproxSign or SwishSign kernel reads the kernel's sign bits.
#[test]
fn discrete_quantizer_pairs_run_on_bit_planes_and_match_larq() {
    use bitgrad::graph::Source;
    use bitgrad::layers::{DepthwiseOptions, QuantConvTranspose, QuantDepthwiseConv, QuantLocallyConnected};
    use bitgrad::{DataFormat, Op};
    let fixture: Value = serde_json::from_str(include_str!("fixtures/lowbit.json")).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 147, "{} cases", cases.len());
    for c in cases {
        let name = "layer";
        let padding = match c["padding"].as_str().unwrap() {
            "same" => Padding::Same,
            "causal" => Padding::Causal,
            _ => Padding::Valid,
        };
        let (iq, kq) = (quantizer(&c["input_quantizer"]), quantizer(&c["kernel_quantizer"]));
        let layer: Box<dyn Layer> = match c["kind"].as_str().unwrap() {
            "dense" => {
                let mut l = QuantDense::new(c["units"].as_u64().unwrap() as usize).named(name);
                (l.args.input_quantizer, l.args.kernel_quantizer) = (iq.clone(), kq);
                Box::new(l)
            }
            "conv2d_transpose" => {
                let mut l = QuantConvTranspose::new(c["filters"].as_u64().unwrap() as usize, &dims(&c["kernel_size"])).named(name);
                l.strides = dims(&c["strides"]);
                l.padding = padding;
                l.output_padding = (!c["output_padding"].is_null()).then(|| vec![c["output_padding"].as_u64().unwrap() as usize; 2]);
                (l.args.input_quantizer, l.args.kernel_quantizer) = (iq.clone(), kq);
                Box::new(l)
            }
            "locally_connected1d" | "locally_connected2d" => {
                let mut l = QuantLocallyConnected::new(c["filters"].as_u64().unwrap() as usize, &dims(&c["kernel_size"])).named(name);
                l.strides = dims(&c["strides"]);
                l.padding = padding;
                l.implementation = c["implementation"].as_u64().unwrap() as u32;
                (l.args.input_quantizer, l.args.kernel_quantizer) = (iq.clone(), kq);
                Box::new(l)
            }
            "depthwise" => {
                let mut o = DepthwiseOptions::new(&dims(&c["kernel_size"]));
                o.strides = dims(&c["strides"]);
                o.padding = padding;
                o.pad_values = c["pad_values"].as_f64().unwrap() as f32;
                o.depth_multiplier = c["depth_multiplier"].as_u64().unwrap() as usize;
                (o.input_quantizer, o.depthwise_quantizer) = (iq.clone(), kq);
                Box::new(QuantDepthwiseConv { name: name.into(), opts: o })
            }
            _ => {
                let mut l = QuantConv::new(c["filters"].as_u64().unwrap() as usize, &dims(&c["kernel_size"])).named(name);
                l.strides = dims(&c["strides"]);
                l.dilation_rate = dims(&c["dilation_rate"]);
                l.padding = padding;
                l.pad_values = c["pad_values"].as_f64().unwrap() as f32;
                l.groups = c["groups"].as_u64().unwrap() as usize;
                l.data_format = DataFormat::from_name(c["data_format"].as_str().unwrap()).unwrap();
                (l.args.input_quantizer, l.args.kernel_quantizer) = (iq.clone(), kq);
                Box::new(l)
            }
        };
        let case = LarqCase::with_named_weights(c, name);
        let (g, _, _) = build_case(layer.as_ref(), &case.x_shape, bitgrad::layers::Mode::Training);
        let planes = g.nodes().iter().filter(|n| matches!(n.op, Op::PlaneGemm { .. })).count();
        if iq.is_none() {
            // A float input: the product reads the kernel's sign bits.
            assert!(planes == 0 && g.nodes().iter().any(|n| matches!(n.op, Op::BitUnpack { .. })), "{}: no sign bits", case.name);
        } else {
            assert!(planes >= 1, "{}: no plane product", case.name);
        }
        let window = matches!(
            iq,
            Some(Quantizer::SteSign { .. } | Quantizer::SteHeaviside { .. } | Quantizer::SteTern { .. } | Quantizer::DoReFa { .. })
        );
        if window {
            let is_x = |v: bitgrad::ValueId| matches!(&g.value(v).source, Source::Input { name } if name == "x");
            assert!(g.nodes().iter().any(|n| matches!(n.op, Op::Quantize { .. }) && is_x(n.inputs[0])), "{}", case.name);
            let reads_x = g.nodes().iter().any(|n| matches!(n.op, Op::QuantizeGrad { .. }) && is_x(n.inputs[0]));
            assert!(!reads_x, "{}: the backward reads the input's f32 values", case.name);
        }
        compare_with_larq(layer.as_ref(), &case);
    }
}

/// Channels-first low-bit convolutions (which TensorFlow's CPU kernels do not run, so Larq has no
/// fixture for them) compute the channels-last layer's output and gradients, transposed.
#[test]
fn channels_first_low_bit_convolutions_equal_channels_last() {
    use bitgrad::quantizers::DoReFaMode;
    use bitgrad::DataFormat;
    let (n, h, w, c) = (2, 5, 4, 6);
    let layer = |format| {
        let mut l = QuantConv::new(4, &[3, 3]).named("layer");
        l.padding = Padding::Same;
        l.pad_values = 1.0;
        l.groups = 2;
        l.data_format = format;
        l.args.input_quantizer = Some(Quantizer::SteTern { threshold_value: 0.3, ternary_weight_networks: false, clip_value: Some(1.0) });
        l.args.kernel_quantizer = Some(Quantizer::DoReFa { k_bit: 2, mode: DoReFaMode::Weights });
        l
    };
    let x = uniform(3, n * h * w * c, 1.5);
    let to_first = |v: &[f32], ch: usize| -> Vec<f32> {
        let mut out = vec![0.0; v.len()];
        for b in 0..n {
            for i in 0..h * w {
                for k in 0..ch {
                    out[(b * ch + k) * h * w + i] = v[(b * h * w + i) * ch + k];
                }
            }
        }
        out
    };
    let dy = uniform(4, n * h * w * 4, 1.0);
    let kernel = uniform(5, 3 * 3 * 3 * 4, 1.5);
    let bias = uniform(6, 4, 1.0);
    let weights = vec![("layer/kernel".to_string(), kernel), ("layer/bias".to_string(), bias)];
    let last = layer(DataFormat::ChannelsLast);
    let first = layer(DataFormat::ChannelsFirst);
    let (gl, cl, ol) = build_case(&last, &[n, h, w, c], bitgrad::layers::Mode::Training);
    let (gf, cf, of) = build_case(&first, &[n, c, h, w], bitgrad::layers::Mode::Training);
    assert!(gf.nodes().iter().any(|n| matches!(n.op, bitgrad::Op::PlaneGemm { .. })));
    for device in [Some(Device::cpu()), gpu().cloned()].into_iter().flatten() {
        let (want, _) = run_case(&device, &gl, &cl, &ol, &weights, &[n, h, w, c], &x, Some(&dy));
        let (got, _) = run_case(&device, &gf, &cf, &of, &weights, &[n, c, h, w], &to_first(&x, c), Some(&to_first(&dy, 4)));
        let what = |i: usize| format!("{} on {}", ["output", "input gradient", "kernel gradient", "bias gradient"][i], device.describe());
        for i in 0..4 {
            let w = want[i].as_f32().unwrap();
            let expected = match i {
                0 => to_first(w, 4),
                1 => to_first(w, c),
                _ => w.to_vec(),
            };
            assert_close(&what(i), &got[i], &HostTensor::f32(got[i].shape().clone(), expected).unwrap(), LARQ);
        }
    }
}

/// Our layer for each case of tests/fixtures/layers.json, named `layer` as there.
fn catalogue_layer(case: &str) -> Box<dyn Layer> {
    use bitgrad::layers::{
        BatchNormalization, Flatten, GlobalPooling, Pooling, PoolingKind, QuantConvTranspose, QuantLocallyConnected, Reshape, ZeroPadding,
    };
    use bitgrad::DataFormat;
    let binary = |mut l: QuantConvTranspose| {
        l.args.input_quantizer = Some(Quantizer::from_name("ste_sign").unwrap());
        l.args.kernel_quantizer = Some(Quantizer::from_name("ste_sign").unwrap());
        l
    };
    let ste = || Quantizer::from_name("ste_sign").unwrap();
    let t = |filters, k: &[usize], s: usize| QuantConvTranspose {
        strides: vec![s; k.len()],
        ..QuantConvTranspose::new(filters, k).named("layer")
    };
    match case {
        "conv2d_transpose same stride 2 binary c33" => Box::new(binary(QuantConvTranspose { padding: Padding::Same, ..t(3, &[3, 3], 2) })),
        "conv2d_transpose valid stride 2 output_padding 1" => {
            Box::new(QuantConvTranspose { output_padding: Some(vec![1, 1]), ..t(2, &[3, 2], 2) })
        }
        "conv2d_transpose same stride 2 output_padding 1 binary" => {
            Box::new(binary(QuantConvTranspose { padding: Padding::Same, output_padding: Some(vec![1, 1]), ..t(2, &[3, 3], 2) }))
        }
        "conv2d_transpose dilation 2 kernel only" => {
            Box::new(QuantConvTranspose { dilation_rate: vec![2, 2], ..t(2, &[3, 3], 1) }.kernel_quantizer(ste()))
        }
        "conv3d_transpose same stride 2 binary" => Box::new(binary(QuantConvTranspose { padding: Padding::Same, ..t(2, &[2, 2, 2], 2) })),
        "locally_connected1d stride 2 binary" => Box::new(
            QuantLocallyConnected { strides: vec![2], ..QuantLocallyConnected::new(3, &[3]).named("layer") }
                .input_quantizer(ste())
                .kernel_quantizer(ste()),
        ),
        "locally_connected2d kernel only" => Box::new(QuantLocallyConnected::new(2, &[2, 3]).named("layer").kernel_quantizer(ste())),
        "locally_connected2d channels_first" => Box::new(QuantLocallyConnected {
            data_format: DataFormat::ChannelsFirst,
            ..QuantLocallyConnected::new(2, &[2, 2]).named("layer")
        }),
        "batch_normalization rank 4 momentum 0.9" => {
            Box::new(BatchNormalization { momentum: 0.9, ..BatchNormalization::new().named("layer") })
        }
        "batch_normalization rank 2 no scale" => {
            Box::new(BatchNormalization { scale: false, epsilon: 0.01, ..BatchNormalization::new().named("layer") })
        }
        "batch_normalization rank 3 axis 1" => Box::new(BatchNormalization { axis: 1, ..BatchNormalization::new().named("layer") }),
        "max_pooling2d 3x3 stride 2 same" => {
            Box::new(Pooling { strides: vec![2, 2], padding: Padding::Same, ..Pooling::new(PoolingKind::Max, &[3, 3]).named("layer") })
        }
        "average_pooling2d 3x3 stride 2 same" => {
            Box::new(Pooling { strides: vec![2, 2], padding: Padding::Same, ..Pooling::new(PoolingKind::Average, &[3, 3]).named("layer") })
        }
        "average_pooling1d valid" => Box::new(Pooling::new(PoolingKind::Average, &[2]).named("layer")),
        "max_pooling3d valid" => Box::new(Pooling::new(PoolingKind::Max, &[2, 2, 2]).named("layer")),
        "global_average_pooling2d" => Box::new(GlobalPooling::new(PoolingKind::Average).named("layer")),
        "global_max_pooling1d" => Box::new(GlobalPooling::new(PoolingKind::Max).named("layer")),
        "zero_padding2d" => Box::new(ZeroPadding { padding: vec![(1, 2), (0, 3)], ..ZeroPadding::new(&[0, 0]).named("layer") }),
        "reshape" => Box::new(Reshape { target_shape: vec![None, Some(4)], ..Reshape::new(&[]).named("layer") }),
        "locally_connected1d implementation 2 same stride 2 binary" => Box::new(
            QuantLocallyConnected {
                strides: vec![2],
                padding: Padding::Same,
                implementation: 2,
                ..QuantLocallyConnected::new(2, &[3]).named("layer")
            }
            .input_quantizer(ste())
            .kernel_quantizer(ste()),
        ),
        "locally_connected2d implementation 2 channels_first stride 2" => Box::new(QuantLocallyConnected {
            strides: vec![2, 1],
            implementation: 2,
            data_format: DataFormat::ChannelsFirst,
            ..QuantLocallyConnected::new(2, &[2, 3]).named("layer")
        }),
        "locally_connected1d implementation 3 binary" => Box::new(
            QuantLocallyConnected { implementation: 3, ..QuantLocallyConnected::new(3, &[2]).named("layer") }
                .input_quantizer(ste())
                .kernel_quantizer(ste()),
        ),
        "locally_connected2d implementation 3 same stride 2 kernel only" => Box::new(
            QuantLocallyConnected {
                strides: vec![2, 2],
                padding: Padding::Same,
                implementation: 3,
                ..QuantLocallyConnected::new(2, &[3, 2]).named("layer")
            }
            .kernel_quantizer(ste()),
        ),
        "locally_connected2d implementation 3 channels_first same" => Box::new(QuantLocallyConnected {
            padding: Padding::Same,
            implementation: 3,
            data_format: DataFormat::ChannelsFirst,
            ..QuantLocallyConnected::new(2, &[3, 3]).named("layer")
        }),
        "flatten" => Box::new(Flatten::new().named("layer")),
        other => panic!("no layer for fixture case `{other}`"),
    }
}

/// Builds `layer` on `x` in `mode` and, in training mode, `sum(y * dy)` and its gradients with
/// respect to the input and the trainable weights; returns (graph, context, outputs).
fn build_case(layer: &dyn Layer, x_shape: &[usize], mode: bitgrad::layers::Mode) -> (Graph, BuildContext, Vec<bitgrad::ValueId>) {
    let mut g = Graph::new();
    let x = g.input("x", x_shape, DType::F32).unwrap();
    let mut ctx = BuildContext::new(mode);
    let y = layer.build(&mut g, x, &mut ctx).unwrap();
    let mut outputs = vec![y];
    if mode == bitgrad::layers::Mode::Training {
        let ys = g.value(y).shape.clone();
        let dy = g.input("dy", ys.clone(), DType::F32).unwrap();
        let yd = g.mul(y, dy).unwrap();
        let loss = g.sum(yd, &(0..ys.rank()).collect::<Vec<_>>(), false).unwrap();
        let wrt: Vec<_> = std::iter::once(x).chain(ctx.weights.iter().filter(|w| w.trainable).map(|w| w.variable)).collect();
        outputs.extend(g.backward(loss, &wrt).unwrap());
    }
    (g, ctx, outputs)
}

#[test]
fn catalogue_layers_match_larq_in_inference_and_training() {
    use bitgrad::layers::Mode;
    let fixture: Value = serde_json::from_str(include_str!("fixtures/layers.json")).unwrap();
    for c in fixture["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let layer = catalogue_layer(name);
        let shape = dims(&c["shape"]);
        let weights: Vec<(String, Vec<f32>)> = c["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| (format!("layer/{}", w["name"].as_str().unwrap()), floats(&w["values"])))
            .collect();
        for device in [Some(Device::cpu()), gpu().cloned()].into_iter().flatten() {
            let on = format!("{name} on {}", device.describe());
            for mode in [Mode::Inference, Mode::Training] {
                let (g, ctx, outputs) = build_case(layer.as_ref(), &shape, mode);
                let training = mode == Mode::Training;
                let mut wants = vec![("output".to_string(), floats(&c[if training { "y_training" } else { "y_inference" }]))];
                if training {
                    let trainable = ctx.weights.iter().filter(|w| w.trainable).map(|w| format!("gradient of {}", w.name));
                    let what = std::iter::once("input gradient".to_string()).chain(trainable);
                    wants.extend(what.zip(c["grads"].as_array().unwrap().iter().map(floats)));
                }
                assert_eq!(wants.len(), outputs.len(), "{on}: outputs");
                let dy = floats(&c["dy"]);
                let (got, params) = run_case(&device, &g, &ctx, &outputs, &weights, &shape, &floats(&c["x"]), training.then_some(&dy[..]));
                for ((what, want), got) in wants.iter().zip(&got) {
                    let expected = HostTensor::f32(got.shape().clone(), want.clone()).unwrap();
                    assert_close(&format!("{on} ({mode:?}): {what}"), got, &expected, LARQ);
                }
                if mode == Mode::Training {
                    // Moving statistics after one training step.
                    for u in c["updated"].as_array().unwrap() {
                        let uname = format!("layer/{}", u["name"].as_str().unwrap());
                        let got = params.get(&uname).unwrap().download().unwrap();
                        let expected = HostTensor::f32(got.shape().clone(), floats(&u["values"])).unwrap();
                        assert_close(&format!("{on}: {uname} after a training step"), &got, &expected, LARQ);
                    }
                }
            }
        }
    }
}

#[test]
fn binary_transposed_and_locally_connected_layers_run_on_packed_bits() {
    use bitgrad::layers::Mode;
    let fixture: Value = serde_json::from_str(include_str!("fixtures/layers.json")).unwrap();
    let count = |case: &str| {
        let c = fixture["cases"].as_array().unwrap().iter().find(|c| c["name"] == case).unwrap();
        let (g, _, _) = build_case(catalogue_layer(case).as_ref(), &dims(&c["shape"]), Mode::Training);
        let xnor = g.nodes().iter().filter(|n| matches!(n.op, bitgrad::Op::XnorGemm { .. })).count();
        let float = g.nodes().iter().filter(|n| matches!(n.op, bitgrad::Op::MatMul { .. })).count();
        (xnor, float)
    };
    for case in [
        "conv2d_transpose same stride 2 binary c33",
        "conv3d_transpose same stride 2 binary",
        "locally_connected1d stride 2 binary",
        "locally_connected1d implementation 3 binary",
    ] {
        // One XNOR GEMM forward; the only f32 products are the straight-through backward's
        // (dx and dw).
        assert_eq!(count(case), (1, 2), "{case}: (XNOR GEMMs, float products)");
    }
    // A tap in the padding has no weight, which sign bits cannot express but bit planes can (0
    // is all planes 0): the forward is a plane product, the backward's two f32 products remain.
    let case = "locally_connected1d implementation 2 same stride 2 binary";
    assert_eq!(count(case), (0, 2), "{case}: (XNOR GEMMs, float products)");
    let c = fixture["cases"].as_array().unwrap().iter().find(|c| c["name"] == case).unwrap();
    let (g, _, _) = build_case(catalogue_layer(case).as_ref(), &dims(&c["shape"]), Mode::Training);
    assert_eq!(g.nodes().iter().filter(|n| matches!(n.op, bitgrad::Op::PlaneGemm { .. })).count(), 1, "{case}");
}
