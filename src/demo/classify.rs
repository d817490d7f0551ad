//! Classifiers trained with each optimizer: softmax regression and a one-hidden-layer MLP.
//! Forward and backward run on the CPU (ndarray, full batch); every update is the library's
//! fused step (on either backend) over the model's tensors packed in one [`ParamLayout`].

use std::path::Path;

use ndarray::{Array2, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Engine;
use super::data::Dataset;
use crate::backend::Backend;
use crate::error::Result;
use crate::layout::ParamLayout;
use crate::optim::{
    Adadelta, Adafactor, Adagrad, Adam, Adamax, Lamb, Lion, NAdam, Optimizer, RAdam, RmsProp, Sgd,
    StatePrecision,
};
use crate::plot::{Panel, Series, draw};

/// The model trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// Softmax (multinomial logistic) regression.
    Logistic,
    /// One hidden layer of `hidden` tanh units, then softmax.
    Mlp {
        /// Hidden units.
        hidden: usize,
    },
}

impl Model {
    /// Short name.
    pub fn name(self) -> String {
        match self {
            Model::Logistic => "logistic regression".into(),
            Model::Mlp { hidden } => format!("MLP ({hidden} tanh units)"),
        }
    }

    /// The model's tensors for `inputs` features and `classes` outputs.
    pub fn layout(self, inputs: usize, classes: usize) -> Result<ParamLayout> {
        let mut l = ParamLayout::new(4);
        match self {
            Model::Logistic => {
                l.add("w", &[inputs, classes])?;
                l.add("b", &[classes])?;
            }
            Model::Mlp { hidden } => {
                l.add("w1", &[inputs, hidden])?;
                l.add("b1", &[hidden])?;
                l.add("w2", &[hidden, classes])?;
                l.add("b2", &[classes])?;
            }
        }
        Ok(l)
    }
}

/// The optimizers the examples compare, with learning rates that suit these problems.
pub fn optimizers() -> Vec<(&'static str, Optimizer)> {
    // The models are small (the digits MLP has 2,410 parameters): low-precision state for
    // every size, not only from bitsandbytes' 4,096 on.
    let (int8, bf16) = (
        StatePrecision::int8().min_len(0),
        StatePrecision::bf16().min_len(0),
    );
    let momentum = Sgd::default().lr(0.05).momentum(0.9);
    let adamw = Adam::adamw().lr(0.01);
    vec![
        ("SGD", Sgd::default().lr(0.5).into()),
        ("momentum 0.9", momentum.into()),
        ("momentum int8", momentum.state(int8).into()),
        ("momentum bf16", momentum.state(bf16).into()),
        (
            "Nesterov 0.9",
            Sgd::default().lr(0.05).momentum(0.9).nesterov(true).into(),
        ),
        ("RMSprop", RmsProp::default().lr(0.003).into()),
        ("Adam", Adam::default().lr(0.01).into()),
        ("AdamW λ=0.01", adamw.into()),
        ("AdamW int8", adamw.state(int8).into()),
        ("AdamW bf16", adamw.state(bf16).into()),
        ("Adagrad", Adagrad::default().lr(0.1).into()),
        ("Adamax", Adamax::default().lr(0.02).into()),
        ("RAdam", RAdam::default().lr(0.01).into()),
        ("Adadelta", Adadelta::default().into()),
        ("NAdam", NAdam::default().lr(0.01).into()),
        ("Lion", Lion::default().lr(3e-3).weight_decay(0.1).into()),
        // The trust ratio per tensor of the model's layout (fc1.weight, fc1.bias, …).
        ("LAMB", Lamb::default().lr(0.01).into()),
        // Factored per matrix of the layout; its relative step ρ = min(γ, 1/√t) scales with
        // each tensor's RMS.
        ("Adafactor", Adafactor::default().lr(0.05).into()),
    ]
}

fn flat_view(flat: &[f32], layout: &ParamLayout, name: &str) -> Result<Array2<f32>> {
    let t = layout.get(name)?;
    let cols = if t.shape.len() == 2 {
        t.shape[1]
    } else {
        t.len
    };
    let rows = t.len / cols;
    Array2::from_shape_vec((rows, cols), flat[t.range()].to_vec())
        .map_err(|e| crate::Error::Argument(e.to_string()))
}

