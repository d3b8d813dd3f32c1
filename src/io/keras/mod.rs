//! Keras models in the JSON that `model.to_json()` writes (tf_keras 2.x, the Keras 2 format
//! Larq 0.14 uses): Sequential and Functional models of Larq and Keras layers, with Larq's
//! quantizers and constraints given as objects or names. Anything bitgrad does not support is
//! an error naming the layer and the field.

pub mod export;
mod fields;
mod layers;
mod objects;

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use self::fields::{kind, Fields};
use self::layers::{entry, Entry, Imported};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::graph::ValueId;
use crate::io::safetensors::TensorFile;
use crate::models::{Built, Functional, Model, Network, Sequential};
use crate::runtime::ParamStore;

/// A model read from Keras JSON.
pub enum KerasModel {
    /// From a `Sequential` config.
    Sequential(Sequential),
    /// From a `Functional` (or `Model`) config.
    Functional(Functional),
}

impl KerasModel {
    fn inner(&self) -> &dyn Model {
        match self {
            KerasModel::Sequential(m) => m,
            KerasModel::Functional(m) => m,
        }
    }
}

impl Model for KerasModel {
    fn name(&self) -> &str {
        self.inner().name()
    }

    fn inputs(&self) -> Vec<(String, Vec<usize>)> {
        self.inner().inputs()
    }

    fn call(&self, net: &mut Network, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
        self.inner().call(net, inputs)
    }

    fn lists_inputs(&self) -> bool {
        self.inner().lists_inputs()
    }

    fn seed(&self) -> u64 {
        self.inner().seed()
    }
}

/// The layer a Keras layer config (`{"class_name", "config"}`) describes, as bitgrad builds it;
/// `None` for input and merge layers.
pub fn layer_from_config(v: &Value) -> Result<Option<Box<dyn crate::layers::Layer>>> {
    Ok(match entry("a layer config", 0, v)?.layer {
        Imported::Layer(l) => Some(l),
        _ => None,
    })
}

/// Reads a model from a JSON file.
pub fn read_model(path: &Path) -> Result<KerasModel> {
    let text = crate::io::read_text(path)?;
    model_from_json(&path.display().to_string(), &text)
}

/// Parses the JSON text of `model.to_json()`; `file` names it in errors.
pub fn model_from_json(file: &str, text: &str) -> Result<KerasModel> {
    let v: Value = serde_json::from_str(text).map_err(|e| Error::BadFile { file: file.to_string(), reason: format!("not JSON: {e}") })?;
    let mut top = Fields::new(file, "the model", &v)?;
    let class = top.string("class_name", "")?;
    let config = top.required("config")?;
    top.ignore(&["keras_version", "backend", "module", "registered_name", "build_config", "compile_config"]);
    top.done()?;
    let mut c = Fields::new(file, format!("the {class} model's config"), &config)?;
    let name = c.string("name", "model")?;
    let Value::Array(items) = c.required("layers")? else { return Err(c.error("layers", "expected a list")) };
    match class.as_str() {
        "Sequential" => {
            c.done()?;
            sequential(file, &name, &items).map(KerasModel::Sequential)
        }
        "" => Err(Error::BadFile { file: file.to_string(), reason: "the model has no `class_name`".into() }),
        // A subclass of Functional (Larq Zoo's `BinaryDenseNet`) saves the functional graph,
        // which is read as the Functional model it describes.
        other if other == "Functional" || other == "Model" || (c.has("input_layers") && c.has("output_layers")) => {
            if other != "Functional" && other != "Model" {
                log::info!("{file}: model class `{other}` is read as the Functional model its config describes");
            }
            let inputs = c.required("input_layers")?;
            let outputs = c.required("output_layers")?;
            c.ignore(&["trainable"]);
            c.done()?;
            functional(file, &name, &items, &inputs, &outputs).map(KerasModel::Functional)
        }
        other => Err(Error::BadFile {
            file: file.to_string(),
            reason: format!(
                "model class `{other}` is not Sequential or Functional, and its config is no functional graph (input_layers, layers, output_layers)"
            ),
        }),
    }
}

