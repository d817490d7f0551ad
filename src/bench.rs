//! Timing optimizer steps against the device's own copy bandwidth, shared by `wgoptim bench`
//! and the criterion benches.
//!
//! Times are wall-clock around a submit and a device wait, per repetition; the median and the
//! minimum of the repetitions are reported. Achieved bandwidth counts the bytes a fused step
//! must move ([`Optimizer::bytes_moved_per_param`]); the copy baseline moves the same number of
//! bytes with `copy_buffer_to_buffer` (read + write) in the same run.

use std::time::Instant;

use crate::backend::Backend;
use crate::error::Result;
use crate::gpu::{GpuContext, GpuOptimizer};
use crate::optim::Optimizer;
use crate::verify::Data;

/// Median and minimum of repeated timings, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// Median over the repetitions.
    pub median: f64,
    /// Fastest repetition.
    pub min: f64,
}

impl Timing {
    fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        Self {
            median: samples[samples.len() / 2],
            min: samples[0],
        }
    }
}

fn time(
    ctx: &GpuContext,
    warmup: usize,
    reps: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<Timing> {
    for _ in 0..warmup {
        f()?;
    }
    ctx.wait()?;
    let mut samples = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        f()?;
        ctx.wait()?;
        samples.push(start.elapsed().as_secs_f64());
    }
    Ok(Timing::of(samples))
}

/// Times `reps` steps of `optimizer` over `n` random parameters (after `warmup` steps).
pub fn time_step(
    ctx: &GpuContext,
    optimizer: Optimizer,
    n: usize,
    warmup: usize,
    reps: usize,
) -> Result<Timing> {
    let mut data = Data::new(1);
    let mut opt = GpuOptimizer::with_params(ctx, optimizer, &data.vector(n))?;
    opt.write_grads(&data.gradients(n))?;
    time(ctx, warmup, reps, || opt.step())
}

/// Times `copy_buffer_to_buffer` of `bytes` between two device buffers.
pub fn time_copy(ctx: &GpuContext, bytes: u64, warmup: usize, reps: usize) -> Result<Timing> {
    let device = ctx.device();
    let bytes = bytes.div_ceil(4) * 4;
    let make = |usage| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("copy baseline"),
            size: bytes,
            usage,
            mapped_at_creation: false,
        })
    };
    let src = make(wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST);
    let dst = make(wgpu::BufferUsages::COPY_DST);
    // Touch the source once so that the first timed copy does not pay for lazy initialization.
    ctx.queue()
        .write_buffer(&src, 0, &vec![1u8; bytes as usize]);
    time(ctx, warmup, reps, || {
        let mut encoder = device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&src, 0, &dst, 0, bytes);
        ctx.queue().submit([encoder.finish()]);
        Ok(())
    })
}
