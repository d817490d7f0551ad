//! The playground's JSON API: requests as the page (or a notebook) sends them, checked, and run
//! through the library's own optimizers, schedules and demos. Every function here is a plain
//! call (an [`Engine`] and a request in, a response out); the server only moves bytes.
//!
//! Optimizers and schedules are named as on the command line, with PyTorch's class and argument
//! names, and parsed by [`crate::optim::spec::parse`] and [`crate::schedule::spec::parse`]: the
//! playground has no list of defaults or checks of its own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::demo::Engine;
use crate::demo::classify::{Model, SweepPoint};
use crate::demo::data::{Dataset, digits, make_classification};
use crate::demo::schedules::{stalled_loss, trace};
use crate::demo::surfaces::{Surface, path_from};
use crate::error::{Error, Result};
use crate::optim::Optimizer;
use crate::schedule::spec::ScheduleSpec;
use crate::schedule::{LrFinder, Schedule};

/// The most steps of one surface request.
pub const MAX_SURFACE_STEPS: usize = 5000;
/// The most optimizers in one request.
pub const MAX_OPTIMIZERS: usize = 16;
/// The most steps of a schedule trace or of one training run.
pub const MAX_STEPS: usize = 2000;
/// The most learning rates in one sweep.
pub const MAX_SWEEP_LRS: usize = 30;
/// The most steps of each run of a sweep.
pub const MAX_SWEEP_STEPS: usize = 500;
/// The most hidden units of the MLP.
pub const MAX_HIDDEN: usize = 256;

/// An optimizer as the API takes it: PyTorch's class name (`sgd`, `rmsprop`, `adam`, `adamw`,
/// `adagrad`, `adamax`, `radam`, `adadelta`, `nadam`, `rprop`, `asgd`, `lion`) and its arguments by PyTorch's names (`{"lr": 0.01, "betas": [0.9, 0.999]}`);
/// what is left out takes PyTorch's default. A value may be a number, a boolean, a list of
/// numbers, or a string (parsed as the command line parses it, so `"nan"` is refused with the
/// same message there).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OptimizerSpec {
    /// What the page calls it (the class name if absent).
    #[serde(default)]
    pub label: Option<String>,
    /// PyTorch's class name.
    pub name: String,
    /// Arguments by PyTorch's names.
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
}

/// A schedule as the API takes it: PyTorch's class name (`StepLR`, `OneCycleLR`, …, or
/// `constant`) and its arguments by PyTorch's names.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// PyTorch's class name.
    pub name: String,
    /// Arguments by PyTorch's names (`lr` is the base learning rate of a schedule trace).
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
}

/// `key=value` words from JSON arguments.
fn words(what: &str, params: &BTreeMap<String, Value>) -> Result<Vec<String>> {
    params
        .iter()
        .map(|(k, v)| {
            if k.is_empty() || k.contains(['=', ' ']) {
                return Err(Error::Argument(format!(
                    "{what}: `{k}` is not an argument name"
                )));
            }
            let value = match v {
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::String(s) => s.clone(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::Number(n) => Ok(n.to_string()),
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(Error::Argument(format!(
                            "{what}: {k} must be a list of numbers"
                        ))),
                    })
                    .collect::<Result<Vec<_>>>()?
                    .join(","),
                Value::Null => {
                    return Err(Error::Argument(format!("{what}: {k} has no value")));
                }
                Value::Object(_) => {
                    return Err(Error::Argument(format!(
                        "{what}: {k} must be a number, a boolean or a list"
                    )));
                }
            };
            Ok(format!("{k}={value}"))
        })
        .collect()
}

impl OptimizerSpec {
    /// The label shown for it.
    pub fn label(&self) -> String {
        self.label.clone().unwrap_or_else(|| self.name.clone())
    }

    /// The optimizer, parsed and validated as the command line does it; errors name the label.
    pub fn build(&self) -> Result<Optimizer> {
        let label = self.label();
        crate::optim::spec::parse(&self.name, &words(&label, &self.params)?)
            .map_err(|e| Error::Argument(format!("{label}: {e}")))
    }
}

