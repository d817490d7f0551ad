//! The CPU backend behind the GPU optimizer's constructors: threaded steps equal the sequential
//! f32 twin bit for bit for every variant and thread count; layouts and parameter groups give
//! the GPU's results tensor by tensor; the same bad groups get the same errors.

mod common;

use wgoptim::cpu::twin_step;
use wgoptim::verify::{self, Data};
use wgoptim::{
    Adam, Backend, CpuOptimizer, DeviceStep, Error, GpuOptimizer, GradDType, GradientControl,
    ParamDType, ParamGroup, ParamLayout, Precision, Sgd, StatePrecision,
};

/// Not multiples of the vector width, of the loop's 32-element block or of the 32,768-element
/// task; 551 is just past the 512 elements (2 KiB) the loop prefetches ahead of a block.
const SIZES: [usize; 5] = [1, 7, 551, 32_768 + 5, 100_003];

fn threads(n: usize) -> wgoptim::CpuContext {
    wgoptim::CpuContext::with_threads(n).unwrap()
}

#[test]
fn threaded_steps_equal_the_sequential_twin_for_every_variant() {
    for (name, optimizer) in verify::variants() {
        for &n in &SIZES {
            let mut data = Data::new(n as u64);
            let p0 = data.vector(n);
            let mut params = p0.clone();
            let mut state: [Vec<f32>; 3] = Default::default();
            for slot in optimizer.state_layout().slots {
                state[slot.slot] = vec![slot.init; n];
            }
            // Muon runs on matrices: `twin_step` sees the vector as one 1×n matrix.
            let build = |ctx| match optimizer {
                wgoptim::Optimizer::Muon(_) => {
                    let mut layout = wgoptim::ParamLayout::new(64);
                    layout.add("w", &[1, n]).unwrap();
                    let mut o = CpuOptimizer::with_layout(&ctx, optimizer, layout).unwrap();
                    o.write_params(&p0).unwrap();
                    o
                }
                _ => CpuOptimizer::with_params(&ctx, optimizer, &p0).unwrap(),
            };
            let mut one = build(threads(1));
            let mut two = build(threads(2));
            assert_eq!((one.threads(), two.threads()), (1, 2));
            for _ in 0..3 {
                let g = data.gradients(n);
                let uniform = one.next_uniform().unwrap();
                twin_step(
                    &optimizer,
                    &uniform,
                    &DeviceStep::NEUTRAL,
                    &mut params,
                    &g,
                    &mut state,
                );
                for opt in [&mut one, &mut two] {
                    opt.write_grads(&g).unwrap();
                    opt.step().unwrap();
                }
            }
            for opt in [&one, &two] {
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(opt.params()), bits(&params), "{name} n={n}");
                for slot in optimizer.state_layout().slots {
                    assert_eq!(
                        bits(&opt.read_state(slot.name).unwrap()),
                        bits(&state[slot.slot]),
                        "{name} n={n} {}",
                        slot.name
                    );
                }
            }
        }
    }
}

fn groups() -> Vec<ParamGroup> {
    ParamGroup::split_weight_decay(
        Adam::adamw().lr(0.01),
        &[
            ("fc1.weight", &[64, 33]),
            ("fc1.bias", &[64]),
            ("fc2.weight", &[10, 64]),
            ("fc2.bias", &[10]),
        ],
        |name| name.ends_with("bias"),
    )
}

