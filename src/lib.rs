//! # wgoptim
//!
//! Fused optimizer steps for wgpu: SGD (momentum, dampening, Nesterov), RMSprop (centered,
//! momentum), Adam and AdamW (AMSGrad), Adagrad, Adamax, RAdam, Adadelta, NAdam, Rprop, ASGD
//! and Lion, each one WGSL kernel that reads every parameter, gradient and state element once
//! and writes it once; and LAMB, whose trust ratio is taken per tensor in three passes.
//! Semantics and defaults are PyTorch's `torch.optim`; every kernel has an f32 CPU twin and an
//! f64 oracle that check it.
//!
//! ```no_run
//! use wgoptim::{Adam, Backend, GpuContext, GpuOptimizer};
//!
//! let ctx = GpuContext::new()?; // or GpuContext::from_device(device, queue)
//! let params = vec![0.5f32; 1 << 20];
//! let mut opt = GpuOptimizer::with_params(&ctx, Adam::adamw().lr(1e-3), &params)?;
//! for _ in 0..10 {
//!     let grads = vec![0.01f32; 1 << 20]; // your backward pass
//!     opt.write_grads(&grads)?; // or write into opt.grads_buffer() on the device
//!     opt.step()?; // one fused dispatch per binding-sized chunk, no readback
//! }
//! let trained = opt.read_params()?;
//! # Ok::<(), wgoptim::Error>(())
//! ```
//!
//! ## One API on both backends
//!
//! [`GpuOptimizer`] (the WGSL kernels) and [`CpuOptimizer`] (their f32 twins) implement the
//! same [`Backend`] trait (everything but the constructors: steps, schedules, groups, tensors,
//! gradient control, checkpoints), are built by constructors of the same names and signatures,
//! and answer the same bad input with the same [`Error`]:
//!
//! | constructor | GPU | CPU | starts from |
//! |---|---|---|---|
//! | `new` | `GpuOptimizer::new(&ctx, opt, len)` | `CpuOptimizer::new(&cpu, opt, len)` | zeros |
//! | `with_params` | `GpuOptimizer::with_params(&ctx, opt, &params)` | `CpuOptimizer::with_params(&cpu, opt, &params)` | a copy of `params` |
//! | `with_layout` | `GpuOptimizer::with_layout(&ctx, opt, layout)` | `CpuOptimizer::with_layout(&cpu, opt, layout)` | zeros, named tensors |
//! | `with_groups` | `GpuOptimizer::with_groups(&ctx, groups)` | `CpuOptimizer::with_groups(&cpu, groups)` | zeros, parameter groups |
//! | `adopt` | `GpuOptimizer::adopt(&ctx, opt, params, grads, len)` | — | the caller's buffers |
//!
//! Each constructor takes its context first, a [`GpuContext`] (the device) or a [`CpuContext`]
//! (the threads); `opt` is anything that converts into an
//! [`Optimizer`] (`Adam::adamw().lr(3e-4)`, `Sgd::default().momentum(0.9)`, …). Getters are
//! plain nouns (`steps()`, `lr()`, `group_lr(g)`), setters `set_*`, readbacks `read_*` and
//! uploads `write_*`; everything that can fail returns [`Result`].
//!
//! ## Cargo features
//!
//! With no features (the default) the crate depends on wgpu, bytemuck, pollster, thiserror, rayon,
//! serde, serde_json and safetensors, and nothing else.
//!
//! | feature | adds | brings in |
//! |---|---|---|
//! | `bench` | `wgoptim::bench` and `wgoptim::memory`: step timing against the copy bandwidth, memory per optimizer | — |
//! | `plot` | `wgoptim::plot`: PNG/SVG charts | plotters |
//! | `npy` | `wgoptim::replay`: recorded gradients from .npy | ndarray, ndarray-npy |
//! | `demo` | `wgoptim::demo`: the examples' data sets, models and pictures | plot + ndarray, rand, rand_distr, contour, flate2 |
//! | `playground` | `wgoptim::playground`: the optimizer playground's server, page and JSON API | demo + tiny_http |
//! | `cli` | the `wgoptim` binary | bench, plot, npy, playground + clap, indicatif |
//! | `mpi` | `wgoptim::zero`: optimizer state sharded over MPI ranks (ZeRO stage 1) | mpi (rsmpi; OpenMPI and libclang to build) |
//!
//! ## Devices
//!
//! The kernels need the limits of [`required_limits`] (seven storage buffers per stage, among
//! others, above wgpu's downlevel defaults); [`GpuContext::from_device`] checks them and names
//! the first that is too low. Each context picks the [`KernelShape`] of every variant by
//! [`Shapes`]: tuned per adapter on first use and cached on disk by default.
#![warn(missing_docs)]

mod args;
mod backend;
#[cfg(feature = "bench")]
pub mod bench;
pub mod checkpoint;
pub mod control;
pub mod cpu;
#[cfg(feature = "demo")]
pub mod demo;
mod error;
pub mod fidelity;
pub mod gpu;
mod layout;
#[cfg(feature = "bench")]
pub mod memory;
pub mod optim;
#[cfg(feature = "playground")]
pub mod playground;
#[cfg(feature = "plot")]
pub mod plot;
pub mod precision;
#[cfg(feature = "npy")]
pub mod replay;
pub mod schedule;
mod uniform;
pub mod verify;
#[cfg(feature = "mpi")]
pub mod zero;

/// The wgpu this crate is built on: use it to create devices and buffers you hand to
/// [`GpuContext::from_device`] and [`GpuOptimizer::adopt`] without pinning its version yourself.
pub use wgpu;

pub use backend::{Backend, MAX_STEPS};
pub use control::GradientControl;
pub use cpu::{CpuContext, CpuOptimizer, Oracle};
pub use error::{Error, Result};
pub use gpu::{
    ContextOptions, GpuContext, GpuOptimizer, KernelShape, Shapes, padded_bytes, required_limits,
};
pub use layout::{ParamGroup, ParamLayout, TensorView};
pub use optim::{
    Adadelta, Adafactor, Adagrad, Adam, Adamax, AdjustLr, Asgd, Dispatch, Kernel, Lamb, Lion, Muon,
    NAdam, Optimizer, RAdam, RmsProp, Rprop, Sgd, StateLayout,
};
pub use precision::{GradDType, ParamDType, Precision, StateDType, StatePrecision};
pub use schedule::{
    Anneal, Cyclic, CyclicMode, LrFinder, OneCycle, PlateauMode, ReduceLrOnPlateau, Schedule,
    ThresholdMode,
};
pub use uniform::{ChunkUniform, ControlBlock, DeviceStep, StepScalars, StepUniform};

/// Everything a training loop usually names: `use wgoptim::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Adagrad, Adam, Adamax, Anneal, Backend, ContextOptions, CpuContext, CpuOptimizer, Cyclic,
        CyclicMode, Error, GpuContext, GpuOptimizer, GradientControl, LrFinder, OneCycle,
        Optimizer, ParamGroup, ParamLayout, ReduceLrOnPlateau, RmsProp, Schedule, Sgd,
        padded_bytes,
    };
}
