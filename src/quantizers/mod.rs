//! The Larq quantizer catalogue: SteSign, ApproxSign, SteHeaviside, SwishSign,
//! MagnitudeAwareSign, SteTern, DoReFa and NoOp, with Larq's names, string aliases, defaults,
//! precisions and Keras JSON form. A quantizer applies to any tensor (as a layer's input or
//! kernel quantizer, as an activation, or on its own) by recording its statistic, if any, and a
//! [`Op::Quantize`](crate::Op::Quantize) node whose gradient is the quantizer's pseudo-gradient.
//!
//! ```
//! use bitgrad::quantizers::Quantizer;
//! let q = Quantizer::from_name("ste_sign").unwrap();
//! assert_eq!(q, Quantizer::SteSign { clip_value: Some(1.0) });
//! assert_eq!(q.precision(), 1);
//! let json = q.to_keras();
//! assert_eq!(Quantizer::from_keras(&json).unwrap(), q);
//! ```

pub mod custom;

pub use custom::CustomQuantizer;

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::graph::{BinaryOp, Graph, QuantFn, UnaryOp, ValueId};
use crate::metrics::{scoped_metrics, FlipRatio, QUANTIZER_METRICS};

/// DoReFa's two modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoReFaMode {
    /// Clip to [0, 1], then quantize.
    Activations,
    /// tanh, normalise by the tensor's max |tanh| to [0, 1], quantize, map back to [-1, 1].
    Weights,
}

/// A Larq quantizer with its parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum Quantizer {
    /// `"ste_sign"`: sign(x) with a straight-through gradient where |x| <= clip_value.
    SteSign {
        /// Straight-through window (default 1.0; `None` = identity gradient).
        clip_value: Option<f32>,
    },
    /// `"approx_sign"`: sign(x) with gradient 2 - 2|x| on [-1, 1].
    ApproxSign,
    /// `"ste_heaviside"`: 1 for x > 0 else 0, straight-through where |x| <= clip_value.
    SteHeaviside {
        /// Straight-through window (default 1.0).
        clip_value: Option<f32>,
    },
    /// `"swish_sign"`: sign(x) with the SignSwish gradient.
    SwishSign {
        /// Sharpness (default 5.0).
        beta: f32,
    },
    /// `"magnitude_aware_sign"`: mean(|x|) per output channel (all axes but the last) times
    /// sign(x); no gradient through the scale.
    MagnitudeAwareSign {
        /// Straight-through window (default 1.0).
        clip_value: Option<f32>,
    },
    /// `"ste_tern"`: -1, 0 or +1 around a threshold (fixed, or 0.7 mean|x| over the whole tensor
    /// with ternary weight networks), straight-through where |x| <= clip_value.
    SteTern {
        /// Fixed threshold (default 0.05).
        threshold_value: f32,
        /// Use the TWN threshold instead.
        ternary_weight_networks: bool,
        /// Straight-through window (default 1.0).
        clip_value: Option<f32>,
    },
    /// `"dorefa_quantizer"`: k-bit DoReFa quantization.
    DoReFa {
        /// Bits (default 2, at least 1).
        k_bit: u32,
        /// Activations (default) or weights.
        mode: DoReFaMode,
    },
    /// Identity that only marks a precision (for Bop and metrics).
    NoOp {
        /// Bits.
        precision: u32,
    },
    /// A user-defined quantizer (see [`CustomQuantizer`]).
    Custom(Arc<CustomQuantizer>),
}

/// Keras class names and aliases, with the default instance of each.
const CATALOGUE: &[(&str, &str)] = &[
    ("SteSign", "ste_sign"),
    ("ApproxSign", "approx_sign"),
    ("SteHeaviside", "ste_heaviside"),
    ("SwishSign", "swish_sign"),
    ("MagnitudeAwareSign", "magnitude_aware_sign"),
    ("SteTern", "ste_tern"),
    ("DoReFa", "dorefa_quantizer"),
    ("NoOp", "noop"),
];

