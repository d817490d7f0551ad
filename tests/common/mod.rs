//! Shared test setup: GPU contexts, failing loudly when no adapter is found.
#![allow(dead_code)]

use std::sync::OnceLock;

use wgoptim::{ContextOptions, GpuContext, Shapes};

/// Binding limit of the small-limits device: 1 MiB, so chunk seams fall every 262,144 floats.
pub const SMALL_BINDING_BYTES: u64 = 1 << 20;
/// Workgroup limit per dimension of the small-limits device, so 2-D dispatch is exercised.
pub const SMALL_WORKGROUPS_PER_DIMENSION: u32 = 16;

fn make(options: &ContextOptions) -> Option<GpuContext> {
    match GpuContext::with_options(options) {
        Ok(ctx) => {
            eprintln!("GPU tests run on: {}", ctx.describe());
            Some(ctx)
        }
        Err(e) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            let allowed = std::env::var("WGOPTIM_ALLOW_NO_GPU").is_ok_and(|v| v == "1");
            if allowed && !ci {
                eprintln!("skipping GPU test (WGOPTIM_ALLOW_NO_GPU=1): {e}");
                None
            } else {
                panic!(
                    "no GPU adapter: {e}. Install a Vulkan driver (scripts/test.sh does), or set WGOPTIM_ALLOW_NO_GPU=1 outside CI to skip"
                );
            }
        }
    }
}

/// A device with the adapter's full limits, shared by the tests of one binary. Its kernels use
/// the built-in shapes (nothing timed, nothing cached): every candidate shape is tested for
/// exactness in `tests/shapes.rs`, and tuning itself in `tests/tune.rs`.
pub fn full() -> Option<GpuContext> {
    static CTX: OnceLock<Option<GpuContext>> = OnceLock::new();
    CTX.get_or_init(|| {
        make(&ContextOptions {
            shapes: Shapes::Builtin,
            ..Default::default()
        })
    })
    .clone()
}

/// A device with 1 MiB bindings and 16 workgroups per dimension: seams and 2-D dispatch at
/// small sizes.
pub fn small() -> Option<GpuContext> {
    static CTX: OnceLock<Option<GpuContext>> = OnceLock::new();
    CTX.get_or_init(|| {
        make(&ContextOptions {
            max_binding_bytes: Some(SMALL_BINDING_BYTES),
            max_workgroups_per_dimension: Some(SMALL_WORKGROUPS_PER_DIMENSION),
            shapes: Shapes::Builtin,
            ..Default::default()
        })
    })
    .clone()
}

/// Reads a whole buffer (COPY_SRC) back as f32, padding included.
pub fn read_raw(ctx: &GpuContext, buffer: &wgpu::Buffer) -> Vec<f32> {
    let device = ctx.device();
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("test staging"),
        size: buffer.size(),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, buffer.size());
    ctx.queue().submit([encoder.finish()]);
    staging.map_async(wgpu::MapMode::Read, .., |r| r.expect("map"));
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("poll");
    let data = bytemuck::pod_collect_to_vec(&staging.get_mapped_range(..).expect("mapped"));
    staging.unmap();
    data
}

/// A caller-owned buffer holding `data` followed by `extra` NaN "poison" elements (at least up
/// to the next whole vec4), with the usages a training loop would give it.
pub fn poisoned_buffer(ctx: &GpuContext, data: &[f32], extra: usize) -> wgpu::Buffer {
    use wgpu::util::DeviceExt;
    let mut contents = data.to_vec();
    contents.resize(data.len().div_ceil(4) * 4 + extra, POISON);
    ctx.device()
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("poisoned"),
            contents: bytemuck::cast_slice(&contents),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
        })
}

/// The poison pattern: a quiet NaN with a recognizable payload.
pub const POISON: f32 = f32::from_bits(0x7fc0_dead);
