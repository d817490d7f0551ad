//! The GPU path: device context, kernels and the optimizer over device buffers.

mod buffers;
mod chunk;
pub mod clip;
pub(crate) mod compat;
mod context;
pub mod kernel;
mod optimizer;
mod segment;
pub mod tune;

pub use buffers::{Allocation, BufferRole};
pub use chunk::{Chunk, padded_bytes, plan_chunks};
pub use context::{ContextOptions, GpuContext, list_adapters, required_limits};
pub use kernel::KernelShape;
pub use optimizer::GpuOptimizer;
pub use tune::Shapes;
