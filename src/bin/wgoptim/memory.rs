//! `wgoptim memory`: every buffer each variant allocates, from the allocations themselves.

use std::process::ExitCode;

use wgoptim::GpuContext;

/// Memory of every buffer each optimizer variant allocates, from the allocations themselves.
#[derive(clap::Args)]
pub struct Args {
    /// Parameters per optimizer.
    #[arg(long, default_value = "2^20", value_parser = crate::parse_size)]
    params: usize,
    /// Variants (names as in `verify`), comma-separated; default: all.
    #[arg(long, value_delimiter = ',')]
    optimizers: Vec<String>,
    /// State types to list (`f32`, `bf16`, `int8`), comma-separated; default: all.
    #[arg(long, value_delimiter = ',', default_value = "f32,bf16,int8", value_parser = crate::parse_state_dtype)]
    state_dtype: Vec<wgoptim::StateDType>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also draw bytes per parameter into this .png or .svg.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

pub fn run(args: Args) -> wgoptim::Result<ExitCode> {
    let Args {
        params,
        optimizers,
        state_dtype,
        json,
        plot,
    } = args;
    let plot = plot.as_deref();
    let kernels = match crate::choose_variants(&optimizers, &state_dtype) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let ctx = GpuContext::new()?;
    let mut reports = Vec::new();
    for (name, optimizer) in kernels {
        reports.push(wgoptim::memory::profile(&ctx, &name, optimizer, params)?);
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
            "{:<40} {:>9} {:>9} {:>12} {:>12} {:>10}  state buffers",
            "optimizer", "state B/p", "moved B/p", "requested", "device", "readback+"
        );
        for r in &reports {
            let states: Vec<String> = r
                .buffers
                .iter()
                .filter(|b| b.role == "state" || b.role == "scratch")
                .map(|b| format!("{} {:.2}", b.label, mib(b.requested_bytes)))
                .collect();
            let opt = |v: Option<u64>| v.map_or("n/a".to_string(), |b| format!("{:.2}", mib(b)));
            // Muon runs over at most `verify::MUON_MAX_SIZE` parameters (`verify::shaped_layout`).
            let kernel = if r.params == params {
                r.kernel.clone()
            } else {
                format!("{} (over {})", r.kernel, r.params)
            };
            println!(
                "{:<40} {:>9.3} {:>9.2} {:>12.2} {:>12} {:>10}  {}",
                kernel,
                r.state_bytes_per_param,
                r.bytes_moved_per_param,
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
            "(every row also holds parameters, 4 B/param or 2 in bf16 (+2 for a bf16 model copy), gradients, 4 B/param or 2 in f16/bf16, and 2 uniforms; Muon adds scratch space for its Newton-Schulz matrices; moved B/p: bytes one step reads and writes per parameter, Muon's products apart; readback+ is the staging buffer read_params creates and drops)"
        );
    }
    if let Some(path) = plot {
        let bars: Vec<(String, f64)> = reports
            .iter()
            .map(|r| (r.kernel.clone(), r.state_bytes_per_param))
            .collect();
        wgoptim::plot::bars(
            path,
            &format!("optimizer state per parameter ({params} parameters)"),
            "state bytes per parameter",
            &bars,
        )?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
