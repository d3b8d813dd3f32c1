//! Weight constraints, applied on the device after each optimizer update: Larq's `weight_clip`,
//! and a [`Constraint`] trait for others.
//!
//! ```
//! use bitgrad::constraints::{Constraint, WeightClip};
//! use bitgrad::{Graph, Init};
//! # fn main() -> bitgrad::Result<()> {
//! let mut g = Graph::new();
//! let w = g.variable("w", [4, 3], Init::Constant(2.0))?;
//! // ... optimizer update nodes assign w here ...
//! g.constrain(w, &WeightClip::new(1.0)?)?; // w <- clip(w, -1, 1), inside the same step
//! # Ok(()) }
//! ```

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::graph::{Graph, Source, UnaryOp, ValueId};

/// A projection applied to a variable after it is updated.
pub trait Constraint: std::fmt::Debug + Send + Sync {
    /// Records the constrained value of `w`.
    fn apply(&self, g: &mut Graph, w: ValueId) -> Result<ValueId>;
    /// The Keras/Larq JSON form.
    fn to_keras(&self) -> Value;
}

/// Larq's `weight_clip`: `clip(w, -clip_value, clip_value)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightClip {
    clip_value: f32,
}

impl WeightClip {
    /// A clip to `[-clip_value, clip_value]`; the value must be finite and >= 0.
    pub fn new(clip_value: f32) -> Result<Self> {
        if !(clip_value.is_finite() && clip_value >= 0.0) {
            return Err(Error::invalid("WeightClip", "clip_value", format!("{clip_value} must be a finite number >= 0")));
        }
        Ok(WeightClip { clip_value })
    }

    /// The clip value.
    pub fn clip_value(&self) -> f32 {
        self.clip_value
    }
}

impl Default for WeightClip {
    /// Larq's default, 1.
    fn default() -> Self {
        WeightClip { clip_value: 1.0 }
    }
}

impl Constraint for WeightClip {
    fn apply(&self, g: &mut Graph, w: ValueId) -> Result<ValueId> {
        g.unary(UnaryOp::Clip(-self.clip_value, self.clip_value), w)
    }

    fn to_keras(&self) -> Value {
        json!({ "class_name": "WeightClip", "config": { "clip_value": self.clip_value } })
    }
}

/// Reads a constraint from Keras JSON: `"weight_clip"` or `{"class_name": "WeightClip",
/// "config": {"clip_value": ...}}`.
pub fn from_keras(v: &Value) -> Result<Box<dyn Constraint>> {
    let (class, config) = match v {
        Value::String(s) => (s.as_str(), None),
        // A Keras custom object function, by its registered name.
        _ if v.get("class_name").and_then(Value::as_str) == Some("function") => {
            (v.get("config").and_then(Value::as_str).unwrap_or(""), None)
        }
        _ => (v.get("class_name").and_then(Value::as_str).unwrap_or(""), v.get("config")),
    };
    // The lock is released before `make` runs (it may read other objects).
    let registered = REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(n, _)| n == class).map(|(_, m)| m.clone());
    if let Some(make) = registered {
        return make(config);
    }
    match class {
        "weight_clip" | "WeightClip" => {
            if let Some(k) = config.and_then(Value::as_object).and_then(|c| c.keys().find(|k| *k != "clip_value")) {
                return Err(Error::invalid("WeightClip", "config", format!("`{k}` is not a parameter of weight_clip")));
            }
            let clip = match config.and_then(|c| c.get("clip_value")) {
                None => 1.0,
                Some(c) => c.as_f64().ok_or_else(|| Error::invalid("WeightClip", "clip_value", format!("{c} is not a number")))? as f32,
            };
            Ok(Box::new(WeightClip::new(clip)?))
        }
        other => {
            let registered: Vec<String> = REGISTRY.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(n, _)| n.clone()).collect();
            Err(Error::unknown("constraint", other, std::iter::once("weight_clip".to_string()).chain(registered)))
        }
    }
}

/// What makes a registered constraint from its Keras config (`None` for a name alone).
pub type MakeConstraint = dyn Fn(Option<&Value>) -> Result<Box<dyn Constraint>> + Send + Sync;

/// Constraints a program registered, by the name Keras JSON gives them.
static REGISTRY: std::sync::Mutex<Vec<(String, std::sync::Arc<MakeConstraint>)>> = std::sync::Mutex::new(Vec::new());

/// Registers a constraint under `name` (its Keras class name, or a custom object function's
/// name), as Keras' `custom_objects`, so that Keras JSON naming it reads: `make` builds it from
/// the config. `weight_clip` and a name already registered are errors.
pub fn register(name: &str, make: impl Fn(Option<&Value>) -> Result<Box<dyn Constraint>> + Send + Sync + 'static) -> Result<()> {
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    if ["weight_clip", "WeightClip"].contains(&name) || registry.iter().any(|(n, _)| n == name) {
        return Err(Error::invalid("constraints::register", "name", format!("`{name}` is already the name of a constraint")));
    }
    registry.push((name.to_string(), std::sync::Arc::new(make)));
    Ok(())
}

impl Graph {
    /// Applies `constraint` to the variable `w` at this point of the step (after its update):
    /// `w <- constraint(w)`.
    pub fn constrain(&mut self, w: ValueId, constraint: &dyn Constraint) -> Result<()> {
        if !matches!(self.value(w).source, Source::Variable { .. }) {
            return Err(Error::invalid("constrain", "w", format!("{w:?} is not a variable")));
        }
        let v = constraint.apply(self, w)?;
        self.assign(w, v)
    }
}
