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

/// Seeded parameters over `layout`'s tensors, and seeded gradients for `steps` steps (zero in
/// the gaps between tensors).
pub fn layout_data(
    layout: &wgoptim::ParamLayout,
    steps: usize,
    seed: u64,
) -> (Vec<f32>, Vec<Vec<f32>>) {
    let mut data = wgoptim::verify::Data::new(seed);
    let mut p0 = vec![0.0; layout.len()];
    for t in layout.tensors() {
        p0[t.range()].copy_from_slice(&data.vector(t.len));
    }
    let grads = (0..steps)
        .map(|_| {
            let mut g = vec![0.0; layout.len()];
            for t in layout.tensors() {
                g[t.range()].copy_from_slice(&data.gradients(t.len));
            }
            g
        })
        .collect();
    (p0, grads)
}

/// The first index where `a` and `b` differ in their bits (or in length).
pub fn first_difference(a: &[f32], b: &[f32]) -> Option<usize> {
    (0..a.len().max(b.len()))
        .find(|&i| a.get(i).map(|x| x.to_bits()) != b.get(i).map(|x| x.to_bits()))
}

/// `optimizer` over `layout` on both backends and in the f64 oracle (which sees the layout's
/// shapes), from parameters `p0`, after one step per gradient vector of `grads`.
pub fn step_both(
    ctx: &GpuContext,
    optimizer: wgoptim::Optimizer,
    layout: &wgoptim::ParamLayout,
    p0: &[f32],
    grads: &[Vec<f32>],
) -> (
    wgoptim::GpuOptimizer,
    wgoptim::CpuOptimizer,
    wgoptim::cpu::Oracle,
) {
    use wgoptim::Backend;
    let mut gpu = wgoptim::GpuOptimizer::with_layout(ctx, optimizer, layout.clone()).unwrap();
    let cpu_ctx = wgoptim::CpuContext::new();
    let mut cpu = wgoptim::CpuOptimizer::with_layout(&cpu_ctx, optimizer, layout.clone()).unwrap();
    let tensors = layout
        .tensors()
        .iter()
        .map(|t| (t.range(), t.shape.clone()))
        .collect();
    let mut oracle = wgoptim::cpu::Oracle::with_shapes(optimizer, p0, tensors).unwrap();
    gpu.write_params(p0).unwrap();
    cpu.write_params(p0).unwrap();
    for g in grads {
        for b in [&mut gpu as &mut dyn Backend, &mut cpu] {
            b.write_grads(g).unwrap();
            b.step().unwrap();
        }
        oracle.step(g).unwrap();
    }
    (gpu, cpu, oracle)
}

/// `groups` (built afresh by the closure) on both backends for 6 steps of seeded data, the GPU
/// checkpointed after 3; restored on the CPU, the last three steps land on the same bits, and
/// each group's state slot `state` equals the GPU's.
pub fn groups_resume_across_backends(
    ctx: &GpuContext,
    groups: impl Fn() -> Vec<wgoptim::ParamGroup>,
    state: &str,
) {
    use wgoptim::{Backend, CpuContext, CpuOptimizer, GpuOptimizer};
    let mut gpu = GpuOptimizer::with_groups(ctx, groups()).unwrap();
    let mut cpu = CpuOptimizer::with_groups(&CpuContext::new(), groups()).unwrap();
    let layout = gpu.layout().unwrap().clone();
    let (p0, grads) = layout_data(&layout, 6, 5);
    gpu.write_params(&p0).unwrap();
    cpu.write_params(&p0).unwrap();
    let mut saved = None;
    for (k, g) in grads.iter().enumerate() {
        for b in [&mut gpu as &mut dyn Backend, &mut cpu] {
            b.write_grads(g).unwrap();
            b.step().unwrap();
        }
        if k == 2 {
            saved = Some(gpu.checkpoint().unwrap());
        }
    }
    let (g_params, c_params) = (gpu.read_params().unwrap(), cpu.read_params().unwrap());
    assert_eq!(first_difference(&g_params, &c_params), None);
    let mut resumed = CpuOptimizer::with_groups(&CpuContext::new(), groups()).unwrap();
    resumed.restore(&saved.unwrap()).unwrap();
    for g in &grads[3..] {
        resumed.write_grads(g).unwrap();
        resumed.step().unwrap();
    }
    assert_eq!(
        first_difference(&resumed.read_params().unwrap(), &g_params),
        None
    );
    for g in 0..gpu.groups() {
        assert_eq!(
            resumed.read_group_state(g, state).unwrap(),
            gpu.read_group_state(g, state).unwrap(),
            "group {g} {state}"
        );
    }
}

/// The gaps between `layout`'s tensors are never written: `params` (from zero there) holds 0.
pub fn assert_gaps_unwritten(layout: &wgoptim::ParamLayout, params: &[f32]) {
    let mut covered = vec![false; layout.len()];
    for t in layout.tensors() {
        covered[t.range()].iter_mut().for_each(|c| *c = true);
    }
    for (i, _) in covered.iter().enumerate().filter(|(_, c)| !**c) {
        assert_eq!(params[i], 0.0, "gap element {i} written");
    }
}
