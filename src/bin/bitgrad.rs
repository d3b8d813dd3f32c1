//! The `bitgrad` command line: a thin layer that parses arguments and calls the library.

use bitgrad::text::plural;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bitgrad", version, about = "Binarized neural networks on the GPU through wgpu")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the GPU adapters wgpu can see, best first, and the one bitgrad would pick.
    Devices,
    /// Benchmark the binary kernels against our f32 kernels on one adapter: prints a table and
    /// JSON.
    Bench {
        /// Run on `cpu` (reference backend) or `gpu` (best adapter).
        #[arg(long, default_value = "gpu")]
        device: String,
        /// Also run the f32 GEMMs that take minutes on a software adapter.
        #[arg(long)]
        all: bool,
        /// Minimum seconds of timed runs per case.
        #[arg(long, default_value_t = 1.0)]
        min_time: f64,
        /// Write the JSON to this file instead of standard output.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// Use the kernel variants without subgroup operations even where the adapter has them.
        #[arg(long)]
        no_subgroups: bool,
        /// Time whole training steps of the main job's models instead of single kernels: wall
        /// time, images/s, dispatches, GPU time by kernel family and memory per step (random
        /// 28x28 images, so no data files are needed).
        #[arg(long)]
        train: bool,
        /// With --train: mlp, cnn or both.
        #[arg(long, default_value = "both")]
        model: String,
        /// With --train: timed steps per model (after one warm-up step).
        #[arg(long, default_value_t = 20)]
        steps: usize,
        /// With --train: samples per step.
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
    },
    /// The kernel tuner's cache (choices of kernel variants per adapter and shape class, made on
    /// first use; `BITGRAD_TUNE=off|quick|full` sets how): list it, or clear it.
    Tune {
        /// Delete the cache, so that every choice is timed again.
        #[arg(long)]
        clear: bool,
    },
    /// Train a BNN on Fashion-MNIST (the main job): Larq's user-guide MLP and MNIST tutorial CNN
    /// with Larq's recipe (Adam, batch 64), or bitgrad's better recipe.
    Train(TrainArgs),
    /// Inference: run a Keras model (JSON from `model.to_json()`) with its weights, or a packed
    /// export (.safetensors, no --weights), on a batch of inputs; BatchNorm uses its moving
    /// statistics.
    Run {
        #[command(flatten)]
        on: ModelInput,
        /// Where to write the output (.npy); for a model with several outputs a .safetensors
        /// file, one tensor per output named by its layer.
        #[arg(long)]
        output: std::path::PathBuf,
    },
    /// Gradients: a training-mode forward (BatchNorm with batch statistics) with loss
    /// sum(output * upstream); writes the gradient of the input under `input` and of every
    /// trainable weight under its Keras name.
    Grad {
        #[command(flatten)]
        on: ModelInput,
        /// The upstream gradient, shaped as the output (.npy).
        #[arg(long)]
        upstream: std::path::PathBuf,
        /// Where to write the gradients (.safetensors).
        #[arg(long)]
        output: std::path::PathBuf,
    },
    /// Packed export for inference: ±1 kernels as packed bits, BatchNormalization folded into the
    /// layer before it; prints what was packed and folded and the sizes. `bitgrad run` runs the
    /// file.
    Export {
        /// The model's JSON (from `model.to_json()`).
        model: std::path::PathBuf,
        /// Its latent weights (safetensors keyed by Keras weight name, or a state saved by
        /// `bitgrad train --checkpoint`).
        #[arg(long)]
        weights: std::path::PathBuf,
        /// Where to write the packed model (.safetensors).
        #[arg(long)]
        output: std::path::PathBuf,
    },
    /// Larq's summary tables of a Keras model (JSON from `model.to_json()`).
    Summary {
        /// The model's JSON.
        model: std::path::PathBuf,
        /// Print the summary's figures as JSON instead of the tables.
        #[arg(long)]
        json: bool,
        /// Print which kernel each layer's product runs on (XNOR, bit planes or f32), with its
        /// operands' values and what training saves per input element, instead of the tables.
        #[arg(long, conflicts_with = "json")]
        products: bool,
    },
}