#[test]
fn groups_and_layouts_give_the_gpus_results_tensor_by_tensor() {
    let Some(ctx) = common::full() else { return };
    let mut gpu = GpuOptimizer::with_groups(&ctx, groups()).unwrap();
    let mut cpu = CpuOptimizer::with_groups(&wgoptim::CpuContext::new(), groups()).unwrap();
    assert_eq!(cpu.groups(), 2);
    let names: Vec<(String, usize)> = cpu
        .layout()
        .unwrap()
        .tensors()
        .iter()
        .map(|t| (t.name.clone(), t.len))
        .collect();
    let mut data = Data::new(77);
    for (name, len) in &names {
        let p = data.vector(*len);
        gpu.write_tensor(name, &p).unwrap();
        cpu.write_tensor(name, &p).unwrap();
    }
    cpu.set_group_lr(1, 0.003).unwrap();
    gpu.set_group_lr(1, 0.003).unwrap();
    for _ in 0..4 {
        for (name, len) in &names {
            let g = data.gradients(*len);
            gpu.write_tensor_grads(name, &g).unwrap();
            cpu.write_tensor_grads(name, &g).unwrap();
        }
        gpu.step().unwrap();
        cpu.step().unwrap();
    }
    for (name, _) in &names {
        assert_eq!(
            cpu.read_tensor(name).unwrap(),
            gpu.read_tensor(name).unwrap(),
            "{name}"
        );
        assert_eq!(
            cpu.read_tensor_state(name, "exp_avg_sq").unwrap(),
            gpu.read_tensor_state(name, "exp_avg_sq").unwrap(),
            "{name}"
        );
    }
    assert_eq!(cpu.group_lr(1).unwrap(), gpu.group_lr(1).unwrap());
    assert_eq!(cpu.group_optimizer(0), gpu.group_optimizer(0));

    // One layout, one group.
    let mut layout = ParamLayout::new(4);
    layout.add("w", &[5, 3]).unwrap();
    layout.add("b", &[5]).unwrap();
    let mut gpu =
        GpuOptimizer::with_layout(&ctx, Sgd::default().lr(0.1).momentum(0.9), layout.clone())
            .unwrap();
    let mut cpu = CpuOptimizer::with_layout(
        &wgoptim::CpuContext::new(),
        Sgd::default().lr(0.1).momentum(0.9),
        layout,
    )
    .unwrap();
    for opt in [&mut gpu as &mut dyn Backend, &mut cpu] {
        opt.write_params(&vec![1.0; opt.len()]).unwrap();
    }
    gpu.write_tensor_grads("w", &[0.5; 15]).unwrap();
    cpu.write_tensor_grads("w", &[0.5; 15]).unwrap();
    for _ in 0..2 {
        gpu.step().unwrap();
        cpu.step().unwrap();
    }
    assert_eq!(cpu.read_tensor("w").unwrap(), gpu.read_tensor("w").unwrap());
    assert_eq!(cpu.read_tensor("b").unwrap(), [1.0; 5]);
}

#[test]
fn bad_groups_and_tensors_get_the_gpus_errors() {
    let Some(ctx) = common::full() else { return };
    let bad: Vec<Vec<ParamGroup>> = vec![
        vec![],
        vec![ParamGroup::new(Adam::default())],
        vec![
            ParamGroup::new(Adam::default()).tensor("a", &[2]),
            ParamGroup::new(Sgd::default()).tensor("b", &[2]),
        ],
        vec![ParamGroup::new(Adam::default().lr(-1.0)).tensor("a", &[2])],
        vec![ParamGroup::new(Adam::default()).tensor("a", &[0, 2])],
        vec![
            ParamGroup::new(Adam::default()).tensor("a", &[2]),
            ParamGroup::new(Adam::default()).tensor("a", &[3]),
        ],
    ];
    for groups in bad {
        let g = GpuOptimizer::with_groups(&ctx, groups.clone()).unwrap_err();
        let c = CpuOptimizer::with_groups(&wgoptim::CpuContext::new(), groups).unwrap_err();
        assert_eq!(g.to_string(), c.to_string());
    }
    let mut cpu = CpuOptimizer::with_groups(
        &wgoptim::CpuContext::new(),
        vec![ParamGroup::new(Adam::default()).tensor("a", &[2])],
    )
    .unwrap();
    assert!(matches!(
        cpu.write_tensor("zz", &[1.0]),
        Err(Error::UnknownTensor(_))
    ));
    assert!(matches!(
        cpu.write_tensor("a", &[1.0; 3]),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        cpu.set_group_lr(1, 0.1),
        Err(Error::UnknownGroup { .. })
    ));
    assert!(matches!(
        cpu.read_tensor_state("a", "momentum_buffer"),
        Err(Error::UnknownState { .. })
    ));
    assert_eq!(
        cpu.read_tensor("a").unwrap(),
        [0.0; 2],
        "refusals changed nothing"
    );
}

