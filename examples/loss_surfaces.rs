//! Paths of SGD, momentum, Nesterov, RMSprop, Adam, AdamW and Adagrad on an elongated bowl,
//! Rosenbrock's valley, Beale's function and a saddle; one picture per surface.
//! `cargo run --release --example loss_surfaces` writes `out/loss_surfaces/*.png`.

use wgoptim::GpuContext;
use wgoptim::demo::surfaces::{Surface, draw, path};

fn main() -> wgoptim::Result<()> {
    let ctx = GpuContext::new()?;
    let dir = std::path::Path::new("out/loss_surfaces");
    std::fs::create_dir_all(dir).map_err(|e| wgoptim::Error::Argument(e.to_string()))?;
    for surface in Surface::ALL {
        let mut paths = Vec::new();
        for (name, optimizer) in surface.optimizers() {
            let p = path(&ctx, surface, optimizer, surface.steps())?;
            let (x, y) = *p.last().unwrap_or(&surface.start());
            println!(
                "{:<10} {name:<14} {:>4} steps, ends at ({x:>8.4}, {y:>8.4}), f = {:.3e}",
                surface.name(),
                p.len() - 1,
                surface.value(x, y)
            );
            paths.push((name, p));
        }
        let file = dir.join(format!("{}.png", surface.name()));
        draw(&file, surface, &paths)?;
        println!("wrote {}", file.display());
    }
    Ok(())
}