/// A Keras model, its weights, a batch of inputs and the device: what `run` and `grad` take.
#[derive(clap::Args)]
struct ModelInput {
    /// The model's JSON (from `model.to_json()`), or for `run` a packed export (.safetensors).
    model: std::path::PathBuf,
    /// Its weights (safetensors, keyed by Keras weight name without ":0", or a state saved by
    /// `bitgrad train --checkpoint`); not for a packed export, which holds its own.
    #[arg(long)]
    weights: Option<std::path::PathBuf>,
    /// The inputs: a float32 .npy file, C order, batch first.
    #[arg(long)]
    input: std::path::PathBuf,
    /// Run on `cpu` (reference backend) or `gpu` (best adapter).
    #[arg(long, default_value = "gpu")]
    device: String,
}

impl ModelInput {
    /// Whether the model is a packed export (by its extension).
    fn is_packed(&self) -> bool {
        self.model.extension().is_some_and(|e| e == "safetensors")
    }

    /// The Keras model, its weights file, the inputs and the device.
    fn load(&self) -> bitgrad::Result<(bitgrad::io::keras::KerasModel, &std::path::Path, bitgrad::HostTensor, bitgrad::Device)> {
        let weights = self.weights.as_deref().ok_or_else(|| {
            let why = match self.is_packed() {
                true => "a packed export runs inference only (`bitgrad run`)".to_string(),
                false => format!("`{}` is a Keras model; give its weights with --weights", self.model.display()),
            };
            bitgrad::Error::invalid("command line", "--weights", why)
        })?;
        Ok((bitgrad::io::keras::read_model(&self.model)?, weights, bitgrad::io::npy::read(&self.input)?, device(&self.device)?))
    }

    /// The files read, for checking that no output replaces one.
    fn inputs(&self) -> Vec<(&'static str, &std::path::Path)> {
        let mut v = vec![("MODEL", self.model.as_path()), ("--input", self.input.as_path())];
        v.extend(self.weights.as_deref().map(|w| ("--weights", w)));
        v
    }

    /// The model's outputs in inference mode, named by their layers.
    fn infer(&self) -> bitgrad::Result<Vec<(String, bitgrad::HostTensor)>> {
        if !self.is_packed() {
            let (model, weights, x, d) = self.load()?;
            let file = bitgrad::io::safetensors::TensorFile::read(weights)?;
            return bitgrad::io::execute::infer_outputs(&model, &d, &file, &weights.display().to_string(), &x);
        }
        if let Some(w) = &self.weights {
            let why = format!("`{}` is a packed export, which holds its weights; drop --weights {}", self.model.display(), w.display());
            return Err(bitgrad::Error::invalid("command line", "--weights", why));
        }
        let packed = bitgrad::io::packed::PackedModel::read(&self.model)?;
        bitgrad::io::execute::infer_packed_outputs(&packed, &device(&self.device)?, &bitgrad::io::npy::read(&self.input)?)
    }
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Run on `cpu` (reference backend) or `gpu` (best adapter).
    #[arg(long, default_value = "gpu")]
    device: String,
    /// Which model: `mlp` (the Larq user guide's), `cnn` (Larq's MNIST tutorial BNN), `both`, or
    /// a Keras model's JSON (`model.to_json()`, e.g. a Larq Zoo architecture such as
    /// QuickNetSmall at 32x32x3), trained from its initializers.
    #[arg(long, default_value = "both")]
    model: String,
    /// `larq` (Adam 1e-3, Larq's models) or `better` (BatchNorm after the first layer, Bop for
    /// binary kernels + Adam with cosine decay for the rest; a Keras model keeps its layers and
    /// trains with the Adam schedule).
    #[arg(long, default_value = "larq")]
    recipe: String,
    /// Epochs (default: 5 for the MLP, 3 for the CNN, as in the reference figures; 1 for a Keras
    /// model).
    #[arg(long)]
    epochs: Option<usize>,
    /// Samples per step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Directory with the MNIST-format files (default: Debian's dataset-fashion-mnist), or with
    /// CIFAR-10's binary batches (`data_batch_1.bin` ... `test_batch.bin`, as
    /// `cifar-10-binary.tar.gz` extracts them; 32x32x3 images scaled to [-1, 1]).
    #[arg(long, default_value = bitgrad::train::data::FASHION_MNIST_DIR)]
    data: std::path::PathBuf,
    /// Train on the first N training samples only (a quick run).
    #[arg(long)]
    limit: Option<usize>,
    /// Seed of the weight initializers and of the shuffles.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write each model's history here (`.csv` or `.json`; the model name is inserted).
    #[arg(long)]
    history: Option<std::path::PathBuf>,
    /// Save the trainer's state after every epoch here (`{epoch}` becomes the epoch number; the
    /// model name is inserted).
    #[arg(long)]
    checkpoint: Option<std::path::PathBuf>,
    /// Resume from a state saved by --checkpoint, training on to --epochs in all (one model only).
    #[arg(long)]
    resume: Option<std::path::PathBuf>,
    /// Time one training step per kernel (GPU timestamps), print the table, and stop.
    #[arg(long)]
    profile: bool,
    /// Write TensorBoard event files here (`DIR/<model>/train`, per epoch: loss, accuracy,
    /// learning rate, flip ratios): `tensorboard --logdir DIR`.
    #[arg(long)]
    tensorboard: Option<std::path::PathBuf>,
    /// Keras' verbosity: 0 silent, 1 a progress bar per epoch, 2 one line per epoch.
    #[arg(long, default_value_t = 1)]
    verbose: u8,
}

