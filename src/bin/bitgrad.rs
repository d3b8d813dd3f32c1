//! The `bitgrad` command line: a thin layer that parses arguments and calls the library.

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
    },
    /// Train a BNN on Fashion-MNIST (the main job).
    Train {
        /// Run on `cpu` (reference backend) or `gpu` (best adapter).
        #[arg(long, default_value = "gpu")]
        device: String,
    },
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
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
                let soft = if a.is_software() { ", software" } else { "" };
                println!("{i}: {} ({:?}, {:?}{soft}) driver: {}", a.name, a.backend, a.device_type, a.driver);
            }
            let d = bitgrad::Device::best();
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
        Command::Bench { device: name, all, min_time, json, no_subgroups } => {
            if !(min_time.is_finite() && min_time >= 0.0) {
                return Err(bitgrad::Error::invalid("bench", "--min-time", format!("{min_time} must be a non-negative number of seconds")));
            }
            let d = match name.as_str() {
                "gpu" if no_subgroups => bitgrad::Device::gpu_with(&bitgrad::GpuOptions { subgroups: false })?,
                _ => device(&name)?,
            };
            eprintln!("benchmarking on {}", d.describe());
            let opts = bitgrad::bench::SuiteOptions { all, min_time: std::time::Duration::from_secs_f64(min_time) };
            let results = bitgrad::bench::suite(&d, opts, |what| eprintln!("  {what}"))?;
            print!("{}", bitgrad::bench::table(&results));
            let text = serde_json::to_string_pretty(&results).expect("measurements serialize");
            match json {
                Some(path) => {
                    std::fs::write(&path, text + "\n").map_err(|source| bitgrad::Error::Io { path: path.display().to_string(), source })?
                }
                None => println!("{text}"),
            }
            Ok(())
        }
        Command::Train { device: name } => {
            let d = device(&name)?;
            // Layers, optimizers and the data pipeline arrive with the training milestone; until
            // then this command states the job it will run and on which device.
            println!("device: {}", d.describe());
            println!("job: train the Larq user-guide BNN (Flatten -> QuantDense(512, ste_sign kernel, weight_clip) -> QuantDense(10, ste_sign input and kernel, softmax))");
            println!("data: Fashion-MNIST from /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist), 60,000 train / 10,000 test");
            println!("recipe: Adam, batch 64, 5 epochs; reports a progress bar per epoch and a final test-accuracy and images/s line");
            println!("status: the engine core (graph, autodiff, planner, kernels) is in place; layers and the fit loop are not yet, so nothing is trained");
            Ok(())
        }
    }
}
