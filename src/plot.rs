//! Line charts as PNG or SVG (plotters, with DejaVu Sans embedded so that no system font is
//! needed): schedules, benchmarks and the examples draw through here.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

pub(crate) fn register_font() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // The bytes are a valid TrueType font (checked by the plot tests), so this cannot fail.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draws with `$draw(&root)` on a PNG or an SVG backend, as `$path`'s extension says, and
/// writes the file. (A macro: the two backends are different types.)
macro_rules! on_file {
    ($path:expr, $size:expr, |$root:ident| $draw:expr) => {
        match $path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => {
                let area = BitMapBackend::new($path, $size).into_drawing_area();
                let $root = &area;
                $draw.map_err(|e| plot_err($path, e))?;
                area.present().map_err(|e| plot_err($path, e))
            }
            Some("svg") => {
                let area = SVGBackend::new($path, $size).into_drawing_area();
                let $root = &area;
                $draw.map_err(|e| plot_err($path, e))?;
                area.present().map_err(|e| plot_err($path, e))
            }
            _ => Err(plot_err($path, "the file name must end in .png or .svg")),
        }
    };
}

/// One named line.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// (x, y) points in order.
    pub points: Vec<(f64, f64)>,
}

/// One chart: title, axis labels, lines, and optional marked points.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Panel {
    /// Chart title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Logarithmic x axis (positive x only).
    pub log_x: bool,
    /// Logarithmic y axis (positive y only).
    pub log_y: bool,
    /// Points drawn as labelled circles (e.g. a suggested learning rate).
    pub marks: Vec<(f64, f64, String)>,
    /// Put the legend in the lower right corner instead of the upper right (curves that end
    /// high, such as accuracies).
    pub legend_lower: bool,
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Plot {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Draws `panels` in a grid of `columns` columns into `path` (`.png` or `.svg`), each panel
/// `panel_size` pixels.
pub fn draw(path: &Path, panels: &[Panel], columns: usize, panel_size: (u32, u32)) -> Result<()> {
    register_font();
    let columns = columns.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(columns).max(1);
    let size = (panel_size.0 * columns as u32, panel_size.1 * rows as u32);
    on_file!(path, size, |root| draw_on(root, panels, rows, columns))
}

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panels: &[Panel],
    rows: usize,
    columns: usize,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    for (area, panel) in root.split_evenly((rows, columns)).iter().zip(panels) {
        draw_panel(area, panel)?;
    }
    Ok(())
}

/// Axis value as drawn: log₁₀ on a log axis (so one linear coordinate type serves both).
fn axis(v: f64, log: bool) -> f64 {
    if log { v.log10() } else { v }
}

fn label(v: f64, log: bool) -> String {
    let plain = |x: f64| -> String {
        if x != 0.0 && !(1e-3..1e5).contains(&x.abs()) {
            return format!("{x:.1e}");
        }
        // Three significant digits, no trailing zeros.
        let digits = (2 - x.abs().max(1e-3).log10().floor() as i32).max(0) as usize;
        let text = format!("{x:.digits$}");
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        }
    };
    if log { plain(10f64.powf(v)) } else { plain(v) }
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel) -> DrawResult<DB> {
    let pts = || {
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .map(|&(x, y)| (axis(x, panel.log_x), axis(y, panel.log_y)))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for (x, y) in pts() {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = |lo: f64, hi: f64| {
        let d = if hi > lo {
            (hi - lo) * 0.05
        } else {
            lo.abs().max(1.0) * 0.05
        };
        (lo - d, hi + d)
    };
    let ((x0, x1), (y0, y1)) = (pad(x0, x1), pad(y0, y1));
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let (lx, ly) = (panel.log_x, panel.log_y);
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .x_label_formatter(&|v| label(*v, lx))
        .y_label_formatter(&|v| label(*v, ly))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, s) in panel.series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let line: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|&(x, y)| (axis(x, lx), axis(y, ly)))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(line, color.stroke_width(2)))?
            .label(&s.name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    for (x, y, text) in &panel.marks {
        let p = (axis(*x, lx), axis(*y, ly));
        chart.draw_series(std::iter::once(Circle::new(p, 6, RED.filled())))?;
        chart.draw_series(std::iter::once(Text::new(
            text.clone(),
            p,
            ("sans-serif", 15).into_font(),
        )))?;
    }
    if panel.series.len() > 1 || panel.series.first().is_some_and(|s| !s.name.is_empty()) {
        let at = if panel.legend_lower {
            SeriesLabelPosition::LowerRight
        } else {
            SeriesLabelPosition::UpperRight
        };
        chart
            .configure_series_labels()
            .position(at)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 14))
            .draw()?;
    }
    Ok(())
}

/// A horizontal bar chart: one labelled bar per `(label, value)`, into `.png` or `.svg`.
pub fn bars(path: &Path, title: &str, x_label: &str, bars: &[(String, f64)]) -> Result<()> {
    register_font();
    let size = (1000, 120 + 34 * bars.len() as u32);
    on_file!(path, size, |root| draw_bars(root, title, x_label, bars))
}

fn draw_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    bars: &[(String, f64)],
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let max = bars.iter().map(|b| b.1).fold(0.0f64, f64::max).max(1e-9) * 1.15;
    let n = bars.len();
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(42)
        .y_label_area_size(230)
        .build_cartesian_2d(0.0..max, -0.5..n as f64 - 0.5)?;
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_labels(n)
        .y_label_formatter(&|y| {
            let i = y.round();
            if (y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        })
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .disable_y_mesh()
        .draw()?;
    for (i, (_, v)) in bars.iter().enumerate() {
        let y = i as f64;
        let color = Palette99::pick(i).to_rgba();
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, y - 0.35), (*v, y + 0.35)],
            color.filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("{v}"),
            (*v + max * 0.01, y + 0.15),
            ("sans-serif", 14).into_font(),
        )))?;
    }
    Ok(())
}
