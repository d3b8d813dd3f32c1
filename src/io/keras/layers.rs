//! One Keras layer config to a bitgrad layer, by class name. Each reader takes every field it
//! understands; [`Fields::done`] then rejects the rest, naming the layer and the field.

use serde_json::Value;

use super::fields::{kind, Fields};
use super::objects::{activation, constraint, data_format, initializer, padding, quantizer, regularizer};
use crate::error::Result;
use crate::layers::{
    ActivationLayer, BatchNormalization, DepthwiseOptions, Dropout, Flatten, GlobalPooling, Initializer, Layer, Merge, MergeKind, Pooling,
    PoolingKind, QuantArgs, QuantConv, QuantConvTranspose, QuantDense, QuantDepthwiseConv, QuantLocallyConnected, QuantSeparableConv,
    Reshape, ZeroPadding,
};

/// What a layer entry of a model config becomes.
pub enum Imported {
    /// A model input of this per-sample shape (`InputLayer`).
    Input(Vec<usize>),
    /// A layer of one input.
    Layer(Box<dyn Layer>),
    /// A layer of several inputs.
    Merge(Merge),
}

/// A parsed layer entry: its name, what it becomes, and the per-sample input shape its config
/// declares (`batch_input_shape`), if any.
pub struct Entry {
    /// The layer name.
    pub name: String,
    /// The Keras class name.
    pub class: String,
    /// The layer.
    pub layer: Imported,
    /// A declared input shape without the batch axis.
    pub input_shape: Option<Vec<usize>>,
}

/// Reads one element of a model config's `layers` list.
pub fn entry(file: &str, index: usize, v: &Value) -> Result<Entry> {
    let mut outer = Fields::new(file, format!("layer {index}"), v)?;
    let class = outer.string("class_name", "")?;
    if class.is_empty() {
        return Err(outer.error("class_name", "is required"));
    }
    let config = outer.required("config")?;
    let name = match config.get("name") {
        Some(Value::String(n)) => n.clone(),
        _ => return Err(outer.error("config", "has no string `name`")),
    };
    let mut f = Fields::new(file, format!("layer `{name}` ({class})"), &config)?;
    f.ignore(&["name"]);
    f.only("trainable", &[true.into()])?;
    dtype(&mut f)?;
    let input_shape = match f.take("batch_input_shape").or_else(|| f.take("batch_shape")) {
        Some(v) => Some(per_sample(&f, "batch_input_shape", &v)?),
        None => None,
    };
    let layer = layer(&class, &name, &mut f, &input_shape)?;
    f.done()?;
    Ok(Entry { name, class, layer, input_shape })
}

/// `dtype`: float32, as a string or a mixed-precision policy object.
fn dtype(f: &mut Fields) -> Result<()> {
    match f.take("dtype") {
        None => Ok(()),
        Some(Value::String(s)) if s == "float32" => Ok(()),
        Some(Value::Object(o)) if o.get("config").and_then(|c| c.get("name")) == Some(&Value::String("float32".into())) => Ok(()),
        Some(v) => Err(f.error("dtype", format!("{} is not supported (bitgrad computes in float32)", kind(&v)))),
    }
}

/// A batch shape `[null, d...]` without its batch axis; every other size must be known.
fn per_sample(f: &Fields, field: &str, v: &Value) -> Result<Vec<usize>> {
    let dims = f.shape(field, v)?;
    if dims.is_empty() {
        return Err(f.error(field, "is empty"));
    }
    dims[1..].iter().map(|d| d.ok_or_else(|| f.error(field, "has an unknown size besides the batch axis"))).collect()
}

/// The spatial rank in a class name ending `1D`, `2D` or `3D` (before an optional suffix).
fn rank_of(class: &str, suffix: &str) -> Option<usize> {
    let stem = class.strip_suffix(suffix)?;
    match stem.as_bytes() {
        [.., b'1', b'D'] => Some(1),
        [.., b'2', b'D'] => Some(2),
        [.., b'3', b'D'] => Some(3),
        _ => None,
    }
}

