//! Keras models in the JSON that `model.to_json()` writes (tf_keras 2.x, the Keras 2 format
//! Larq 0.14 uses): Sequential and Functional models of Larq and Keras layers, with Larq's
//! quantizers and constraints given as objects or names. Anything bitgrad does not support is
//! an error naming the layer and the field.

pub mod export;
mod fields;
pub mod functions;
mod layers;
mod objects;

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value};

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
    /// The seed of the weight initializers (as [`Sequential::with_seed`]).
    pub fn with_seed(self, seed: u64) -> Self {
        match self {
            KerasModel::Sequential(m) => KerasModel::Sequential(m.with_seed(seed)),
            KerasModel::Functional(m) => KerasModel::Functional(m.with_seed(seed)),
        }
    }

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
            Imported::Function(_) => return Err(bad_layer(file, &e, "a TFOpLambda or Lambda layer needs a Functional model")),
        };
    }
    Ok(model)
}

fn bad_layer(file: &str, e: &Entry, why: &str) -> Error {
    Error::BadFile { file: file.to_string(), reason: format!("layer `{}` ({}): {why}", e.name, e.class) }
}

/// A tensor a call reads: output `tensor` of call `node` of layer `layer` (by index once
/// resolved), or a constant Keras stored in its place.
#[derive(Clone, Debug)]
enum Ref<L> {
    Tensor { layer: L, node: usize, tensor: usize },
    Constant(f32),
}

/// One call of a layer as its inbound node stores it: the tensors of its first argument, and its
/// other arguments (a `TFOpLambda`'s; other layers take none) with the tensors among them.
#[derive(Clone, Debug)]
struct Node<L> {
    inputs: Vec<Ref<L>>,
    kwargs: Map<String, Value>,
    kw_tensors: Vec<Ref<L>>,
    /// Whether the first argument was written as a list (`tf.concat`'s), not one tensor.
    listed: bool,
}

impl<L> Node<L> {
    fn refs(&self) -> impl Iterator<Item = &Ref<L>> {
        self.inputs.iter().chain(&self.kw_tensors)
    }
}

/// One call of a layer in a functional model, its tensors resolved to layer indices.
struct Call {
    layer: usize,
    node: Node<usize>,
}

