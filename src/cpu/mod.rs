//! The CPU reference: for each shader an f32 twin (`update`, the same arithmetic in the same
//! order, one element at a time) and an f64 oracle (`oracle`, SEMANTICS.md's rule computed from
//! the hyperparameters alone, sharing nothing with the kernels but the equations).

// The twins are written as the WGSL is (`g = g + λ·p`), so the two read line for line.
#![allow(clippy::assign_op_pattern)]

pub mod adagrad;
pub mod adam;
pub mod rmsprop;
pub mod sgd;

use crate::backend::{Backend, Progress};
use crate::error::{Error, Result};
use crate::optim::Optimizer;
use crate::uniform::{DeviceStep, StepUniform};

/// Applies `f(param, grad, state)` to every element, gathering the element's state from the
/// slots that exist (empty vectors are unused slots).
fn for_each<T: Copy + Default>(
    params: &mut [T],
    grads: &[f32],
    state: &mut [Vec<T>; 3],
    mut f: impl FnMut(&mut T, f32, &mut [T; 3]),
) {
    for (i, (p, &g)) in params.iter_mut().zip(grads).enumerate() {
        let mut s = [T::default(); 3];
        for (k, slot) in state.iter().enumerate() {
            if let Some(&x) = slot.get(i) {
                s[k] = x;
            }
        }
        f(p, g, &mut s);
        for (k, slot) in state.iter_mut().enumerate() {
            if let Some(x) = slot.get_mut(i) {
                *x = s[k];
            }
        }
    }
}

/// One step of the f32 twins over whole vectors.
pub fn twin_step(
    optimizer: &Optimizer,
    step: &StepUniform,
    dev: &DeviceStep,
    params: &mut [f32],
    grads: &[f32],
    state: &mut [Vec<f32>; 3],
) {
    match optimizer {
        Optimizer::Sgd(o) => for_each(params, grads, state, |p, g, s| {
            sgd::update(step, dev, o.variant(), p, g, s)
        }),
        Optimizer::RmsProp(o) => for_each(params, grads, state, |p, g, s| {
            rmsprop::update(step, dev, o.variant(), p, g, s)
        }),
        Optimizer::Adam(o) => for_each(params, grads, state, |p, g, s| {
            adam::update(step, dev, o.variant(), p, g, s)
        }),
        Optimizer::Adagrad(_) => for_each(params, grads, state, |p, g, s| {
            adagrad::update(step, dev, [], p, g, s)
        }),
    }
}

/// State vectors in binding-slot order, empty where the variant has no such slot.
fn new_state<T: Copy + From<f32>>(optimizer: &Optimizer, len: usize) -> [Vec<T>; 3] {
    let mut state: [Vec<T>; 3] = Default::default();
    for slot in optimizer.state_layout().slots {
        state[slot.slot] = vec![T::from(slot.init); len];
    }
    state
}

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            expected,
            got,
        })
    }
}

/// The optimizer on the CPU, running the f32 twins of the kernels (single-threaded).
#[derive(Clone, Debug)]
pub struct CpuOptimizer {
    progress: Progress,
    params: Vec<f32>,
    grads: Vec<f32>,
    state: [Vec<f32>; 3],
}

impl CpuOptimizer {
    /// An optimizer over `len` parameters, all zero until written (as [`crate::GpuOptimizer::new`]).
    pub fn new(optimizer: impl Into<Optimizer>, len: usize) -> Result<Self> {
        let optimizer = optimizer.into();
        let progress = Progress::new(optimizer)?;
        if len == 0 {
            return Err(Error::Empty);
        }
        Ok(Self {
            progress,
            params: vec![0.0; len],
            grads: vec![0.0; len],
            state: new_state(&optimizer, len),
        })
    }

    /// An optimizer over a copy of `params`, with zero gradients and fresh state (as
    /// [`crate::GpuOptimizer::with_params`]).
    pub fn with_params(optimizer: impl Into<Optimizer>, params: &[f32]) -> Result<Self> {
        let mut opt = Self::new(optimizer, params.len())?;
        opt.params.copy_from_slice(params);
        Ok(opt)
    }

    /// The parameters, without a copy.
    pub fn params(&self) -> &[f32] {
        &self.params
    }
}

