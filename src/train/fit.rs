//! Keras' `compile` / `fit` / `evaluate` / `predict`.
//!
//! [`Trainer::compile`] keeps the model, loss, optimizer and metrics; each (mode, batch size)
//! gets one plan, made the first time it is needed and replayed for every batch: a training step
//! (forward, loss, backward, optimizer updates, constraints, moving statistics, metric sums) is
//! one submission. Metrics accumulate in device variables (`train_metrics/*`,
//! `eval_metrics/*`, reset by a fed flag at the first batch of an epoch) and are read back only
//! at logging points. A last partial batch runs on a plan of its own size, as Keras trains it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use super::callbacks::{
    any_wants_batch_logs, each, each_control, monitored, Best, Control, EarlyStopping, Logs, ModelCheckpoint, SharedCallback,
};
use super::data::{shuffled, Dataset, Labels, LabelsRef};
use super::losses::Loss;
use super::optimizers::{Optimizer, Updates};
use super::schedules::{Every, HyperparameterScheduler};
use crate::device::{block, Device};
use crate::error::{Error, Result};
use crate::graph::{BinaryOp, Graph, Init, ValueId};
use crate::layers::{Arg, Mode};
use crate::models::{self, Model};
use crate::runtime::{KernelTime, ParamStore, Plan, PlanMemory};
use crate::tensor::{DType, HostTensor, TensorData};

/// A metric computed in the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Fraction of samples whose labelled class is the argmax of the scores (Keras'
    /// `sparse_categorical_accuracy`: among tied scores the first class wins).
    Accuracy,
    /// Fraction of samples whose labelled class is among the `k` highest scores.
    TopK(usize),
}

impl Metric {
    /// By Keras name: `accuracy` / `sparse_categorical_accuracy`, `top_k` /
    /// `sparse_top_k_categorical_accuracy` (k = 5), `top_N`.
    pub fn from_name(name: &str) -> Result<Metric> {
        match name {
            "accuracy" | "acc" | "sparse_categorical_accuracy" | "categorical_accuracy" => Ok(Metric::Accuracy),
            "top_k" | "sparse_top_k_categorical_accuracy" | "top_k_categorical_accuracy" => Ok(Metric::TopK(5)),
            n if n.starts_with("top_") && n[4..].parse::<usize>().is_ok_and(|k| k > 0) => {
                Ok(Metric::TopK(n[4..].parse().expect("checked")))
            }
            other => Err(Error::unknown("metric", other, ["accuracy", "top_k", "top_N"])),
        }
    }

    /// The name in logs.
    pub fn name(&self) -> String {
        match self {
            Metric::Accuracy => "accuracy".into(),
            Metric::TopK(k) => format!("top_{k}"),
        }
    }

    fn k(&self) -> usize {
        match self {
            Metric::Accuracy => 1,
            Metric::TopK(k) => *k,
        }
    }
}

/// Options of [`Trainer::fit`].
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Epochs to train.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Seed of the per-epoch shuffles (epoch e uses seed + e); `None` keeps the order.
    pub shuffle_seed: Option<u64>,
    /// Fraction of the training data (its end, before shuffling) held out for validation.
    pub validation_split: f32,
    /// Read the metrics back every this many steps of an epoch (and at its end), for the
    /// progress bar and the callbacks' batch logs: without either nothing is read mid-epoch.
    pub log_every: usize,
    /// Keras' `verbose`, on standard error: 0 silent; 1 an `Epoch n/N` line, then a progress
    /// bar with the elapsed time, the ETA and the running loss and metrics (updated every
    /// `log_every` steps; drawn only on a terminal) and one during validation, replaced by the
    /// epoch's line when it ends; 2 only one line per epoch. Each epoch's line shows the steps,
    /// the time, the time per step, then the values in Keras' order (see [`format_metrics`]) and
    /// the images per second.
    pub verbose: u8,
    /// Stop early when a monitored value stops improving.
    pub early_stopping: Option<EarlyStopping>,
    /// Save the trainer's state after epochs.
    pub checkpoint: Option<ModelCheckpoint>,
    /// Callbacks whose hooks `fit` calls, in this order (see [`super::Callback`]); made with
    /// [`super::callbacks::shared`], e.g. `vec![shared(TensorBoard::new("logs"))]`.
    pub callbacks: Vec<SharedCallback>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle_seed: Some(0),
            validation_split: 0.0,
            log_every: 50,
            verbose: 0,
            early_stopping: None,
            checkpoint: None,
            callbacks: Vec::new(),
        }
    }
}

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EpochLog {
    /// Epoch index (from 0).
    pub epoch: usize,
    /// `loss`, metrics, `val_*`, `flip_ratio/*`, in name order.
    pub values: BTreeMap<String, f64>,
    /// Wall seconds of the epoch's training steps.
    pub seconds: f64,
    /// Training samples per second.
    pub images_per_second: f64,
}

/// What `fit` returns: the per-epoch logs.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct History {
    /// One entry per epoch trained.
    pub epochs: Vec<EpochLog>,
    /// Set when early stopping or a callback ([`Control::Stop`]) ended training.
    pub stopped_early: bool,
}

impl History {
    /// The history as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data")
    }

    /// The history as CSV (Keras' `CSVLogger` columns: epoch, then names in order).
    pub fn to_csv(&self) -> String {
        let names: Vec<&String> = self.epochs.first().map(|e| e.values.keys().collect()).unwrap_or_default();
        let mut out = format!("epoch,{},seconds,images_per_second\n", names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(","));
        for e in &self.epochs {
            let vals: Vec<String> = names.iter().map(|n| e.values.get(*n).map_or(String::new(), |v| v.to_string())).collect();
            out += &format!("{},{},{},{}\n", e.epoch, vals.join(","), e.seconds, e.images_per_second);
        }
        out
    }

    /// Training images per second, averaged over the epochs (0 without epochs).
    pub fn mean_images_per_second(&self) -> f64 {
        if self.epochs.is_empty() {
            return 0.0;
        }
        self.epochs.iter().map(|e| e.images_per_second).sum::<f64>() / self.epochs.len() as f64
    }

    /// Writes [`History::to_json`] or [`History::to_csv`] (by the file's extension, `.csv` or
    /// anything else for JSON), atomically (see [`crate::io::write_atomically`]).
    pub fn write(&self, path: &std::path::Path) -> Result<()> {
        let text = if path.extension().is_some_and(|e| e == "csv") { self.to_csv() } else { self.to_json() };
        crate::io::write_atomically(path, text.as_bytes())
    }
}

/// One planned step for one (mode, batch size).
pub(super) struct Step {
    plan: Plan,
    /// The graph inputs of the model's inputs, in its order.
    inputs: Vec<String>,
    outputs: Vec<Output>,
    /// (name, sum variable): `loss` and each metric, summed over samples.
    sums: Vec<(String, ValueId)>,
    count: ValueId,
    keep: String,
    hypers: Vec<String>,
    flips: Vec<(String, ValueId)>,
}

