//! Learning-rate schedules with `torch.optim.lr_scheduler`'s semantics.
//!
//! A [`Schedule`] is a pure function of the scheduler step `e` (counted from 0) and the base
//! learning rate `b` of the parameter group, as in optax; bigger schedules are joined from small
//! ones ([`Schedule::Warmup`], [`Schedule::Sequential`]). The closed forms are SEMANTICS.md's.
//! [`ReduceLrOnPlateau`] is the one stateful scheduler: it is fed a metric each epoch. The
//! [`LrFinder`] sweeps the learning rate to suggest one.
//!
//! An optimizer given a schedule ([`crate::Backend::set_schedule`]) evaluates it once per step
//! on the host, in f64, and writes the result into that step's uniform: nothing on the device
//! is rebuilt.

mod finder;
mod plateau;
pub mod spec;

pub use finder::{FinderPoint, LrFinder};
pub use plateau::{PlateauMode, ReduceLrOnPlateau, ThresholdMode};

use std::f64::consts::PI;

use crate::error::{Error, Result};
use crate::optim::ensure;

/// How OneCycleLR anneals between its phase end points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Anneal {
    /// `z + (a − z)(1 + cos πp)/2` from `a` to `z` at fraction `p`.
    Cos,
    /// `a + (z − a)p`.
    Linear,
}

impl Anneal {
    fn at(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            Anneal::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            Anneal::Linear => (end - start) * pct + start,
        }
    }
}

/// CyclicLR's amplitude policy.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum CyclicMode {
    /// Constant amplitude.
    Triangular,
    /// Amplitude halved each cycle: scale `2^−(c−1)` for cycle `c`.
    Triangular2,
    /// Amplitude scaled by `γ^e` at iteration `e`.
    ExpRange {
        /// γ.
        gamma: f64,
    },
}

/// OneCycleLR (Smith & Topin, 2017): warm up from `max_lr/div_factor` to `max_lr`, then anneal
/// to `max_lr/div_factor/final_div_factor`; momentum (or Adam's β₁) moves inversely between
/// `max_momentum` and `base_momentum`. Defaults are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OneCycle {
    /// Peak learning rate.
    pub max_lr: f64,
    /// Steps in the cycle; stepping past it is an error.
    pub total_steps: u64,
    /// Share of the cycle spent rising (0.3).
    pub pct_start: f64,
    /// Anneal strategy (cos).
    pub anneal_strategy: Anneal,
    /// Cycle momentum inversely to the learning rate (true).
    pub cycle_momentum: bool,
    /// Momentum at the peak of the lr (0.85).
    pub base_momentum: f64,
    /// Momentum at the start and end (0.95).
    pub max_momentum: f64,
    /// initial lr = max_lr / div_factor (25).
    pub div_factor: f64,
    /// min lr = initial lr / final_div_factor (1e4).
    pub final_div_factor: f64,
    /// Three phases (up, down to the initial lr, down to the minimum) as in the paper (false).
    pub three_phase: bool,
}

/// CyclicLR (Smith, 2017): lr between `base_lr` and `max_lr` in triangles of
/// `step_size_up + step_size_down` steps; momentum inversely. Defaults are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cyclic {
    /// Lower bound.
    pub base_lr: f64,
    /// Upper bound.
    pub max_lr: f64,
    /// Steps rising (2000).
    pub step_size_up: u64,
    /// Steps falling (`step_size_up` when `None`).
    pub step_size_down: Option<u64>,
    /// Amplitude policy (triangular).
    pub mode: CyclicMode,
    /// Cycle momentum inversely (true).
    pub cycle_momentum: bool,
    /// Momentum at the top of the lr (0.8).
    pub base_momentum: f64,
    /// Momentum at the bottom of the lr (0.9).
    pub max_momentum: f64,
}

