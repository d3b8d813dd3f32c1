//! TensorFlow's fake quantization (what TF-MOT's quantizers run) against TensorFlow itself
//! (fixtures written by tests/fixtures/gen_fake_quant.py): values and input gradients bit for bit,
//! range gradients within summation order, on the CPU reference and the GPU.

mod common;

use common::{gpu, run_on, Case};

use bitgrad::graph::FakeQuantSpec;
use bitgrad::{DType, Device, Graph, HostTensor};
use serde_json::Value;

struct Fixture {
    name: String,
    spec: FakeQuantSpec,
    shape: Vec<usize>,
    tensors: [Vec<f32>; 8], // x, min, max, upstream, y, dx, dmin, dmax
}

fn fixtures() -> Vec<Fixture> {
    let v: Value = serde_json::from_str(include_str!("fixtures/fake_quant.json")).expect("fixture JSON parses");
    let floats = |c: &Value, k: &str| -> Vec<f32> { c[k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect() };
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| Fixture {
            name: c["name"].as_str().unwrap().to_string(),
            spec: FakeQuantSpec {
                num_bits: c["num_bits"].as_u64().unwrap() as u32,
                narrow_range: c["narrow_range"].as_bool().unwrap(),
                per_channel: c["per_channel"].as_bool().unwrap(),
            },
            shape: c["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect(),
            tensors: ["x", "min", "max", "upstream", "y", "dx", "dmin", "dmax"].map(|k| floats(c, k)),
        })
        .collect()
}

/// y, dx, dmin, dmax of one fixture on `device`.
fn run(f: &Fixture, device: &Device) -> Vec<HostTensor> {
    let [x, min, max, up, ..] = &f.tensors;
    let mut g = Graph::new();
    let r = [min.len()];
    let (xv, lo, hi, dy) = (
        g.input("x", &f.shape[..], DType::F32).unwrap(),
        g.input("min", r, DType::F32).unwrap(),
        g.input("max", r, DType::F32).unwrap(),
        g.input("dy", &f.shape[..], DType::F32).unwrap(),
    );
    let y = g.fake_quant(xv, lo, hi, f.spec).unwrap();
    let weighted = g.mul(y, dy).unwrap();
    let loss = g.sum(weighted, &(0..f.shape.len()).collect::<Vec<_>>(), false).unwrap();
    let grads = g.backward(loss, &[xv, lo, hi]).unwrap();
    let feeds = vec![
        ("x", HostTensor::f32(&f.shape[..], x.clone()).unwrap()),
        ("min", HostTensor::f32(r, min.clone()).unwrap()),
        ("max", HostTensor::f32(r, max.clone()).unwrap()),
        ("dy", HostTensor::f32(&f.shape[..], up.clone()).unwrap()),
    ];
    let case = Case { graph: g, outputs: vec![y, grads[0], grads[1], grads[2]], feeds };
    run_on(device, &case, 1).unwrap_or_else(|e| panic!("{}: {e}", f.name))
}

#[test]
fn fake_quantization_matches_tensorflow() {
    let cases = fixtures();
    assert_eq!(cases.len(), 44);
    for f in &cases {
        for device in [Some(Device::cpu()), gpu().cloned()].into_iter().flatten() {
            let got = run(f, &device);
            let on = format!("{} on {}", f.name, device.describe());
            // The value and the input's gradient (upstream times a 0/1 mask): exact.
            for (what, t, want) in [("value", &got[0], &f.tensors[4]), ("input gradient", &got[1], &f.tensors[5])] {
                for (i, (a, e)) in t.as_f32().unwrap().iter().zip(want).enumerate() {
                    assert!(a.to_bits() == e.to_bits() || (*a == 0.0 && *e == 0.0), "{on}: {what} {i}: {a} vs TensorFlow's {e}");
                }
            }
            // The range's gradients are sums, in another order than TensorFlow's.
            for (what, t, want) in [("min gradient", &got[2], &f.tensors[6]), ("max gradient", &got[3], &f.tensors[7])] {
                for (a, e) in t.as_f32().unwrap().iter().zip(want) {
                    assert!((a - e).abs() <= 1e-5 * (1.0 + e.abs()), "{on}: {what}: {a} vs TensorFlow's {e}");
                }
            }
        }
    }
}

#[test]
fn the_f32_trap_and_the_worked_vectors() {
    // 4 bits on [-1, 1]: in f32 the zero point from min is 7.4999995, so it rounds to 7 and the
    // nudged range is [-0.9333334, 1.0666667]; an f64 computation gets 8.
    let spec = FakeQuantSpec { num_bits: 4, narrow_range: false, per_channel: false };
    let n = bitgrad::graph::ops::fake_quant::Nudged::new(spec, -1.0, 1.0);
    assert_eq!((n.zero_point, n.min, n.max), (7.0, -0.9333334, 1.0666667));
    let f = fixtures().into_iter().find(|f| f.name.starts_with("8-bit wide [-1")).unwrap();
    assert_eq!(f.tensors[4], [-1.0, -1.0, -0.0078125, 0.0, 0.0, 0.0078125, 0.015625, 0.5, 0.9921875, 0.9921875]);
}

#[test]
fn bad_ranges_and_bit_widths_are_errors() {
    let mut g = Graph::new();
    let x = g.input("x", [4, 3], DType::F32).unwrap();
    let one = g.input("one", [1], DType::F32).unwrap();
    let three = g.input("three", [3], DType::F32).unwrap();
    let spec = |num_bits, per_channel| FakeQuantSpec { num_bits, narrow_range: false, per_channel };
    let e = g.fake_quant(x, one, one, spec(17, false)).unwrap_err().to_string();
    assert!(e.contains("num_bits") && e.contains("17"), "{e}");
    let e = g.fake_quant(x, one, one, spec(1, false)).unwrap_err().to_string();
    assert!(e.contains("num_bits"), "{e}");
    let e = g.fake_quant(x, three, three, spec(8, false)).unwrap_err().to_string();
    assert!(e.contains("`min` must have shape [1]"), "{e}");
    let e = g.fake_quant(x, one, three, spec(8, true)).unwrap_err().to_string();
    assert!(e.contains("`min` must have one value per last-axis channel"), "{e}");
    assert!(g.fake_quant(x, three, three, spec(8, true)).is_ok());
}