/// One model output of a planned step.
struct Output {
    /// The layer that produced it (Keras' output name).
    name: String,
    value: ValueId,
    /// Its shape, batch first.
    dims: Vec<usize>,
    /// The graph input its targets are fed to.
    target: String,
    loss: Loss,
}

/// A compiled model: `fit`, `evaluate`, `predict`.
pub struct Trainer {
    pub(super) model: Box<dyn Model>,
    /// The loss of every output, unless `losses` gives one per output.
    loss: Loss,
    losses: Vec<Loss>,
    /// Keras' `loss_weights`, one per output (empty: all 1).
    loss_weights: Vec<f32>,
    optimizer: Arc<dyn Optimizer>,
    metrics: Vec<Metric>,
    device: Device,
    /// Weights, statistics, optimizer slots and metric sums, by name.
    pub params: ParamStore,
    /// Hyperparameter schedules that override the optimizer's own (Larq's
    /// `HyperparameterScheduler` callback).
    pub schedulers: Vec<HyperparameterScheduler>,
    plans: HashMap<(bool, usize), Step>,
    pub(super) step: usize,
    pub(super) epoch: usize,
    /// The variables a saved state holds, recorded once (see `checkpoint.rs`).
    pub(super) state_variables: Option<Arc<super::checkpoint::StateVariables>>,
    /// What building the model and preparing the optimizer warned of (see [`Trainer::warnings`]).
    warnings: Vec<String>,
}

/// Keras' `model.compile(optimizer, loss, metrics)` on any model: the optimizer and loss as
/// values or Keras names (`"adam"`, `"sparse_categorical_crossentropy"`), metrics by name
/// (`&["accuracy"]`); the result trains, evaluates and predicts ([`Trainer`]). `compile` runs on
/// the best device ([`Device::try_best`]), `compile_on` on the one given.
pub trait Compile: Model + Sized + 'static {
    /// Compiles on the best device.
    fn compile(self, optimizer: impl Arg<Arc<dyn Optimizer>>, loss: impl Arg<Loss>, metrics: &[&str]) -> Result<Trainer> {
        let device = Device::try_best()?;
        self.compile_on(&device, optimizer, loss, metrics)
    }

    /// Compiles on `device`.
    fn compile_on(
        self,
        device: &Device,
        optimizer: impl Arg<Arc<dyn Optimizer>>,
        loss: impl Arg<Loss>,
        metrics: &[&str],
    ) -> Result<Trainer> {
        let metrics = metrics.iter().map(|m| Metric::from_name(m)).collect::<Result<Vec<_>>>()?;
        Trainer::compile(self, loss.resolve()?, optimizer.resolve()?, &metrics, device)
    }
}

impl<M: Model + 'static> Compile for M {}

impl Trainer {
    /// Keras' `compile`: the model, loss, optimizer and metrics, on `device`. A model of several
    /// outputs trains each with `loss` (set one per output with [`Trainer::losses`], and their
    /// weights with [`Trainer::loss_weights`]) and computes the metrics for each.
    pub fn compile(
        model: impl Model + 'static,
        loss: Loss,
        optimizer: Arc<dyn Optimizer>,
        metrics: &[Metric],
        device: &Device,
    ) -> Result<Self> {
        for (name, s) in optimizer.hyperparameters() {
            s.check(&name)?;
        }
        let mut trainer = Trainer {
            warnings: Vec::new(),
            model: Box::new(model),
            loss,
            losses: Vec::new(),
            loss_weights: Vec::new(),
            optimizer,
            metrics: metrics.to_vec(),
            device: device.clone(),
            params: ParamStore::new(),
            schedulers: Vec::new(),
            plans: HashMap::new(),
            step: 0,
            epoch: 0,
            state_variables: None,
        };
        if trainer.model.has_input_shape() {
            trainer.check_build()?;
        }
        Ok(trainer)
    }

    /// Builds the model once, as Keras does at compile (or, for a model without an input shape,
    /// at the first data): a model that cannot be built fails here, and the build's and the
    /// optimizer's warnings are known before training.
    fn check_build(&mut self) -> Result<()> {
        let built = models::build(self.model.as_ref(), 1, Mode::Training)?;
        let mut warnings = built.network.ctx.warnings.clone();
        let trainable: Vec<&crate::layers::Weight> = built.network.ctx.weights.iter().filter(|w| w.trainable).collect();
        warnings.extend(self.optimizer.prepare(&trainable)?);
        self.warnings = warnings;
        Ok(())
    }

    /// Gives a model without an input shape (a `Sequential` made without one) `data`'s, as
    /// Keras builds such a model at its first data.
    fn adopt_input_shape(&mut self, data: &Dataset) -> Result<()> {
        if !self.model.has_input_shape() && self.model.set_input_shape(&data.sample_shape) {
            self.check_build()?;
        }
        Ok(())
    }

    /// Keras' `compile(loss=[...])` for a model of several outputs: one loss per output, in the
    /// order of the model's outputs (checked against them when the step is made).
    pub fn losses<L: Arg<Loss>>(mut self, losses: impl IntoIterator<Item = L>) -> Result<Trainer> {
        self.losses = losses.into_iter().map(|l| l.resolve()).collect::<Result<_>>()?;
        self.plans.clear();
        Ok(self)
    }

    /// Keras' `loss_weights`: the weight of each output's loss in the total that training
    /// minimizes (`loss` in the logs), in the order of the model's outputs; each output's own
    /// loss is logged unweighted as `<output>_loss`.
    pub fn loss_weights(mut self, weights: &[f32]) -> Result<Trainer> {
        if let Some(w) = weights.iter().find(|w| !w.is_finite()) {
            return Err(Error::invalid("compile", "loss_weights", format!("{w} is not a finite weight")));
        }
        self.loss_weights = weights.to_vec();
        self.plans.clear();
        Ok(self)
    }

    /// Larq's warnings about the compiled model and optimizer, e.g. a binary kernel quantizer
    /// without a `kernel_constraint` ("starved weights") or a variable no optimizer of a
    /// [`super::optimizers::CaseOptimizer`] trains; also logged. The command line prints them.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Optimizer steps taken so far.
    pub fn steps(&self) -> usize {
        self.step
    }

    /// Epochs trained so far (restored with the state by [`Trainer::load_state`]).
    pub fn epochs_done(&self) -> usize {
        self.epoch
    }

    /// Buffer figures of the training step for `batch` samples (GPU plans), made if needed.
    pub fn step_memory(&mut self, batch: usize) -> Result<Option<PlanMemory>> {
        Ok(self.planned(true, batch)?.plan.memory())
    }

    /// Bytes of the persistent tensors (weights, statistics, slots, metric sums).
    pub fn param_bytes(&self) -> u64 {
        self.params.iter().map(|(_, t)| (t.shape().numel() * t.dtype().size()) as u64).sum()
    }

