//! Reading one Keras config object field by field: each getter takes its field, and
//! [`Fields::done`] rejects whatever is left, so a field bitgrad does not know is an error
//! naming the layer and the field instead of being silently dropped.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The largest count (size, stride, padding, rate, index) a config may hold: kernels index
/// elements with u32, and no adapter binds more.
pub const MAX_COUNT: usize = u32::MAX as usize;

/// A config object being read, and what it belongs to (for errors).
pub struct Fields {
    /// The file, for errors.
    file: String,
    /// What the object is, e.g. "layer `quant_dense` (QuantDense)".
    what: String,
    map: Map<String, Value>,
}

impl Fields {
    /// The fields of `value`, which must be an object.
    pub fn new(file: &str, what: impl Into<String>, value: &Value) -> Result<Self> {
        let what = what.into();
        match value {
            Value::Object(map) => Ok(Fields { file: file.to_string(), what, map: map.clone() }),
            other => Err(Error::BadFile { file: file.to_string(), reason: format!("{what}: expected an object, found {}", kind(other)) }),
        }
    }

    /// What the object is.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The file.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// An error about `field`.
    pub fn error(&self, field: &str, reason: impl std::fmt::Display) -> Error {
        Error::BadFile { file: self.file.clone(), reason: format!("{}: field `{field}`: {reason}", self.what) }
    }

    /// Takes a field; JSON `null` counts as absent.
    pub fn take(&mut self, field: &str) -> Option<Value> {
        self.map.remove(field).filter(|v| !v.is_null())
    }

    /// Whether `field` is present and not `null`.
    pub fn has(&self, field: &str) -> bool {
        self.map.get(field).is_some_and(|v| !v.is_null())
    }

    /// Takes a required field.
    pub fn required(&mut self, field: &str) -> Result<Value> {
        self.take(field).ok_or_else(|| self.error(field, "is required"))
    }

    /// A string field, or `default`.
    pub fn string(&mut self, field: &str, default: &str) -> Result<String> {
        match self.take(field) {
            None => Ok(default.to_string()),
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(self.error(field, format!("expected a string, found {}", kind(&v)))),
        }
    }

    /// A boolean field, or `default`.
    pub fn boolean(&mut self, field: &str, default: bool) -> Result<bool> {
        match self.take(field) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(b),
            Some(v) => Err(self.error(field, format!("expected true or false, found {}", kind(&v)))),
        }
    }

    /// A number field, or `default`.
    pub fn number(&mut self, field: &str, default: f32) -> Result<f32> {
        match self.take(field) {
            None => Ok(default),
            Some(v) => self.as_number(field, &v),
        }
    }

    /// A non-negative integer field, or `default`.
    pub fn count(&mut self, field: &str, default: usize) -> Result<usize> {
        match self.take(field) {
            None => Ok(default),
            Some(v) => self.as_count(field, &v),
        }
    }

    /// A required non-negative integer field.
    pub fn required_count(&mut self, field: &str) -> Result<usize> {
        let v = self.required(field)?;
        self.as_count(field, &v)
    }

    /// A signed integer field, or `default`.
    pub fn integer(&mut self, field: &str, default: i64) -> Result<i64> {
        match self.take(field) {
            None => Ok(default),
            Some(v) => v.as_i64().ok_or_else(|| self.error(field, format!("expected an integer, found {}", kind(&v)))),
        }
    }

    /// Keras' int-or-tuple fields (`kernel_size`, `strides`, ...): `rank` counts, one integer
    /// meaning the same on every axis; `default` when absent.
    pub fn counts(&mut self, field: &str, rank: usize, default: Option<usize>) -> Result<Vec<usize>> {
        match (self.take(field), default) {
            (None, Some(d)) => Ok(vec![d; rank]),
            (None, None) => Err(self.error(field, "is required")),
            (Some(v), _) => self.as_counts(field, &v, rank),
        }
    }

    /// A list of counts of any length, or `null` entries (batch or unknown sizes) as `None`.
    pub fn shape(&self, field: &str, v: &Value) -> Result<Vec<Option<usize>>> {
        let Value::Array(items) = v else { return Err(self.error(field, format!("expected a list, found {}", kind(v)))) };
        items.iter().map(|d| if d.is_null() { Ok(None) } else { self.as_count(field, d).map(Some) }).collect()
    }

    /// `v` as an int-or-tuple of `rank` counts.
    pub fn as_counts(&self, field: &str, v: &Value, rank: usize) -> Result<Vec<usize>> {
        match v {
            Value::Array(items) => {
                if items.len() != rank {
                    return Err(self.error(field, format!("expected {rank} values, found {}", items.len())));
                }
                items.iter().map(|d| self.as_count(field, d)).collect()
            }
            v => Ok(vec![self.as_count(field, v)?; rank]),
        }
    }

    /// `v` as a non-negative integer (Keras writes some as floats, like `1.0`) of at most
    /// [`MAX_COUNT`]: a size, stride or count beyond what a u32 index can address is refused
    /// here, at import, so that no later shape arithmetic sees it.
    pub fn as_count(&self, field: &str, v: &Value) -> Result<usize> {
        let exact = v.as_u64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19).map(|f| f as u64));
        match exact {
            Some(n) if n <= MAX_COUNT as u64 => Ok(n as usize),
            Some(n) => Err(self.error(field, format!("{n} is larger than {MAX_COUNT}, the most a u32 index can address"))),
            None => Err(self.error(field, format!("expected a non-negative integer, found {}", kind(v)))),
        }
    }

    /// `v` as a finite number.
    pub fn as_number(&self, field: &str, v: &Value) -> Result<f32> {
        match v.as_f64() {
            Some(f) if f.is_finite() => Ok(f as f32),
            _ => Err(self.error(field, format!("expected a finite number, found {}", kind(v)))),
        }
    }

    /// Accepts `field` only with one of `allowed` values (or absent): for settings that change
    /// nothing bitgrad computes, such as `dtype` float32.
    pub fn only(&mut self, field: &str, allowed: &[Value]) -> Result<()> {
        match self.take(field) {
            Some(v) if !allowed.contains(&v) => {
                Err(self.error(field, format!("{v} is not supported (bitgrad supports {})", list(allowed))))
            }
            _ => Ok(()),
        }
    }

    /// Drops fields that do not affect the computation (names, build shapes).
    pub fn ignore(&mut self, fields: &[&str]) {
        for f in fields {
            self.map.remove(*f);
        }
    }

    /// Errors if any field is left unread.
    pub fn done(self) -> Result<()> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(self.error(k, "is not supported by bitgrad")),
        }
    }
}

/// A JSON value's kind, for errors.
pub fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("\"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn list(values: &[Value]) -> String {
    values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" or ")
}
