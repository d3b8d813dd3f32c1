//! Running a model once with weights from a file: inference ([`infer`]) and the training-mode
//! gradients of `sum(output * upstream)` ([`gradients`]), what `bitgrad run` and `bitgrad grad`
//! do. Inputs are checked against the model (shape, and NaN, which is reported rather than
//! propagated).

use std::path::Path;

use crate::device::{block, Device};
use crate::error::{Error, Result};
use crate::graph::ValueId;
use crate::io::keras::load_weights;
use crate::io::packed::PackedModel;
use crate::io::safetensors::TensorFile;
use crate::layers::Mode;
use crate::models::{Built, Model};
use crate::runtime::{ParamStore, Plan};
use crate::tensor::HostTensor;

/// Checks that `x` (named `what` in errors) is a batch of the model's single input: its shape
/// after the batch axis equals the model's, and every value is a number.
pub fn check_input(model: &dyn Model, what: &str, x: &HostTensor) -> Result<()> {
    let inputs = model.inputs();
    let [(name, shape)] = inputs.as_slice() else {
        return Err(Error::invalid("run", "model", format!("takes {} inputs; the command line feeds one", inputs.len())));
    };
    let dims = x.shape().dims();
    if dims.is_empty() || dims[0] == 0 || &dims[1..] != shape.as_slice() {
        return Err(Error::invalid(
            "run",
            "input",
            format!("{what} has shape {dims:?}; the model's input `{name}` takes [batch, {}]", join(shape)),
        ));
    }
    if let Some(i) = x.as_f32()?.iter().position(|v| v.is_nan()) {
        return Err(Error::invalid("run", "input", format!("{what} has NaN at element {i}")));
    }
    Ok(())
}

fn join(shape: &[usize]) -> String {
    shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
}

/// Builds `model` for `x`'s batch in `mode` with the weights in `weights`, and plans `outputs`
/// (chosen from the built model) on `device`.
fn planned(
    model: &dyn Model,
    device: &Device,
    weights: &Path,
    x: &HostTensor,
    mode: Mode,
    outputs: impl FnOnce(&mut Built) -> Result<Vec<ValueId>>,
) -> Result<(Plan, Vec<ValueId>)> {
    let built = crate::models::build(model, x.shape().dims()[0], mode)?;
    let (mut plan, outs) = plan_with(built, device, |b, params| load_weights(b, params, device, weights), outputs)?;
    plan.feed(&model.inputs()[0].0, x)?;
    Ok((plan, outs))
}

/// Plans `outputs` of a built model on `device` after `load` put its weights into the parameter
/// store.
fn plan_with(
    mut built: Built,
    device: &Device,
    load: impl FnOnce(&Built, &mut ParamStore) -> Result<()>,
    outputs: impl FnOnce(&mut Built) -> Result<Vec<ValueId>>,
) -> Result<(Plan, Vec<ValueId>)> {
    let mut params = ParamStore::new();
    load(&built, &mut params)?;
    let outs = outputs(&mut built)?;
    let plan = Plan::new(device, built.graph(), &outs, &mut params)?;
    Ok((plan, outs))
}

/// A plan of a model's outputs for some batch size, the output values and their names.
type Planned = (Plan, Vec<ValueId>, Vec<String>);

/// Runs an inference plan over the batch `x` fed as `input`, and returns each output named.
/// `plan_for(batch)` plans for a batch size; when the adapter's limits refuse the whole batch
/// it is halved until a plan fits and the batch runs in chunks of that size (samples are
/// independent in inference, so the outputs are the same).
async fn run_in_chunks(
    input: &str,
    x: &HostTensor,
    plan_for: &mut dyn FnMut(usize) -> Result<Planned>,
) -> Result<Vec<(String, HostTensor)>> {
    let n = x.shape().dims()[0];
    let mut chunk = n;
    let mut current = loop {
        match plan_for(chunk) {
            Err(Error::LimitExceeded { .. }) if chunk > 1 => chunk = chunk.div_ceil(2),
            other => break other?,
        }
    };
    let per: usize = x.shape().dims()[1..].iter().product();
    let values = x.as_f32()?;
    let mut parts: Vec<(Vec<usize>, Vec<f32>)> = Vec::new();
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        if end - start != chunk {
            current = plan_for(end - start)?;
        }
        let (plan, outs, _) = &mut current;
        let mut dims = x.shape().dims().to_vec();
        dims[0] = end - start;
        plan.feed(input, &HostTensor::f32(dims, values[start * per..end * per].to_vec())?)?;
        plan.run()?;
        for (k, &o) in outs.iter().enumerate() {
            let t = plan.fetch_async(o).await?;
            if parts.len() <= k {
                parts.push((t.shape().dims().to_vec(), Vec::new()));
            } else {
                parts[k].0[0] += t.shape().dims()[0];
            }
            parts[k].1.extend_from_slice(t.as_f32()?);
        }
        start = end;
    }
    let names = current.2;
    names.into_iter().zip(parts).map(|(name, (dims, v))| Ok((name, HostTensor::f32(dims, v)?))).collect()
}

/// The single output of `outputs`, or an error naming them all when there are several.
fn single(call: &str, instead: &str, mut outputs: Vec<(String, HostTensor)>) -> Result<HostTensor> {
    if outputs.len() == 1 {
        return Ok(outputs.remove(0).1);
    }
    let names: Vec<String> = outputs.iter().map(|(n, _)| format!("`{n}`")).collect();
    Err(Error::invalid(
        "run",
        "model",
        format!("has {} outputs ({}); {call} returns one, {instead} returns each", names.len(), names.join(", ")),
    ))
}