    fn planned(&mut self, train: bool, batch: usize) -> Result<&mut Step> {
        if !self.plans.contains_key(&(train, batch)) {
            let step = self.record(train, batch)?;
            self.plans.insert((train, batch), step);
        }
        Ok(self.plans.get_mut(&(train, batch)).expect("inserted"))
    }

    /// Records and plans the step for (mode, batch).
    fn record(&mut self, train: bool, batch: usize) -> Result<Step> {
        let (graph, outputs, step) = self.record_graph(train, batch)?;
        Ok(step(Plan::new(&self.device, &graph, &outputs, &mut self.params)?))
    }

    /// The graph of one training step on `batch` samples (forward, loss, backward and optimizer
    /// updates), as the step's plan runs it: for inspecting which ops a step records.
    pub fn training_graph(&self, batch: usize) -> Result<Graph> {
        Ok(self.record_graph(true, batch)?.0)
    }

    /// Records the step for (mode, batch): its graph, the values to fetch, and what makes the
    /// [`Step`] once the graph is planned.
    pub(super) fn record_graph(&self, train: bool, batch: usize) -> Result<(Graph, Vec<ValueId>, impl FnOnce(Plan) -> Step)> {
        let mode = if train { Mode::Training } else { Mode::Inference };
        let mut built = models::build(self.model.as_ref(), batch, mode)?;
        let inputs: Vec<String> = self.model.inputs().into_iter().map(|(name, _)| name).collect();
        let names = built.output_names();
        let count = built.outputs.len();
        if count == 0 {
            return Err(Error::invalid("compile", "model", "the model has no outputs to train"));
        }
        for (what, n) in [("losses", self.losses.len()), ("loss_weights", self.loss_weights.len())] {
            if n != 0 && n != count {
                return Err(Error::invalid(
                    "compile",
                    what,
                    format!("{n} given for a model of {count} {} ({})", crate::text::plural(count, "output"), names.join(", ")),
                ));
            }
        }
        let penalty = built.regularization_loss()?;
        let weights: Vec<crate::layers::Weight> = built.network.ctx.weights.iter().filter(|w| w.trainable).cloned().collect();
        let flip_metrics: Vec<(String, ValueId)> = built.network.ctx.metrics.iter().map(|(n, f)| (n.clone(), f.result)).collect();
        let g = &mut built.network.graph;
        let mut outputs = Vec::new();
        let mut losses = Vec::new();
        for (k, (&value, name)) in built.outputs.iter().zip(names).enumerate() {
            let loss = self.losses.get(k).copied().unwrap_or(self.loss);
            let dims = g.value(value).shape.dims().to_vec();
            let (tdtype, tdims) = loss.target_spec(&dims);
            let target_name = if k == 0 { "target".to_string() } else { format!("target_{k}") };
            let target = g.input(&target_name, tdims, tdtype)?;
            let l = loss.build(g, value, target)?;
            let weighted = match self.loss_weights.get(k) {
                Some(&w) if w != 1.0 => g.scale(l, w)?,
                _ => l,
            };
            losses.push((l, weighted, target));
            outputs.push(Output { name, value, dims, target: target_name, loss });
        }
        let mut total = losses[0].1;
        for &(_, weighted, _) in &losses[1..] {
            total = g.add(total, weighted)?;
        }
        if let Some(p) = penalty {
            total = g.add(total, p)?;
        }

        let mut hypers = Vec::new();
        if train {
            let refs: Vec<&crate::layers::Weight> = weights.iter().collect();
            self.optimizer.prepare(&refs)?;
            let vars: Vec<ValueId> = weights.iter().map(|w| w.variable).collect();
            let grads = g.backward(total, &vars)?;
            let mut u = Updates::default();
            for (w, grad) in weights.iter().zip(grads) {
                let new = self.optimizer.update(g, &mut u, w, grad)?;
                if new == w.variable {
                    continue;
                }
                let new = match &w.constraint {
                    Some(c) => c.apply(g, new)?,
                    None => new,
                };
                g.assign(w.variable, new)?;
            }
            u.finish(g)?;
            hypers = u.inputs.keys().cloned().collect();
        }

        // Metric sums, reset when `keep` is fed 0. With several outputs Keras logs each output's
        // loss and metrics under its name as well: `loss`, `dense_loss`, `dense_accuracy`.
        let prefix = if train { "train_metrics" } else { "eval_metrics" };
        let keep_name = format!("{prefix}/keep");
        let keep = g.input(&keep_name, [1], DType::F32)?;
        let mut sums = Vec::new();
        let mut sum = |g: &mut Graph, name: String, per_batch: ValueId| -> Result<()> {
            sums.push((name.clone(), accumulate(g, &format!("{prefix}/{name}"), keep, per_batch)?));
            Ok(())
        };
        let scaled_loss = g.scale(total, batch as f32)?;
        sum(g, "loss".into(), scaled_loss)?;
        let several = outputs.len() > 1;
        let named = |o: &Output, what: &str| if several { format!("{}_{what}", o.name) } else { what.to_string() };
        if several {
            for (o, &(l, _, _)) in outputs.iter().zip(&losses) {
                let scaled = g.scale(l, batch as f32)?;
                sum(g, named(o, "loss"), scaled)?;
            }
        }
        for (o, &(_, _, target)) in outputs.iter().zip(&losses) {
            if self.metrics.is_empty() {
                break;
            }
            let classes = *o.dims.last().unwrap_or(&1);
            let rows = target_len(&o.dims);
            let pred = g.reshape(o.value, [rows, classes])?;
            let labels = match o.loss.target_spec(&o.dims).0 {
                DType::I32 => g.reshape(target, [rows])?,
                _ => g.reshape(target, [rows, classes])?,
            };
            // argmax picks the first of tied scores: for accuracy a tie with an earlier class
            // also ranks above the label (in_top_k, for top-k, counts ties as in).
            let mut ranks: [Option<ValueId>; 2] = [None, None]; // by first_ties, each made once
            for m in &self.metrics {
                let first_ties = *m == Metric::Accuracy;
                let rank = match ranks[usize::from(first_ties)] {
                    Some(r) => r,
                    None => *ranks[usize::from(first_ties)].insert(g.label_rank(pred, labels, first_ties)?),
                };
                let k = g.fill([1], m.k() as f32 - 0.5)?;
                let hit = g.binary(BinaryOp::Gt, k, rank)?;
                let hits = g.sum(hit, &[0], false)?;
                // A metric of the rows of a sample's output: its mean over them, per sample.
                let hits = if rows == batch { hits } else { g.scale(hits, batch as f32 / rows as f32)? };
                let hits = g.reshape(hits, [1])?;
                sum(g, named(o, &m.name()), hits)?;
            }
        }
        let n = g.fill([1], batch as f32)?;
        let count = accumulate(g, &format!("{prefix}/count"), keep, n)?;

        let mut fetched: Vec<ValueId> = outputs.iter().map(|o| o.value).collect();
        fetched.extend(flip_metrics.iter().map(|(_, v)| *v));
        let step = move |plan| Step { plan, inputs, outputs, sums, count, keep: keep_name, hypers, flips: flip_metrics };
        Ok((built.network.graph, fetched, step))
    }

