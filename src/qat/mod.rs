//! Quantization-aware training in the manner of TensorFlow Model Optimization: weights and
//! activations fake-quantized with TensorFlow's own kernels while training, with
//! straight-through gradients.
//!
//! - [`quantize_model`] quantizes a whole model with the default 8-bit scheme;
//!   [`quantize_annotate_layer`] marks single layers (optionally with their own
//!   [`QuantizeConfig`]), [`quantize_annotate_model`] marks all of them, and [`quantize_apply`]
//!   quantizes what is marked with a [`Scheme`] (default 8-bit, or n-bit), leaving the rest in
//!   float.
//! - Any [`Model`] works, subclassed ones included: quantization follows the layers as the model
//!   applies them ([`crate::models::Network::apply`]), so a model's own struct only has to apply
//!   its layers through the network.
//! - Larq layers keep their binary quantizers, so a model may mix binary layers with
//!   fake-quantized 8-bit ones.

pub mod config;
pub mod export;
pub mod quantizers;
pub mod scheme;

pub use config::{LayerQuantizeConfig, NoOpQuantizeConfig, QuantizeConfig};
pub use quantizers::{AllValuesQuantizer, LastValueQuantizer, MovingAverageQuantizer, Quantizer, Settings};
pub use scheme::Scheme;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::error::Result;
use crate::graph::{Graph, ValueId};
use crate::layers::{BatchNormalization, BuildContext, Layer, WeightHook, WeightSpec};
use crate::models::{build_with_calls, LayerHook, Model, Network};

/// A layer marked for quantization, with its own config or the scheme's (TF-MOT's
/// `QuantizeAnnotate` wrapper). It builds exactly as the layer it wraps.
pub struct QuantizeAnnotate {
    layer: Box<dyn Layer>,
    config: Option<Arc<dyn QuantizeConfig>>,
}

impl QuantizeAnnotate {
    /// The wrapped layer.
    pub fn layer(&self) -> &dyn Layer {
        self.layer.as_ref()
    }
}

/// Marks `layer` for [`quantize_apply`]: with `config`, or with the scheme's config for its type
/// when `None`. A custom layer becomes quantizable with its own config, or stays in float with
/// `Some(Arc::new(NoOpQuantizeConfig))`.
pub fn quantize_annotate_layer(layer: impl Layer + 'static, config: Option<Arc<dyn QuantizeConfig>>) -> QuantizeAnnotate {
    QuantizeAnnotate { layer: Box::new(layer), config }
}

impl Layer for QuantizeAnnotate {
    fn name(&self) -> &str {
        self.layer.name()
    }

    fn build(&self, g: &mut Graph, x: ValueId, ctx: &mut BuildContext) -> Result<ValueId> {
        self.layer.build(g, x, ctx)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn wrapped(&self) -> Option<&dyn Layer> {
        Some(self.layer.as_ref())
    }
}

/// A model whose every layer counts as annotated (TF-MOT's `quantize_annotate_model`).
pub struct AnnotatedModel(Box<dyn Model>);

/// Marks every layer of `model` (and its inputs) for [`quantize_apply`].
pub fn quantize_annotate_model(model: impl Model + 'static) -> AnnotatedModel {
    AnnotatedModel(Box::new(model))
}

impl Model for AnnotatedModel {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn inputs(&self) -> Vec<(String, Vec<usize>)> {
        self.0.inputs()
    }

    fn call(&self, net: &mut Network, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
        self.0.call(net, inputs)
    }

    fn lists_inputs(&self) -> bool {
        self.0.lists_inputs()
    }

