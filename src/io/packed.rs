//! Packed export for inference: a model's ±1 kernels stored as bits, BatchNormalization folded
//! into the layer before it, and a loader that runs the result.
//!
//! A packed file is a safetensors file whose metadata holds `format` = `bitgrad-packed`,
//! `version` = `1` and `model`, the Keras JSON of the model as it runs from the file:
//! - every weight of rank 2 or more with a ±1 quantizer (`ste_sign`, `approx_sign`,
//!   `swish_sign`) is `u32` packed signs in [`crate::layers::packed_kernel_shape`], the layout
//!   the XNOR-popcount products read as they are (32x smaller than f32 when the packed axis is a
//!   multiple of 32);
//! - a BatchNormalization whose input is only the linear output of a Dense, Conv, transposed
//!   Conv or LocallyConnected layer (not shared, same channel axis) is folded into that layer's
//!   per-channel `scale` and `bias` (`QuantArgs::output_scale`): `scale = old_scale * gamma /
//!   sqrt(var + eps)`, `bias = (old_bias - mean) * scale_bn + beta`;
//! - a `magnitude_aware_sign` kernel of a Dense or Conv layer becomes packed signs with its
//!   per-channel magnitude in the layer's `scale`;
//! - every other weight of rank 2 or more whose quantizer has discrete values (`ste_tern`, 2
//!   bits; `ste_heaviside`, 1 bit; DoReFa, k bits: up to 8 for activations, 7 for weights) is
//!   `u32` bit planes of its quantized integers, `[P, out, d0, .., words(d(r-2))]`
//!   ([`plane_kernel`], docs/ENCODINGS.md; DoReFa's weights keep the k bits of `n` in
//!   `(2n - L) / L`), from which the model recomputes the quantizer's exact values and runs its
//!   products on bit planes (16x smaller than f32 for ternary, 32/k x for k bits);
//! - sign quantizers are written as `ste_sign` (the same forward pass), so products of two
//!   binarized operands run on the XNOR path;
//! - everything else (float weights, kernels of other quantizers, which keep their latent
//!   values and quantizer) is stored as f32.
//!
//! Format version 2 adds the bit planes; version 1 files (signs only) read as before.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::{json, Value};

use super::keras::export::{Call, Wiring};
use super::keras::{model_from_json, KerasModel};
use super::safetensors::{Expected, TensorFile};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::graph::{Encoding, Graph, LowBit, PackMode, QuantFn, Quantized, UnaryOp, ValueId};
use crate::layers::{packed_kernel_shape, unpack_kernel, BuildContext, Mode, Weight, WeightHook, WeightSpec};
use crate::models::{build_in, Built, Model, Network};
use crate::quantizers::Quantizer;
use crate::runtime::{ParamStore, Plan};
use crate::tensor::{DType, HostTensor};

/// The `format` metadata of a packed file.
pub const FORMAT: &str = "bitgrad-packed";
/// The `version` metadata this bitgrad writes and reads.
pub const VERSION: &str = "2";

/// Builds `model` for inference on `batch`-sized inputs with the weights of a packed export:
/// every ±1-quantized kernel is a variable of packed bits ([`PackedWeights`]).
pub fn build_packed(model: &dyn Model, batch: usize) -> Result<Built> {
    if batch == 0 {
        return Err(Error::invalid("model", "batch", "must be positive"));
    }
    let mut net = Network::new(batch, Mode::Inference);
    net.ctx.hooks.push(std::sync::Arc::new(PackedWeights));
    build_in(model, net)
}

/// The weight hook of a model built from a packed export ([`build_packed`]): a weight of rank 2
/// or more with a ±1 quantizer is a `u32` variable of packed signs in [`packed_kernel_shape`]
/// (`Graph::packed_variable`, which has no initializer: a plan refuses to run without the
/// file's value), not trainable, and the forward pass reads its unpacked ±1 values.
#[derive(Clone, Copy, Debug)]
pub struct PackedWeights;