fn functional(file: &str, name: &str, items: &[Value], inputs: &Value, outputs: &Value) -> Result<Functional> {
    let bad = |reason: String| Error::BadFile { file: file.to_string(), reason };
    let mut entries = Vec::new();
    let mut nodes: Vec<Vec<Node<String>>> = Vec::new();
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
    let is_input = |l: usize| usize::from(matches!(entries[l].layer, Imported::Input(_)));

    // Resolve the layer names of every call's tensors.
    let mut resolved: Vec<Vec<Node<usize>>> = Vec::new();
    for (l, calls) in nodes.iter().enumerate() {
        let what = format!("layer `{}`'s input", entries[l].name);
        let resolve = |r: &Ref<String>| -> Result<Ref<usize>> {
            Ok(match r {
                Ref::Tensor { layer, node, tensor } => {
                    let s = find(&what, layer)?;
                    if *node >= nodes[s].len() + is_input(s) {
                        return Err(bad(format!("{what} `{layer}` has no call {node}")));
                    }
                    Ref::Tensor { layer: s, node: *node, tensor: *tensor }
                }
                Ref::Constant(c) => Ref::Constant(*c),
            })
        };
        let mut list = Vec::new();
        for n in calls {
            list.push(Node {
                inputs: n.inputs.iter().map(resolve).collect::<Result<_>>()?,
                kwargs: n.kwargs.clone(),
                kw_tensors: n.kw_tensors.iter().map(resolve).collect::<Result<_>>()?,
                listed: n.listed,
            });
        }
        resolved.push(list);
    }

    // Order the calls so that every call's inputs are computed before it.
    let mut done: Vec<usize> = (0..entries.len()).map(is_input).collect();
    let mut order: Vec<Call> = Vec::new();
    let total: usize = resolved.iter().map(Vec::len).sum();
    while order.len() < total {
        let before = order.len();
        for (l, calls) in resolved.iter().enumerate() {
            while done[l] < calls.len() + is_input(l) {
                let node = &calls[done[l] - is_input(l)];
                let ready = node.refs().all(|r| match r {
                    Ref::Tensor { layer, node, .. } => done[*layer] > *node,
                    Ref::Constant(_) => true,
                });
                if !ready {
                    break;
                }
                order.push(Call { layer: l, node: node.clone() });
                done[l] += 1;
            }
        }
        if order.len() == before {
            return Err(bad("the layers' inbound nodes form a cycle or wait on a missing input".into()));
        }
    }
    // How many outputs of each call the model reads (a split's parts).
    let mut reads: HashMap<(usize, usize), usize> = HashMap::new();
    let mut note = |layer: usize, node: usize, tensor: usize| {
        let n = reads.entry((layer, node)).or_insert(0);
        *n = (*n).max(tensor + 1);
    };
    for c in &order {
        for r in c.node.refs() {
            if let Ref::Tensor { layer, node, tensor } = r {
                note(*layer, *node, *tensor);
            }
        }
    }

    let ends = |field: &str, v: &Value| -> Result<Vec<(usize, usize, usize)>> {
        let Value::Array(list) = v else { return Err(bad(format!("`{field}`: expected a list, found {}", kind(v)))) };
        list.iter()
            .map(|item| match item {
                Value::Array(t) if !t.is_empty() => {
                    let layer = t[0].as_str().ok_or_else(|| bad(format!("`{field}`: expected a layer name")))?;
                    let l = find(field, layer)?;
                    let at = |i: usize| t.get(i).and_then(Value::as_u64).unwrap_or(0) as usize;
                    Ok((l, at(1), at(2)))
                }
                other => Err(bad(format!("`{field}`: expected [name, node, tensor], found {}", kind(other)))),
            })
            .collect()
    };
    let input_layers: Vec<usize> = ends("input_layers", inputs)?.into_iter().map(|(l, _, _)| l).collect();
    let output_layers = ends("output_layers", outputs)?;
    for (field, empty) in [("input_layers", input_layers.is_empty()), ("output_layers", output_layers.is_empty())] {
        if empty {
            return Err(bad(format!("`{field}` is empty: a model needs at least one")));
        }
    }
    for &(l, node, tensor) in &output_layers {
        note(l, node, tensor);
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

    // What the Keras JSON export writes back for the function layers: their config as read.
    let configs: HashMap<usize, Value> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.layer, Imported::Function(_)))
        .map(|(l, _)| {
            let mut c = items[l].clone();
            if let Value::Object(o) = &mut c {
                o.remove("inbound_nodes");
            }
            (l, c)
        })
        .collect();
    let specs: Vec<(&str, &[usize])> = input_specs.iter().map(|(n, s)| (n.as_str(), s.as_slice())).collect();
    Ok(Functional::new(name, &specs, move |net, xs| {
        let mut values: HashMap<(usize, usize), Vec<ValueId>> = input_layers.iter().zip(xs).map(|(&l, &x)| ((l, 0), vec![x])).collect();
        let mut calls = vec![0usize; entries.len()];
        for call in &order {
            let entry = &entries[call.layer];
            let value = |net: &mut Network, r: &Ref<usize>| -> Result<ValueId> {
                match r {
                    Ref::Tensor { layer, node, tensor } => {
                        values.get(&(*layer, *node)).and_then(|v| v.get(*tensor)).copied().ok_or_else(|| {
                            Error::invalid(
                                "Functional",
                                "inbound_nodes",
                                format!(
                                    "a call of `{}` reads output {tensor} of `{}`, which it does not have",
                                    entry.name, entries[*layer].name
                                ),
                            )
                        })
                    }
                    Ref::Constant(c) => net.graph.fill([1], *c),
                }
            };
            let ins = call.node.inputs.iter().map(|r| value(net, r)).collect::<Result<Vec<ValueId>>>()?;
            let ys = match &entry.layer {
                Imported::Layer(l) => {
                    if ins.len() != 1 {
                        return Err(Error::invalid(
                            "Functional",
                            "inputs",
                            format!("layer `{}` takes one input, not {}", l.name(), ins.len()),
                        ));
                    }
                    vec![net.apply(l.as_ref(), ins[0])?]
                }
                Imported::Merge(m) => vec![net.merge(m, &ins)?],
                Imported::Function(f) => {
                    let tensors = call.node.kw_tensors.iter().map(|r| value(net, r)).collect::<Result<Vec<ValueId>>>()?;
                    let outputs = reads.get(&(call.layer, calls[call.layer])).copied().unwrap_or(1);
                    let export = crate::models::FunctionExport {
                        config: Ok(configs[&call.layer].clone()),
                        reads: ins.iter().chain(&tensors).copied().collect(),
                        node: node_writer(&call.node),
                    };
                    let args = functions::CallArgs { inputs: ins, kwargs: call.node.kwargs.clone(), tensors, outputs };
                    net.function(&f.name, f.class(), f.id, export, |g| f.call(g, &args))?
                }
                Imported::Input(_) => {
                    return Err(Error::invalid("Functional", "inbound_nodes", format!("input `{}` cannot be called on values", entry.name)))
                }
            };
            values.insert((call.layer, calls[call.layer]), ys);
            calls[call.layer] += 1;
        }
        output_layers
            .iter()
            .map(|&(l, node, tensor)| {
                values
                    .get(&(l, node))
                    .and_then(|v| v.get(tensor))
                    .copied()
                    .ok_or_else(|| Error::invalid("Functional", "output_layers", format!("output `{}` is never computed", entries[l].name)))
            })
            .collect()
    }))
}

