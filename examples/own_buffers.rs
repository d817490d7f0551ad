//! Your own wgpu training loop, your own buffers: a least-squares model whose gradient is
//! computed by a WGSL kernel of this example, written into a buffer the example owns, and
//! stepped in place by wgoptim's AdamW: no copies, one submission per step.
//! `cargo run --release --example own_buffers`

use wgoptim::verify::Data;
use wgoptim::{Adam, GpuContext, GpuOptimizer};
use wgpu::util::DeviceExt;

const ROWS: usize = 512;
const COLS: usize = 64;

/// ∇ of ½‖Xw − y‖²/m for one parameter per invocation: g_j = Σᵢ X_ij (X_i·w − y_i) / m.
const BACKWARD: &str = r"
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> g: array<f32>;
const ROWS: u32 = 512u;
const COLS: u32 = 64u;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let j = id.x;
    if j >= COLS { return; }
    var acc = 0.0;
    for (var i = 0u; i < ROWS; i++) {
        var pred = 0.0;
        for (var k = 0u; k < COLS; k++) { pred += x[i * COLS + k] * w[k]; }
        acc += x[i * COLS + j] * (pred - y[i]);
    }
    g[j] = acc / f32(ROWS);
}";

fn main() -> wgoptim::Result<()> {
    // The training code owns the device and queue (here borrowed from a context for brevity;
    // any wgpu::Device works with GpuContext::from_device).
    let own = GpuContext::new()?;
    let (device, queue) = (own.device().clone(), own.queue().clone());
    println!("adapter: {}", own.describe());

    let mut data = Data::new(7);
    let x = data.vector(ROWS * COLS);
    let w_true = data.vector(COLS);
    let y: Vec<f32> = (0..ROWS)
        .map(|i| (0..COLS).map(|k| x[i * COLS + k] * w_true[k]).sum())
        .collect();
    let storage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let buffer = |label, contents: &[f32]| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(contents),
            usage: storage,
        })
    };
    let (xb, yb) = (buffer("x", &x), buffer("y", &y));
    let weights = buffer("weights", &[0.0; COLS]);
    let grads = buffer("grads", &[0.0; COLS]);

    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("backward"),
        source: wgpu::ShaderSource::Wgsl(BACKWARD.into()),
    });
    let backward = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("backward"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("backward"),
        layout: &backward.get_bind_group_layout(0),
        entries: &[&xb, &yb, &weights, &grads]
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect::<Vec<_>>(),
    });

    // wgoptim adopts the device and steps the example's own weight and gradient buffers.
    let ctx = GpuContext::from_device(device.clone(), queue.clone())?;
    let mut opt = GpuOptimizer::adopt(
        &ctx,
        Adam::adamw().lr(0.05).weight_decay(0.0),
        weights.clone(),
        grads.clone(),
        COLS,
    )?;

    let loss = |w: &[f32]| -> f32 {
        (0..ROWS)
            .map(|i| (0..COLS).map(|k| x[i * COLS + k] * w[k]).sum::<f32>() - y[i])
            .map(|r| 0.5 * r * r)
            .sum::<f32>()
            / ROWS as f32
    };
    for step in 0..=300 {
        if step % 50 == 0 {
            let w = wgoptim::Backend::read_params(&opt)?;
            println!("step {step:>3}: loss {:.6}", loss(&w));
        }
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&backward);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(1, 1, 1);
        }
        opt.record_step(&mut encoder)?; // the fused AdamW step, in the same submission
        queue.submit([encoder.finish()]);
    }
    Ok(())
}
