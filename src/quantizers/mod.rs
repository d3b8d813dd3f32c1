//! The Larq quantizer catalogue: SteSign, ApproxSign, SteHeaviside, SwishSign,
//! MagnitudeAwareSign, SteTern, DoReFa and NoOp, with Larq's names, string aliases, defaults,
//! precisions and Keras JSON form. A quantizer applies to any tensor (as a layer's input or
//! kernel quantizer, as an activation, or on its own) by recording its statistic, if any, and a
//! [`Op::Quantize`](crate::Op::Quantize) node (a custom quantizer's `Op::CustomQuantize`) whose
//! gradient is the quantizer's pseudo-gradient.
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
pub mod function;

pub use custom::CustomQuantizer;
pub use function::FunctionQuantizer;

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
    /// A quantizer made of graph ops, as a Keras custom object function (see
    /// [`FunctionQuantizer`]; Larq Zoo's `xnor_weight_scale` and
    /// `magnitude_aware_sign_unclipped` are built in).
    Function(Arc<FunctionQuantizer>),
}

/// The default instance of every built-in quantizer, in Larq's catalogue order; NoOp has no
/// default (its precision is required) and is read from its config only.
const DEFAULTS: &[Quantizer] = &[
    Quantizer::SteSign { clip_value: Some(1.0) },
    Quantizer::ApproxSign,
    Quantizer::SteHeaviside { clip_value: Some(1.0) },
    Quantizer::SwishSign { beta: 5.0 },
    Quantizer::MagnitudeAwareSign { clip_value: Some(1.0) },
    Quantizer::SteTern { threshold_value: 0.05, ternary_weight_networks: false, clip_value: Some(1.0) },
    Quantizer::DoReFa { k_bit: 2, mode: DoReFaMode::Activations },
    Quantizer::NoOp { precision: 1 },
];

/// Every built-in quantizer's Keras class name and snake_case alias: names a custom quantizer
/// may not take.
pub(crate) fn builtin_names() -> impl Iterator<Item = &'static str> {
    DEFAULTS.iter().flat_map(|q| {
        let mut q = Quantizer::clone(q);
        let spec = q.spec();
        let names: Vec<&'static str> = std::iter::once(spec.class).chain(spec.alias).chain(spec.also.iter().copied()).collect();
        names
    })
}

/// Everything bitgrad knows about one quantizer, from its one arm of [`Quantizer::spec`]: Larq's
/// names and precision, its parameters (read and written by name, for Keras JSON), and what it
/// records: an elementwise function (a [`QuantFn`], whose CPU reference and WGSL live with the
/// quantize op family) and the statistic that function reads.
struct Spec<'a> {
    /// Keras class name (a custom quantizer's is its own name, see [`Quantizer::class_name`]).
    class: &'static str,
    /// Larq's string alias (`None`: only the class name, or a config, names it).
    alias: Option<&'static str>,
    /// Other class names Keras JSON may use.
    also: &'static [&'static str],
    /// Bits per value.
    precision: u32,
    /// The forward value is ±1 (what the packed XNOR kernels take).
    sign: bool,
    /// The parameters, by their Keras names.
    params: Vec<(&'static str, Param<'a>)>,
    /// What `apply` records.
    function: Function,
}