    fn seed(&self) -> u64 {
        self.0.seed()
    }
}

/// What a quantized model quantizes, consulted by [`Network::apply`] and [`Network::merge`] as
/// layers are applied.
#[derive(Debug)]
pub struct QuantizePlan {
    scheme: Scheme,
    /// Every layer (and the inputs), or only annotated ones.
    all_layers: bool,
    /// Layers whose activation and output are not quantized because the one layer reading
    /// their output quantizes it after them (TF-MOT's Conv/Dense + BatchNormalization and
    /// + ReLU patterns).
    fused: HashSet<String>,
    /// BatchNormalizations folded into the layer before them, by that layer's name.
    folds: HashMap<String, Fold>,
}

/// A BatchNormalization folded into the layer before it.
#[derive(Debug)]
pub struct Fold {
    /// The BatchNormalization (its weights are created when the layer is applied).
    pub norm: BatchNormalization,
    /// The layer's output channels.
    pub channels: usize,
    /// `Some(spatial axes)` when the channel axis is second.
    pub channels_first_spatial: Option<usize>,
}

impl QuantizePlan {
    /// The config `layer` is quantized with, if any.
    pub fn config_for(&self, layer: &dyn Layer) -> Result<Option<Arc<dyn QuantizeConfig>>> {
        if let Some(a) = layer.as_any().and_then(|a| a.downcast_ref::<QuantizeAnnotate>()) {
            return match &a.config {
                Some(c) => Ok(Some(c.clone())),
                None => self.scheme.config_for(a.layer()).map(Some),
            };
        }
        match self.all_layers {
            true => self.scheme.config_for(layer).map(Some),
            false => Ok(None),
        }
    }

    /// The BatchNormalization folded into layer `layer`, if any.
    pub fn fold_for(&self, layer: &str) -> Option<&Fold> {
        self.folds.get(layer)
    }

    /// Whether layer `layer` is a BatchNormalization folded into the layer before it (it then
    /// passes its input through, quantized as its config says).
    pub fn is_folded(&self, layer: &str) -> bool {
        self.folds.values().any(|f| f.norm.name == layer)
    }

    /// The config of a merge layer, if merges are quantized.
    pub fn merge_config(&self) -> Option<Arc<dyn QuantizeConfig>> {
        self.all_layers.then(|| self.scheme.merge_config())
    }

    /// Quantizes the output `y` of layer `layer` per `config`: its activation quantizer (unless
    /// a following layer quantizes instead), then its output quantizer.
    pub fn quantize_output(
        &self,
        g: &mut Graph,
        ctx: &mut BuildContext,
        layer: &str,
        config: &dyn QuantizeConfig,
        y: ValueId,
    ) -> Result<ValueId> {
        if self.fused.contains(layer) {
            return Ok(y);
        }
        let mut y = y;
        for (q, tensor) in [(config.activation_quantizer(), "post_activation"), (config.output_quantizer(), "output")] {
            if let Some(q) = q {
                let shape = g.value(y).shape.clone();
                let state = q.build(g, ctx, &shape, layer, tensor)?;
                y = q.apply(g, ctx, y, &state)?;
            }
        }
        Ok(y)
    }
}

/// How a quantized model applies its top-level layers: a layer with a config builds with its
/// weights fake-quantized (a `FakeQuantize` weight hook) and, when a BatchNormalization is folded into it,
/// with that one's scale in its kernel and bias and its shift after it; its activation and
/// output are quantized after it.
impl LayerHook for QuantizePlan {
    fn apply(&self, g: &mut Graph, ctx: &mut BuildContext, layer: &dyn Layer, x: ValueId) -> Result<ValueId> {
        let Some(config) = self.config_for(layer)? else { return layer.build(g, x, ctx) };
        let name = layer.name();
        // A BatchNormalization folded into the layer before it passes its input through.
        let y = match (self.is_folded(name), self.fold_for(name)) {
            (true, _) => x,
            (false, fold) => {
                let folded = match fold {
                    Some(f) => Some((f, f.norm.frozen_affine(g, ctx, f.channels)?)),
                    None => None,
                };
                let hook =
                    FakeQuantize { layer: name.to_string(), config: config.clone(), fold_scale: folded.map(|(_, (scale, _))| scale) };
                ctx.hooks.push(Arc::new(hook));
                let y = layer.build(g, x, ctx);
                ctx.hooks.pop();
                match folded {
                    Some((f, (_, shift))) => {
                        let shift = crate::layers::along_channels(g, shift, f.channels, f.channels_first_spatial)?;
                        g.add(y?, shift)?
                    }
                    None => y?,
                }
            }
        };
        self.quantize_output(g, ctx, name, config.as_ref(), y)
    }