fn sequential(file: &str, name: &str, items: &[Value]) -> Result<Sequential> {
    let mut entries: Vec<Entry> = items.iter().enumerate().map(|(i, v)| entry(file, i, v)).collect::<Result<_>>()?;
    let shape = match entries.first() {
        Some(Entry { layer: Imported::Input(shape), .. }) => {
            let shape = shape.clone();
            entries.remove(0);
            shape
        }
        Some(first) => first.input_shape.clone().ok_or_else(|| Error::BadFile {
            file: file.to_string(),
            reason: format!("layer `{}`: the first layer declares no input shape (batch_input_shape)", first.name),
        })?,
        None => return Err(Error::BadFile { file: file.to_string(), reason: "the model has no layers".into() }),
    };
    let mut model = Sequential::new().named(name).input_shape(&shape);
    for e in entries {
        model = match e.layer {
            Imported::Layer(l) => model.add_boxed(l),
            Imported::Input(_) => return Err(bad_layer(file, &e, "an InputLayer can only come first in a Sequential model")),
            Imported::Merge(_) => return Err(bad_layer(file, &e, "a merge layer needs a Functional model")),
        };
    }
    Ok(model)
}

fn bad_layer(file: &str, e: &Entry, why: &str) -> Error {
    Error::BadFile { file: file.to_string(), reason: format!("layer `{}` ({}): {why}", e.name, e.class) }
}

/// One call of a layer in a functional model: which layer, and the (layer, call) outputs it
/// takes.
struct Call {
    layer: usize,
    inputs: Vec<(usize, usize)>,
}

fn functional(file: &str, name: &str, items: &[Value], inputs: &Value, outputs: &Value) -> Result<Functional> {
    let bad = |reason: String| Error::BadFile { file: file.to_string(), reason };
    let mut entries = Vec::new();
    let mut nodes: Vec<Vec<Vec<(String, usize)>>> = Vec::new();
    for (i, v) in items.iter().enumerate() {
        let e = entry(file, i, v)?;
        let inbound = v.get("inbound_nodes").cloned().unwrap_or(Value::Array(Vec::new()));
        nodes.push(inbound_nodes(file, &e, &inbound)?);
        entries.push(e);
    }
    let index: HashMap<&str, usize> = entries.iter().enumerate().map(|(i, e)| (e.name.as_str(), i)).collect();
    if index.len() != entries.len() {
        return Err(bad("two layers share a name".into()));
    }
    let find = |what: &str, layer: &str| index.get(layer).copied().ok_or_else(|| bad(format!("{what} names an unknown layer `{layer}`")));

    // Order the calls so that every call's inputs are computed before it.
    let mut done: Vec<usize> = entries.iter().map(|e| if matches!(e.layer, Imported::Input(_)) { 1 } else { 0 }).collect();
    let mut order: Vec<Call> = Vec::new();
    let total: usize = nodes.iter().map(Vec::len).sum();
    while order.len() < total {
        let before = order.len();
        for (l, calls) in nodes.iter().enumerate() {
            while done[l] < calls.len() + usize::from(matches!(entries[l].layer, Imported::Input(_))) {
                let call = &calls[done[l] - usize::from(matches!(entries[l].layer, Imported::Input(_)))];
                let mut ins = Vec::new();
                for (src, node) in call {
                    let s = find(&format!("layer `{}`'s input", entries[l].name), src)?;
                    if *node >= nodes[s].len().max(1) {
                        return Err(bad(format!("layer `{}`'s input `{src}` has no call {node}", entries[l].name)));
                    }
                    ins.push((s, *node));
                }
                if ins.iter().any(|&(s, node)| done[s] <= node) {
                    break;
                }
                order.push(Call { layer: l, inputs: ins });
                done[l] += 1;
            }
        }
        if order.len() == before {
            return Err(bad("the layers' inbound nodes form a cycle or wait on a missing input".into()));
        }
    }

    let ends = |field: &str, v: &Value| -> Result<Vec<usize>> {
        let Value::Array(list) = v else { return Err(bad(format!("`{field}`: expected a list, found {}", kind(v)))) };
        list.iter()
            .map(|item| match item {
                Value::Array(t) if !t.is_empty() => {
                    let layer = t[0].as_str().ok_or_else(|| bad(format!("`{field}`: expected a layer name")))?;
                    let l = find(field, layer)?;
                    if t.get(1).and_then(Value::as_u64).unwrap_or(0) != 0 || t.get(2).and_then(Value::as_u64).unwrap_or(0) != 0 {
                        return Err(bad(format!("`{field}`: only a layer's first call and output is supported (`{layer}`)")));
                    }
                    Ok(l)
                }
                other => Err(bad(format!("`{field}`: expected [name, node, tensor], found {}", kind(other)))),
            })
            .collect()
    };
    let input_layers = ends("input_layers", inputs)?;
    let output_layers = ends("output_layers", outputs)?;
    for (field, list) in [("input_layers", &input_layers), ("output_layers", &output_layers)] {
        if list.is_empty() {
            return Err(bad(format!("`{field}` is empty: a model needs at least one")));
        }
    }
    let mut input_specs = Vec::new();
    for &l in &input_layers {
        match &entries[l].layer {
            Imported::Input(shape) => input_specs.push((entries[l].name.clone(), shape.clone())),
            _ => return Err(bad(format!("input `{}` is not an InputLayer", entries[l].name))),
        }
    }
    for (l, e) in entries.iter().enumerate() {
        if matches!(e.layer, Imported::Input(_)) && !input_layers.contains(&l) {
            return Err(bad_layer(file, e, "is an InputLayer that is not among the model's input_layers"));
        }
    }

    let specs: Vec<(&str, &[usize])> = input_specs.iter().map(|(n, s)| (n.as_str(), s.as_slice())).collect();
    Ok(Functional::new(name, &specs, move |net, xs| {
        let mut values: HashMap<(usize, usize), ValueId> = input_layers.iter().zip(xs).map(|(&l, &x)| ((l, 0), x)).collect();
        let mut calls = vec![0usize; entries.len()];
        for call in &order {
            let ins = call.inputs.iter().map(|k| values.get(k).copied()).collect::<Option<Vec<ValueId>>>().ok_or_else(|| {
                Error::invalid(
                    "Functional",
                    "inbound_nodes",
                    format!("a call of `{}` reads a value never computed", entries[call.layer].name),
                )
            })?;
            let y = match &entries[call.layer].layer {
                Imported::Layer(l) => {
                    if ins.len() != 1 {
                        return Err(Error::invalid(
                            "Functional",
                            "inputs",
                            format!("layer `{}` takes one input, not {}", l.name(), ins.len()),
                        ));
                    }
                    net.apply(l.as_ref(), ins[0])?
                }
                Imported::Merge(m) => net.merge(m, &ins)?,
                Imported::Input(_) => {
                    return Err(Error::invalid(
                        "Functional",
                        "inbound_nodes",
                        format!("input `{}` cannot be called on values", entries[call.layer].name),
                    ))
                }
            };
            values.insert((call.layer, calls[call.layer]), y);
            calls[call.layer] += 1;
        }
        output_layers
            .iter()
            .map(|&l| {
                values
                    .get(&(l, 0))
                    .copied()
                    .ok_or_else(|| Error::invalid("Functional", "output_layers", format!("output `{}` is never computed", entries[l].name)))
            })
            .collect()
    }))
}