fn default_of(class: &str) -> Option<Quantizer> {
    Some(match class {
        "SteSign" => Quantizer::SteSign { clip_value: Some(1.0) },
        "ApproxSign" => Quantizer::ApproxSign,
        "SteHeaviside" => Quantizer::SteHeaviside { clip_value: Some(1.0) },
        "SwishSign" => Quantizer::SwishSign { beta: 5.0 },
        "MagnitudeAwareSign" => Quantizer::MagnitudeAwareSign { clip_value: Some(1.0) },
        "SteTern" => Quantizer::SteTern { threshold_value: 0.05, ternary_weight_networks: false, clip_value: Some(1.0) },
        "DoReFa" | "DoReFaQuantizer" => Quantizer::DoReFa { k_bit: 2, mode: DoReFaMode::Activations },
        _ => return None,
    })
}

impl Quantizer {
    /// A quantizer from its Larq alias (`"ste_sign"`, `"approx_sign"`, `"ste_heaviside"`,
    /// `"swish_sign"`, `"magnitude_aware_sign"`, `"ste_tern"`, `"dorefa_quantizer"`) or Keras
    /// class name, with Larq's defaults. NoOp has no default (its precision is required).
    pub fn from_name(name: &str) -> Result<Self> {
        let class = CATALOGUE.iter().find(|(c, a)| *a == name || *c == name).map(|(c, _)| *c);
        if class.is_none() {
            if let Some(custom) = custom::by_name(name) {
                return Ok(Quantizer::Custom(custom));
            }
        }
        match class {
            Some("NoOp") => Err(Error::invalid("NoOp", "precision", "is required: use Quantizer::NoOp { precision } or a config")),
            Some(c) => Ok(default_of(c).expect("every catalogue class but NoOp has a default")),
            None => Err(Error::Unknown {
                kind: "quantizer",
                name: format!("{name} (known: {})", CATALOGUE.iter().map(|(_, a)| *a).collect::<Vec<_>>().join(", ")),
            }),
        }
    }

    /// The Keras class name.
    pub fn class_name(&self) -> &str {
        match self {
            Quantizer::Custom(c) => c.name(),
            Quantizer::SteSign { .. } => "SteSign",
            Quantizer::ApproxSign => "ApproxSign",
            Quantizer::SteHeaviside { .. } => "SteHeaviside",
            Quantizer::SwishSign { .. } => "SwishSign",
            Quantizer::MagnitudeAwareSign { .. } => "MagnitudeAwareSign",
            Quantizer::SteTern { .. } => "SteTern",
            Quantizer::DoReFa { .. } => "DoReFa",
            Quantizer::NoOp { .. } => "NoOp",
        }
    }

    /// Bits per value, as Larq's `precision`.
    pub fn precision(&self) -> u32 {
        match self {
            Quantizer::SteTern { .. } => 2,
            Quantizer::DoReFa { k_bit, .. } => *k_bit,
            Quantizer::NoOp { precision } => *precision,
            Quantizer::Custom(c) => c.precision(),
            _ => 1,
        }
    }

    /// Larq's notion of a binary quantizer: precision 1 and not a NoOp.
    pub fn is_binary(&self) -> bool {
        self.precision() == 1 && !matches!(self, Quantizer::NoOp { .. })
    }

    /// True when the output is ±1 (what packed binary kernels can take).
    pub fn is_binary_sign(&self) -> bool {
        matches!(self, Quantizer::SteSign { .. } | Quantizer::ApproxSign | Quantizer::SwishSign { .. })
    }