    fn merged(&self, g: &mut Graph, ctx: &mut BuildContext, name: &str, y: ValueId) -> Result<ValueId> {
        match self.merge_config() {
            Some(config) => self.quantize_output(g, ctx, name, config.as_ref(), y),
            None => Ok(y),
        }
    }
}

/// The weight hook of one layer a quantized model applies: multiplies its `kernel` and `bias`
/// by the scale of a BatchNormalization folded into it (before fake quantization), then
/// fake-quantizes the weights its config names, recording each in [`FakeQuantized`].
#[derive(Debug)]
struct FakeQuantize {
    layer: String,
    config: Arc<dyn QuantizeConfig>,
    fold_scale: Option<ValueId>,
}

/// The weights fake-quantized while a model was built: (weight name, its quantizer, its state
/// variables), kept in [`BuildContext::extensions`] (see [`fake_quantized`]).
#[derive(Clone, Debug, Default)]
pub struct FakeQuantized(pub Vec<(String, Arc<dyn Quantizer>, Vec<ValueId>)>);

/// The weights fake-quantized while the model of `ctx` was built, in order.
pub fn fake_quantized(ctx: &BuildContext) -> &[(String, Arc<dyn Quantizer>, Vec<ValueId>)] {
    ctx.extensions.get::<FakeQuantized>().map_or(&[], |f| f.0.as_slice())
}

impl WeightHook for FakeQuantize {
    fn value(&self, g: &mut Graph, ctx: &mut BuildContext, spec: &WeightSpec, name: &str, value: ValueId) -> Result<ValueId> {
        if spec.layer != self.layer {
            return Ok(value);
        }
        let value = match self.fold_scale {
            Some(scale) if matches!(spec.weight, "kernel" | "bias") => g.mul(value, scale)?,
            _ => value,
        };
        let Some(q) = self.config.weight_quantizer(spec.weight) else { return Ok(value) };
        let state = q.build(g, ctx, &spec.shape, spec.layer, spec.weight)?;
        let done = ctx.extensions.get_or_default::<FakeQuantized>();
        if !done.0.iter().any(|(n, _, _)| n == name) {
            done.0.push((name.to_string(), q.clone(), state.clone()));
        }
        q.apply(g, ctx, value, &state)
    }
}

/// A model trained and run with fake quantization. Build and train it like any model; its
/// quantizer ranges are non-trainable weights (`layer/kernel_min`, `layer/post_activation_max`,
/// `quantize_layer/quantize_layer_min`, ...) that checkpoints keep.
pub struct QuantizedModel {
    inner: Box<dyn Model>,
    plan: Arc<QuantizePlan>,
}

impl QuantizedModel {
    /// What the model quantizes.
    pub fn plan(&self) -> &QuantizePlan {
        &self.plan
    }
}

impl Model for QuantizedModel {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn inputs(&self) -> Vec<(String, Vec<usize>)> {
        self.inner.inputs()
    }

    fn call(&self, net: &mut Network, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
        let mut xs = inputs.to_vec();
        if self.plan.all_layers {
            for (i, x) in xs.iter_mut().enumerate() {
                let layer = if i == 0 { "quantize_layer".to_string() } else { format!("quantize_layer_{i}") };
                let q = self.plan.scheme.input_quantizer();
                let shape = net.graph.value(*x).shape.clone();
                let state = q.build(&mut net.graph, &mut net.ctx, &shape, &layer, &layer)?;
                *x = q.apply(&mut net.graph, &mut net.ctx, *x, &state)?;
            }
        }
        let previous = net.layer_hook.replace(self.plan.clone());
        let outputs = self.inner.call(net, &xs);
        net.layer_hook = previous;
        outputs
    }

    fn lists_inputs(&self) -> bool {
        self.inner.lists_inputs()
    }