/// Mean cross-entropy, accuracy, and (with `grads`) the gradient in the flat layout.
pub fn evaluate(
    model: Model,
    layout: &ParamLayout,
    params: &[f32],
    data: &Dataset,
    grads: Option<&mut Vec<f32>>,
) -> Result<(f64, f64)> {
    let n = data.y.len();
    let (hidden, logits) = match model {
        Model::Logistic => (
            None,
            data.x.dot(&flat_view(params, layout, "w")?) + flat_view(params, layout, "b")?.row(0),
        ),
        Model::Mlp { .. } => {
            let h = (data.x.dot(&flat_view(params, layout, "w1")?)
                + flat_view(params, layout, "b1")?.row(0))
            .mapv(f32::tanh);
            let out =
                h.dot(&flat_view(params, layout, "w2")?) + flat_view(params, layout, "b2")?.row(0);
            (Some(h), out)
        }
    };
    // Softmax with the max subtracted, cross-entropy, accuracy.
    let mut probs = logits.clone();
    let (mut loss, mut correct) = (0.0f64, 0usize);
    for (i, mut row) in probs.axis_iter_mut(Axis(0)).enumerate() {
        let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - max).exp());
        let sum: f32 = row.sum();
        row.mapv_inplace(|v| v / sum);
        loss -= f64::from(row[data.y[i]].max(1e-12)).ln();
        let best = row
            .iter()
            .enumerate()
            .fold((0, f32::MIN), |b, (k, &p)| if p > b.1 { (k, p) } else { b })
            .0;
        correct += usize::from(best == data.y[i]);
    }
    if let Some(g) = grads {
        g.iter_mut().for_each(|v| *v = 0.0);
        let mut d = probs;
        for (i, mut row) in d.axis_iter_mut(Axis(0)).enumerate() {
            row[data.y[i]] -= 1.0;
        }
        d /= n as f32;
        let mut put = |name: &str, value: Array2<f32>| -> Result<()> {
            let t = layout.get(name)?;
            g[t.range()].copy_from_slice(
                value
                    .as_slice()
                    .unwrap_or(&value.to_owned().into_raw_vec_and_offset().0),
            );
            Ok(())
        };
        let sum_rows = |a: &Array2<f32>| a.sum_axis(Axis(0)).insert_axis(Axis(0));
        match (model, hidden) {
            (Model::Logistic, _) => {
                put("w", data.x.t().dot(&d))?;
                put("b", sum_rows(&d))?;
            }
            (Model::Mlp { .. }, Some(h)) => {
                put("w2", h.t().dot(&d))?;
                put("b2", sum_rows(&d))?;
                let dh = d.dot(&flat_view(params, layout, "w2")?.t()) * h.mapv(|v| 1.0 - v * v);
                put("w1", data.x.t().dot(&dh))?;
                put("b1", sum_rows(&dh))?;
            }
            _ => {}
        }
    }
    Ok((loss / n as f64, correct as f64 / n as f64))
}

/// The initial parameters of `model` (seeded, Glorot-uniform weights, zero biases).
pub fn init(layout: &ParamLayout, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut p = vec![0.0f32; layout.len()];
    for t in layout.tensors() {
        if t.shape.len() == 2 {
            let limit = (6.0 / (t.shape[0] + t.shape[1]) as f64).sqrt();
            for v in &mut p[t.range()] {
                *v = rng.random_range(-limit..limit) as f32;
            }
        }
    }
    p
}

/// One optimizer's training run.
#[derive(Clone, Debug)]
pub struct Run {
    /// Optimizer label.
    pub optimizer: String,
    /// Training loss after each step (index 0: before training).
    pub train_loss: Vec<f64>,
    /// Test accuracy after each step (index 0: before training).
    pub test_accuracy: Vec<f64>,
}

impl Run {
    /// The first step at which the training loss is at most `threshold`.
    pub fn steps_to(&self, threshold: f64) -> Option<usize> {
        self.train_loss.iter().position(|&l| l <= threshold)
    }
}

/// One model being trained by one optimizer, a step at a time (what [`train`] loops over, and
/// what the playground interleaves to stream several optimizers side by side).
pub struct Trainer {
    model: Model,
    layout: ParamLayout,
    opt: Box<dyn Backend + Send>,
    params: Vec<f32>,
    grads: Vec<f32>,
}

