//! Running a model once with weights from a file: inference ([`infer`]) and the training-mode
//! gradients of `sum(output * upstream)` ([`gradients`]), what `bitgrad run` and `bitgrad grad`
//! do. Inputs are checked against the model (shape, and NaN, which is reported rather than
//! propagated).

use std::path::Path;

use super::{Built, Model};
use crate::device::{block, Device};
use crate::error::{Error, Result};
use crate::graph::{ParamStore, Plan, ValueId};
use crate::io::keras::load_weights;
use crate::io::packed::PackedModel;
use crate::io::safetensors::TensorFile;
use crate::layers::Mode;
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
    let built = super::build(model, x.shape().dims()[0], mode)?;
    plan_with(model, built, device, x, |b, params| load_weights(b, params, device, weights), outputs)
}

/// Plans `outputs` of a built model on `device` after `load` put its weights into the parameter
/// store, and feeds `x`.
fn plan_with(
    model: &dyn Model,
    mut built: Built,
    device: &Device,
    x: &HostTensor,
    load: impl FnOnce(&Built, &mut ParamStore) -> Result<()>,
    outputs: impl FnOnce(&mut Built) -> Result<Vec<ValueId>>,
) -> Result<(Plan, Vec<ValueId>)> {
    let mut params = ParamStore::new();
    load(&built, &mut params)?;
    let outs = outputs(&mut built)?;
    let mut plan = Plan::new(device, built.graph(), &outs, &mut params)?;
    plan.feed(&model.inputs()[0].0, x)?;
    Ok((plan, outs))
}

/// The model's output for `x` in inference mode (BatchNorm with its moving statistics).
pub fn infer(model: &dyn Model, device: &Device, weights: &Path, x: &HostTensor) -> Result<HostTensor> {
    check_input(model, "the input", x)?;
    infer_checked(model, device, &TensorFile::read(weights)?, &weights.display().to_string(), x)
}

/// The model's output for `x` in inference mode with weights already in memory (`name` names
/// them in errors).
pub fn infer_with(model: &dyn Model, device: &Device, weights: &TensorFile, name: &str, x: &HostTensor) -> Result<HostTensor> {
    check_input(model, "the input", x)?;
    infer_checked(model, device, weights, name, x)
}

/// [`infer_with`] for an input already checked.
fn infer_checked(model: &dyn Model, device: &Device, weights: &TensorFile, name: &str, x: &HostTensor) -> Result<HostTensor> {
    let built = super::build(model, x.shape().dims()[0], Mode::Inference)?;
    let load = |b: &Built, params: &mut ParamStore| crate::io::keras::load_tensors(b, params, device, weights.clone(), name);
    let (mut plan, outs) = plan_with(model, built, device, x, load, |b| Ok(vec![b.outputs[0]]))?;
    plan.run()?;
    plan.fetch(outs[0])
}

/// A packed export's output for `x` ([`crate::io::packed`]): the products of binarized operands
/// run on its packed kernels.
pub fn infer_packed(packed: &PackedModel, device: &Device, x: &HostTensor) -> Result<HostTensor> {
    block("infer_packed", "infer_packed_async", infer_packed_async(packed, device, x))
}

/// [`infer_packed`] without blocking, as the browser needs.
pub async fn infer_packed_async(packed: &PackedModel, device: &Device, x: &HostTensor) -> Result<HostTensor> {
    check_input(&packed.model, "the input", x)?;
    let built = super::build_packed(&packed.model, x.shape().dims()[0])?;
    let (mut plan, outs) = plan_with(&packed.model, built, device, x, |_, params| packed.load(params, device), |b| Ok(vec![b.outputs[0]]))?;
    plan.run()?;
    plan.fetch_async(outs[0]).await
}

/// The training-mode gradients (BatchNorm with batch statistics) of `sum(output * upstream)`:
/// under `input` for the input, and under its name for every trainable weight.
pub fn gradients(model: &dyn Model, device: &Device, weights: &Path, x: &HostTensor, upstream: &HostTensor) -> Result<TensorFile> {
    check_input(model, "the input", x)?;
    let mut names = vec!["input".to_string()];
    let (mut plan, outs) = planned(model, device, weights, x, Mode::Training, |b| {
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
