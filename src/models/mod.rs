//! Models: networks of layers built into a graph for training or inference, in the three ways
//! Keras offers: [`Sequential`], functional ([`Functional`], a DAG of layers with shortcuts and
//! merges), and subclassing (implement [`Model`] for your own type and compose layers in
//! [`Model::call`]). [`Built::summary`] gives Larq's `models.summary`.

pub mod summary;
pub mod zoo;

pub use summary::Summary;

use crate::error::{Error, Result};
use crate::graph::{Graph, ValueId};
use crate::layers::{BuildContext, Layer, LayerId, MacCount, Merge, Mode};
use crate::tensor::{DType, Shape};

/// Shape and type of named weights (what a weights file for a model must hold; the same map as
/// `io::safetensors::Expected`).
pub type WeightShapes = std::collections::BTreeMap<String, (Shape, DType)>;

/// What the summary needs to know about one top-level layer.
#[derive(Clone, Debug)]
pub struct LayerRecord {
    /// The layer's name.
    pub name: String,
    /// Its Keras class.
    pub class: String,
    /// Bits of its quantized input, if quantized.
    pub input_precision: Option<u32>,
    /// Its output shape, batch axis included; `None` for a shared layer whose applications gave
    /// different shapes.
    pub output_shape: Option<Vec<usize>>,
    /// The shapes of its further outputs (a split's parts), batch axis included.
    pub more_output_shapes: Vec<Vec<usize>>,
    /// Indices of its weights in [`BuildContext::weights`].
    pub weights: std::ops::Range<usize>,
    /// How its MACs are counted.
    pub macs: MacCount,
}

/// One top-level layer call, kept when [`Network::calls`] is set (what the Keras JSON export
/// needs to write a model's layers and wiring).
#[derive(Debug)]
pub struct LayerCall {
    /// The layer's name.
    pub name: String,
    /// Its Keras config, or why it has none (a custom layer).
    pub config: Result<serde_json::Value>,
    /// The values it was applied to.
    pub inputs: Vec<ValueId>,
    /// Its output.
    pub output: ValueId,
    /// Its further outputs (a split's parts).
    pub more_outputs: Vec<ValueId>,
    /// How its inbound node is written, for a call with arguments (a `TFOpLambda`'s); `None`
    /// writes its inputs alone.
    pub node: Option<NodeWriter>,
}

/// What the Keras JSON export writes of a call of [`Network::function`].
pub struct FunctionExport {
    /// The layer's Keras config.
    pub config: Result<serde_json::Value>,
    /// The values the call reads.
    pub reads: Vec<ValueId>,
    /// How its inbound node is written.
    pub node: NodeWriter,
}

/// Writes a call's Keras inbound node from the values it reads (its [`LayerCall::inputs`], as
/// an export may have rewired them) and what names each value as Keras JSON does (`[layer,
/// node, tensor]`, `None` for a value no layer or input produced).
#[derive(Clone)]
pub struct NodeWriter(pub std::sync::Arc<WriteNode>);

/// What a [`NodeWriter`] holds.
pub type WriteNode = dyn Fn(&[ValueId], &dyn Fn(ValueId) -> Option<serde_json::Value>) -> Result<serde_json::Value> + Send + Sync;

impl std::fmt::Debug for NodeWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeWriter")
    }
}

/// A graph under construction with the layers applied to it so far.
#[derive(Debug)]
pub struct Network {
    /// The graph.
    pub graph: Graph,
    /// Weights, metrics, penalties and the mode.
    pub ctx: BuildContext,
    /// The top-level layers in the order they were applied.
    pub layers: Vec<LayerRecord>,
    /// Batch size of the inputs.
    pub batch: usize,
    depth: usize,
    /// Per top-level layer name: the layer's identity and how often it was applied, which tells
    /// a shared layer applied again from another layer reusing its name.
    applied: std::collections::HashMap<String, (Owner, usize)>,
    /// Every top-level layer call with its Keras config, when set to `Some` before building.
    pub calls: Option<Vec<LayerCall>>,
    /// What writes a call's Keras config into [`Network::calls`] (the Keras JSON export's
    /// class table, set by whoever asks for the calls); without one a call's config is an error.
    pub describe: Option<Describe>,
    /// How top-level layers are applied while it is set: a quantized model
    /// (`qat::QuantizedModel`) sets its plan while its call runs.
    pub layer_hook: Option<std::sync::Arc<dyn LayerHook>>,
    /// The top-level layer that produced each value a layer call returned (names outputs).
    produced_by: std::collections::HashMap<ValueId, String>,
}

