//! Convolutions: geometry against Keras' rules, im2col/col2im GPU against CPU, every conv
//! variant against a direct-loop reference, binary convolution against the float convolution of
//! the same ±1 values, and the transposed convolution as the adjoint of the convolution.

mod common;

use bitgrad::{ConvGeometry, ConvOptions, DType, DataFormat, Device, Graph, HostTensor, Padding, Shape};
use common::*;

#[test]
fn geometry_follows_keras_padding_rules() {
    let g = |input: usize, k: usize, s: usize, d: usize, p: Padding| {
        ConvGeometry::new(&Shape::new([1, input, 1]), &[k], &[s], &[d], &p, DataFormat::ChannelsLast).unwrap()
    };
    // same: out = ceil(in / s); total = max((out - 1) * s + (k - 1) * d + 1 - in, 0), begin = total / 2.
    let a = g(5, 3, 2, 1, Padding::Same);
    assert_eq!((a.output[0], a.pad_begin[0]), (3, 1));
    let b = g(6, 3, 2, 1, Padding::Same);
    assert_eq!((b.output[0], b.pad_begin[0]), (3, 0));
    let c = g(7, 3, 1, 2, Padding::Same);
    assert_eq!((c.output[0], c.pad_begin[0]), (7, 2));
    // valid: out = (in - (k - 1) * d - 1) / s + 1.
    assert_eq!(g(10, 3, 3, 2, Padding::Valid).output[0], 2);
    // causal: (k - 1) * d before, output ceil(in / s).
    let d = g(8, 3, 2, 2, Padding::Causal);
    assert_eq!((d.output[0], d.pad_begin[0]), (4, 4));
    let err =
        ConvGeometry::new(&Shape::new([1, 4, 4, 1]), &[3, 3], &[1, 1], &[1, 1], &Padding::Causal, DataFormat::ChannelsLast).unwrap_err();
    assert!(err.to_string().contains("causal"), "{err}");
    let err = ConvGeometry::new(&Shape::new([1, 2, 1]), &[5], &[1], &[1], &Padding::Valid, DataFormat::ChannelsLast).unwrap_err();
    assert!(err.to_string().contains("exceeds"), "{err}");
}

struct Config {
    name: &'static str,
    image: Vec<usize>,
    opts: ConvOptions,
    filters: usize,
}

fn opts(kernel: &[usize], strides: &[usize], dilation: &[usize], padding: Padding, format: DataFormat, groups: usize) -> ConvOptions {
    ConvOptions { kernel: kernel.to_vec(), strides: strides.to_vec(), dilation: dilation.to_vec(), padding, format, groups }
}

