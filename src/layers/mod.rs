//! Layers: small builders that record graph nodes, own their variables, and report what a model
//! needs to know about them (weights with their precision and constraint, metrics).

pub mod activations;
pub mod arguments;
pub mod conv;
pub mod core;
pub mod dense;
pub mod depthwise;
pub mod initializers;
pub mod local;
pub mod merge;
pub mod normalization;
pub mod pooling;
pub mod prelu;
pub mod quant_args;
pub mod regularizers;
pub mod reshaping;
pub mod transpose;

pub use activations::Activation;
pub use arguments::Arg;
pub use conv::{Conv1D, Conv2D, Conv3D, QuantConv, QuantConv1D, QuantConv2D, QuantConv3D};
pub use core::{ActivationLayer, Dropout};
pub use dense::{Dense, QuantDense};
pub use depthwise::{
    DepthwiseConv2D, DepthwiseOptions, QuantDepthwiseConv, QuantDepthwiseConv2D, QuantSeparableConv, QuantSeparableConv1D,
    QuantSeparableConv2D, SeparableConv2D,
};
pub use initializers::Initializer;
pub use local::{QuantLocallyConnected, QuantLocallyConnected1D, QuantLocallyConnected2D};
pub use merge::{Add, Concatenate, Merge, MergeKind, Multiply};
pub use normalization::BatchNormalization;
pub use pooling::{
    AveragePooling1D, AveragePooling2D, AveragePooling3D, GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D,
    GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D, GlobalPooling, MaxPooling1D, MaxPooling2D, MaxPooling3D, Pooling,
    PoolingKind,
};
pub use prelu::PReLU;
pub use quant_args::{QuantArgs, QuantLayer};
pub use regularizers::Regularizer;
pub use reshaping::{Flatten, Reshape, ZeroPadding};
pub use transpose::{Conv2DTranspose, QuantConv1DTranspose, QuantConv2DTranspose, QuantConv3DTranspose, QuantConvTranspose};

use std::sync::Arc;

use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::graph::{Graph, ValueId};
use crate::metrics::FlipRatio;

/// A weight a layer created.
#[derive(Clone, Debug)]
pub struct Weight {
    /// The variable.
    pub variable: ValueId,
    /// Keras-style name, e.g. `quant_dense/kernel`.
    pub name: String,
    /// Bits the forward pass sees (the quantizer's precision, 32 for float weights).
    pub precision: u32,
    /// Applied after each optimizer update.
    pub constraint: Option<Arc<dyn Constraint>>,
    /// Updated by the optimizer (false for BatchNormalization's moving statistics).
    pub trainable: bool,
    /// A weights file may leave it out, and it keeps its initial value: the ranges of
    /// quantization-aware training, absent from the float model's weights a quantized model
    /// starts from.
    pub optional: bool,
}

/// Whether a graph is built for training or for inference (BatchNormalization and Dropout
/// differ).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics, moving-average updates, dropout.
    Training,
    /// Moving statistics, no dropout.
    #[default]
    Inference,
}

/// What building layers collects besides graph nodes.
#[derive(Clone, Debug, Default)]
pub struct BuildContext {
    /// The weights created, in order.
    pub weights: Vec<Weight>,
    /// Metrics recorded (flip ratios of quantized kernels).
    pub metrics: Vec<(String, FlipRatio)>,
    /// Warnings raised while building (also logged).
    pub warnings: Vec<String>,
    /// Training or inference.
    pub mode: Mode,
    /// Scalar regularization penalties, to be added to the loss.
    pub penalties: Vec<ValueId>,
    /// The step counter (an f32 `[1]` variable) that seeds per-step randomness, once created.
    pub step: Option<ValueId>,
    /// How many times the layer being built was applied before: 0 the first time; a shared layer
    /// applied again reuses the weights [`add_weight`] made then.
    pub application: usize,
    /// The model's seed, mixed into every initializer's per-name seed (0 keeps the per-name
    /// seeds themselves); see [`crate::models::Model::seed`].
    pub seed: u64,
    /// What [`add_weight`] asks before it makes a weight and after it quantizes one, in order:
    /// how a packed export declares its kernels, how quantization-aware training fake-quantizes
    /// (and folds BatchNormalization into) a layer's weights. See [`WeightHook`].
    pub hooks: Vec<Arc<dyn WeightHook>>,
    /// What hooks keep per build (one value per type), such as the weights they fake-quantized.
    pub extensions: Extensions,
    /// How each quantized layer's product runs, in build order (first application only).
    pub products: Vec<Product>,
}

