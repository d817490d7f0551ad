//! The GPU path: device context, kernels and the optimizer over device buffers.

pub mod checkpoint;
pub mod clip;
pub(crate) mod compat;
mod context;
pub mod kernel;
mod optimizer;
mod segment;

pub use context::{ContextOptions, GpuContext, list_adapters};
pub use optimizer::{Allocation, BufferRole, Chunk, GpuOptimizer, padded_bytes, plan_chunks};