    /// Feeds one batch and the per-step inputs, and runs the step.
    fn run_batch(&mut self, train: bool, data: &Dataset, indices: &[usize], first: bool) -> Result<()> {
        self.feed_batch(train, data, indices, first, true)?.plan.run()?;
        if train {
            self.step += 1;
        }
        Ok(())
    }

    /// Runs two training steps on the first `batch` samples of `data`, the second with GPU
    /// timestamps around every dispatch, and returns each of its dispatch's time in order (see
    /// [`Plan::profile`]). The first warms up: some drivers (lavapipe) compile a pipeline on its
    /// first dispatch. The steps are real ones: the weights and the step count advance as in
    /// `fit`.
    pub fn profile_step(&mut self, data: &Dataset, batch: usize) -> Result<Vec<KernelTime>> {
        if batch == 0 || batch > data.len() {
            return Err(Error::invalid("profile_step", "batch", format!("{batch} is not between 1 and the {} samples", data.len())));
        }
        let indices: Vec<usize> = (0..batch).collect();
        let timed = |d: &crate::Device| matches!(d, crate::Device::Gpu(c) if c.features.contains(wgpu::Features::TIMESTAMP_QUERY));
        // Without timestamps `profile` fails at once; nothing runs before it then.
        let first = if timed(self.feed_batch(true, data, &indices, true, true)?.plan.device()) {
            self.feed_batch(true, data, &indices, true, true)?.plan.run()?;
            self.step += 1;
            false
        } else {
            true
        };
        let times = self.feed_batch(true, data, &indices, first, true)?.plan.profile()?;
        self.step += 1;
        Ok(times)
    }

    /// Feeds one batch and the per-step inputs to the step's plan, and returns it; without
    /// `labels` (for `predict`) the targets fed are zeros.
    fn feed_batch(&mut self, train: bool, data: &Dataset, indices: &[usize], first: bool, labels: bool) -> Result<&mut Step> {
        self.adopt_input_shape(data)?;
        let batch = indices.len();
        let hyper_values: Vec<(String, f32)> = if train { self.hyper_values()? } else { Vec::new() };
        let step = self.planned(train, batch)?;
        for (k, input) in step.inputs.iter().enumerate() {
            let shape = data.input_shape(k).ok_or_else(|| input_count_error(step.inputs.len(), data, "the data"))?;
            let dims: Vec<usize> = std::iter::once(batch).chain(shape.iter().copied()).collect();
            step.plan.feed(input, &HostTensor::f32(dims, data.gather_input(k, indices))?)?;
        }
        if labels {
            check_output_count(&step.outputs, data)?;
        }
        for (k, o) in step.outputs.iter().enumerate() {
            let target = match data.gather_labels(k, indices).filter(|_| labels) {
                Some(labels) => o.target_tensor(labels, indices)?,
                // Samples without labels, for `predict`: any target will do.
                None => {
                    let (dtype, dims) = o.loss.target_spec(&o.dims);
                    let zeros = TensorData::zeros(dtype, dims.iter().product());
                    HostTensor::new(dims, zeros)?
                }
            };
            step.plan.feed(&o.target, &target)?;
        }
        step.plan.feed(&step.keep, &HostTensor::f32([1], vec![if first { 0.0 } else { 1.0 }])?)?;
        for (name, v) in &hyper_values {
            if step.hypers.contains(name) {
                step.plan.feed(name, &HostTensor::f32([1], vec![*v])?)?;
            }
        }
        Ok(step)
    }

    /// The value of every hyperparameter for the next step: its schedule at the step, unless a
    /// scheduler overrides it.
    fn hyper_values(&self) -> Result<Vec<(String, f32)>> {
        self.hyper_values_at(self.step, self.epoch)
    }

    /// The value of every hyperparameter at a step of an epoch (see [`Trainer::hyper_values`]).
    fn hyper_values_at(&self, step: usize, epoch: usize) -> Result<Vec<(String, f32)>> {
        let mut values: Vec<(String, f32)> = self.optimizer.hyperparameters().into_iter().map(|(n, s)| (n, s.at(step))).collect();
        for s in &self.schedulers {
            let Some(slot) = values.iter_mut().find(|(n, _)| *n == s.hyperparameter) else {
                let known: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
                return Err(Error::unknown("hyperparameter", &s.hyperparameter, known));
            };
            slot.1 = s.schedule.at(if s.every == Every::Epoch { epoch } else { step });
        }
        Ok(values)
    }

    /// Reads the metric sums of one mode (variables shared by all its plans) and returns the
    /// means over samples.
    fn read_metrics(&self, train: bool) -> Result<BTreeMap<String, f64>> {
        block("Trainer::fit", "a loop of Trainer::train_on_batch_async", self.read_metrics_async(train))
    }

    async fn read_metrics_async(&self, train: bool) -> Result<BTreeMap<String, f64>> {
        let Some(step) = self.plans.iter().find(|((t, _), _)| *t == train).map(|(_, s)| s) else {
            return Ok(BTreeMap::new());
        };
        let count = step.plan.fetch_async(step.count).await?.as_f32()?[0] as f64;
        let mut out = BTreeMap::new();
        for (name, v) in &step.sums {
            let sum = step.plan.fetch_async(*v).await?.as_f32()?[0] as f64;
            out.insert(name.clone(), if count > 0.0 { sum / count } else { 0.0 });
        }
        Ok(out)
    }

    /// Keras' `train_on_batch`: one optimizer step on the samples of `data` at `indices`;
    /// returns the loss and metrics of that batch alone.
    pub fn train_on_batch(&mut self, data: &Dataset, indices: &[usize]) -> Result<BTreeMap<String, f64>> {
        block("Trainer::train_on_batch", "Trainer::train_on_batch_async", self.train_on_batch_async(data, indices))
    }

    /// [`Trainer::train_on_batch`] without blocking, as the browser needs: the step is
    /// submitted at once, the metrics are read back when the GPU has finished it.
    pub async fn train_on_batch_async(&mut self, data: &Dataset, indices: &[usize]) -> Result<BTreeMap<String, f64>> {
        if indices.is_empty() {
            return Err(Error::invalid("train_on_batch", "indices", "no samples"));
        }
        if let Some(&i) = indices.iter().find(|&&i| i >= data.len()) {
            return Err(Error::invalid("train_on_batch", "indices", format!("sample {i} is not below the {} samples", data.len())));
        }
        self.adopt_input_shape(data)?;
        self.check_inputs("train_on_batch", data, "the data")?;
        self.run_batch(true, data, indices, true)?;
        self.read_metrics_async(true).await
    }

