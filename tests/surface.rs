//! The library surface as a new user meets it (issue #15): foreign buffers, checkpoints of the
//! wrong optimizer or layout, step counters past 2^32, several steps recorded into one encoder,
//! unusable loss scales, the skip ring past its wrap, low-limit devices, and the ergonomics
//! (paths, re-exports, Debug, group learning rates, the same message on both backends).
//! Every refusal is checked to leave the optimizer as it was.

mod common;

use std::collections::HashMap;

use safetensors::SafeTensors;
use safetensors::tensor::TensorView;
use wgoptim::cpu::twin_step;
use wgoptim::verify::Data;
use wgoptim::wgpu;
use wgoptim::{
    Adam, Backend, CpuOptimizer, DeviceStep, Error, GpuContext, GpuOptimizer, GradientControl,
    OneCycle, Optimizer, ParamGroup, ParamLayout, Schedule, Sgd, padded_bytes,
};

/// A device of a wgpu instance of its own (the adapter the tests use), with `limits`.
fn own_device(limits: Option<wgpu::Limits>) -> (wgpu::Device, wgpu::Queue) {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))
        .expect("an adapter (the common context found one)");
    let limits = limits.unwrap_or_else(|| adapter.limits());
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: limits,
        ..Default::default()
    }))
    .expect("device")
}

fn storage_buffer(device: &wgpu::Device, floats: usize) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("caller buffer"),
        size: padded_bytes(floats),
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

#[test]
fn buffers_of_another_instance_or_device_are_refused() {
    if common::full().is_none() {
        return;
    }
    // The adopting context: a device of its own instance, as a caller would make it.
    let (device, queue) = own_device(None);
    let ctx = GpuContext::from_device(device.clone(), queue).unwrap();
    // Another instance: its buffer ids mean nothing (or something else) to `ctx`'s device.
    // 4 elements aliased a private placeholder buffer before the fix; 64 panicked in wgpu-core.
    let (other, _other_queue) = own_device(None);
    for floats in [4, 64, 1, 1000, 4] {
        let (p, g) = (
            storage_buffer(&other, floats),
            storage_buffer(&other, floats),
        );
        let e = GpuOptimizer::adopt(&ctx, Adam::default(), p, g, floats).unwrap_err();
        assert!(
            matches!(e, Error::ForeignBuffer { .. }),
            "{floats} floats of another instance: {e}"
        );
    }
    // One buffer of this device, one of another: still refused, naming the foreign one.
    let mine = storage_buffer(&device, 64);
    let e = GpuOptimizer::adopt(
        &ctx,
        Adam::default(),
        mine.clone(),
        storage_buffer(&other, 64),
        64,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::ForeignBuffer {
                what: "gradient buffer"
            }
        ),
        "{e}"
    );
    // The context is unharmed and adopts its own device's buffers.
    let mut opt = GpuOptimizer::adopt(
        &ctx,
        Adam::default(),
        mine.clone(),
        storage_buffer(&device, 64),
        64,
    )
    .unwrap();
    opt.write_params(&[1.0; 64]).unwrap();
    opt.write_grads(&[0.5; 64]).unwrap();
    opt.step().unwrap();
    let mut twin =
        CpuOptimizer::with_params(&wgoptim::CpuContext::new(), Adam::default(), &[1.0; 64])
            .unwrap();
    twin.write_grads(&[0.5; 64]).unwrap();
    twin.step().unwrap();
    assert_eq!(opt.read_params().unwrap(), twin.params());
}

/// Rewrites the `wgoptim` header of a checkpoint with `edit`.
fn edit_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let file = SafeTensors::deserialize(bytes).unwrap();
    let (_, meta) = SafeTensors::read_metadata(bytes).unwrap();
    let mut metadata: HashMap<String, String> = meta.metadata().clone().unwrap();
    let mut header: serde_json::Value = serde_json::from_str(&metadata["wgoptim"]).unwrap();
    edit(&mut header);
    metadata.insert("wgoptim".into(), header.to_string());
    let tensors: Vec<(String, TensorView)> = file
        .tensors()
        .into_iter()
        .map(|(name, t)| {
            let view = TensorView::new(t.dtype(), t.shape().to_vec(), t.data()).unwrap();
            (name, view)
        })
        .collect();
    safetensors::serialize(tensors, Some(metadata)).unwrap()
}