impl Network {
    /// An empty network for `batch`-sized inputs.
    pub fn new(batch: usize, mode: Mode) -> Self {
        Network {
            graph: Graph::new(),
            ctx: BuildContext::new(mode),
            layers: Vec::new(),
            batch,
            depth: 0,
            applied: Default::default(),
            calls: None,
            describe: None,
            layer_hook: None,
            produced_by: Default::default(),
        }
    }

    /// A model input of per-sample shape `shape` (the batch axis is prepended).
    pub fn input(&mut self, name: &str, shape: &[usize]) -> Result<ValueId> {
        let mut d = vec![self.batch];
        d.extend(shape);
        self.graph.input(name, Shape::new(d), DType::F32)
    }

    /// Applies `layer` to `x`. Errors name the layer. Applying the same layer (the same
    /// [`Layer::id`], or for a layer without one the same object) again shares its weights
    /// (Keras' shared layers); another layer with a name already used is an error.
    pub fn apply(&mut self, layer: &dyn Layer, x: ValueId) -> Result<ValueId> {
        let owner = match layer.id() {
            Some(id) => Owner::Layer(id),
            None => Owner::Address(layer as *const dyn Layer as *const u8 as usize),
        };
        let start = self.begin(layer.name(), layer.class(), owner)?;
        let outer = self.graph.set_layer(self.layer_tag(layer.name()));
        let hook = self.layer_hook.clone().filter(|_| self.depth == 0);
        self.depth += 1;
        let y = match hook {
            Some(hook) => hook.apply(&mut self.graph, &mut self.ctx, layer, x),
            None => layer.build(&mut self.graph, x, &mut self.ctx),
        };
        self.depth -= 1;
        self.graph.set_layer(outer);
        let y = y.map_err(|e| wrap(layer.name(), layer.class(), e))?;
        self.record(layer.name(), layer.class(), layer.input_precision(), layer.macs(), start, y);
        self.keep_call(layer.name(), Described::Layer(layer), &[x], y);
        Ok(y)
    }

    /// Applies a merge layer (`Add`, `Multiply`, `Concatenate`) to `inputs`.
    pub fn merge(&mut self, layer: &Merge, inputs: &[ValueId]) -> Result<ValueId> {
        let start = self.begin(&layer.name, layer.class(), Owner::Layer(layer.id))?;
        let outer = self.graph.set_layer(self.layer_tag(&layer.name));
        let y = layer.build(&mut self.graph, inputs).and_then(|y| match self.layer_hook.clone().filter(|_| self.depth == 0) {
            Some(hook) => hook.merged(&mut self.graph, &mut self.ctx, &layer.name, y),
            None => Ok(y),
        });
        self.graph.set_layer(outer);
        let y = y.map_err(|e| wrap(&layer.name, layer.class(), e))?;
        self.record(&layer.name, layer.class(), None, MacCount::Unknown, start, y);
        self.keep_call(&layer.name, Described::Merge(layer), inputs, y);
        Ok(y)
    }

