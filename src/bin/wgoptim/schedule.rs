//! `wgoptim schedule`: a learning-rate schedule as CSV, optionally plotted.

use std::process::ExitCode;

/// Print a learning-rate schedule as CSV (`step,lr[,momentum]`), optionally plotted.
///
/// NAME is PyTorch's scheduler (StepLR, MultiStepLR, ExponentialLR, PolynomialLR, LinearLR,
/// ConstantLR, CosineAnnealingLR, CosineAnnealingWarmRestarts, OneCycleLR, CyclicLR,
/// ReduceLROnPlateau, or `constant`); parameters are `key=value` with PyTorch's names, e.g.
/// `wgoptim schedule OneCycleLR max_lr=0.1 total_steps=100 anneal_strategy=linear`.
/// `lr=` is the base lr (default 0.1); `warmup_steps=W [warmup_start_factor=f]` adds a
/// linear warm-up; ReduceLROnPlateau takes `metrics=m0,m1,…`.
#[derive(clap::Args)]
pub struct Args {
    /// Scheduler name.
    name: String,
    /// `key=value` parameters.
    params: Vec<String>,
    /// Rows to print (steps 0 … N−1).
    #[arg(long, default_value_t = 100)]
    steps: u64,
    /// Also draw the curve into this .png or .svg.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

pub fn run(args: Args) -> wgoptim::Result<ExitCode> {
    let Args {
        name,
        params,
        steps,
        plot,
    } = args;
    let spec = wgoptim::schedule::spec::parse(&name, &params)?;
    let rows = spec.rows(steps)?;
    let cycled = rows.iter().any(|r| r.momentum.is_some());
    let mut out = String::from(if cycled {
        "step,lr,momentum\n"
    } else {
        "step,lr\n"
    });
    for r in &rows {
        match r.momentum {
            Some(m) if cycled => out.push_str(&format!("{},{},{}\n", r.step, r.lr, m)),
            _ => out.push_str(&format!("{},{}\n", r.step, r.lr)),
        }
    }
    print!("{out}");
    if let Some(path) = plot {
        let title = if params.is_empty() {
            name.clone()
        } else {
            format!("{name}({})", params.join(", "))
        };
        let series = |f: &dyn Fn(&wgoptim::schedule::spec::Row) -> Option<f64>, label: &str| {
            wgoptim::plot::Series {
                name: label.to_string(),
                points: rows
                    .iter()
                    .filter_map(|r| f(r).map(|v| (r.step as f64, v)))
                    .collect(),
            }
        };
        let mut panels = vec![wgoptim::plot::Panel {
            title,
            x_label: "step".into(),
            y_label: "learning rate".into(),
            series: vec![series(&|r| Some(r.lr), "")],
            ..Default::default()
        }];
        if cycled {
            panels.push(wgoptim::plot::Panel {
                title: "momentum (or Adam's beta1), cycled inversely".into(),
                x_label: "step".into(),
                y_label: "momentum".into(),
                series: vec![series(&|r| r.momentum, "")],
                ..Default::default()
            });
        }
        wgoptim::plot::draw(&path, &panels, 1, (900, 420))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