impl WeightHook for PackedWeights {
    fn declare(
        &self,
        g: &mut Graph,
        ctx: &mut BuildContext,
        spec: &WeightSpec,
        name: &str,
        existing: Option<ValueId>,
    ) -> Result<Option<(ValueId, ValueId)>> {
        if spec.shape.rank() < 2 {
            return Ok(None);
        }
        if let Some(plane) = spec.quantizer.and_then(plane_kernel) {
            return declare_planes(g, ctx, spec, name, existing, plane).map(Some);
        }
        if !spec.quantizer.is_some_and(Quantizer::is_binary_sign) {
            return Ok(None);
        }
        if let Some(bits) = existing {
            return Ok(Some((bits, unpack_kernel(g, bits, &spec.shape)?)));
        }
        let bits = g.packed_variable(name, packed_kernel_shape(&spec.shape))?;
        ctx.weights.push(Weight {
            variable: bits,
            name: name.to_string(),
            precision: 1,
            constraint: None,
            trainable: false,
            optional: false,
        });
        Ok(Some((bits, unpack_kernel(g, bits, &spec.shape)?)))
    }
}

/// How a kernel of a discrete quantizer is stored as bit planes: the stored encoding and its
/// scale (`stored / scale` is the quantizer's value, `+ offset`), and the form the model's
/// products take.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlaneKernel {
    /// The planes in the file.
    pub stored: Encoding,
    /// Integers per unit of the stored value.
    pub scale: f32,
    /// Added after unpacking (-1 for DoReFa's weights, `2n / L - 1`).
    pub offset: f32,
    /// The quantizer's values as the products take them.
    pub form: LowBit,
    /// Their name (`ternary`, `{0,1}`, `2-bit`, ...).
    pub values: &'static str,
}

/// The plane form of a kernel quantizer whose values are discrete ([`LowBit::of`]) and neither
/// ±1 (those are sign bits) nor scaled by a magnitude, if it has one.
pub fn plane_kernel(q: &Quantizer) -> Option<PlaneKernel> {
    let f = q.builtin_function().filter(|f| !q.is_binary_sign() && !matches!(f, QuantFn::ScaledSign { .. }))?;
    let form = LowBit::of(f)?;
    let (stored, scale, offset) = match form.encoding {
        // Odd levels `2n - L` of a kernel are never 0: the k bits of `n` hold them, read back as
        // `n / (L / 2) - 1`.
        Encoding::Odd { bits } => (Encoding::Unsigned { bits }, form.scale / 2.0, -1.0),
        e => (e, form.scale, 0.0),
    };
    Some(PlaneKernel { stored, scale, offset, form, values: LowBit::values(f) })
}

/// The shape of a kernel's planes in a packed file: `[P, out, d0, .., words(d(r-2))]`.
pub fn plane_kernel_shape(shape: &crate::Shape, stored: Encoding) -> crate::Shape {
    let mut d = vec![stored.planes()];
    d.extend(packed_kernel_shape(shape).dims());
    crate::Shape::new(d)
}

/// Declares a kernel of planes and the quantizer's values computed from them.
fn declare_planes(
    g: &mut Graph,
    ctx: &mut BuildContext,
    spec: &WeightSpec,
    name: &str,
    existing: Option<ValueId>,
    p: PlaneKernel,
) -> Result<(ValueId, ValueId)> {
    let bits = match existing {
        Some(bits) => bits,
        None => {
            let bits = g.packed_variable(name, plane_kernel_shape(&spec.shape, p.stored))?;
            ctx.weights.push(Weight {
                variable: bits,
                name: name.to_string(),
                precision: spec.quantizer.map_or(32, Quantizer::precision),
                constraint: None,
                trainable: false,
                optional: false,
            });
            bits
        }
    };
    let d = spec.shape.dims();
    let r = d.len();
    let (k, rows) = (d[r - 2], spec.shape.numel() / d[r - 2]);
    let planes = g.reshape(bits, [p.stored.planes(), rows, crate::graph::op::words_for(k)])?;
    let v = g.plane_unpack(planes, p.stored, k, p.scale)?; // [out * d0 .., k]
    let v = if p.offset != 0.0 { g.unary(UnaryOp::Offset(p.offset), v)? } else { v };
    let mut permuted = vec![d[r - 1]];
    permuted.extend(&d[..r - 1]);
    let v = g.reshape(v, permuted)?;
    let perm: Vec<usize> = (1..r).chain([0]).collect();
    let v = g.permute(v, &perm)?;
    g.declare_quantized(Quantized { q: v, form: p.form, channel_scale: None, values: p.values })?;
    Ok((bits, v))
}