fn configs() -> Vec<Config> {
    use DataFormat::*;
    vec![
        Config { name: "1d same s2 d2", image: vec![2, 11, 3], opts: opts(&[3], &[2], &[2], Padding::Same, ChannelsLast, 1), filters: 4 },
        Config { name: "1d causal", image: vec![1, 9, 2], opts: opts(&[3], &[1], &[1], Padding::Causal, ChannelsLast, 1), filters: 3 },
        Config {
            name: "2d same s2",
            image: vec![2, 7, 6, 5],
            opts: opts(&[3, 3], &[2, 2], &[1, 1], Padding::Same, ChannelsLast, 1),
            filters: 7,
        },
        Config {
            name: "2d valid d2",
            image: vec![1, 9, 8, 3],
            opts: opts(&[3, 2], &[1, 1], &[2, 2], Padding::Valid, ChannelsLast, 1),
            filters: 2,
        },
        Config {
            name: "2d channels_first same",
            image: vec![2, 3, 6, 5],
            opts: opts(&[3, 3], &[1, 2], &[1, 1], Padding::Same, ChannelsFirst, 1),
            filters: 4,
        },
        Config {
            name: "2d groups 2",
            image: vec![1, 5, 5, 4],
            opts: opts(&[3, 3], &[1, 1], &[1, 1], Padding::Same, ChannelsLast, 2),
            filters: 6,
        },
        Config {
            name: "2d depthwise x2",
            image: vec![2, 6, 6, 3],
            opts: opts(&[3, 3], &[2, 2], &[1, 1], Padding::Valid, ChannelsLast, 3),
            filters: 6,
        },
        // Multiples of 4 channels: col2im sums runs of 4 channels per thread, in either layout.
        Config {
            name: "2d same s2 c8",
            image: vec![2, 7, 5, 8],
            opts: opts(&[3, 3], &[2, 2], &[1, 1], Padding::Same, ChannelsLast, 1),
            filters: 4,
        },
        Config {
            name: "2d channels_first valid c4",
            image: vec![1, 4, 6, 5],
            opts: opts(&[3, 2], &[1, 1], &[2, 1], Padding::Valid, ChannelsFirst, 1),
            filters: 3,
        },
        // Windows that do not overlap (kernel <= stride, as in pooling): col2im's one-tap form,
        // with pixels in no window (stride 3 over kernel 2) and padding.
        Config {
            name: "2d disjoint k2 s2x3 c4",
            image: vec![2, 7, 9, 4],
            opts: opts(&[2, 2], &[2, 3], &[1, 1], Padding::Valid, ChannelsLast, 1),
            filters: 3,
        },
        Config {
            name: "2d disjoint channels_first same k3x2",
            image: vec![1, 3, 7, 5],
            opts: opts(&[3, 2], &[3, 2], &[1, 1], Padding::Same, ChannelsFirst, 1),
            filters: 2,
        },
        // 1x1, stride 1, no padding: im2col and col2im are reshapes.
        Config {
            name: "2d pointwise",
            image: vec![2, 5, 4, 6],
            opts: opts(&[1, 1], &[1, 1], &[1, 1], Padding::Same, ChannelsLast, 1),
            filters: 3,
        },
        Config {
            name: "2d 1x1 s2",
            image: vec![2, 5, 4, 6],
            opts: opts(&[1, 1], &[2, 2], &[1, 1], Padding::Valid, ChannelsLast, 1),
            filters: 3,
        },
        Config {
            name: "3d same",
            image: vec![1, 4, 5, 3, 2],
            opts: opts(&[2, 3, 2], &[1, 2, 1], &[1, 1, 1], Padding::Same, ChannelsLast, 1),
            filters: 3,
        },
    ]
}

/// Direct convolution: loops over output pixels, taps and channels; only the geometry's
/// index rule is shared with the code under test.
fn direct_conv(x: &[f32], w: &[f32], g: &ConvGeometry, groups: usize, co: usize, pad: f32) -> Vec<f32> {
    let ci = g.channels / groups;
    let (sn, ss, sc) = g.image_strides();
    let (taps, pixels) = (g.taps(), g.out_pixels());
    let mut out = vec![0.0f32; g.batch * pixels * co];
    for n in 0..g.batch {
        for p in 0..pixels {
            let o = unravel(p, &g.output);
            for f in 0..co {
                let grp = f / (co / groups);
                let mut acc = 0.0f32;
                for t in 0..taps {
                    let tc = unravel(t, &g.kernel);
                    for c in 0..ci {
                        let ch = grp * ci + c;
                        let src: Option<usize> =
                            (0..g.kernel.len()).try_fold(n * sn + ch * sc, |off, i| g.source(i, o[i], tc[i]).map(|s| off + s * ss[i]));
                        let v = src.map_or(pad, |s| x[s]);
                        acc += v * w[(t * ci + c) * co + f];
                    }
                }
                out[(n * pixels + p) * co + f] = acc;
            }
        }
    }
    // To the image layout.
    if g.format == DataFormat::ChannelsFirst {
        let mut t = vec![0.0; out.len()];
        for n in 0..g.batch {
            for p in 0..pixels {
                for f in 0..co {
                    t[(n * co + f) * pixels + p] = out[(n * pixels + p) * co + f];
                }
            }
        }
        return t;
    }
    out
}

fn unravel(mut i: usize, dims: &[usize]) -> Vec<usize> {
    let mut out = vec![0; dims.len()];
    for d in (0..dims.len()).rev() {
        out[d] = i % dims[d];
        i /= dims[d];
    }
    out
}

fn kernel_shape(c: &Config) -> Vec<usize> {
    let channels = if c.opts.format == DataFormat::ChannelsLast { *c.image.last().unwrap() } else { c.image[1] };
    let mut k = c.opts.kernel.clone();
    k.extend([channels / c.opts.groups, c.filters]);
    k
}