    /// Checks the parameters; errors name the quantizer and the parameter.
    pub fn validate(&self) -> Result<()> {
        let name = CATALOGUE.iter().find(|(c, _)| *c == self.class_name()).map_or("quantizer", |(c, _)| c);
        let clip = |c: &Option<f32>| match c {
            Some(v) if !(v.is_finite() && *v >= 0.0) => {
                Err(Error::invalid(name, "clip_value", format!("{v} must be a finite number >= 0 (or None)")))
            }
            _ => Ok(()),
        };
        match self {
            Quantizer::SteSign { clip_value } | Quantizer::SteHeaviside { clip_value } | Quantizer::MagnitudeAwareSign { clip_value } => {
                clip(clip_value)
            }
            Quantizer::SwishSign { beta } if !beta.is_finite() => Err(Error::invalid(name, "beta", format!("{beta} must be finite"))),
            Quantizer::SteTern { threshold_value, clip_value, .. } => {
                clip(clip_value)?;
                if !(threshold_value.is_finite() && *threshold_value >= 0.0) {
                    return Err(Error::invalid(name, "threshold_value", format!("{threshold_value} must be a finite number >= 0")));
                }
                Ok(())
            }
            Quantizer::DoReFa { k_bit, .. } if !(1..=24).contains(k_bit) => {
                Err(Error::invalid(name, "k_bit", format!("{k_bit} must be between 1 and 24")))
            }
            Quantizer::NoOp { precision } if *precision == 0 => Err(Error::invalid(name, "precision", "must be at least 1")),
            _ => Ok(()),
        }
    }

    /// Records the quantizer applied to `x` and returns the quantized value. Its gradient is the
    /// quantizer's pseudo-gradient; statistics (scales, thresholds) receive none.
    pub fn apply(&self, g: &mut Graph, x: ValueId) -> Result<ValueId> {
        self.validate()?;
        let shape = g.value(x).shape.clone();
        let all: Vec<usize> = (0..shape.rank()).collect();
        match *self {
            Quantizer::SteSign { clip_value } => g.quantize(QuantFn::SteSign { clip: clip_value }, x, None),
            Quantizer::ApproxSign => g.quantize(QuantFn::ApproxSign, x, None),
            Quantizer::SteHeaviside { clip_value } => g.quantize(QuantFn::SteHeaviside { clip: clip_value }, x, None),
            Quantizer::SwishSign { beta } => g.quantize(QuantFn::SwishSign { beta }, x, None),
            Quantizer::MagnitudeAwareSign { clip_value } => {
                // mean |x| over every axis but the last: one scale per output channel (for a
                // rank-1 tensor, no axis is reduced and the scale is |x| itself).
                let abs = g.unary(UnaryOp::Abs, x)?;
                let scale = if shape.rank() > 1 { g.mean(abs, &all[..shape.rank() - 1], false)? } else { abs };
                g.quantize(QuantFn::ScaledSign { clip: clip_value }, x, Some(scale))
            }
            Quantizer::SteTern { threshold_value, ternary_weight_networks, clip_value } => {
                if ternary_weight_networks {
                    // 0.7 * sum|x| / size, in that order, as Larq computes it.
                    let abs = g.unary(UnaryOp::Abs, x)?;
                    let sum = g.sum(abs, &all, false)?;
                    let sum = g.reshape(sum, [1])?;
                    let scaled = g.scale(sum, 0.7)?;
                    let size = g.fill([1], shape.numel() as f32)?;
                    let d = g.binary(BinaryOp::Div, scaled, size)?;
                    g.quantize(QuantFn::SteTern { threshold: None, clip: clip_value }, x, Some(d))
                } else {
                    g.quantize(QuantFn::SteTern { threshold: Some(threshold_value), clip: clip_value }, x, None)
                }
            }
            Quantizer::DoReFa { k_bit, mode } => {
                let levels = (1u32 << k_bit) - 1;
                match mode {
                    DoReFaMode::Activations => g.quantize(QuantFn::DoReFaActivations { levels }, x, None),
                    DoReFaMode::Weights => {
                        let t = g.unary(UnaryOp::Tanh, x)?;
                        let abs = g.unary(UnaryOp::Abs, t)?;
                        let m = g.max(abs, &all, false)?;
                        let m = g.reshape(m, [1])?;
                        g.quantize(QuantFn::DoReFaWeights { levels }, x, Some(m))
                    }
                }
            }
            Quantizer::NoOp { .. } => g.quantize(QuantFn::Identity, x, None),
            Quantizer::Custom(ref c) => g.custom_quantize(c.function(), x),
        }
    }