/// A kernel stored as packed bits.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedKernel {
    /// Its name.
    pub name: String,
    /// Bytes as f32.
    pub float_bytes: usize,
    /// Bytes as packed bits.
    pub packed_bytes: usize,
}

/// What an export did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PackReport {
    /// The kernels stored as bits.
    pub packed: Vec<PackedKernel>,
    /// Each folded BatchNormalization, with the layer it went into.
    pub folded: Vec<(String, String)>,
    /// Quantized weights kept as f32 (quantizers whose output is not ±1).
    pub kept_float: Vec<String>,
    /// Bytes of all tensors as f32 (the float weights).
    pub float_bytes: usize,
    /// Bytes of all tensors in the packed file.
    pub packed_bytes: usize,
}

/// The packed export of `model` with its latent `weights` (which must be exactly the model's;
/// `file` names them in errors), and what it did.
pub fn export(model: &dyn Model, weights: &TensorFile, file: &str) -> Result<(TensorFile, PackReport)> {
    let (mut wiring, built) = Wiring::of(model)?;
    let weights = &crate::io::safetensors::model_weights(weights.clone(), &built.weights());
    weights.check(file, &built.weights(), &Expected::new())?;
    let mut report = PackReport::default();
    let mut tensors: BTreeMap<String, HostTensor> = BTreeMap::new(); // folded values, by name
    let shared = shared_layers(&wiring);
    for call in wiring.calls.iter_mut() {
        if !shared.contains(&call.name) {
            fold_magnitude(call, weights, &mut tensors)?;
        }
        as_ste_sign(&mut call.config);
    }
    fold_batch_norms(&mut wiring, &built, &shared, weights, &mut tensors, &mut report)?;
    let json = wiring.to_json()?;
    let packed_model = model_from_json("the packed model", &json)?;
    let packed = build_packed(&packed_model, 1)?;
    let latent: HashMap<&str, u32> = built.network.ctx.weights.iter().map(|w| (w.name.as_str(), w.precision)).collect();
    let quantizers = kernel_quantizers(&wiring);
    for w in &packed.network.ctx.weights {
        let want = &packed.graph().value(w.variable).shape;
        let t = match tensors.remove(&w.name) {
            Some(t) => t,
            None => weights
                .tensors
                .get(&w.name)
                .cloned()
                .ok_or_else(|| Error::invalid("export", "weights", format!("no tensor `{}`", w.name)))?,
        };
        let t = if packed.graph().value(w.variable).dtype == DType::U32 {
            let planes = quantizers.get(w.name.as_str()).and_then(|q| q.as_ref()).and_then(|q| plane_kernel(q).map(|p| (q, p)));
            let bits = match planes {
                Some((q, p)) => pack_planes(&t, q, p)?,
                None => pack(&t)?,
            };
            report.packed.push(PackedKernel {
                name: w.name.clone(),
                float_bytes: 4 * t.shape().numel(),
                packed_bytes: 4 * bits.shape().numel(),
            });
            bits
        } else {
            if latent.get(w.name.as_str()).is_some_and(|&p| p < 32) {
                report.kept_float.push(w.name.clone());
            }
            t
        };
        if t.shape() != want {
            return Err(Error::invalid(
                "export",
                "weights",
                format!("`{}` came out {:?}, the packed model takes {:?}", w.name, t.shape(), want),
            ));
        }
        report.packed_bytes += 4 * t.shape().numel();
        tensors.insert(w.name.clone(), t);
    }
    report.float_bytes = weights.tensors.values().map(|t| 4 * t.shape().numel()).sum();
    let metadata = BTreeMap::from([("format".into(), FORMAT.into()), ("version".into(), VERSION.into()), ("model".into(), json)]);
    Ok((TensorFile { tensors, metadata }, report))
}