/// A learning-rate schedule: `lr(b, e)` for base lr `b` at scheduler step `e` (from 0).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Schedule {
    /// `b`.
    Constant,
    /// StepLR: `b·γ^⌊e/s⌋`.
    Step {
        /// s.
        step_size: u64,
        /// γ (0.1).
        gamma: f64,
    },
    /// MultiStepLR: `b·γ^(milestones ≤ e)` (a repeated milestone counts twice, as in PyTorch).
    MultiStep {
        /// Non-decreasing steps.
        milestones: Vec<u64>,
        /// γ (0.1).
        gamma: f64,
    },
    /// ExponentialLR: `b·γ^e`.
    Exponential {
        /// γ.
        gamma: f64,
    },
    /// PolynomialLR: `b·(1 − min(e,T)/T)^p` (`b` throughout when T = 0, as PyTorch steps it).
    Polynomial {
        /// T (5).
        total_iters: u64,
        /// p (1).
        power: f64,
    },
    /// LinearLR: `b·(f₀ + (f₁−f₀)·min(e,T)/T)` (`f₀·b` throughout when T = 0, as PyTorch steps it).
    Linear {
        /// f₀ (1/3).
        start_factor: f64,
        /// f₁ (1).
        end_factor: f64,
        /// T (5).
        total_iters: u64,
    },
    /// ConstantLR: `b·f` while `e < T`, then `b` (`f·b` throughout when T = 0, as PyTorch steps it).
    ConstantFactor {
        /// f (1/3).
        factor: f64,
        /// T (5).
        total_iters: u64,
    },
    /// CosineAnnealingLR: `η_min + (b−η_min)(1+cos(πe/T_max))/2`.
    Cosine {
        /// T_max.
        t_max: u64,
        /// η_min (0).
        eta_min: f64,
    },
    /// CosineAnnealingWarmRestarts: the cosine within cycle `i` of length `T₀·T_multⁱ`.
    CosineWarmRestarts {
        /// T₀.
        t_0: u64,
        /// T_mult (1).
        t_mult: u64,
        /// η_min (0).
        eta_min: f64,
    },
    /// OneCycleLR.
    OneCycle(OneCycle),
    /// CyclicLR.
    Cyclic(Cyclic),
    /// Linear warm-up from `start_factor·b` towards `b` over `steps`, then `then` with `e`
    /// counted from `steps`. `start_factor` 0 starts from 0 (PyTorch's LinearLR needs > 0).
    Warmup {
        /// Warm-up steps W.
        steps: u64,
        /// Fraction of `b` at e = 0.
        start_factor: f64,
        /// The schedule after the warm-up.
        then: Box<Schedule>,
    },
    /// SequentialLR: schedule `k` from `milestones[k−1]` on, with `e` counted from there.
    Sequential {
        /// One more schedule than milestones.
        schedules: Vec<Schedule>,
        /// Strictly increasing steps where the next schedule starts.
        milestones: Vec<u64>,
    },
}

impl OneCycle {
    /// PyTorch's defaults for `max_lr` over `total_steps`.
    pub fn new(max_lr: f64, total_steps: u64) -> Self {
        Self {
            max_lr,
            total_steps,
            pct_start: 0.3,
            anneal_strategy: Anneal::Cos,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
        }
    }

    /// (end step, start lr, end lr, start momentum, end momentum) of each phase, as PyTorch
    /// lays them out (end steps are fractional).
    fn phases(&self) -> Vec<(f64, f64, f64, f64, f64)> {
        let initial = self.max_lr / self.div_factor;
        let min = initial / self.final_div_factor;
        let total = self.total_steps as f64;
        let (lo, hi) = (self.base_momentum, self.max_momentum);
        if self.three_phase {
            vec![
                (self.pct_start * total - 1.0, initial, self.max_lr, hi, lo),
                (
                    2.0 * self.pct_start * total - 2.0,
                    self.max_lr,
                    initial,
                    lo,
                    hi,
                ),
                (total - 1.0, initial, min, hi, hi),
            ]
        } else {
            vec![
                (self.pct_start * total - 1.0, initial, self.max_lr, hi, lo),
                (total - 1.0, self.max_lr, min, lo, hi),
            ]
        }
    }