    /// Applies the quantizer to a layer's weight `w` and records its metrics: `metrics` as given
    /// (Larq's `metrics` argument), or those of the enclosing
    /// [`metrics_scope`](crate::train::metrics::metrics_scope) when `None`. Metric state is named
    /// after `name`, e.g. `flip_ratio/dense/kernel`.
    pub fn apply_to_kernel(&self, g: &mut Graph, w: ValueId, name: &str, metrics: Option<&[&str]>) -> Result<(ValueId, Vec<FlipRatio>)> {
        let names: Vec<String> = match metrics {
            Some(m) => m.iter().map(|s| s.to_string()).collect(),
            None => scoped_metrics(),
        };
        if let Some(bad) = names.iter().find(|m| !QUANTIZER_METRICS.contains(&m.as_str())) {
            return Err(Error::invalid(
                "quantizer",
                "metrics",
                format!("unknown metric `{bad}` (known: {})", QUANTIZER_METRICS.join(", ")),
            ));
        }
        let y = self.apply(g, w)?;
        let tracked = names.iter().map(|_| FlipRatio::record(g, &format!("flip_ratio/{name}"), y)).collect::<Result<Vec<_>>>()?;
        Ok((y, tracked))
    }

    /// The Keras/Larq JSON form: `{"class_name": ..., "config": {...}}`.
    pub fn to_keras(&self) -> Value {
        let config = match self {
            Quantizer::SteSign { clip_value } | Quantizer::SteHeaviside { clip_value } | Quantizer::MagnitudeAwareSign { clip_value } => {
                json!({ "clip_value": clip_value })
            }
            Quantizer::ApproxSign => json!({}),
            Quantizer::SwishSign { beta } => json!({ "beta": beta }),
            Quantizer::SteTern { threshold_value, ternary_weight_networks, clip_value } => {
                json!({ "threshold_value": threshold_value, "ternary_weight_networks": ternary_weight_networks, "clip_value": clip_value })
            }
            Quantizer::DoReFa { k_bit, mode } => {
                json!({ "k_bit": k_bit, "mode": if *mode == DoReFaMode::Weights { "weights" } else { "activations" } })
            }
            Quantizer::NoOp { precision } => json!({ "precision": precision }),
            Quantizer::Custom(_) => json!({}),
        };
        json!({ "class_name": self.class_name(), "config": config })
    }

