//! The host side: pipelines built once, adopted devices, recording into the caller's encoder,
//! and one run across a chunk seam at the adapter's real storage-binding limit.

mod common;

use wgoptim::verify::{self, Data, run_against_reference};
use wgoptim::{Adagrad, Adam, Backend, GpuContext, GpuOptimizer, RmsProp, Sgd};

#[test]
fn no_pipeline_is_created_after_the_first_step() {
    // A context of its own: other tests compile pipelines concurrently on the shared ones.
    if common::full().is_none() {
        return;
    }
    let ctx = GpuContext::new().unwrap();
    let mut opt =
        GpuOptimizer::with_params(&ctx, Adam::adamw().amsgrad(true), &[1.0; 1000]).unwrap();
    opt.write_grads(&[0.5; 1000]).unwrap();
    opt.step().unwrap();
    let after_first = ctx.pipelines_created();
    assert_eq!(after_first, 1);
    for i in 0..20 {
        opt.set_lr(1e-3 / f64::from(i + 1)).unwrap();
        opt.step().unwrap();
    }
    opt.read_params().unwrap();
    assert_eq!(ctx.pipelines_created(), after_first);
    // A second optimizer of the same variant reuses the compiled pipeline.
    let _again = GpuOptimizer::new(&ctx, Adam::adamw().amsgrad(true), 10).unwrap();
    assert_eq!(ctx.pipelines_created(), after_first);
}

#[test]
fn adopted_device_and_caller_encoder() {
    // The caller owns the device, the queue and the buffers; wgoptim records into its encoder.
    let Some(shared) = common::full() else { return };
    let ctx = GpuContext::from_device(shared.device().clone(), shared.queue().clone()).unwrap();
    let params = Data::new(7).vector(1001);
    let grads = Data::new(8).gradients(1001);
    let param_buffer = common::poisoned_buffer(&ctx, &params, 0);
    let grad_buffer = common::poisoned_buffer(&ctx, &grads, 0);
    let optimizer = Sgd::default().lr(0.1).momentum(0.9).nesterov(true);
    let mut opt =
        GpuOptimizer::adopt(&ctx, optimizer, param_buffer.clone(), grad_buffer, 1001).unwrap();
    let mut twin =
        wgoptim::CpuOptimizer::with_params(&wgoptim::CpuContext::new(), optimizer, &params)
            .unwrap();
    twin.write_grads(&grads).unwrap();
    for _ in 0..3 {
        let mut encoder = ctx.device().create_command_encoder(&Default::default());
        opt.record_step(&mut encoder).unwrap();
        ctx.queue().submit([encoder.finish()]);
        twin.step().unwrap();
    }
    assert_eq!(opt.steps(), 3);
    let got = common::read_raw(&ctx, &param_buffer);
    assert_eq!(
        &got[..1001],
        twin.params(),
        "in-place update of the caller's buffer"
    );
}

/// Both backends over `n` seeded parameters (seed `seed`): one vector, or for Muon, which takes
/// matrices only, `verify::shaped_layout`'s matrices (gaps zero); and their length.
fn backends(
    ctx: &wgoptim::GpuContext,
    optimizer: wgoptim::Optimizer,
    n: usize,
    seed: u64,
) -> (GpuOptimizer, wgoptim::CpuOptimizer, usize) {
    let cpu_ctx = wgoptim::CpuContext::new();
    let layout = match optimizer {
        wgoptim::Optimizer::Muon(_) => verify::shaped_layout(&optimizer, n),
        _ => None,
    };
    let (mut gpu, mut cpu) = match layout {
        Some(l) => (
            GpuOptimizer::with_layout(ctx, optimizer, l.clone()).unwrap(),
            wgoptim::CpuOptimizer::with_layout(&cpu_ctx, optimizer, l).unwrap(),
        ),
        None => (
            GpuOptimizer::new(ctx, optimizer, n).unwrap(),
            wgoptim::CpuOptimizer::new(&cpu_ctx, optimizer, n).unwrap(),
        ),
    };
    let n = gpu.len();
    let params = Data::new(seed).vector(n);
    gpu.write_params(&params).unwrap();
    cpu.write_params(&params).unwrap();
    (gpu, cpu, n)
}

