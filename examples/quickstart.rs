//! The README's quick start: AdamW over 2^20 parameters on the GPU, ten steps.
//! `cargo run --release --example quickstart`

use wgoptim::{Adam, Backend, GpuContext, GpuOptimizer};

fn main() -> wgoptim::Result<()> {
    let ctx = GpuContext::new()?; // or GpuContext::from_device(your_device, your_queue)
    println!("adapter: {}", ctx.describe());
    let params = vec![0.5f32; 1 << 20];
    let mut opt = GpuOptimizer::with_params(&ctx, Adam::adamw().lr(1e-3), &params)?;
    for step in 0..100 {
        let grads = vec![0.01f32; 1 << 20]; // your backward pass; or write opt.grads_buffer() on the device
        opt.write_grads(&grads)?;
        opt.set_lr(1e-3 * 0.99f64.powi(step))?; // any schedule; nothing is rebuilt
        opt.step()?; // one fused dispatch per binding-sized chunk; no readback, no wait
    }
    let trained = opt.read_params()?; // explicit readback
    println!(
        "after {} steps: θ[0] = {} (from 0.5)",
        opt.steps(),
        trained[0]
    );
    Ok(())
}