/// Names of layers called more than once: their weights serve every call, so nothing is folded
/// into them.
fn shared_layers(wiring: &Wiring) -> Vec<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for c in &wiring.calls {
        *count.entry(&c.name).or_default() += 1;
    }
    count.into_iter().filter(|&(_, n)| n > 1).map(|(n, _)| n.to_string()).collect()
}

/// The layers whose per-channel `scale` (`output_scale`) a following BatchNormalization can
/// fold into, and whether a magnitude-aware kernel can (its magnitude is per output channel).
fn foldable(class: &str) -> Option<bool> {
    match class {
        "QuantDense" | "Dense" | "QuantConv1D" | "QuantConv2D" | "QuantConv3D" | "Conv1D" | "Conv2D" | "Conv3D" => Some(true),
        "QuantConv1DTranspose"
        | "QuantConv2DTranspose"
        | "QuantConv3DTranspose"
        | "Conv1DTranspose"
        | "Conv2DTranspose"
        | "Conv3DTranspose"
        | "QuantLocallyConnected1D"
        | "QuantLocallyConnected2D"
        | "LocallyConnected1D"
        | "LocallyConnected2D" => Some(false),
        _ => None,
    }
}

/// The quantizer in `config[key]`, if it names one bitgrad knows.
fn quantizer_at(config: &Value, key: &str) -> Option<Quantizer> {
    config["config"].get(key).filter(|v| !v.is_null()).and_then(|v| Quantizer::from_keras(v).ok())
}

/// Writes every ±1 quantizer of a layer config as `ste_sign`, whose forward pass is the same.
fn as_ste_sign(config: &mut Value) {
    for key in ["input_quantizer", "kernel_quantizer", "depthwise_quantizer", "pointwise_quantizer"] {
        if quantizer_at(config, key).is_some_and(|q| q.is_binary_sign()) {
            config["config"][key] = json!("ste_sign");
        }
    }
}

/// The layer's current per-channel scale and bias (ones and zeros where it has none yet).
fn scale_and_bias(call: &Call, weights: &TensorFile, folded: &BTreeMap<String, HostTensor>, channels: usize) -> (Vec<f32>, Vec<f32>) {
    let get = |weight: &str, enabled: &str, fill: f32| {
        let name = format!("{}/{weight}", call.name);
        match folded.get(&name).or_else(|| weights.tensors.get(&name)) {
            Some(t) if call.config["config"][enabled].as_bool() == Some(true) => t.as_f32().map(<[f32]>::to_vec).unwrap_or_default(),
            _ => vec![fill; channels],
        }
    };
    (get("scale", "output_scale", 1.0), get("bias", "use_bias", 0.0))
}

/// A Dense or Conv layer's `magnitude_aware_sign` kernel: its per-output-channel mean |w| goes
/// into the layer's scale and the kernel quantizer becomes `ste_sign`.
fn fold_magnitude(call: &mut Call, weights: &TensorFile, folded: &mut BTreeMap<String, HostTensor>) -> Result<()> {
    let class = call.config["class_name"].as_str().unwrap_or_default();
    if foldable(class) != Some(true)
        || !matches!(quantizer_at(&call.config, "kernel_quantizer"), Some(Quantizer::MagnitudeAwareSign { .. }))
    {
        return Ok(());
    }
    let kernel = &weights.tensors[&format!("{}/kernel", call.name)];
    let out = *kernel.shape().dims().last().expect("kernels have rank >= 2");
    let rows = kernel.shape().numel() / out;
    let w = kernel.as_f32()?;
    let (scale, _) = scale_and_bias(call, weights, folded, out);
    let scale: Vec<f32> = (0..out).map(|o| scale[o] * ((0..rows).map(|r| w[r * out + o].abs()).sum::<f32>() / rows as f32)).collect();
    folded.insert(format!("{}/scale", call.name), HostTensor::f32([out], scale)?);
    call.config["config"]["output_scale"] = json!(true);
    call.config["config"]["kernel_quantizer"] = json!("ste_sign");
    Ok(())
}