#[test]
fn checkpoints_of_another_optimizer_or_layout_are_refused() {
    let Some(ctx) = common::full() else { return };
    // AdamW into Adam: same kernel and variant, another optimizer.
    let mut adamw = GpuOptimizer::with_params(&ctx, Adam::adamw(), &[1.0; 8]).unwrap();
    adamw.write_grads(&[0.5; 8]).unwrap();
    adamw.step().unwrap();
    let bytes = adamw.checkpoint().unwrap();
    let mut adam = GpuOptimizer::with_params(&ctx, Adam::default(), &[9.0; 8]).unwrap();
    let e = adam.restore(&bytes).unwrap_err();
    assert!(
        matches!(e, Error::CheckpointMismatch { .. }) && e.to_string().contains("adamw"),
        "{e}"
    );
    assert_eq!(adam.optimizer().name(), "adam");
    assert_eq!(adam.read_params().unwrap(), [9.0; 8]);
    assert_eq!(adam.steps(), 0);

    // A layout of other tensors of the same total size.
    let mut a = ParamLayout::new(4);
    a.add("w", &[4, 2]).unwrap();
    a.add("b", &[4]).unwrap();
    let mut b = ParamLayout::new(4);
    b.add("embed", &[2, 4]).unwrap();
    b.add("bias", &[4]).unwrap();
    assert_eq!(a.len(), b.len());
    let from = GpuOptimizer::with_layout(&ctx, Adam::default(), a.clone()).unwrap();
    let bytes = from.checkpoint().unwrap();
    let mut other = GpuOptimizer::with_layout(&ctx, Adam::default(), b).unwrap();
    let e = other.restore(&bytes).unwrap_err();
    assert!(e.to_string().contains("tensor layout"), "{e}");
    // Same names, another shape.
    let mut c = ParamLayout::new(4);
    c.add("w", &[2, 4]).unwrap();
    c.add("b", &[4]).unwrap();
    let mut reshaped = GpuOptimizer::with_layout(&ctx, Adam::default(), c).unwrap();
    assert!(matches!(
        reshaped.restore(&bytes),
        Err(Error::CheckpointMismatch { .. })
    ));
    // The same layout loads.
    let mut same = GpuOptimizer::with_layout(&ctx, Adam::default(), a).unwrap();
    same.restore(&bytes).unwrap();
}

#[test]
fn step_counters_are_checked_and_kept_past_2_pow_32() {
    let Some(ctx) = common::full() else { return };
    let mut opt = GpuOptimizer::with_params(&ctx, Adam::default(), &[1.0; 8]).unwrap();
    opt.set_gradient_control(Some(GradientControl {
        skip_nonfinite: true,
        ..Default::default()
    }))
    .unwrap();
    opt.write_grads(&[0.5; 8]).unwrap();
    opt.step().unwrap();
    let good = opt.checkpoint().unwrap();
    let mut target = GpuOptimizer::with_params(&ctx, Adam::default(), &[9.0; 8]).unwrap();
    // u64::MAX steps, steps that disagree with the device's count, skipped > steps.
    for (steps, device_steps, skipped, want) in [
        (u64::MAX, u64::MAX, 0, "largest step count"),
        (10, 3, 0, "inconsistent"),
        (10, 3, 9, "inconsistent"),
        (5, u64::MAX, 6, "inconsistent"),
    ] {
        let bad = edit_header(&good, |h| {
            h["steps"] = steps.into();
            h["device_steps"] = device_steps.into();
            h["skipped"] = skipped.into();
        });
        let e = target.restore(&bad).unwrap_err();
        assert!(
            matches!(e, Error::Checkpoint(_)) && e.to_string().contains(want),
            "{steps}/{device_steps}/{skipped}: {e}"
        );
        assert_eq!(target.steps(), 0);
        assert_eq!(target.read_params().unwrap(), [9.0; 8]);
    }
    // 2^32 + 3 device steps (and 2^32 + 1 skipped): the device keeps all 64 bits.
    let (device_steps, skipped) = ((1u64 << 32) + 3, (1u64 << 32) + 1);
    let big = edit_header(&good, |h| {
        h["steps"] = (device_steps + skipped).into();
        h["device_steps"] = device_steps.into();
        h["skipped"] = skipped.into();
    });
    target.restore(&big).unwrap();
    assert_eq!(target.device_steps().unwrap(), device_steps);
    target.write_grads(&[0.5; 8]).unwrap();
    target.step().unwrap();
    assert_eq!(target.device_steps().unwrap(), device_steps + 1);
    target.write_grads(&[f32::NAN; 8]).unwrap();
    target.step().unwrap();
    assert_eq!(target.skipped_steps().unwrap(), skipped + 1);
    assert_eq!(target.steps(), device_steps + skipped + 2);
    // Adam's bias corrections at t = 2^32 + 4 are 1: the step is plain Adam with m̂ = m, v̂ = v.
    let p = target.read_params().unwrap();
    assert!(p.iter().all(|x| x.is_finite()), "{p:?}");
}

