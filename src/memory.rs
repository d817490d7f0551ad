//! What each optimizer costs in memory, measured from the allocations themselves: the buffers
//! the library asked for, what the device allocator actually holds for them where the backend
//! reports it (wgpu's Vulkan, DX12 and Metal allocators), and the staging buffer a readback
//! creates for as long as it runs.

use serde::Serialize;

use crate::backend::Backend;
use crate::error::Result;
use crate::gpu::{BufferRole, GpuContext, GpuOptimizer};
use crate::optim::Optimizer;

/// One buffer of an optimizer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BufferReport {
    /// Its label (state buffers carry PyTorch's state name).
    pub label: String,
    /// parameters, gradients, state or uniform.
    pub role: String,
    /// Bytes the library requested.
    pub requested_bytes: u64,
    /// Bytes the device allocator holds for it, where reported.
    pub device_bytes: Option<u64>,
}

/// The memory profile of one optimizer variant at `params` parameters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemoryReport {
    /// Variant name.
    pub kernel: String,
    /// Parameters.
    pub params: usize,
    /// Every buffer the optimizer allocated.
    pub buffers: Vec<BufferReport>,
    /// State bytes per parameter, from the state buffers' sizes (absmax included).
    pub state_bytes_per_param: f64,
    /// Bytes one step reads and writes per parameter: parameters and state read and written,
    /// gradients read, a bf16 model copy written, from the same allocations (`requested` sizes of those buffers, padding
    /// included, over the parameter count).
    pub bytes_moved_per_param: f64,
    /// Everything the library requested, bytes.
    pub requested_bytes: u64,
    /// Growth of the device allocator's total when the optimizer was built, where reported.
    pub device_bytes: Option<u64>,
    /// The staging buffer alive during `read_params` (bytes the library requested).
    pub readback_transient_bytes: Option<u64>,
}

fn allocated(ctx: &GpuContext) -> Option<(u64, Vec<(String, u64)>)> {
    ctx.wait().ok()?;
    let r = ctx.device().generate_allocator_report()?;
    Some((
        r.total_allocated_bytes,
        r.allocations
            .into_iter()
            .map(|a| (a.name, a.size))
            .collect(),
    ))
}

/// Builds `optimizer` over `n` parameters on `ctx`, records its buffers, reads the parameters
/// back once, and reports what all of it cost. Adafactor, whose state follows the tensors'
/// shapes, is built over `verify::shaped_layout`'s matrix (and vector of the rest), as a model's
/// weights would be; the others over one flat vector.
pub fn profile(
    ctx: &GpuContext,
    name: &str,
    optimizer: Optimizer,
    n: usize,
) -> Result<MemoryReport> {
    let before = allocated(ctx);
    let opt = match crate::verify::shaped_layout(&optimizer, n) {
        Some(layout) => GpuOptimizer::with_layout(ctx, optimizer, layout)?,
        None => GpuOptimizer::new(ctx, optimizer, n)?,
    };
    let n = opt.len();
    let after = allocated(ctx);
    // Allocations that appeared with the optimizer, matched to its buffers by label.
    let mut fresh: Vec<(String, u64)> = match (&before, &after) {
        (Some((_, b)), Some((_, a))) => {
            let mut old = b.clone();
            a.iter()
                .filter(|x| match old.iter().position(|o| o == *x) {
                    Some(i) => {
                        old.swap_remove(i);
                        false
                    }
                    None => true,
                })
                .cloned()
                .collect()
        }
        _ => Vec::new(),
    };
    let buffers: Vec<BufferReport> = opt
        .allocations()
        .iter()
        .map(|a| {
            let device_bytes = fresh
                .iter()
                .position(|(l, _)| *l == a.label)
                .map(|i| fresh.swap_remove(i).1);
            BufferReport {
                label: a.label.clone(),
                role: format!("{:?}", a.role).to_lowercase(),
                requested_bytes: a.bytes,
                device_bytes,
            }
        })
        .collect();
    let state: u64 = opt
        .allocations()
        .iter()
        .filter(|a| a.role == BufferRole::State)
        .map(|a| a.bytes)
        .sum();
    let bytes_of = |role: BufferRole| -> u64 {
        opt.allocations()
            .iter()
            .filter(|a| a.role == role)
            .map(|a| a.bytes)
            .sum()
    };
    let moved = 2 * bytes_of(BufferRole::Parameters)
        + bytes_of(BufferRole::Model)
        + bytes_of(BufferRole::Gradients)
        + 2 * state;
    opt.read_params()?;
    let peak = opt.readback_peak_bytes();
    let device_total = after.as_ref().map(|a| a.0);
    Ok(MemoryReport {
        kernel: name.to_string(),
        params: n,
        state_bytes_per_param: state as f64 / n as f64,
        bytes_moved_per_param: moved as f64 / n as f64,
        requested_bytes: opt.allocations().iter().map(|a| a.bytes).sum(),
        device_bytes: before
            .as_ref()
            .zip(device_total)
            .map(|(b, a)| a.saturating_sub(b.0)),
        readback_transient_bytes: (peak > 0).then_some(peak),
        buffers,
    })
}
