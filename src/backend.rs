//! The API every backend (GPU kernels, CPU twin) offers, and the step bookkeeping they share.

use crate::error::Result;
use crate::optim::{Optimizer, ensure_lr};
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
    /// The learning rate the next step uses.
    fn lr(&self) -> f64;
    /// Sets the learning rate of the following steps (finite, ≥ 0).
    fn set_lr(&mut self, lr: f64) -> Result<()>;
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
    pub lr: f64,
    pub steps: u64,
}

impl Progress {
    pub fn new(optimizer: Optimizer) -> Result<Self> {
        optimizer.validate()?;
        Ok(Self {
            lr: optimizer.lr(),
            optimizer,
            steps: 0,
        })
    }

    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        ensure_lr(lr)?;
        self.lr = lr;
        Ok(())
    }

    /// The uniform of step `steps + 1`.
    pub fn next_uniform(&self) -> StepUniform {
        self.optimizer.uniform(self.lr, self.steps + 1)
    }

    pub fn advance(&mut self) {
        self.steps += 1;
    }
}
