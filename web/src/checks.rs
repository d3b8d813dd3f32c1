//! Kernel checks that run the same graphs natively and in the browser. Each case builds a small
//! graph (bit-packing, the XNOR-popcount product with its straight-through gradients, quantizer
//! pseudo-gradients) from stored inputs. The native test `tests/web_kernels.rs` of the main crate
//! wrote `web/tests/kernels.json` with the CPU reference's outputs and checks that lavapipe
//! matches them; the browser test checks WebGPU against the same file.
//!
//! This file is compiled into both crates (the native test includes it by path), so it uses only
//! bitgrad's public API and serde.

use std::collections::BTreeMap;

use bitgrad::graph::QuantFn;
use bitgrad::{DType, Device, Graph, HostTensor, PackMode, ParamStore, Plan, Result, TensorData, ValueId};
use serde::{Deserialize, Serialize};

/// Tolerance for f32 outputs that go through transcendental functions (swish_sign's tanh and
/// cosh), whose last bits differ between the CPU's libm and a GPU's; relative to max(1, |expected|).
/// Everything else (packed bits, integer-valued products, piecewise-linear gradients) must be equal.
pub const TRANSCENDENTAL_TOLERANCE: f64 = 1e-5;

/// A tensor as stored in the fixture file: f32 values or u32 words, as JSON numbers (both
/// round-trip exactly through f64).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// `f32` or `u32`.
    pub dtype: String,
    /// Row-major values.
    pub values: Vec<f64>,
}

impl Stored {
    /// The stored form of a host tensor (f32 or u32).
    pub fn of(t: &HostTensor) -> Result<Stored> {
        let (dtype, values) = match t.dtype() {
            DType::U32 => ("u32", t.as_u32()?.iter().map(|&v| v as f64).collect()),
            _ => ("f32", t.as_f32()?.iter().map(|&v| v as f64).collect()),
        };
        Ok(Stored { shape: t.shape().dims().to_vec(), dtype: dtype.into(), values })
    }

    /// The host tensor again.
    pub fn tensor(&self) -> Result<HostTensor> {
        let data = match self.dtype.as_str() {
            "u32" => TensorData::U32(self.values.iter().map(|&v| v as u32).collect()),
            _ => TensorData::F32(self.values.iter().map(|&v| v as f32).collect()),
        };
        HostTensor::new(self.shape.clone(), data)
    }
}

/// One check: a named graph, its inputs, and the outputs the CPU reference computed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Which graph (see [`build`]).
    pub name: String,
    /// Inputs by name.
    pub inputs: BTreeMap<String, Stored>,
    /// Expected outputs by name.
    pub outputs: BTreeMap<String, Stored>,
}

/// The quantizers whose pseudo-gradients are checked, by the name outputs are stored under.
fn quantizers() -> [(&'static str, QuantFn); 4] {
    [
        ("ste_sign", QuantFn::SteSign { clip: Some(1.0) }),
        ("approx_sign", QuantFn::ApproxSign),
        ("swish_sign", QuantFn::SwishSign { beta: 5.0 }),
        ("ste_heaviside", QuantFn::SteHeaviside { clip: Some(1.0) }),
    ]
}

/// Builds case `name`'s graph on inputs of the given shapes; returns the graph and its named
/// outputs.
pub fn build(name: &str, inputs: &BTreeMap<String, Stored>) -> Result<(Graph, Vec<(String, ValueId)>)> {
    let mut g = Graph::new();
    let input = |g: &mut Graph, n: &str| -> Result<ValueId> {
        let s = inputs.get(n).ok_or_else(|| bitgrad::Error::unknown("fixture input", &format!("{name}/{n}"), inputs.keys()))?;
        g.input(n, s.shape.clone(), DType::F32)
    };
    let outputs = match name {
        // Sign bits (1 for x < 0) and the |x| <= 1 straight-through mask of rows whose length
        // is not a multiple of 32.
        "bit_pack" => {
            let x = input(&mut g, "x")?;
            vec![("signs".into(), g.bit_pack(x, PackMode::Sign)?), ("mask".into(), g.bit_pack(x, PackMode::ClipMask(1.0))?)]
        }
        // sign(x) @ sign(w) on packed bits, and its gradients for an upstream dy.
        "binary_matmul" => {
            let (x, w, dy) = (input(&mut g, "x")?, input(&mut g, "w")?, input(&mut g, "dy")?);
            let y = g.binary_matmul(x, w, Some(1.0), Some(1.0))?;
            let loss = weighted_sum(&mut g, y, dy)?;
            let grads = g.backward(loss, &[x, w])?;
            vec![("y".into(), y), ("dx".into(), grads[0]), ("dw".into(), grads[1])]
        }
        // Each quantizer's value and pseudo-gradient for an upstream dy.
        "quantizer_gradients" => {
            let (x, dy) = (input(&mut g, "x")?, input(&mut g, "dy")?);
            let mut outs = Vec::new();
            for (q, f) in quantizers() {
                let y = g.quantize(f, x, None)?;
                let loss = weighted_sum(&mut g, y, dy)?;
                let dx = g.backward(loss, &[x])?[0];
                outs.push((format!("{q}/y"), y));
                outs.push((format!("{q}/dx"), dx));
            }
            outs
        }
        other => return Err(bitgrad::Error::unknown("kernel check", other, Vec::<String>::new())),
    };
    Ok((g, outputs))
}

/// `sum(y * dy)`, whose gradient for `y` is `dy`.
fn weighted_sum(g: &mut Graph, y: ValueId, dy: ValueId) -> Result<ValueId> {
    let p = g.mul(y, dy)?;
    let axes: Vec<usize> = (0..g.value(p).shape.rank()).collect();
    g.sum(p, &axes, false)
}

/// Runs case `name` on `device` with `inputs` and returns its outputs.
pub async fn run(name: &str, inputs: &BTreeMap<String, Stored>, device: &Device) -> Result<BTreeMap<String, Stored>> {
    let (g, outputs) = build(name, inputs)?;
    let ids: Vec<ValueId> = outputs.iter().map(|(_, v)| *v).collect();
    let mut plan = Plan::new(device, &g, &ids, &mut ParamStore::new())?;
    for (n, s) in inputs {
        plan.feed(n, &s.tensor()?)?;
    }
    plan.run()?;
    let mut out = BTreeMap::new();
    for (n, v) in outputs {
        out.insert(n, Stored::of(&plan.fetch_async(v).await?)?);
    }
    Ok(out)
}

/// Compares a case's outputs with the expected ones: equal, except [`TRANSCENDENTAL_TOLERANCE`]
/// for swish_sign's. The message names the case, output and first differing element.
pub fn compare(case: &Case, got: &BTreeMap<String, Stored>) -> std::result::Result<(), String> {
    for (name, want) in &case.outputs {
        let have = got.get(name).ok_or_else(|| format!("{}: no output `{name}`", case.name))?;
        if have.shape != want.shape || have.dtype != want.dtype {
            return Err(format!("{}/{name}: {} {:?}, expected {} {:?}", case.name, have.dtype, have.shape, want.dtype, want.shape));
        }
        let tolerance = if name.starts_with("swish_sign") { TRANSCENDENTAL_TOLERANCE } else { 0.0 };
        for (i, (&h, &w)) in have.values.iter().zip(&want.values).enumerate() {
            if (h - w).abs() > tolerance * w.abs().max(1.0) {
                return Err(format!("{}/{name}[{i}]: {h}, expected {w} (tolerance {tolerance})", case.name));
            }
        }
    }
    Ok(())
}