#[test]
fn gpu_and_cpu_backends_agree_bit_for_bit() {
    let Some(ctx) = common::full() else { return };
    for (name, optimizer) in verify::variants() {
        let (mut gpu, mut cpu, n) = backends(&ctx, optimizer, 4099, 3);
        let mut data = Data::new(4);
        for _ in 0..5 {
            let g = data.gradients(n);
            for b in [&mut gpu as &mut dyn Backend, &mut cpu] {
                b.write_grads(&g).unwrap();
                b.step().unwrap();
            }
        }
        assert_eq!(
            gpu.read_params().unwrap(),
            cpu.read_params().unwrap(),
            "{name}"
        );
    }
}

/// One size just past the adapter's real storage-binding limit (128 MiB on lavapipe: 2^25
/// floats), so the second chunk is bound at a real offset; two steps per family.
#[test]
fn across_a_seam_at_the_real_binding_limit() {
    let Some(ctx) = common::full() else { return };
    let max_binding = ctx
        .limits()
        .max_storage_buffer_binding_size
        .min(ctx.limits().max_buffer_size);
    let n = (max_binding / 4) as usize + 3;
    let optimizers: [wgoptim::Optimizer; 4] = [
        Sgd::default().lr(0.1).momentum(0.9).nesterov(true).into(),
        RmsProp::default().centered(true).momentum(0.5).into(),
        Adam::adamw().amsgrad(true).into(),
        Adagrad::default()
            .lr_decay(0.01)
            .initial_accumulator_value(0.1)
            .into(),
    ];
    let params = Data::new(11).vector(n);
    for optimizer in optimizers {
        let mut gpu = GpuOptimizer::with_params(&ctx, optimizer, &params).unwrap();
        assert_eq!(gpu.chunks().len(), 2, "{n} floats must need two bindings");
        for r in run_against_reference(&mut gpu, &params, 2, &[2], 12).unwrap() {
            assert!(
                r.diff.passes(r.steps),
                "{} at n={n}: {:?}",
                optimizer.name(),
                r.diff
            );
        }
    }
}

/// Gradients the data above never has: ±0, subnormals, ±∞ and NaN, without skipping. The
/// backends still agree on every element (NaN for NaN, whatever its payload; the rest bit for
/// bit), for every variant: the twins' comparisons, `max`, `min` and `sign` treat them as the
/// kernels do on lavapipe.
#[test]
fn gpu_and_cpu_agree_on_special_gradients() {
    let Some(ctx) = common::full() else { return };
    let specials = [
        0.0,
        -0.0,
        1e-40,
        -1e-40,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        0.5,
    ];
    let n = 64;
    let same = |a: f32, b: f32| (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits();
    for (name, optimizer) in verify::variants() {
        let (mut gpu, mut cpu, n) = backends(&ctx, optimizer, n, 5);
        for step in 0..3 {
            // Each element meets a different special value each step.
            let g: Vec<f32> = (0..n)
                .map(|i| specials[(i + step * (i / specials.len() + 1)) % specials.len()])
                .collect();
            for b in [&mut gpu as &mut dyn Backend, &mut cpu] {
                b.write_grads(&g).unwrap();
                b.step().unwrap();
            }
        }
        let mut buffers = vec![(
            "params".to_string(),
            gpu.read_params().unwrap(),
            cpu.read_params().unwrap(),
        )];
        for slot in optimizer.state_layout().slots {
            buffers.push((
                slot.name.to_string(),
                gpu.read_state(slot.name).unwrap(),
                cpu.read_state(slot.name).unwrap(),
            ));
        }
        for (what, a, b) in buffers {
            for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
                assert!(same(x, y), "{name} {what}[{i}]: gpu {x:e} vs cpu {y:e}");
            }
        }
    }
}