    /// Applies a layer of any number of inputs and outputs and no weights that `record` records
    /// (Keras' `TFOpLambda` and `Lambda` layers of an imported model), with a summary row of
    /// class `class` showing its first output's shape; `export` is what the Keras JSON export
    /// writes of it.
    pub fn function(
        &mut self,
        name: &str,
        class: &str,
        id: LayerId,
        export: FunctionExport,
        record: impl FnOnce(&mut Graph) -> Result<Vec<ValueId>>,
    ) -> Result<Vec<ValueId>> {
        let FunctionExport { config, reads, node } = export;
        let start = self.begin(name, class, Owner::Layer(id))?;
        let outer = self.graph.set_layer(self.layer_tag(name));
        let ys = record(&mut self.graph);
        self.graph.set_layer(outer);
        let ys = ys.map_err(|e| wrap(name, class, e))?;
        let Some(&first) = ys.first() else {
            return Err(wrap(name, class, Error::invalid("model", "layer", "the layer returned no output")));
        };
        self.record(name, class, None, MacCount::Unknown, start, first);
        if self.depth == 0 && ys.len() > 1 {
            let shapes: Vec<Vec<usize>> = ys[1..].iter().map(|&y| self.graph.value(y).shape.dims().to_vec()).collect();
            if let Some(r) = self.layers.iter_mut().rev().find(|l| l.name == name) {
                r.more_output_shapes = shapes;
            }
        }
        for &y in &ys[1..] {
            self.produced_by.insert(y, name.to_string());
        }
        if self.depth == 0 {
            if let Some(calls) = &mut self.calls {
                calls.push(LayerCall {
                    name: name.to_string(),
                    config,
                    inputs: reads,
                    output: first,
                    more_outputs: ys[1..].to_vec(),
                    node: Some(node),
                });
            }
        }
        Ok(ys)
    }

    /// Keeps a top-level call when [`Network::calls`] asks for them.
    fn keep_call(&mut self, name: &str, layer: Described, inputs: &[ValueId], output: ValueId) {
        if self.depth == 0 {
            if let Some(calls) = &mut self.calls {
                let config = match self.describe {
                    Some(describe) => describe(layer),
                    None => Err(Error::invalid("export", "layer", "no Keras class table was given to describe the layer")),
                };
                calls.push(LayerCall {
                    name: name.to_string(),
                    config,
                    inputs: inputs.to_vec(),
                    output,
                    more_outputs: Vec::new(),
                    node: None,
                });
            }
        }
    }

    /// Counts the application of the layer `id` named `name` (at the top level; nested layers
    /// belong to their parent) and sets [`BuildContext::application`]; returns the first weight
    /// index of the layer.
    fn begin(&mut self, name: &str, class: &str, id: Owner) -> Result<usize> {
        if self.depth > 0 {
            return Ok(self.ctx.weights.len());
        }
        let application = match self.applied.get_mut(name) {
            Some((owner, count)) if *owner == id => {
                *count += 1;
                *count - 1
            }
            Some(_) => {
                let e = Error::invalid(
                    "model",
                    "name",
                    "another layer already has this name; layer names must be unique in a model (apply the same layer object, or a clone of it, again to share weights)",
                );
                return Err(wrap(name, class, e));
            }
            None => {
                self.applied.insert(name.to_string(), (id, 1));
                0
            }
        };
        self.ctx.application = application;
        Ok(self.ctx.weights.len())
    }

    /// The tag for nodes a layer records: its own name at the top level; a layer applied inside
    /// another keeps the outer one's, as its rows in the summary do.
    fn layer_tag(&self, name: &str) -> Option<std::sync::Arc<str>> {
        match self.depth {
            0 => Some(std::sync::Arc::from(name)),
            _ => self.graph.layer().cloned(),
        }
    }

    fn record(&mut self, name: &str, class: &str, input_precision: Option<u32>, macs: MacCount, start: usize, y: ValueId) {
        // Layers applied inside another layer's build belong to it, as in Keras.
        if self.depth > 0 {
            return;
        }
        let shape = self.graph.value(y).shape.dims().to_vec();
        self.produced_by.insert(y, name.to_string());
        if self.ctx.application > 0 {
            // A shared layer keeps one row, its shape if every application agrees.
            self.ctx.application = 0;
            if let Some(r) = self.layers.iter_mut().find(|l| l.name == name) {
                if r.output_shape.as_ref() != Some(&shape) {
                    r.output_shape = None;
                }
            }
            return;
        }
        self.layers.push(LayerRecord {
            name: name.to_string(),
            class: class.to_string(),
            input_precision,
            output_shape: Some(shape),
            more_output_shapes: Vec::new(),
            weights: start..self.ctx.weights.len(),
            macs,
        });
    }
}

