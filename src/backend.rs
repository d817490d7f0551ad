//! The API every backend (GPU kernels, CPU twin) offers, and the step bookkeeping they share.

use crate::error::{Error, Result};
use crate::optim::{Optimizer, ensure_lr};
use crate::schedule::Schedule;
use crate::uniform::{StepScalars, StepUniform};

/// One optimizer over a flat vector of `len()` f32 parameters, on some backend.
///
/// [`crate::GpuOptimizer`] runs the WGSL kernels; [`crate::CpuOptimizer`] runs their f32
/// twins. Both give the same results bit for bit where the device rounds as IEEE 754 does.
pub trait Backend {
    /// The optimizer and its hyperparameters.
    fn optimizer(&self) -> &Optimizer;
    /// Number of parameters.
    fn len(&self) -> usize;
    /// Whether there are no parameters (never true: construction rejects it).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Steps taken so far (the next step is `steps() + 1`).
    fn steps(&self) -> u64;
    /// The learning rate the next step uses (from the schedule, if one is set; an error when
    /// the schedule is finished).
    fn lr(&self) -> Result<f64>;
    /// Sets the base learning rate `b` (finite, ≥ 0): the lr itself without a schedule, the
    /// schedule's base with one.
    fn set_lr(&mut self, lr: f64) -> Result<()>;
    /// Drives the learning rate (and momentum or Adam's β₁, where the schedule cycles them)
    /// from `schedule`, evaluated at scheduler step `e = steps()` before each step; `None`
    /// goes back to the fixed base lr. Changes only the per-step uniform.
    fn set_schedule(&mut self, schedule: Option<Schedule>) -> Result<()>;
    /// The per-step scalars the next step will use (schedule and cycled momentum applied).
    fn next_uniform(&self) -> Result<StepUniform>;
    /// Overwrites the parameters (`params.len()` must equal `len()`).
    fn write_params(&mut self, params: &[f32]) -> Result<()>;
    /// Overwrites the gradients (`grads.len()` must equal `len()`).
    fn write_grads(&mut self, grads: &[f32]) -> Result<()>;
    /// Applies one optimizer step with the current gradients.
    fn step(&mut self) -> Result<()>;
    /// Reads the parameters back.
    fn read_params(&self) -> Result<Vec<f32>>;
    /// Reads one state tensor back by PyTorch's name (`exp_avg`, `momentum_buffer`, …).
    fn read_state(&self, name: &str) -> Result<Vec<f32>>;
}

/// Step count and learning rate of one optimizer: the one place that turns them into the
/// next step's uniform.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    pub optimizer: Optimizer,
    /// Base learning rate b.
    pub lr: f64,
    pub steps: u64,
    pub schedule: Option<Schedule>,
    /// The device counts steps (non-finite skipping): uniforms leave the step-dependent factors
    /// to the device's step-scalar table.
    pub deferred: bool,
}

impl Progress {
    pub fn new(optimizer: Optimizer) -> Result<Self> {
        optimizer.validate()?;
        Ok(Self {
            lr: optimizer.lr(),
            optimizer,
            steps: 0,
            schedule: None,
            deferred: false,
        })
    }

    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        ensure_lr(lr)?;
        self.lr = lr;
        Ok(())
    }

    pub fn set_schedule(&mut self, schedule: Option<Schedule>) -> Result<()> {
        if let Some(s) = &schedule {
            s.validate()?;
            if s.cycles_momentum() && !self.optimizer.has_momentum() {
                return Err(Error::NoMomentumToCycle {
                    optimizer: self.optimizer.name(),
                });
            }
        }
        self.schedule = schedule;
        Ok(())
    }

    /// The optimizer as the next step runs it (cycled momentum applied) and its lr.
    fn next(&self) -> Result<(Optimizer, f64)> {
        let Some(schedule) = &self.schedule else {
            return Ok((self.optimizer, self.lr));
        };
        let e = self.steps;
        let lr = schedule.lr(self.lr, e)?;
        let optimizer = match schedule.momentum(e)? {
            Some(m) => self.optimizer.with_momentum(m),
            None => self.optimizer,
        };
        Ok((optimizer, lr))
    }

    pub fn next_lr(&self) -> Result<f64> {
        self.next().map(|(_, lr)| lr)
    }

    /// The uniform of step `steps + 1`.
    pub fn next_uniform(&self) -> Result<StepUniform> {
        let (optimizer, lr) = self.next()?;
        Ok(if self.deferred {
            optimizer.deferred_uniform(lr)
        } else {
            optimizer.uniform(lr, self.steps + 1)
        })
    }

    /// The step scalars of device step `t`, with the optimizer as the next step runs it.
    pub fn scalars(&self, t: u64) -> Result<StepScalars> {
        Ok(self.next()?.0.step_scalars(t))
    }

    pub fn advance(&mut self) {
        self.steps += 1;
    }
}