/// A layer's `inbound_nodes`: per call, the tensors it reads and its arguments. A call is a
/// list of `[layer, node, tensor, kwargs]` tensors (the first argument's, a list for
/// `tf.concat`), or, for a `TFOpLambda` of one tensor, that one `[layer, node, tensor, kwargs]`;
/// a constant first argument is `["_CONSTANT_VALUE", -1, value, kwargs]`. Tensors inside the
/// kwargs are `[layer, node, tensor]`.
fn inbound_nodes(file: &str, e: &Entry, v: &Value) -> Result<Vec<Node<String>>> {
    let bad = |why: String| bad_layer(file, e, &format!("inbound_nodes: {why}"));
    let Value::Array(calls) = v else { return Err(bad(format!("expected a list, found {}", kind(v)))) };
    let function = matches!(e.layer, Imported::Function(_));
    calls
        .iter()
        .map(|call| {
            let Value::Array(args) = call else { return Err(bad(format!("expected a list per call, found {}", kind(call)))) };
            // One tensor written without the list around it.
            let single = [call.clone()];
            let listed = !args.first().is_some_and(Value::is_string);
            let args: &[Value] = if listed { args } else { &single };
            let mut node = Node { inputs: Vec::new(), kwargs: Map::new(), kw_tensors: Vec::new(), listed };
            for (i, a) in args.iter().enumerate() {
                let Value::Array(t) = a else { return Err(bad(format!("expected [name, node, tensor, kwargs], found {}", kind(a)))) };
                if t.len() < 3 {
                    return Err(bad(format!("expected [name, node, tensor, kwargs], found a list of {}", t.len())));
                }
                let src = t[0].as_str().ok_or_else(|| bad("expected a layer name".into()))?;
                if src == "_CONSTANT_VALUE" {
                    let c = t[2].as_f64().ok_or_else(|| bad(format!("constant {} is not a number", t[2])))?;
                    node.inputs.push(Ref::Constant(c as f32));
                } else {
                    let n = t[1].as_u64().ok_or_else(|| bad("expected a node index".into()))? as usize;
                    let tensor = t[2].as_u64().ok_or_else(|| bad("expected a tensor index".into()))? as usize;
                    node.inputs.push(Ref::Tensor { layer: src.to_string(), node: n, tensor });
                }
                // Keras repeats the call's kwargs on each tensor of the first argument.
                if let (0, Some(Value::Object(kw))) = (i, t.get(3)) {
                    if !kw.is_empty() && !function {
                        return Err(bad(format!("call arguments {} are not supported", t[3])));
                    }
                    let mut kw = kw.clone();
                    for v in kw.values_mut() {
                        take_tensors(v, &mut node.kw_tensors);
                    }
                    node.kwargs = kw;
                }
            }
            Ok(node)
        })
        .collect()
}