fn layer(class: &str, name: &str, f: &mut Fields, input_shape: &Option<Vec<usize>>) -> Result<Imported> {
    let quant = class.starts_with("Quant");
    let base = class.strip_prefix("Quant").unwrap_or(class);
    let one = |l: Box<dyn Layer>| Ok(Imported::Layer(l));
    match base {
        "InputLayer" => {
            f.only("sparse", &[false.into()])?;
            f.only("ragged", &[false.into()])?;
            f.only("optional", &[false.into()])?;
            input_shape.clone().map(Imported::Input).ok_or_else(|| f.error("batch_input_shape", "is required"))
        }
        "Dense" => {
            let mut d = QuantDense::new(name, f.required_count("units")?);
            d.args = quant_args(f, quant)?;
            one(Box::new(d))
        }
        "Conv1D" | "Conv2D" | "Conv3D" => {
            let r = rank_of(base, "").expect("matched");
            let mut c = QuantConv::new(name, f.required_count("filters")?, &f.counts("kernel_size", r, None)?);
            c.strides = f.counts("strides", r, Some(1))?;
            c.padding = padding(f, r == 1)?;
            c.data_format = data_format(f)?;
            c.dilation_rate = f.counts("dilation_rate", r, Some(1))?;
            c.groups = f.count("groups", 1)?;
            c.pad_values = f.number("pad_values", 0.0)?;
            c.args = quant_args(f, quant)?;
            one(Box::new(c))
        }
        "Conv1DTranspose" | "Conv2DTranspose" | "Conv3DTranspose" => {
            let r = rank_of(base, "Transpose").expect("matched");
            let mut c = QuantConvTranspose::new(name, f.required_count("filters")?, &f.counts("kernel_size", r, None)?);
            c.strides = f.counts("strides", r, Some(1))?;
            c.padding = padding(f, false)?;
            c.output_padding = match f.take("output_padding") {
                None => None,
                Some(v) => Some(f.as_counts("output_padding", &v, r)?),
            };
            c.data_format = data_format(f)?;
            c.dilation_rate = f.counts("dilation_rate", r, Some(1))?;
            f.only("groups", &[1.into()])?;
            c.args = quant_args(f, quant)?;
            one(Box::new(c))
        }
        "LocallyConnected1D" | "LocallyConnected2D" => {
            let r = rank_of(base, "").expect("matched");
            let mut l = QuantLocallyConnected::new(name, f.required_count("filters")?, &f.counts("kernel_size", r, None)?);
            l.strides = f.counts("strides", r, Some(1))?;
            l.padding = padding(f, false)?;
            l.data_format = data_format(f)?;
            l.implementation = match f.count("implementation", 1)? {
                n @ 1..=3 => n as u32,
                n => return Err(f.error("implementation", format!("{n} must be 1, 2 or 3"))),
            };
            l.args = quant_args(f, quant)?;
            one(Box::new(l))
        }
        "DepthwiseConv1D" | "DepthwiseConv2D" => {
            let r = rank_of(base, "").expect("matched");
            let opts = depthwise_options(f, r, quant)?;
            one(Box::new(QuantDepthwiseConv { name: name.to_string(), opts }))
        }
        "SeparableConv1D" | "SeparableConv2D" => {
            let r = rank_of(base, "").expect("matched");
            let filters = f.required_count("filters")?;
            let opts = depthwise_options(f, r, quant)?;
            let mut s = QuantSeparableConv::new(name, filters, opts);
            s.pointwise_quantizer = if quant { quantizer(f, "pointwise_quantizer")? } else { None };
            s.pointwise_initializer = initializer(f, "pointwise_initializer", Initializer::GlorotUniform)?;
            s.pointwise_constraint = constraint(f, "pointwise_constraint")?;
            s.pointwise_regularizer = regularizer(f, "pointwise_regularizer")?;
            one(Box::new(s))
        }
        _ if quant => Err(f.error("class_name", format!("`{class}` is not a Larq layer bitgrad supports"))),
        "BatchNormalization" => one(Box::new(batch_normalization(name, f)?)),
        "MaxPooling1D" | "MaxPooling2D" | "MaxPooling3D" | "AveragePooling1D" | "AveragePooling2D" | "AveragePooling3D" => {
            let r = rank_of(base, "").expect("matched");
            let kind = if base.starts_with("Max") { PoolingKind::Max } else { PoolingKind::Average };
            let mut p = Pooling::new(name, kind, &f.counts("pool_size", r, Some(2))?);
            if let Some(s) = f.take("strides") {
                p.strides = f.as_counts("strides", &s, r)?;
            }
            p.padding = padding(f, false)?;
            p.data_format = data_format(f)?;
            one(Box::new(p))
        }
        "GlobalMaxPooling1D"
        | "GlobalMaxPooling2D"
        | "GlobalMaxPooling3D"
        | "GlobalAveragePooling1D"
        | "GlobalAveragePooling2D"
        | "GlobalAveragePooling3D" => {
            let kind = if base.starts_with("GlobalMax") { PoolingKind::Max } else { PoolingKind::Average };
            let mut p = GlobalPooling::new(name, kind);
            p.data_format = data_format(f)?;
            p.keepdims = f.boolean("keepdims", false)?;
            one(Box::new(p))
        }
        "Flatten" => one(Box::new(Flatten { name: name.to_string(), data_format: data_format(f)? })),
        "Reshape" => {
            let v = f.required("target_shape")?;
            let Value::Array(items) = &v else { return Err(f.error("target_shape", format!("expected a list, found {}", kind(&v)))) };
            let target_shape = items
                .iter()
                .map(|d| match d.as_i64() {
                    Some(-1) => Ok(None),
                    _ => f.as_count("target_shape", d).map(Some),
                })
                .collect::<Result<Vec<_>>>()?;
            one(Box::new(Reshape { name: name.to_string(), target_shape }))
        }
        "ZeroPadding1D" | "ZeroPadding2D" | "ZeroPadding3D" => {
            let r = rank_of(base, "").expect("matched");
            let v = f.take("padding").unwrap_or(Value::from(1));
            let padding = zero_padding(f, &v, r)?;
            let data_format = data_format(f)?;
            one(Box::new(ZeroPadding { name: name.to_string(), padding, data_format }))
        }
        "Activation" => {
            // Keras requires it; a missing one must not quietly become linear.
            if !f.has("activation") {
                return Err(f.error("activation", "is required"));
            }
            one(Box::new(ActivationLayer::new(name, activation(f)?)))
        }
        "Dropout" => {
            f.only("noise_shape", &[])?;
            let rate = f.number("rate", 0.5)?;
            let seed = f.integer("seed", 0)? as u64;
            one(Box::new(Dropout::new(name, rate, seed)))
        }
        "Add" => Ok(Imported::Merge(Merge::new(name, MergeKind::Add))),
        "Multiply" => Ok(Imported::Merge(Merge::new(name, MergeKind::Multiply))),
        "Concatenate" => Ok(Imported::Merge(Merge::new(name, MergeKind::Concatenate { axis: f.integer("axis", -1)? as isize }))),
        _ => Err(f.error("class_name", format!("`{class}` is not a layer bitgrad supports"))),
    }
}