fn conv_case(c: &Config, pad: f32, seed: u64) -> (Case<'static>, Vec<f32>) {
    let mut g = Graph::new();
    let x = g.input("x", &c.image[..], DType::F32).unwrap();
    let ks = kernel_shape(c);
    let w = g.input("w", &ks[..], DType::F32).unwrap();
    let y = g.conv(x, w, &c.opts, pad).unwrap();
    let xv = uniform(seed, c.image.iter().product(), 1.0);
    let wv = uniform(seed + 1, ks.iter().product(), 1.0);
    let geom =
        ConvGeometry::new(&Shape::new(&c.image[..]), &c.opts.kernel, &c.opts.strides, &c.opts.dilation, &c.opts.padding, c.opts.format)
            .unwrap();
    let want = direct_conv(&xv, &wv, &geom, c.opts.groups, c.filters, pad);
    let case = Case {
        graph: g,
        outputs: vec![y],
        feeds: vec![("x", HostTensor::f32(&c.image[..], xv).unwrap()), ("w", HostTensor::f32(&ks[..], wv).unwrap())],
    };
    (case, want)
}

#[test]
fn float_convolutions_match_the_direct_reference_and_the_gpu() {
    for c in configs() {
        for pad in [0.0, 1.0] {
            let (case, want) = conv_case(&c, pad, 3);
            let cpu = run_on(&Device::cpu(), &case, 1).unwrap();
            let k = c.opts.kernel.iter().product::<usize>() * 5;
            let expected = HostTensor::f32(cpu[0].shape().clone(), want).unwrap();
            assert_close(&format!("{} pad {pad}: graph vs direct", c.name), &cpu[0], &expected, accumulation(k));
            check_case(&format!("{} pad {pad}", c.name), &case, accumulation(k));
        }
    }
}

#[test]
fn im2col_and_col2im_match_cpu_for_floats_and_packed_words() {
    for c in configs() {
        let geom =
            ConvGeometry::new(&Shape::new(&c.image[..]), &c.opts.kernel, &c.opts.strides, &c.opts.dilation, &c.opts.padding, c.opts.format)
                .unwrap();
        let mut g = Graph::new();
        let x = g.input("x", &c.image[..], DType::F32).unwrap();
        let cols = g.im2col(x, &geom, -7.5).unwrap();
        let back = g.col2im(cols, &geom).unwrap();
        // A 1x1, stride-1, unpadded channels-last geometry needs no patch pass either way.
        let passes = g.nodes().iter().filter(|n| matches!(n.op, bitgrad::Op::Im2Col { .. } | bitgrad::Op::Col2Im { .. })).count();
        assert_eq!(passes, if geom.is_pointwise() { 0 } else { 2 }, "{}", c.name);
        let n: usize = c.image.iter().product();
        let case =
            Case { graph: g, outputs: vec![cols, back], feeds: vec![("x", HostTensor::f32(&c.image[..], uniform(4, n, 1.0)).unwrap())] };
        check_case(&format!("{} im2col/col2im f32", c.name), &case, accumulation(c.opts.kernel.iter().product()));
        let mut g = Graph::new();
        let w = g.input("w", &c.image[..], DType::U32).unwrap();
        let cols = g.im2col(w, &geom, 1.0).unwrap();
        let words = (0..n as u32).map(|i| bitgrad::graph::ops::random::random_bits(5, i)).collect();
        let case = Case { graph: g, outputs: vec![cols], feeds: vec![("w", HostTensor::u32(&c.image[..], words).unwrap())] };
        check_case(&format!("{} im2col u32", c.name), &case, Tol { abs: 0.0, rel: 0.0 });
    }
}