    /// Reads a quantizer from Keras JSON: an alias string or `{"class_name", "config"}`. The Keras
    /// layer keys `name`, `trainable`, `dtype` and `metrics` are accepted and ignored; any other
    /// key that is not one of the quantizer's parameters is an error.
    pub fn from_keras(v: &Value) -> Result<Self> {
        if let Some(name) = v.as_str() {
            return Self::from_name(name);
        }
        let class = v
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid("quantizer", "class_name", format!("missing in {v}")))?;
        let empty = Map::new();
        let config = v.get("config").and_then(Value::as_object).unwrap_or(&empty);
        let f32_of = |key: &'static str| -> Result<Option<Option<f32>>> {
            match config.get(key) {
                None => Ok(None),
                Some(Value::Null) => Ok(Some(None)),
                Some(x) => x
                    .as_f64()
                    .map(|f| Some(Some(f as f32)))
                    .ok_or_else(|| Error::invalid(class_static(class), key, format!("{x} is not a number"))),
            }
        };
        let mut q = match class {
            "NoOp" | "NoOpQuantizer" => {
                let p =
                    config.get("precision").and_then(Value::as_u64).ok_or_else(|| Error::invalid("NoOp", "precision", "is required"))?;
                Quantizer::NoOp {
                    precision: u32::try_from(p).map_err(|_| Error::invalid("NoOp", "precision", format!("{p} is too large")))?,
                }
            }
            c => match (default_of(c), custom::by_name(c)) {
                (Some(q), _) => q,
                (None, Some(custom)) => return Ok(Quantizer::Custom(custom)),
                (None, None) => {
                    return Err(Error::Unknown {
                        kind: "quantizer class",
                        name: format!("{c} (not built in, and no CustomQuantizer of that name)"),
                    })
                }
            },
        };
        match &mut q {
            Quantizer::SteSign { clip_value } | Quantizer::SteHeaviside { clip_value } | Quantizer::MagnitudeAwareSign { clip_value } => {
                if let Some(c) = f32_of("clip_value")? {
                    *clip_value = c;
                }
            }
            Quantizer::SwishSign { beta } => {
                if let Some(b) = f32_of("beta")? {
                    *beta = b.ok_or_else(|| Error::invalid("SwishSign", "beta", "must be a number"))?;
                }
            }
            Quantizer::SteTern { threshold_value, ternary_weight_networks, clip_value } => {
                if let Some(t) = f32_of("threshold_value")? {
                    *threshold_value = t.ok_or_else(|| Error::invalid("SteTern", "threshold_value", "must be a number"))?;
                }
                if let Some(t) = config.get("ternary_weight_networks") {
                    *ternary_weight_networks =
                        t.as_bool().ok_or_else(|| Error::invalid("SteTern", "ternary_weight_networks", format!("{t} is not a boolean")))?;
                }
                if let Some(c) = f32_of("clip_value")? {
                    *clip_value = c;
                }
            }
            Quantizer::DoReFa { k_bit, mode } => {
                if let Some(k) = config.get("k_bit") {
                    let k = k.as_i64().ok_or_else(|| Error::invalid("DoReFa", "k_bit", format!("{k} is not an integer")))?;
                    *k_bit = u32::try_from(k).map_err(|_| Error::invalid("DoReFa", "k_bit", format!("{k} must be between 1 and 24")))?;
                }
                if let Some(m) = config.get("mode") {
                    *mode = match m.as_str() {
                        Some("activations") => DoReFaMode::Activations,
                        Some("weights") => DoReFaMode::Weights,
                        _ => return Err(Error::invalid("DoReFa", "mode", format!("{m} is not \"activations\" or \"weights\""))),
                    };
                }
            }
            Quantizer::ApproxSign | Quantizer::NoOp { .. } | Quantizer::Custom(_) => {}
        }
        // A parameter this quantizer does not have would otherwise be silently dropped.
        let known: &[&str] = match &q {
            Quantizer::SteSign { .. } | Quantizer::SteHeaviside { .. } | Quantizer::MagnitudeAwareSign { .. } => &["clip_value"],
            Quantizer::SwishSign { .. } => &["beta"],
            Quantizer::SteTern { .. } => &["threshold_value", "ternary_weight_networks", "clip_value"],
            Quantizer::DoReFa { .. } => &["k_bit", "mode"],
            Quantizer::NoOp { .. } => &["precision"],
            Quantizer::ApproxSign | Quantizer::Custom(_) => &[],
        };
        if let Some(k) =
            config.keys().find(|k| !known.contains(&k.as_str()) && !["name", "trainable", "dtype", "metrics"].contains(&k.as_str()))
        {
            return Err(Error::invalid(class_static(class), "config", format!("`{k}` is not a parameter of {class}")));
        }
        q.validate()?;
        Ok(q)
    }
}

/// Larq's "starved weights" warning for a weight whose quantizer is binary but which has no
/// constraint (its latent values can drift beyond the straight-through window, where the
/// gradient is always zero). `constraint_argument` names the layer argument, e.g.
/// `"kernel_constraint"`. Returns the message, which is also logged as a warning.
pub fn starved_weights_warning(quantizer: Option<&Quantizer>, constraint_argument: &str, has_constraint: bool) -> Option<String> {
    if !quantizer.is_some_and(Quantizer::is_binary) || has_constraint {
        return None;
    }
    let message = format!(
        "Using a binary weight quantizer without setting `{constraint_argument}` may result in starved weights (where the gradient is always zero)."
    );
    log::warn!("{message}");
    Some(message)
}

/// Error sites need a `'static` name; map a class name read from JSON to the catalogue's.
fn class_static(class: &str) -> &'static str {
    CATALOGUE.iter().find(|(c, _)| *c == class).map_or("quantizer", |(c, _)| c)
}