impl Trainer {
    /// `model` for `train`'s features and classes, seeded initial parameters ([`init`]), and
    /// `optimizer` over them on `engine`.
    pub fn new(
        engine: &dyn Engine,
        model: Model,
        optimizer: Optimizer,
        train: &Dataset,
        seed: u64,
    ) -> Result<Self> {
        let layout = model.layout(train.x.ncols(), train.classes)?;
        let mut opt = engine.with_layout(optimizer, layout.clone())?;
        let params = init(&layout, seed);
        opt.write_params(&params)?;
        let grads = vec![0.0f32; layout.len()];
        Ok(Self {
            model,
            layout,
            opt,
            params,
            grads,
        })
    }

    /// The optimizer (to set its learning rate or schedule before training).
    pub fn optimizer(&mut self) -> &mut (dyn Backend + Send) {
        &mut *self.opt
    }

    /// The training loss on `train` and the accuracy on `test` of the current parameters;
    /// then, if `step`, one optimizer step with the gradient of that training loss.
    pub fn next(&mut self, train: &Dataset, test: &Dataset, step: bool) -> Result<(f64, f64)> {
        self.opt.read_params_into(&mut self.params)?;
        let grads = step.then_some(&mut self.grads);
        let (loss, _) = evaluate(self.model, &self.layout, &self.params, train, grads)?;
        let (_, accuracy) = evaluate(self.model, &self.layout, &self.params, test, None)?;
        if step {
            self.opt.write_grads(&self.grads)?;
            self.opt.step()?;
        }
        Ok((loss, accuracy))
    }
}

/// Trains `model` on `train` for `steps` full-batch steps with the (label, optimizer) pair on
/// `engine`, recording the training loss and the test accuracy before the first step and
/// after every step.
pub fn train(
    engine: &dyn Engine,
    model: Model,
    (name, optimizer): (&str, Optimizer),
    train: &Dataset,
    test: &Dataset,
    steps: usize,
    seed: u64,
) -> Result<Run> {
    let mut trainer = Trainer::new(engine, model, optimizer, train, seed)?;
    let mut run = Run {
        optimizer: name.to_string(),
        train_loss: Vec::with_capacity(steps + 1),
        test_accuracy: Vec::with_capacity(steps + 1),
    };
    for step in 0..=steps {
        let (loss, accuracy) = trainer.next(train, test, step < steps)?;
        run.train_loss.push(loss);
        run.test_accuracy.push(accuracy);
    }
    Ok(run)
}

/// `count` learning rates spaced evenly in log scale from `min` to `max` (both included).
pub fn log_space(min: f64, max: f64, count: usize) -> Vec<f64> {
    match count {
        0 => vec![],
        1 => vec![min],
        _ => (0..count)
            .map(|k| {
                let t = k as f64 / (count - 1) as f64;
                (min.ln() + t * (max.ln() - min.ln())).exp()
            })
            .collect(),
    }
}

/// Where one learning rate of a [`sweep`] ends.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct SweepPoint {
    /// The learning rate.
    pub lr: f64,
    /// The training loss after the last step (not finite where the run diverged).
    pub loss: f64,
    /// The test accuracy after the last step.
    pub accuracy: f64,
}

/// The tune-the-learning-rate exercise: `optimizer` trained from the same initial parameters
/// for `steps` steps at each learning rate of `lrs`, and where each run ends.
#[allow(clippy::too_many_arguments)]
pub fn sweep(
    engine: &dyn Engine,
    model: Model,
    optimizer: Optimizer,
    train: &Dataset,
    test: &Dataset,
    lrs: &[f64],
    steps: usize,
    seed: u64,
) -> Result<Vec<SweepPoint>> {
    lrs.iter()
        .map(|&lr| {
            let mut trainer = Trainer::new(engine, model, optimizer, train, seed)?;
            trainer.optimizer().set_lr(lr)?;
            for _ in 0..steps {
                trainer.next(train, test, true)?;
            }
            let (loss, accuracy) = trainer.next(train, test, false)?;
            Ok(SweepPoint { lr, loss, accuracy })
        })
        .collect()
}

/// Draws a learning-rate sweep: final training loss and test accuracy against the learning
/// rate (log axis), one curve per optimizer. Diverged runs are left out of the loss curve.
pub fn draw_lr_sweep(path: &Path, title: &str, sweeps: &[(String, Vec<SweepPoint>)]) -> Result<()> {
    let series = |f: &dyn Fn(&SweepPoint) -> f64| -> Vec<Series> {
        sweeps
            .iter()
            .map(|(name, pts)| Series {
                name: name.clone(),
                points: pts
                    .iter()
                    .map(|p| (p.lr, f(p)))
                    .filter(|(_, v)| v.is_finite())
                    .collect(),
            })
            .collect()
    };
    let panels = [
        Panel {
            title: format!("{title}: final training loss"),
            x_label: "learning rate (log scale)".into(),
            y_label: "cross-entropy (log scale)".into(),
            series: series(&|p| p.loss),
            log_x: true,
            log_y: true,
            legend_lower: false,
            ..Default::default()
        },
        Panel {
            title: format!("{title}: final test accuracy"),
            x_label: "learning rate (log scale)".into(),
            y_label: "accuracy".into(),
            series: series(&|p| p.accuracy),
            log_x: true,
            legend_lower: true,
            ..Default::default()
        },
    ];
    draw(path, &panels, 2, (760, 480))
}