    /// (lr, momentum) at step `e`; an error past `total_steps`.
    fn at(&self, e: u64) -> Result<(f64, f64)> {
        if e > self.total_steps {
            return Err(Error::ScheduleFinished {
                step: e,
                total_steps: self.total_steps,
            });
        }
        let phases = self.phases();
        let e = e as f64;
        let mut start = 0.0;
        for (i, &(end, lr0, lr1, m0, m1)) in phases.iter().enumerate() {
            if e <= end || i == phases.len() - 1 {
                let pct = (e - start) / (end - start);
                let a = self.anneal_strategy;
                return Ok((a.at(lr0, lr1, pct), a.at(m0, m1, pct)));
            }
            start = end;
        }
        unreachable!("the last phase always matches")
    }

    fn validate(&self) -> Result<()> {
        ensure(
            self.max_lr.is_finite() && self.max_lr > 0.0,
            "max_lr",
            self.max_lr,
            "must be finite and > 0",
        )?;
        ensure(self.total_steps > 0, "total_steps", 0.0, "must be > 0")?;
        ensure(
            self.pct_start > 0.0 && self.pct_start < 1.0,
            "pct_start",
            self.pct_start,
            "must be in (0, 1)",
        )?;
        ensure(
            self.div_factor.is_finite() && self.div_factor > 0.0,
            "div_factor",
            self.div_factor,
            "must be finite and > 0",
        )?;
        ensure(
            self.final_div_factor.is_finite() && self.final_div_factor > 0.0,
            "final_div_factor",
            self.final_div_factor,
            "must be finite and > 0",
        )?;
        momenta(self.base_momentum, self.max_momentum)?;
        // Each phase must span at least one step, or its fraction divides by zero.
        let mut start = 0.0;
        for (end, ..) in self.phases() {
            ensure(
                end > start,
                "pct_start",
                self.pct_start,
                "leaves a phase of zero steps for this total_steps",
            )?;
            start = end;
        }
        Ok(())
    }
}

impl Cyclic {
    /// PyTorch's defaults between `base_lr` and `max_lr`.
    pub fn new(base_lr: f64, max_lr: f64) -> Self {
        Self {
            base_lr,
            max_lr,
            step_size_up: 2000,
            step_size_down: None,
            mode: CyclicMode::Triangular,
            cycle_momentum: true,
            base_momentum: 0.8,
            max_momentum: 0.9,
        }
    }

    fn at(&self, e: u64) -> (f64, f64) {
        let up = self.step_size_up as f64;
        let total = up + self.step_size_down.map_or(up, |d| d as f64);
        let ratio = up / total;
        let e_f = e as f64;
        let cycle = (1.0 + e_f / total).floor();
        let x = 1.0 + e_f / total - cycle;
        let s = if x <= ratio {
            x / ratio
        } else {
            (x - 1.0) / (ratio - 1.0)
        };
        let scale = match self.mode {
            CyclicMode::Triangular => 1.0,
            CyclicMode::Triangular2 => 1.0 / 2f64.powf(cycle - 1.0),
            CyclicMode::ExpRange { gamma } => gamma.powf(e_f),
        };
        let lr = self.base_lr + (self.max_lr - self.base_lr) * s * scale;
        let momentum = self.max_momentum - (self.max_momentum - self.base_momentum) * s * scale;
        (lr, momentum)
    }

    fn validate(&self) -> Result<()> {
        non_negative("base_lr", self.base_lr)?;
        non_negative("max_lr", self.max_lr)?;
        ensure(self.step_size_up > 0, "step_size_up", 0.0, "must be > 0")?;
        if let Some(d) = self.step_size_down {
            ensure(d > 0, "step_size_down", 0.0, "must be > 0")?;
        }
        if let CyclicMode::ExpRange { gamma } = self.mode {
            positive("gamma", gamma)?;
        }
        momenta(self.base_momentum, self.max_momentum)
    }
}

fn non_negative(name: &'static str, v: f64) -> Result<()> {
    ensure(
        v.is_finite() && v >= 0.0,
        name,
        v,
        "must be finite and >= 0",
    )
}

fn positive(name: &'static str, v: f64) -> Result<()> {
    ensure(v.is_finite() && v > 0.0, name, v, "must be finite and > 0")
}

