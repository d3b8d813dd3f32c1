//! Integer export of a quantization-aware model: every fake-quantized weight stored as its
//! integer codes, `num_bits` bits each packed into 32-bit words, with a scale and a zero point
//! per range (per tensor, or per output channel); everything else (biases, BatchNorm, the
//! activation ranges) in f32.
//!
//! The file is a safetensors file whose metadata holds `format` = `bitgrad-qat`, `version`,
//! `model` (the float model's Keras JSON), `weight_bits` and `activation_bits`. A weight `w` is
//! stored as `w` (u32 words of codes, in the weight's element order), `w/scale` and
//! `w/zero_point` (f32, one per range): `value = (code - zero_point) * scale`, which is exactly
//! the value fake quantization computes, so the model read back ([`QuantizedExport`]) gives the
//! fake-quantized model's inference outputs bit for bit.

use std::collections::BTreeMap;
use std::path::Path;

use super::{quantize_annotate_model, quantize_apply, QuantizedModel, Scheme};
use crate::error::{Error, Result};
use crate::graph::ops::fake_quant::Nudged;
use crate::graph::FakeQuantSpec;
use crate::io::keras::{export::model_to_json, model_from_json};
use crate::io::safetensors::{Expected, TensorFile};
use crate::layers::Mode;
use crate::models::{build, Built};
use crate::tensor::HostTensor;

/// The `format` metadata of an integer export.
pub const FORMAT: &str = "bitgrad-qat";
/// The `version` metadata this bitgrad writes and reads.
pub const VERSION: &str = "1";

/// A weight stored as integer codes.
#[derive(Clone, Debug, PartialEq)]
pub struct CodedWeight {
    /// Its name.
    pub name: String,
    /// Bits per value.
    pub bits: u32,
    /// Bytes as f32.
    pub float_bytes: usize,
    /// Bytes of its packed codes.
    pub code_bytes: usize,
    /// Bytes of its scales and zero points.
    pub range_bytes: usize,
}

/// Sizes of an export.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExportReport {
    /// The weights stored as codes.
    pub coded: Vec<CodedWeight>,
    /// Bytes of all tensors as f32.
    pub float_bytes: usize,
    /// Bytes of all tensors in the export.
    pub export_bytes: usize,
}

/// The integer export of `model` with its trained `weights` (weights and quantizer ranges, as a
/// trainer state or a weights file holds them; `file` names them in errors). Only models
/// quantized whole with a scheme ([`super::quantize_model`], or [`quantize_apply`] of
/// [`quantize_annotate_model`]) can be written, because the file rebuilds the model from its
/// Keras JSON and the scheme.
pub fn export(model: &QuantizedModel, weights: &TensorFile, file: &str) -> Result<(TensorFile, ExportReport)> {
    if !model.plan.all_layers {
        return Err(Error::invalid(
            "export",
            "model",
            "only a model quantized whole with a scheme (quantize_model, or quantize_apply of quantize_annotate_model) can be exported",
        ));
    }
    let built = build(model, 1, Mode::Inference)?;
    let all = built.all_weights();
    let weights = crate::io::safetensors::model_weights(weights.clone(), &all);
    weights.check(file, &all, &Expected::new())?;
    let mut out = weights.tensors.clone();
    let mut report = ExportReport { float_bytes: weights.tensors.values().map(|t| 4 * t.shape().numel()).sum(), ..Default::default() };
    for (name, q, state) in super::fake_quantized(&built.network.ctx) {
        let Some(spec) = q.fake_quant_spec() else { continue };
        let var = |v| built.graph().value(v).source.clone();
        let range = |i: usize| -> Result<&[f32]> {
            match var(state[i]) {
                crate::graph::Source::Variable { name, .. } => weights.tensors[&name].as_f32(),
                _ => Err(Error::invalid("export", "quantizer", format!("`{name}`: its range is not a variable"))),
            }
        };
        let (min, max) = (range(0)?, range(1)?);
        let w = weights.tensors[name].as_f32()?;
        let ranges: Vec<Nudged> = min.iter().zip(max).map(|(&lo, &hi)| Nudged::new(spec, lo, hi)).collect();
        let codes: Vec<u32> = w
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let r = &ranges[i % ranges.len()];
                if r.empty {
                    r.zero_point as u32
                } else {
                    (r.level(spec, v) + r.zero_point) as u32
                }
            })
            .collect();
        let words = pack_codes(&codes, spec.num_bits);
        let scales: Vec<f32> = ranges.iter().map(|r| if r.empty { 0.0 } else { r.scale }).collect();
        let zero_points: Vec<f32> = ranges.iter().map(|r| r.zero_point).collect();
        report.coded.push(CodedWeight {
            name: name.clone(),
            bits: spec.num_bits,
            float_bytes: 4 * w.len(),
            code_bytes: 4 * words.len(),
            range_bytes: 4 * (scales.len() + zero_points.len()),
        });
        out.insert(name.clone(), HostTensor::u32([words.len()], words)?);
        out.insert(format!("{name}/scale"), HostTensor::f32([scales.len()], scales)?);
        out.insert(format!("{name}/zero_point"), HostTensor::f32([zero_points.len()], zero_points)?);
    }
    report.export_bytes = out.values().map(|t| 4 * t.shape().numel()).sum();
    let metadata = BTreeMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("version".to_string(), VERSION.to_string()),
        ("model".to_string(), model_to_json(model.inner.as_ref())?),
        ("weight_bits".to_string(), model.plan.scheme.weight_bits.to_string()),
        ("activation_bits".to_string(), model.plan.scheme.activation_bits.to_string()),
    ]);
    Ok((TensorFile { tensors: out, metadata }, report))
}