/// Draws loss and accuracy curves of every run of every model into one PNG: a row per model.
pub fn draw_runs(path: &Path, title: &str, runs: &[(Model, Vec<Run>)]) -> Result<()> {
    let mut panels = Vec::new();
    for (model, model_runs) in runs {
        let series = |f: &dyn Fn(&Run) -> &Vec<f64>| -> Vec<Series> {
            model_runs
                .iter()
                .map(|r| Series {
                    name: r.optimizer.clone(),
                    points: f(r)
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| (i as f64, v))
                        .collect(),
                })
                .collect()
        };
        panels.push(Panel {
            title: format!("{title}: {}, training loss", model.name()),
            legend_lower: false,
            x_label: "step".into(),
            y_label: "cross-entropy (log scale)".into(),
            series: series(&|r| &r.train_loss),
            log_y: true,
            ..Default::default()
        });
        panels.push(Panel {
            title: format!("{title}: {}, test accuracy", model.name()),
            x_label: "step".into(),
            y_label: "accuracy".into(),
            series: series(&|r| &r.test_accuracy),
            legend_lower: true,
            ..Default::default()
        });
    }
    draw(path, &panels, 2, (760, 480))
}

/// The learning-rate range test on `model`: `optimizer`'s learning rate swept by `finder`
/// until the finder stops, one step per minibatch of `batch` samples taken in turn (as
/// fastai runs it; the loss recorded is the minibatch's).
pub fn lr_sweep(
    engine: &dyn Engine,
    model: Model,
    optimizer: Optimizer,
    train: &Dataset,
    batch: usize,
    finder: &mut crate::schedule::LrFinder,
    seed: u64,
) -> Result<()> {
    let layout = model.layout(train.x.ncols(), train.classes)?;
    let mut opt = engine.with_layout(optimizer, layout.clone())?;
    opt.write_params(&init(&layout, seed))?;
    let mut grads = vec![0.0f32; layout.len()];
    let n = train.y.len();
    let batch = batch.clamp(1, n);
    let mut start = 0;
    while let Some(lr) = finder.next_lr() {
        let rows: Vec<usize> = (start..start + batch).map(|i| i % n).collect();
        start = (start + batch) % n;
        let minibatch = Dataset {
            name: train.name.clone(),
            x: train.x.select(Axis(0), &rows),
            y: rows.iter().map(|&i| train.y[i]).collect(),
            classes: train.classes,
        };
        let params = opt.read_params()?;
        let (loss, _) = evaluate(model, &layout, &params, &minibatch, Some(&mut grads))?;
        if !finder.record(loss) {
            break;
        }
        opt.set_lr(lr)?;
        opt.write_grads(&grads)?;
        opt.step()?;
    }
    Ok(())
}

/// Draws a finished sweep: raw and smoothed loss against the learning rate (log axis), with
/// the suggestion marked.
pub fn draw_sweep(path: &Path, title: &str, finder: &crate::schedule::LrFinder) -> Result<()> {
    let pts = finder.points();
    let mut panel = Panel {
        title: title.to_string(),
        x_label: "learning rate (log scale)".into(),
        y_label: "training loss".into(),
        series: vec![
            Series {
                name: "loss".into(),
                points: pts.iter().map(|p| (p.lr, p.loss)).collect(),
            },
            Series {
                name: "smoothed (β = 0.98, bias-corrected)".into(),
                points: pts.iter().map(|p| (p.lr, p.smoothed)).collect(),
            },
        ],
        log_x: true,
        legend_lower: false,
        ..Default::default()
    };
    if let Some(lr) = finder.suggestion()
        && let Some(p) = pts.iter().find(|p| p.lr == lr)
    {
        panel
            .marks
            .push((lr, p.smoothed, format!("  suggested lr {lr:.2e}")));
    }
    draw(path, &[panel], 1, (1000, 600))
}
