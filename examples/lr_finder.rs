//! The learning-rate finder on the small MLP and the UCI digits: loss against lr on a log axis
//! with the suggested lr marked. `cargo run --release --example lr_finder` writes
//! `out/lr_finder/lr_finder.png`.

use wgoptim::demo::classify::{Model, draw_sweep, lr_sweep};
use wgoptim::demo::data::digits;
use wgoptim::{Adam, GpuContext, LrFinder};

fn main() -> wgoptim::Result<()> {
    let ctx = GpuContext::new()?;
    let (train, _) = digits()?.split(0.2, 5);
    let mut finder = LrFinder::new(1e-6, 10.0, 200)?;
    lr_sweep(
        &ctx,
        Model::Mlp { hidden: 32 },
        Adam::default().into(),
        &train,
        64,
        &mut finder,
        11,
    )?;
    let dir = std::path::Path::new("out/lr_finder");
    std::fs::create_dir_all(dir).map_err(|e| wgoptim::Error::Argument(e.to_string()))?;
    let file = dir.join("lr_finder.png");
    draw_sweep(
        &file,
        "LR finder: MLP (32 tanh units) on UCI digits, Adam, minibatches of 64",
        &finder,
    )?;
    let last = finder.points().last().map_or(0.0, |p| p.lr);
    println!("{} steps, stopped at lr {last:.2e}", finder.points().len());
    match finder.suggestion() {
        Some(lr) => println!("suggested learning rate: {lr:.3e}"),
        None => println!("no suggestion (too few points)"),
    }
    println!("wrote {}", file.display());
    Ok(())
}