/// How a layer's product runs, as [`crate::models::Summary::products_table`] reports it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Product {
    /// The layer.
    pub layer: String,
    /// The kernel: `xnor` (±1 x ±1, XNOR-popcount), `planes` (bit-plane products of two
    /// discrete encodings), `f32 x signs` (a float input against the kernel's sign bits) or
    /// `f32`.
    pub kernel: &'static str,
    /// The input's values as the product takes them: `±1`, `ternary`, `{0,1}`, `k-bit`, `f32`.
    pub input: String,
    /// The kernel's values: the same, and `±alpha`.
    pub weights: String,
    /// Bits per input element that training keeps of the input for the backward pass: its
    /// packed signs or planes, its packed straight-through mask, or its f32 values.
    pub saved_bits: u32,
}

impl BuildContext {
    /// Records how layer `layer`'s product runs (once, on its first application).
    pub fn record_product(&mut self, layer: &str, kernel: &'static str, input: &str, weights: &str, saved_bits: u32) {
        if self.application == 0 {
            self.products.push(Product { layer: layer.into(), kernel, input: input.into(), weights: weights.into(), saved_bits });
        }
    }
}

/// Changes what [`add_weight`] makes of a weight, for code above the layers that builds models
/// differently without the layers knowing: a packed export declares ±1 kernels as packed bits,
/// quantization-aware training fake-quantizes the weights its config names and folds a
/// BatchNormalization's scale into a kernel. Set on [`BuildContext::hooks`]; a hook sees every
/// weight, of every layer, and leaves alone those it is not about.
pub trait WeightHook: std::fmt::Debug + Send + Sync {
    /// Declares the weight `name` (`layer/weight` of `spec`) in place of the float variable
    /// [`add_weight`] would make: `Some((variable, value the forward pass uses))` is what
    /// `add_weight` returns, and a hook that creates a variable records it in
    /// [`BuildContext::weights`] itself. `existing` is the variable a shared layer's first
    /// application made, on a later one. `None` (the default) leaves the weight to `add_weight`.
    fn declare(
        &self,
        g: &mut Graph,
        ctx: &mut BuildContext,
        spec: &WeightSpec,
        name: &str,
        existing: Option<ValueId>,
    ) -> Result<Option<(ValueId, ValueId)>> {
        let _ = (g, ctx, spec, name, existing);
        Ok(None)
    }

    /// The value the forward pass uses for the weight `name` in place of `value` (the latent
    /// weight after its own quantizer); `value` itself by default.
    fn value(&self, g: &mut Graph, ctx: &mut BuildContext, spec: &WeightSpec, name: &str, value: ValueId) -> Result<ValueId> {
        let _ = (g, ctx, spec, name);
        Ok(value)
    }
}

/// What [`WeightHook`]s keep while a model is built, one value per type (a hook's own record
/// type, such as the weights quantization-aware training fake-quantized).
#[derive(Clone, Default)]
pub struct Extensions(std::collections::HashMap<std::any::TypeId, Arc<dyn std::any::Any + Send + Sync>>);

impl Extensions {
    /// The value of type `T`, if one was kept.
    pub fn get<T: std::any::Any + Send + Sync>(&self) -> Option<&T> {
        self.0.get(&std::any::TypeId::of::<T>()).and_then(|v| v.downcast_ref())
    }