/// Who a top-level name belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    /// A layer with an identity.
    Layer(LayerId),
    /// A layer without one, by its address while the model is built.
    Address(usize),
    /// A model input, by position.
    Input(usize),
}

/// What a [`Describe`] function writes the Keras config of.
#[derive(Clone, Copy)]
pub enum Described<'a> {
    /// A layer of one input.
    Layer(&'a dyn Layer),
    /// A merge layer.
    Merge(&'a Merge),
}

/// Writes a layer's Keras `{"class_name", "config"}`, or why it has none (a custom layer).
pub type Describe = fn(Described) -> Result<serde_json::Value>;

/// Changes how [`Network`] applies its top-level layers while set on
/// [`Network::layer_hook`]. Quantization-aware training implements it (what to fake-quantize,
/// BatchNormalization folding) without the models knowing of it.
pub trait LayerHook: std::fmt::Debug + Send + Sync {
    /// Applies the top-level layer `layer` to `x` and returns its output; errors are wrapped to
    /// name the layer.
    fn apply(&self, g: &mut Graph, ctx: &mut BuildContext, layer: &dyn Layer, x: ValueId) -> Result<ValueId>;
    /// The value a model reads from the top-level merge layer `name` whose output is `y`.
    fn merged(&self, g: &mut Graph, ctx: &mut BuildContext, name: &str, y: ValueId) -> Result<ValueId>;
}

fn wrap(layer: &str, class: &str, e: Error) -> Error {
    match e {
        Error::Layer { .. } => e,
        e => Error::Layer { layer: layer.to_string(), class: class.to_string(), source: Box::new(e) },
    }
}

/// A model: named inputs and a function from them to outputs made of layers.
pub trait Model {
    /// The model's name.
    fn name(&self) -> &str;
    /// Names and per-sample shapes of the inputs.
    fn inputs(&self) -> Vec<(String, Vec<usize>)>;
    /// Applies the layers to the inputs (through [`Network::apply`] and [`Network::merge`]) and
    /// returns the outputs.
    fn call(&self, net: &mut Network, inputs: &[ValueId]) -> Result<Vec<ValueId>>;
    /// Whether the summary lists the inputs as `InputLayer` rows (Keras does for functional
    /// models, not for sequential ones).
    fn lists_inputs(&self) -> bool {
        false
    }
    /// The seed of the weight initializers (Keras' global seed): each weight draws from a seed
    /// made of its name and this, so the same seed gives the same weights whatever the build
    /// order, batch size or mode.
    fn seed(&self) -> u64 {
        0
    }

    /// Builds the model for `batch`-sized inputs in `mode`. In training mode, a step counter used
    /// by randomized layers (dropout) advances by one per run.
    fn build(&self, batch: usize, mode: Mode) -> Result<Built>
    where
        Self: Sized,
    {
        build(self, batch, mode)
    }

    /// Whether the model knows its inputs' shapes. A [`Sequential`] made without one (as Keras
    /// allows) does not until [`Model::set_input_shape`] gives it its data's; the default is yes.
    fn has_input_shape(&self) -> bool {
        true
    }

    /// Gives a model that has no input shape yet the per-sample shape of its data (the trainer
    /// does at the first `fit`, `evaluate` or `predict`, as Keras builds then); returns whether
    /// it took it. The default takes none.
    fn set_input_shape(&mut self, shape: &[usize]) -> bool {
        let _ = shape;
        false
    }

    /// Keras' `model.output_shape` without the batch axis: the per-sample shape of the model's
    /// output (`[10]` for ten class scores); a model of several outputs has
    /// [`Model::output_shapes`].
    fn output_shape(&self) -> Result<Vec<usize>>
    where
        Self: Sized,
    {
        let mut shapes = self.output_shapes()?;
        match shapes.len() {
            1 => Ok(shapes.remove(0)),
            n => Err(Error::invalid("output_shape", "model", format!("the model has {n} outputs: output_shapes gives each"))),
        }
    }

    /// The per-sample shape of each output, in order (Keras' `model.output_shape` of a model of
    /// several outputs, without the batch axes).
    fn output_shapes(&self) -> Result<Vec<Vec<usize>>>
    where
        Self: Sized,
    {
        let built = build(self, 1, Mode::Inference)?;
        Ok(built.outputs.iter().map(|&v| built.graph().value(v).shape.dims()[1..].to_vec()).collect())
    }

    /// Larq's `models.summary(model)`: the layer and memory tables (`println!("{}",
    /// model.summary()?)`; [`Summary::table`] is the same text, [`Summary::to_json`] the figures).
    fn summary(&self) -> Result<Summary>
    where
        Self: Sized,
    {
        Ok(build(self, 1, Mode::Inference)?.summary())
    }
}

/// A boxed model is a model, for programs that choose theirs at run time (`bitgrad train` takes
/// the main job's or a Keras model's JSON).
impl Model for Box<dyn Model> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn inputs(&self) -> Vec<(String, Vec<usize>)> {
        (**self).inputs()
    }

    fn call(&self, net: &mut Network, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
        (**self).call(net, inputs)
    }

    fn lists_inputs(&self) -> bool {
        (**self).lists_inputs()
    }

    fn seed(&self) -> u64 {
        (**self).seed()
    }

    fn has_input_shape(&self) -> bool {
        (**self).has_input_shape()
    }

    fn set_input_shape(&mut self, shape: &[usize]) -> bool {
        (**self).set_input_shape(shape)
    }
}