fn momenta(base: f64, max: f64) -> Result<()> {
    ensure(
        (0.0..1.0).contains(&base),
        "base_momentum",
        base,
        "must be in [0, 1)",
    )?;
    ensure(
        (0.0..1.0).contains(&max),
        "max_momentum",
        max,
        "must be in [0, 1)",
    )
}

impl Schedule {
    /// StepLR with PyTorch's γ = 0.1.
    pub fn step(step_size: u64) -> Self {
        Schedule::Step {
            step_size,
            gamma: 0.1,
        }
    }

    /// CosineAnnealingLR with η_min = 0.
    pub fn cosine(t_max: u64) -> Self {
        Schedule::Cosine {
            t_max,
            eta_min: 0.0,
        }
    }

    /// Linear warm-up from 0 over `steps`, then `then` (optax's `warmup_*` shape).
    pub fn warmup(steps: u64, then: Schedule) -> Self {
        Schedule::Warmup {
            steps,
            start_factor: 0.0,
            then: Box::new(then),
        }
    }

    /// Checks every parameter; the error names the first bad one (PyTorch's name).
    pub fn validate(&self) -> Result<()> {
        match self {
            Schedule::Constant => Ok(()),
            Schedule::Step { step_size, gamma } => {
                ensure(*step_size > 0, "step_size", 0.0, "must be > 0")?;
                non_negative("gamma", *gamma)
            }
            Schedule::MultiStep { milestones, gamma } => {
                for w in milestones.windows(2) {
                    ensure(
                        w[0] <= w[1],
                        "milestones",
                        w[1] as f64,
                        "must be in non-decreasing order",
                    )?;
                }
                non_negative("gamma", *gamma)
            }
            Schedule::Exponential { gamma } => non_negative("gamma", *gamma),
            Schedule::Polynomial { power, .. } => non_negative("power", *power),
            Schedule::Linear {
                start_factor,
                end_factor,
                total_iters,
            } => {
                ensure(
                    start_factor.is_finite() && *start_factor > 0.0 && *start_factor <= 1.0,
                    "start_factor",
                    *start_factor,
                    "must be in (0, 1]",
                )?;
                let _ = total_iters;
                ensure(
                    (0.0..=1.0).contains(end_factor),
                    "end_factor",
                    *end_factor,
                    "must be in [0, 1]",
                )
            }
            Schedule::ConstantFactor { factor, .. } => ensure(
                (0.0..=1.0).contains(factor),
                "factor",
                *factor,
                "must be in [0, 1]",
            ),
            Schedule::Cosine { t_max, eta_min } => {
                ensure(*t_max > 0, "T_max", 0.0, "must be > 0")?;
                non_negative("eta_min", *eta_min)
            }
            Schedule::CosineWarmRestarts {
                t_0,
                t_mult,
                eta_min,
            } => {
                ensure(*t_0 > 0, "T_0", 0.0, "must be > 0")?;
                ensure(*t_mult >= 1, "T_mult", *t_mult as f64, "must be >= 1")?;
                non_negative("eta_min", *eta_min)
            }
            Schedule::OneCycle(o) => o.validate(),
            Schedule::Cyclic(c) => c.validate(),
            Schedule::Warmup {
                start_factor, then, ..
            } => {
                ensure(
                    (0.0..=1.0).contains(start_factor),
                    "start_factor",
                    *start_factor,
                    "must be in [0, 1]",
                )?;
                then.validate()
            }
            Schedule::Sequential {
                schedules,
                milestones,
            } => {
                ensure(
                    schedules.len() == milestones.len() + 1,
                    "milestones",
                    milestones.len() as f64,
                    "must number one fewer than the schedules",
                )?;
                for w in milestones.windows(2) {
                    ensure(
                        w[0] < w[1],
                        "milestones",
                        w[1] as f64,
                        "must be strictly increasing",
                    )?;
                }
                schedules.iter().try_for_each(Schedule::validate)
            }
        }
    }

