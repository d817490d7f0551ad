//! Two-parameter loss surfaces and the paths optimizers take on them.

use std::path::Path;

use plotters::prelude::*;

use super::Engine;
use crate::error::{Error, Result};
use crate::optim::{
    Adadelta, Adagrad, Adam, Adamax, Lion, NAdam, Optimizer, RAdam, RmsProp, Rprop, Sgd,
};
use crate::schedule::Schedule;

/// A test function of two variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// An elongated bowl 0.1x² + y²: curvatures 10× apart.
    Bowl,
    /// Rosenbrock's valley (1−x)² + 100(y−x²)², minimum at (1, 1).
    Rosenbrock,
    /// Beale's function, minimum 0 at (3, 0.5).
    Beale,
    /// The saddle x² − y² (no minimum; the path should leave along y).
    Saddle,
    /// Himmelblau's function (x² + y − 11)² + (x + y² − 7)²: four minima of 0, which one a
    /// path reaches depends on the optimizer and the start.
    Himmelblau,
}

impl Surface {
    /// Every surface.
    pub const ALL: [Surface; 5] = [
        Surface::Bowl,
        Surface::Rosenbrock,
        Surface::Beale,
        Surface::Saddle,
        Surface::Himmelblau,
    ];

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Surface::Bowl => "bowl",
            Surface::Rosenbrock => "rosenbrock",
            Surface::Beale => "beale",
            Surface::Saddle => "saddle",
            Surface::Himmelblau => "himmelblau",
        }
    }

    /// The surface called `name` (as [`Surface::name`] gives it, any case).
    pub fn parse(name: &str) -> Result<Surface> {
        Surface::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                let known: Vec<&str> = Surface::ALL.iter().map(|s| s.name()).collect();
                Error::Argument(format!(
                    "unknown surface `{name}`; known: {}",
                    known.join(", ")
                ))
            })
    }

    /// The formula, for titles.
    pub fn formula(self) -> &'static str {
        match self {
            Surface::Bowl => "0.1x² + y²",
            Surface::Rosenbrock => "Rosenbrock: (1−x)² + 100(y−x²)²",
            Surface::Beale => "Beale: (1.5−x+xy)² + (2.25−x+xy²)² + (2.625−x+xy³)²",
            Surface::Saddle => "saddle: x² − y²",
            Surface::Himmelblau => "Himmelblau: (x² + y − 11)² + (x + y² − 7)²",
        }
    }

    /// f(x, y).
    pub fn value(self, x: f64, y: f64) -> f64 {
        match self {
            Surface::Bowl => 0.1 * x * x + y * y,
            Surface::Rosenbrock => (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2),
            Surface::Beale => {
                (1.5 - x + x * y).powi(2)
                    + (2.25 - x + x * y * y).powi(2)
                    + (2.625 - x + x * y.powi(3)).powi(2)
            }
            Surface::Saddle => x * x - y * y,
            Surface::Himmelblau => (x * x + y - 11.0).powi(2) + (x + y * y - 7.0).powi(2),
        }
    }

    /// ∇f(x, y).
    pub fn gradient(self, x: f64, y: f64) -> (f64, f64) {
        match self {
            Surface::Bowl => (0.2 * x, 2.0 * y),
            Surface::Rosenbrock => (
                -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
                200.0 * (y - x * x),
            ),
            Surface::Beale => {
                let (a, b, c) = (
                    1.5 - x + x * y,
                    2.25 - x + x * y * y,
                    2.625 - x + x * y.powi(3),
                );
                (
                    2.0 * a * (y - 1.0) + 2.0 * b * (y * y - 1.0) + 2.0 * c * (y.powi(3) - 1.0),
                    2.0 * a * x + 2.0 * b * 2.0 * x * y + 2.0 * c * 3.0 * x * y * y,
                )
            }
            Surface::Saddle => (2.0 * x, -2.0 * y),
            Surface::Himmelblau => {
                let (a, b) = (x * x + y - 11.0, x + y * y - 7.0);
                (4.0 * x * a + 2.0 * b, 2.0 * a + 4.0 * y * b)
            }
        }
    }

    /// Where every path starts.
    pub fn start(self) -> (f64, f64) {
        match self {
            Surface::Bowl => (-4.5, 1.8),
            Surface::Rosenbrock => (-1.2, 1.0),
            Surface::Beale => (1.0, 1.5),
            Surface::Saddle => (-1.8, 1e-3),
            Surface::Himmelblau => (-0.5, -0.5),
        }
    }

    /// The minimum (the saddle point for the saddle; Himmelblau's at (3, 2)).
    pub fn optimum(self) -> (f64, f64) {
        match self {
            Surface::Bowl | Surface::Saddle => (0.0, 0.0),
            Surface::Rosenbrock => (1.0, 1.0),
            Surface::Beale => (3.0, 0.5),
            Surface::Himmelblau => (3.0, 2.0),
        }
    }

    /// The drawn window ((x₀, x₁), (y₀, y₁)).
    pub fn window(self) -> ((f64, f64), (f64, f64)) {
        match self {
            Surface::Bowl => ((-5.0, 5.0), (-2.5, 2.5)),
            Surface::Rosenbrock => ((-2.0, 2.0), (-1.0, 3.0)),
            Surface::Beale => ((-0.5, 4.0), (-1.0, 2.5)),
            Surface::Saddle => ((-2.0, 2.0), (-2.0, 2.0)),
            Surface::Himmelblau => ((-5.0, 5.0), (-5.0, 5.0)),
        }
    }

    /// Steps each path takes.
    pub fn steps(self) -> usize {
        match self {
            Surface::Bowl => 120,
            Surface::Rosenbrock => 1500,
            Surface::Beale => 800,
            Surface::Saddle => 60,
            Surface::Himmelblau => 200,
        }
    }

    /// The optimizers compared on this surface, each with a learning rate that suits it here.
    pub fn optimizers(self) -> Vec<(&'static str, Optimizer)> {
        // (SGD, momentum SGD, RMSprop, Adam, Adamax and NAdam, Adagrad, Adadelta, RAdam,
        // Rprop's first step, Lion) learning rates per surface.
        // RAdam's first steps (ρₜ ≤ 5) are plain momentum steps of γ: it needs a smaller γ than
        // Adam where the gradients are steep. Lion moves every coordinate by exactly γ.
        let (sgd, mom, rms, adam, ada, delta, radam, rprop, lion) = match self {
            Surface::Bowl => (0.4, 0.05, 0.05, 0.2, 1.0, 20.0, 0.2, 0.1, 0.05),
            Surface::Rosenbrock => (1e-3, 1e-4, 0.005, 0.02, 0.1, 1.0, 0.005, 0.01, 0.002),
            Surface::Beale => (5e-3, 1e-3, 0.01, 0.02, 0.2, 1.0, 0.01, 0.01, 0.005),
            Surface::Saddle => (0.05, 0.02, 0.02, 0.05, 0.2, 1.0, 0.1, 0.05, 0.05),
            Surface::Himmelblau => (0.01, 0.002, 0.05, 0.1, 0.5, 5.0, 0.02, 0.05, 0.02),
        };
        vec![
            ("SGD", Sgd::default().lr(sgd).into()),
            ("momentum 0.9", Sgd::default().lr(mom).momentum(0.9).into()),
            (
                "Nesterov 0.9",
                Sgd::default().lr(mom).momentum(0.9).nesterov(true).into(),
            ),
            ("RMSprop", RmsProp::default().lr(rms).into()),
            ("Adam", Adam::default().lr(adam).into()),
            (
                "AdamW λ=0.1",
                Adam::adamw().lr(adam).weight_decay(0.1).into(),
            ),
            ("Adagrad", Adagrad::default().lr(ada).into()),
            ("Adamax", Adamax::default().lr(adam).into()),
            ("RAdam", RAdam::default().lr(radam).into()),
            ("Adadelta", Adadelta::default().lr(delta).into()),
            ("NAdam", NAdam::default().lr(adam).into()),
            ("Rprop", Rprop::default().lr(rprop).into()),
            ("Lion", Lion::default().lr(lion).into()),
        ]
    }
}

