//! Keras' serialized objects inside layer configs: quantizers, constraints, initializers,
//! regularizers and activations, each given as a string (`"ste_sign"`) or as an object
//! (`{"class_name": "SteSign", "config": {...}}`); and the string settings (padding, data
//! format).

use std::sync::Arc;

use serde_json::Value;

use super::fields::{kind, Fields};
use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::graph::{DataFormat, Padding};
use crate::layers::{Activation, Initializer, Regularizer};
use crate::quantizers::Quantizer;

/// A serialized object: its class name and its config (empty for a plain string).
fn class_and_config(f: &Fields, field: &str, v: &Value) -> Result<(String, Fields)> {
    let what = format!("{}: field `{field}`", f.what());
    match v {
        Value::String(s) => Ok((s.clone(), Fields::new(f.file(), what, &Value::Object(Default::default()))?)),
        Value::Object(o) => {
            let class = match o.get("class_name") {
                Some(Value::String(c)) => c.clone(),
                _ => return Err(f.error(field, "an object without a string `class_name`")),
            };
            // A Keras custom object function (`{"class_name": "function", "config": "name"}`) is
            // its registered name.
            if let (true, Some(Value::String(name))) = (class == "function", o.get("config")) {
                return Ok((name.clone(), Fields::new(f.file(), format!("{what} ({name})"), &Value::Object(Default::default()))?));
            }
            let config = o.get("config").cloned().unwrap_or(Value::Object(Default::default()));
            Ok((class.clone(), Fields::new(f.file(), format!("{what} ({class})"), &config)?))
        }
        other => Err(f.error(field, format!("expected a name or an object, found {}", kind(other)))),
    }
}

/// A Larq quantizer field (`input_quantizer`, `kernel_quantizer`, ...); `null` is none.
pub fn quantizer(f: &mut Fields, field: &str) -> Result<Option<Quantizer>> {
    let Some(v) = f.take(field) else { return Ok(None) };
    Quantizer::from_keras(&v).map(Some).map_err(|e| f.error(field, e))
}

/// A constraint field: Larq's `weight_clip` (the one bitgrad has); `null` is none.
pub fn constraint(f: &mut Fields, field: &str) -> Result<Option<Arc<dyn Constraint>>> {
    let Some(v) = f.take(field) else { return Ok(None) };
    crate::constraints::from_keras(&v).map(|c| Some(Arc::from(c))).map_err(|e| f.error(field, e))
}

/// An initializer field, or `default` when absent.
pub fn initializer(f: &mut Fields, field: &str, default: Initializer) -> Result<Initializer> {
    let Some(v) = f.take(field) else { return Ok(default) };
    let (class, mut c) = class_and_config(f, field, &v)?;
    // The seed of a Keras initializer is not a bitgrad seed (see Model::seed); initial values
    // matter only when training from scratch.
    c.ignore(&["seed"]);
    let init = match Initializer::from_keras(&class, |k, default| c.number(k, default)) {
        Err(Error::Unknown { .. }) => return Err(f.error(field, format!("initializer `{class}` is not supported"))),
        other => other?,
    };
    c.done()?;
    Ok(init)
}

/// A regularizer field (`L1`, `L2`, `L1L2` or their names); `null` is none.
pub fn regularizer(f: &mut Fields, field: &str) -> Result<Option<Regularizer>> {
    let Some(v) = f.take(field) else { return Ok(None) };
    let (class, mut c) = class_and_config(f, field, &v)?;
    let r = match Regularizer::from_keras(&class, |k, default| c.number(k, default)) {
        Err(Error::Unknown { .. }) => return Err(f.error(field, format!("regularizer `{class}` is not supported"))),
        other => other?,
    };
    c.done()?;
    Ok(Some(r))
}

/// The `activation` field: a Keras activation name, or a Larq quantizer (name or object).
pub fn activation(f: &mut Fields) -> Result<Activation> {
    match f.take("activation") {
        None => Ok(Activation::Linear),
        Some(Value::String(s)) => Activation::from_name(&s).map_err(|e| f.error("activation", e)),
        // Larq's own activations (hard_tanh, leaky_tanh) are serialized as functions by name.
        Some(Value::Object(o)) if o.get("class_name") == Some(&Value::String("function".into())) => match o.get("config") {
            Some(Value::String(s)) => Activation::from_name(s).map_err(|e| f.error("activation", e)),
            _ => Err(f.error("activation", "a function without a name")),
        },
        Some(v) => Quantizer::from_keras(&v).map(Activation::Quantizer).map_err(|e| f.error("activation", e)),
    }
}

/// The `padding` field (`valid`, `same`, or `causal` where `causal` is allowed).
pub fn padding(f: &mut Fields, causal: bool) -> Result<Padding> {
    let name = f.string("padding", "valid")?;
    match Padding::from_name(&name) {
        Ok(Padding::Causal) if !causal => Err(f.error("padding", "`causal` is not supported here (1-D convolutions only)")),
        p => p.map_err(|e| f.error("padding", e)),
    }
}

/// The `data_format` field.
pub fn data_format(f: &mut Fields) -> Result<DataFormat> {
    let name = f.string("data_format", "channels_last")?;
    DataFormat::from_name(&name).map_err(|e| f.error("data_format", e))
}