#[test]
fn convolution_gradients_match_finite_differences() {
    let c = &configs()[2]; // 2-D, same padding, stride 2
    let (case, _) = conv_case(c, 0.0, 6);
    let mut g = case.graph.clone();
    let (x, w, y) = (g.find_input("x").unwrap(), g.find_input("w").unwrap(), case.outputs[0]);
    let r = g.random(g.value(y).shape.clone(), bitgrad::Distribution::Uniform { low: -1.0, high: 1.0 }, 8).unwrap();
    let yr = g.mul(y, r).unwrap();
    let axes: Vec<usize> = (0..g.value(yr).shape.rank()).collect();
    let loss = g.sum(yr, &axes, false).unwrap();
    let grads = g.backward(loss, &[x, w]).unwrap();
    let eval = |feeds: &[(&str, HostTensor)], outs: &[bitgrad::ValueId]| {
        let mut plan = bitgrad::Plan::new(&Device::cpu(), &g, outs, &mut bitgrad::ParamStore::new()).unwrap();
        for (n, t) in feeds {
            plan.feed(n, t).unwrap();
        }
        plan.run().unwrap();
        outs.iter().map(|&o| plan.fetch(o).unwrap()).collect::<Vec<_>>()
    };
    let analytic = eval(&case.feeds, &grads);
    for (which, (name, t)) in case.feeds.iter().enumerate() {
        let v = t.as_f32().unwrap();
        for e in (0..v.len()).step_by(7) {
            let shifted = |delta: f32| {
                let mut feeds = case.feeds.clone();
                let mut nv = v.to_vec();
                nv[e] += delta;
                feeds[which] = (name, HostTensor::f32(t.shape().clone(), nv).unwrap());
                eval(&feeds, &[loss])[0].as_f32().unwrap()[0]
            };
            let numeric = (shifted(1e-2) - shifted(-1e-2)) / 2e-2;
            let a = analytic[which].as_f32().unwrap()[e];
            assert!((a - numeric).abs() <= 2e-3 + 5e-3 * numeric.abs(), "d/d{name}[{e}]: analytic {a}, numeric {numeric}");
        }
    }
    // And the whole backward graph on the GPU.
    check_case("conv backward", &Case { graph: g, outputs: grads, feeds: case.feeds }, accumulation(100));
}

/// ±1 values with some exact zeros replaced (sign(0) = +1 packs as 0).
fn signs(seed: u64, n: usize) -> Vec<f32> {
    uniform(seed, n, 1.0).iter().map(|&v| if v < 0.0 { -1.0 } else { 1.0 }).collect()
}

#[test]
fn binary_convolution_equals_the_float_convolution_of_its_signs() {
    use DataFormat::ChannelsLast;
    // Channels below, at, and not a multiple of 32; strides, dilation, both pad values.
    let cases = [
        ("3x3 same s1 c5", vec![2, 6, 5, 5], opts(&[3, 3], &[1, 1], &[1, 1], Padding::Same, ChannelsLast, 1), 4),
        ("3x3 same s2 c33", vec![1, 7, 7, 33], opts(&[3, 3], &[2, 2], &[1, 1], Padding::Same, ChannelsLast, 1), 5),
        ("3x3 same d2 c32", vec![1, 8, 6, 32], opts(&[3, 3], &[1, 1], &[2, 2], Padding::Same, ChannelsLast, 1), 3),
        ("2x2 valid c70", vec![2, 5, 4, 70], opts(&[2, 2], &[1, 1], &[1, 1], Padding::Valid, ChannelsLast, 1), 2),
        ("1d causal c40", vec![2, 9, 40], opts(&[3], &[1], &[1], Padding::Causal, ChannelsLast, 1), 3),
        ("1x1 pointwise c40", vec![2, 3, 4, 40], opts(&[1, 1], &[1, 1], &[1, 1], Padding::Valid, ChannelsLast, 1), 6),
        ("3x3 same channels_first c6", vec![2, 6, 5, 4], opts(&[3, 3], &[1, 1], &[1, 1], Padding::Same, DataFormat::ChannelsFirst, 1), 3),
        ("3x3 same groups 2 c66", vec![1, 5, 5, 66], opts(&[3, 3], &[1, 1], &[1, 1], Padding::Same, ChannelsLast, 2), 4),
        ("3x3 same s2 depthwise x2 c5", vec![2, 6, 6, 5], opts(&[3, 3], &[2, 2], &[1, 1], Padding::Same, ChannelsLast, 5), 10),
    ];
    for (name, image, o, filters) in cases {
        for pad in [1.0, 0.0] {
            let mut g = Graph::new();
            let x = g.input("x", &image[..], DType::F32).unwrap();
            let mut ks = o.kernel.clone();
            let channels = if o.format == DataFormat::ChannelsLast { *image.last().unwrap() } else { image[1] };
            ks.extend([channels / o.groups, filters]);
            let w = g.input("w", &ks[..], DType::F32).unwrap();
            let binary = g.binary_conv(x, w, &o, pad, Some(1.0), Some(1.0)).unwrap();
            let float = g.conv(x, w, &o, pad).unwrap();
            let c = Case {
                graph: g,
                outputs: vec![binary, float],
                feeds: vec![
                    ("x", HostTensor::f32(&image[..], signs(9, image.iter().product())).unwrap()),
                    ("w", HostTensor::f32(&ks[..], signs(10, ks.iter().product())).unwrap()),
                ],
            };
            for device in [Some(Device::cpu()), gpu().cloned()].into_iter().flatten() {
                let out = run_on(&device, &c, 1).unwrap();
                // Sums of ±1 are small integers: exact in f32 on both paths.
                assert_eq!(out[0], out[1], "{name} pad {pad} on {}: packed result differs from float", device.describe());
            }
            check_case(&format!("binary conv {name} pad {pad}"), &c, Tol { abs: 0.0, rel: 0.0 });
        }
    }
}

