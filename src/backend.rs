//! The API every backend (GPU kernels, CPU twin) offers, and the step bookkeeping they share.

use crate::error::{Error, Result};
use crate::optim::{Optimizer, ensure_lr};
use crate::schedule::Schedule;
use crate::uniform::StepUniform;

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

/// The most steps an optimizer takes: step counts are exact in f64 up to 2^53, where the
/// bias corrections and decay divisors are computed.
pub const MAX_STEPS: u64 = 1 << 53;

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

    /// Sets the base lr (kept in the optimizer too, so that its `lr()` is the current one).
    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        ensure_lr(lr)?;
        self.lr = lr;
        self.optimizer = self.optimizer.with_lr(lr);
        Ok(())
    }

    /// Refuses a step past [`MAX_STEPS`].
    pub fn check_can_step(&self) -> Result<()> {
        if self.steps < MAX_STEPS {
            Ok(())
        } else {
            Err(Error::StepLimit { max: MAX_STEPS })
        }
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

    /// The optimizer as the next step runs it (cycled momentum applied).
    pub fn next_optimizer(&self) -> Result<Optimizer> {
        self.next().map(|(o, _)| o)
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

    pub fn advance(&mut self) {
        self.steps += 1;
    }
}

/// Sets every group's base lr (the same check first, so a bad lr changes no group).
pub(crate) fn set_lr_all<'a>(
    groups: impl IntoIterator<Item = &'a mut Progress>,
    lr: f64,
) -> Result<()> {
    ensure_lr(lr)?;
    for p in groups {
        p.set_lr(lr)?;
    }
    Ok(())
}

/// Drives every group from `schedule`, each from its own base lr (PyTorch's per-group
/// semantics); refused as a whole if any group cannot take it.
pub(crate) fn set_schedule_all<'a>(
    groups: impl IntoIterator<Item = &'a mut Progress>,
    schedule: Option<Schedule>,
) -> Result<()> {
    let groups: Vec<&mut Progress> = groups.into_iter().collect();
    let mut trial: Vec<Progress> = groups.iter().map(|p| (*p).clone()).collect();
    for p in &mut trial {
        p.set_schedule(schedule.clone())?;
    }
    for (p, t) in groups.into_iter().zip(trial) {
        *p = t;
    }
    Ok(())
}