/// Builds any model (see [`Model::build`]).
pub fn build(model: &dyn Model, batch: usize, mode: Mode) -> Result<Built> {
    if batch == 0 {
        return Err(Error::invalid("model", "batch", "must be positive"));
    }
    build_in(model, Network::new(batch, mode))
}

/// Builds `model` for one sample in inference mode keeping every top-level layer call with its
/// Keras config as `describe` writes it ([`Network::calls`]), for the Keras JSON export.
pub fn build_with_calls(model: &dyn Model, describe: Describe) -> Result<Built> {
    let mut net = Network::new(1, Mode::Inference);
    net.calls = Some(Vec::new());
    net.describe = Some(describe);
    build_in(model, net)
}

/// Builds `model` into `net` (a network prepared by the caller: hooks set on its context, calls
/// kept).
pub fn build_in(model: &dyn Model, mut net: Network) -> Result<Built> {
    let mode = net.ctx.mode;
    net.ctx.seed = model.seed();
    let mut inputs = Vec::new();
    for (name, shape) in model.inputs() {
        let x = net.input(&name, &shape)?;
        if model.lists_inputs() {
            // An input is keyed by its position.
            let start = net.begin(&name, "InputLayer", Owner::Input(inputs.len()))?;
            net.record(&name, "InputLayer", None, MacCount::Unknown, start, x);
        }
        inputs.push(x);
    }
    let outputs = model.call(&mut net, &inputs)?;
    if outputs.is_empty() {
        return Err(Error::invalid("model", "outputs", format!("model `{}` has no outputs", model.name())));
    }
    if mode == Mode::Training {
        if let Some(step) = net.ctx.step {
            let next = net.graph.unary(crate::graph::UnaryOp::Offset(1.0), step)?;
            net.graph.assign(step, next)?;
        }
    }
    for w in &net.ctx.warnings {
        log::warn!("{w}");
    }
    Ok(Built { name: model.name().to_string(), network: net, inputs, outputs })
}

/// A model built into a graph.
#[derive(Debug)]
pub struct Built {
    /// The model's name.
    pub name: String,
    /// The graph and what building it collected.
    pub network: Network,
    /// The input values, in the model's order.
    pub inputs: Vec<ValueId>,
    /// The output values.
    pub outputs: Vec<ValueId>,
}