fn main() {
    // Before anything else, and so before any thread: it may set XDG_RUNTIME_DIR.
    bitgrad::device::ensure_runtime_dir();
    // Rust ignores SIGPIPE, so writing to a closed pipe (`bitgrad summary m.json | head -1`)
    // would be an error or a panic in print!; restoring the default makes bitgrad end quietly
    // there, as Unix tools do. Files are written atomically, so nothing is left half-written.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to the default, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // The build's warnings (starved weights) are printed as `warning:` lines by the commands
    // themselves, so the logger leaves them out unless asked (RUST_LOG).
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn,bitgrad::models=error")).init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// A model `bitgrad train` trains: one of the main job's, or a Keras model read from its JSON
/// (named by the file's stem).
enum TrainModel {
    MainJob(&'static str),
    Keras(String, bitgrad::io::keras::KerasModel),
}

impl TrainModel {
    fn name(&self) -> &str {
        match self {
            TrainModel::MainJob(m) => m,
            TrainModel::Keras(name, _) => name,
        }
    }
}

/// `train --model`: the main job's models, or a Keras model's JSON (a path ending in `.json`).
fn train_models(model: &str) -> bitgrad::Result<Vec<TrainModel>> {
    let path = std::path::Path::new(model);
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
        let keras = bitgrad::io::keras::read_model(path)?;
        let name = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "model".into());
        return Ok(vec![TrainModel::Keras(name, keras)]);
    }
    main_job_models("train", model)
        .map_err(|_| {
            bitgrad::Error::invalid("train", "--model", format!("`{model}` is not one of mlp, cnn, both, nor a Keras model's .json file"))
        })
        .map(|m| m.into_iter().map(TrainModel::MainJob).collect())
}