    /// The value of type `T`, created with its default on first use.
    pub fn get_or_default<T: std::any::Any + Send + Sync + Default + Clone>(&mut self) -> &mut T {
        let entry = self.0.entry(std::any::TypeId::of::<T>()).or_insert_with(|| Arc::new(T::default()));
        if Arc::get_mut(entry).is_none() {
            // Shared with a clone of the context: copy it first.
            let copy: T = entry.downcast_ref::<T>().expect("kept under its own type").clone();
            *entry = Arc::new(copy);
        }
        Arc::get_mut(entry).and_then(|v| v.downcast_mut()).expect("kept under its own type, unshared")
    }
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Extensions({} kept)", self.0.len())
    }
}

impl BuildContext {
    /// A context for building in `mode`.
    pub fn new(mode: Mode) -> Self {
        BuildContext { mode, ..Default::default() }
    }

    /// The step counter variable `step` (created on first use), which training advances by one
    /// per step.
    pub fn step_counter(&mut self, g: &mut Graph) -> Result<ValueId> {
        if let Some(s) = self.step {
            return Ok(s);
        }
        let s = match g.find_variable(STEP_VARIABLE) {
            Some(s) => s,
            None => g.variable(STEP_VARIABLE, [1], crate::graph::Init::Zeros)?,
        };
        self.step = Some(s);
        Ok(s)
    }
}

/// Name of the step counter variable.
pub const STEP_VARIABLE: &str = "step";

/// How Larq's summary counts a layer's multiply-accumulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacCount {
    /// Not counted (the summary shows `?`).
    Unknown,
    /// Counted, and there are none (Flatten, BatchNormalization, 1-D/2-D pooling).
    Zero,
    /// Each non-bias weight once per output pixel (Dense, 1-D/2-D convolutions).
    PerOutputPixel,
}

/// A layer that can be added to a graph. Implement it for your own layers: `build` may record
/// any graph nodes (including other layers and custom ops with their own gradients).
pub trait Layer {
    /// The layer's name (prefix of its variables).
    fn name(&self) -> &str;
    /// Records the layer applied to `x` and returns its output.
    fn build(&self, g: &mut Graph, x: ValueId, ctx: &mut BuildContext) -> Result<ValueId>;
    /// The Keras class name, shown by the summary. The defaults of this and the methods below
    /// are the [`Layer::wrapped`] layer's, so a wrapper implements only what it changes.
    fn class(&self) -> &str {
        self.wrapped().map_or("Layer", |l| l.class())
    }
    /// Bits of the quantized input (`None`: not quantized), shown by the summary.
    fn input_precision(&self) -> Option<u32> {
        self.wrapped().and_then(|l| l.input_precision())
    }
    /// How the summary counts this layer's MACs.
    fn macs(&self) -> MacCount {
        self.wrapped().map_or(MacCount::Unknown, |l| l.macs())
    }
    /// The layer as `Any`, for code that knows concrete layer types (the Keras JSON export);
    /// `None` (the default, without a wrapped layer) for layers it cannot know.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        self.wrapped().and_then(|l| l.as_any())
    }
    /// The layer's identity, given when it was created and kept by its clones: a model applying
    /// the same identity twice shares one layer's weights, and two identities with one name are
    /// an error. `None` (the default, for layers without one) identifies the layer by its
    /// address while the model is built.
    fn id(&self) -> Option<LayerId> {
        self.wrapped().and_then(|l| l.id())
    }
    /// The layer this one wraps and builds exactly as (an annotation such as quantization-aware
    /// training's, an `input_shape`), whose Keras config it has; `None` (the default) for other
    /// layers.
    fn wrapped(&self) -> Option<&dyn Layer> {
        None
    }
    /// The per-sample input shape given to this layer (Keras' `input_shape=` argument, which a
    /// `Sequential` takes from its first layer); `None` (the default) for none.
    fn declared_input_shape(&self) -> Option<&[usize]> {
        self.wrapped().and_then(|l| l.declared_input_shape())
    }
}

/// A layer with Keras' `input_shape` argument: built exactly as `layer`, it tells a
/// `Sequential` it is first in its per-sample input shape. Made by the layers' `input_shape`.
#[derive(Clone, Debug)]
pub struct InputShaped<L> {
    /// The layer.
    pub layer: L,
    /// Per-sample input shape (no batch axis).
    pub shape: Vec<usize>,
}

