//! Writing models as the Keras JSON that [`super::model_from_json`] (and tf_keras with Larq's
//! custom objects) reads: each built-in layer's config, and the model's wiring recorded while
//! building it ([`crate::models::build_with_calls`]). A chain from the input is written as a
//! `Sequential` model unless the model lists its inputs (a functional model); anything else as
//! `Functional`. A layer bitgrad cannot express in Keras JSON (a custom layer, explicit
//! padding) is an error naming it.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::graph::{DataFormat, Padding, ValueId};
use crate::layers::{Activation, DepthwiseOptions, Initializer, Layer, Merge, QuantArgs, Regularizer};
use crate::models::{build_with_calls, Built, Described, Model};
use crate::quantizers::Quantizer;

/// The model as Keras JSON text.
pub fn model_to_json(model: &dyn Model) -> Result<String> {
    Wiring::of(model)?.0.to_json()
}

/// One layer call of a [`Wiring`].
#[derive(Clone, Debug)]
pub struct Call {
    /// The layer's name.
    pub name: String,
    /// Its `{"class_name", "config"}`.
    pub config: Value,
    /// The values it reads.
    pub inputs: Vec<ValueId>,
    /// The value it writes.
    pub output: ValueId,
    /// The further values it writes (a split's parts).
    pub more_outputs: Vec<ValueId>,
    /// How its inbound node is written, for a call with arguments.
    pub node: Option<crate::models::NodeWriter>,
}

/// What a model's Keras JSON says: its layer calls with their configs, in order, and its
/// inputs and outputs. Values are those of the model built for one sample.
#[derive(Clone, Debug)]
pub struct Wiring {
    /// The model's name.
    pub name: String,
    /// Name, per-sample shape and value of each input.
    pub inputs: Vec<(String, Vec<usize>, ValueId)>,
    /// The output values.
    pub outputs: Vec<ValueId>,
    /// The layer calls.
    pub calls: Vec<Call>,
    /// Whether the model lists its inputs (then it is written as `Functional` even as a chain).
    pub lists_inputs: bool,
}

impl Wiring {
    /// The wiring of `model`, and the model built (for one sample, in inference mode) to find it.
    pub fn of(model: &dyn Model) -> Result<(Wiring, Built)> {
        let built = build_with_calls(model, describe)?;
        let recorded = built.network.calls.as_ref().expect("build_with_calls keeps the calls");
        let mut calls = Vec::new();
        for c in recorded {
            let mut config = c.config.as_ref().map_err(|e| Error::invalid("export", "layer", format!("`{}`: {e}", c.name)))?.clone();
            // A global pooling's Keras class carries its spatial rank, which only its input shows.
            if let Some(class) = config["class_name"].as_str().filter(|k| k.starts_with("Global") && !k.ends_with('D')) {
                let rank = built.graph().value(c.inputs[0]).shape.rank();
                config["class_name"] = json!(format!("{class}{}D", rank.saturating_sub(2)));
            }
            calls.push(Call {
                name: c.name.clone(),
                config,
                inputs: c.inputs.clone(),
                output: c.output,
                more_outputs: c.more_outputs.clone(),
                node: c.node.clone(),
            });
        }
        let inputs = model.inputs().into_iter().zip(&built.inputs).map(|((n, s), &v)| (n, s, v)).collect();
        let wiring =
            Wiring { name: model.name().to_string(), inputs, outputs: built.outputs.clone(), calls, lists_inputs: model.lists_inputs() };
        Ok((wiring, built))
    }

    /// The Keras JSON text; an error when a call reads a value no layer or input produced (a
    /// functional model's graph op outside any layer), or an output is a shared layer's later call.
    pub fn to_json(&self) -> Result<String> {
        let input_entry = |name: &str, shape: &[usize]| {
            let mut batch: Vec<Value> = vec![Value::Null];
            batch.extend(shape.iter().map(|&d| json!(d)));
            json!({"class_name": "InputLayer", "config": {"batch_input_shape": batch, "dtype": "float32", "sparse": false, "ragged": false, "name": name}})
        };
        let calls = &self.calls;
        // A chain: one input, each call reading the previous output, the last call the output.
        let chain = !self.lists_inputs
            && self.inputs.len() == 1
            && self.outputs.len() == 1
            && calls.iter().all(|c| c.node.is_none())
            && calls.iter().enumerate().all(|(i, c)| c.inputs == [if i == 0 { self.inputs[0].2 } else { calls[i - 1].output }])
            && calls.last().is_some_and(|c| c.output == self.outputs[0]);
        let model_json = if chain {
            let mut layers = vec![input_entry(&self.inputs[0].0, &self.inputs[0].1)];
            layers.extend(calls.iter().map(|c| c.config.clone()));
            json!({"class_name": "Sequential", "config": {"name": self.name, "layers": layers}, "backend": "tensorflow"})
        } else {
            self.functional(input_entry)?
        };
        let mut model_json = model_json;
        crate::text::shortest_f32s(&mut model_json);
        Ok(serde_json::to_string(&model_json).expect("JSON values serialize"))
    }

