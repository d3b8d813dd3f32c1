//! Keras layers that apply tensor functions instead of weights, in functional models:
//! `TFOpLambda`, which Keras writes for a `tf.*` call or a tensor operator in model code (`x + y`
//! is `tf.__operators__.add`), its arguments stored with each call; and `Lambda`, whose body is
//! marshalled Python bytecode that bitgrad cannot run, so it runs a body registered for it
//! ([`register_lambda`]), Larq Zoo's own built in ([`ZOO_LAMBDAS`]).

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::graph::{BinaryOp, Graph, ReduceOp, UnaryOp, ValueId};

/// A call's arguments as Keras stores them: the tensors of the first argument (a list for
/// `tf.concat`), and the other arguments by name, tensors among them replaced by their values.
#[derive(Clone, Debug, Default)]
pub struct CallArgs {
    /// The first argument's tensors.
    pub inputs: Vec<ValueId>,
    /// The other arguments, by parameter name.
    pub kwargs: Map<String, Value>,
    /// The values of the tensors inside `kwargs`, which hold `{"tensor": i}` in their place.
    pub tensors: Vec<ValueId>,
    /// How many outputs the model reads from the call (a split's parts).
    pub outputs: usize,
}

impl CallArgs {
    fn arg(&self, name: &str) -> Option<&Value> {
        self.kwargs.get(name).filter(|v| !v.is_null())
    }

    /// Argument `name` as a tensor: a tensor, or a number broadcast as a scalar.
    fn tensor(&self, g: &mut Graph, function: &str, name: &str) -> Result<ValueId> {
        match self.arg(name) {
            Some(Value::Object(o)) if o.contains_key("tensor") => {
                let i = o["tensor"].as_u64().unwrap_or(u64::MAX) as usize;
                self.tensors.get(i).copied().ok_or_else(|| bad(function, name, "names no tensor"))
            }
            Some(Value::Number(n)) => g.fill([1], n.as_f64().unwrap_or(f64::NAN) as f32),
            Some(v) => Err(bad(function, name, &format!("{v} is not a tensor or a number"))),
            None => Err(bad(function, name, "is required")),
        }
    }

    fn number(&self, function: &str, name: &str, default: Option<f64>) -> Result<f64> {
        match self.arg(name) {
            Some(v) => v.as_f64().ok_or_else(|| bad(function, name, &format!("{v} is not a number"))),
            None => default.ok_or_else(|| bad(function, name, "is required")),
        }
    }

    fn integers(&self, function: &str, name: &str) -> Result<Option<Vec<i64>>> {
        match self.arg(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(Some(vec![n.as_i64().ok_or_else(|| bad(function, name, "is not an integer"))?])),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_i64().ok_or_else(|| bad(function, name, &format!("{v} is not an integer"))))
                .collect::<Result<_>>()
                .map(Some),
            Some(v) => Err(bad(function, name, &format!("{v} is not a list of integers"))),
        }
    }
}

fn bad(function: &str, arg: &str, why: &str) -> Error {
    Error::invalid("TFOpLambda", "arguments", format!("`tf.{function}` argument `{arg}`: {why}"))
}

/// An axis as TensorFlow counts it (negative from the end) for a tensor of `rank`.
fn axis(function: &str, a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    if a < -r || a >= r {
        return Err(bad(function, "axis", &format!("{a} is not an axis of a rank-{rank} tensor")));
    }
    Ok(a.rem_euclid(r) as usize)
}

/// The `tf.*` functions (as `TFOpLambda` names them, without `tf.`) bitgrad runs.
pub const TF_FUNCTIONS: &[&str] = &[
    "__operators__.add",
    "math.add",
    "math.subtract",
    "math.multiply",
    "math.truediv",
    "math.divide",
    "math.maximum",
    "math.minimum",
    "math.negative",
    "math.abs",
    "nn.relu",
    "math.sigmoid",
    "nn.sigmoid",
    "math.tanh",
    "nn.tanh",
    "nn.softmax",
    "clip_by_value",
    "math.reduce_mean",
    "math.reduce_sum",
    "math.reduce_max",
    "reshape",
    "transpose",
    "compat.v1.transpose",
    "concat",
    "split",
    "pad",
    "compat.v1.pad",
    "identity",
    "image.resize",
];