#[test]
fn several_steps_recorded_into_one_encoder_are_each_applied() {
    let Some(ctx) = common::full() else { return };
    let optimizer = Optimizer::from(Adam::adamw().lr(0.01));
    let n = 1001;
    let mut data = Data::new(51);
    let p0 = data.vector(n);
    let mut gpu = GpuOptimizer::with_params(&ctx, optimizer, &p0).unwrap();
    gpu.set_schedule(Some(Schedule::Exponential { gamma: 0.5 }))
        .unwrap();
    let mut twin = CpuOptimizer::with_params(&wgoptim::CpuContext::new(), optimizer, &p0).unwrap();
    twin.set_schedule(Some(Schedule::Exponential { gamma: 0.5 }))
        .unwrap();
    let g = data.gradients(n);
    gpu.write_grads(&g).unwrap();
    twin.write_grads(&g).unwrap();
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    for _ in 0..3 {
        gpu.record_step(&mut encoder).unwrap();
        twin.step().unwrap();
    }
    ctx.queue().submit([encoder.finish()]);
    assert_eq!(gpu.steps(), 3);
    assert_eq!(
        gpu.read_params().unwrap(),
        twin.params(),
        "3 steps, one encoder"
    );
    assert_eq!(
        gpu.read_state("exp_avg").unwrap(),
        twin.read_state("exp_avg").unwrap()
    );
    // Past the uniform ring: refused, nothing recorded or counted.
    let mut encoder = ctx.device().create_command_encoder(&Default::default());
    for _ in 0..64 {
        gpu.record_step(&mut encoder).unwrap();
        twin.step().unwrap();
    }
    let e = gpu.record_step(&mut encoder).unwrap_err();
    assert!(matches!(e, Error::TooManyRecordedSteps { max: 64 }), "{e}");
    assert_eq!(gpu.steps(), 67);
    ctx.queue().submit([encoder.finish()]);
    assert_eq!(
        gpu.read_params().unwrap(),
        twin.params(),
        "64 steps, one encoder"
    );
}

#[test]
fn loss_scales_without_a_usable_inverse_are_refused() {
    let Some(ctx) = common::full() else { return };
    let mut gpu = GpuOptimizer::with_params(&ctx, Adam::default(), &[1.0; 8]).unwrap();
    for scale in [1e-39, 1e39, 1e-38 / 2.0, f64::from(f32::MAX) * 2.0] {
        let e = gpu.set_loss_scale(scale).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidHyperparameter {
                    name: "loss_scale",
                    ..
                }
            ),
            "{scale}: {e}"
        );
        assert_eq!(gpu.gradient_control(), None, "{scale}");
    }
    // The usual GradScaler range is fine.
    for scale in [65536.0, 2f64.powi(24), 1.0 / 1024.0] {
        gpu.set_loss_scale(scale).unwrap();
    }
}

