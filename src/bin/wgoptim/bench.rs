//! `wgoptim bench`: each kernel's step time against the copy bandwidth measured beside it.

use std::process::ExitCode;

use wgoptim::{GpuContext, bench};

/// Time each kernel's step against the device's copy bandwidth, measured beside it.
#[derive(clap::Args)]
pub struct Args {
    /// Parameter counts: numbers or powers of two written 2^k.
    #[arg(long, value_delimiter = ',', default_value = "2^16,2^20,2^24", value_parser = crate::parse_size)]
    sizes: Vec<usize>,
    /// Variants (names as in `verify`), comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "sgd,sgd-momentum,rmsprop,rmsprop-centered-momentum,adam,adam-amsgrad,adamw,adagrad"
    )]
    optimizers: Vec<String>,
    /// State types to run each variant with (`f32`, `bf16`, `int8`), comma-separated: every
    /// variant that supports one runs as `NAME@bf16`, `NAME@int8`.
    #[arg(long, value_delimiter = ',', default_value = "f32", value_parser = crate::parse_state_dtype)]
    state_dtype: Vec<wgoptim::StateDType>,
    /// Gradient types (`f32`, `f16`, `bf16`), comma-separated: half types run as
    /// `NAME@grad-bf16` (with each state type).
    #[arg(long, value_delimiter = ',', default_value = "f32", value_parser = crate::parse_grad_dtype)]
    grad_dtype: Vec<wgoptim::GradDType>,
    /// Parameter types (`f32`, `bf16-master`, `bf16`), comma-separated: run as
    /// `NAME@param-bf16` (with each state and gradient type).
    #[arg(long, value_delimiter = ',', default_value = "f32", value_parser = crate::parse_param_dtype)]
    param_dtype: Vec<wgoptim::ParamDType>,
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
    /// Run the GPU kernels, or the CPU backend (against a host copy on the same threads).
    #[arg(long, value_enum, default_value_t = crate::Device::Gpu)]
    device: crate::Device,
    /// CPU threads with `--device cpu` (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Also draw % of copy bandwidth against size into this .png or .svg.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

pub fn run(args: &Args) -> wgoptim::Result<ExitCode> {
    let Args {
        sizes,
        optimizers,
        state_dtype,
        grad_dtype,
        param_dtype,
        tensors,
        reps,
        warmup,
        max_norm,
        skip_nonfinite,
        json,
        csv,
        plot,
        device,
        threads,
    } = args;
    let (reps, warmup, json, csv, plot, device) =
        (*reps, *warmup, *json, *csv, plot.as_deref(), *device);
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
    let kernels = match crate::choose_variants(optimizers, &[wgoptim::StateDType::F32]) {
        Ok(k) => with_precisions(k, state_dtype, grad_dtype, param_dtype),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    // What runs the steps, how it is named and which clock times it.
    let (session, adapter, clock): (Box<dyn bench::Session>, String, String) = match device {
        crate::Device::Gpu => {
            let ctx = GpuContext::new()?;
            let session = bench::Bench::new(&ctx, warmup, reps)?;
            let clock = format!("{:?}", session.clock());
            (Box::new(session), ctx.describe(), clock)
        }
        crate::Device::Cpu => {
            let session = bench::CpuBench::new(warmup, reps, *threads)?;
            let name = format!("CPU backend, {} threads", session.threads());
            (Box::new(session), name, "WallClock".into())
        }
    };
    let bar = indicatif::ProgressBar::new((sizes.len() * kernels.len() * tensors.len()) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let named: Vec<(&str, wgoptim::Optimizer)> =
        kernels.iter().map(|(n, o)| (n.as_str(), *o)).collect();
    let rows = bench::run(session.as_ref(), &named, sizes, tensors, control, |r| {
        bar.set_message(format!("{} at {}", r.kernel, r.params));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    if json {
        let report = serde_json::json!({
            "adapter": adapter, "clock": clock, "reps": reps, "warmup": warmup, "rows": rows
        });
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| wgoptim::Error::Argument(e.to_string()))?;
        println!("{text}");
    } else if csv {
        println!(
            "kernel,shape,params,tensors,median_ms,min_ms,bytes_per_param,gb_per_s,copy_gb_per_s,percent_of_copy"
        );
        for r in &rows {
            let fields = [
                r.kernel.clone(),
                r.shape.clone(),
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
            "clock: {clock}; {reps} timed reps after {warmup} warm-up; copy baseline timed just before each kernel"
        );
        println!(
            "{:<28} {:>5} {:>10} {:>7} {:>10} {:>10} {:>8} {:>10} {:>7}",
            "kernel",
            "shape",
            "params",
            "tensors",
            "median ms",
            "min ms",
            "GB/s",
            "copy GB/s",
            "% copy"
        );
        for r in &rows {
            println!(
                "{:<28} {:>5} {:>10} {:>7} {:>10.3} {:>10.3} {:>8.2} {:>10.2} {:>6.0}%",
                r.kernel,
                r.shape,
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
            .flat_map(|(name, _)| tensors.iter().map(move |&k| (name.as_str(), k)))
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
            title: format!("fused optimizer step vs copy bandwidth, {adapter}"),
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

/// Each variant with each state type of `states` it supports (`NAME@bf16`, `NAME@int8`; f32
/// keeps the plain name), for groups of every size (threshold 0), each gradient type of
/// `grads` (`NAME@grad-bf16`) and each parameter type of `params` (`NAME@param-bf16`).
fn with_precisions(
    variants: Vec<(String, wgoptim::Optimizer)>,
    states: &[wgoptim::StateDType],
    grads: &[wgoptim::GradDType],
    params: &[wgoptim::ParamDType],
) -> Vec<(String, wgoptim::Optimizer)> {
    use wgoptim::{GradDType, ParamDType, StateDType, StatePrecision};
    let mut out = Vec::new();
    for &param in params {
        for &grad in grads {
            for &dtype in states {
                for (name, optimizer) in &variants {
                    let optimizer = optimizer
                        .with_state_precision(StatePrecision { dtype, min_len: 0 })
                        .with_grad_dtype(grad)
                        .with_param_dtype(param);
                    let supported =
                        optimizer.validate().is_ok() && !optimizer.state_layout().slots.is_empty();
                    if !supported && dtype != StateDType::F32 {
                        continue;
                    }
                    let mut name = name.clone();
                    if dtype != StateDType::F32 {
                        name = format!("{name}@{}", dtype.name());
                    }
                    if grad != GradDType::F32 {
                        name = format!("{name}@grad-{}", grad.name());
                    }
                    if param != ParamDType::F32 {
                        name = format!("{name}@param-{}", param.name());
                    }
                    out.push((name, optimizer));
                }
            }
        }
    }
    out
}
