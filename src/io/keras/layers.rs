//! One Keras layer config to a bitgrad layer, by class name. Each reader takes every field it
//! understands; [`Fields::done`] then rejects the rest, naming the layer and the field.

use std::any::{Any, TypeId};

use serde_json::{json, Map, Value};

use super::export;
use super::fields::{kind, Fields};
use super::objects::{activation, constraint, data_format, initializer, padding, quantizer, regularizer};
use crate::error::Result;
use crate::layers::{
    ActivationLayer, BatchNormalization, DepthwiseOptions, Dropout, Flatten, GlobalPooling, Initializer, Layer, Merge, MergeKind, PReLU,
    Pooling, PoolingKind, QuantArgs, QuantConv, QuantConvTranspose, QuantDense, QuantDepthwiseConv, QuantLocallyConnected,
    QuantSeparableConv, Reshape, ZeroPadding,
};

/// What a layer entry of a model config becomes.
pub enum Imported {
    /// A model input of this per-sample shape (`InputLayer`).
    Input(Vec<usize>),
    /// A layer of one input.
    Layer(Box<dyn Layer>),
    /// A layer of several inputs.
    Merge(Merge),
    /// A `TFOpLambda` or `Lambda` layer: any inputs and outputs, arguments per call.
    Function(super::functions::FunctionLayer),
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
    let trainable = f.boolean("trainable", true)?;
    dtype(&mut f)?;
    let input_shape = match f.take("batch_input_shape").or_else(|| f.take("batch_shape")) {
        Some(v) => Some(per_sample(&f, "batch_input_shape", &v)?),
        None => None,
    };
    let layer = layer(&class, &name, &mut f, &input_shape, trainable)?;
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

/// One Keras layer class (or a family of them, `Conv1D` to `Conv3D`), in one place: the Keras
/// names it answers to, whether Larq has a `Quant` form of it, how a config becomes the layer
/// and, for classes a model can hold, how the layer becomes its config again.
pub struct Class {
    /// The Keras class names, without Larq's `Quant` prefix.
    pub names: &'static [&'static str],
    /// Whether Larq's `Quant` form of the class is supported too.
    pub larq: bool,
    /// Reads a config (its fields after `name`, `trainable`, `dtype` and the input shape).
    read: fn(&Read, &mut Fields) -> Result<Imported>,
    /// The Rust type the class becomes and what writes its config fields; `None` for what is no
    /// layer object (`InputLayer`).
    write: Option<(fn() -> TypeId, Write)>,
}

/// What a class reader knows of the entry it reads.
struct Read<'a> {
    /// The Keras class name without `Quant`.
    base: &'a str,
    /// The layer name.
    name: &'a str,
    /// A Larq class (`Quant...`): its quantizer fields are read.
    quant: bool,
    /// The declared per-sample input shape.
    input_shape: &'a Option<Vec<usize>>,
    /// Keras' `trainable`: false freezes the layer's weights.
    trainable: bool,
}

/// Writes a layer's config fields after the common ones ([`export::base`]); the layer is of the
/// type its class registered.
type Write = fn(&dyn Any, &mut Map<String, Value>) -> Result<()>;

/// The layer of a class's registered type.
fn this<T: 'static>(any: &dyn Any) -> &T {
    any.downcast_ref().expect("a class writes only the type it registered")
}

fn put(c: &mut Map<String, Value>, k: &str, v: Value) {
    c.insert(k.into(), v);
}