/// Records `tf.<function>` on one call's arguments; the outputs (several for `split`).
pub fn tf_function(g: &mut Graph, function: &str, args: &CallArgs) -> Result<Vec<ValueId>> {
    let first = |i: usize| args.inputs.get(i).copied().ok_or_else(|| bad(function, "x", "the call has no tensor argument"));
    let binary = |g: &mut Graph, op: BinaryOp| -> Result<Vec<ValueId>> {
        let x = first(0)?;
        let y = args.tensor(g, function, "y")?;
        Ok(vec![g.binary(op, x, y)?])
    };
    let unary = |g: &mut Graph, op: UnaryOp| -> Result<Vec<ValueId>> { Ok(vec![g.unary(op, first(0)?)?]) };
    let rank = |g: &Graph, x: ValueId| g.value(x).shape.rank();
    match function {
        "__operators__.add" | "math.add" => binary(g, BinaryOp::Add),
        "math.subtract" => binary(g, BinaryOp::Sub),
        "math.multiply" => binary(g, BinaryOp::Mul),
        "math.truediv" | "math.divide" => binary(g, BinaryOp::Div),
        "math.maximum" => binary(g, BinaryOp::Max),
        "math.minimum" => binary(g, BinaryOp::Min),
        "math.negative" => unary(g, UnaryOp::Neg),
        "math.abs" => unary(g, UnaryOp::Abs),
        "nn.relu" => unary(g, UnaryOp::Relu),
        "math.sigmoid" | "nn.sigmoid" => unary(g, UnaryOp::Sigmoid),
        "math.tanh" | "nn.tanh" => unary(g, UnaryOp::Tanh),
        "identity" => Ok(vec![first(0)?]),
        "nn.softmax" => {
            let x = first(0)?;
            let a = args.integers(function, "axis")?.and_then(|a| a.first().copied()).unwrap_or(-1);
            if axis(function, a, rank(g, x))? != rank(g, x) - 1 {
                return Err(bad(function, "axis", "only the last axis is supported"));
            }
            Ok(vec![g.softmax(x)?])
        }
        "clip_by_value" => {
            let x = first(0)?;
            let lo = args.number(function, "clip_value_min", None)? as f32;
            let hi = args.number(function, "clip_value_max", None)? as f32;
            Ok(vec![g.unary(UnaryOp::Clip(lo, hi), x)?])
        }
        "math.reduce_mean" | "math.reduce_sum" | "math.reduce_max" => {
            let x = first(0)?;
            let r = rank(g, x);
            let axes: Vec<usize> = match args.integers(function, "axis")? {
                None => (0..r).collect(),
                Some(a) => a.into_iter().map(|a| axis(function, a, r)).collect::<Result<_>>()?,
            };
            let keep = args.arg("keepdims").and_then(Value::as_bool).unwrap_or(false);
            let op = match function {
                "math.reduce_mean" => ReduceOp::Mean,
                "math.reduce_sum" => ReduceOp::Sum,
                _ => ReduceOp::Max,
            };
            Ok(vec![g.reduce(op, x, &axes, keep)?])
        }
        "reshape" => {
            let x = first(0)?;
            let dims = g.value(x).shape.dims().to_vec();
            let target = args.integers(function, "shape")?.ok_or_else(|| bad(function, "shape", "is required"))?;
            let known: i64 = target.iter().filter(|&&d| d >= 0).product();
            let total = dims.iter().product::<usize>() as i64;
            let shape = target
                .iter()
                .map(|&d| match d {
                    -1 if known > 0 && total % known == 0 => Ok((total / known) as usize),
                    d if d >= 0 => Ok(d as usize),
                    d => Err(bad(function, "shape", &format!("{d} cannot be inferred for {dims:?}"))),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(vec![g.reshape(x, shape)?])
        }
        "transpose" | "compat.v1.transpose" => {
            let x = first(0)?;
            let r = rank(g, x);
            let perm: Vec<usize> = match args.integers(function, "perm")? {
                None => (0..r).rev().collect(),
                Some(p) => p.into_iter().map(|a| axis(function, a, r)).collect::<Result<_>>()?,
            };
            Ok(vec![g.permute(x, &perm)?])
        }
        "concat" => {
            let parts = &args.inputs;
            let x = first(0)?;
            let a =
                args.integers(function, "axis")?.and_then(|a| a.first().copied()).ok_or_else(|| bad(function, "axis", "is required"))?;
            Ok(vec![g.concat(parts, axis(function, a, rank(g, x))?)?])
        }
        "split" => {
            let x = first(0)?;
            let a = args.integers(function, "axis")?.and_then(|a| a.first().copied()).unwrap_or(0);
            let sizes = args.integers(function, "num_or_size_splits")?.ok_or_else(|| bad(function, "num_or_size_splits", "is required"))?;
            split(g, x, axis(function, a, rank(g, x))?, &sizes, function)
        }
        "pad" | "compat.v1.pad" => {
            let x = first(0)?;
            let mode = args.arg("mode").and_then(Value::as_str).unwrap_or("CONSTANT");
            if !mode.eq_ignore_ascii_case("constant") || args.number(function, "constant_values", Some(0.0))? != 0.0 {
                return Err(bad(function, "mode", "only zero padding (mode CONSTANT, constant_values 0) is supported"));
            }
            let Some(Value::Array(rows)) = args.arg("paddings") else { return Err(bad(function, "paddings", "is required")) };
            let pads = rows
                .iter()
                .map(|r| match r.as_array().map(|p| p.iter().map(Value::as_u64).collect::<Vec<_>>()).as_deref() {
                    Some([Some(a), Some(b)]) => Ok((*a as usize, *b as usize)),
                    _ => Err(bad(function, "paddings", &format!("{r} is not a (before, after) pair"))),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(vec![g.pad(x, &pads)?])
        }
        "image.resize" => {
            use crate::graph::resize::ResizeMethod;
            let x = first(0)?;
            let size = match args.integers(function, "size")?.as_deref() {
                Some(&[h, w]) if h > 0 && w > 0 => [h as usize, w as usize],
                Some(s) => return Err(bad(function, "size", &format!("{s:?} is not a (height, width) pair of positive sizes"))),
                None => return Err(bad(function, "size", "is required")),
            };
            let method = args.arg("method").and_then(Value::as_str).unwrap_or("bilinear");
            let method = ResizeMethod::from_name(method)
                .map_err(|_| bad(function, "method", &format!("`{method}` is not one of {}", ResizeMethod::NAMES.join(", "))))?;
            for flag in ["preserve_aspect_ratio", "antialias"] {
                if args.arg(flag).and_then(Value::as_bool).unwrap_or(false) {
                    return Err(bad(function, flag, "only false (the default) is supported"));
                }
            }
            Ok(vec![g.resize_images(x, size, method)?])
        }
        other => Err(Error::unknown("TFOpLambda function", &format!("tf.{other}"), TF_FUNCTIONS.iter().map(|f| format!("tf.{f}")))),
    }
}

/// `tf.split`: `sizes` one count (equal parts) or the size of each part along `axis`.
fn split(g: &mut Graph, x: ValueId, axis: usize, sizes: &[i64], function: &str) -> Result<Vec<ValueId>> {
    let dims = g.value(x).shape.dims().to_vec();
    let n = dims[axis];
    let parts: Vec<usize> = match sizes {
        [k] if *k > 0 && n % *k as usize == 0 => vec![n / *k as usize; *k as usize],
        [k] => return Err(bad(function, "num_or_size_splits", &format!("{k} parts do not divide an axis of {n}"))),
        s if s.iter().all(|&p| p >= 0) && s.iter().sum::<i64>() == n as i64 => s.iter().map(|&p| p as usize).collect(),
        s => return Err(bad(function, "num_or_size_splits", &format!("{s:?} do not add up to the axis' {n}"))),
    };
    let mut start = 0;
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        let mut at = vec![0; dims.len()];
        at[axis] = start;
        let mut shape = dims.clone();
        shape[axis] = p;
        out.push(g.slice(x, &at, shape)?);
        start += p;
    }
    Ok(out)
}

/// What runs a `Lambda` layer: its inputs (one, or the list it was called on) and how many
/// outputs the model reads from it; returns the outputs.
pub type LambdaBody = dyn Fn(&mut Graph, &[ValueId], &LambdaCall) -> Result<Vec<ValueId>> + Send + Sync;

/// What a [`LambdaBody`] knows of the layer it runs.
#[derive(Clone, Debug)]
pub struct LambdaCall {
    /// The layer's name.
    pub layer: String,
    /// The Python module of its function (the `module` field of its config).
    pub module: String,
    /// Its `arguments` (extra keyword arguments Keras passes to the function).
    pub arguments: Map<String, Value>,
    /// How many outputs the model reads from the call.
    pub outputs: usize,
}

/// Bodies a program registered, by layer name or by the function's name.
static LAMBDAS: Mutex<Vec<(String, Arc<LambdaBody>)>> = Mutex::new(Vec::new());

/// Registers the body of the `Lambda` layers named `key` (or whose function is named `key`),
/// as Keras' `custom_objects` supplies code to `load_model`. A key already registered is an
/// error.
pub fn register_lambda(
    key: &str,
    body: impl Fn(&mut Graph, &[ValueId], &LambdaCall) -> Result<Vec<ValueId>> + Send + Sync + 'static,
) -> Result<()> {
    let mut lambdas = LAMBDAS.lock().unwrap_or_else(|e| e.into_inner());
    if lambdas.iter().any(|(k, _)| k == key) {
        return Err(Error::invalid("register_lambda", "key", format!("a Lambda body is already registered for `{key}`")));
    }
    lambdas.push((key.to_string(), Arc::new(body)));
    Ok(())
}

/// Larq Zoo's Lambda layers, matched by the function's module and the end of the layer's name:
/// (module, name suffix, what it computes).
pub const ZOO_LAMBDAS: &[(&str, &str, &str)] = &[
    ("larq_zoo.core.utils", "_split", "`utils.TFOpLayer(tf.split, groups, axis=-1)`: equal parts along the last axis, as many as the model reads"),
    ("larq_zoo.core.utils", "_concat", "`utils.TFOpLayer(tf.concat, axis=-1)`: the inputs joined along the last axis"),
    ("larq_zoo.literature.meliusnet", "_merge", "MeliusNet's improvement merge `x[0] + tf.pad(x[1], ...)`: the second input zero-padded in front along the channels to the first's, added to it"),
    ("larq_zoo.literature.real_to_bin_nets", "_out", "Real-to-Binary Net's block output `lambda x: x`: the identity"),
];

/// The body for a Lambda layer: one a program registered for its name or function name, else
/// Larq Zoo's by module and name.
pub fn lambda_body(call: &LambdaCall, function: Option<&str>) -> Option<Arc<LambdaBody>> {
    let lambdas = LAMBDAS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, b)) = lambdas.iter().find(|(k, _)| *k == call.layer || Some(k.as_str()) == function) {
        return Some(b.clone());
    }
    let (_, suffix, _) = ZOO_LAMBDAS.iter().find(|(m, s, _)| *m == call.module && call.layer.ends_with(s))?;
    let body: Arc<LambdaBody> = match *suffix {
        "_split" => Arc::new(|g: &mut Graph, x: &[ValueId], c: &LambdaCall| {
            let rank = g.value(x[0]).shape.rank();
            split(g, x[0], rank - 1, &[c.outputs.max(1) as i64], "split")
        }),
        "_concat" => Arc::new(|g: &mut Graph, x: &[ValueId], _: &LambdaCall| {
            let rank = g.value(x[0]).shape.rank();
            Ok(vec![g.concat(x, rank - 1)?])
        }),
        "_merge" => Arc::new(|g: &mut Graph, x: &[ValueId], c: &LambdaCall| {
            let [a, b] = x else {
                return Err(Error::invalid(
                    "Lambda",
                    "inputs",
                    format!("layer `{}`: the merge takes two inputs, not {}", c.layer, x.len()),
                ));
            };
            let (da, db) = (g.value(*a).shape.dims().to_vec(), g.value(*b).shape.dims().to_vec());
            let last = da.len() - 1;
            if da.len() != db.len() || db[last] > da[last] {
                return Err(Error::shapes(
                    "Lambda",
                    &da,
                    &db,
                    format!("layer `{}`: the second input must not have more channels", c.layer),
                ));
            }
            let mut pads = vec![(0, 0); da.len()];
            pads[last] = (da[last] - db[last], 0);
            let padded = g.pad(*b, &pads)?;
            Ok(vec![g.add(*a, padded)?])
        }),
        _ => Arc::new(|_: &mut Graph, x: &[ValueId], _: &LambdaCall| Ok(x.to_vec())),
    };
    Some(body)
}

/// A `TFOpLambda` or `Lambda` layer of a functional model.
#[derive(Clone, Debug)]
pub struct FunctionLayer {
    /// The layer's name.
    pub name: String,
    /// What it runs.
    pub kind: FunctionKind,
    /// Its identity in the model.
    pub id: crate::layers::LayerId,
}

/// What a [`FunctionLayer`] runs.
#[derive(Clone, Debug)]
pub enum FunctionKind {
    /// `TFOpLambda`: `tf.<function>`.
    Tf(String),
    /// `Lambda`: a registered body.
    Lambda {
        /// The `module` of its function.
        module: String,
        /// The function's name, for a named function (not a lambda).
        function: Option<String>,
        /// Its `arguments`.
        arguments: Map<String, Value>,
    },
}

impl FunctionLayer {
    /// The Keras class.
    pub fn class(&self) -> &'static str {
        match self.kind {
            FunctionKind::Tf(_) => "TFOpLambda",
            FunctionKind::Lambda { .. } => "Lambda",
        }
    }

    /// Records one call.
    pub fn call(&self, g: &mut Graph, args: &CallArgs) -> Result<Vec<ValueId>> {
        match &self.kind {
            FunctionKind::Tf(f) => tf_function(g, f, args),
            FunctionKind::Lambda { module, function, arguments } => {
                let call =
                    LambdaCall { layer: self.name.clone(), module: module.clone(), arguments: arguments.clone(), outputs: args.outputs };
                let body = lambda_body(&call, function.as_deref()).ok_or_else(|| {
                    Error::invalid(
                        "Lambda",
                        "function",
                        format!(
                            "layer `{}`: a Lambda layer's body is Python bytecode, which bitgrad cannot run; register its body as graph code with \
                             `bitgrad::io::keras::functions::register_lambda(\"{}\", |g, inputs, call| ...)` before reading the model \
                             (Larq Zoo's own Lambda layers are built in)",
                            self.name,
                            function.as_deref().unwrap_or(&self.name)
                        ),
                    )
                })?;
                body(g, &args.inputs, &call)
            }
        }
    }
}
