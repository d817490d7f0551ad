//! The API every backend (GPU kernels, CPU twin) offers, and the step bookkeeping they share.

use std::path::Path;

use crate::control::GradientControl;
use crate::error::{Error, Result};
use crate::layout::{ParamLayout, TensorView};
use crate::optim::{Optimizer, ensure_lr};
use crate::precision::StoredState;
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
    /// Bytes of optimizer state this optimizer holds, from its allocations (the state
    /// buffers' sizes on the GPU, the state vectors' capacity on the CPU; int8 absmax
    /// included).
    fn state_bytes(&self) -> u64;
    /// One step whose gradient-control decision was made outside this optimizer: scale the
    /// gradients by `outcome.grad_mul`, skip the step if `outcome.skip`, and count it, as if the
    /// norm pass had found `outcome` (a sharded optimizer decides from the norm summed over all
    /// ranks, [`crate::control::sums`] and [`crate::control::decide`]). Needs gradient control
    /// on ([`Error::NoGradientControl`](crate::Error::NoGradientControl) otherwise).
    fn step_decided(&mut self, outcome: crate::control::NormOutcome) -> Result<()>;
    /// Reads the parameters back.
    fn read_params(&self) -> Result<Vec<f32>>;
    /// Reads the parameters back into `out` (of [`Backend::len`] elements).
    fn read_params_into(&self, out: &mut [f32]) -> Result<()> {
        crate::cpu::check_len("output", self.len(), out.len())?;
        out.copy_from_slice(&self.read_params()?);
        Ok(())
    }
    /// Reads one state tensor back by PyTorch's name (`exp_avg`, `momentum_buffer`, …): one
    /// value per parameter, group by group (zero where a group has none); for Adafactor, whose
    /// state is shaped by the tensors, the groups' states one after another.
    fn read_state(&self, name: &str) -> Result<Vec<f32>>;

    /// The tensor layout, when built with a layout (`with_layout`) or parameter groups
    /// (`with_groups`).
    fn layout(&self) -> Option<&ParamLayout>;
    /// The view of tensor `name`.
    fn view(&self, name: &str) -> Result<&TensorView>;
    /// Overwrites one tensor's parameters.
    fn write_tensor(&mut self, name: &str, data: &[f32]) -> Result<()>;
    /// Overwrites one tensor's gradients.
    fn write_tensor_grads(&mut self, name: &str, data: &[f32]) -> Result<()>;
    /// Reads one tensor's parameters.
    fn read_tensor(&self, name: &str) -> Result<Vec<f32>>;
    /// Reads one tensor's slice of a state buffer (`exp_avg`, …) of its group.
    fn read_tensor_state(&self, name: &str, state: &str) -> Result<Vec<f32>>;
    /// Number of parameter groups (1 unless built with `with_groups`).
    fn groups(&self) -> usize;
    /// The element range of group `g` in the flat buffers.
    fn group_range(&self, g: usize) -> Option<std::ops::Range<usize>>;
    /// Group `g`'s optimizer and hyperparameters.
    fn group_optimizer(&self, g: usize) -> Option<&Optimizer>;
    /// The learning rate group `g`'s next step uses (its schedule applied to its base lr).
    fn group_lr(&self, g: usize) -> Result<f64>;
    /// Sets group `g`'s base learning rate (`group_optimizer(g).lr()` then returns it).
    fn set_group_lr(&mut self, g: usize, lr: f64) -> Result<()>;
    /// Reads one state tensor of group `g` (the group's own elements).
    fn read_group_state(&self, g: usize, name: &str) -> Result<Vec<f32>>;
    /// One state tensor of group `g` in its stored form (reads back): f32 values, bf16 bits,
    /// or int8 codes and absmax.
    fn read_group_state_stored(&self, g: usize, name: &str) -> Result<StoredState>;

    /// Turns on (or, with `None`, off) global-norm clipping, loss-scale unscaling and
    /// non-finite skipping (see [`GradientControl`]); the step count carries on from the steps
    /// applied so far and the skip counter starts again. On the GPU everything is decided on
    /// the device each step; this configuration call may build pipelines and buffers and read
    /// the device's step count back, `step()` itself stays free of both.
    fn set_gradient_control(&mut self, control: Option<GradientControl>) -> Result<()>;
    /// The clipping and skipping configuration in force.
    fn gradient_control(&self) -> Option<GradientControl>;
    /// Sets the loss scale S the gradients are divided by (GradScaler's scale), turning the
    /// gradient control on if it was off. On the GPU it writes 16 bytes; call it every step if
    /// you like.
    fn set_loss_scale(&mut self, scale: f64) -> Result<()>;
    /// Steps applied (on the GPU read back when gradient control is on): with skipping,
    /// [`Backend::steps`] counts calls and this the steps that were not skipped.
    fn device_steps(&self) -> Result<u64>;
    /// Steps skipped for non-finite gradients so far (0 without skipping).
    fn skipped_steps(&self) -> Result<u64>;
    /// ‖g‖₂ of the last step's unscaled gradients before clipping (`None` without gradient
    /// control).
    fn last_grad_norm(&self) -> Result<Option<f32>>;

    /// The optimizer as safetensors bytes ([`crate::checkpoint::FORMAT`]; reads parameters
    /// and state back): the same file on either backend, so a checkpoint of one restores into
    /// the other.
    fn checkpoint(&self) -> Result<Vec<u8>>;
    /// Restores a checkpoint (of either backend) taken of an optimizer of the same structure:
    /// same length, same tensors (names, shapes, offsets), same groups at the same offsets,
    /// each of the same optimizer (Adam is not AdamW), variant, and gradient, parameter and
    /// state types. Hyperparameters, step counts, learning rates, schedules, parameters, state
    /// and gradient control come from the checkpoint. Nothing is written unless all of it
    /// fits: a refused checkpoint leaves the optimizer as it was.
    fn restore(&mut self, bytes: &[u8]) -> Result<()>;
    /// Writes [`Backend::checkpoint`] to `path`.
    fn save(&self, path: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        let path = path.as_ref();
        let bytes = self.checkpoint()?;
        std::fs::write(path, bytes)
            .map_err(|e| Error::Checkpoint(format!("{}: {e}", path.display())))
    }
    /// Reads `path` and [`Backend::restore`]s it.
    fn load(&mut self, path: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Checkpoint(format!("{}: {e}", path.display())))?;
        self.restore(&bytes)
    }
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