impl Backend for CpuOptimizer {
    fn optimizer(&self) -> &Optimizer {
        &self.progress.optimizer
    }
    fn len(&self) -> usize {
        self.params.len()
    }
    fn steps(&self) -> u64 {
        self.progress.steps
    }
    fn lr(&self) -> Result<f64> {
        self.progress.next_lr()
    }
    fn set_lr(&mut self, lr: f64) -> Result<()> {
        self.progress.set_lr(lr)
    }
    fn set_schedule(&mut self, schedule: Option<crate::schedule::Schedule>) -> Result<()> {
        self.progress.set_schedule(schedule)
    }
    fn next_uniform(&self) -> Result<StepUniform> {
        self.progress.next_uniform()
    }
    fn write_params(&mut self, params: &[f32]) -> Result<()> {
        check_len("parameters", self.params.len(), params.len())?;
        self.params.copy_from_slice(params);
        Ok(())
    }
    fn write_grads(&mut self, grads: &[f32]) -> Result<()> {
        check_len("gradients", self.params.len(), grads.len())?;
        self.grads.copy_from_slice(grads);
        Ok(())
    }
    fn step(&mut self) -> Result<()> {
        self.progress.check_can_step()?;
        let u = self.progress.next_uniform()?;
        twin_step(
            &self.progress.optimizer,
            &u,
            &DeviceStep::NEUTRAL,
            &mut self.params,
            &self.grads,
            &mut self.state,
        );
        self.progress.advance();
        Ok(())
    }
    fn read_params(&self) -> Result<Vec<f32>> {
        Ok(self.params.clone())
    }
    fn read_state(&self, name: &str) -> Result<Vec<f32>> {
        let layout = self.progress.optimizer.state_layout();
        match layout.find(name) {
            Some(slot) => Ok(self.state[slot.slot].clone()),
            None => Err(Error::UnknownState {
                optimizer: self.progress.optimizer.name(),
                name: name.to_string(),
                available: layout.names(),
            }),
        }
    }
}

/// The f64 oracle over whole vectors: parameters and state kept in f64, gradients given in f32.
#[derive(Clone, Debug)]
pub struct Oracle {
    progress: Progress,
    params: Vec<f64>,
    state: [Vec<f64>; 3],
}

impl Oracle {
    /// The oracle starting from `params`.
    pub fn new(optimizer: impl Into<Optimizer>, params: &[f32]) -> Result<Self> {
        let optimizer = optimizer.into();
        Ok(Self {
            progress: Progress::new(optimizer)?,
            params: params.iter().map(|&p| f64::from(p)).collect(),
            state: new_state(&optimizer, params.len()),
        })
    }

    /// Sets the learning rate of the following steps.
    pub fn set_lr(&mut self, lr: f64) -> Result<()> {
        self.progress.set_lr(lr)
    }

    /// One step with gradients `grads`.
    pub fn step(&mut self, grads: &[f32]) -> Result<()> {
        check_len("gradients", self.params.len(), grads.len())?;
        let (lr, t) = (self.progress.lr, self.progress.steps + 1);
        let g = |g: f32| f64::from(g);
        let (params, state) = (&mut self.params, &mut self.state);
        match &self.progress.optimizer {
            Optimizer::Sgd(o) => for_each(params, grads, state, |p, x, s| {
                sgd::oracle(o, lr, t, p, g(x), s)
            }),
            Optimizer::RmsProp(o) => for_each(params, grads, state, |p, x, s| {
                rmsprop::oracle(o, lr, t, p, g(x), s)
            }),
            Optimizer::Adam(o) => for_each(params, grads, state, |p, x, s| {
                adam::oracle(o, lr, t, p, g(x), s)
            }),
            Optimizer::Adagrad(o) => for_each(params, grads, state, |p, x, s| {
                adagrad::oracle(o, lr, t, p, g(x), s)
            }),
        }
        self.progress.advance();
        Ok(())
    }

    /// The parameters.
    pub fn params(&self) -> &[f64] {
        &self.params
    }

    /// One state tensor by PyTorch's name, if this variant has it.
    pub fn state(&self, name: &str) -> Option<&[f64]> {
        let layout = self.progress.optimizer.state_layout();
        layout
            .find(name)
            .map(|slot| self.state[slot.slot].as_slice())
    }
}