/// A quantizer parameter, borrowed from its variant.
enum Param<'a> {
    /// A straight-through window: a finite number >= 0, or `None` (JSON null).
    Clip(&'a mut Option<f32>),
    /// A finite number.
    Number(&'a mut f32),
    /// A finite number >= 0.
    NonNegative(&'a mut f32),
    /// A boolean.
    Flag(&'a mut bool),
    /// A count of bits in `range`.
    Bits(&'a mut u32, std::ops::RangeInclusive<u32>),
    /// A precision in bits (at least 1), required in a config.
    Precision(&'a mut u32),
    /// DoReFa's mode, `"activations"` or `"weights"`.
    Mode(&'a mut DoReFaMode),
}

/// The op a quantizer records.
enum Function {
    /// A built-in function, reading `statistic` when it needs one.
    Builtin(QuantFn, Option<Statistic>),
    /// A user-defined function.
    Custom(Arc<crate::graph::CustomFn>),
    /// Graph ops.
    Graph(Arc<FunctionQuantizer>),
}

/// Statistics quantizers compute with graph reductions before their function; no gradient flows
/// into them (Larq stops gradients there).
#[derive(Clone, Copy)]
enum Statistic {
    /// mean |x| over every axis but the last: one scale per output channel (for a rank-1
    /// tensor, no axis is reduced and the scale is |x| itself).
    ChannelMeanAbs,
    /// The ternary-weight-networks threshold `0.7 * sum|x| / size`, in that order, as Larq.
    TernaryThreshold,
    /// max |tanh(x)| over the whole tensor (DoReFa's weights mode).
    MaxAbsTanh,
}

impl Statistic {
    fn record(self, g: &mut Graph, x: ValueId) -> Result<ValueId> {
        let shape = g.value(x).shape.clone();
        let all: Vec<usize> = (0..shape.rank()).collect();
        match self {
            Statistic::ChannelMeanAbs => {
                let abs = g.unary(UnaryOp::Abs, x)?;
                if shape.rank() > 1 {
                    g.mean(abs, &all[..shape.rank() - 1], false)
                } else {
                    Ok(abs)
                }
            }
            Statistic::TernaryThreshold => {
                let abs = g.unary(UnaryOp::Abs, x)?;
                let sum = g.sum(abs, &all, false)?;
                let sum = g.reshape(sum, [1])?;
                let scaled = g.scale(sum, 0.7)?;
                let size = g.fill([1], shape.numel() as f32)?;
                g.binary(BinaryOp::Div, scaled, size)
            }
            Statistic::MaxAbsTanh => {
                let t = g.unary(UnaryOp::Tanh, x)?;
                let abs = g.unary(UnaryOp::Abs, t)?;
                let m = g.max(abs, &all, false)?;
                g.reshape(m, [1])
            }
        }
    }
}

impl Quantizer {
    /// The quantizer's whole definition: adding a quantizer is a variant, its default in
    /// [`DEFAULTS`], and its arm here (plus, for a new elementwise function, a [`QuantFn`]
    /// variant with its WGSL cases).
    fn spec(&mut self) -> Spec<'_> {
        use Param::*;
        let builtin = |f, stat| Function::Builtin(f, stat);
        let (class, alias, also, precision, sign, params, function): (
            &'static str,
            _,
            &'static [&'static str],
            _,
            _,
            Vec<(&'static str, Param)>,
            _,
        ) = match self {
            Quantizer::SteSign { clip_value } => {
                let f = builtin(QuantFn::SteSign { clip: *clip_value }, None);
                ("SteSign", Some("ste_sign"), &[], 1, true, vec![("clip_value", Clip(clip_value))], f)
            }
            Quantizer::ApproxSign => ("ApproxSign", Some("approx_sign"), &[], 1, true, vec![], builtin(QuantFn::ApproxSign, None)),
            Quantizer::SteHeaviside { clip_value } => {
                let f = builtin(QuantFn::SteHeaviside { clip: *clip_value }, None);
                ("SteHeaviside", Some("ste_heaviside"), &[], 1, false, vec![("clip_value", Clip(clip_value))], f)
            }
            Quantizer::SwishSign { beta } => {
                let f = builtin(QuantFn::SwishSign { beta: *beta }, None);
                ("SwishSign", Some("swish_sign"), &[], 1, true, vec![("beta", Number(beta))], f)
            }
            Quantizer::MagnitudeAwareSign { clip_value } => {
                let f = builtin(QuantFn::ScaledSign { clip: *clip_value }, Some(Statistic::ChannelMeanAbs));
                ("MagnitudeAwareSign", Some("magnitude_aware_sign"), &[], 1, false, vec![("clip_value", Clip(clip_value))], f)
            }
            Quantizer::SteTern { threshold_value, ternary_weight_networks, clip_value } => {
                let f = if *ternary_weight_networks {
                    builtin(QuantFn::SteTern { threshold: None, clip: *clip_value }, Some(Statistic::TernaryThreshold))
                } else {
                    builtin(QuantFn::SteTern { threshold: Some(*threshold_value), clip: *clip_value }, None)
                };
                let params = vec![
                    ("threshold_value", NonNegative(threshold_value)),
                    ("ternary_weight_networks", Flag(ternary_weight_networks)),
                    ("clip_value", Clip(clip_value)),
                ];
                ("SteTern", Some("ste_tern"), &[], 2, false, params, f)
            }
            Quantizer::DoReFa { k_bit, mode } => {
                let levels = (1u32 << (*k_bit).min(24)) - 1;
                let f = match mode {
                    DoReFaMode::Activations => builtin(QuantFn::DoReFaActivations { levels }, None),
                    DoReFaMode::Weights => builtin(QuantFn::DoReFaWeights { levels }, Some(Statistic::MaxAbsTanh)),
                };
                let precision = *k_bit;
                (
                    "DoReFa",
                    Some("dorefa_quantizer"),
                    &["DoReFaQuantizer"],
                    precision,
                    false,
                    vec![("k_bit", Bits(k_bit, 1..=24)), ("mode", Mode(mode))],
                    f,
                )
            }
            Quantizer::NoOp { precision } => {
                let p = *precision;
                (
                    "NoOp",
                    Some("noop"),
                    &["NoOpQuantizer"],
                    p,
                    false,
                    vec![("precision", Precision(precision))],
                    builtin(QuantFn::Identity, None),
                )
            }
            Quantizer::Custom(c) => ("quantizer", None, &[], c.precision(), false, vec![], Function::Custom(c.function())),
            Quantizer::Function(f) => ("function", None, &[], f.precision(), false, vec![], Function::Graph(f.clone())),
        };
        Spec { class, alias, also, precision, sign, params, function }
    }

    /// A quantizer from its Larq alias (`"ste_sign"`, `"approx_sign"`, `"ste_heaviside"`,
    /// `"swish_sign"`, `"magnitude_aware_sign"`, `"ste_tern"`, `"dorefa_quantizer"`) or Keras
    /// class name, with Larq's defaults. NoOp has no default (its precision is required).
    pub fn from_name(name: &str) -> Result<Self> {
        let found = DEFAULTS.iter().find(|q| {
            let mut q = Quantizer::clone(q);
            let s = q.spec();
            s.alias == Some(name) || s.class == name
        });
        match found {
            Some(Quantizer::NoOp { .. }) => {
                Err(Error::invalid("NoOp", "precision", "is required: use Quantizer::NoOp { precision } or a config"))
            }
            Some(q) => Ok(q.clone()),
            None => {
                custom::by_name(name).map(Quantizer::Custom).or_else(|| function::by_name(name).map(Quantizer::Function)).ok_or_else(|| {
                    let builtin = DEFAULTS.iter().filter_map(|q| Quantizer::clone(q).spec().alias).map(str::to_string);
                    Error::unknown("quantizer", name, builtin.chain(custom::names()).chain(function::names()))
                })
            }
        }
    }

    /// The Keras class name.
    pub fn class_name(&self) -> &str {
        match self {
            Quantizer::Custom(c) => c.name(),
            Quantizer::Function(f) => f.name(),
            q => Quantizer::clone(q).spec().class,
        }
    }

    /// Bits per value, as Larq's `precision`.
    pub fn precision(&self) -> u32 {
        self.clone().spec().precision
    }

    /// Larq's notion of a binary quantizer: precision 1 and not a NoOp.
    pub fn is_binary(&self) -> bool {
        self.precision() == 1 && !matches!(self, Quantizer::NoOp { .. })
    }

    /// The built-in elementwise function the quantizer records (`None` for custom and graph-op
    /// quantizers).
    pub fn builtin_function(&self) -> Option<QuantFn> {
        match self.clone().spec().function {
            Function::Builtin(f, _) => Some(f),
            _ => None,
        }
    }

    /// True when the output is ±1 (what packed binary kernels can take).
    pub fn is_binary_sign(&self) -> bool {
        self.clone().spec().sign
    }

    /// Checks the parameters; errors name the quantizer and the parameter.
    pub fn validate(&self) -> Result<()> {
        let mut q = self.clone();
        let spec = q.spec();
        let name = spec.class;
        // Straight-through windows first, then the rest in order (as the catalogue always has).
        let (clips, others): (Vec<_>, Vec<_>) = spec.params.iter().partition(|(_, p)| matches!(p, Param::Clip(_)));
        for (key, param) in clips.into_iter().chain(others) {
            match param {
                Param::Clip(Some(v)) if !(v.is_finite() && *v >= 0.0) => {
                    return Err(Error::invalid(name, key, format!("{v} must be a finite number >= 0 (or None)")));
                }
                Param::NonNegative(v) if !(v.is_finite() && **v >= 0.0) => {
                    return Err(Error::invalid(name, key, format!("{v} must be a finite number >= 0")));
                }
                Param::Number(v) if !v.is_finite() => return Err(Error::invalid(name, key, format!("{v} must be finite"))),
                Param::Bits(v, range) if !range.contains(v) => {
                    return Err(Error::invalid(name, key, format!("{v} must be between {} and {}", range.start(), range.end())));
                }
                Param::Precision(v) if **v == 0 => return Err(Error::invalid(name, key, "must be at least 1")),
                _ => {}
            }
        }
        Ok(())
    }

    /// Records the quantizer applied to `x` and returns the quantized value. Its gradient is the
    /// quantizer's pseudo-gradient; statistics (scales, thresholds) receive none.
    pub fn apply(&self, g: &mut Graph, x: ValueId) -> Result<ValueId> {
        self.validate()?;
        match self.clone().spec().function {
            Function::Builtin(f, statistic) => {
                let stat = statistic.map(|s| s.record(g, x)).transpose()?;
                g.quantize(f, x, stat)
            }
            Function::Custom(f) => g.custom_quantize(f, x),
            Function::Graph(f) => f.record(g, x),
        }
    }

    /// Applies the quantizer to a layer's weight `w` and records its metrics: `metrics` as given
    /// (Larq's `metrics` argument), or those of the enclosing
    /// [`metrics_scope`](crate::metrics::metrics_scope) when `None`. Metric state is named
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
        if let Quantizer::Function(f) = self {
            // As Keras writes a function: by its registered name.
            return json!({ "class_name": "function", "config": f.name() });
        }
        let mut q = self.clone();
        let spec = q.spec();
        let config: Map<String, Value> = spec
            .params
            .into_iter()
            .map(|(key, p)| {
                let v = match p {
                    Param::Clip(c) => json!(c),
                    Param::Number(v) | Param::NonNegative(v) => json!(v),
                    Param::Flag(b) => json!(b),
                    Param::Bits(b, _) | Param::Precision(b) => json!(b),
                    Param::Mode(m) => json!(if *m == DoReFaMode::Weights { "weights" } else { "activations" }),
                };
                (key.to_string(), v)
            })
            .collect();
        let mut v = json!({ "class_name": self.class_name(), "config": config });
        crate::text::shortest_f32s(&mut v);
        v
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
        if class == "function" {
            // A Keras custom object function, by its registered name.
            let name = v
                .get("config")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::invalid("quantizer", "config", format!("a function without a name in {v}")))?;
            return Self::from_name(name);
        }
        let empty = Map::new();
        let config = v.get("config").and_then(Value::as_object).unwrap_or(&empty);
        let builtin = DEFAULTS.iter().find(|q| {
            let mut q = Quantizer::clone(q);
            let s = q.spec();
            s.class == class || s.also.contains(&class)
        });
        let mut q = match builtin {
            Some(q) => q.clone(),
            None => match custom::by_name(class) {
                Some(custom) => return Ok(Quantizer::Custom(custom)),
                None => {
                    let builtin = DEFAULTS.iter().map(|q| q.class_name().to_string());
                    return Err(Error::unknown("quantizer class", class, builtin.chain(custom::names())));
                }
            },
        };
        let mut spec = q.spec();
        let name = spec.class;
        let keys: Vec<&'static str> = spec.params.iter().map(|(k, _)| *k).collect();
        for (key, param) in &mut spec.params {
            let Some(x) = config.get(*key) else {
                if let Param::Precision(_) = param {
                    return Err(Error::invalid(name, key, "is required"));
                }
                continue;
            };
            let number = || x.as_f64().map(|f| f as f32).ok_or_else(|| Error::invalid(name, key, format!("{x} is not a number")));
            match param {
                Param::Clip(c) => **c = if x.is_null() { None } else { Some(number()?) },
                Param::Number(v) | Param::NonNegative(v) => {
                    **v = if x.is_null() { return Err(Error::invalid(name, key, "must be a number")) } else { number()? }
                }
                Param::Flag(b) => **b = x.as_bool().ok_or_else(|| Error::invalid(name, key, format!("{x} is not a boolean")))?,
                Param::Bits(b, range) => {
                    let k = x.as_i64().ok_or_else(|| Error::invalid(name, key, format!("{x} is not an integer")))?;
                    **b = u32::try_from(k)
                        .map_err(|_| Error::invalid(name, key, format!("{k} must be between {} and {}", range.start(), range.end())))?;
                }
                Param::Precision(b) => {
                    let p = x.as_u64().ok_or_else(|| Error::invalid(name, key, "is required"))?;
                    **b = u32::try_from(p).map_err(|_| Error::invalid(name, key, format!("{p} is too large")))?;
                }
                Param::Mode(m) => {
                    **m = match x.as_str() {
                        Some("activations") => DoReFaMode::Activations,
                        Some("weights") => DoReFaMode::Weights,
                        _ => return Err(Error::invalid(name, key, format!("{x} is not \"activations\" or \"weights\""))),
                    };
                }
            }
        }
        // A parameter this quantizer does not have would otherwise be silently dropped.
        if let Some(k) =
            config.keys().find(|k| !keys.contains(&k.as_str()) && !["name", "trainable", "dtype", "metrics"].contains(&k.as_str()))
        {
            return Err(Error::invalid(name, "config", format!("`{k}` is not a parameter of {class}")));
        }
        q.validate()?;
        Ok(q)
    }
}

/// Larq's "starved weights" warning for a weight whose quantizer is binary but which has no
/// constraint (its latent values can drift beyond the straight-through window, where the
/// gradient is always zero). `constraint_argument` names the layer argument, e.g.
/// `"kernel_constraint"`. Returns the message (the model's build logs it with the layer's name).
pub fn starved_weights_warning(quantizer: Option<&Quantizer>, constraint_argument: &str, has_constraint: bool) -> Option<String> {
    if !quantizer.is_some_and(Quantizer::is_binary) || has_constraint {
        return None;
    }
    let message = format!(
        "Using a binary weight quantizer without setting `{constraint_argument}` may result in starved weights (where the gradient is always zero)."
    );
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(v: Value) -> String {
        Quantizer::from_keras(&v).unwrap_err().to_string()
    }

    /// The generic reader keeps each parameter's messages: a NoOp precision that is missing or
    /// not a count is required, one past u32 too large; parameters are read before unknown keys
    /// are refused; windows are checked before thresholds.
    #[test]
    fn keras_reading_errors_name_the_parameter() {
        for bad in [json!({}), json!({"precision": -1}), json!({"precision": null}), json!({"precision": 1.5})] {
            let e = error(json!({"class_name": "NoOp", "config": bad}));
            assert!(e.contains("precision") && e.contains("is required"), "{e}");
        }
        assert!(error(json!({"class_name": "NoOpQuantizer", "config": {"precision": 1u64 << 40}})).contains("too large"));
        assert!(error(json!({"class_name": "NoOp", "config": {"precision": 0}})).contains("at least 1"));
        let both = error(json!({"class_name": "DoReFaQuantizer", "config": {"k_bit": "two", "extra": 1}}));
        assert!(both.contains("k_bit") && both.contains("not an integer"), "{both}");
        assert!(error(json!({"class_name": "DoReFa", "config": {"k_bit": 30}})).contains("between 1 and 24"));
        assert!(error(json!({"class_name": "SteSign", "config": {"extra": 1}})).contains("`extra` is not a parameter of SteSign"));
        let tern = error(json!({"class_name": "SteTern", "config": {"threshold_value": -1.0, "clip_value": -1.0}}));
        assert!(tern.contains("clip_value"), "{tern}");
        assert!(Quantizer::from_name("noop").unwrap_err().to_string().contains("precision"));
        assert_eq!(
            Quantizer::from_keras(&json!({"class_name": "DoReFaQuantizer", "config": {"k_bit": 3, "mode": "weights"}})).unwrap(),
            Quantizer::DoReFa { k_bit: 3, mode: DoReFaMode::Weights }
        );
    }
}