/// The path of `optimizer` from the surface's start over `steps` steps on `engine` (stops
/// early if the point leaves any sane range).
pub fn path(
    engine: &dyn Engine,
    surface: Surface,
    optimizer: Optimizer,
    steps: usize,
) -> Result<Vec<(f64, f64)>> {
    path_from(engine, surface, optimizer, surface.start(), None, steps)
}

/// The path of `optimizer` from `start` over at most `steps` steps on `engine`, its learning
/// rate driven by `schedule` (if any): each step writes ∇f at the current point as the
/// gradient and reads the new point back. The path stops early, without the offending point,
/// once a coordinate is not finite or leaves [−1000, 1000].
pub fn path_from(
    engine: &dyn Engine,
    surface: Surface,
    optimizer: Optimizer,
    start: (f64, f64),
    schedule: Option<&Schedule>,
    steps: usize,
) -> Result<Vec<(f64, f64)>> {
    let mut opt = engine.with_params(optimizer, &[start.0 as f32, start.1 as f32])?;
    opt.set_schedule(schedule.cloned())?;
    let p = opt.read_params()?;
    let mut at = (f64::from(p[0]), f64::from(p[1]));
    let mut points = vec![at];
    let mut p = [0.0f32; 2];
    for _ in 0..steps {
        let (gx, gy) = surface.gradient(at.0, at.1);
        opt.write_grads(&[gx as f32, gy as f32])?;
        opt.step()?;
        opt.read_params_into(&mut p)?;
        at = (f64::from(p[0]), f64::from(p[1]));
        if !(at.0.is_finite() && at.1.is_finite()) || at.0.abs() > 1e3 || at.1.abs() > 1e3 {
            break;
        }
        points.push(at);
    }
    Ok(points)
}