    /// The largest batch of at most `batch` samples whose inference step fits the adapter
    /// (planned, so the step is ready): a batch whose buffers exceed the adapter's limits is
    /// halved until one fits. Inference treats samples independently, so any split gives the
    /// same outputs and metrics.
    fn inference_batch(&mut self, batch: usize) -> Result<usize> {
        let mut b = batch.max(1);
        loop {
            match self.planned(false, b) {
                Ok(_) => return Ok(b),
                Err(Error::LimitExceeded { .. }) if b > 1 => b = b.div_ceil(2),
                Err(e) => return Err(e),
            }
        }
    }

    /// Plans the training step for `batch` samples, turning a batch the adapter cannot hold into
    /// an error that says so (a training step runs its whole batch at once).
    fn plan_training(&mut self, batch: usize) -> Result<()> {
        match self.planned(true, batch) {
            Ok(_) => Ok(()),
            Err(e @ Error::LimitExceeded { .. }) => Err(Error::invalid(
                "fit",
                "batch_size",
                format!("a training step of {batch} samples does not fit the adapter: {e}; train with a smaller batch size"),
            )),
            Err(e) => Err(e),
        }
    }

    /// Checks a data set against the model before any step runs: a sample of every input's
    /// shape, labels or targets for every output, and every label naming one of the output's
    /// classes. `what` names the set in errors (`"the test set"`). Plans the inference step of
    /// one sample to learn the outputs' shapes.
    pub fn check_dataset(&mut self, data: &Dataset, what: &str) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.adopt_input_shape(data)?;
        self.check_inputs("fit", data, what)?;
        let step = self.planned(false, 1)?;
        check_output_count(&step.outputs, data)?;
        let all: Vec<usize> = (0..data.len()).collect();
        let several = step.outputs.len() > 1;
        for (k, o) in step.outputs.iter().enumerate() {
            o.check(data.labels(k).expect("counted"), &all, what).map_err(|e| match e {
                Error::InvalidArgument { reason, .. } if several => {
                    Error::invalid("fit", "labels", format!("output `{}`: {reason}", o.name))
                }
                e => e,
            })?;
        }
        Ok(())
    }

    /// Checks that `data` has samples for each of the model's inputs, of its shape.
    fn check_inputs(&self, call: &'static str, data: &Dataset, what: &str) -> Result<()> {
        let inputs = self.model.inputs();
        if data.input_count() != inputs.len() {
            return Err(input_count_error(inputs.len(), data, what));
        }
        for (k, (input, shape)) in inputs.iter().enumerate() {
            let got = data.input_shape(k).expect("counted");
            if got != shape.as_slice() {
                let at = if inputs.len() > 1 { format!(" for input {k}") } else { String::new() };
                return Err(Error::shapes(
                    call,
                    got,
                    shape,
                    format!("{what} has samples of shape {got:?}{at}, but the model's input `{input}` takes {shape:?} per sample"),
                ));
            }
        }
        Ok(())
    }

    /// Keras' `fit`: trains on `data` and returns the per-epoch history. Everything the run
    /// needs is checked before the first step: the data sets' labels, the training
    /// steps' (full and last partial batch) and validation's buffers against the adapter, and
    /// the checkpoint's path and folder; then the callbacks' hooks run as
    /// [`super::Callback`] describes.
    pub fn fit(&mut self, data: &Dataset, validation: Option<&Dataset>, opts: &FitOptions) -> Result<History> {
        if cfg!(target_arch = "wasm32") {
            // Epoch timing needs a clock std does not have there, and every readback would block.
            return Err(Error::WouldBlock { call: "Trainer::fit", instead: "a loop of Trainer::train_on_batch_async" });
        }
        if opts.batch_size == 0 || opts.epochs == 0 {
            return Err(Error::invalid("fit", "batch_size/epochs", "must be positive"));
        }
        if opts.verbose > 2 {
            return Err(Error::invalid(
                "fit",
                "verbose",
                format!("{} is not 0 (silent), 1 (a progress bar) or 2 (a line per epoch)", opts.verbose),
            ));
        }
        let (train, held_out) =
            if opts.validation_split > 0.0 { data.split(opts.validation_split).map(|(a, b)| (a, Some(b)))? } else { (data.clone(), None) };
        let validation = held_out.as_ref().or(validation);
        if train.is_empty() {
            return Err(Error::invalid("fit", "data", "no training samples"));
        }
        self.check_dataset(&train, "the training set")?;
        let mut logged: BTreeMap<String, f64> = BTreeMap::new();
        if let Some(val) = validation {
            if val.is_empty() {
                return Err(Error::invalid("fit", "validation", "the validation set has no samples (is validation_split too small?)"));
            }
            self.check_dataset(val, "the validation set")?;
            let b = self.inference_batch(opts.batch_size.min(val.len()))?;
            logged.extend(self.plans[&(false, b)].sums.iter().map(|(n, _)| (format!("val_{n}"), 0.0)));
        }
        let full = opts.batch_size.min(train.len());
        self.plan_training(full)?;
        if train.len() > opts.batch_size && train.len() % opts.batch_size != 0 {
            self.plan_training(train.len() % opts.batch_size)?;
        }
        let step = &self.plans[&(true, full)];
        logged.extend(step.sums.iter().chain(&step.flips).map(|(n, _)| (n.clone(), 0.0)));
        // The names the callbacks watch must be logged, or they would fail after an epoch.
        if let Some(es) = &opts.early_stopping {
            monitored(&logged, &es.monitor)?;
        }
        if let Some(c) = &opts.checkpoint {
            if c.save_best_only {
                monitored(&logged, &c.monitor)?;
            }
            c.check(opts.epochs.saturating_add(self.epoch))?;
        }
        let callbacks = &opts.callbacks;
        let metric_names: Vec<String> = self.plans[&(true, full)].sums.iter().map(|(n, _)| n.clone()).filter(|n| n != "loss").collect();
        let mut history = History::default();
        let (mut es_best, mut checkpoint_best) = (Best::default(), Best::default());
        each(callbacks, |c| c.on_train_begin())?;
        let mut last_logs = Logs::new();
        for number in 1..=opts.epochs {
            let epoch = self.epoch;
            each(callbacks, |c| c.on_epoch_begin(epoch))?;
            let order = match opts.shuffle_seed {
                Some(seed) => shuffled(train.len(), seed.wrapping_add(self.epoch as u64)),
                None => (0..train.len()).collect(),
            };
            let batches: Vec<&[usize]> = order.chunks(opts.batch_size).collect();
            if opts.verbose == 1 {
                eprintln!("Epoch {number}/{}", opts.epochs);
            }
            let bar = (opts.verbose == 1).then(|| progress_bar(batches.len()));
            // Mid-epoch readbacks stall the queue: only for someone who sees them.
            let log_points = bar.is_some() || !callbacks.is_empty();
            let start = Instant::now();
            let (mut stop, mut steps, mut samples, mut last_batch) = (false, 0, 0, full);
            for (i, b) in batches.iter().enumerate() {
                each(callbacks, |c| c.on_train_batch_begin(i))?;
                // The sums (shared by the full and the partial batch plans) restart with the epoch.
                self.run_batch(true, &train, b, i == 0)?;
                (steps, samples, last_batch) = (steps + 1, samples + b.len(), b.len());
                let read = (log_points && (i + 1) % opts.log_every.max(1) == 0) || any_wants_batch_logs(callbacks, i);
                let mut logs = Logs::new();
                if read {
                    let metrics = self.read_metrics(true)?;
                    if let Some(bar) = &bar {
                        let rate = samples as f64 / start.elapsed().as_secs_f64();
                        bar.set_message(format!(" - {}", format_in_order(&metrics, &metric_names, Some(rate))));
                    }
                    logs = metrics;
                    logs.extend(self.flip_ratios(last_batch)?);
                    logs.extend(self.hyper_logs(self.step - 1, epoch)?);
                }
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
                if each_control(callbacks, |c| c.on_train_batch_end(i, &logs))? == Control::Stop {
                    stop = true;
                    break;
                }
            }
            let seconds = start.elapsed().as_secs_f64();
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let mut values = self.read_metrics(true)?;
            values.extend(self.flip_ratios(last_batch)?);
            if let Some(val) = validation {
                each(callbacks, |c| c.on_test_begin())?;
                let bar = (opts.verbose == 1).then(validation_bar);
                self.run_evaluation(val, opts.batch_size, |done, total| {
                    if let Some(bar) = &bar {
                        bar.set_length(total as u64);
                        bar.set_position(done as u64);
                    }
                })?;
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                let m = self.read_metrics(false)?;
                each(callbacks, |c| c.on_test_end(&m))?;
                values.extend(m.into_iter().map(|(k, v)| (format!("val_{k}"), v)));
            }
            let log = EpochLog { epoch, values, seconds, images_per_second: samples as f64 / seconds };
            if opts.verbose > 0 {
                let line = EpochLine {
                    number,
                    epochs: opts.epochs,
                    steps,
                    seconds: start.elapsed().as_secs_f64(),
                    step_seconds: seconds / steps as f64,
                    values: format_in_order(&log.values, &metric_names, Some(log.images_per_second)),
                };
                eprintln!("{}", line.render(opts.verbose));
            }
            let mut logs = log.values.clone();
            logs.extend(self.hyper_logs(self.step - 1, epoch)?);
            self.epoch += 1;
            if let Some(c) = &opts.checkpoint {
                let save = !c.save_best_only || checkpoint_best.improves(&c.monitor, monitored(&log.values, &c.monitor)?, log.epoch, 0.0);
                if save {
                    let state = c.path_for(log.epoch);
                    if c.save_weights_only {
                        self.save_state(&state)?;
                    } else {
                        self.save_checkpoint(&state.with_extension("json"), &state)?;
                    }
                }
            }
            if let Some(es) = &opts.early_stopping {
                let v = monitored(&log.values, &es.monitor)?;
                stop |= !es_best.improves(&es.monitor, v, log.epoch, es.min_delta) && es_best.since(log.epoch) >= es.patience;
            }
            stop |= each_control(callbacks, |c| c.on_epoch_end(epoch, &logs))? == Control::Stop;
            history.epochs.push(log);
            last_logs = logs;
            if stop {
                history.stopped_early = true;
                break;
            }
        }
        each(callbacks, |c| c.on_train_end(&last_logs))?;
        Ok(history)
    }

    /// The flip ratios after the last step, which ran the training plan of `batch` samples (the
    /// other plan's outputs are older).
    fn flip_ratios(&self, batch: usize) -> Result<Logs> {
        let step = &self.plans[&(true, batch)];
        step.flips.iter().map(|(name, v)| Ok((name.clone(), step.plan.fetch(*v)?.as_f32()?[0] as f64))).collect()
    }

    /// The hyperparameters at a step of an epoch by their names in logs: `adam/learning_rate` is
    /// `learning_rate`, as Keras logs it, unless another optimizer's hyperparameter has that
    /// name too.
    fn hyper_logs(&self, step: usize, epoch: usize) -> Result<Logs> {
        let values = self.hyper_values_at(step, epoch)?;
        let short = |n: &str| n.rsplit_once('/').map_or(n, |(_, s)| s).to_string();
        Ok(values
            .iter()
            .map(|(n, v)| {
                let s = short(n);
                let unique = values.iter().filter(|(m, _)| short(m) == s).count() == 1;
                (if unique { s } else { n.clone() }, *v as f64)
            })
            .collect())
    }

    /// Keras' `evaluate`: the loss and metrics over `data` in inference mode.
    pub fn evaluate(&mut self, data: &Dataset, batch_size: usize) -> Result<BTreeMap<String, f64>> {
        block("Trainer::evaluate", "Trainer::evaluate_async", self.evaluate_async(data, batch_size))
    }

    /// [`Trainer::evaluate`] without blocking, as the browser needs.
    pub async fn evaluate_async(&mut self, data: &Dataset, batch_size: usize) -> Result<BTreeMap<String, f64>> {
        self.check_dataset(data, "the data")?;
        self.run_evaluation(data, batch_size, |_, _| {})?;
        self.read_metrics_async(false).await
    }

    /// Runs the inference steps whose sums [`Trainer::evaluate`] reads; `done(batches run,
    /// batches)` after each.
    fn run_evaluation(&mut self, data: &Dataset, batch_size: usize, mut done: impl FnMut(usize, usize)) -> Result<()> {
        if batch_size == 0 || data.is_empty() {
            return Err(Error::invalid("evaluate", "data/batch_size", "needs samples and a positive batch size"));
        }
        let batch_size = self.inference_batch(batch_size.min(data.len()))?;
        let order: Vec<usize> = (0..data.len()).collect();
        let batches: Vec<&[usize]> = order.chunks(batch_size).collect();
        for (i, b) in batches.iter().enumerate() {
            self.run_batch(false, data, b, i == 0)?;
            done(i + 1, batches.len());
        }
        Ok(())
    }

    /// Keras' `predict`: the model's output for `data`'s samples (labels, if any, are not
    /// read) in inference mode, batch after batch, as one tensor `[samples, outputs...]` (e.g.
    /// `[N, 10]` class probabilities). A model of several outputs gives them all with
    /// [`Trainer::predict_outputs`].
    pub fn predict(&mut self, data: &Dataset, batch_size: usize) -> Result<HostTensor> {
        block("Trainer::predict", "Trainer::predict_async", self.predict_async(data, batch_size))
    }

    /// [`Trainer::predict`] without blocking, as the browser needs.
    pub async fn predict_async(&mut self, data: &Dataset, batch_size: usize) -> Result<HostTensor> {
        let mut outputs = self.predict_outputs_async(data, batch_size).await?;
        if outputs.len() != 1 {
            let names: Vec<String> = self.planned(false, 1)?.outputs.iter().map(|o| o.name.clone()).collect();
            return Err(Error::invalid(
                "predict",
                "model",
                format!("the model has {} outputs ({}): predict_outputs returns each", outputs.len(), names.join(", ")),
            ));
        }
        Ok(outputs.remove(0))
    }

    /// Keras' `predict` on a model of several outputs: one tensor `[samples, output...]` per
    /// output, in the model's order.
    pub fn predict_outputs(&mut self, data: &Dataset, batch_size: usize) -> Result<Vec<HostTensor>> {
        block("Trainer::predict_outputs", "Trainer::predict_outputs_async", self.predict_outputs_async(data, batch_size))
    }

    /// [`Trainer::predict_outputs`] without blocking, as the browser needs.
    pub async fn predict_outputs_async(&mut self, data: &Dataset, batch_size: usize) -> Result<Vec<HostTensor>> {
        if batch_size == 0 {
            return Err(Error::invalid("predict", "batch_size", "must be positive"));
        }
        self.adopt_input_shape(data)?;
        self.check_inputs("predict", data, "the data")?;
        let per_sample: Vec<Vec<usize>> = self.planned(false, 1)?.outputs.iter().map(|o| o.dims[1..].to_vec()).collect();
        let mut out = vec![Vec::new(); per_sample.len()];
        if !data.is_empty() {
            let batch_size = self.inference_batch(batch_size.min(data.len()))?;
            let order: Vec<usize> = (0..data.len()).collect();
            for b in order.chunks(batch_size) {
                let step = self.feed_batch(false, data, b, true, false)?;
                step.plan.run()?;
                let step = &self.plans[&(false, b.len())];
                for (o, values) in step.outputs.iter().zip(&mut out) {
                    values.extend_from_slice(step.plan.fetch_async(o.value).await?.as_f32()?);
                }
            }
        }
        per_sample
            .into_iter()
            .zip(out)
            .map(|(dims, values)| HostTensor::f32(std::iter::once(data.len()).chain(dims).collect::<Vec<_>>(), values))
            .collect()
    }
}

