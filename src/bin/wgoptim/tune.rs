//! `wgoptim tune`: every candidate kernel shape of every variant timed on this adapter.

use std::process::ExitCode;

use wgoptim::gpu::tune::{self, ShapeCache, TuneOptions};
use wgoptim::{GpuContext, KernelShape};

/// Time every candidate kernel shape of each variant on this adapter, print the table, and
/// cache the fastest per variant (the choice `GpuContext::new()` then uses).
#[derive(clap::Args)]
pub struct Args {
    /// Variants (names as in `verify`), comma-separated; default: one of each family and
    /// variant flag set.
    #[arg(long, value_delimiter = ',')]
    optimizers: Vec<String>,
    /// Parameters per timed optimizer (a number or 2^k); default: grown until a step takes
    /// at least 2 ms, up to 2^24.
    #[arg(long, value_parser = crate::parse_size)]
    size: Option<usize>,
    /// Steps per timed round.
    #[arg(long, default_value_t = 4)]
    steps: usize,
    /// Timed rounds (each candidate's fastest is kept; rounds interleave candidates).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Time and print only; leave the cache as it is.
    #[arg(long)]
    no_cache: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> wgoptim::Result<ExitCode> {
    let mut variants = match crate::choose_variants(&args.optimizers, &[wgoptim::StateDType::F32]) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    // Adam and AdamW (and the maximize / weight-decay variants) share a kernel: time each
    // family and flag set once unless asked by name.
    if args.optimizers.is_empty() {
        let mut seen = std::collections::HashSet::new();
        variants.retain(|(_, o)| seen.insert(tune::variant_key(o)));
    }
    // LAMB's per-tensor driver has one shape: nothing to tune.
    variants.retain(|(_, o)| !o.kernel().per_tensor());
    let ctx = GpuContext::new()?;
    let options = TuneOptions {
        elements: args.size,
        steps: args.steps,
        rounds: args.rounds,
        ..TuneOptions::default()
    };
    let cache = (!args.no_cache)
        .then(|| ShapeCache::new(ctx.shape_cache_dir(), &ctx.adapter_info()))
        .flatten();
    let mut reports = Vec::new();
    for (name, optimizer) in &variants {
        let report = tune::tune(&ctx, optimizer, &options)?;
        if let Some(cache) = &cache
            && let Err(e) = cache.put(optimizer, report.best)
        {
            eprintln!("warning: cannot write {}: {e}", cache.path().display());
        }
        reports.push((name.clone(), report));
    }
    if args.json {
        let rows: Vec<_> = reports
            .iter()
            .map(|(name, r)| serde_json::json!({ "optimizer": name, "report": r }))
            .collect();
        let report = serde_json::json!({
            "adapter": ctx.describe(),
            "cache": cache.as_ref().map(|c| c.path().display().to_string()),
            "variants": rows,
        });
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| wgoptim::Error::Argument(e.to_string()))?;
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("adapter: {}", ctx.describe());
    println!(
        "ms per step (fastest of {} rounds of {} steps); c = contiguous vec4 blocks per invocation, s = strided, c1 = burn's shape",
        args.rounds, args.steps
    );
    let shapes = KernelShape::CANDIDATES;
    let mut header = format!("{:<28} {:>9}", "variant", "params");
    for s in shapes {
        header.push_str(&format!(" {:>8}", s.name()));
    }
    header.push_str("   best  built-in  best/built-in");
    println!("{header}");
    for (name, r) in &reports {
        let mut line = format!("{name:<28} {:>9}", r.elements);
        for s in shapes {
            match r.time_of(s) {
                Some(t) => line.push_str(&format!(" {t:>8.3}")),
                None => line.push_str(&format!(" {:>8}", "-")),
            }
        }
        let speedup = match (r.time_of(r.builtin), r.time_of(r.best)) {
            (Some(b), Some(t)) if t > 0.0 => format!("{:.2}x", b / t),
            _ => "-".into(),
        };
        line.push_str(&format!(
            " {:>6} {:>9} {:>14}",
            r.best.name(),
            r.builtin.name(),
            speedup
        ));
        println!("{line}");
    }
    match &cache {
        Some(c) => println!("cached in {}", c.path().display()),
        None => println!("not cached"),
    }
    Ok(ExitCode::SUCCESS)
}
