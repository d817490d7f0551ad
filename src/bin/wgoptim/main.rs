//! The `wgoptim` command line: a thin layer over the library, one module per subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod info;
mod memory;
mod playground;
mod replay;
mod schedule;
mod tune;
mod verify;

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

/// Where an optimizer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Device {
    /// The WGSL kernels on the wgpu device.
    Gpu,
    /// The kernels' f32 twins on the CPU backend (threaded).
    Cpu,
}

#[derive(Subcommand)]
enum Command {
    /// List the adapters wgpu sees and the one wgoptim would use.
    Info,
    /// Run every kernel variant against the f32 twin and the f64 oracle on random data.
    Verify(verify::Args),
    /// Print a learning-rate schedule as CSV (`step,lr[,momentum]`), optionally plotted.
    Schedule(schedule::Args),
    /// Replay recorded gradients through an optimizer and write the final parameters.
    Replay(replay::Args),
    /// Memory of every buffer each optimizer variant allocates, from the allocations themselves.
    Memory(memory::Args),
    /// Time each kernel's step against the device's copy bandwidth, measured beside it.
    Bench(bench::Args),
    /// Time every kernel shape on this adapter, keep the fastest per variant, cache the choice.
    Tune(tune::Args),
    /// Serve the optimizer playground (loss surfaces, schedules, training) on 127.0.0.1.
    Playground(playground::Args),
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
    let result = match cli.command {
        Command::Info => info::run(),
        Command::Verify(args) => verify::run(args),
        Command::Schedule(args) => schedule::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Memory(args) => memory::run(args),
        Command::Bench(args) => bench::run(&args),
        Command::Tune(args) => tune::run(args),
        Command::Playground(args) => playground::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses a parameter type for `--param-dtype`.
fn parse_param_dtype(s: &str) -> Result<wgoptim::ParamDType, String> {
    wgoptim::ParamDType::parse(s).map_err(|e| e.to_string())
}

/// Parses a gradient type for `--grad-dtype`.
fn parse_grad_dtype(s: &str) -> Result<wgoptim::GradDType, String> {
    wgoptim::GradDType::parse(s).map_err(|e| e.to_string())
}

/// Parses a state type for `--state-dtype`.
fn parse_state_dtype(s: &str) -> Result<wgoptim::StateDType, String> {
    wgoptim::StateDType::parse(s).map_err(|e| e.to_string())
}

/// The named variants (names as `verify` prints them, `adamw@int8` for low-precision state),
/// or all of them with a state type of `dtypes` when `names` is empty; an unknown name is an
/// error.
fn choose_variants(
    names: &[String],
    dtypes: &[wgoptim::StateDType],
) -> Result<Vec<(String, wgoptim::Optimizer)>, String> {
    use wgoptim::StateDType;
    let chosen = wgoptim::verify::variants_with_state(dtypes);
    if names.is_empty() {
        return Ok(chosen);
    }
    let all = wgoptim::verify::variants_with_state(&StateDType::ALL);
    names
        .iter()
        .map(|name| {
            all.iter().find(|(n, _)| n == name).cloned().ok_or_else(|| {
                let known: Vec<&str> = chosen.iter().map(|(n, _)| n.as_str()).collect();
                format!("unknown optimizer `{name}`; known: {}", known.join(", "))
            })
        })
        .collect()
}