/// The input gradient of a binary convolution: where the patches read most (pixel, tap) pairs
/// of the image (channels last, channels a multiple of 32, filters of 4), col2im computes the
/// patch gradients dY sign(W) itself (`im2col::col2im_signs_*`) and the product is never
/// stored; elsewhere (strides, small "valid" images) the product and col2im run. Both against
/// the CPU reference, each pixel count per thread pinned in turn and bit for bit against the
/// other, with rows that do not fill a thread and both pad values.
#[test]
fn binary_convolution_input_gradients_skip_the_patch_buffer_where_patches_cover_the_image() {
    use DataFormat::ChannelsLast;
    if gpu().is_none() {
        return;
    }
    let dev = Device::gpu_with(&bitgrad::GpuOptions { tune: Some(bitgrad::TuneMode::Off), ..Default::default() }).unwrap();
    let Device::Gpu(ctx) = &dev else { unreachable!("gpu_with gives a GPU device") };
    let cases = [
        ("3x3 same", vec![2, 7, 6, 32], opts(&[3, 3], &[1, 1], &[1, 1], Padding::Same, ChannelsLast, 1), 8, true),
        ("3x3 valid 13x13", vec![1, 13, 13, 32], opts(&[3, 3], &[1, 1], &[1, 1], Padding::Valid, ChannelsLast, 1), 4, true),
        ("3x3 same d2 c64", vec![1, 8, 9, 64], opts(&[3, 3], &[1, 1], &[2, 2], Padding::Same, ChannelsLast, 1), 12, true),
        ("1d same", vec![3, 10, 32], opts(&[3], &[1], &[1], Padding::Same, ChannelsLast, 1), 4, true),
        ("3d same", vec![1, 6, 6, 4, 32], opts(&[2, 2, 2], &[1, 1, 1], &[1, 1, 1], Padding::Same, ChannelsLast, 1), 4, true),
        ("3x3 same s2", vec![2, 8, 8, 32], opts(&[3, 3], &[2, 2], &[1, 1], Padding::Same, ChannelsLast, 1), 4, false),
        ("3x3 valid 5x5", vec![2, 5, 5, 32], opts(&[3, 3], &[1, 1], &[1, 1], Padding::Valid, ChannelsLast, 1), 4, false),
    ];
    for (name, image, o, filters, fused) in cases {
        for pad in [1.0, 0.0] {
            let mut g = Graph::new();
            let x = g.input("x", &image[..], DType::F32).unwrap();
            let mut ks = o.kernel.clone();
            ks.extend([*image.last().unwrap(), filters]);
            let w = g.input("w", &ks[..], DType::F32).unwrap();
            let y = g.binary_conv(x, w, &o, pad, Some(1.0), Some(1.0)).unwrap();
            let r = g.input("r", g.value(y).shape.clone(), DType::F32).unwrap();
            let yr = g.mul(y, r).unwrap();
            let axes: Vec<usize> = (0..g.value(yr).shape.rank()).collect();
            let loss = g.sum(yr, &axes, false).unwrap();
            let grads = g.backward(loss, &[x, w]).unwrap();
            let r_shape = g.value(r).shape.clone();
            let feeds = vec![
                ("x", HostTensor::f32(&image[..], uniform(11, image.iter().product(), 1.5)).unwrap()),
                ("w", HostTensor::f32(&ks[..], uniform(12, ks.iter().product(), 1.5)).unwrap()),
                ("r", HostTensor::f32(r_shape.clone(), uniform(13, r_shape.numel(), 1.0)).unwrap()),
            ];
            let c = Case { graph: g, outputs: grads, feeds };
            let what = format!("binary conv backward {name} pad {pad}");
            let cpu = run_on(&Device::cpu(), &c, 1).unwrap();
            let mut results = Vec::new();
            for entry in ["col2im_signs_4", "col2im_signs_8"] {
                ctx.tuning.pin(Some(entry));
                let kernels = bitgrad::Plan::new(&dev, &c.graph, &c.outputs, &mut bitgrad::ParamStore::new()).unwrap().kernels().unwrap();
                assert_eq!(kernels.contains(&format!("im2col::{entry}")), fused, "{what}: {kernels:?}");
                assert_eq!(kernels.contains(&"im2col::col2im".to_string()), !fused, "{what}: {kernels:?}");
                let got = run_on(&dev, &c, 1).unwrap();
                let taps: usize = o.kernel.iter().product();
                for (i, which) in ["dx", "dw"].iter().enumerate() {
                    assert_close(&format!("{what} {which} ({entry})"), &got[i], &cpu[i], accumulation(taps * filters.max(100)));
                }
                results.push(got);
            }
            ctx.tuning.pin(None);
            assert_eq!(results[0], results[1], "{what}: 4 and 8 pixels per thread differ");
        }
    }
}