/// The model's output for `x` in inference mode (BatchNorm with its moving statistics); a
/// model with several outputs is an error (see [`infer_outputs`]).
pub fn infer(model: &dyn Model, device: &Device, weights: &Path, x: &HostTensor) -> Result<HostTensor> {
    infer_with(model, device, &TensorFile::read(weights)?, &weights.display().to_string(), x)
}

/// The model's output for `x` in inference mode with weights already in memory (`name` names
/// them in errors).
pub fn infer_with(model: &dyn Model, device: &Device, weights: &TensorFile, name: &str, x: &HostTensor) -> Result<HostTensor> {
    single("infer", "infer_outputs", infer_outputs(model, device, weights, name, x)?)
}

/// Every output of the model for `x` in inference mode, named by the layers producing them
/// ([`Built::output_names`]), in the model's order. A batch larger than the adapter can bind at
/// once runs in chunks.
pub fn infer_outputs(
    model: &dyn Model,
    device: &Device,
    weights: &TensorFile,
    name: &str,
    x: &HostTensor,
) -> Result<Vec<(String, HostTensor)>> {
    check_input(model, "the input", x)?;
    let mut plan_for = |batch: usize| -> Result<Planned> {
        let built = crate::models::build(model, batch, Mode::Inference)?;
        let names = built.output_names();
        let load = |b: &Built, params: &mut ParamStore| crate::io::keras::load_tensors(b, params, device, weights.clone(), name);
        let (plan, outs) = plan_with(built, device, load, |b| Ok(b.outputs.clone()))?;
        Ok((plan, outs, names))
    };
    block("infer_outputs", "Plan::fetch_async", run_in_chunks(&model.inputs()[0].0, x, &mut plan_for))
}

/// A packed export's output for `x` ([`crate::io::packed`]): the products of binarized operands
/// run on its packed kernels. A model with several outputs is an error (see
/// [`infer_packed_outputs_async`]).
pub fn infer_packed(packed: &PackedModel, device: &Device, x: &HostTensor) -> Result<HostTensor> {
    block("infer_packed", "infer_packed_async", infer_packed_async(packed, device, x))
}

/// [`infer_packed`] without blocking, as the browser needs.
pub async fn infer_packed_async(packed: &PackedModel, device: &Device, x: &HostTensor) -> Result<HostTensor> {
    single("infer_packed", "infer_packed_outputs", infer_packed_outputs_async(packed, device, x).await?)
}

/// Every output of a packed export for `x`, named as [`infer_outputs`] names them.
pub fn infer_packed_outputs(packed: &PackedModel, device: &Device, x: &HostTensor) -> Result<Vec<(String, HostTensor)>> {
    block("infer_packed_outputs", "infer_packed_outputs_async", infer_packed_outputs_async(packed, device, x))
}

/// [`infer_packed_outputs`] without blocking, as the browser needs.
pub async fn infer_packed_outputs_async(packed: &PackedModel, device: &Device, x: &HostTensor) -> Result<Vec<(String, HostTensor)>> {
    check_input(&packed.model, "the input", x)?;
    let mut plan_for = |batch: usize| -> Result<Planned> {
        let built = crate::io::packed::build_packed(&packed.model, batch)?;
        let names = built.output_names();
        let (plan, outs) = plan_with(built, device, |_, params| packed.load(params, device), |b| Ok(b.outputs.clone()))?;
        Ok((plan, outs, names))
    };
    run_in_chunks(&packed.model.inputs()[0].0, x, &mut plan_for).await
}

/// The training-mode gradients (BatchNorm with batch statistics) of `sum(output * upstream)`:
/// under `input` for the input, and under its name for every trainable weight.
pub fn gradients(model: &dyn Model, device: &Device, weights: &Path, x: &HostTensor, upstream: &HostTensor) -> Result<TensorFile> {
    check_input(model, "the input", x)?;
    let mut names = vec!["input".to_string()];
    let (mut plan, outs) = planned(model, device, weights, x, Mode::Training, |b| {
        if b.outputs.len() != 1 {
            let names: Vec<String> = b.output_names().iter().map(|n| format!("`{n}`")).collect();
            return Err(Error::invalid(
                "grad",
                "model",
                format!("has {} outputs ({}); gradients take a model with one output", names.len(), names.join(", ")),
            ));
        }
        let y = b.outputs[0];
        let ys = b.graph().value(y).shape.clone();
        if upstream.shape() != &ys {
            return Err(Error::invalid(
                "grad",
                "upstream",
                format!("has shape {:?}; the model's output for this input has {:?}", upstream.shape().dims(), ys.dims()),
            ));
        }
        let trainable: Vec<(String, ValueId)> =
            b.network.ctx.weights.iter().filter(|w| w.trainable).map(|w| (w.name.clone(), w.variable)).collect();
        let input = b.inputs[0];
        let g = &mut b.network.graph;
        let dy = g.constant(upstream.clone())?;
        let weighted = g.mul(y, dy)?;
        let axes: Vec<usize> = (0..ys.rank()).collect();
        let loss = g.sum(weighted, &axes, false)?;
        let wrt: Vec<ValueId> = std::iter::once(input).chain(trainable.iter().map(|(_, v)| *v)).collect();
        names.extend(trainable.into_iter().map(|(n, _)| n));
        g.backward(loss, &wrt)
    })?;
    plan.run()?;
    let mut file = TensorFile::default();
    for (name, v) in names.into_iter().zip(outs) {
        file.tensors.insert(name, plan.fetch(v)?);
    }
    Ok(file)
}