impl Built {
    /// The name of each output: the layer that produced it (Keras' `output_names`), or
    /// `output_<i>` for a value no layer returned (an input passed through); a name taken by an
    /// earlier output gets `_<i>` appended, so the names are distinct.
    pub fn output_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (i, v) in self.outputs.iter().enumerate() {
            let name = self.network.produced_by.get(v).cloned().unwrap_or_else(|| format!("output_{i}"));
            names.push(if names.contains(&name) { format!("{name}_{i}") } else { name });
        }
        names
    }

    /// What building warned of (Larq's starved-weights warning for a binary kernel quantizer
    /// without a constraint), one line each; also logged.
    pub fn warnings(&self) -> &[String] {
        &self.network.ctx.warnings
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        &self.network.graph
    }

    /// Name, shape and type of every weight a weights file for the model must hold.
    pub fn weights(&self) -> WeightShapes {
        self.weights_where(Some(false))
    }

    /// Those it may hold as well ([`crate::layers::Weight::optional`]).
    pub fn optional_weights(&self) -> WeightShapes {
        self.weights_where(Some(true))
    }

    /// Every weight, optional or not.
    pub fn all_weights(&self) -> WeightShapes {
        self.weights_where(None)
    }

    fn weights_where(&self, optional: Option<bool>) -> WeightShapes {
        let g = self.graph();
        let entry = |w: &crate::layers::Weight| (w.name.clone(), (g.value(w.variable).shape.clone(), g.value(w.variable).dtype));
        self.network.ctx.weights.iter().filter(|w| optional.is_none_or(|o| w.optional == o)).map(entry).collect()
    }

    /// Larq's summary of the model.
    pub fn summary(&self) -> Summary {
        Summary::new(&self.name, &self.network)
    }

    /// The sum of the regularization penalties, or `None` without regularizers.
    pub fn regularization_loss(&mut self) -> Result<Option<ValueId>> {
        let penalties = self.network.ctx.penalties.clone();
        let mut total: Option<ValueId> = None;
        for p in penalties {
            total = Some(match total {
                None => p,
                Some(t) => self.network.graph.add(t, p)?,
            });
        }
        Ok(total)
    }
}

/// Keras' `Input`: the per-sample shape of a model's input. Added first to a [`Sequential`], it
/// sets the model's input shape (it is no layer of the model).
#[derive(Clone, Debug)]
pub struct Input {
    /// Per-sample shape (no batch axis).
    pub shape: Vec<usize>,
}

impl Input {
    /// `Input(shape)`.
    pub fn new(shape: &[usize]) -> Self {
        Input { shape: shape.to_vec() }
    }
}

impl Layer for Input {
    fn name(&self) -> &str {
        "input"
    }
    fn build(&self, _g: &mut crate::graph::Graph, x: ValueId, _ctx: &mut crate::layers::BuildContext) -> Result<ValueId> {
        Ok(x)
    }
    fn class(&self) -> &str {
        "InputLayer"
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn declared_input_shape(&self) -> Option<&[usize]> {
        Some(&self.shape)
    }
}

/// Keras' `Sequential`: one input, layers applied in order.
pub struct Sequential {
    name: String,
    input_shape: Option<Vec<usize>>,
    layers: Vec<Box<dyn Layer>>,
    seed: u64,
}

impl crate::layers::Named for Sequential {
    fn name_mut(&mut self) -> &mut String {
        &mut self.name
    }
    fn auto_class(&self) -> String {
        "Sequential".into()
    }
}

impl Default for Sequential {
    /// [`Sequential::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl Sequential {
    /// An empty model named as Keras names it (`sequential`, then `sequential_1`, ...). Its input
    /// shape comes from the first layer's `input_shape` (`Flatten::new().input_shape(&[28, 28,
    /// 1])`), an [`Input`] added first, or [`Sequential::input_shape`].
    pub fn new() -> Self {
        Sequential { name: crate::layers::unique_name("Sequential"), input_shape: None, layers: Vec::new(), seed: 0 }
    }