#[test]
fn transposed_convolution_is_the_adjoint_of_convolution() {
    use DataFormat::*;
    // <conv(a, w), b> == <a, conv_transpose(b, w)> for the same kernel tensor.
    let cases = [
        ("2d same s2", vec![2, 7, 6, 3], opts(&[3, 3], &[2, 2], &[1, 1], Padding::Same, ChannelsLast, 1), 4),
        ("2d valid s2 d2", vec![1, 9, 9, 2], opts(&[3, 3], &[2, 2], &[2, 2], Padding::Valid, ChannelsLast, 1), 3),
        ("3d same s2", vec![1, 4, 5, 4, 2], opts(&[2, 2, 2], &[2, 2, 2], &[1, 1, 1], Padding::Same, ChannelsLast, 1), 3),
        ("2d channels_first", vec![1, 3, 6, 6], opts(&[3, 3], &[2, 2], &[1, 1], Padding::Same, ChannelsFirst, 1), 2),
    ];
    for (name, image, o, filters) in cases {
        let mut g = Graph::new();
        let a = g.input("a", &image[..], DType::F32).unwrap();
        let channels = if o.format == ChannelsLast { *image.last().unwrap() } else { image[1] };
        let mut ks = o.kernel.clone();
        ks.extend([channels, filters]);
        let w = g.input("w", &ks[..], DType::F32).unwrap();
        let y = g.conv(a, w, &o, 0.0).unwrap();
        let b = g.input("b", g.value(y).shape.clone(), DType::F32).unwrap();
        let spatial = if o.format == ChannelsLast { image[1..image.len() - 1].to_vec() } else { image[2..].to_vec() };
        let at = g.conv_transpose(b, w, &o, &spatial).unwrap();
        assert_eq!(g.value(at).shape.dims(), &image[..], "{name}");
        let yb = g.mul(y, b).unwrap();
        let lhs = g.sum(yb, &(0..image.len()).collect::<Vec<_>>(), false).unwrap();
        let aat = g.mul(a, at).unwrap();
        let rhs = g.sum(aat, &(0..image.len()).collect::<Vec<_>>(), false).unwrap();
        let ys = g.value(y).shape.clone();
        let c = Case {
            graph: g,
            outputs: vec![lhs, rhs, at],
            feeds: vec![
                ("a", HostTensor::f32(&image[..], uniform(11, image.iter().product(), 1.0)).unwrap()),
                ("w", HostTensor::f32(&ks[..], uniform(12, ks.iter().product(), 1.0)).unwrap()),
                ("b", HostTensor::f32(ys.clone(), uniform(13, ys.numel(), 1.0)).unwrap()),
            ],
        };
        let out = run_on(&Device::cpu(), &c, 1).unwrap();
        let (l, r) = (out[0].as_f32().unwrap()[0], out[1].as_f32().unwrap()[0]);
        assert!((l - r).abs() <= 1e-4 * (1.0 + l.abs()), "{name}: <conv(a), b> = {l} but <a, conv_transpose(b)> = {r}");
        check_case(&format!("conv_transpose {name}"), &c, accumulation(200));
    }
}