/// `bits`-bit codes packed into little-endian u32 words, the first code in the lowest bits; a
/// code may straddle two words.
fn pack_codes(codes: &[u32], bits: u32) -> Vec<u32> {
    let mut words = vec![0u32; (codes.len() * bits as usize).div_ceil(32)];
    for (i, &c) in codes.iter().enumerate() {
        let at = i * bits as usize;
        let (w, b) = (at / 32, (at % 32) as u32);
        words[w] |= c << b;
        if b + bits > 32 {
            words[w + 1] |= c >> (32 - b);
        }
    }
    words
}

/// The `n` codes of [`pack_codes`].
fn unpack_codes(words: &[u32], bits: u32, n: usize) -> Vec<u32> {
    let mask = if bits == 32 { u32::MAX } else { (1u32 << bits) - 1 };
    (0..n)
        .map(|i| {
            let at = i * bits as usize;
            let (w, b) = (at / 32, (at % 32) as u32);
            let mut c = words[w] >> b;
            if b + bits > 32 {
                c |= words[w + 1] << (32 - b);
            }
            c & mask
        })
        .collect()
}

/// An integer export read back: the quantized model and its weights, decoded to the f32 values
/// fake quantization gives them.
pub struct QuantizedExport {
    /// The model, quantized as when it was exported.
    pub model: QuantizedModel,
    /// Its weights and ranges, decoded.
    pub weights: TensorFile,
}

impl QuantizedExport {
    /// Reads an export.
    pub fn read(path: &Path) -> Result<Self> {
        Self::from_file(&path.display().to_string(), TensorFile::read(path)?)
    }

    /// Checks and decodes an export's tensors; `name` names the file in errors.
    pub fn from_file(name: &str, file: TensorFile) -> Result<Self> {
        let bad = |reason: String| Error::BadFile { file: name.to_string(), reason };
        let meta = |key: &str| file.metadata.get(key).ok_or_else(|| bad(format!("no `{key}` in its metadata")));
        file.check_format(name, "an integer export", FORMAT, VERSION)?;
        let bits = |key: &str| meta(key)?.parse::<u32>().map_err(|_| bad(format!("`{key}` is not a number")));
        let scheme = Scheme::n_bit(bits("weight_bits")?, bits("activation_bits")?);
        let keras = model_from_json(&format!("{name} (its model)"), meta("model")?)?;
        let model = quantize_apply(quantize_annotate_model(keras), scheme)?;
        let built = build(&model, 1, Mode::Inference)?;
        let mut tensors = file.tensors.clone();
        for (w, q, _) in super::fake_quantized(&built.network.ctx) {
            let Some(spec) = q.fake_quant_spec() else { continue };
            let decoded =
                decode(&built, w, spec, &mut tensors).map_err(|e| bad(format!("`{w}`: {e}")))?.map_err(|e| bad(format!("`{w}`: {e}")))?;
            tensors.insert(w.clone(), decoded);
        }
        let weights = TensorFile { tensors, metadata: BTreeMap::new() };
        weights.check(name, &built.all_weights(), &Expected::new())?;
        Ok(QuantizedExport { model, weights })
    }
}

/// The f32 values of the coded weight `w`, taking its codes, scale and zero point out of
/// `tensors`; the inner error says what is wrong with them.
fn decode(
    built: &Built,
    w: &str,
    spec: FakeQuantSpec,
    tensors: &mut BTreeMap<String, HostTensor>,
) -> Result<std::result::Result<HostTensor, String>> {
    let Some(shape) = built.network.ctx.weights.iter().find(|x| x.name == w).map(|x| built.graph().value(x.variable).shape.clone()) else {
        return Ok(Err("the model has no such weight".into()));
    };
    let mut parts = Vec::new();
    for key in [w.to_string(), format!("{w}/scale"), format!("{w}/zero_point")] {
        match tensors.remove(&key) {
            Some(t) => parts.push(t),
            None => return Ok(Err(format!("missing `{key}`"))),
        }
    }
    let n = shape.numel();
    let (Ok(words), Ok(scale), Ok(zero_point)) = (parts[0].as_u32(), parts[1].as_f32(), parts[2].as_f32()) else {
        return Ok(Err("codes must be U32, scales and zero points F32".into()));
    };
    if words.len() != (n * spec.num_bits as usize).div_ceil(32) {
        return Ok(Err(format!("{} words for {n} values of {} bits", words.len(), spec.num_bits)));
    }
    let channels = if spec.per_channel { *shape.dims().last().unwrap_or(&1) } else { 1 };
    if scale.len() != channels || zero_point.len() != channels {
        return Ok(Err(format!("needs {channels} scales and zero points, has {} and {}", scale.len(), zero_point.len())));
    }
    let codes = unpack_codes(words, spec.num_bits, n);
    let values = codes.iter().enumerate().map(|(i, &c)| (c as f32 - zero_point[i % channels]) * scale[i % channels]).collect();
    HostTensor::f32(shape, values).map(Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_for_every_width() {
        for bits in 2..=16u32 {
            let codes: Vec<u32> = (0..37u32).map(|i| i.wrapping_mul(2654435761) >> (32 - bits)).collect();
            let words = pack_codes(&codes, bits);
            assert_eq!(words.len(), (37 * bits as usize).div_ceil(32));
            assert_eq!(unpack_codes(&words, bits, 37), codes, "{bits} bits");
        }
    }
}