/// Every layer class bitgrad reads and writes.
pub static CLASSES: &[Class] = &[
    Class {
        names: &["InputLayer"],
        // `QuantInputLayer` has always been read as an InputLayer; kept so.
        larq: true,
        read: |r, f| {
            f.only("sparse", &[false.into()])?;
            f.only("ragged", &[false.into()])?;
            f.only("optional", &[false.into()])?;
            r.input_shape.clone().map(Imported::Input).ok_or_else(|| f.error("batch_input_shape", "is required"))
        },
        write: None,
    },
    Class {
        names: &["Dense"],
        larq: true,
        read: |r, f| {
            let mut d = QuantDense::new(f.required_count("units")?).named(r.name);
            d.args = quant_args(f, r)?;
            one(d)
        },
        write: Some((TypeId::of::<QuantDense>, |any, c| {
            let l: &QuantDense = this(any);
            put(c, "units", json!(l.units));
            export::quant_args(c, &l.args)
        })),
    },
    Class {
        names: &["Conv1D", "Conv2D", "Conv3D"],
        larq: true,
        read: |r, f| {
            let rank = rank_of(r.base, "").expect("matched");
            let mut c = QuantConv::new(f.required_count("filters")?, &f.counts("kernel_size", rank, None)?).named(r.name);
            c.strides = f.counts("strides", rank, Some(1))?;
            c.padding = padding(f, rank == 1)?;
            c.data_format = data_format(f)?;
            c.dilation_rate = f.counts("dilation_rate", rank, Some(1))?;
            c.groups = f.count("groups", 1)?;
            c.pad_values = f.number("pad_values", 0.0)?;
            c.args = quant_args(f, r)?;
            one(c)
        },
        write: Some((TypeId::of::<QuantConv>, |any, c| {
            let l: &QuantConv = this(any);
            put(c, "filters", json!(l.filters));
            put(c, "kernel_size", json!(l.kernel_size));
            put(c, "strides", json!(l.strides));
            put(c, "padding", export::padding(&l.padding, &l.name)?);
            put(c, "data_format", export::data_format(l.data_format));
            put(c, "dilation_rate", json!(l.dilation_rate));
            put(c, "groups", json!(l.groups));
            put(c, "pad_values", json!(l.pad_values));
            export::quant_args(c, &l.args)
        })),
    },
    Class {
        names: &["Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"],
        larq: true,
        read: |r, f| {
            let rank = rank_of(r.base, "Transpose").expect("matched");
            let mut c = QuantConvTranspose::new(f.required_count("filters")?, &f.counts("kernel_size", rank, None)?).named(r.name);
            c.strides = f.counts("strides", rank, Some(1))?;
            c.padding = padding(f, false)?;
            c.output_padding = match f.take("output_padding") {
                None => None,
                Some(v) => Some(f.as_counts("output_padding", &v, rank)?),
            };
            c.data_format = data_format(f)?;
            c.dilation_rate = f.counts("dilation_rate", rank, Some(1))?;
            f.only("groups", &[1.into()])?;
            c.args = quant_args(f, r)?;
            one(c)
        },
        write: Some((TypeId::of::<QuantConvTranspose>, |any, c| {
            let l: &QuantConvTranspose = this(any);
            put(c, "filters", json!(l.filters));
            put(c, "kernel_size", json!(l.kernel_size));
            put(c, "strides", json!(l.strides));
            put(c, "padding", export::padding(&l.padding, &l.name)?);
            put(c, "output_padding", json!(l.output_padding));
            put(c, "data_format", export::data_format(l.data_format));
            put(c, "dilation_rate", json!(l.dilation_rate));
            export::quant_args(c, &l.args)
        })),
    },
    Class {
        names: &["LocallyConnected1D", "LocallyConnected2D"],
        larq: true,
        read: |r, f| {
            let rank = rank_of(r.base, "").expect("matched");
            let mut l = QuantLocallyConnected::new(f.required_count("filters")?, &f.counts("kernel_size", rank, None)?).named(r.name);
            l.strides = f.counts("strides", rank, Some(1))?;
            l.padding = padding(f, false)?;
            l.data_format = data_format(f)?;
            l.implementation = match f.count("implementation", 1)? {
                n @ 1..=3 => n as u32,
                n => return Err(f.error("implementation", format!("{n} must be 1, 2 or 3"))),
            };
            l.args = quant_args(f, r)?;
            one(l)
        },
        write: Some((TypeId::of::<QuantLocallyConnected>, |any, c| {
            let l: &QuantLocallyConnected = this(any);
            put(c, "filters", json!(l.filters));
            put(c, "kernel_size", json!(l.kernel_size));
            put(c, "strides", json!(l.strides));
            put(c, "padding", export::padding(&l.padding, &l.name)?);
            put(c, "data_format", export::data_format(l.data_format));
            put(c, "implementation", json!(l.implementation));
            export::quant_args(c, &l.args)
        })),
    },
    Class {
        names: &["DepthwiseConv1D", "DepthwiseConv2D"],
        larq: true,
        read: |r, f| {
            let rank = rank_of(r.base, "").expect("matched");
            let opts = depthwise_options(f, rank, r)?;
            one(QuantDepthwiseConv { name: r.name.to_string(), opts })
        },
        write: Some((TypeId::of::<QuantDepthwiseConv>, |any, c| {
            let l: &QuantDepthwiseConv = this(any);
            export::depthwise(c, &l.name, &l.opts)
        })),
    },
    Class {
        names: &["SeparableConv1D", "SeparableConv2D"],
        larq: true,
        read: |r, f| {
            let rank = rank_of(r.base, "").expect("matched");
            let filters = f.required_count("filters")?;
            let opts = depthwise_options(f, rank, r)?;
            let mut s = QuantSeparableConv::new(filters, opts).named(r.name);
            s.pointwise_quantizer = if r.quant { quantizer(f, "pointwise_quantizer")? } else { None };
            s.pointwise_initializer = initializer(f, "pointwise_initializer", Initializer::GlorotUniform)?;
            s.pointwise_constraint = constraint(f, "pointwise_constraint")?;
            s.pointwise_regularizer = regularizer(f, "pointwise_regularizer")?;
            one(s)
        },
        write: Some((TypeId::of::<QuantSeparableConv>, |any, c| {
            let l: &QuantSeparableConv = this(any);
            put(c, "filters", json!(l.filters));
            export::depthwise(c, &l.name, &l.opts)?;
            put(c, "pointwise_quantizer", export::quantizer(&l.pointwise_quantizer));
            put(c, "pointwise_initializer", export::initializer(&l.pointwise_initializer));
            put(c, "pointwise_constraint", l.pointwise_constraint.as_ref().map_or(Value::Null, |k| k.to_keras()));
            put(c, "pointwise_regularizer", export::regularizer(&l.pointwise_regularizer));
            Ok(())
        })),
    },
    Class {
        names: &["BatchNormalization"],
        larq: false,
        read: |r, f| one(BatchNormalization { trainable: r.trainable, ..batch_normalization(r.name, f)? }),
        write: Some((TypeId::of::<BatchNormalization>, |any, c| {
            let l: &BatchNormalization = this(any);
            put(c, "trainable", json!(l.trainable));
            put(c, "axis", json!(l.axis));
            put(c, "momentum", json!(l.momentum));
            put(c, "epsilon", json!(l.epsilon));
            put(c, "center", json!(l.center));
            put(c, "scale", json!(l.scale));
            put(c, "beta_initializer", export::initializer(&l.beta_initializer));
            put(c, "gamma_initializer", export::initializer(&l.gamma_initializer));
            put(c, "moving_mean_initializer", export::initializer(&l.moving_mean_initializer));
            put(c, "moving_variance_initializer", export::initializer(&l.moving_variance_initializer));
            put(c, "beta_regularizer", export::regularizer(&l.beta_regularizer));
            put(c, "gamma_regularizer", export::regularizer(&l.gamma_regularizer));
            Ok(())
        })),
    },
    Class {
        names: &["MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D"],
        larq: false,
        read: |r, f| {
            let rank = rank_of(r.base, "").expect("matched");
            let kind = if r.base.starts_with("Max") { PoolingKind::Max } else { PoolingKind::Average };
            let mut p = Pooling::new(kind, &f.counts("pool_size", rank, Some(2))?).named(r.name);
            if let Some(s) = f.take("strides") {
                p.strides = f.as_counts("strides", &s, rank)?;
            }
            p.padding = padding(f, false)?;
            p.data_format = data_format(f)?;
            one(p)
        },
        write: Some((TypeId::of::<Pooling>, |any, c| {
            let l: &Pooling = this(any);
            put(c, "pool_size", json!(l.pool_size));
            put(c, "strides", json!(l.strides));
            put(c, "padding", export::padding(&l.padding, &l.name)?);
            put(c, "data_format", export::data_format(l.data_format));
            Ok(())
        })),
    },
    Class {
        names: &[
            "GlobalMaxPooling1D",
            "GlobalMaxPooling2D",
            "GlobalMaxPooling3D",
            "GlobalAveragePooling1D",
            "GlobalAveragePooling2D",
            "GlobalAveragePooling3D",
        ],
        larq: false,
        read: |r, f| {
            let kind = if r.base.starts_with("GlobalMax") { PoolingKind::Max } else { PoolingKind::Average };
            let mut p = GlobalPooling::new(kind).named(r.name);
            p.data_format = data_format(f)?;
            p.keepdims = f.boolean("keepdims", false)?;
            one(p)
        },
        write: Some((TypeId::of::<GlobalPooling>, |any, c| {
            let l: &GlobalPooling = this(any);
            put(c, "data_format", export::data_format(l.data_format));
            put(c, "keepdims", json!(l.keepdims));
            Ok(())
        })),
    },
    Class {
        names: &["Flatten"],
        larq: false,
        read: |r, f| one(Flatten { data_format: data_format(f)?, ..Flatten::new().named(r.name) }),
        write: Some((TypeId::of::<Flatten>, |any, c| {
            let l: &Flatten = this(any);
            put(c, "data_format", export::data_format(l.data_format));
            Ok(())
        })),
    },
    Class {
        names: &["Reshape"],
        larq: false,
        read: |r, f| {
            let v = f.required("target_shape")?;
            let Value::Array(items) = &v else { return Err(f.error("target_shape", format!("expected a list, found {}", kind(&v)))) };
            let target_shape = items
                .iter()
                .map(|d| match d.as_i64() {
                    Some(-1) => Ok(None),
                    _ => f.as_count("target_shape", d).map(Some),
                })
                .collect::<Result<Vec<_>>>()?;
            one(Reshape { target_shape, ..Reshape::new(&[]).named(r.name) })
        },
        write: Some((TypeId::of::<Reshape>, |any, c| {
            let l: &Reshape = this(any);
            put(c, "target_shape", json!(l.target_shape.iter().map(|d| d.map_or(-1, |d| d as i64)).collect::<Vec<_>>()));
            Ok(())
        })),
    },
    Class {
        names: &["ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"],
        larq: false,
        read: |r, f| {
            let rank = rank_of(r.base, "").expect("matched");
            let v = f.take("padding").unwrap_or(Value::from(1));
            let padding = zero_padding(f, &v, rank)?;
            let data_format = data_format(f)?;
            one(ZeroPadding { padding, data_format, ..ZeroPadding::new(&[]).named(r.name) })
        },
        write: Some((TypeId::of::<ZeroPadding>, |any, c| {
            let l: &ZeroPadding = this(any);
            // Keras' ZeroPadding1D takes one (before, after) pair and no data format.
            if let [(a, b)] = l.padding[..] {
                put(c, "padding", json!([a, b]));
            } else {
                put(c, "padding", json!(l.padding.iter().map(|&(a, b)| [a, b]).collect::<Vec<_>>()));
                put(c, "data_format", export::data_format(l.data_format));
            }
            Ok(())
        })),
    },
    Class {
        names: &["Activation"],
        larq: false,
        read: |r, f| {
            // Keras requires it; a missing one must not quietly become linear.
            if !f.has("activation") {
                return Err(f.error("activation", "is required"));
            }
            one(ActivationLayer::new(activation(f)?).named(r.name))
        },
        write: Some((TypeId::of::<ActivationLayer>, |any, c| {
            let l: &ActivationLayer = this(any);
            put(c, "activation", export::activation(&l.activation, &l.name)?);
            Ok(())
        })),
    },
    Class {
        names: &["PReLU"],
        larq: false,
        read: |r, f| {
            let mut p = PReLU::new().named(r.name);
            p.alpha_initializer = initializer(f, "alpha_initializer", Initializer::Zeros)?;
            p.alpha_regularizer = regularizer(f, "alpha_regularizer")?;
            p.alpha_constraint = constraint(f, "alpha_constraint")?;
            p.shared_axes = match f.take("shared_axes") {
                None => Vec::new(),
                Some(Value::Array(a)) => a.iter().map(|d| f.as_count("shared_axes", d)).collect::<Result<_>>()?,
                Some(d) => vec![f.as_count("shared_axes", &d)?],
            };
            one(p)
        },
        write: Some((TypeId::of::<PReLU>, |any, c| {
            let l: &PReLU = this(any);
            put(c, "alpha_initializer", export::initializer(&l.alpha_initializer));
            put(c, "alpha_regularizer", export::regularizer(&l.alpha_regularizer));
            put(c, "alpha_constraint", l.alpha_constraint.as_ref().map_or(Value::Null, |k| k.to_keras()));
            put(c, "shared_axes", if l.shared_axes.is_empty() { Value::Null } else { json!(l.shared_axes) });
            Ok(())
        })),
    },
    Class {
        names: &["Softmax"],
        larq: false,
        read: |r, f| {
            f.only("axis", &[(-1).into()])?;
            one(ActivationLayer::new(crate::layers::Activation::Softmax).named(r.name))
        },
        write: None,
    },
    Class {
        names: &["ReLU"],
        larq: false,
        read: |r, f| {
            f.only("max_value", &[])?;
            f.only("negative_slope", &[0.into(), 0.0.into()])?;
            f.only("threshold", &[0.into(), 0.0.into()])?;
            one(ActivationLayer::new(crate::layers::Activation::Relu).named(r.name))
        },
        write: None,
    },
    Class {
        names: &["Dropout"],
        larq: false,
        read: |r, f| {
            f.only("noise_shape", &[])?;
            let rate = f.number("rate", 0.5)?;
            let seed = f.integer("seed", 0)? as u64;
            one(Dropout::new(rate).seed(seed).named(r.name))
        },
        write: Some((TypeId::of::<Dropout>, |any, c| {
            let l: &Dropout = this(any);
            put(c, "rate", json!(l.rate));
            put(c, "seed", json!(l.seed));
            Ok(())
        })),
    },
    Class {
        names: &["TFOpLambda"],
        larq: false,
        read: |r, f| {
            let function = f.string("function", "")?;
            if function.is_empty() {
                return Err(f.error("function", "is required"));
            }
            let kind = super::functions::FunctionKind::Tf(function);
            Ok(Imported::Function(super::functions::FunctionLayer { name: r.name.to_string(), kind, id: crate::layers::LayerId::new() }))
        },
        write: None,
    },
    Class {
        names: &["Lambda"],
        larq: false,
        read: |r, f| {
            // The body is Python (bytecode, or a named function); bitgrad runs a registered
            // body instead, so the code and the declared output shape are not read.
            let function = match f.take("function") {
                Some(Value::String(name)) => Some(name),
                _ => None,
            };
            let named = f.string("function_type", "lambda")? != "lambda";
            let module = f.string("module", "")?;
            let arguments = match f.take("arguments") {
                Some(Value::Object(m)) => m,
                None => Map::new(),
                Some(v) => return Err(f.error("arguments", format!("expected an object, found {}", kind(&v)))),
            };
            f.ignore(&["output_shape", "output_shape_type", "output_shape_module"]);
            let kind = super::functions::FunctionKind::Lambda { module, function: function.filter(|_| named), arguments };
            Ok(Imported::Function(super::functions::FunctionLayer { name: r.name.to_string(), kind, id: crate::layers::LayerId::new() }))
        },
        write: None,
    },
    Class {
        names: &["Add", "Multiply", "Concatenate"],
        larq: false,
        read: |r, f| {
            let kind = match r.base {
                "Add" => MergeKind::Add,
                "Multiply" => MergeKind::Multiply,
                _ => MergeKind::Concatenate { axis: f.integer("axis", -1)? as isize },
            };
            Ok(Imported::Merge(Merge::new(kind).named(r.name)))
        },
        write: Some((TypeId::of::<Merge>, |any, c| {
            let m: &Merge = this(any);
            if let MergeKind::Concatenate { axis } = m.kind {
                put(c, "axis", json!(axis));
            }
            Ok(())
        })),
    },
];