/// A layer's `inbound_nodes`: per call, the (layer, call) pairs it reads.
fn inbound_nodes(file: &str, e: &Entry, v: &Value) -> Result<Vec<Vec<(String, usize)>>> {
    let bad = |why: String| bad_layer(file, e, &format!("inbound_nodes: {why}"));
    let Value::Array(calls) = v else { return Err(bad(format!("expected a list, found {}", kind(v)))) };
    calls
        .iter()
        .map(|call| {
            let Value::Array(args) = call else { return Err(bad(format!("expected a list per call, found {}", kind(call)))) };
            args.iter()
                .map(|a| match a {
                    Value::Array(t) if t.len() >= 3 => {
                        let src = t[0].as_str().ok_or_else(|| bad("expected a layer name".into()))?;
                        let node = t[1].as_u64().ok_or_else(|| bad("expected a node index".into()))? as usize;
                        if t[2].as_u64() != Some(0) {
                            return Err(bad(format!("output {} of `{src}`: layers have one output", t[2])));
                        }
                        if t.get(3).is_some_and(|k| k.as_object().is_some_and(|o| !o.is_empty())) {
                            return Err(bad(format!("call arguments {} are not supported", t[3])));
                        }
                        Ok((src.to_string(), node))
                    }
                    other => Err(bad(format!("expected [name, node, tensor, kwargs], found {}", kind(other)))),
                })
                .collect()
        })
        .collect()
}

/// Loads Keras weights into `params` for the built model: a safetensors file keyed by the Keras
/// weight name without ":0" (`quant_dense/kernel`, `batch_normalization/moving_mean`), which
/// must hold every weight of the model with its shape and nothing else.
pub fn load_weights(built: &Built, params: &mut ParamStore, device: &Device, path: &Path) -> Result<()> {
    load_tensors(built, params, device, TensorFile::read(path)?, &path.display().to_string())
}

/// [`load_weights`] from tensors in memory; `file` names them in errors.
pub fn load_tensors(built: &Built, params: &mut ParamStore, device: &Device, file: TensorFile, name: &str) -> Result<()> {
    let file = crate::io::safetensors::model_weights(file, &built.all_weights());
    file.check(name, &built.weights(), &built.optional_weights())?;
    file.store(params, device)
}
