//! The `wgoptim` command line: a thin layer over the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wgoptim::gpu::list_adapters;
use wgoptim::verify::{self, twin_ulp_bound};
use wgoptim::{Backend, GpuContext, GpuOptimizer, bench};

#[derive(Parser)]
#[command(
    name = "wgoptim",
    version,
    about = "Fused GPU optimizer kernels on wgpu, checked against a CPU reference"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Device {
    /// The WGSL kernels on the wgpu device.
    Gpu,
    /// The kernels' f32 twins on the CPU.
    Cpu,
}

#[derive(Subcommand)]
enum Command {
    /// List the adapters wgpu sees and the one wgoptim would use.
    Info,
    /// Run every kernel variant against the f32 twin and the f64 oracle on random data.
    Verify {
        /// Parameters per run.
        #[arg(long, default_value_t = 1_000_003)]
        size: usize,
        /// Steps per run.
        #[arg(long, default_value_t = 100)]
        steps: u64,
        /// Only variants whose name contains this.
        #[arg(long)]
        only: Option<String>,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Print a learning-rate schedule as CSV (`step,lr[,momentum]`), optionally plotted.
    ///
    /// NAME is PyTorch's scheduler (StepLR, MultiStepLR, ExponentialLR, PolynomialLR, LinearLR,
    /// ConstantLR, CosineAnnealingLR, CosineAnnealingWarmRestarts, OneCycleLR, CyclicLR,
    /// ReduceLROnPlateau, or `constant`); parameters are `key=value` with PyTorch's names, e.g.
    /// `wgoptim schedule OneCycleLR max_lr=0.1 total_steps=100 anneal_strategy=linear`.
    /// `lr=` is the base lr (default 0.1); `warmup_steps=W [warmup_start_factor=f]` adds a
    /// linear warm-up; ReduceLROnPlateau takes `metrics=m0,m1,…`.
    Schedule {
        /// Scheduler name.
        name: String,
        /// `key=value` parameters.
        params: Vec<String>,
        /// Rows to print (steps 0 … N−1).
        #[arg(long, default_value_t = 100)]
        steps: u64,
        /// Also draw the curve into this .png or .svg.
        #[arg(long)]
        plot: Option<std::path::PathBuf>,
    },
    /// Replay recorded gradients through an optimizer and write the final parameters.
    ///
    /// `wgoptim replay adam lr=0.01 betas=0.9,0.99 --params p0.npy --grads g.npy --out p.npy`
    /// (hyperparameters with PyTorch's names and defaults; gradients one row per step).
    Replay {
        /// sgd, rmsprop, adam, adamw or adagrad.
        optimizer: String,
        /// `key=value` hyperparameters (lr, momentum, dampening, nesterov, alpha, centered,
        /// betas, eps, weight_decay, amsgrad, lr_decay, initial_accumulator_value, maximize).
        hyperparameters: Vec<String>,
        /// Initial parameters: 1-D float32 .npy.
        #[arg(long)]
        params: std::path::PathBuf,
        /// Gradients: 2-D float32 .npy, one row per step.
        #[arg(long)]
        grads: std::path::PathBuf,
        /// Where to write the final parameters (.npy, float32).
        #[arg(long)]
        out: std::path::PathBuf,
        /// A schedule as `wgoptim schedule` takes it, in one argument: "CosineAnnealingLR T_max=10".
        /// Its base lr is the optimizer's unless it names `lr=`.
        #[arg(long)]
        schedule: Option<String>,
        /// Run the GPU kernels or their CPU f32 twins.
        #[arg(long, value_enum, default_value_t = Device::Gpu)]
        device: Device,
        /// Also write the lr of each step (.npy, float64).
        #[arg(long)]
        lrs_out: Option<std::path::PathBuf>,
    },
    /// Memory of every buffer each optimizer variant allocates, from the allocations themselves.
    Memory {
        /// Parameters per optimizer.
        #[arg(long, default_value = "2^20", value_parser = parse_size)]
        params: usize,
        /// Variants (names as in `verify`), comma-separated; default: all.
        #[arg(long, value_delimiter = ',')]
        optimizers: Vec<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also draw bytes per parameter into this .png or .svg.
        #[arg(long)]
        plot: Option<std::path::PathBuf>,
    },
    /// Time each kernel's step against the device's copy bandwidth, measured beside it.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Parameter counts: numbers or powers of two written 2^k.
    #[arg(long, value_delimiter = ',', default_value = "2^16,2^20,2^24", value_parser = parse_size)]
    sizes: Vec<usize>,
    /// Variants (names as in `verify`), comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "sgd,sgd-momentum,rmsprop,rmsprop-centered-momentum,adam,adam-amsgrad,adamw,adagrad"
    )]
    optimizers: Vec<String>,
    /// Timed repetitions (median and min reported).
    #[arg(long, default_value_t = 15)]
    reps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Split the parameters into K tensors (packed into one flat buffer); several values
    /// compare, e.g. `--tensors 1,1000`.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    tensors: Vec<usize>,
    /// Clip the global gradient norm to this on the device (adds the norm pass).
    #[arg(long)]
    max_norm: Option<f64>,
    /// Skip steps with non-finite gradients (adds the norm pass).
    #[arg(long)]
    skip_nonfinite: bool,
    /// Print JSON instead of a table.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV instead of a table.
    #[arg(long)]
    csv: bool,
    /// Also draw % of copy bandwidth against size into this .png or .svg.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let parsed = match s.trim().strip_prefix("2^") {
        Some(k) => k.parse::<u32>().ok().and_then(|k| 1usize.checked_shl(k)),
        None => s.trim().replace('_', "").parse().ok(),
    };
    match parsed {
        Some(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "`{s}` is not a positive size (write e.g. 1000003 or 2^20)"
        )),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> wgoptim::Result<ExitCode> {
    match command {
        Command::Info => {
            for a in list_adapters() {
                println!(
                    "adapter: {} ({:?}, {:?}, {} {})",
                    a.name, a.backend, a.device_type, a.driver, a.driver_info
                );
            }
            let ctx = GpuContext::new()?;
            println!("selected: {}", ctx.describe());
            println!("features enabled: {:?}", ctx.device().features());
            let l = ctx.limits();
            println!(
                "limits: max_buffer_size {} B, max_storage_buffer_binding_size {} B, max_compute_workgroups_per_dimension {}",
                l.max_buffer_size,
                l.max_storage_buffer_binding_size,
                l.max_compute_workgroups_per_dimension
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            size,
            steps,
            only,
            seed,
        } => {
            let ctx = GpuContext::new()?;
            println!("adapter: {}", ctx.describe());
            println!(
                "{size} parameters, {steps} steps, seed {seed}; twin bound {} ULP, oracle |x-ref| <= {:e}*scale + {:e}*|ref|",
                twin_ulp_bound(steps),
                verify::ORACLE_ATOL,
                verify::oracle_rtol(steps)
            );
            println!(
                "{:<28} {:>10} {:>14} {:>10}  result",
                "variant", "ULP(twin)", "rel err(f64)", "tol used"
            );
            let mut failed = 0;
            for (name, optimizer) in verify::variants() {
                if only.as_deref().is_some_and(|o| !name.contains(o)) {
                    continue;
                }
                let params = verify::Data::new(seed).vector(size);
                let mut gpu = GpuOptimizer::with_params(&ctx, optimizer, &params)?;
                let reports =
                    verify::run_against_reference(&mut gpu, &params, steps, &[steps], seed + 1)?;
                for r in reports {
                    let ok = r.diff.passes(r.steps);
                    failed += usize::from(!ok);
                    println!(
                        "{name:<28} {:>10} {:>14.3e} {:>10.3}  {}",
                        r.diff.max_ulp,
                        r.diff.max_rel,
                        r.diff.tolerance_used,
                        if ok { "ok" } else { "FAIL" }
                    );
                }
            }
            if failed > 0 {
                eprintln!("{failed} variant(s) exceeded their bounds");
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Schedule {
            name,
            params,
            steps,
            plot,
        } => {
            let spec = wgoptim::schedule::spec::parse(&name, &params)?;
            let rows = spec.rows(steps)?;
            let cycled = rows.iter().any(|r| r.momentum.is_some());
            let mut out = String::from(if cycled {
                "step,lr,momentum\n"
            } else {
                "step,lr\n"
            });
            for r in &rows {
                match r.momentum {
                    Some(m) if cycled => out.push_str(&format!("{},{},{}\n", r.step, r.lr, m)),
                    _ => out.push_str(&format!("{},{}\n", r.step, r.lr)),
                }
            }
            print!("{out}");
            if let Some(path) = plot {
                let title = if params.is_empty() {
                    name.clone()
                } else {
                    format!("{name}({})", params.join(", "))
                };
                let series = |f: &dyn Fn(&wgoptim::schedule::spec::Row) -> Option<f64>,
                              label: &str| wgoptim::plot::Series {
                    name: label.to_string(),
                    points: rows
                        .iter()
                        .filter_map(|r| f(r).map(|v| (r.step as f64, v)))
                        .collect(),
                };
                let mut panels = vec![wgoptim::plot::Panel {
                    title,
                    x_label: "step".into(),
                    y_label: "learning rate".into(),
                    series: vec![series(&|r| Some(r.lr), "")],
                    ..Default::default()
                }];
                if cycled {
                    panels.push(wgoptim::plot::Panel {
                        title: "momentum (or Adam's beta1), cycled inversely".into(),
                        x_label: "step".into(),
                        y_label: "momentum".into(),
                        series: vec![series(&|r| r.momentum, "")],
                        ..Default::default()
                    });
                }
                wgoptim::plot::draw(&path, &panels, 1, (900, 420))?;
                eprintln!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            optimizer,
            hyperparameters,
            params,
            grads,
            out,
            schedule,
            device,
            lrs_out,
        } => {
            let opt = wgoptim::optim::spec::parse(&optimizer, &hyperparameters)?;
            let spec = match &schedule {
                None => None,
                Some(text) => {
                    let mut words = text.split_whitespace().map(str::to_string);
                    let name = words
                        .next()
                        .ok_or_else(|| wgoptim::Error::Argument("--schedule is empty".into()))?;
                    let mut params: Vec<String> = words.collect();
                    if !params.iter().any(|p| p.starts_with("lr=")) {
                        params.push(format!("lr={}", opt.lr()));
                    }
                    Some(wgoptim::schedule::spec::parse(&name, &params)?)
                }
            };
            let p0 = wgoptim::replay::read_params(&params)?;
            let g = wgoptim::replay::read_grads(&grads, p0.len())?;
            let mut backend: Box<dyn Backend> = match device {
                Device::Gpu => Box::new(GpuOptimizer::with_params(&GpuContext::new()?, opt, &p0)?),
                Device::Cpu => Box::new(wgoptim::CpuOptimizer::new(opt, &p0)?),
            };
            let lrs = wgoptim::replay::replay(backend.as_mut(), &g, spec.as_ref())?;
            wgoptim::replay::write_f32(&out, &backend.read_params()?)?;
            if let Some(path) = lrs_out {
                wgoptim::replay::write_f64(&path, &lrs)?;
            }
            eprintln!(
                "{} steps of {} on {device:?}: wrote {}",
                g.nrows(),
                opt.name(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Memory {
            params,
            optimizers,
            json,
            plot,
        } => memory_command(params, &optimizers, json, plot.as_deref()),
        Command::Bench(args) => bench_command(&args),
    }
}

/// The named variants, or all of them when `names` is empty; an unknown name is an error.
fn choose_variants(names: &[String]) -> Result<Vec<(&'static str, wgoptim::Optimizer)>, String> {
    let all = verify::variants();
    if names.is_empty() {
        return Ok(all);
    }
    names
        .iter()
        .map(|name| {
            all.iter().find(|(n, _)| n == name).copied().ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
                format!("unknown optimizer `{name}`; known: {}", known.join(", "))
            })
        })
        .collect()
}

fn memory_command(
    params: usize,
    optimizers: &[String],
    json: bool,
    plot: Option<&std::path::Path>,
) -> wgoptim::Result<ExitCode> {
    let kernels = match choose_variants(optimizers) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let ctx = GpuContext::new()?;
    let mut reports = Vec::new();
    for (name, optimizer) in kernels {
        reports.push(wgoptim::memory::profile(&ctx, name, optimizer, params)?);
    }
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    if json {
        let report = serde_json::json!({ "adapter": ctx.describe(), "params": params, "optimizers": reports });
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| wgoptim::Error::Argument(e.to_string()))?;
        println!("{text}");
    } else {
        println!("adapter: {}", ctx.describe());
        println!("{params} parameters; MiB requested by wgoptim / held by the device allocator");
        println!(
            "{:<26} {:>9} {:>12} {:>12} {:>10}  state buffers",
            "optimizer", "state B/p", "requested", "device", "readback+"
        );
        for r in &reports {
            let states: Vec<String> = r
                .buffers
                .iter()
                .filter(|b| b.role == "state")
                .map(|b| format!("{} {:.2}", b.label, mib(b.requested_bytes)))
                .collect();
            let opt = |v: Option<u64>| v.map_or("n/a".to_string(), |b| format!("{:.2}", mib(b)));
            println!(
                "{:<26} {:>9} {:>12.2} {:>12} {:>10}  {}",
                r.kernel,
                r.state_bytes_per_param,
                mib(r.requested_bytes),
                opt(r.device_bytes),
                opt(r.readback_transient_bytes),
                if states.is_empty() {
                    "-".to_string()
                } else {
                    states.join(", ")
                }
            );
        }
        println!(
            "(every row also holds parameters and gradients, 4 B/param each, and 2 uniforms; readback+ is the staging buffer read_params creates and drops)"
        );
    }
    if let Some(path) = plot {
        let bars: Vec<(String, f64)> = reports
            .iter()
            .map(|r| (r.kernel.clone(), r.state_bytes_per_param))
            .collect();
        wgoptim::plot::bars(
            path,
            &format!("optimizer state per parameter ({params} parameters, f32)"),
            "state bytes per parameter",
            &bars,
        )?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_command(args: &BenchArgs) -> wgoptim::Result<ExitCode> {
    let BenchArgs {
        sizes,
        optimizers,
        tensors,
        reps,
        warmup,
        max_norm,
        skip_nonfinite,
        json,
        csv,
        plot,
    } = args;
    let (reps, warmup, json, csv, plot) = (*reps, *warmup, *json, *csv, plot.as_deref());
    let control = (max_norm.is_some() || *skip_nonfinite).then_some(wgoptim::GradientControl {
        max_norm: *max_norm,
        skip_nonfinite: *skip_nonfinite,
        ..Default::default()
    });
    if let Some(&k) = tensors
        .iter()
        .find(|&&k| k == 0 || sizes.iter().any(|&n| k > n))
    {
        eprintln!(
            "error: --tensors {k}: each tensor needs at least one parameter (1 <= K <= size)"
        );
        return Ok(ExitCode::from(2));
    }
    let all = verify::variants();
    let mut kernels = Vec::new();
    for name in optimizers {
        match all.iter().find(|(n, _)| n == name) {
            Some(&(n, o)) => kernels.push((n, o)),
            None => {
                let names: Vec<&str> = all.iter().map(|(n, _)| *n).collect();
                eprintln!(
                    "error: unknown optimizer `{name}`; known: {}",
                    names.join(", ")
                );
                return Ok(ExitCode::from(2));
            }
        }
    }
    let ctx = GpuContext::new()?;
    let session = bench::Bench::new(&ctx, warmup, reps)?;
    let bar = indicatif::ProgressBar::new((sizes.len() * kernels.len() * tensors.len()) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let rows = bench::run(&session, &kernels, sizes, tensors, control, |r| {
        bar.set_message(format!("{} at {}", r.kernel, r.params));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let adapter = ctx.describe();
    if json {
        let report = serde_json::json!({
            "adapter": adapter, "clock": session.clock(), "reps": reps, "warmup": warmup, "rows": rows
        });
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| wgoptim::Error::Argument(e.to_string()))?;
        println!("{text}");
    } else if csv {
        println!(
            "kernel,params,tensors,median_ms,min_ms,bytes_per_param,gb_per_s,copy_gb_per_s,percent_of_copy"
        );
        for r in &rows {
            let fields = [
                r.kernel.clone(),
                r.params.to_string(),
                r.tensors.to_string(),
                r.median_ms.to_string(),
                r.min_ms.to_string(),
                r.bytes_per_param.to_string(),
                r.gb_per_s.to_string(),
                r.copy_gb_per_s.to_string(),
                r.percent_of_copy.to_string(),
            ];
            println!("{}", fields.join(","));
        }
    } else {
        println!("adapter: {adapter}");
        println!(
            "clock: {:?}; {reps} timed reps after {warmup} warm-up; copy baseline timed just before each kernel",
            session.clock()
        );
        println!(
            "{:<28} {:>10} {:>7} {:>10} {:>10} {:>8} {:>10} {:>7}",
            "kernel", "params", "tensors", "median ms", "min ms", "GB/s", "copy GB/s", "% copy"
        );
        for r in &rows {
            println!(
                "{:<28} {:>10} {:>7} {:>10.3} {:>10.3} {:>8.2} {:>10.2} {:>6.0}%",
                r.kernel,
                r.params,
                r.tensors,
                r.median_ms,
                r.min_ms,
                r.gb_per_s,
                r.copy_gb_per_s,
                r.percent_of_copy
            );
        }
    }
    if let Some(path) = plot {
        let series = kernels
            .iter()
            .flat_map(|(name, _)| tensors.iter().map(move |&k| (*name, k)))
            .map(|(name, k)| wgoptim::plot::Series {
                name: if tensors.len() > 1 {
                    format!("{name} ({k} tensors)")
                } else {
                    name.to_string()
                },
                points: rows
                    .iter()
                    .filter(|r| r.kernel == name && r.tensors == k)
                    .map(|r| (r.params as f64, r.percent_of_copy))
                    .collect(),
            })
            .collect();
        let panel = wgoptim::plot::Panel {
            title: format!(
                "fused optimizer step vs copy bandwidth, {}",
                ctx.adapter_info()
                    .map_or("adopted device", |a| a.name.as_str())
            ),
            x_label: "parameters".into(),
            y_label: "% of copy_buffer_to_buffer bandwidth".into(),
            series,
            log_x: true,
            ..Default::default()
        };
        wgoptim::plot::draw(path, &[panel], 1, (1000, 560))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