#[test]
fn skipping_stays_exact_past_the_step_scalar_ring() {
    let Some(ctx) = common::full() else { return };
    let optimizer = Optimizer::from(Adam::default().lr(0.01).betas((0.9, 0.99)));
    let n = 37;
    let mut data = Data::new(61);
    let p0 = data.vector(n);
    let mut gpu = GpuOptimizer::with_params(&ctx, optimizer, &p0).unwrap();
    gpu.set_gradient_control(Some(GradientControl {
        skip_nonfinite: true,
        ..Default::default()
    }))
    .unwrap();
    // The twin runs the same deferred uniform with the ring entry of its own count.
    let mut params = p0.clone();
    let mut state: [Vec<f32>; 3] = [vec![0.0; n], vec![0.0; n], vec![]];
    let mut t = 0u64;
    let mut good_step = |gpu: &mut GpuOptimizer, params: &mut Vec<f32>, t: &mut u64| {
        let g = data.gradients(n);
        gpu.write_grads(&g).unwrap();
        gpu.step().unwrap();
        *t += 1;
        let dev = DeviceStep {
            grad_mul: 1.0,
            at_step: optimizer.step_scalars(*t),
        };
        twin_step(
            &optimizer,
            &optimizer.deferred_uniform(0.01),
            &dev,
            params,
            &g,
            &mut state,
        );
    };
    for _ in 0..3 {
        good_step(&mut gpu, &mut params, &mut t);
    }
    // More skipped steps than the ring has entries.
    let skipped = 4200;
    gpu.write_grads(&vec![f32::NAN; n]).unwrap();
    for _ in 0..skipped {
        gpu.step().unwrap();
    }
    for _ in 0..5 {
        good_step(&mut gpu, &mut params, &mut t);
    }
    assert_eq!(gpu.skipped_steps().unwrap(), skipped);
    assert_eq!(gpu.device_steps().unwrap(), t);
    assert_eq!(
        gpu.read_params().unwrap(),
        params,
        "bias corrections of t = {t}"
    );
}

#[test]
fn devices_below_the_required_limits_are_refused_by_name() {
    if common::full().is_none() {
        return;
    }
    let (device, queue) = own_device(Some(wgpu::Limits::downlevel_defaults()));
    let e = GpuContext::from_device(device, queue).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DeviceLimit {
                limit: "max_storage_buffers_per_shader_stage",
                required: 7,
                available: 4,
            }
        ),
        "{e}"
    );
    // What the README and rustdoc state is enough.
    let (device, queue) = own_device(Some(wgoptim::required_limits()));
    let ctx = GpuContext::from_device(device, queue).unwrap();
    let mut opt =
        GpuOptimizer::with_params(&ctx, Adam::default().amsgrad(true), &[1.0; 5]).unwrap();
    opt.write_grads(&[0.1; 5]).unwrap();
    opt.step().unwrap();
    // int8 state binds a code table and one absmax per state (bindings 10 and 11…), past
    // these minimums: refused by name, not by a wgpu panic. bf16 state fits.
    let int8 = wgoptim::StatePrecision::int8().min_len(0);
    let e = GpuOptimizer::new(&ctx, Sgd::default().momentum(0.9).state(int8), 5).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DeviceLimit {
                limit: "max_bindings_per_bind_group",
                required: 12,
                available: 10,
            }
        ),
        "{e}"
    );
    let bf16 = wgoptim::StatePrecision::bf16().min_len(0);
    GpuOptimizer::new(&ctx, Adam::default().state(bf16), 5).unwrap();
    let e = GpuOptimizer::new(&ctx, Adam::default().state(int8), 5).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DeviceLimit {
                limit: "max_storage_buffers_per_shader_stage",
                required: 10,
                available: 7,
            }
        ),
        "{e}"
    );
}

