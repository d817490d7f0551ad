//! Schedules written as on the command line: `NAME key=value …` with PyTorch's class names
//! (case-insensitive, `LR` optional: `StepLR`, `step`, `OneCycleLR`, `onecycle`, …) and PyTorch's
//! argument names (`step_size`, `gamma`, `T_max`, `eta_min`, `max_lr`, `total_steps`, …).
//! `lr=` sets the base learning rate (default 0.1); `warmup_steps=W` (and
//! `warmup_start_factor=f`, default 0) puts a linear warm-up in front of any pure schedule.

use super::{
    Anneal, Cyclic, CyclicMode, OneCycle, PlateauMode, ReduceLrOnPlateau, Schedule, ThresholdMode,
};
use crate::args::Args;
use crate::error::{Error, Result};

/// A parsed schedule and what is needed to print its sequence.
#[derive(Clone, Debug, PartialEq)]
pub enum ScheduleSpec {
    /// A pure schedule with its base learning rate.
    Pure {
        /// The schedule.
        schedule: Schedule,
        /// Base lr `b`.
        lr: f64,
    },
    /// ReduceLROnPlateau with the metric of each epoch.
    Plateau {
        /// The scheduler, at its initial lr.
        plateau: ReduceLrOnPlateau,
        /// One metric per epoch.
        metrics: Vec<f64>,
    },
}

/// One row of a schedule's sequence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row {
    /// Scheduler step e.
    pub step: u64,
    /// Learning rate at e.
    pub lr: f64,
    /// Momentum (or β₁) at e, where cycled.
    pub momentum: Option<f64>,
}

const NAMES: &str = "constant, StepLR, MultiStepLR, ExponentialLR, PolynomialLR, LinearLR, ConstantLR, \
CosineAnnealingLR, CosineAnnealingWarmRestarts, OneCycleLR, CyclicLR, ReduceLROnPlateau";