/// Runs the same gradients through both backends with `control` on, comparing after every step
/// the parameters, every state tensor in its stored form, the norm and the counters, bit for
/// bit. Returns the largest norm seen (to check that clipping was in play).
fn control_agrees(
    ctx: &wgoptim::GpuContext,
    groups: Vec<ParamGroup>,
    control: GradientControl,
    steps: usize,
    nan_at: &[usize],
) -> f32 {
    let mut gpu = GpuOptimizer::with_groups(ctx, groups.clone()).unwrap();
    let mut cpu = CpuOptimizer::with_groups(&wgoptim::CpuContext::new(), groups).unwrap();
    let n = gpu.len();
    let mut data = Data::new(n as u64 + 3);
    let p0 = data.vector(n);
    let mut largest = 0.0f32;
    for opt in [&mut gpu as &mut dyn Backend, &mut cpu] {
        opt.write_params(&p0).unwrap();
        opt.set_gradient_control(Some(control)).unwrap();
    }
    for step in 0..steps {
        let scale = control.loss_scale as f32 * if step % 2 == 0 { 40.0 } else { 0.1 };
        let mut g: Vec<f32> = data.gradients(n).iter().map(|x| x * scale).collect();
        if nan_at.contains(&step) {
            g[n / 2] = f32::NAN;
        }
        for opt in [&mut gpu as &mut dyn Backend, &mut cpu] {
            opt.write_grads(&g).unwrap();
            opt.step().unwrap();
        }
        let what = format!("step {step}");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let norm = gpu.last_grad_norm().unwrap().unwrap();
        assert_eq!(
            cpu.last_grad_norm().unwrap().map(f32::to_bits),
            Some(norm.to_bits()),
            "{what}: norm"
        );
        largest = largest.max(norm);
        assert_eq!(gpu.device_steps().unwrap(), cpu.device_steps().unwrap());
        assert_eq!(gpu.skipped_steps().unwrap(), cpu.skipped_steps().unwrap());
        assert_eq!(
            bits(&gpu.read_params().unwrap()),
            bits(cpu.params()),
            "{what}"
        );
        for g in 0..gpu.groups() {
            for slot in gpu.group_optimizer(g).unwrap().state_layout().slots {
                assert_eq!(
                    gpu.read_group_state_stored(g, slot.name).unwrap(),
                    cpu.read_group_state_stored(g, slot.name).unwrap(),
                    "{what}: group {g} {}",
                    slot.name
                );
            }
        }
    }
    assert_eq!(cpu.skipped_steps().unwrap(), nan_at.len() as u64);
    largest
}

#[test]
fn gradient_control_equals_the_gpu_bit_for_bit() {
    let Some(ctx) = common::full() else { return };
    let control = GradientControl {
        max_norm: Some(5.0),
        skip_nonfinite: true,
        loss_scale: 256.0,
    };
    let precisions = [
        Precision::default(),
        Precision {
            state: StatePrecision::int8(),
            grads: GradDType::Bf16,
            ..Default::default()
        },
        Precision {
            state: StatePrecision::bf16(),
            params: ParamDType::Bf16Master,
            ..Default::default()
        },
    ];
    for (name, optimizer) in verify::variants() {
        for precision in precisions {
            if optimizer.with_precision(precision).validate().is_err() {
                continue; // centered RMSprop keeps f32 state
            }
            let optimizer = optimizer.with_precision(precision);
            // Muon takes matrices only.
            let b: &[usize] = match optimizer {
                wgoptim::Optimizer::Muon(_) => &[7, 11],
                _ => &[77],
            };
            let groups = vec![
                ParamGroup::new(optimizer).tensor("w", &[5000, 3]),
                ParamGroup::new(optimizer.with_lr(optimizer.lr() * 0.5)).tensor("b", b),
            ];
            let largest = control_agrees(&ctx, groups, control, 6, &[2]);
            assert!(largest > 5.0, "{name}: clipping never bound ({largest})");
        }
    }
}

/// More than 256 partial sums: the norm's second stage sums them strided, as norm.wgsl does.
#[test]
fn gradient_control_equals_the_gpu_past_256_workgroups() {
    let Some(ctx) = common::full() else { return };
    let n = 256 * 16_384 + 3 * 16_384 + 7;
    let control = GradientControl {
        max_norm: Some(100.0),
        skip_nonfinite: true,
        loss_scale: 1.0,
    };
    let groups = vec![ParamGroup::new(Adam::adamw()).tensor("w", &[n])];
    control_agrees(&ctx, groups, control, 3, &[1]);
}