/// `--model`: one of the main job's models, or `both`.
fn main_job_models(command: &'static str, model: &str) -> bitgrad::Result<Vec<&'static str>> {
    match model {
        "both" => Ok(bitgrad::bench::MAIN_JOB.to_vec()),
        _ => match bitgrad::bench::MAIN_JOB.iter().find(|m| **m == model) {
            Some(m) => Ok(vec![*m]),
            None => Err(bitgrad::Error::invalid(command, "--model", format!("`{model}` is not one of mlp, cnn, both"))),
        },
    }
}

fn device(name: &str) -> bitgrad::Result<bitgrad::Device> {
    match name {
        "cpu" => Ok(bitgrad::Device::cpu()),
        "gpu" => bitgrad::Device::gpu(),
        other => Err(bitgrad::Error::invalid("--device", "device", format!("`{other}` is not one of cpu, gpu"))),
    }
}

fn run(cli: Cli) -> bitgrad::Result<()> {
    match cli.command {
        Command::Devices => {
            let adapters = bitgrad::device::list_adapters();
            if adapters.is_empty() {
                println!("no GPU adapters found (the CPU reference backend is always available)");
            }
            for (i, a) in adapters.iter().enumerate() {
                println!("{i}: {a} driver: {}", a.driver);
            }
            let d = bitgrad::Device::try_best()?;
            println!("selected: {}", d.describe());
            if let Some(ctx) = d.gpu_context() {
                let l = &ctx.limits;
                println!(
                    "limits: max_storage_buffer_binding_size {} B, max_buffer_size {} B, max_compute_invocations_per_workgroup {}, max_compute_workgroup_storage_size {} B",
                    l.max_storage_buffer_binding_size, l.max_buffer_size, l.max_compute_invocations_per_workgroup, l.max_compute_workgroup_storage_size
                );
                println!(
                    "features: subgroups {}, f16 {}, timestamps {}",
                    ctx.has_subgroups(),
                    ctx.features.contains(wgpu::Features::SHADER_F16),
                    ctx.features.contains(wgpu::Features::TIMESTAMP_QUERY)
                );
            }
            Ok(())
        }
        Command::Run { on, output } => {
            bitgrad::io::check_outputs(&on.inputs(), &[("--output", &output)])?;
            write_outputs(&output, on.infer()?)
        }
        Command::Grad { on, upstream, output } => {
            let mut inputs = on.inputs();
            inputs.push(("--upstream", &upstream));
            bitgrad::io::check_outputs(&inputs, &[("--output", &output)])?;
            let (model, weights, x, d) = on.load()?;
            let dy = bitgrad::io::npy::read(&upstream)?;
            bitgrad::io::execute::gradients(&model, &d, weights, &x, &dy)?.write(&output)
        }
        Command::Export { model, weights, output } => {
            bitgrad::io::check_outputs(&[("MODEL", &model), ("--weights", &weights)], &[("--output", &output)])?;
            let m = bitgrad::io::keras::read_model(&model)?;
            let latent = bitgrad::io::safetensors::TensorFile::read(&weights)?;
            let (file, report) = bitgrad::io::packed::export(&m, &latent, &weights.display().to_string())?;
            file.write(&output)?;
            print!("{}", export_report(&report, &weights, &output)?);
            Ok(())
        }
        Command::Summary { model, json, products } => {
            use bitgrad::models::Model;
            let m = bitgrad::io::keras::read_model(&model)?;
            let built = m.build(1, bitgrad::layers::Mode::Inference)?;
            for w in built.warnings() {
                eprintln!("warning: {w}");
            }
            let summary = built.summary();
            if json {
                println!("{}", summary.to_json());
            } else if products {
                print!("{}", summary.products_table());
            } else {
                print!("{}", summary.table());
            }
            Ok(())
        }
        Command::Tune { clear } => {
            if clear {
                match bitgrad::device::tune::clear_cache()? {
                    Some(path) => println!("removed {}", path.display()),
                    None => println!("no tuning cache to remove"),
                }
                return Ok(());
            }
            match bitgrad::device::tune::cache_path() {
                Some(path) => println!("tuning cache: {}", path.display()),
                None => println!("no tuning cache location (set BITGRAD_CACHE_DIR)"),
            }
            for (device, records) in bitgrad::device::tune::cached_records() {
                println!("\n{device}");
                for r in records {
                    println!("  {:<40} {}", r.class, r.chosen);
                }
            }
            Ok(())
        }
        Command::Bench { device: name, all, min_time, json, no_subgroups, train, model, steps, batch_size } => {
            let models = main_job_models("bench", &model)?;
            let min_time = std::time::Duration::try_from_secs_f64(min_time).map_err(|_| {
                bitgrad::Error::invalid(
                    "bench",
                    "--min-time",
                    format!("{min_time:e} must be a non-negative number of seconds a timer can hold"),
                )
            })?;
            if let Some(path) = &json {
                bitgrad::io::check_outputs(&[], &[("--json", path)])?;
            }
            let d = match name.as_str() {
                "gpu" if no_subgroups => bitgrad::Device::gpu_with(&bitgrad::GpuOptions { subgroups: false, ..Default::default() })?,
                _ => device(&name)?,
            };
            eprintln!("benchmarking on {}", d.describe());
            let (mut results, mut steps_measured) = (Vec::new(), Vec::new());
            if train {
                for m in models {
                    eprintln!("  {m}: {steps} training steps of {batch_size}");
                    steps_measured.push(bitgrad::bench::train_step(&d, m, batch_size, steps)?);
                }
                print!("{}", bitgrad::bench::step_table(&steps_measured));
            } else {
                let opts = bitgrad::bench::SuiteOptions { all, min_time };
                results = bitgrad::bench::suite(&d, opts, |what| eprintln!("  {what}"))?;
                print!("{}", bitgrad::bench::table(&results));
            }
            let tuning = d.gpu_context().map(|c| c.tuning.records()).unwrap_or_default();
            if !tuning.is_empty() {
                print!("\n{}", bitgrad::bench::tuning_table(&d));
            }
            let report = serde_json::json!({
                "adapter": d.describe(),
                "kernels": results,
                "train": steps_measured,
                "tuning": tuning,
            });
            let text = serde_json::to_string_pretty(&report).expect("measurements serialize");
            match json {
                Some(path) => bitgrad::io::write_atomically(&path, (text + "\n").as_bytes())?,
                None => println!("{text}"),
            }
            Ok(())
        }
        Command::Train(args) => train(args),
    }
}

fn train(args: TrainArgs) -> bitgrad::Result<()> {
    use bitgrad::models::zoo;
    use bitgrad::train::optimizers::{Adam, Bop, CaseOptimizer, Optimizer, Predicate};
    use bitgrad::train::{FitOptions, Loss, Metric, Schedule, Trainer};
    use std::sync::Arc;

    if args.batch_size == 0 {
        return Err(bitgrad::Error::invalid("train", "--batch-size", "must be at least 1"));
    }
    if args.epochs == Some(0) {
        return Err(bitgrad::Error::invalid("train", "--epochs", "must be at least 1"));
    }
    let better = match args.recipe.as_str() {
        "larq" => false,
        "better" => true,
        other => return Err(bitgrad::Error::invalid("train", "--recipe", format!("`{other}` is not one of larq, better"))),
    };
    let models = train_models(&args.model)?;
    if args.resume.is_some() && models.len() > 1 {
        return Err(bitgrad::Error::invalid("train", "--resume", "resumes one model; pass --model mlp or cnn"));
    }
    let names: Vec<String> = models.iter().map(|m| m.name().to_string()).collect();
    check_train_outputs(&args, &names)?;
    let d = device(&args.device)?;
    let (train, test) = bitgrad::train::data::load_dir(&args.data)?;
    let train = match args.limit {
        Some(n) => train.take(n),
        None => train,
    };
    if train.is_empty() {
        return Err(bitgrad::Error::invalid("train", "--limit", "leaves no training samples"));
    }
    eprintln!("device: {}", d.describe());
    if d.gpu_context().is_some_and(|c| c.summary.is_software()) {
        eprintln!(
            "note: the only GPU adapter is a software rasterizer, which runs on this machine's CPU cores; for small models the \
             CPU reference (--device cpu) may be as fast. The full main job (both models) took about 17 minutes on 2 cores \
             (README: Quick start)."
        );
    }
    eprintln!("data: {} ({} train, {} test)", args.data.display(), train.len(), test.len());
    // Every model is compiled and checked before any trains, so nothing a later model needs
    // can fail after an earlier one has spent its time.
    let mut runs = Vec::new();
    for source in models {
        let which = source.name().to_string();
        let epochs = epochs_of(&args, &which);
        let steps = epochs.saturating_mul(train.len().div_ceil(args.batch_size));
        // The better recipes, chosen with scripts/larq_reference.py (docs/PERFORMANCE.md): the
        // MLP gains a BatchNorm after each layer and trains its binary kernels with Bop; the CNN
        // (and a Keras model) keeps its layers and trains with Adam from 1e-2 on a cosine decay
        // (Bop did worse on the CNN in Larq).
        let adam = || -> Arc<dyn Optimizer> {
            match better {
                false => Arc::new(Adam::new(1e-3)),
                true => Arc::new(Adam::new(Schedule::CosineDecay { initial: 1e-2, decay_steps: steps, alpha: 0.01 })),
            }
        };
        let (model, optimizer): (Box<dyn bitgrad::models::Model>, Arc<dyn Optimizer>) = match (source, better) {
            (TrainModel::MainJob("mlp"), false) => (Box::new(zoo::larq_guide_mlp().with_seed(args.seed)), adam()),
            (TrainModel::MainJob("mlp"), true) => {
                let binary: Predicate = Arc::new(Bop::is_binary_variable);
                let bop = Bop { threshold: Schedule::Constant(1e-6), gamma: Schedule::Constant(1e-3), ..Bop::new() };
                let case = CaseOptimizer::new(vec![(binary, Arc::new(bop))], Some(adam()));
                (Box::new(zoo::better_mlp().with_seed(args.seed)), Arc::new(case))
            }
            (TrainModel::MainJob(_), _) => (Box::new(zoo::larq_mnist_cnn().with_seed(args.seed)), adam()),
            (TrainModel::Keras(_, model), _) => (Box::new(model.with_seed(args.seed)), adam()),
        };
        eprintln!(
            "model: {which} ({} recipe), {epochs} {}, batch {}, optimizer {}",
            args.recipe,
            plural(epochs, "epoch"),
            args.batch_size,
            optimizer.describe()
        );
        let mut trainer =
            Trainer::compile(model, Loss::SparseCategoricalCrossentropy { from_logits: false }, optimizer, &[Metric::Accuracy], &d)?;
        for w in trainer.warnings() {
            eprintln!("warning: {w}");
        }
        let mut done = 0;
        if let Some(path) = &args.resume {
            trainer.load_state(path)?;
            done = trainer.epochs_done();
            eprintln!("resumed from {} after epoch {done}", path.display());
        }
        if args.profile {
            print_profile(&trainer.profile_step(&train, args.batch_size)?);
            continue;
        }
        // What follows training is checked before it: the data sets' labels (and the test
        // plan), and the training step's buffers.
        trainer.check_dataset(&train, "the training set")?;
        trainer.check_dataset(&test, "the test set")?;
        let memory = trainer.step_memory(args.batch_size.min(train.len()))?;
        let opts = FitOptions {
            epochs: epochs.checked_sub(done).filter(|&e| e > 0).ok_or_else(|| {
                bitgrad::Error::invalid("train", "--epochs", format!("{epochs} in all, but the resumed state has {done} done already"))
            })?,
            batch_size: args.batch_size,
            shuffle_seed: Some(args.seed),
            verbose: args.verbose,
            callbacks: args
                .tensorboard
                .as_ref()
                .map(|dir| {
                    let board: bitgrad::train::SharedCallback =
                        bitgrad::train::callbacks::shared(bitgrad::train::TensorBoard::new(dir.join(&which)));
                    vec![board]
                })
                .unwrap_or_default(),
            checkpoint: args.checkpoint.as_ref().map(|p| bitgrad::train::ModelCheckpoint::new(per_model(p, &which))),
            ..FitOptions::default()
        };
        runs.push((which, trainer, opts, memory));
    }
    for (which, mut trainer, opts, memory) in runs {
        let history = trainer.fit(&train, None, &opts)?;
        let test_metrics = trainer.evaluate(&test, 256)?;
        let rate = history.mean_images_per_second();
        if let Some(m) = memory {
            eprintln!(
                "step memory: {:.1} MiB transient (pooled; {:.1} MiB unpooled) + {:.1} MiB inputs + {:.1} MiB weights, statistics and slots",
                m.pooled_bytes as f64 / 1048576.0,
                m.unpooled_bytes as f64 / 1048576.0,
                m.input_bytes as f64 / 1048576.0,
                trainer.param_bytes() as f64 / 1048576.0
            );
        }
        if let Some(path) = &args.history {
            history.write(&per_model(path, &which))?;
        }
        println!(
            "{which} ({} recipe): test accuracy {:.2}% (loss {:.4}) after {} {}; {:.0} images/s training on {}",
            args.recipe,
            100.0 * test_metrics["accuracy"],
            test_metrics["loss"],
            history.epochs.len(),
            plural(history.epochs.len(), "epoch"),
            rate,
            d.describe()
        );
    }
    Ok(())
}

/// The epochs `which` trains for in all: `--epochs`, else 5 for the MLP and 3 for the CNN (as in
/// the reference figures) and 1 for a Keras model.
fn epochs_of(args: &TrainArgs, which: &str) -> usize {
    args.epochs.unwrap_or(match which {
        "mlp" => 5,
        "cnn" => 3,
        _ => 1,
    })
}

/// Checks what `train` will write before anything runs: `--checkpoint` names a `.safetensors`
/// file (its model JSON goes beside it), and no history, state or JSON file of any model and
/// epoch is another of them or a data file, nor (but for a checkpoint's state) the state
/// `--resume` reads.
fn check_train_outputs(args: &TrainArgs, models: &[String]) -> bitgrad::Result<()> {
    if let Some(c) = &args.checkpoint {
        bitgrad::io::check_output_path("--checkpoint", c)?;
        bitgrad::train::ModelCheckpoint::new(c.clone()).check_name("--checkpoint")?;
    }
    if let Some(h) = &args.history {
        bitgrad::io::check_output_path("--history", h)?;
    }
    // (option, file, whether it is a checkpoint's state)
    let mut files: Vec<(&'static str, std::path::PathBuf, bool)> = Vec::new();
    for which in models {
        let epochs = epochs_of(args, which);
        if let Some(h) = &args.history {
            files.push(("--history", per_model(h, which), false));
        }
        if let Some(c) = &args.checkpoint {
            let checkpoint = bitgrad::train::ModelCheckpoint::new(per_model(c, which));
            let per_epoch = c.to_string_lossy().contains("{epoch}");
            for e in 0..if per_epoch { epochs.min(bitgrad::train::ModelCheckpoint::CHECKED_EPOCHS) } else { 1 } {
                let state = checkpoint.path_for(e);
                files.extend(checkpoint.files_for(e).into_iter().map(|p| ("--checkpoint", p.clone(), p == state)));
            }
        }
    }
    let data = bitgrad::train::data::data_files(&args.data);
    let inputs: Vec<(&'static str, &std::path::Path)> = data.iter().map(|p| ("--data", p.as_path())).collect();
    let outputs: Vec<(&'static str, &std::path::Path)> = files.iter().map(|(w, p, _)| (*w, p.as_path())).collect();
    bitgrad::io::check_outputs(&inputs, &outputs)?;
    // The state `--resume` reads is in memory before training, so a checkpoint may save over it
    // (continue and keep saving); nothing else may.
    if let Some(r) = &args.resume {
        let others: Vec<(&'static str, &std::path::Path)> = files.iter().filter(|f| !f.2).map(|(w, p, _)| (*w, p.as_path())).collect();
        bitgrad::io::check_outputs(&[("--resume", r.as_path())], &others)?;
    }
    Ok(())
}

/// Writes `run`'s outputs: one as `.npy`, or all of them into a `.safetensors` file keyed by
/// output name.
fn write_outputs(path: &std::path::Path, mut outputs: Vec<(String, bitgrad::HostTensor)>) -> bitgrad::Result<()> {
    if path.extension().is_some_and(|e| e == "safetensors") {
        let file = bitgrad::io::safetensors::TensorFile { tensors: outputs.into_iter().collect(), ..Default::default() };
        return file.write(path);
    }
    if outputs.len() != 1 {
        let names: Vec<String> = outputs.iter().map(|(n, _)| format!("`{n}`")).collect();
        return Err(bitgrad::Error::invalid(
            "run",
            "--output",
            format!(
                "the model has {} outputs ({}); write them all with --output FILE.safetensors (one tensor per output, named by its layer)",
                names.len(),
                names.join(", ")
            ),
        ));
    }
    bitgrad::io::npy::write(path, &outputs.remove(0).1)
}

/// `path` with `-MODEL` inserted before its extension (`.json` when it has none).
fn per_model(path: &std::path::Path, which: &str) -> std::path::PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let ext = path.extension().map(|e| e.to_string_lossy().to_string()).unwrap_or_else(|| "json".into());
    path.with_file_name(format!("{stem}-{which}.{ext}"))
}

/// Per kernel (shader::entry): dispatches, total time and share of the step, slowest first.
fn print_profile(times: &[bitgrad::runtime::KernelTime]) {
    let mut by_kernel: Vec<(String, usize, f64)> = Vec::new();
    for t in times {
        match by_kernel.iter_mut().find(|(k, _, _)| *k == t.kernel) {
            Some(row) => {
                row.1 += 1;
                row.2 += t.ns;
            }
            None => by_kernel.push((t.kernel.clone(), 1, t.ns)),
        }
    }
    by_kernel.sort_by(|a, b| b.2.total_cmp(&a.2));
    let total: f64 = times.iter().map(|t| t.ns).sum();
    println!("{:<40} {:>10} {:>10} {:>7}", "kernel", "dispatches", "ms", "share");
    for (kernel, n, ns) in &by_kernel {
        println!("{kernel:<40} {n:>10} {:>10.3} {:>6.1}%", ns / 1e6, 100.0 * ns / total);
    }
    println!("{:<40} {:>10} {:>10.3} {:>6.1}%", "total", times.len(), total / 1e6, 100.0);
    let mut slowest: Vec<(usize, &bitgrad::runtime::KernelTime)> = times.iter().enumerate().collect();
    slowest.sort_by(|a, b| b.1.ns.total_cmp(&a.1.ns));
    println!("\nslowest dispatches (position in the step, workgroups x,y,z):");
    for (i, t) in slowest.iter().take(10) {
        println!("  #{i:<4} {:<32} {:>14} {:>10.3} ms", t.kernel, format!("{:?}", t.workgroups), t.ns / 1e6);
    }
}

/// What `bitgrad export` prints: the kernels packed, the layers folded, the weights left in f32,
/// and the sizes of the two files.
fn export_report(r: &bitgrad::io::packed::PackReport, weights: &std::path::Path, output: &std::path::Path) -> bitgrad::Result<String> {
    use std::fmt::Write;
    let size = |p: &std::path::Path| {
        std::fs::metadata(p).map(|m| m.len()).map_err(|source| bitgrad::Error::Io { path: p.display().to_string(), source })
    };
    let mut out = String::new();
    let (f, p): (usize, usize) = (r.packed.iter().map(|k| k.float_bytes).sum(), r.packed.iter().map(|k| k.packed_bytes).sum());
    let _ = writeln!(out, "packed {} binary kernels: {f} B as f32 -> {p} B as bits ({:.1}x)", r.packed.len(), f as f64 / p.max(1) as f64);
    for k in &r.packed {
        let _ = writeln!(out, "  {:<40} {:>10} B -> {:>9} B", k.name, k.float_bytes, k.packed_bytes);
    }
    for (bn, into) in &r.folded {
        let _ = writeln!(out, "folded {bn} into {into}");
    }
    if !r.kept_float.is_empty() {
        let _ = writeln!(out, "kept as f32 (quantizers without a ±1 output): {}", r.kept_float.join(", "));
    }
    let (a, b) = (size(weights)?, size(output)?);
    let _ =
        writeln!(out, "tensors: {} B -> {} B ({:.1}x)", r.float_bytes, r.packed_bytes, r.float_bytes as f64 / r.packed_bytes.max(1) as f64);
    let _ = writeln!(out, "files: {} {a} B -> {} {b} B ({:.1}x smaller)", weights.display(), output.display(), a as f64 / b.max(1) as f64);
    Ok(out)
}