    /// Names the model (Keras' `name`), giving back the automatic name as layers do.
    pub fn named(self, name: &str) -> Self {
        crate::layers::rename(self, name)
    }

    /// Sets the per-sample input shape (no batch axis).
    pub fn input_shape(mut self, shape: &[usize]) -> Self {
        self.input_shape = Some(shape.to_vec());
        self
    }

    /// Appends a layer (Keras' name for it, hence the allow). An [`Input`] sets the input shape
    /// instead; a first layer with an `input_shape` sets it too.
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, layer: impl Layer + 'static) -> Self {
        self.add_boxed(Box::new(layer))
    }

    /// Appends a boxed layer.
    pub fn add_boxed(mut self, layer: Box<dyn Layer>) -> Self {
        if let Some(shape) = layer.declared_input_shape() {
            if self.layers.is_empty() && self.input_shape.is_none() {
                self.input_shape = Some(shape.to_vec());
            }
        }
        if layer.as_any().is_some_and(|a| a.is::<Input>()) {
            return self;
        }
        self.layers.push(layer);
        self
    }

    /// The layers.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// Sets the initializers' seed (see [`Model::seed`]).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Model for Sequential {
    fn name(&self) -> &str {
        &self.name
    }

    fn inputs(&self) -> Vec<(String, Vec<usize>)> {
        // Without a shape the model still has its one input; `call` says what is missing.
        vec![("input".to_string(), self.input_shape.clone().unwrap_or_default())]
    }

    fn call(&self, net: &mut Network, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
        if self.input_shape.is_none() {
            return Err(Error::invalid(
                "Sequential",
                "input_shape",
                format!(
                    "model `{}` has no input shape: give its first layer one (`Flatten::new().input_shape(&[28, 28, 1])`), add an `Input::new(&[..])` first, or call `.input_shape(&[..])` (a trainer gives it its data's shape at the first fit, evaluate or predict)",
                    self.name
                ),
            ));
        }
        let mut x = inputs[0];
        for layer in &self.layers {
            x = net.apply(layer.as_ref(), x)?;
        }
        Ok(vec![x])
    }

    fn seed(&self) -> u64 {
        self.seed
    }

    fn has_input_shape(&self) -> bool {
        self.input_shape.is_some()
    }

    fn set_input_shape(&mut self, shape: &[usize]) -> bool {
        if self.input_shape.is_some() {
            return false;
        }
        self.input_shape = Some(shape.to_vec());
        true
    }
}

/// The function of a [`Functional`] model.
pub type GraphFn = dyn Fn(&mut Network, &[ValueId]) -> Result<Vec<ValueId>>;

/// Keras' functional model: named inputs and a function that wires layers into a DAG
/// (shortcuts, merges, several outputs).
pub struct Functional {
    name: String,
    inputs: Vec<(String, Vec<usize>)>,
    f: Box<GraphFn>,
    seed: u64,
}

impl Functional {
    /// A model with these inputs (name, per-sample shape) whose outputs `f` computes.
    pub fn new(name: &str, inputs: &[(&str, &[usize])], f: impl Fn(&mut Network, &[ValueId]) -> Result<Vec<ValueId>> + 'static) -> Self {
        Functional {
            name: name.to_string(),
            inputs: inputs.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect(),
            f: Box::new(f),
            seed: 0,
        }
    }

    /// Sets the initializers' seed (see [`Model::seed`]).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl Model for Functional {
    fn name(&self) -> &str {
        &self.name
    }

    fn inputs(&self) -> Vec<(String, Vec<usize>)> {
        self.inputs.clone()
    }

    fn call(&self, net: &mut Network, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
        (self.f)(net, inputs)
    }

    fn lists_inputs(&self) -> bool {
        true
    }

    fn seed(&self) -> u64 {
        self.seed
    }
}