#[test]
fn ergonomics_a_rust_user_expects() {
    let Some(ctx) = common::full() else { return };
    let groups = vec![
        ParamGroup::new(Sgd::default().lr(0.1)).tensor("w", &[10]),
        ParamGroup::new(Sgd::default().lr(0.2)).tensor("b", &[3]),
    ];
    let mut opt = GpuOptimizer::with_groups(&ctx, groups).unwrap();
    opt.set_group_lr(1, 0.5).unwrap();
    assert_eq!(opt.group_optimizer(1).unwrap().lr(), 0.5);
    assert_eq!(opt.group_lr(1).unwrap(), 0.5);
    assert_eq!(opt.group_lr(0).unwrap(), 0.1);
    assert_eq!(opt.lr().unwrap(), 0.1, "lr() is group 0's");
    assert!(matches!(
        opt.group_lr(2),
        Err(Error::UnknownGroup {
            group: 2,
            groups: 2
        })
    ));
    // With a schedule, group_lr is the scheduled lr of the next step.
    opt.set_schedule(Some(Schedule::OneCycle(OneCycle {
        cycle_momentum: false,
        ..OneCycle::new(1.0, 10)
    })))
    .unwrap();
    assert!((opt.group_lr(1).unwrap() - 1.0 / 25.0).abs() < 1e-12);

    // Paths as std::fs takes them.
    let dir = std::env::temp_dir().join(format!("wgoptim-surface-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ckpt.safetensors");
    opt.save(&file).unwrap();
    opt.save(file.to_str().unwrap()).unwrap();
    opt.load(file.clone()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    // Debug on both backends.
    let text = format!("{opt:?}");
    assert!(
        text.contains("GpuOptimizer") && text.contains("len"),
        "{text}"
    );
    let cpu = CpuOptimizer::new(&wgoptim::CpuContext::new(), Adam::default(), 3).unwrap();
    assert!(format!("{cpu:?}").contains("CpuOptimizer"));
}

#[test]
fn the_same_bad_input_gets_the_same_error_on_both_backends() {
    let Some(ctx) = common::full() else { return };
    let mut gpu = GpuOptimizer::new(&ctx, Adam::default(), 4).unwrap();
    let mut cpu = CpuOptimizer::new(&wgoptim::CpuContext::new(), Adam::default(), 4).unwrap();
    let pairs = [
        (
            gpu.write_grads(&[1.0; 3]).unwrap_err(),
            cpu.write_grads(&[1.0; 3]).unwrap_err(),
        ),
        (
            gpu.write_params(&[1.0; 5]).unwrap_err(),
            cpu.write_params(&[1.0; 5]).unwrap_err(),
        ),
        (
            gpu.read_state("momentum_buffer").unwrap_err(),
            cpu.read_state("momentum_buffer").unwrap_err(),
        ),
        (
            GpuOptimizer::new(&ctx, Adam::default(), 0).unwrap_err(),
            CpuOptimizer::new(&wgoptim::CpuContext::new(), Adam::default(), 0).unwrap_err(),
        ),
        (
            GpuOptimizer::new(&ctx, Adam::default().eps(-1.0), 4).unwrap_err(),
            CpuOptimizer::new(&wgoptim::CpuContext::new(), Adam::default().eps(-1.0), 4)
                .unwrap_err(),
        ),
        (
            GpuOptimizer::with_params(&ctx, Sgd::default().nesterov(true), &[1.0]).unwrap_err(),
            CpuOptimizer::with_params(
                &wgoptim::CpuContext::new(),
                Sgd::default().nesterov(true),
                &[1.0],
            )
            .unwrap_err(),
        ),
    ];
    for (g, c) in pairs {
        assert_eq!(g.to_string(), c.to_string());
    }
    assert!(
        gpu.write_grads(&[1.0; 3])
            .unwrap_err()
            .to_string()
            .contains("gradients")
    );
    // Empty tensors name themselves; a shape of [] is a scalar, as in PyTorch.
    let mut layout = ParamLayout::new(4);
    let e = layout.add("head.bias", &[3, 0]).unwrap_err();
    assert!(
        matches!(&e, Error::EmptyTensor { name, shape } if name == "head.bias" && shape == &[3, 0]),
        "{e}"
    );
    assert!(e.to_string().contains("head.bias") && e.to_string().contains("[3, 0]"));
    assert_eq!(layout.add("scale", &[]).unwrap().len, 1);
    assert!(
        layout.get("head.bias").is_err(),
        "a refused tensor was registered"
    );
}

#[test]
fn the_readme_alignment_claim_is_what_the_device_reports() {
    let Some(ctx) = common::full() else { return };
    let layout = ParamLayout::for_limits(&ctx.limits());
    assert_eq!(
        layout.align() * 4,
        ctx.limits().min_storage_buffer_offset_alignment as usize
    );
}