#[test]
fn locally_connected_matches_a_direct_reference() {
    for (image, o) in [
        (vec![2, 7, 3], opts(&[3], &[2], &[1], Padding::Valid, DataFormat::ChannelsLast, 1)),
        (vec![1, 5, 4, 2], opts(&[2, 2], &[1, 1], &[1, 1], Padding::Valid, DataFormat::ChannelsLast, 1)),
    ] {
        let filters = 3;
        let geom = ConvGeometry::new(&Shape::new(&image[..]), &o.kernel, &o.strides, &o.dilation, &o.padding, o.format).unwrap();
        let (p, kc) = (geom.out_pixels(), geom.taps() * geom.channels);
        let mut g = Graph::new();
        let x = g.input("x", &image[..], DType::F32).unwrap();
        let w = g.input("w", [p, kc, filters], DType::F32).unwrap();
        let y = g.locally_connected(x, w, &o).unwrap();
        let (xv, wv) = (uniform(14, image.iter().product(), 1.0), uniform(15, p * kc * filters, 1.0));
        // Direct reference: each output pixel has its own [taps x C, filters] matrix.
        let mut want = vec![0.0f32; geom.batch * p * filters];
        for n in 0..geom.batch {
            for px in 0..p {
                let single: Vec<f32> = wv[px * kc * filters..(px + 1) * kc * filters].to_vec();
                let full = direct_conv(&xv, &single, &geom, 1, filters, 0.0);
                for f in 0..filters {
                    want[(n * p + px) * filters + f] = full[(n * p + px) * filters + f];
                }
            }
        }
        let c = Case {
            graph: g,
            outputs: vec![y],
            feeds: vec![("x", HostTensor::f32(&image[..], xv).unwrap()), ("w", HostTensor::f32([p, kc, filters], wv).unwrap())],
        };
        let cpu = run_on(&Device::cpu(), &c, 1).unwrap();
        assert_close("locally connected vs direct", &cpu[0], &HostTensor::f32(cpu[0].shape().clone(), want).unwrap(), accumulation(kc));
        check_case("locally connected", &c, accumulation(kc));
    }
}

#[test]
fn convolution_errors_name_the_argument() {
    let mut g = Graph::new();
    let x = g.input("x", [1, 5, 5, 4], DType::F32).unwrap();
    let w = g.input("w", [3, 3, 3, 2], DType::F32).unwrap();
    let err = g.conv(x, w, &ConvOptions::new(&[3, 3]), 0.0).unwrap_err().to_string();
    assert!(err.contains("conv") && err.contains("[3, 3, 3, 2]"), "{err}");
    let mut o = ConvOptions::new(&[3, 3]);
    o.groups = 3;
    let err = g.conv(x, w, &o, 0.0).unwrap_err().to_string();
    assert!(err.contains("groups"), "{err}");
    let w4 = g.input("w4", [3, 3, 4, 2], DType::F32).unwrap();
    let err = g.binary_conv(x, w4, &ConvOptions::new(&[3, 3]), 0.5, None, None).unwrap_err().to_string();
    assert!(err.contains("pad_values"), "{err}");
    let mut grouped = ConvOptions::new(&[3, 3]);
    grouped.groups = 3;
    let err = g.binary_conv(x, w4, &grouped, 1.0, None, None).unwrap_err().to_string();
    assert!(err.contains("groups"), "{err}");
    let mut o = ConvOptions::new(&[3, 3]);
    o.strides = vec![1];
    let err = g.conv(x, w4, &o, 0.0).unwrap_err().to_string();
    assert!(err.contains("strides"), "{err}");
}