fn one(l: impl Layer + 'static) -> Result<Imported> {
    Ok(Imported::Layer(Box::new(l)))
}

/// The class that reads Keras class `class`, whether it is Larq's `Quant` form, and that
/// form's base name.
fn class_of(class: &str) -> (Option<&'static Class>, bool, &str) {
    let quant = class.starts_with("Quant");
    let base = class.strip_prefix("Quant").unwrap_or(class);
    (CLASSES.iter().find(|c| c.names.contains(&base)), quant, base)
}

fn layer(class: &str, name: &str, f: &mut Fields, input_shape: &Option<Vec<usize>>, trainable: bool) -> Result<Imported> {
    let (found, quant, base) = class_of(class);
    match found {
        Some(c) if c.larq || !quant => {
            let imported = (c.read)(&Read { base, name, quant, input_shape, trainable }, f)?;
            // The classes with weights read `trainable`, but PReLU, which cannot be frozen yet;
            // the rest have no weights to freeze.
            if !trainable && base == "PReLU" {
                return Err(f.error("trainable", format!("false is not supported for `{class}`")));
            }
            Ok(imported)
        }
        Some(_) => Err(f.error("class_name", format!("`{class}` is not a Larq layer bitgrad supports"))),
        None if quant => Err(f.error("class_name", format!("`{class}` is not a Larq layer bitgrad supports"))),
        None => Err(f.error("class_name", format!("`{class}` is not a layer bitgrad supports"))),
    }
}

