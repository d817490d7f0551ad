//! Every learning-rate schedule (and the momentum where it is cycled), traced through a GPU
//! optimizer's per-step uniforms, in one grid. `cargo run --release --example schedules` writes
//! `out/schedules/schedules.png`.

use wgoptim::GpuContext;
use wgoptim::demo::schedules::{catalog, plateau_trace, trace};
use wgoptim::plot::{Panel, Series, draw};

fn main() -> wgoptim::Result<()> {
    let ctx = GpuContext::new()?;
    let steps = 100;
    let mut panels = Vec::new();
    for (name, schedule) in catalog() {
        let t = trace(&ctx, &schedule, 0.1, steps)?;
        let mut series = vec![Series {
            name: String::new(),
            points: t
                .iter()
                .enumerate()
                .map(|(e, s)| (e as f64, s.lr))
                .collect(),
        }];
        if schedule.cycles_momentum() {
            // On its own scale: momentum / 10 would mislead, so a second panel follows.
            panels.push(Panel {
                title: name.to_string(),
                x_label: "step".into(),
                y_label: "lr".into(),
                series: series.clone(),
                ..Default::default()
            });
            series = vec![Series {
                name: String::new(),
                points: t
                    .iter()
                    .enumerate()
                    .map(|(e, s)| (e as f64, s.momentum))
                    .collect(),
            }];
            panels.push(Panel {
                title: format!("{name}: momentum"),
                x_label: "step".into(),
                y_label: "momentum".into(),
                series,
                ..Default::default()
            });
        } else {
            panels.push(Panel {
                title: name.to_string(),
                x_label: "step".into(),
                y_label: "lr".into(),
                series,
                ..Default::default()
            });
        }
    }
    let plateau = plateau_trace(0.1, steps as usize)?;
    panels.push(Panel {
        title: "ReduceLROnPlateau(patience 5, ×0.5, cooldown 3)".into(),
        x_label: "epoch".into(),
        y_label: "lr".into(),
        series: vec![Series {
            name: String::new(),
            points: plateau
                .iter()
                .enumerate()
                .map(|(e, &lr)| (e as f64, lr))
                .collect(),
        }],
        ..Default::default()
    });
    let dir = std::path::Path::new("out/schedules");
    std::fs::create_dir_all(dir).map_err(|e| wgoptim::Error::Argument(e.to_string()))?;
    let file = dir.join("schedules.png");
    draw(&file, &panels, 4, (520, 320))?;
    println!("{} panels; wrote {}", panels.len(), file.display());
    Ok(())
}