#[test]
fn bad_gradient_control_is_refused_alike() {
    let Some(ctx) = common::full() else { return };
    let mut gpu = GpuOptimizer::with_params(&ctx, Adam::adamw(), &[1.0; 10]).unwrap();
    let mut cpu =
        CpuOptimizer::with_params(&wgoptim::CpuContext::new(), Adam::adamw(), &[1.0; 10]).unwrap();
    for opt in [&mut gpu as &mut dyn Backend, &mut cpu] {
        for bad in [
            GradientControl {
                max_norm: Some(f64::NAN),
                ..Default::default()
            },
            GradientControl {
                max_norm: Some(-1.0),
                ..Default::default()
            },
            GradientControl {
                loss_scale: 0.0,
                ..Default::default()
            },
            GradientControl {
                loss_scale: 1e300,
                ..Default::default()
            },
        ] {
            let e = opt.set_gradient_control(Some(bad)).unwrap_err();
            assert!(matches!(e, Error::InvalidHyperparameter { .. }), "{e}");
        }
        assert!(opt.set_loss_scale(f64::INFINITY).is_err());
        assert_eq!(opt.gradient_control(), None, "a refused control was kept");
    }
}

/// A length no host can hold is a typed error, not a panic or an abort, for every state type
/// (the GPU answers the same lengths with `BufferTooLarge`).
#[test]
fn impossible_lengths_are_refused() {
    let cpu = wgoptim::CpuContext::new();
    for state in [
        StatePrecision::f32(),
        StatePrecision::bf16(),
        StatePrecision::int8(),
    ] {
        for len in [usize::MAX / 2, 1 << 62] {
            let e = CpuOptimizer::new(&cpu, Adam::adamw().state(state), len).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::HostAllocation {
                        what: "parameters",
                        ..
                    }
                ),
                "{e}"
            );
        }
    }
    let cpu2 = threads(2);
    assert_eq!(cpu2.threads(), 2);
    assert!(CpuOptimizer::new(&cpu2, Adam::adamw(), 10).is_ok());
}

/// Lion's oracle slack (`wgoptim::cpu::lion::oracle`) is earned by sign ties alone: on the
/// reference tests' data it is rare, every parameter it covers is one where the f32 twin really
/// stepped the other way at a tie, and the bound holds with it while it fails without it.
#[test]
fn lion_oracle_slack_covers_only_sign_ties() {
    let optimizer = wgoptim::Optimizer::from(wgoptim::Lion::default().lr(1e-3));
    let (n, steps) = (1_000_003usize, 100u64);
    let params = Data::new(7).vector(n);
    let mut twin = CpuOptimizer::with_params(&threads(4), optimizer, &params).unwrap();
    let mut oracle = wgoptim::cpu::Oracle::new(optimizer, &params).unwrap();
    let mut data = Data::new(8);
    for _ in 0..steps {
        let g = data.gradients(n);
        twin.write_grads(&g).unwrap();
        twin.step().unwrap();
        oracle.step(&g).unwrap();
    }
    let slack = oracle.param_slack();
    let covered = slack.iter().filter(|&&s| s > 0.0).count();
    eprintln!("{covered} of {n} parameters earned slack in {steps} steps");
    // Measured: 365 of 10⁸ element-steps lie within the bound of a tie (seed 7/8).
    assert!(
        covered > 0 && covered as u64 <= n as u64 * steps / 100_000,
        "{covered} parameters with slack"
    );
    // Every parameter the f32 twin moved off the oracle by a sign step has slack.
    let lr = 1e-3;
    for (i, (&x, &r)) in twin.params().iter().zip(oracle.params()).enumerate() {
        if (f64::from(x) - r).abs() > lr {
            assert!(slack[i] > 0.0, "element {i}: {x} vs {r} with no slack");
        }
    }
    let with =
        verify::Diff::with_slack(twin.params(), twin.params(), oracle.params(), slack, steps);
    let without = verify::Diff::of(twin.params(), twin.params(), oracle.params(), steps);
    assert!(with.tolerance_used <= 1.0, "{with:?}");
    assert!(
        without.tolerance_used > 1.0,
        "{without:?}: no tie moved a parameter"
    );
}