/// Folds each BatchNormalization that only normalizes a foldable layer's linear output over its
/// channel axis into that layer, and removes it from the wiring.
fn fold_batch_norms(
    wiring: &mut Wiring,
    built: &Built,
    shared: &[String],
    weights: &TensorFile,
    folded: &mut BTreeMap<String, HostTensor>,
    report: &mut PackReport,
) -> Result<()> {
    let mut i = 0;
    while i < wiring.calls.len() {
        let Some(j) = fold_target(wiring, built, shared, i) else {
            i += 1;
            continue;
        };
        let bn = wiring.calls.remove(i);
        let c = &bn.config["config"];
        let x = bn.inputs[0];
        let channels = built.graph().value(x).shape.dims()[channel_axis(&wiring.calls[j], built.graph().value(x).shape.rank())];
        let get = |weight: &str, enabled: bool, fill: f32| -> Result<Vec<f32>> {
            match enabled {
                true => Ok(weights.tensors[&format!("{}/{weight}", bn.name)].as_f32()?.to_vec()),
                false => Ok(vec![fill; channels]),
            }
        };
        let gamma = get("gamma", c["scale"].as_bool() != Some(false), 1.0)?;
        let beta = get("beta", c["center"].as_bool() != Some(false), 0.0)?;
        let (mean, var) = (get("moving_mean", true, 0.0)?, get("moving_variance", true, 1.0)?);
        let eps = c["epsilon"].as_f64().unwrap_or(1e-3) as f32;
        let (scale, bias) = scale_and_bias(&wiring.calls[j], weights, folded, channels);
        // The BatchNormalization's own order: (x - mean) * (1 / sqrt(var + eps)) * gamma + beta.
        let s: Vec<f32> = (0..channels).map(|k| (1.0 / (var[k] + eps).sqrt()) * gamma[k]).collect();
        let new_scale = (0..channels).map(|k| scale[k] * s[k]).collect();
        let new_bias = (0..channels).map(|k| (bias[k] - mean[k]) * s[k] + beta[k]).collect();
        let into = &mut wiring.calls[j];
        folded.insert(format!("{}/scale", into.name), HostTensor::f32([channels], new_scale)?);
        folded.insert(format!("{}/bias", into.name), HostTensor::f32([channels], new_bias)?);
        into.config["config"]["output_scale"] = json!(true);
        into.config["config"]["use_bias"] = json!(true);
        report.folded.push((bn.name.clone(), into.name.clone()));
        for v in wiring.calls.iter_mut().flat_map(|c| c.inputs.iter_mut()).chain(wiring.outputs.iter_mut()) {
            if *v == bn.output {
                *v = x;
            }
        }
    }
    Ok(())
}

/// The index of the call that the BatchNormalization call `i` folds into, if it can.
fn fold_target(wiring: &Wiring, built: &Built, shared: &[String], i: usize) -> Option<usize> {
    let bn = &wiring.calls[i];
    if bn.config["class_name"] != "BatchNormalization" || shared.contains(&bn.name) {
        return None;
    }
    let x = bn.inputs[0];
    let j = wiring.calls.iter().position(|c| c.output == x)?;
    let layer = &wiring.calls[j];
    let readers =
        wiring.calls.iter().flat_map(|c| &c.inputs).filter(|&&v| v == x).count() + wiring.outputs.iter().filter(|&&v| v == x).count();
    let rank = built.graph().value(x).shape.rank();
    let axis = match &bn.config["config"]["axis"] {
        Value::Array(a) if a.len() == 1 => a[0].as_i64(),
        v => v.as_i64(),
    }?;
    let axis = if axis < 0 { axis + rank as i64 } else { axis };
    let ok = foldable(layer.config["class_name"].as_str()?).is_some()
        && !shared.contains(&layer.name)
        && readers == 1
        && layer.config["config"]["activation"] == "linear"
        && axis == channel_axis(layer, rank) as i64;
    ok.then_some(j)
}

/// The channel axis of a layer's output of `rank`.
fn channel_axis(layer: &Call, rank: usize) -> usize {
    match layer.config["config"]["data_format"].as_str() {
        Some("channels_first") => 1,
        _ => rank - 1,
    }
}