impl ScheduleRequest {
    /// The schedule, parsed and validated as the command line does it.
    pub fn build(&self) -> Result<ScheduleSpec> {
        crate::schedule::spec::parse(&self.name, &words(&self.name, &self.params)?)
    }

    /// Whether this is ReduceLROnPlateau (under any of the names the parser takes).
    fn is_plateau(&self) -> bool {
        matches!(
            self.name
                .to_ascii_lowercase()
                .replace(['_', '-'], "")
                .as_str(),
            "reducelronplateau" | "reduceonplateau" | "plateau"
        )
    }

    /// A pure schedule (no ReduceLROnPlateau), or `None` for `constant`.
    fn pure(&self) -> Result<Option<Schedule>> {
        if self.is_plateau() {
            return Err(Error::Argument(
                "ReduceLROnPlateau steps on a metric per epoch, not per step: trace it on the \
                 schedules tab"
                    .into(),
            ));
        }
        match self.build()? {
            ScheduleSpec::Pure {
                schedule: Schedule::Constant,
                ..
            } => Ok(None),
            ScheduleSpec::Pure { schedule, .. } => Ok(Some(schedule)),
            ScheduleSpec::Plateau { .. } => Err(Error::Argument(
                "ReduceLROnPlateau steps on a metric per epoch, not per step: trace it on the \
                 schedules tab"
                    .into(),
            )),
        }
    }
}

fn at_most(what: &str, value: usize, max: usize) -> Result<()> {
    if value > max {
        return Err(Error::Argument(format!(
            "{what} = {value} is more than the playground's {max}"
        )));
    }
    Ok(())
}

fn optimizers(specs: &[OptimizerSpec]) -> Result<Vec<(String, Optimizer)>> {
    if specs.is_empty() {
        return Err(Error::Argument("pick at least one optimizer".into()));
    }
    at_most("the number of optimizers", specs.len(), MAX_OPTIMIZERS)?;
    specs.iter().map(|s| Ok((s.label(), s.build()?))).collect()
}

/// `POST /api/surface`: paths of several optimizers on a loss surface.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SurfaceRequest {
    /// A surface's name ([`Surface::name`]).
    pub surface: String,
    /// Where every path starts (the surface's own start if absent).
    #[serde(default)]
    pub start: Option<[f64; 2]>,
    /// Steps of each path (at most [`MAX_SURFACE_STEPS`]).
    pub steps: usize,
    /// The optimizers.
    pub optimizers: Vec<OptimizerSpec>,
    /// A schedule for every optimizer's learning rate.
    #[serde(default)]
    pub schedule: Option<ScheduleRequest>,
}

/// One optimizer's path.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PathOut {
    /// Its label.
    pub label: String,
    /// The points, start first (as the optimizer holds them, f32).
    pub points: Vec<[f64; 2]>,
    /// f at each point.
    pub loss: Vec<f64>,
}

/// The paths of a [`SurfaceRequest`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SurfaceResponse {
    /// The surface.
    pub surface: String,
    /// The start used.
    pub start: [f64; 2],
    /// One path per optimizer, in the request's order.
    pub paths: Vec<PathOut>,
}

