//! `wgoptim verify`: every kernel variant against the f32 twin and the f64 oracle.

use std::process::ExitCode;

use wgoptim::verify::{self, twin_ulp_bound};
use wgoptim::{GpuContext, GpuOptimizer};

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
}

pub fn run(args: Args) -> wgoptim::Result<ExitCode> {
    let Args {
        size,
        steps,
        only,
        seed,
    } = args;
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
        let reports = verify::run_against_reference(&mut gpu, &params, steps, &[steps], seed + 1)?;
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