/// `acc <- acc * keep + value`, an f32 `[1]` variable named `name`; returns the variable.
fn accumulate(g: &mut Graph, name: &str, keep: ValueId, value: ValueId) -> Result<ValueId> {
    let acc = g.variable(name, [1], Init::Zeros)?;
    let kept = g.mul(acc, keep)?;
    let next = g.add(kept, value)?;
    g.assign(acc, next)?;
    Ok(acc)
}

impl Output {
    /// Checks labels or targets of the samples `samples` (their indices in `what`, the set)
    /// against the output: float targets of its shape for a loss that takes them, or one class
    /// below its class count per sample of a `[batch, classes]` output.
    fn check(&self, labels: LabelsRef<'_>, samples: &[usize], what: &str) -> Result<()> {
        match labels {
            LabelsRef::Targets(t) => {
                if self.loss.target_spec(&self.dims).0 != DType::F32 {
                    return Err(float_targets_for_labels(self.loss));
                }
                if t.shape != self.dims[1..] {
                    return Err(Error::shapes(
                        "fit",
                        &t.shape,
                        &self.dims[1..],
                        format!(
                            "{what} has targets of shape {:?} per sample, but the model's output is {:?} (layer `{}`)",
                            t.shape,
                            &self.dims[1..],
                            self.name
                        ),
                    ));
                }
                Ok(())
            }
            LabelsRef::Classes(c) => {
                if self.dims.len() != 2 {
                    // Dense layers act on the last axis, so images reach the output with their
                    // spatial axes still there when Flatten is missing.
                    let shape: Vec<String> =
                        std::iter::once("batch".to_string()).chain(self.dims[1..].iter().map(|d| d.to_string())).collect();
                    return Err(Error::invalid(
                        "fit",
                        "model",
                        format!(
                            "the output of layer `{}` has shape [{}], but the labels give one class per sample, which needs [batch, classes]; \
                             Dense layers act on the last axis only: add a Flatten layer (or GlobalAveragePooling2D) before the first Dense layer",
                            self.name,
                            shape.join(", ")
                        ),
                    ));
                }
                check_labels(c, samples, self.dims[1]).map_err(|e| match e {
                    Error::InvalidArgument { reason, .. } if !what.is_empty() => {
                        Error::invalid("fit", "labels", format!("{what}: {reason}"))
                    }
                    e => e,
                })
            }
        }
    }

