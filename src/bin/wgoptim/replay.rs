//! `wgoptim replay`: recorded gradients through an optimizer, with PyTorch's names.

use std::process::ExitCode;

use crate::Device;
use wgoptim::{Backend, GpuContext, GpuOptimizer};

/// Replay recorded gradients through an optimizer and write the final parameters.
///
/// `wgoptim replay adam lr=0.01 betas=0.9,0.99 --params p0.npy --grads g.npy --out p.npy`
/// (hyperparameters with PyTorch's names and defaults; gradients one row per step);
/// `adamw state_dtype=int8 grad_dtype=bf16` for low precision.
#[derive(clap::Args)]
pub struct Args {
    /// PyTorch's class name: sgd, rmsprop, adam, adamw, adagrad, adamax, radam, adadelta,
    /// nadam, rprop, asgd, adafactor, muon (with --shape); lion, lamb.
    optimizer: String,
    /// `key=value` hyperparameters by PyTorch's names (lr, momentum, dampening, nesterov,
    /// alpha, centered, betas, eps, weight_decay, amsgrad, lr_decay, initial_accumulator_value,
    /// rho, momentum_decay, decoupled_weight_decay, etas, step_sizes, lambd, t0, beta2_decay,
    /// eps=None,1e-3 for Adafactor, d, use_nvlamb, ns_coefficients=a,b,c, ns_steps,
    /// adjust_lr_fn=original|match_rms_adamw|spectral_unclamped, maximize), and
    /// the precisions: state_dtype=f32|bf16|int8 (with state_min_len=N, default 4096: smaller
    /// vectors keep f32 state), grad_dtype=f32|f16|bf16 (the .npy gradients are rounded to it),
    /// param_dtype=f32|bf16-master|bf16.
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
    /// The parameters' shape, e.g. `--shape 64,32` (row-major; the product must be their
    /// number): Adafactor then factors a matrix's averages into rows and columns, LAMB's
    /// norms are the tensor's, and Muon (which needs it, as PyTorch needs a 2-D parameter)
    /// orthogonalizes the matrix. Without it the parameters are one vector.
    #[arg(long, value_delimiter = ',')]
    shape: Option<Vec<usize>>,
}

pub fn run(args: Args) -> wgoptim::Result<ExitCode> {
    let Args {
        optimizer,
        hyperparameters,
        params,
        grads,
        out,
        schedule,
        device,
        lrs_out,
        shape,
    } = args;
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
    let layout = match &shape {
        Some(shape) => Some(wgoptim::replay::shape_layout(shape, p0.len())?),
        None => None,
    };
    let cpu = wgoptim::CpuContext::new();
    let mut backend: Box<dyn Backend> = match (device, layout) {
        (Device::Gpu, None) => Box::new(GpuOptimizer::with_params(&GpuContext::new()?, opt, &p0)?),
        (Device::Cpu, None) => Box::new(wgoptim::CpuOptimizer::with_params(&cpu, opt, &p0)?),
        (Device::Gpu, Some(layout)) => {
            Box::new(GpuOptimizer::with_layout(&GpuContext::new()?, opt, layout)?)
        }
        (Device::Cpu, Some(layout)) => {
            Box::new(wgoptim::CpuOptimizer::with_layout(&cpu, opt, layout)?)
        }
    };
    backend.write_params(&p0)?;
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