    fn seed(&self) -> u64 {
        self.inner.seed()
    }
}

/// Quantizes the annotated layers of `model` (every layer, and the inputs, for a model from
/// [`quantize_annotate_model`]) with `scheme`; the others run in float. An annotated layer the
/// scheme does not know, without a config of its own, is an error naming it.
pub fn quantize_apply(model: impl Model + 'static, scheme: Scheme) -> Result<QuantizedModel> {
    let all_layers = (&model as &dyn std::any::Any).is::<AnnotatedModel>();
    // Folding needs the BatchNormalization quantized too, so it applies to models quantized whole.
    let (fused, folds) = patterns(&model, scheme.fold_batch_norm && all_layers)?;
    let plan = Arc::new(QuantizePlan { scheme, all_layers, fused, folds });
    let quantized = QuantizedModel { inner: Box::new(model), plan };
    // Building once reports unsupported layers now rather than at the first training step.
    build_with_calls(&quantized, crate::io::keras::export::describe)?;
    Ok(quantized)
}

/// Quantizes every layer of `model` with TF-MOT's default 8-bit scheme.
pub fn quantize_model(model: impl Model + 'static) -> Result<QuantizedModel> {
    quantize_apply(quantize_annotate_model(model), Scheme::default_8bit())
}

/// Layers whose output only one layer reads, which quantizes after them instead: a Dense or
/// convolution with a linear activation followed by BatchNormalization, or one of those or a
/// BatchNormalization followed by an Activation layer; and, with `fold`, the BatchNormalizations
/// to fold into the Dense or Conv layer before them.
fn patterns(model: &dyn Model, fold: bool) -> Result<(HashSet<String>, HashMap<String, Fold>)> {
    let built = build_with_calls(model, crate::io::keras::export::describe)?;
    let calls = built.network.calls.as_ref().expect("build_with_calls keeps the calls");
    // (class, activation) of a call; "linear" for layers without an activation.
    let class = |c: &crate::models::LayerCall| -> (String, String) {
        let config = c.config.as_ref().ok();
        let name = config.and_then(|v| v["class_name"].as_str()).unwrap_or_default().to_string();
        let activation =
            config.and_then(|v| v["config"].get("activation")).map_or("linear".to_string(), |a| a.as_str().unwrap_or("other").to_string());
        (name, activation)
    };
    let mut readers: HashMap<ValueId, Vec<usize>> = HashMap::new();
    for (i, c) in calls.iter().enumerate() {
        for &x in &c.inputs {
            readers.entry(x).or_default().push(i);
        }
    }
    let weighted = |k: &str| {
        let k = k.strip_prefix("Quant").unwrap_or(k);
        k == "Dense"
            || k.starts_with("Conv") && !k.ends_with("Transpose")
            || k.starts_with("DepthwiseConv")
            || k.starts_with("SeparableConv")
    };
    let (mut fused, mut folds) = (HashSet::new(), HashMap::new());
    for c in calls {
        let (kind, activation) = class(c);
        let [reader] = readers.get(&c.output).map(Vec::as_slice).unwrap_or_default() else { continue };
        if activation != "linear" || built.outputs.contains(&c.output) {
            continue;
        }
        let (next, next_activation) = class(&calls[*reader]);
        // A softmax Activation layer quantizes nothing, so its input stays quantized.
        let quantizing_activation = next == "Activation" && next_activation != "softmax";
        if (next == "BatchNormalization" && weighted(&kind)) || (quantizing_activation && (weighted(&kind) || kind == "BatchNormalization"))
        {
            fused.insert(c.name.clone());
        }
        if fold && next == "BatchNormalization" {
            if let Some(f) = foldable(c, &calls[*reader], built.graph().value(c.output).shape.dims())? {
                folds.insert(c.name.clone(), f);
            }
        }
    }
    Ok((fused, folds))
}

/// The fold of the BatchNormalization call `norm` into the call `layer` before it, when `layer`
/// is a float Dense or Conv layer (its kernel's last axis is its output channel) and `norm`
/// normalizes that channel axis of its output `out`.
fn foldable(layer: &crate::models::LayerCall, norm: &crate::models::LayerCall, out: &[usize]) -> Result<Option<Fold>> {
    let (Ok(lc), Ok(nc)) = (&layer.config, &norm.config) else { return Ok(None) };
    let class = lc["class_name"].as_str().unwrap_or_default();
    let class = class.strip_prefix("Quant").unwrap_or(class);
    let larq = ["input_quantizer", "kernel_quantizer"].iter().any(|k| lc["config"].get(*k).is_some_and(|q| !q.is_null()));
    if !(class == "Dense" || matches!(class, "Conv1D" | "Conv2D" | "Conv3D")) || larq {
        return Ok(None);
    }
    let Some(norm) = crate::io::keras::layer_from_config(nc)? else { return Ok(None) };
    let Some(norm) = norm.as_any().and_then(|a| a.downcast_ref::<BatchNormalization>()).cloned() else { return Ok(None) };
    let rank = out.len() as isize;
    let axis = if norm.axis < 0 { norm.axis + rank } else { norm.axis };
    let first = lc["config"]["data_format"] == "channels_first";
    let channel_axis = if first { 1 } else { rank - 1 };
    if axis != channel_axis {
        return Ok(None);
    }
    Ok(Some(Fold { norm, channels: out[channel_axis as usize], channels_first_spatial: first.then_some(out.len() - 2) }))
}