impl<L: Layer> Layer for InputShaped<L> {
    fn name(&self) -> &str {
        self.layer.name()
    }
    fn build(&self, g: &mut Graph, x: ValueId, ctx: &mut BuildContext) -> Result<ValueId> {
        self.layer.build(g, x, ctx)
    }
    fn wrapped(&self) -> Option<&dyn Layer> {
        Some(&self.layer)
    }
    fn declared_input_shape(&self) -> Option<&[usize]> {
        Some(&self.shape)
    }
}

/// A layer's identity ([`Layer::id`]): a number no other layer created in this process has;
/// [`Clone`] keeps it, so a clone is the same layer (and shares its weights when applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LayerId(u64);

impl LayerId {
    /// A new identity.
    pub fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        LayerId(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

impl Default for LayerId {
    /// A new identity (so that `..Default::default()` and derived defaults give distinct ones).
    fn default() -> Self {
        LayerId::new()
    }
}

thread_local! {
    /// Automatic names given so far per prefix, and the last one given (see [`Named::named`]).
    static NAMES: std::cell::RefCell<(std::collections::HashMap<String, usize>, Option<String>)> = Default::default();
}

/// Keras' `to_snake_case` of a class name: `QuantConv2D` -> `quant_conv2d`,
/// `BatchNormalization` -> `batch_normalization`.
pub fn snake_case(class: &str) -> String {
    // Keras: re.sub("(.)([A-Z][a-z]+)", r"\1_\2"), then re.sub("([a-z])([A-Z])", r"\1_\2"), lower.
    let c: Vec<char> = class.chars().collect();
    let mut first = String::new();
    for i in 0..c.len() {
        if i > 0 && c[i].is_ascii_uppercase() && c.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()) {
            first.push('_');
        }
        first.push(c[i]);
    }
    let c: Vec<char> = first.chars().collect();
    let mut out = String::new();
    for i in 0..c.len() {
        if i > 0 && c[i].is_ascii_uppercase() && c[i - 1].is_ascii_lowercase() {
            out.push('_');
        }
        out.push(c[i]);
    }
    out.to_lowercase()
}

/// Keras' automatic name for a new layer of `class`: the class in snake_case for the first one
/// made on this thread, then `_1`, `_2`... (Keras counts per session; [`reset_names`] is its
/// `clear_session` for names).
pub fn unique_name(class: &str) -> String {
    let prefix = snake_case(class);
    NAMES.with(|n| {
        let mut n = n.borrow_mut();
        let count = n.0.entry(prefix.clone()).or_insert(0);
        let name = if *count == 0 { prefix.clone() } else { format!("{prefix}_{count}") };
        *count += 1;
        n.1 = Some(name.clone());
        name
    })
}

/// Forgets the automatic names given on this thread: the next layer of each class is named
/// after its class alone again (Keras' `tf.keras.backend.clear_session()`).
pub fn reset_names() {
    NAMES.with(|n| *n.borrow_mut() = Default::default());
}

/// `layer` named automatically as a `class` (Keras' class for the layer without quantizers:
/// `dense` for a `Dense`), its own class's automatic name given back.
pub(crate) fn auto_named_as<L: Named>(layer: L, class: &str) -> L {
    let mut layer = rename(layer, "");
    *layer.name_mut() = unique_name(class);
    layer
}

/// A layer given its automatic name ([`unique_name`] of its class).
pub(crate) fn auto_named<L: Named>(mut layer: L) -> L {
    *layer.name_mut() = unique_name(&layer.auto_class());
    layer
}

/// Layers named automatically when made, as Keras names them (`quant_dense`, `quant_dense_1`,
/// ...), or explicitly with their `named` method (Keras' `name=` argument).
pub trait Named: Sized {
    /// The name, to set.
    fn name_mut(&mut self) -> &mut String;
    /// The class the automatic name comes from.
    fn auto_class(&self) -> String;
}

/// Names `layer` `name`. Called right after the constructor, as in
/// `QuantDense::new(10).named("logits")`, it gives back the automatic name the constructor took,
/// so the next unnamed layer of the class gets it, as in Keras.
pub(crate) fn rename<L: Named>(mut layer: L, name: &str) -> L {
    let auto = std::mem::replace(layer.name_mut(), name.to_string());
    NAMES.with(|n| {
        let mut n = n.borrow_mut();
        if n.1.as_deref() == Some(auto.as_str()) {
            n.1 = None;
            if let Some(count) = n.0.get_mut(&snake_case(&layer.auto_class())) {
                *count = count.saturating_sub(1);
            }
        }
    });
    layer
}

/// [`Named`] for layer structs with a `name` field, by their Keras class.
macro_rules! named_layers {
    ($($t:ty),*) => {
        $(
            impl Named for $t {
                fn name_mut(&mut self) -> &mut String {
                    &mut self.name
                }
                fn auto_class(&self) -> String {
                    Layer::class(self).to_string()
                }
            }

            impl $t {
                /// Names the layer (Keras' `name`; by default Keras' automatic name, see
                /// [`unique_name`]).
                pub fn named(self, name: &str) -> Self {
                    rename(self, name)
                }

                /// Gives the layer Keras' `input_shape` (per sample, no batch axis): as the first
                /// layer of a `Sequential`, it sets the model's input.
                pub fn input_shape(self, shape: &[usize]) -> InputShaped<Self> {
                    InputShaped { layer: self, shape: shape.to_vec() }
                }
            }
        )*
    };
}

named_layers!(
    QuantDense,
    QuantConv,
    QuantConvTranspose,
    QuantLocallyConnected,
    QuantSeparableConv,
    QuantDepthwiseConv,
    ActivationLayer,
    Dropout,
    BatchNormalization,
    Pooling,
    GlobalPooling,
    Flatten,
    Reshape,
    ZeroPadding,
    PReLU
);

impl Named for Merge {
    fn name_mut(&mut self) -> &mut String {
        &mut self.name
    }
    fn auto_class(&self) -> String {
        self.class().to_string()
    }
}

impl Merge {
    /// Names the layer (Keras' `name`; by default Keras' automatic name).
    pub fn named(self, name: &str) -> Self {
        rename(self, name)
    }
}

/// The summary's input precision of a layer with this input quantizer.
pub(crate) fn precision_of(q: &Option<crate::quantizers::Quantizer>) -> Option<u32> {
    q.as_ref().map(crate::quantizers::Quantizer::precision)
}

/// How a layer declares one of its weights (custom layers use it with [`add_weight`]).
pub struct WeightSpec<'a> {
    /// The layer's name.
    pub layer: &'a str,
    /// The weight's name within the layer (`kernel`, `depthwise_kernel`, `bias`, ...).
    pub weight: &'a str,
    /// Its shape.
    pub shape: crate::Shape,
    /// Its initializer.
    pub initializer: Initializer,
    /// Its quantizer, if any.
    pub quantizer: Option<&'a crate::quantizers::Quantizer>,
    /// Its constraint, if any.
    pub constraint: Option<Arc<dyn Constraint>>,
    /// The layer argument naming the constraint, for Larq's starved-weights warning.
    pub constraint_argument: &'a str,
    /// Quantizer metrics requested by the layer (`None`: the enclosing scope's).
    pub metrics: Option<&'a [String]>,
    /// Its regularizer, if any.
    pub regularizer: Option<Regularizer>,
    /// Updated by the optimizer (false for statistics such as BatchNormalization's).
    pub trainable: bool,
}