/// Draws the surface (shaded by log f, with contour lines), every path, the start and the
/// optimum into a PNG.
pub fn draw(path_png: &Path, surface: Surface, paths: &[(&str, Vec<(f64, f64)>)]) -> Result<()> {
    crate::plot::register_font();
    let err = |e: &dyn std::fmt::Display| Error::Plot {
        path: path_png.display().to_string(),
        message: e.to_string(),
    };
    let ((x0, x1), (y0, y1)) = surface.window();
    let (nx, ny) = (160usize, 160usize);
    let (dx, dy) = ((x1 - x0) / nx as f64, (y1 - y0) / ny as f64);
    // Values on cell centres; the shading and the contours use log(1 + f - min).
    let mut grid = Vec::with_capacity(nx * ny);
    for j in 0..ny {
        for i in 0..nx {
            grid.push(surface.value(x0 + (i as f64 + 0.5) * dx, y0 + (j as f64 + 0.5) * dy));
        }
    }
    let min = grid.iter().copied().fold(f64::INFINITY, f64::min);
    let shade: Vec<f64> = grid.iter().map(|v| (1.0 + v - min).ln()).collect();
    let top = shade.iter().copied().fold(0.0f64, f64::max);
    let root = BitMapBackend::new(path_png, (900, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(surface.formula(), ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("x")
        .y_desc("y")
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(shade.iter().enumerate().map(|(k, s)| {
            let (i, j) = ((k % nx) as f64, (k / nx) as f64);
            let t = (s / top.max(1e-12)).clamp(0.0, 1.0);
            let color = RGBColor(
                (235.0 - 60.0 * t) as u8,
                (240.0 - 90.0 * t) as u8,
                (255.0 - 40.0 * t) as u8,
            );
            Rectangle::new(
                [
                    (x0 + i * dx, y0 + j * dy),
                    (x0 + (i + 1.0) * dx, y0 + (j + 1.0) * dy),
                ],
                color.filled(),
            )
        }))
        .map_err(|e| err(&e))?;
    let levels: Vec<f64> = (1..14).map(|k| top * k as f64 / 14.0).collect();
    let lines = contour::ContourBuilder::new(nx, ny, true)
        .x_origin(x0 + 0.5 * dx)
        .y_origin(y0 + 0.5 * dy)
        .x_step(dx)
        .y_step(dy)
        .lines(&shade, &levels)
        .map_err(|e| err(&e))?;
    for line in &lines {
        for ls in &line.geometry().0 {
            let pts: Vec<(f64, f64)> = ls.0.iter().map(|c| (c.x, c.y)).collect();
            chart
                .draw_series(std::iter::once(PathElement::new(
                    pts,
                    RGBColor(120, 130, 170).stroke_width(1),
                )))
                .map_err(|e| err(&e))?;
        }
    }
    for (k, (name, pts)) in paths.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let clipped: Vec<(f64, f64)> = pts
            .iter()
            .map(|&(x, y)| (x.clamp(x0, x1), y.clamp(y0, y1)))
            .collect();
        chart
            .draw_series(LineSeries::new(clipped, color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
            });
    }
    let start = surface.start();
    chart
        .draw_series(std::iter::once(Circle::new(start, 7, BLACK.filled())))
        .map_err(|e| err(&e))?
        .label("start")
        .legend(|(x, y)| Circle::new((x + 9, y), 5, BLACK.filled()));
    let label = if surface == Surface::Saddle {
        "saddle point"
    } else {
        "minimum"
    };
    chart
        .draw_series(std::iter::once(Cross::new(
            surface.optimum(),
            9,
            RED.stroke_width(3),
        )))
        .map_err(|e| err(&e))?
        .label(label)
        .legend(|(x, y)| Cross::new((x + 9, y), 5, RED.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}