/// Runs a [`SurfaceRequest`]: every optimizer through [`path_from`] on `engine`, each on a
/// thread of its own.
pub fn surface(engine: &dyn Engine, req: &SurfaceRequest) -> Result<SurfaceResponse> {
    let surface = Surface::parse(&req.surface)?;
    at_most("steps", req.steps, MAX_SURFACE_STEPS)?;
    let start = match req.start {
        None => surface.start(),
        Some([x, y]) if x.is_finite() && y.is_finite() && x.abs() <= 1e3 && y.abs() <= 1e3 => {
            (x, y)
        }
        Some([x, y]) => {
            return Err(Error::Argument(format!(
                "start ({x}, {y}) must be finite and within ±1000"
            )));
        }
    };
    let schedule = req
        .schedule
        .as_ref()
        .map(|s| s.pure())
        .transpose()?
        .flatten();
    let opts = optimizers(&req.optimizers)?;
    let paths = std::thread::scope(|scope| {
        let handles: Vec<_> = opts
            .into_iter()
            .map(|(label, opt)| {
                let schedule = schedule.as_ref();
                scope.spawn(move || -> Result<PathOut> {
                    let pts = path_from(engine, surface, opt, start, schedule, req.steps)?;
                    Ok(PathOut {
                        label,
                        loss: pts.iter().map(|&(x, y)| surface.value(x, y)).collect(),
                        points: pts.into_iter().map(|(x, y)| [x, y]).collect(),
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Argument("a path's thread failed".into())))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(SurfaceResponse {
        surface: surface.name().into(),
        start: [start.0, start.1],
        paths,
    })
}

/// A surface for drawing: its values on a grid over its window, and its suggested setup.
#[derive(Clone, Debug, Serialize)]
pub struct SurfaceInfo {
    /// Its name.
    pub name: String,
    /// Its formula.
    pub formula: String,
    /// ((x₀, x₁), (y₀, y₁)).
    pub window: [[f64; 2]; 2],
    /// The default start.
    pub start: [f64; 2],
    /// The minimum (or saddle point) marked.
    pub optimum: [f64; 2],
    /// The default number of steps.
    pub steps: usize,
    /// Grid columns.
    pub nx: usize,
    /// Grid rows.
    pub ny: usize,
    /// f at cell centres, row by row from y₀ (row-major, `ny` rows of `nx`).
    pub values: Vec<f64>,
    /// Learning rates that suit this surface, by preset label.
    pub lrs: BTreeMap<String, f64>,
}

/// `GET /api/surfaces/NAME`.
pub fn surface_info(name: &str) -> Result<SurfaceInfo> {
    let s = Surface::parse(name)?;
    let ((x0, x1), (y0, y1)) = s.window();
    let (nx, ny) = (120, 96);
    let (dx, dy) = ((x1 - x0) / nx as f64, (y1 - y0) / ny as f64);
    let values = (0..ny)
        .flat_map(|j| {
            (0..nx).map(move |i| s.value(x0 + (i as f64 + 0.5) * dx, y0 + (j as f64 + 0.5) * dy))
        })
        .collect();
    Ok(SurfaceInfo {
        name: s.name().into(),
        formula: s.formula().into(),
        window: [[x0, x1], [y0, y1]],
        start: [s.start().0, s.start().1],
        optimum: [s.optimum().0, s.optimum().1],
        steps: s.steps(),
        nx,
        ny,
        values,
        lrs: s
            .optimizers()
            .into_iter()
            .map(|(label, o)| (label.to_string(), o.lr()))
            .collect(),
    })
}

/// `POST /api/schedule`: a schedule's learning rate (and momentum) per step.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleTraceRequest {
    /// The schedule (`lr` among its params is the base learning rate, default 0.1).
    pub schedule: ScheduleRequest,
    /// Steps to trace (at most [`MAX_STEPS`]).
    pub steps: usize,
}

/// The curves of a [`ScheduleTraceRequest`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScheduleTrace {
    /// The learning rate of each step, as the step's uniform carries it to the kernel (f32);
    /// for ReduceLROnPlateau, the scheduler's lr of each epoch.
    pub lr: Vec<f64>,
    /// The momentum (SGD's μ, Adam's β₁) where the schedule cycles it.
    pub momentum: Option<Vec<f64>>,
    /// The metric fed to ReduceLROnPlateau, epoch by epoch (a loss that stalls).
    pub metric: Option<Vec<f64>>,
}

/// Runs a [`ScheduleTraceRequest`]: a pure schedule through an SGD-momentum optimizer's
/// uniforms on `engine` ([`trace`]); ReduceLROnPlateau through its scheduler fed
/// [`stalled_loss`] unless the request gives `metrics`.
pub fn schedule(engine: &dyn Engine, req: &ScheduleTraceRequest) -> Result<ScheduleTrace> {
    at_most("steps", req.steps, MAX_STEPS)?;
    let mut request = req.schedule.clone();
    if request.is_plateau() && !request.params.contains_key("metrics") {
        let metric = stalled_loss(req.steps);
        request
            .params
            .insert("metrics".into(), serde_json::json!(metric));
    }
    let spec = request.build()?;
    match &spec {
        ScheduleSpec::Pure { schedule, lr } => {
            let t = trace(engine, schedule, *lr, req.steps as u64)?;
            let cycled = schedule.momentum(0)?.is_some();
            Ok(ScheduleTrace {
                lr: t.iter().map(|s| s.lr).collect(),
                momentum: cycled.then(|| t.iter().map(|s| s.momentum).collect()),
                metric: None,
            })
        }
        ScheduleSpec::Plateau { metrics, .. } => Ok(ScheduleTrace {
            lr: spec.rows(req.steps as u64)?.iter().map(|r| r.lr).collect(),
            momentum: None,
            metric: Some(metrics.clone()),
        }),
    }
}

/// `POST /api/lr-finder`: the learning-rate range test.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FinderRequest {
    /// The model ([`ModelRequest`]).
    #[serde(flatten)]
    pub model: ModelRequest,
    /// The optimizer whose learning rate is swept.
    pub optimizer: OptimizerSpec,
    /// First learning rate.
    pub start_lr: f64,
    /// Last learning rate.
    pub end_lr: f64,
    /// Steps (at most [`MAX_STEPS`]).
    pub num_iter: usize,
    /// Minibatch size.
    #[serde(default = "default_batch")]
    pub batch: usize,
}

fn default_batch() -> usize {
    64
}

/// One point of the range test.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct FinderPoint {
    /// The learning rate.
    pub lr: f64,
    /// The minibatch loss.
    pub loss: f64,
    /// The smoothed loss.
    pub smoothed: f64,
}

/// The result of a [`FinderRequest`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FinderResult {
    /// Every point, in order.
    pub points: Vec<FinderPoint>,
    /// The suggested learning rate (steepest descent of the smoothed loss).
    pub suggestion: Option<f64>,
}

/// Runs a [`FinderRequest`] ([`crate::demo::classify::lr_sweep`]).
pub fn lr_finder(engine: &dyn Engine, req: &FinderRequest) -> Result<FinderResult> {
    at_most("num_iter", req.num_iter, MAX_STEPS)?;
    let (model, train, _) = req.model.load()?;
    let mut finder = LrFinder::new(req.start_lr, req.end_lr, req.num_iter as u64)?;
    crate::demo::classify::lr_sweep(
        engine,
        model,
        req.optimizer.build()?,
        &train,
        req.batch,
        &mut finder,
        req.model.seed,
    )?;
    Ok(FinderResult {
        points: finder
            .points()
            .iter()
            .map(|p| FinderPoint {
                lr: p.lr,
                loss: p.loss,
                smoothed: p.smoothed,
            })
            .collect(),
        suggestion: finder.suggestion(),
    })
}

/// A model and the data it learns.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ModelRequest {
    /// `logistic` or `mlp`.
    pub model: String,
    /// Hidden units of the MLP (default 32).
    #[serde(default = "default_hidden")]
    pub hidden: usize,
    /// `synthetic` (make_classification, 1000 × 20, 2 classes) or `digits` (UCI, 1797 × 64).
    pub dataset: String,
    /// The initialization's seed.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_hidden() -> usize {
    32
}

