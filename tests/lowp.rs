//! Low-precision optimizer state (bf16, block-wise int8): every kernel equals its CPU twin bit
//! for bit (parameters, codes, absmax, bf16 bits), across vec4 tails, quantization blocks,
//! tasks and binding seams; the threshold keeps small groups in f32; the combinations left out
//! are typed errors on both backends.

mod common;

use wgoptim::precision::{GradDType, ParamDType, StateDType, StatePrecision, StoredState};
use wgoptim::verify::{self, Data};
use wgoptim::wgpu;
use wgoptim::{Adam, Backend, CpuOptimizer, Error, GpuOptimizer, Optimizer, RmsProp, Sgd};

/// A caller's buffer of `bytes` bytes, as `adopt` takes it.
fn storage_buffer(ctx: &wgoptim::GpuContext, bytes: u64) -> wgpu::Buffer {
    ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: bytes,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Runs `steps` steps of `optimizer` over `n` parameters on the GPU and the CPU backend with
/// the same seeded data and compares parameters and stored state exactly.
fn check(ctx: &wgoptim::GpuContext, name: &str, optimizer: Optimizer, n: usize, steps: usize) {
    let mut data = Data::new(n as u64 ^ 0x5eed);
    let p0 = data.vector(n);
    let mut gpu = GpuOptimizer::with_params(ctx, optimizer, &p0).unwrap();
    let two = wgoptim::CpuContext::with_threads(2).unwrap();
    let mut cpu = CpuOptimizer::with_params(&two, optimizer, &p0).unwrap();
    for _ in 0..steps {
        let g = data.gradients(n);
        gpu.write_grads(&g).unwrap();
        gpu.step().unwrap();
        cpu.write_grads(&g).unwrap();
        cpu.step().unwrap();
    }
    assert_eq!(
        bits(&gpu.read_params().unwrap()),
        bits(cpu.params()),
        "{name} n={n}: parameters"
    );
    assert_eq!(
        gpu.read_model_bits().unwrap(),
        cpu.read_model_bits(),
        "{name} n={n}: bf16 model copy"
    );
    for slot in optimizer.resolved_for(n).state_layout().slots {
        let g = gpu.read_group_state_stored(0, slot.name).unwrap();
        let c = cpu.read_group_state_stored(0, slot.name).unwrap();
        let same = match (&g, &c) {
            (StoredState::F32(a), StoredState::F32(b)) => bits(a) == bits(b),
            (
                StoredState::Int8 {
                    codes: a,
                    absmax: x,
                },
                StoredState::Int8 {
                    codes: b,
                    absmax: y,
                },
            ) => a == b && bits(x) == bits(y),
            (a, b) => a == b,
        };
        assert!(same, "{name} n={n}: {} differs", slot.name);
        assert_eq!(
            std::mem::discriminant(&g),
            std::mem::discriminant(&StoredState::encode(&slot, &[0.0], 0, 0)),
            "{name}: {} is stored as {:?}",
            slot.name,
            slot.dtype
        );
    }
}

#[test]
fn every_low_precision_kernel_equals_its_twin_bit_for_bit() {
    let Some(ctx) = common::full() else { return };
    // A lone element, a vec4 tail, several int8 blocks with a partial last one, and more than
    // one 32,768-element CPU task.
    for (name, optimizer) in verify::lowp_variants() {
        for n in [1, 7, 1000, 70_001] {
            check(&ctx, &name, optimizer, n, 3);
        }
    }
}

#[test]
fn low_precision_state_is_exact_across_binding_seams() {
    let Some(ctx) = common::small() else { return };
    // 1 MiB bindings: chunks of 262,144 elements, so this crosses a seam inside the buffers.
    let n = 262_144 + 1_000;
    for dtype in [StateDType::Bf16, StateDType::Int8] {
        let state = StatePrecision { dtype, min_len: 0 };
        check(
            &ctx,
            "adamw",
            Adam::adamw().lr(1e-2).state(state).into(),
            n,
            2,
        );
        check(
            &ctx,
            "sgd-momentum",
            Sgd::default().lr(1e-2).momentum(0.9).state(state).into(),
            n,
            2,
        );
    }
}

#[test]
fn groups_below_the_threshold_keep_f32_state() {
    let Some(ctx) = common::full() else { return };
    let int8 = Adam::adamw().state(StatePrecision::int8());
    for (n, dtype) in [(4095, StateDType::F32), (4096, StateDType::Int8)] {
        let gpu = GpuOptimizer::new(&ctx, int8, n).unwrap();
        let cpu = CpuOptimizer::new(&wgoptim::CpuContext::new(), int8, n).unwrap();
        let expected = match dtype {
            StateDType::F32 => "F32",
            _ => "Int8",
        };
        for stored in [
            gpu.read_group_state_stored(0, "exp_avg").unwrap(),
            cpu.read_group_state_stored(0, "exp_avg").unwrap(),
        ] {
            assert!(format!("{stored:?}").starts_with(expected), "n={n}");
        }
    }
    check(&ctx, "adamw-int8-small", int8.into(), 1000, 2);
}

#[test]
fn centered_rmsprop_refuses_low_precision_state_on_both_backends() {
    let Some(ctx) = common::full() else { return };
    for state in [StatePrecision::bf16(), StatePrecision::int8()] {
        let opt = RmsProp::default().centered(true).state(state);
        let gpu = GpuOptimizer::new(&ctx, opt, 10_000).unwrap_err();
        let cpu = CpuOptimizer::new(&wgoptim::CpuContext::new(), opt, 10_000).unwrap_err();
        assert!(matches!(gpu, Error::UnsupportedPrecision { .. }), "{gpu}");
        assert_eq!(gpu.to_string(), cpu.to_string());
    }
}

#[test]
fn fresh_int8_state_decodes_to_exact_zeros_and_the_initial_accumulator() {
    let Some(ctx) = common::full() else { return };
    let adam = Adam::adamw().state(StatePrecision::int8().min_len(0));
    let gpu = GpuOptimizer::new(&ctx, adam, 1000).unwrap();
    for name in ["exp_avg", "exp_avg_sq"] {
        let state = gpu.read_group_state(0, name).unwrap();
        assert!(state.iter().all(|x| x.to_bits() == 0), "{name}");
    }
    let adagrad = wgoptim::Adagrad::default()
        .initial_accumulator_value(0.1)
        .state(StatePrecision::int8().min_len(0));
    let gpu = GpuOptimizer::new(&ctx, adagrad, 1000).unwrap();
    assert!(
        gpu.read_group_state(0, "sum")
            .unwrap()
            .iter()
            .all(|&x| x == 0.1)
    );
}

/// bitsandbytes' protocol (research notes): p = 0.1·randn, g = 0.01·randn, 1024 × {32, 1024,
/// 4097}, 50 steps, the f32 reference re-synced to the low-precision run before each step.
/// Bounds: int8 mean |Δp| < 6e-5 and mean relative < 6e-4 per step, fewer than 20 state
/// elements per tensor outside 3e-3 + 1e-3·|ref|; bf16 1.7e-4 / 1.6e-3 (bitsandbytes' own).
/// The parameter's step error is in fact exactly 0: the kernel steps the parameter from the
/// unrounded state, so the state's rounding only reaches the parameters from the next step on
/// (`wgoptim verify --fidelity` reports that drift; BENCHMARKS.md).
#[test]
fn adam_and_adamw_with_low_precision_state_stay_within_bitsandbytes_bounds() {
    use wgoptim::fidelity::fidelity;
    for (name, optimizer) in [
        ("adam", Optimizer::from(Adam::default())),
        ("adamw", Adam::adamw().into()),
    ] {
        // 1024 × 4097 once per state type (AdamW), the smaller two for both.
        let sizes: &[usize] = if name == "adamw" {
            &[32, 1024, 4097]
        } else {
            &[32, 1024]
        };
        for &cols in sizes {
            let len = 1024 * cols;
            for (dtype, abs, rel) in [
                (StateDType::Int8, 6e-5, 6e-4),
                (StateDType::Bf16, 1.7e-4, 1.6e-3),
            ] {
                let f = fidelity(optimizer, dtype, len, 50, true, cols as u64).unwrap();
                eprintln!("{name} {dtype:?} 1024x{cols}: {f:?}");
                assert!(
                    f.mean_abs < abs && f.mean_rel < rel && f.state_outliers < 20,
                    "{name} {dtype:?} 1024x{cols}: {f:?}"
                );
                assert_eq!(f.mean_abs, 0.0, "parameters step from the unrounded state");
                assert!(f.state_error > 0.0, "the state is rounded");
            }
        }
    }
}

/// `optimizer` from `p0` through every gradient of `grads` straight, and again saved after
/// `at` steps, restored into a fresh optimizer and run to the end: (straight, resumed, the
/// checkpoint).
fn straight_and_resumed(
    ctx: &wgoptim::GpuContext,
    optimizer: Optimizer,
    p0: &[f32],
    grads: &[Vec<f32>],
    at: usize,
) -> (GpuOptimizer, GpuOptimizer, Vec<u8>) {
    let run = |opt: &mut GpuOptimizer, gs: &[Vec<f32>]| {
        for g in gs {
            opt.write_grads(g).unwrap();
            opt.step().unwrap();
        }
    };
    let mut whole = GpuOptimizer::with_params(ctx, optimizer, p0).unwrap();
    run(&mut whole, grads);
    let mut first = GpuOptimizer::with_params(ctx, optimizer, p0).unwrap();
    run(&mut first, &grads[..at]);
    let saved = first.checkpoint().unwrap();
    let mut resumed = GpuOptimizer::new(ctx, optimizer, p0.len()).unwrap();
    resumed.restore(&saved).unwrap();
    run(&mut resumed, &grads[at..]);
    (whole, resumed, saved)
}

/// Saved after 3 steps, restored into a fresh optimizer, 3 more steps: the same bits as 6
/// uninterrupted steps (codes, absmax, bf16 bits and the stochastic rounding's step count all
/// come back); a checkpoint of another state type is refused and changes nothing.
#[test]
fn low_precision_checkpoints_resume_bit_identically_and_refuse_other_precisions() {
    let Some(ctx) = common::full() else { return };
    let n = 5_000;
    let mut data = Data::new(9);
    let p0 = data.vector(n);
    let grads: Vec<Vec<f32>> = (0..6).map(|_| data.gradients(n)).collect();
    for state in [StatePrecision::bf16(), StatePrecision::int8()] {
        for optimizer in [
            Optimizer::from(Adam::adamw().lr(1e-2).state(state)),
            Sgd::default().lr(1e-2).momentum(0.9).state(state).into(),
        ] {
            let (whole, resumed, saved) = straight_and_resumed(&ctx, optimizer, &p0, &grads, 3);
            assert_eq!(
                bits(&resumed.read_params().unwrap()),
                bits(&whole.read_params().unwrap()),
                "{optimizer:?}"
            );
            for slot in optimizer.state_layout().slots {
                assert_eq!(
                    resumed.read_group_state_stored(0, slot.name).unwrap(),
                    whole.read_group_state_stored(0, slot.name).unwrap(),
                    "{}",
                    slot.name
                );
            }
            // Another precision: refused, nothing written.
            let other = optimizer.with_state_precision(StatePrecision::f32());
            let mut f32_opt = GpuOptimizer::with_params(&ctx, other, &p0).unwrap();
            let err = f32_opt.restore(&saved).unwrap_err();
            assert!(err.to_string().contains("state dtype"), "{err}");
            assert_eq!(bits(&f32_opt.read_params().unwrap()), bits(&p0));
        }
    }
}

/// Every f16 and bf16 bit pattern, written as gradients and stepped by SGD with γ = 1 from
/// θ = 0, comes back as −g with g the exact widening computed on the host (NaNs as NaNs).
#[test]
fn every_half_gradient_widens_exactly_on_the_device() {
    let Some(ctx) = common::full() else { return };
    let bits: Vec<u16> = (0..=u16::MAX).collect();
    for grads in [GradDType::F16, GradDType::Bf16] {
        let sgd = Sgd::default().lr(1.0).grads(grads);
        let mut gpu = GpuOptimizer::new(&ctx, sgd, bits.len()).unwrap();
        gpu.write_grad_bits(&bits).unwrap();
        let read = gpu.read_grads().unwrap();
        gpu.step().unwrap();
        let params = gpu.read_params().unwrap();
        let mut flushed = 0;
        for (k, &h) in bits.iter().enumerate() {
            let g = grads.half_value(h);
            if g.is_nan() {
                assert!(params[k].is_nan() && read[k].is_nan(), "{grads:?} {h:#06x}");
                continue;
            }
            assert_eq!(
                read[k].to_bits(),
                g.to_bits(),
                "{grads:?} {h:#06x} read back"
            );
            if g != 0.0 && g.is_subnormal() && params[k] == 0.0 {
                // bf16 values below f32's normal range: the device flushes the arithmetic's
                // denormals (the f32 kernels do the same); the load itself was exact (above).
                flushed += 1;
                continue;
            }
            assert_eq!(
                params[k].to_bits(),
                (0.0 - g).to_bits(),
                "{grads:?} {h:#06x}"
            );
        }
        eprintln!("{grads:?}: {flushed} denormal results flushed by the device");
    }
}

/// f32 values written to a half-gradient optimizer are rounded to nearest-even, on both
/// backends; half bits are refused by an optimizer that reads f32.
#[test]
fn gradients_written_as_f32_round_to_the_gradient_type() {
    let Some(ctx) = common::full() else { return };
    let mut data = Data::new(3);
    let g: Vec<f32> = data.vector(1001).iter().map(|x| x * 1e3).collect();
    for grads in [GradDType::F16, GradDType::Bf16] {
        let opt = Adam::adamw().grads(grads);
        let mut gpu = GpuOptimizer::new(&ctx, opt, g.len()).unwrap();
        gpu.write_grads(&g).unwrap();
        let expected: Vec<f32> = g.iter().map(|&x| grads.round(x)).collect();
        assert_eq!(bits(&gpu.read_grads().unwrap()), bits(&expected));
        assert_ne!(bits(&expected), bits(&g));
    }
    let mut f32_opt = GpuOptimizer::new(&ctx, Adam::adamw(), 4).unwrap();
    assert!(matches!(
        f32_opt.write_grad_bits(&[0; 4]),
        Err(Error::GradDTypeMismatch { .. })
    ));
}

/// Loss scaling, clipping and non-finite skipping read half gradients as the update does: a
/// bf16 run equals an f32 run given the same (rounded) values, bit for bit; an f16 gradient
/// that overflows to ∞ skips the step.
#[test]
fn clipping_unscaling_and_skipping_work_with_half_gradients() {
    let Some(ctx) = common::full() else { return };
    let n = 300_001;
    let mut data = Data::new(4);
    let p0 = data.vector(n);
    let control = wgoptim::GradientControl {
        max_norm: Some(1.0),
        skip_nonfinite: true,
        loss_scale: 1024.0,
    };
    let mut half =
        GpuOptimizer::with_params(&ctx, Adam::adamw().grads(GradDType::Bf16), &p0).unwrap();
    let mut full = GpuOptimizer::with_params(&ctx, Adam::adamw(), &p0).unwrap();
    for opt in [&mut half, &mut full] {
        opt.set_gradient_control(Some(control)).unwrap();
    }
    for _ in 0..3 {
        let g: Vec<f32> = data.gradients(n).iter().map(|x| x * 1024.0).collect();
        let rounded: Vec<f32> = g.iter().map(|&x| GradDType::Bf16.round(x)).collect();
        half.write_grads(&g).unwrap();
        full.write_grads(&rounded).unwrap();
        half.step().unwrap();
        full.step().unwrap();
    }
    assert_eq!(
        bits(&half.read_params().unwrap()),
        bits(&full.read_params().unwrap())
    );
    assert_eq!(
        half.last_grad_norm().unwrap(),
        full.last_grad_norm().unwrap()
    );

    let mut f16 =
        GpuOptimizer::with_params(&ctx, Adam::adamw().grads(GradDType::F16), &p0).unwrap();
    f16.set_gradient_control(Some(control)).unwrap();
    let mut g = vec![0.5f32; n];
    g[n / 2] = 70_000.0; // past f16's 65504: stored as +∞
    f16.write_grads(&g).unwrap();
    f16.step().unwrap();
    assert_eq!(f16.skipped_steps().unwrap(), 1);
    assert_eq!(bits(&f16.read_params().unwrap()), bits(&p0));
}

/// One gradient buffer has one type: groups of different gradient types are refused alike
/// on both backends; an adopted half-gradient buffer needs half the bytes.
#[test]
fn mixed_gradient_types_are_refused_and_adopted_half_buffers_are_sized_by_type() {
    let Some(ctx) = common::full() else { return };
    let groups = || {
        vec![
            wgoptim::ParamGroup::new(Adam::adamw()).tensor("a", &[10]),
            wgoptim::ParamGroup::new(Adam::adamw().grads(GradDType::Bf16)).tensor("b", &[10]),
        ]
    };
    let gpu = GpuOptimizer::with_groups(&ctx, groups()).unwrap_err();
    let cpu = CpuOptimizer::with_groups(&wgoptim::CpuContext::new(), groups()).unwrap_err();
    assert!(matches!(gpu, Error::GradDTypeMismatch { .. }), "{gpu}");
    assert_eq!(gpu.to_string(), cpu.to_string());

    let n = 1000;
    let buffer = |bytes| storage_buffer(&ctx, bytes);
    let bf16 = Adam::adamw().grads(GradDType::Bf16);
    let too_small = GpuOptimizer::adopt(&ctx, bf16, buffer(4 * n), buffer(2 * n - 4), n as usize);
    assert!(matches!(too_small, Err(Error::BufferTooSmall { .. })));
    let mut adopted =
        GpuOptimizer::adopt(&ctx, bf16, buffer(4 * n), buffer(2 * n), n as usize).unwrap();
    adopted.write_grads(&vec![0.5; n as usize]).unwrap();
    adopted.step().unwrap();
    assert!(adopted.read_params().unwrap().iter().all(|&p| p < 0.0));
}

/// bf16 parameters with stochastic rounding keep moving under updates far below half a bf16
/// ulp, on average by the f32 amount (round-to-nearest would leave them at 1.0); the same
/// steps agree bit for bit with the CPU backend; master weights keep an exact f32 copy and a
/// bf16 model copy rounded to nearest.
#[test]
fn bf16_parameters_move_by_stochastic_rounding_and_master_weights_keep_a_bf16_copy() {
    let Some(ctx) = common::full() else { return };
    let n = 1 << 16;
    // SGD, lr 1e-4, gradient 1: each step moves θ = 1 by 1e-4, 1/39 of the ulp 2^-7 below 1.
    let sgd = Sgd::default().lr(1e-4).params(ParamDType::Bf16);
    let mut gpu = GpuOptimizer::with_params(&ctx, sgd, &vec![1.0; n]).unwrap();
    let mut cpu =
        CpuOptimizer::with_params(&wgoptim::CpuContext::new(), sgd, &vec![1.0; n]).unwrap();
    for _ in 0..20 {
        for opt in [&mut gpu as &mut dyn Backend, &mut cpu] {
            opt.write_grads(&vec![1.0; n]).unwrap();
            opt.step().unwrap();
        }
    }
    let params = gpu.read_params().unwrap();
    assert_eq!(bits(&params), bits(cpu.params()));
    let mean = params.iter().map(|&p| f64::from(p)).sum::<f64>() / n as f64;
    assert!((mean - (1.0 - 20.0 * 1e-4)).abs() < 1e-4, "mean {mean}");
    assert!(
        params.iter().all(|p| p.to_bits() & 0xffff == 0),
        "bf16 values"
    );

    let master = Adam::adamw().lr(1e-3).params(ParamDType::Bf16Master);
    let mut data = Data::new(5);
    let p0 = data.vector(1000);
    let mut gpu = GpuOptimizer::with_params(&ctx, master, &p0).unwrap();
    let mut f32_run = GpuOptimizer::with_params(&ctx, Adam::adamw().lr(1e-3), &p0).unwrap();
    for _ in 0..5 {
        let g = data.gradients(1000);
        for opt in [&mut gpu, &mut f32_run] {
            opt.write_grads(&g).unwrap();
            opt.step().unwrap();
        }
    }
    let masters = gpu.read_params().unwrap();
    assert_eq!(bits(&masters), bits(&f32_run.read_params().unwrap()));
    let copy = gpu.read_model_bits().unwrap().unwrap();
    let nearest: Vec<u16> = masters
        .iter()
        .map(|&p| wgoptim::precision::bf16_bits(p, wgoptim::precision::Rounding::NearestEven, 0))
        .collect();
    assert_eq!(copy, nearest);
    assert!(gpu.model_buffer().is_some() && f32_run.model_buffer().is_none());
}

/// Resume with bf16 parameters is bit-identical (the stochastic rounding's step count comes
/// back); a checkpoint of another parameter type is refused; adopted bf16 parameter buffers
/// need half the bytes; groups of different parameter types are refused alike on both
/// backends.
#[test]
fn bf16_parameters_checkpoint_adopt_and_group_alike() {
    let Some(ctx) = common::full() else { return };
    let n = 3000;
    let mut data = Data::new(6);
    let p0 = data.vector(n);
    let grads: Vec<Vec<f32>> = (0..4).map(|_| data.gradients(n)).collect();
    let opt = Adam::adamw()
        .lr(1e-2)
        .params(ParamDType::Bf16)
        .state(StatePrecision::int8().min_len(0));
    let (whole, resumed, saved) = straight_and_resumed(&ctx, opt.into(), &p0, &grads, 2);
    assert_eq!(
        bits(&resumed.read_params().unwrap()),
        bits(&whole.read_params().unwrap())
    );
    let other = Optimizer::from(opt).with_param_dtype(ParamDType::F32);
    let err = GpuOptimizer::new(&ctx, other, n)
        .unwrap()
        .restore(&saved)
        .unwrap_err();
    assert!(err.to_string().contains("parameter dtype"), "{err}");

    let buffer = |bytes| storage_buffer(&ctx, bytes);
    let bf16 = Sgd::default().lr(0.1).params(ParamDType::Bf16);
    let m = 1000u64;
    assert!(matches!(
        GpuOptimizer::adopt(&ctx, bf16, buffer(2 * m - 4), buffer(4 * m), m as usize),
        Err(Error::BufferTooSmall { .. })
    ));
    let mut adopted =
        GpuOptimizer::adopt(&ctx, bf16, buffer(2 * m), buffer(4 * m), m as usize).unwrap();
    adopted.write_params(&vec![0.5; m as usize]).unwrap();
    adopted.write_grads(&vec![1.0; m as usize]).unwrap();
    adopted.step().unwrap();
    assert!(adopted.read_params().unwrap().iter().all(|&p| p < 0.5));

    let groups = || {
        vec![
            wgoptim::ParamGroup::new(Adam::adamw()).tensor("a", &[10]),
            wgoptim::ParamGroup::new(Adam::adamw().params(ParamDType::Bf16)).tensor("b", &[10]),
        ]
    };
    let gpu = GpuOptimizer::with_groups(&ctx, groups()).unwrap_err();
    let cpu = CpuOptimizer::with_groups(&wgoptim::CpuContext::new(), groups()).unwrap_err();
    assert!(matches!(gpu, Error::ParamDTypeMismatch { .. }), "{gpu}");
    assert_eq!(gpu.to_string(), cpu.to_string());
}

/// bitsandbytes' per-tensor rule through parameter groups: tensors below the threshold and the
/// ones named (an embedding) move to a companion group with f32 state; both backends step the
/// result alike, bit for bit.
#[test]
fn small_and_chosen_tensors_keep_f32_state_in_a_companion_group() {
    use wgoptim::ParamGroup;
    let Some(ctx) = common::full() else { return };
    let int8 = Adam::adamw().lr(1e-2).state(StatePrecision::int8()); // threshold 4096
    let groups = ParamGroup::split_state_precision(
        vec![
            ParamGroup::new(int8)
                .tensor("embed.weight", &[100, 64])
                .tensor("fc.weight", &[64, 100])
                .tensor("fc.bias", &[100]),
            ParamGroup::new(Adam::adamw()).tensor("norm", &[64]),
        ],
        |name| name.starts_with("embed"),
    );
    let names = |g: &ParamGroup| g.tensors.iter().map(|t| t.0.clone()).collect::<Vec<_>>();
    assert_eq!(groups.len(), 3);
    assert_eq!(names(&groups[0]), ["fc.weight"]);
    assert_eq!(names(&groups[1]), ["embed.weight", "fc.bias"]);
    assert_eq!(names(&groups[2]), ["norm"]);
    let dtypes: Vec<StateDType> = groups
        .iter()
        .map(|g| g.optimizer.state_precision().dtype)
        .collect();
    assert_eq!(dtypes, [StateDType::Int8, StateDType::F32, StateDType::F32]);
    assert_eq!(groups[0].optimizer.lr(), groups[1].optimizer.lr());

    let mut gpu = GpuOptimizer::with_groups(&ctx, groups.clone()).unwrap();
    let mut cpu = CpuOptimizer::with_groups(&wgoptim::CpuContext::new(), groups).unwrap();
    // Both backends pack the groups alike (whole int8 blocks per tensor here).
    assert_eq!(gpu.layout(), cpu.layout());
    assert!(
        gpu.layout()
            .unwrap()
            .tensors()
            .iter()
            .all(|t| t.offset % 256 == 0)
    );
    let tensors = [
        ("fc.weight", 6400),
        ("embed.weight", 6400),
        ("fc.bias", 100),
        ("norm", 64),
    ];
    let mut data = Data::new(8);
    for (name, len) in tensors {
        let p0 = data.vector(len);
        gpu.write_tensor(name, &p0).unwrap();
        cpu.write_tensor(name, &p0).unwrap();
    }
    for _ in 0..3 {
        for (name, len) in tensors {
            let g = data.gradients(len);
            gpu.write_tensor_grads(name, &g).unwrap();
            cpu.write_tensor_grads(name, &g).unwrap();
        }
        gpu.step().unwrap();
        cpu.step().unwrap();
    }
    for (name, _) in tensors {
        assert_eq!(
            bits(&gpu.read_tensor(name).unwrap()),
            bits(&cpu.read_tensor(name).unwrap()),
            "{name}"
        );
        assert_eq!(
            bits(&gpu.read_tensor_state(name, "exp_avg_sq").unwrap()),
            bits(&cpu.read_tensor_state(name, "exp_avg_sq").unwrap()),
            "{name}"
        );
    }
    for (g, expected) in [(0, "Int8"), (1, "F32"), (2, "F32")] {
        let stored = gpu.read_group_state_stored(g, "exp_avg").unwrap();
        assert!(format!("{stored:?}").starts_with(expected), "group {g}");
    }
}