/// The arguments Dense, Conv, ConvTranspose and LocallyConnected share; the quantizers only for
/// Larq's layers.
fn quant_args(f: &mut Fields, quant: bool) -> Result<QuantArgs> {
    let mut a = QuantArgs { activation: activation(f)?, use_bias: f.boolean("use_bias", true)?, ..QuantArgs::default() };
    a.kernel_initializer = initializer(f, "kernel_initializer", Initializer::GlorotUniform)?;
    a.bias_initializer = initializer(f, "bias_initializer", Initializer::Zeros)?;
    a.kernel_constraint = constraint(f, "kernel_constraint")?;
    a.bias_constraint = constraint(f, "bias_constraint")?;
    a.kernel_regularizer = regularizer(f, "kernel_regularizer")?;
    a.bias_regularizer = regularizer(f, "bias_regularizer")?;
    a.activity_regularizer = regularizer(f, "activity_regularizer")?;
    // bitgrad's own field, written by the packed export (see `QuantArgs::output_scale`).
    a.output_scale = f.boolean("output_scale", false)?;
    if quant {
        a.input_quantizer = quantizer(f, "input_quantizer")?;
        a.kernel_quantizer = quantizer(f, "kernel_quantizer")?;
        a.metrics = metrics(f)?;
    }
    Ok(a)
}

/// Larq's per-layer `metrics` list, if given.
fn metrics(f: &mut Fields) -> Result<Option<Vec<String>>> {
    match f.take("metrics") {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|m| m.as_str().map(str::to_string).ok_or_else(|| f.error("metrics", format!("expected names, found {}", kind(m)))))
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(v) => Err(f.error("metrics", format!("expected a list, found {}", kind(&v)))),
    }
}

