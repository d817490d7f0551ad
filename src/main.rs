//! The `wgoptim` command line: a thin layer over the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wgoptim::gpu::list_adapters;
use wgoptim::verify::{self, twin_ulp_bound};
use wgoptim::{GpuContext, GpuOptimizer};

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
    }
}