fn default_seed() -> u64 {
    11
}

impl ModelRequest {
    /// The model and the standardized train and test splits (80/20), as the examples use.
    pub fn load(&self) -> Result<(Model, Dataset, Dataset)> {
        let model = match self.model.trim().to_ascii_lowercase().as_str() {
            "logistic" => Model::Logistic,
            "mlp" => {
                if self.hidden == 0 {
                    return Err(Error::Argument("hidden must be at least 1".into()));
                }
                at_most("hidden", self.hidden, MAX_HIDDEN)?;
                Model::Mlp {
                    hidden: self.hidden,
                }
            }
            other => {
                return Err(Error::Argument(format!(
                    "unknown model `{other}`; known: logistic, mlp"
                )));
            }
        };
        let data = match self.dataset.trim().to_ascii_lowercase().as_str() {
            "synthetic" => make_classification(1000, 20, 5, 5, 2, 2, 1.0, 0.01, 3)?,
            "digits" => digits()?,
            other => {
                return Err(Error::Argument(format!(
                    "unknown dataset `{other}`; known: synthetic, digits"
                )));
            }
        };
        let (train, test) = data.split(0.2, 5);
        Ok((model, train, test))
    }
}

/// `POST /api/train`: optimizers trained side by side (a job whose curves stream in).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainRequest {
    /// The model and data.
    #[serde(flatten)]
    pub model: ModelRequest,
    /// The optimizers.
    pub optimizers: Vec<OptimizerSpec>,
    /// Full-batch steps (at most [`MAX_STEPS`]).
    pub steps: usize,
    /// The training loss whose first crossing the table reports.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_threshold() -> f64 {
    0.25
}