impl<'a> WeightSpec<'a> {
    /// A trainable float weight `layer/weight`: no quantizer, constraint, regularizer or
    /// metrics (set fields on the result for more).
    pub fn plain(layer: &'a str, weight: &'a str, shape: impl Into<crate::Shape>, initializer: Initializer) -> Self {
        WeightSpec {
            layer,
            weight,
            shape: shape.into(),
            initializer,
            quantizer: None,
            constraint: None,
            constraint_argument: "",
            metrics: None,
            regularizer: None,
            trainable: true,
        }
    }
}

/// Creates the weight's variable, records it (precision, constraint) and any warning, applies
/// its quantizer with metrics, and returns (latent variable, value the forward pass uses).
///
/// The context's [`WeightHook`]s may declare the weight instead (a packed export's ±1 kernel is a
/// `u32` variable of packed signs in [`packed_kernel_shape`], returned with its ±1 values) and
/// change the value the forward pass uses (quantization-aware training).
pub fn add_weight(g: &mut Graph, ctx: &mut BuildContext, spec: WeightSpec) -> Result<(ValueId, ValueId)> {
    let name = format!("{}/{}", spec.layer, spec.weight);
    let existing = match ctx.application {
        0 => None,
        _ => ctx.weights.iter().find(|w| w.name == name).map(|w| w.variable),
    };
    let hooks = ctx.hooks.clone();
    for hook in &hooks {
        if let Some(declared) = hook.declare(g, ctx, &spec, &name, existing)? {
            return Ok(declared);
        }
    }
    if let Some(w) = existing {
        let (w, wq) = reuse_weight(g, &spec, &name, w)?;
        return Ok((w, hooked_value(g, ctx, &spec, &name, wq)?));
    }
    let w = g.variable(
        &name,
        spec.shape.clone(),
        spec.initializer.init(&spec.shape, seed_for(&name) ^ ctx.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
    )?;
    ctx.weights.push(Weight {
        variable: w,
        name: name.clone(),
        precision: spec.quantizer.map_or(32, crate::quantizers::Quantizer::precision),
        constraint: spec.constraint.clone(),
        trainable: spec.trainable,
        optional: false,
    });
    if let Some(r) = spec.regularizer {
        // Keras regularizes the latent weight, not its quantized value.
        let penalty = r.penalty(g, w)?;
        ctx.penalties.push(penalty);
    }
    if let Some(warning) = crate::quantizers::starved_weights_warning(spec.quantizer, spec.constraint_argument, spec.constraint.is_some()) {
        ctx.warnings.push(format!("layer `{}`: {warning}", spec.layer));
    }
    let wq = match spec.quantizer {
        None => w,
        Some(q) => {
            let metrics: Option<Vec<&str>> = spec.metrics.map(|m| m.iter().map(String::as_str).collect());
            let (wq, flips) = q.apply_to_kernel(g, w, &name, metrics.as_deref())?;
            ctx.metrics.extend(flips.into_iter().map(|f| (format!("flip_ratio/{name}"), f)));
            wq
        }
    };
    Ok((w, hooked_value(g, ctx, &spec, &name, wq)?))
}

/// `wq` as the context's hooks change it ([`WeightHook::value`]), in order.
fn hooked_value(g: &mut Graph, ctx: &mut BuildContext, spec: &WeightSpec, name: &str, wq: ValueId) -> Result<ValueId> {
    let hooks = ctx.hooks.clone();
    let mut wq = wq;
    for hook in &hooks {
        wq = hook.value(g, ctx, spec, name, wq)?;
    }
    Ok(wq)
}

/// Where a packed export keeps a ±1 kernel of `shape` `[d0, .., d(r-2), out]`: the output axis
/// first, then the other axes with the signs of the last of them packed 32 to a word (bit set =
/// -1): `[out, d0, .., words(d(r-2))]`. A dense kernel `[K, N]` becomes `[N, words(K)]` and a
/// convolution's `[k.., ci, co]` becomes `[co, k.., words(ci)]`: the operands the XNOR-popcount
/// products take, so they read the file's bits as they are.
pub fn packed_kernel_shape(shape: &crate::Shape) -> crate::Shape {
    let d = shape.dims();
    let r = d.len();
    let mut p = vec![d[r - 1]];
    p.extend(&d[..r - 2]);
    p.push(crate::graph::op::words_for(d[r - 2]));
    crate::Shape::new(p)
}

/// The ±1 kernel of `shape` from its packed signs (see [`packed_kernel_shape`]).
pub(crate) fn unpack_kernel(g: &mut Graph, bits: ValueId, shape: &crate::Shape) -> Result<ValueId> {
    let r = shape.rank();
    let signs = g.bit_unpack(bits, shape.dims()[r - 2], crate::graph::PackMode::Sign)?; // [out, d0, .., d(r-2)]
    let perm: Vec<usize> = (1..r).chain([0]).collect();
    g.permute(signs, &perm)
}

/// The kernel a layer's own binary product packs: the latent weights, or in a packed model (where
/// `w` holds packed bits in another layout) their ±1 values `signs`.
pub(crate) fn binary_operand(g: &Graph, w: ValueId, signs: ValueId) -> ValueId {
    match g.value(w).dtype {
        crate::DType::U32 => signs,
        _ => w,
    }
}

/// A shared layer's weight on a later application: the same variable, quantized again for this
/// use; its penalty, metrics and warnings were recorded the first time (Keras adds a weight's
/// regularization loss once however often the layer is called).
fn reuse_weight(g: &mut Graph, spec: &WeightSpec, name: &str, w: ValueId) -> Result<(ValueId, ValueId)> {
    let had = g.value(w).shape.clone();
    if had != spec.shape {
        return Err(Error::ShapeMismatch {
            op: "shared layer",
            lhs: spec.shape.dims().to_vec(),
            rhs: had.dims().to_vec(),
            reason: format!(
                "applied again, layer `{}` needs `{name}` of shape {:?}, but its first application made it {:?}",
                spec.layer, spec.shape, had
            ),
        });
    }
    match spec.quantizer {
        Some(q) => Ok((w, q.apply_to_kernel(g, w, name, Some(&[]))?.0)),
        None => Ok((w, w)),
    }
}

/// A layer's per-channel bias `layer/bias`.
pub(crate) struct Bias<'a> {
    /// The layer's name.
    pub layer: &'a str,
    /// Channels.
    pub channels: usize,
    /// `Some(spatial axes)` when the channel axis is second (channels-first), `None` when last.
    pub channels_first_spatial: Option<usize>,
    /// Its initializer.
    pub initializer: Initializer,
    /// Its constraint, if any.
    pub constraint: Option<Arc<dyn Constraint>>,
    /// Its regularizer, if any.
    pub regularizer: Option<Regularizer>,
    /// Updated by the optimizer (Keras' `trainable`).
    pub trainable: bool,
}