/// The `{"class_name", "config"}` of a built-in layer (or merge) `any` of Keras class `class`
/// named `name`, through its class's writer; `None` for a type no class registered.
pub fn config_of(any: &dyn Any, class: &str, name: &str) -> Option<Result<Value>> {
    let (_, write) = CLASSES.iter().filter_map(|c| c.write).find(|(ty, _)| ty() == any.type_id())?;
    let mut c = export::base(name);
    Some(write(any, &mut c).map(|()| json!({"class_name": class, "config": c})))
}

/// The arguments Dense, Conv, ConvTranspose and LocallyConnected share; the quantizers only for
/// Larq's layers.
fn quant_args(f: &mut Fields, r: &Read) -> Result<QuantArgs> {
    let quant = r.quant;
    let mut a =
        QuantArgs { activation: activation(f)?, use_bias: f.boolean("use_bias", true)?, trainable: r.trainable, ..QuantArgs::default() };
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
fn depthwise_options(f: &mut Fields, r: usize, read: &Read) -> Result<DepthwiseOptions> {
    let quant = read.quant;
    let mut o = DepthwiseOptions::new(&f.counts("kernel_size", r, None)?);
    o.trainable = read.trainable;
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
    o.bias_initializer = initializer(f, "bias_initializer", Initializer::Zeros)?;
    o.depthwise_constraint = constraint(f, "depthwise_constraint")?;
    o.bias_constraint = constraint(f, "bias_constraint")?;
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
    let mut b = BatchNormalization::new().named(name);
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