/// A checked training or sweep request: what runs.
pub struct Problem {
    /// The model.
    pub model: Model,
    /// Its training split.
    pub train: Dataset,
    /// Its test split.
    pub test: Dataset,
    /// The optimizers by label.
    pub optimizers: Vec<(String, Optimizer)>,
}

impl Problem {
    fn new(model: &ModelRequest, specs: &[OptimizerSpec]) -> Result<Self> {
        let optimizers = optimizers(specs)?;
        let (model, train, test) = model.load()?;
        Ok(Self {
            model,
            train,
            test,
            optimizers,
        })
    }
}

impl TrainRequest {
    /// The checked request.
    pub fn check(&self) -> Result<Problem> {
        at_most("steps", self.steps, MAX_STEPS)?;
        if !self.threshold.is_finite() {
            return Err(Error::Argument("threshold must be a finite number".into()));
        }
        Problem::new(&self.model, &self.optimizers)
    }
}

/// `POST /api/sweep`: final loss and accuracy over a log-spaced grid of learning rates.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SweepRequest {
    /// The model and data.
    #[serde(flatten)]
    pub model: ModelRequest,
    /// The optimizers (their `lr` is replaced by each grid point).
    pub optimizers: Vec<OptimizerSpec>,
    /// Smallest learning rate.
    pub lr_min: f64,
    /// Largest learning rate.
    pub lr_max: f64,
    /// Grid points (at most [`MAX_SWEEP_LRS`]).
    pub count: usize,
    /// Steps of each run (at most [`MAX_SWEEP_STEPS`]).
    pub steps: usize,
}

impl SweepRequest {
    /// The checked request and its learning rates.
    pub fn check(&self) -> Result<(Problem, Vec<f64>)> {
        at_most("count", self.count, MAX_SWEEP_LRS)?;
        at_most("steps", self.steps, MAX_SWEEP_STEPS)?;
        let ok = |v: f64| v.is_finite() && v > 0.0;
        if !(ok(self.lr_min) && ok(self.lr_max) && self.lr_min <= self.lr_max) {
            return Err(Error::Argument(format!(
                "the learning rates must be positive with lr_min ≤ lr_max (got {} … {})",
                self.lr_min, self.lr_max
            )));
        }
        if self.count == 0 {
            return Err(Error::Argument("count must be at least 1".into()));
        }
        let lrs = crate::demo::classify::log_space(self.lr_min, self.lr_max, self.count);
        Ok((Problem::new(&self.model, &self.optimizers)?, lrs))
    }
}

/// One optimizer's sweep.
#[derive(Clone, Debug, Serialize)]
pub struct SweepCurve {
    /// Its label.
    pub label: String,
    /// Where each learning rate ended, in the grid's order.
    pub points: Vec<SweepPoint>,
}