/// Parses `NAME` and `key=value` parameters.
pub fn parse(name: &str, params: &[String]) -> Result<ScheduleSpec> {
    let full = name.to_ascii_lowercase().replace(['_', '-'], "");
    // `ConstantLR` is PyTorch's constant *factor* schedule; plain `constant` is a fixed lr.
    let key = if full == "constantlr" {
        full
    } else {
        full.strip_suffix("lr").unwrap_or(&full).to_string()
    };
    let mut a = Args::parse(name, params)?;
    let lr = a.f64_or("lr", 0.1)?;
    let schedule = match key.as_str() {
        "constant" => Schedule::Constant,
        "step" => Schedule::Step {
            step_size: a.required_u64("step_size")?,
            gamma: a.f64_or("gamma", 0.1)?,
        },
        "multistep" => {
            let milestones = a
                .list("milestones")?
                .ok_or_else(|| Error::Argument(format!("{name} needs milestones=a,b,…")))?;
            if milestones.iter().any(|m| *m < 0.0 || m.fract() != 0.0) {
                return Err(Error::Argument(format!(
                    "{name}: milestones must be non-negative integers"
                )));
            }
            Schedule::MultiStep {
                milestones: milestones.into_iter().map(|m| m as u64).collect(),
                gamma: a.f64_or("gamma", 0.1)?,
            }
        }
        "exponential" => Schedule::Exponential {
            gamma: a.required_f64("gamma")?,
        },
        "polynomial" => Schedule::Polynomial {
            total_iters: a.u64_or("total_iters", 5)?,
            power: a.f64_or("power", 1.0)?,
        },
        "linear" => Schedule::Linear {
            start_factor: a.f64_or("start_factor", 1.0 / 3.0)?,
            end_factor: a.f64_or("end_factor", 1.0)?,
            total_iters: a.u64_or("total_iters", 5)?,
        },
        "constantlr" => Schedule::ConstantFactor {
            factor: a.f64_or("factor", 1.0 / 3.0)?,
            total_iters: a.u64_or("total_iters", 5)?,
        },
        "cosineannealing" | "cosine" => Schedule::Cosine {
            t_max: a.required_u64("T_max")?,
            eta_min: a.f64_or("eta_min", 0.0)?,
        },
        "cosineannealingwarmrestarts" | "warmrestarts" => Schedule::CosineWarmRestarts {
            t_0: a.required_u64("T_0")?,
            t_mult: a.u64_or("T_mult", 1)?,
            eta_min: a.f64_or("eta_min", 0.0)?,
        },
        "onecycle" => {
            let total_steps = match a.take("total_steps") {
                Some(v) => v.trim().parse().map_err(|_| {
                    Error::Argument(format!("{name}: total_steps={v} is not an integer"))
                })?,
                None => {
                    let (epochs, per) = (a.u64_or("epochs", 0)?, a.u64_or("steps_per_epoch", 0)?);
                    if epochs == 0 || per == 0 {
                        return Err(Error::Argument(format!(
                            "{name} needs total_steps=… (or epochs=… and steps_per_epoch=…)"
                        )));
                    }
                    epochs * per
                }
            };
            let d = OneCycle::new(a.required_f64("max_lr")?, total_steps);
            Schedule::OneCycle(OneCycle {
                pct_start: a.f64_or("pct_start", d.pct_start)?,
                anneal_strategy: match a.take("anneal_strategy").as_deref().map(str::trim) {
                    None | Some("cos") => Anneal::Cos,
                    Some("linear") => Anneal::Linear,
                    Some(v) => {
                        return Err(Error::Argument(format!(
                            "{name}: anneal_strategy={v} is not cos or linear"
                        )));
                    }
                },
                cycle_momentum: a.bool_or("cycle_momentum", d.cycle_momentum)?,
                base_momentum: a.f64_or("base_momentum", d.base_momentum)?,
                max_momentum: a.f64_or("max_momentum", d.max_momentum)?,
                div_factor: a.f64_or("div_factor", d.div_factor)?,
                final_div_factor: a.f64_or("final_div_factor", d.final_div_factor)?,
                three_phase: a.bool_or("three_phase", d.three_phase)?,
                ..d
            })
        }
        "cyclic" => {
            let d = Cyclic::new(a.required_f64("base_lr")?, a.required_f64("max_lr")?);
            let gamma = a.f64_or("gamma", 1.0)?;
            let down = match a.take("step_size_down") {
                None => None,
                Some(v) => Some(v.trim().parse().map_err(|_| {
                    Error::Argument(format!("{name}: step_size_down={v} is not an integer"))
                })?),
            };
            Schedule::Cyclic(Cyclic {
                step_size_up: a.u64_or("step_size_up", d.step_size_up)?,
                step_size_down: down,
                mode: match a.take("mode").as_deref().map(str::trim) {
                    None | Some("triangular") => CyclicMode::Triangular,
                    Some("triangular2") => CyclicMode::Triangular2,
                    Some("exp_range") => CyclicMode::ExpRange { gamma },
                    Some(v) => {
                        return Err(Error::Argument(format!(
                            "{name}: mode={v} is not triangular, triangular2 or exp_range"
                        )));
                    }
                },
                cycle_momentum: a.bool_or("cycle_momentum", d.cycle_momentum)?,
                base_momentum: a.f64_or("base_momentum", d.base_momentum)?,
                max_momentum: a.f64_or("max_momentum", d.max_momentum)?,
                ..d
            })
        }
        "reduceonplateau" | "reducelronplateau" | "plateau" => {
            let d = ReduceLrOnPlateau::new(lr);
            let mode = match a.take("mode").as_deref().map(str::trim) {
                None | Some("min") => PlateauMode::Min,
                Some("max") => PlateauMode::Max,
                Some(v) => {
                    return Err(Error::Argument(format!(
                        "{name}: mode={v} is not min or max"
                    )));
                }
            };
            let threshold_mode = match a.take("threshold_mode").as_deref().map(str::trim) {
                None | Some("rel") => ThresholdMode::Rel,
                Some("abs") => ThresholdMode::Abs,
                Some(v) => {
                    return Err(Error::Argument(format!(
                        "{name}: threshold_mode={v} is not rel or abs"
                    )));
                }
            };
            let plateau = d
                .mode(mode)
                .factor(a.f64_or("factor", 0.1)?)
                .patience(a.u64_or("patience", 10)?)
                .threshold(a.f64_or("threshold", 1e-4)?)
                .threshold_mode(threshold_mode)
                .cooldown(a.u64_or("cooldown", 0)?)
                .min_lr(a.f64_or("min_lr", 0.0)?)
                .eps(a.f64_or("eps", 1e-8)?);
            let metrics = a.list("metrics")?.ok_or_else(|| {
                Error::Argument(format!("{name} needs metrics=m0,m1,… (one per epoch)"))
            })?;
            a.finish()?;
            plateau.validate()?;
            return Ok(ScheduleSpec::Plateau { plateau, metrics });
        }
        _ => {
            return Err(Error::Argument(format!(
                "unknown schedule `{name}`; known: {NAMES}"
            )));
        }
    };
    let schedule = match a.take("warmup_steps") {
        None => schedule,
        Some(w) => Schedule::Warmup {
            steps: w.trim().parse().map_err(|_| {
                Error::Argument(format!("{name}: warmup_steps={w} is not an integer"))
            })?,
            start_factor: a.f64_or("warmup_start_factor", 0.0)?,
            then: Box::new(schedule),
        },
    };
    a.finish()?;
    crate::optim::ensure(
        lr.is_finite() && lr >= 0.0,
        "lr",
        lr,
        "must be finite and >= 0",
    )?;
    schedule.validate()?;
    Ok(ScheduleSpec::Pure { schedule, lr })
}

impl ScheduleSpec {
    /// The first `steps` rows (e = 0 … steps−1). A plateau's row e+1 is its lr after the metric
    /// of epoch e; it needs `steps − 1` metrics.
    pub fn rows(&self, steps: u64) -> Result<Vec<Row>> {
        match self {
            ScheduleSpec::Pure { schedule, lr } => (0..steps)
                .map(|e| {
                    Ok(Row {
                        step: e,
                        lr: schedule.lr(*lr, e)?,
                        momentum: schedule.momentum(e)?,
                    })
                })
                .collect(),
            ScheduleSpec::Plateau { plateau, metrics } => {
                let needed = steps.saturating_sub(1) as usize;
                if metrics.len() < needed {
                    return Err(Error::Argument(format!(
                        "ReduceLROnPlateau: {steps} steps need {needed} metrics, got {}",
                        metrics.len()
                    )));
                }
                let mut p = plateau.clone();
                let mut rows = Vec::new();
                for e in 0..steps {
                    rows.push(Row {
                        step: e,
                        lr: p.lr(),
                        momentum: None,
                    });
                    if let Some(&m) = metrics.get(e as usize) {
                        p.step(m)?;
                    }
                }
                Ok(rows)
            }
        }
    }
}
