//! The CPU backend behind the GPU optimizer's constructors: threaded steps equal the sequential
//! f32 twin bit for bit for every variant and thread count; layouts and parameter groups give
//! the GPU's results tensor by tensor; the same bad groups get the same errors.

mod common;

use wgoptim::cpu::twin_step;
use wgoptim::verify::{self, Data};
use wgoptim::{
    Adam, Backend, CpuOptimizer, DeviceStep, Error, GpuOptimizer, ParamGroup, ParamLayout, Sgd,
};

/// Not multiples of the vector width or of the 32,768-element task.
const SIZES: [usize; 4] = [1, 7, 32_768 + 5, 100_003];

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
            let mut one = CpuOptimizer::with_params(optimizer, &p0)
                .unwrap()
                .with_threads(1)
                .unwrap();
            let mut two = CpuOptimizer::with_params(optimizer, &p0)
                .unwrap()
                .with_threads(2)
                .unwrap();
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
    let mut cpu = CpuOptimizer::with_groups(groups()).unwrap();
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
    let mut cpu = CpuOptimizer::with_layout(Sgd::default().lr(0.1).momentum(0.9), layout).unwrap();
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
        let c = CpuOptimizer::with_groups(groups).unwrap_err();
        assert_eq!(g.to_string(), c.to_string());
    }
    let mut cpu =
        CpuOptimizer::with_groups(vec![ParamGroup::new(Adam::default()).tensor("a", &[2])])
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