    fn functional(&self, input_entry: impl Fn(&str, &[usize]) -> Value) -> Result<Value> {
        // Which (layer, call) produced each value. Calls come in build order, so every value a
        // call reads was produced before it.
        let mut producer: HashMap<ValueId, (String, usize, usize)> = HashMap::new();
        let mut layers: Vec<Value> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (name, shape, x) in &self.inputs {
            producer.insert(*x, (name.clone(), 0, 0));
            let mut e = input_entry(name, shape);
            e["name"] = json!(name);
            e["inbound_nodes"] = json!([]);
            index.insert(name.clone(), layers.len());
            layers.push(e);
        }
        for c in &self.calls {
            let node = match &c.node {
                Some(write) => write.0(&c.inputs, &|v| producer.get(&v).map(|(l, k, t)| json!([l, k, t])))?,
                None => Value::Array(
                    c.inputs
                        .iter()
                        .map(|x| {
                            producer.get(x).map(|(l, k, t)| json!([l, k, t, {}])).ok_or_else(|| {
                                Error::invalid("export", "layer", format!("`{}` reads a value no layer or input produced", c.name))
                            })
                        })
                        .collect::<Result<_>>()?,
                ),
            };
            let i = *index.entry(c.name.clone()).or_insert_with(|| {
                let mut e = c.config.clone();
                e["name"] = json!(c.name);
                e["inbound_nodes"] = json!([]);
                layers.push(e);
                layers.len() - 1
            });
            let calls_so_far = layers[i]["inbound_nodes"].as_array().map_or(0, Vec::len);
            layers[i]["inbound_nodes"].as_array_mut().expect("set above").push(node);
            for (t, v) in std::iter::once(&c.output).chain(&c.more_outputs).enumerate() {
                producer.insert(*v, (c.name.clone(), calls_so_far, t));
            }
        }
        let ends = |values: &[ValueId]| -> Result<Vec<Value>> {
            values
                .iter()
                .map(|v| match producer.get(v) {
                    Some((l, 0, t)) => Ok(json!([l, 0, t])),
                    _ => Err(Error::invalid("export", "outputs", "a model output must be the first call of a layer or an input")),
                })
                .collect()
        };
        let inputs: Vec<ValueId> = self.inputs.iter().map(|i| i.2).collect();
        Ok(json!({"class_name": "Functional", "config": {
            "name": self.name, "layers": layers, "input_layers": ends(&inputs)?, "output_layers": ends(&self.outputs)?,
        }, "backend": "tensorflow"}))
    }
}

/// A merge layer's `{"class_name", "config"}`.
pub fn merge_config(m: &Merge) -> Value {
    super::layers::config_of(m, m.class(), &m.name).expect("merges have a class").expect("a merge's config cannot fail")
}

/// A built-in layer's `{"class_name", "config"}` (written by its class's entry in the class
/// table of `io/keras/layers.rs`); an error for layers Keras JSON cannot hold. A layer that wraps
/// another ([`Layer::wrapped`], an annotation for quantization-aware training) has that one's.
pub fn layer_config(layer: &dyn Layer) -> Result<Value> {
    if let Some(inner) = layer.wrapped() {
        return layer_config(inner);
    }
    let unknown = || {
        Error::invalid(
            "export",
            "layer",
            format!("`{}` ({}) is not a built-in layer, so it has no Keras config", layer.name(), layer.class()),
        )
    };
    let any = layer.as_any().ok_or_else(unknown)?;
    super::layers::config_of(any, layer.class(), layer.name()).ok_or_else(unknown)?
}

/// The Keras config of what a model applies: what [`crate::models::build_with_calls`] records.
pub fn describe(applied: Described) -> Result<Value> {
    match applied {
        Described::Layer(l) => layer_config(l),
        Described::Merge(m) => Ok(merge_config(m)),
    }
}

/// The fields every layer has.
pub(super) fn base(name: &str) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("name".into(), json!(name));
    c.insert("trainable".into(), json!(true));
    c.insert("dtype".into(), json!("float32"));
    c
}

pub(super) fn quant_args(c: &mut Map<String, Value>, a: &QuantArgs) -> Result<()> {
    let name = c["name"].as_str().unwrap_or_default().to_string();
    c.insert("trainable".into(), json!(a.trainable));
    c.insert("activation".into(), activation(&a.activation, &name)?);
    c.insert("use_bias".into(), json!(a.use_bias));
    c.insert("kernel_initializer".into(), initializer(&a.kernel_initializer));
    c.insert("bias_initializer".into(), initializer(&a.bias_initializer));
    c.insert("kernel_regularizer".into(), regularizer(&a.kernel_regularizer));
    c.insert("bias_regularizer".into(), regularizer(&a.bias_regularizer));
    c.insert("activity_regularizer".into(), regularizer(&a.activity_regularizer));
    c.insert("kernel_constraint".into(), a.kernel_constraint.as_ref().map_or(Value::Null, |k| k.to_keras()));
    c.insert("bias_constraint".into(), a.bias_constraint.as_ref().map_or(Value::Null, |k| k.to_keras()));
    c.insert("input_quantizer".into(), quantizer(&a.input_quantizer));
    c.insert("kernel_quantizer".into(), quantizer(&a.kernel_quantizer));
    if let Some(m) = &a.metrics {
        c.insert("metrics".into(), json!(m));
    }
    if a.output_scale {
        c.insert("output_scale".into(), json!(true));
    }
    Ok(())
}