/// Creates the bias and adds it to `y` along the channel axis.
pub(crate) fn add_bias(g: &mut Graph, ctx: &mut BuildContext, y: ValueId, bias: Bias) -> Result<ValueId> {
    let spec = WeightSpec {
        constraint: bias.constraint,
        constraint_argument: "bias_constraint",
        regularizer: bias.regularizer,
        trainable: bias.trainable,
        ..WeightSpec::plain(bias.layer, "bias", [bias.channels], bias.initializer)
    };
    let b = channel_weight(g, ctx, spec, bias.channels_first_spatial)?;
    g.add(y, b)
}

/// Creates a per-channel weight `[C]` and returns it shaped to broadcast along the channel axis
/// (last, or second with `channels_first_spatial` = `Some(spatial axes)`).
pub(crate) fn channel_weight(
    g: &mut Graph,
    ctx: &mut BuildContext,
    spec: WeightSpec,
    channels_first_spatial: Option<usize>,
) -> Result<ValueId> {
    let channels = spec.shape.dims()[0];
    let (w, _) = add_weight(g, ctx, spec)?;
    along_channels(g, w, channels, channels_first_spatial)
}

/// A per-channel vector `v` (`[channels]`) shaped to broadcast along the channel axis: as it is
/// when channels are last, `[channels, 1, ..]` with `Some(spatial axes)` when they are second.
pub(crate) fn along_channels(g: &mut Graph, v: ValueId, channels: usize, channels_first_spatial: Option<usize>) -> Result<ValueId> {
    match channels_first_spatial {
        None => Ok(v),
        Some(r) => g.reshape(v, std::iter::once(channels).chain(std::iter::repeat_n(1, r)).collect::<Vec<_>>()),
    }
}

/// A stable seed for a variable, from its name (FNV-1a), so that initialisation does not
/// depend on build order.
pub(crate) fn seed_for(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}