    /// The target tensor of one batch's labels (of the samples at `indices`).
    fn target_tensor(&self, labels: Labels, indices: &[usize]) -> Result<HostTensor> {
        self.check(labels.as_ref(), indices, "")?;
        let (tdtype, tdims) = self.loss.target_spec(&self.dims);
        match (labels, tdtype) {
            (Labels::Targets(t), _) => HostTensor::f32(tdims, t.values),
            (Labels::Classes(c), DType::I32) => HostTensor::i32(tdims, c),
            (Labels::Classes(c), _) => {
                let one_hot = one_hot(&c, self.dims[1], tdims.iter().product())?;
                HostTensor::f32(tdims, one_hot)
            }
        }
    }
}

/// A data set with samples for another number of inputs than the model's.
fn input_count_error(inputs: usize, data: &Dataset, what: &str) -> Error {
    Error::invalid(
        "fit",
        "x",
        format!(
            "{what} has samples for {} {}, but the model takes {inputs} {}: give one array per input, in the model's order (Dataset::from_arrays)",
            data.input_count(),
            crate::text::plural(data.input_count(), "input"),
            crate::text::plural(inputs, "input")
        ),
    )
}

/// Checks that `data` labels every output.
fn check_output_count(outputs: &[Output], data: &Dataset) -> Result<()> {
    let n = data.output_count();
    if n == outputs.len() {
        return Ok(());
    }
    let names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
    let reason = match n {
        0 => "the samples have no labels: training and evaluation need labels or targets for each output".to_string(),
        _ => format!(
            "the data has labels for {n} {}, but the model has {} {} ({}): give labels or targets for each, in the model's order (Dataset::from_arrays)",
            crate::text::plural(n, "output"),
            outputs.len(),
            crate::text::plural(outputs.len(), "output"),
            names.join(", ")
        ),
    };
    Err(Error::invalid("fit", "y", reason))
}

/// Rows of a prediction `[.., C]`: the product of its leading axes.
fn target_len(pred: &[usize]) -> usize {
    pred[..pred.len().saturating_sub(1)].iter().product()
}

/// Every label must name one of the model's `classes` (the sparse cross-entropy would
/// otherwise give NaN); errors name the data set sample.
fn check_labels(labels: &[i32], samples: &[usize], classes: usize) -> Result<()> {
    match labels.iter().zip(samples).find(|(&l, _)| usize::try_from(l).map_or(true, |l| l >= classes)) {
        Some((l, i)) => Err(Error::invalid("fit", "labels", format!("label {l} of sample {i} is not a class below {classes}"))),
        None => Ok(()),
    }
}