/// The depthwise stage of depthwise and separable layers.
fn depthwise_options(f: &mut Fields, r: usize, quant: bool) -> Result<DepthwiseOptions> {
    let mut o = DepthwiseOptions::new(&f.counts("kernel_size", r, None)?);
    f.only("groups", &[1.into()])?;
    // Keras' separable layers inherit these from Conv without creating a `kernel`: unused.
    f.ignore(&["kernel_initializer", "kernel_constraint", "kernel_regularizer"]);
    o.strides = f.counts("strides", r, Some(1))?;
    o.padding = padding(f, r == 1)?;
    o.dilation_rate = f.counts("dilation_rate", r, Some(1))?;
    o.data_format = data_format(f)?;
    o.depth_multiplier = f.count("depth_multiplier", 1)?;
    o.activation = activation(f)?;
    o.use_bias = f.boolean("use_bias", true)?;
    o.depthwise_initializer = initializer(f, "depthwise_initializer", Initializer::GlorotUniform)?;
    if initializer(f, "bias_initializer", Initializer::Zeros)? != Initializer::Zeros {
        return Err(f.error("bias_initializer", "only zeros is supported for depthwise and separable layers"));
    }
    o.depthwise_constraint = constraint(f, "depthwise_constraint")?;
    if constraint(f, "bias_constraint")?.is_some() {
        return Err(f.error("bias_constraint", "is not supported for depthwise and separable layers"));
    }
    o.depthwise_regularizer = regularizer(f, "depthwise_regularizer")?;
    o.bias_regularizer = regularizer(f, "bias_regularizer")?;
    o.activity_regularizer = regularizer(f, "activity_regularizer")?;
    if quant {
        o.pad_values = f.number("pad_values", 0.0)?;
        o.input_quantizer = quantizer(f, "input_quantizer")?;
        o.depthwise_quantizer = quantizer(f, "depthwise_quantizer")?;
        o.metrics = metrics(f)?;
    }
    Ok(o)
}

fn batch_normalization(name: &str, f: &mut Fields) -> Result<BatchNormalization> {
    let mut b = BatchNormalization::new(name);
    b.axis = match f.take("axis") {
        None => -1,
        Some(Value::Array(a)) if a.len() == 1 => a[0].as_i64().ok_or_else(|| f.error("axis", "expected an integer"))? as isize,
        Some(v) => v.as_i64().ok_or_else(|| f.error("axis", format!("expected one axis, found {}", kind(&v))))? as isize,
    };
    b.momentum = f.number("momentum", 0.99)?;
    b.epsilon = f.number("epsilon", 1e-3)?;
    b.center = f.boolean("center", true)?;
    b.scale = f.boolean("scale", true)?;
    b.beta_initializer = initializer(f, "beta_initializer", Initializer::Zeros)?;
    b.gamma_initializer = initializer(f, "gamma_initializer", Initializer::Ones)?;
    b.moving_mean_initializer = initializer(f, "moving_mean_initializer", Initializer::Zeros)?;
    b.moving_variance_initializer = initializer(f, "moving_variance_initializer", Initializer::Ones)?;
    b.beta_regularizer = regularizer(f, "beta_regularizer")?;
    b.gamma_regularizer = regularizer(f, "gamma_regularizer")?;
    for c in ["beta_constraint", "gamma_constraint"] {
        if constraint(f, c)?.is_some() {
            return Err(f.error(c, "is not supported"));
        }
    }
    f.only("renorm", &[false.into()])?;
    f.only("synchronized", &[false.into()])?;
    f.only("virtual_batch_size", &[])?;
    f.only("adjustment", &[])?;
    f.only("renorm_clipping", &[])?;
    // Without renorm these change nothing; `fused` picks TensorFlow's kernel, not the math.
    f.ignore(&["renorm_momentum", "fused"]);
    Ok(b)
}

/// ZeroPadding's `padding`: one count for all sides, one per axis, or (before, after) pairs.
fn zero_padding(f: &Fields, v: &Value, r: usize) -> Result<Vec<(usize, usize)>> {
    match v {
        Value::Array(items) if items.len() == r && items.iter().all(Value::is_array) => items
            .iter()
            .map(|p| {
                let c = f.as_counts("padding", p, 2)?;
                Ok((c[0], c[1]))
            })
            .collect(),
        // ZeroPadding1D writes its (before, after) pair as a flat list of two.
        Value::Array(items) if r == 1 && items.len() == 2 => {
            let c = f.as_counts("padding", v, 2)?;
            Ok(vec![(c[0], c[1])])
        }
        _ => Ok(f.as_counts("padding", v, r)?.into_iter().map(|p| (p, p)).collect()),
    }
}