pub(super) fn depthwise(c: &mut Map<String, Value>, name: &str, o: &DepthwiseOptions) -> Result<()> {
    c.insert("trainable".into(), json!(o.trainable));
    c.insert("kernel_size".into(), json!(o.kernel_size));
    c.insert("strides".into(), json!(o.strides));
    c.insert("padding".into(), padding(&o.padding, name)?);
    c.insert("dilation_rate".into(), json!(o.dilation_rate));
    c.insert("data_format".into(), data_format(o.data_format));
    c.insert("depth_multiplier".into(), json!(o.depth_multiplier));
    c.insert("activation".into(), activation(&o.activation, name)?);
    c.insert("use_bias".into(), json!(o.use_bias));
    c.insert("depthwise_initializer".into(), initializer(&o.depthwise_initializer));
    c.insert("bias_initializer".into(), initializer(&o.bias_initializer));
    c.insert("depthwise_constraint".into(), o.depthwise_constraint.as_ref().map_or(Value::Null, |k| k.to_keras()));
    c.insert("bias_constraint".into(), o.bias_constraint.as_ref().map_or(Value::Null, |k| k.to_keras()));
    c.insert("depthwise_regularizer".into(), regularizer(&o.depthwise_regularizer));
    c.insert("bias_regularizer".into(), regularizer(&o.bias_regularizer));
    c.insert("activity_regularizer".into(), regularizer(&o.activity_regularizer));
    c.insert("pad_values".into(), json!(o.pad_values));
    c.insert("input_quantizer".into(), quantizer(&o.input_quantizer));
    c.insert("depthwise_quantizer".into(), quantizer(&o.depthwise_quantizer));
    if let Some(m) = &o.metrics {
        c.insert("metrics".into(), json!(m));
    }
    Ok(())
}

pub(super) fn quantizer(q: &Option<Quantizer>) -> Value {
    q.as_ref().map_or(Value::Null, Quantizer::to_keras)
}

pub(super) fn initializer(i: &Initializer) -> Value {
    let (class, config) = match *i {
        Initializer::GlorotUniform => ("GlorotUniform", json!({})),
        Initializer::GlorotNormal => ("GlorotNormal", json!({})),
        Initializer::HeNormal => ("HeNormal", json!({})),
        Initializer::HeUniform => ("HeUniform", json!({})),
        Initializer::Zeros => ("Zeros", json!({})),
        Initializer::Ones => ("Ones", json!({})),
        Initializer::Constant(v) => ("Constant", json!({ "value": v })),
        Initializer::RandomUniform { minval, maxval } => ("RandomUniform", json!({ "minval": minval, "maxval": maxval })),
        Initializer::RandomNormal { mean, stddev } => ("RandomNormal", json!({ "mean": mean, "stddev": stddev })),
        Initializer::BlurPool => return json!({"class_name": "function", "config": "blurpool_initializer"}),
        Initializer::Registered(i) => {
            return json!({"class_name": "function", "config": crate::layers::initializers::registered_name(i)});
        }
    };
    json!({"class_name": class, "config": config})
}

pub(super) fn regularizer(r: &Option<Regularizer>) -> Value {
    match r {
        None => Value::Null,
        Some(r) => json!({"class_name": "L1L2", "config": {"l1": r.l1, "l2": r.l2}}),
    }
}

pub(super) fn activation(a: &Activation, layer: &str) -> Result<Value> {
    Ok(match a {
        Activation::Linear => json!("linear"),
        Activation::Relu => json!("relu"),
        Activation::Sigmoid => json!("sigmoid"),
        Activation::Tanh => json!("tanh"),
        Activation::Softmax => json!("softmax"),
        Activation::HardTanh => json!("hard_tanh"),
        // As Keras writes a registered custom function.
        Activation::ClipByValue => json!({"class_name": "function", "config": "clip_by_value_activation"}),
        Activation::LeakyTanh { alpha } if *alpha == 0.2 => json!("leaky_tanh"),
        Activation::LeakyTanh { alpha } => {
            return Err(Error::invalid("export", "activation", format!("layer `{layer}`: leaky_tanh with alpha {alpha} has no Keras name")))
        }
        Activation::Quantizer(q) => q.to_keras(),
    })
}

pub(super) fn padding(p: &Padding, layer: &str) -> Result<Value> {
    Ok(json!(match p {
        Padding::Valid => "valid",
        Padding::Same => "same",
        Padding::Causal => "causal",
        Padding::Explicit(_) => {
            return Err(Error::invalid(
                "export",
                "padding",
                format!("layer `{layer}`: explicit padding has no Keras form (use ZeroPadding)"),
            ));
        }
    }))
}

pub(super) fn data_format(f: DataFormat) -> Value {
    json!(match f {
        DataFormat::ChannelsLast => "channels_last",
        DataFormat::ChannelsFirst => "channels_first",
    })
}
