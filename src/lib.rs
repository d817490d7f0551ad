//! # wgoptim
//!
//! Fused optimizer steps for wgpu: SGD (momentum, dampening, Nesterov), RMSprop (centered,
//! momentum), Adam and AdamW (AMSGrad) and Adagrad, each one WGSL kernel that reads every
//! parameter, gradient and state element once and writes it once. Semantics and defaults are
//! PyTorch's `torch.optim`; every kernel has an f32 CPU twin and an f64 oracle that check it.
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
//! The same [`Backend`] API runs on the CPU with [`CpuOptimizer`] (the kernels' f32 twins).
#![warn(missing_docs)]

mod args;
mod backend;
pub mod bench;
pub mod cpu;
pub mod demo;
mod error;
pub mod gpu;
mod layout;
pub mod memory;
pub mod optim;
pub mod plot;
pub mod replay;
pub mod schedule;
mod uniform;
pub mod verify;

pub use backend::Backend;
pub use cpu::{CpuOptimizer, Oracle};
pub use error::{Error, Result};
pub use gpu::clip::GradientControl;
pub use gpu::{ContextOptions, GpuContext, GpuOptimizer};
pub use layout::{ParamGroup, ParamLayout, TensorView};
pub use optim::{Adagrad, Adam, Kernel, Optimizer, RmsProp, Sgd, StateLayout};
pub use schedule::{LrFinder, ReduceLrOnPlateau, Schedule};
pub use uniform::{ChunkUniform, ControlBlock, DeviceStep, StepScalars, StepUniform};