/// One-hot rows of `classes` for checked integer labels (targets of the non-sparse losses).
/// Float targets given to a loss that takes integer labels.
fn float_targets_for_labels(loss: Loss) -> Error {
    Error::invalid(
        "fit",
        "targets",
        format!(
            "{} takes one integer class label per sample, not float targets; for one-hot or soft targets use categorical_crossentropy",
            loss.keras_name()
        ),
    )
}

fn one_hot(labels: &[i32], classes: usize, len: usize) -> Result<Vec<f32>> {
    if labels.len() * classes != len {
        return Err(Error::invalid(
            "fit",
            "targets",
            format!("{} labels do not make {len} one-hot values of {classes} classes", labels.len()),
        ));
    }
    let mut v = vec![0.0; len];
    for (i, &l) in labels.iter().enumerate() {
        v[i * classes + l as usize] = 1.0;
    }
    Ok(v)
}

/// The training bar of an epoch of `len` steps (Keras' verbose 1): steps, bar, elapsed time,
/// ETA, then the message (` - ` and the running values).
fn progress_bar(len: usize) -> indicatif::ProgressBar {
    let width = len.to_string().len();
    let template = format!("{{pos:>{width}}}/{{len}} [{{bar:30}}] {{elapsed}} (ETA {{eta}}){{msg}}");
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(indicatif::ProgressStyle::with_template(&template).expect("valid template").progress_chars("=> "));
    bar
}

/// The bar while the validation set is evaluated (its length is set by the first batch).
fn validation_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("validation {pos}/{len} [{bar:30}] {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// What an epoch's line shows.
struct EpochLine {
    /// The epoch's number in this fit, from 1.
    number: usize,
    epochs: usize,
    steps: usize,
    /// The epoch's time, validation included.
    seconds: f64,
    step_seconds: f64,
    /// [`format_metrics`]' text.
    values: String,
}

impl EpochLine {
    /// Keras' end-of-epoch line: at verbose 1 (under its `Epoch n/N` line) `5/5 [====] 3s
    /// 12ms/step - loss: ...`, at verbose 2 `Epoch 1/5 - 5/5 - 3s - 12ms/step - loss: ...`.
    fn render(&self, verbose: u8) -> String {
        let (n, time, per_step) = (self.steps, duration(self.seconds), per_step(self.step_seconds));
        match verbose {
            1 => format!("{n}/{n} [{}] {time} {per_step} - {}", "=".repeat(30), self.values),
            _ => format!("Epoch {}/{} - {n}/{n} - {time} - {per_step} - {}", self.number, self.epochs, self.values),
        }
    }
}

/// Seconds as Keras' progress bar shows a time: `7s`, `2:05`, `1:02:05`.
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}:{:02}", s / 60, s % 60),
        _ => format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
    }
}

/// The time per step as Keras shows it: `2s/step`, `12ms/step`, `350us/step`.
fn per_step(seconds: f64) -> String {
    if seconds >= 1.0 || seconds <= 0.0 || !seconds.is_finite() {
        format!("{seconds:.0}s/step")
    } else if seconds >= 1e-3 {
        format!("{:.0}ms/step", seconds * 1e3)
    } else {
        format!("{:.0}us/step", seconds * 1e6)
    }
}

/// Logged values in Keras' order, e.g. `loss: 0.5123 - accuracy: 0.8012 - val_loss: 0.6012 -
/// val_accuracy: 0.7500 - flip_ratio/dense/kernel: 2.0000e-4 - 1234 img/s`: `loss` first, then
/// the metrics, then `val_loss` and the validation metrics, then the flip ratios, each group in
/// name order (in `fit`'s lines, the metrics in the order `compile` was given them), and the
/// rate last. Values of magnitude below 1e-3 are in exponent form, as Keras writes them.
pub fn format_metrics(m: &BTreeMap<String, f64>, rate: Option<f64>) -> String {
    format_in_order(m, &[], rate)
}

/// [`format_metrics`] with the metrics in the order of `metrics` (their names).
fn format_in_order(m: &BTreeMap<String, f64>, metrics: &[String], rate: Option<f64>) -> String {
    let mut names: Vec<&String> = m.keys().collect();
    // Stable: names of the same rank keep their (name) order.
    names.sort_by_key(|n| log_rank(n, metrics));
    let mut parts: Vec<String> = names.into_iter().map(|k| format!("{k}: {}", log_number(m[k]))).collect();
    if let Some(r) = rate {
        parts.push(format!("{r:.0} img/s"));
    }
    parts.join(" - ")
}

/// Where a logged name goes in [`format_metrics`]: (group, position in the group).
fn log_rank(name: &str, metrics: &[String]) -> (u8, usize) {
    if name.starts_with("flip_ratio/") {
        return (4, 0);
    }
    let (group, base) = match name.strip_prefix("val_") {
        Some(base) => (2, base),
        None => (0, name),
    };
    match base {
        "loss" => (group, 0),
        _ => (group + 1, metrics.iter().position(|m| m == base).unwrap_or(usize::MAX)),
    }
}

/// Keras' `.4f`, or `.4e` for magnitudes below 1e-3 (but 0).
fn log_number(v: f64) -> String {
    if v == 0.0 || v.abs() >= 1e-3 || !v.is_finite() {
        format!("{v:.4}")
    } else {
        format!("{v:.4e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_lines_read_as_keras_writes_them() {
        let line = EpochLine { number: 2, epochs: 5, steps: 469, seconds: 3.7, step_seconds: 0.0052, values: "loss: 0.5000".into() };
        assert_eq!(line.render(1), format!("469/469 [{}] 3s 5ms/step - loss: 0.5000", "=".repeat(30)));
        assert_eq!(line.render(2), "Epoch 2/5 - 469/469 - 3s - 5ms/step - loss: 0.5000");
        assert_eq!((duration(0.4), duration(125.0), duration(3725.0)), ("0s".into(), "2:05".into(), "1:02:05".into()));
        assert_eq!((per_step(2.4), per_step(0.0123), per_step(0.00035)), ("2s/step".into(), "12ms/step".into(), "350us/step".into()));
    }

    #[test]
    fn metrics_keep_the_order_compile_gave_them() {
        let m: BTreeMap<String, f64> =
            [("accuracy", 0.5), ("loss", 1.0), ("top_2", 0.75), ("val_top_2", 0.25), ("val_accuracy", 0.125), ("val_loss", 2.0)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        let order = ["top_2".to_string(), "accuracy".to_string()];
        assert_eq!(
            format_in_order(&m, &order, None),
            "loss: 1.0000 - top_2: 0.7500 - accuracy: 0.5000 - val_loss: 2.0000 - val_top_2: 0.2500 - val_accuracy: 0.1250"
        );
        assert_eq!((log_number(0.0), log_number(-0.00025), log_number(f64::NAN)), ("0.0000".into(), "-2.5000e-4".into(), "NaN".into()));
    }
}