/// Each layer's quantized weights by weight name (`layer/kernel`, `layer/depthwise_kernel`):
/// what a plane kernel is packed with.
fn kernel_quantizers(wiring: &Wiring) -> HashMap<String, Option<Quantizer>> {
    let mut out = HashMap::new();
    for c in &wiring.calls {
        for (key, weight) in
            [("kernel_quantizer", "kernel"), ("depthwise_quantizer", "depthwise_kernel"), ("pointwise_quantizer", "pointwise_kernel")]
        {
            out.insert(format!("{}/{weight}", c.name), quantizer_at(&c.config, key));
        }
    }
    out
}

/// The bit planes of a latent kernel quantized by `q`, in [`plane_kernel_shape`] (the quantizer
/// and the packing run on the reference backend).
fn pack_planes(latent: &HostTensor, q: &Quantizer, p: PlaneKernel) -> Result<HostTensor> {
    let shape = latent.shape().clone();
    let r = shape.rank();
    let mut g = Graph::new();
    let w = g.constant(latent.clone())?;
    let v = q.apply(&mut g, w)?;
    let v = if p.offset != 0.0 { g.unary(UnaryOp::Offset(-p.offset), v)? } else { v };
    let perm: Vec<usize> = std::iter::once(r - 1).chain(0..r - 1).collect();
    let t = g.permute(v, &perm)?;
    let k = shape.dims()[r - 2];
    let t = g.reshape(t, [shape.numel() / k, k])?;
    let bits = g.plane_pack(t, p.stored, p.scale)?;
    let mut plan = Plan::new(&Device::Cpu, &g, &[bits], &mut ParamStore::new())?;
    plan.run()?;
    let out = plan.fetch(bits)?;
    HostTensor::u32(plane_kernel_shape(&shape, p.stored), out.as_u32()?.to_vec())
}

/// The packed signs of a latent kernel, in [`crate::layers::packed_kernel_shape`] (computed by
/// the reference backend's own permute and pack).
fn pack(latent: &HostTensor) -> Result<HostTensor> {
    let r = latent.shape().rank();
    let mut g = Graph::new();
    let w = g.constant(latent.clone())?;
    let perm: Vec<usize> = std::iter::once(r - 1).chain(0..r - 1).collect();
    let t = g.permute(w, &perm)?;
    let bits = g.bit_pack(t, PackMode::Sign)?;
    let mut plan = Plan::new(&Device::Cpu, &g, &[bits], &mut ParamStore::new())?;
    plan.run()?;
    plan.fetch(bits)
}

/// A packed export read back: the model as it runs from the file, and its tensors (checked
/// against the model).
pub struct PackedModel {
    /// The model, built with [`build_packed`].
    pub model: KerasModel,
    /// Its tensors.
    pub file: TensorFile,
}

impl PackedModel {
    /// Reads a packed file.
    pub fn read(path: &Path) -> Result<Self> {
        Self::from_file(&path.display().to_string(), TensorFile::read(path)?)
    }

    /// Checks a packed file's metadata and tensors against its model; `name` names the file in
    /// errors.
    pub fn from_file(name: &str, file: TensorFile) -> Result<Self> {
        let bad = |reason: String| Error::BadFile { file: name.to_string(), reason };
        // Version 1 held sign bits only, which version 2 reads the same.
        let version = if file.metadata.get("version").map(String::as_str) == Some("1") { "1" } else { VERSION };
        file.check_format(name, "a packed export", FORMAT, version)?;
        let json = file.metadata.get("model").ok_or_else(|| bad("no `model` in its metadata".into()))?;
        let model = model_from_json(&format!("{name} (its model)"), json)?;
        let built = build_packed(&model, 1)?;
        file.check(name, &built.weights(), &Expected::new())?;
        Ok(PackedModel { model, file })
    }

    /// Puts the tensors into `params` on `device`, for a plan of the model built with
    /// [`build_packed`].
    pub fn load(&self, params: &mut ParamStore, device: &Device) -> Result<()> {
        self.file.store(params, device)
    }
}