    /// The learning rate at scheduler step `e` for a group whose base learning rate is `base`
    /// (ignored by OneCycle and Cyclic, which carry their own). An error only past the end of
    /// a OneCycle schedule.
    pub fn lr(&self, base: f64, e: u64) -> Result<f64> {
        Ok(match self {
            Schedule::Constant => base,
            Schedule::Step { step_size, gamma } => base * gamma.powf((e / step_size) as f64),
            Schedule::MultiStep { milestones, gamma } => {
                let passed = milestones.iter().filter(|&&m| m <= e).count();
                base * gamma.powf(passed as f64)
            }
            Schedule::Exponential { gamma } => base * gamma.powf(e as f64),
            // total_iters = 0 follows what PyTorch's stepped schedulers do (their closed forms
            // disagree): PolynomialLR stays at b, LinearLR at f₀·b and ConstantLR at f·b.
            Schedule::Polynomial { total_iters: 0, .. } => base,
            Schedule::Polynomial { total_iters, power } => {
                let t = *total_iters as f64;
                base * (1.0 - e.min(*total_iters) as f64 / t).powf(*power)
            }
            Schedule::Linear {
                start_factor,
                total_iters: 0,
                ..
            } => base * start_factor,
            Schedule::Linear {
                start_factor,
                end_factor,
                total_iters,
            } => {
                let frac = e.min(*total_iters) as f64 / *total_iters as f64;
                base * (start_factor + (end_factor - start_factor) * frac)
            }
            Schedule::ConstantFactor {
                factor,
                total_iters,
            } => {
                if e < *total_iters || *total_iters == 0 {
                    base * factor
                } else {
                    base
                }
            }
            Schedule::Cosine { t_max, eta_min } => cosine(base, *eta_min, e as f64, *t_max as f64),
            Schedule::CosineWarmRestarts {
                t_0,
                t_mult,
                eta_min,
            } => {
                // Walk the cycles in integers: exact for any e.
                let (mut t_cur, mut t_i) = (e, *t_0);
                while t_cur >= t_i {
                    t_cur -= t_i;
                    t_i = t_i.saturating_mul(*t_mult);
                }
                cosine(base, *eta_min, t_cur as f64, t_i as f64)
            }
            Schedule::OneCycle(o) => o.at(e)?.0,
            Schedule::Cyclic(c) => c.at(e).0,
            Schedule::Warmup {
                steps,
                start_factor,
                then,
            } => {
                if e < *steps {
                    base * (start_factor + (1.0 - start_factor) * e as f64 / *steps as f64)
                } else {
                    then.lr(base, e - steps)?
                }
            }
            Schedule::Sequential {
                schedules,
                milestones,
            } => {
                let (k, start) = segment(milestones, e);
                schedules[k].lr(base, e - start)?
            }
        })
    }

    /// The momentum (or Adam's β₁) at step `e` where the schedule cycles it, else `None`.
    pub fn momentum(&self, e: u64) -> Result<Option<f64>> {
        Ok(match self {
            Schedule::OneCycle(o) if o.cycle_momentum => Some(o.at(e)?.1),
            Schedule::Cyclic(c) if c.cycle_momentum => Some(c.at(e).1),
            Schedule::Warmup { steps, then, .. } if e >= *steps => then.momentum(e - steps)?,
            Schedule::Sequential {
                schedules,
                milestones,
            } => {
                let (k, start) = segment(milestones, e);
                schedules[k].momentum(e - start)?
            }
            _ => None,
        })
    }

    /// Whether the schedule cycles momentum at any step.
    pub fn cycles_momentum(&self) -> bool {
        match self {
            Schedule::OneCycle(o) => o.cycle_momentum,
            Schedule::Cyclic(c) => c.cycle_momentum,
            Schedule::Warmup { then, .. } => then.cycles_momentum(),
            Schedule::Sequential { schedules, .. } => {
                schedules.iter().any(Schedule::cycles_momentum)
            }
            _ => false,
        }
    }
}

fn cosine(base: f64, eta_min: f64, e: f64, t: f64) -> f64 {
    eta_min + (base - eta_min) * (1.0 + (PI * e / t).cos()) / 2.0
}

/// The index of the segment holding `e` and the step it starts at.
fn segment(milestones: &[u64], e: u64) -> (usize, u64) {
    let k = milestones.iter().filter(|&&m| m <= e).count();
    (k, if k == 0 { 0 } else { milestones[k - 1] })
}
