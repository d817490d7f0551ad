//! `wgoptim verify`: every kernel variant against the f32 twin and the f64 oracle.

use std::process::ExitCode;

use wgoptim::verify::{self, twin_ulp_bound};
use wgoptim::{Backend, GpuContext, GpuOptimizer};

/// Run every kernel variant against the f32 twin and the f64 oracle on random data.
#[derive(clap::Args)]
pub struct Args {
    /// Parameters per run (a number or 2^k).
    #[arg(long, default_value = "1000003", value_parser = crate::parse_size)]
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
    /// State types to verify (`f32`, `bf16`, `int8`), comma-separated; default: all. Low-
    /// precision variants must equal their CPU twin exactly (0 ULP, codes and absmax
    /// included); their distance to the f64 oracle of the f32 rule is printed, not bounded
    /// here (the fidelity tests bound it statistically).
    #[arg(long, value_delimiter = ',', default_value = "f32,bf16,int8", value_parser = crate::parse_state_dtype)]
    state_dtype: Vec<wgoptim::StateDType>,
    /// Instead of the bit-exactness check: each low-precision variant against its f32 self
    /// with bitsandbytes' protocol (p = 0.1·randn, g = 0.01·randn), re-synced every step (the
    /// worst step) and not re-synced (the drift after `--steps`), on the CPU backend (which
    /// equals the kernels bit for bit).
    #[arg(long)]
    fidelity: bool,
}

pub fn run(args: Args) -> wgoptim::Result<ExitCode> {
    let Args {
        size,
        steps,
        only,
        seed,
        state_dtype,
        fidelity,
    } = args;
    if fidelity {
        return run_fidelity(size, steps, only.as_deref(), seed, &state_dtype);
    }
    let ctx = GpuContext::new()?;
    println!("adapter: {}", ctx.describe());
    println!(
        "{size} parameters, {steps} steps, seed {seed}; twin bound {} ULP, oracle |x-ref| <= {:e}*scale + {:e}*|ref|",
        twin_ulp_bound(steps),
        verify::ORACLE_ATOL,
        verify::oracle_rtol(steps)
    );
    if size > verify::MUON_MAX_SIZE {
        println!(
            "(muon: over a wide and a tall matrix of {} parameters in all: its products cost O(m) per parameter, in the twin and the oracle too)",
            verify::MUON_MAX_SIZE
        );
    }
    println!(
        "{:<44} {:>10} {:>14} {:>10}  result",
        "variant", "ULP(twin)", "rel err(f64)", "tol used"
    );
    let mut failed = 0;
    for (name, optimizer) in verify::variants_with_state(&state_dtype) {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        // Adafactor: over a matrix and a vector (`verify::shaped_layout`), zeros in the gap;
        // Muon: over two matrices of at most `verify::MUON_MAX_SIZE` parameters.
        let (mut gpu, params) = match verify::shaped_layout(&optimizer, size) {
            Some(layout) => {
                let mut data = verify::Data::new(seed);
                let mut params = vec![0.0; layout.len()];
                for t in layout.tensors() {
                    params[t.range()].copy_from_slice(&data.vector(t.len));
                }
                let mut gpu = GpuOptimizer::with_layout(&ctx, optimizer, layout)?;
                gpu.write_params(&params)?;
                (gpu, params)
            }
            None => {
                let params = verify::Data::new(seed).vector(size);
                (GpuOptimizer::with_params(&ctx, optimizer, &params)?, params)
            }
        };
        let reports = verify::run_against_reference(&mut gpu, &params, steps, &[steps], seed + 1)?;
        // Rounded state or parameters: held to the twin exactly, the oracle's distance shown.
        let lowp = optimizer.state_layout().dtype() != wgoptim::StateDType::F32
            || optimizer.param_dtype() == wgoptim::ParamDType::Bf16;
        for r in reports {
            let ok = if lowp {
                r.diff.max_ulp == 0
            } else {
                r.diff.passes(r.steps)
            };
            failed += usize::from(!ok);
            let used = if lowp {
                "-".to_string()
            } else {
                format!("{:.3}", r.diff.tolerance_used)
            };
            println!(
                "{name:<44} {:>10} {:>14.3e} {:>10}  {}",
                r.diff.max_ulp,
                r.diff.max_rel,
                used,
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

fn run_fidelity(
    size: usize,
    steps: u64,
    only: Option<&str>,
    seed: u64,
    dtypes: &[wgoptim::StateDType],
) -> wgoptim::Result<ExitCode> {
    println!(
        "{size} parameters, {steps} steps, seed {seed}: p = 0.1*randn, g = 0.01*randn; low-precision state vs f32 state, same rule"
    );
    println!(
        "{:<44} {:>11} {:>11} {:>9} {:>11} | {:>11} {:>11} {:>11}",
        "variant",
        "step |dp|",
        "step rel",
        "outliers",
        "step state",
        "drift |dp|",
        "drift rel",
        "drift state"
    );
    for (name, optimizer) in verify::lowp_variants() {
        let dtype = optimizer.state_layout().dtype();
        if !dtypes.contains(&dtype) || only.is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let step = wgoptim::fidelity::fidelity(optimizer, dtype, size, steps, true, seed)?;
        let drift = wgoptim::fidelity::fidelity(optimizer, dtype, size, steps, false, seed)?;
        println!(
            "{name:<44} {:>11.3e} {:>11.3e} {:>9} {:>11.3e} | {:>11.3e} {:>11.3e} {:>11.3e}",
            step.mean_abs,
            step.mean_rel,
            step.state_outliers,
            step.state_error,
            drift.mean_abs,
            drift.mean_rel,
            drift.state_error
        );
    }
    Ok(ExitCode::SUCCESS)
}
