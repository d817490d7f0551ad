//! The tune-the-learning-rate exercise: each optimizer trained on the UCI digits MLP at 13
//! learning rates from 10⁻⁴ to 100 (log-spaced, 60 full-batch steps each, the same initial
//! parameters), and where each run ends: one curve per optimizer shows its usable lr range.
//! `cargo run --release --features demo --example lr_sweep` writes `out/lr_sweep/digits.png`.

use wgoptim::GpuContext;
use wgoptim::demo::classify::{Model, draw_lr_sweep, log_space, optimizers, sweep};
use wgoptim::demo::data::digits;

fn main() -> wgoptim::Result<()> {
    let ctx = GpuContext::new()?;
    let (train, test) = digits()?.split(0.2, 5);
    let lrs = log_space(1e-4, 100.0, 13);
    let model = Model::Mlp { hidden: 32 };
    let mut curves = Vec::new();
    for (name, optimizer) in optimizers()
        .into_iter()
        .filter(|(n, _)| !n.contains("int8") && !n.contains("bf16"))
    {
        let points = sweep(&ctx, model, optimizer, &train, &test, &lrs, 60, 11)?;
        let best = points
            .iter()
            .filter(|p| p.loss.is_finite())
            .min_by(|a, b| a.loss.total_cmp(&b.loss));
        match best {
            Some(b) => println!(
                "{name:<14} best lr {:.2e}: loss {:.4}, test accuracy {:.1}%",
                b.lr,
                b.loss,
                100.0 * b.accuracy
            ),
            None => println!("{name:<14} diverged at every lr"),
        }
        curves.push((name.to_string(), points));
    }
    let dir = std::path::Path::new("out/lr_sweep");
    std::fs::create_dir_all(dir).map_err(|e| wgoptim::Error::Argument(e.to_string()))?;
    let file = dir.join("digits.png");
    draw_lr_sweep(
        &file,
        "MLP (32 tanh units) on UCI digits, 60 steps",
        &curves,
    )?;
    println!("wrote {}", file.display());
    Ok(())
}