/// Writes a function layer's call back as Keras stores it, from the values it reads (the first
/// argument's, then those of the kwargs' tensors): the first argument's tensors (constants as
/// `_CONSTANT_VALUE`), the first carrying the kwargs with their tensors named again.
fn node_writer(node: &Node<usize>) -> crate::models::NodeWriter {
    let node = node.clone();
    crate::models::NodeWriter(std::sync::Arc::new(move |reads: &[ValueId], name: &dyn Fn(ValueId) -> Option<Value>| {
        let (first, tensors) = reads.split_at(node.inputs.len().min(reads.len()));
        let missing = || Error::invalid("export", "layer", "a function layer reads a value no layer or input produced");
        let mut kwargs = Value::Object(node.kwargs.clone());
        put_tensors(&mut kwargs, &|i| tensors.get(i).and_then(|&v| name(v)))?;
        let refs = node
            .inputs
            .iter()
            .zip(first)
            .map(|(r, &v)| {
                let mut t = match r {
                    Ref::Constant(c) => vec![Value::from("_CONSTANT_VALUE"), Value::from(-1), Value::from(*c)],
                    Ref::Tensor { .. } => name(v).and_then(|n| n.as_array().cloned()).ok_or_else(missing)?,
                };
                t.push(kwargs.clone());
                Ok(Value::Array(t))
            })
            .collect::<Result<Vec<Value>>>()?;
        Ok(match (node.listed, refs.len()) {
            (false, 1) => refs.into_iter().next().expect("one"),
            _ => Value::Array(refs),
        })
    }))
}

/// The inverse of [`take_tensors`]: each `{"tensor": i}` becomes `name(i)`.
fn put_tensors(v: &mut Value, name: &dyn Fn(usize) -> Option<Value>) -> Result<()> {
    match v {
        Value::Object(o) if o.len() == 1 && o.get("tensor").is_some_and(Value::is_u64) => {
            let i = o["tensor"].as_u64().unwrap_or(0) as usize;
            *v = name(i).ok_or_else(|| Error::invalid("export", "layer", "a function layer's argument is a value no layer produced"))?;
            Ok(())
        }
        Value::Object(o) => o.values_mut().try_for_each(|x| put_tensors(x, name)),
        Value::Array(a) => a.iter_mut().try_for_each(|x| put_tensors(x, name)),
        _ => Ok(()),
    }
}

/// Replaces each `[layer, node, tensor]` inside `v` by `{"tensor": i}`, its index in `found`.
fn take_tensors(v: &mut Value, found: &mut Vec<Ref<String>>) {
    if let Value::Array(t) = v {
        if let [Value::String(layer), Value::Number(node), Value::Number(tensor)] = &t[..] {
            if let (Some(node), Some(tensor)) = (node.as_u64(), tensor.as_u64()) {
                found.push(Ref::Tensor { layer: layer.clone(), node: node as usize, tensor: tensor as usize });
                *v = serde_json::json!({ "tensor": found.len() - 1 });
                return;
            }
        }
        t.iter_mut().for_each(|x| take_tensors(x, found));
    }
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
