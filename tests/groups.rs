//! Parameter groups: each group's tensors are stepped with its own hyperparameters (one pass
//! per group), exactly as an f32 twin over that group alone; the weight-decay mask; schedules
//! per group base lr; and bad groups refused.

mod common;

use wgoptim::schedule::Schedule;
use wgoptim::verify::Data;
use wgoptim::{
    Adam, Backend, CpuOptimizer, Error, GpuOptimizer, Optimizer, ParamGroup, RmsProp, Sgd,
};

const MODEL: [(&str, &[usize]); 5] = [
    ("fc1.weight", &[33, 17]),
    ("fc1.bias", &[33]),
    ("norm.weight", &[33]),
    ("fc2.weight", &[5, 33]),
    ("fc2.bias", &[5]),
];

/// Runs `steps` steps on the GPU and, for every group, a twin over that group's tensors alone
/// (concatenated, no gaps); each tensor must match its twin bit for bit.
fn check_against_group_twins(groups: Vec<ParamGroup>, schedule: Option<Schedule>, steps: usize) {
    let Some(ctx) = common::small() else { return };
    let mut gpu = GpuOptimizer::with_groups(&ctx, groups.clone()).unwrap();
    assert_eq!(gpu.groups(), groups.len());
    gpu.set_schedule(schedule.clone()).unwrap();
    let mut data = Data::new(21);
    let mut twins = Vec::new();
    for group in &groups {
        let mut p_all = Vec::new();
        for (name, _) in &group.tensors {
            let len = gpu.view(name).unwrap().len;
            let p = data.vector(len);
            gpu.write_tensor(name, &p).unwrap();
            p_all.extend(p);
        }
        let mut twin =
            CpuOptimizer::with_params(&wgoptim::CpuContext::new(), group.optimizer, &p_all)
                .unwrap();
        twin.set_schedule(schedule.clone()).unwrap();
        twins.push(twin);
    }
    for _ in 0..steps {
        for (group, twin) in groups.iter().zip(&mut twins) {
            let mut g_all = Vec::new();
            for (name, _) in &group.tensors {
                let len = gpu.view(name).unwrap().len;
                let g = data.gradients(len);
                gpu.write_tensor_grads(name, &g).unwrap();
                g_all.extend(g);
            }
            twin.write_grads(&g_all).unwrap();
            twin.step().unwrap();
        }
        gpu.step().unwrap();
    }
    for (group, twin) in groups.iter().zip(&twins) {
        let mut at = 0;
        for (name, _) in &group.tensors {
            let got = gpu.read_tensor(name).unwrap();
            assert_eq!(got, &twin.params()[at..at + got.len()], "{name}");
            at += got.len();
        }
    }
}

#[test]
fn weight_decay_mask_spares_biases_and_norms() {
    let groups =
        ParamGroup::split_weight_decay(Adam::adamw().lr(0.01).weight_decay(0.1), &MODEL, |name| {
            name.ends_with(".bias") || name.starts_with("norm")
        });
    assert_eq!(groups.len(), 2);
    assert!(matches!(groups[1].optimizer, Optimizer::Adam(a) if a.weight_decay == 0.0));
    assert_eq!(groups[1].tensors.len(), 3);
    check_against_group_twins(groups, None, 5);
}

#[test]
fn groups_with_their_own_variants_and_learning_rates() {
    let groups = vec![
        ParamGroup::new(Adam::default().lr(0.02).amsgrad(true))
            .tensor("a", &[300])
            .tensor("b", &[7, 7]),
        ParamGroup::new(Adam::default().lr(0.001).betas((0.8, 0.9))).tensor("c", &[1]),
        ParamGroup::new(Adam::adamw().lr(0.005)).tensor("d", &[1000]),
    ];
    check_against_group_twins(groups, None, 4);
    let sgd = vec![
        ParamGroup::new(Sgd::default().lr(0.1).momentum(0.9).nesterov(true)).tensor("w", &[65]),
        ParamGroup::new(Sgd::default().lr(0.3)).tensor("b", &[3]),
    ];
    check_against_group_twins(sgd, None, 3);
}

#[test]
fn one_schedule_runs_from_each_groups_base_lr() {
    let groups = vec![
        ParamGroup::new(RmsProp::default().lr(0.01).momentum(0.5)).tensor("w", &[200]),
        ParamGroup::new(RmsProp::default().lr(0.001).momentum(0.5)).tensor("b", &[20]),
    ];
    let schedule = Schedule::warmup(
        2,
        Schedule::Cosine {
            t_max: 5,
            eta_min: 1e-4,
        },
    );
    check_against_group_twins(groups.clone(), Some(schedule.clone()), 7);
    let Some(ctx) = common::full() else { return };
    let mut gpu = GpuOptimizer::with_groups(&ctx, groups).unwrap();
    gpu.set_schedule(Some(schedule)).unwrap();
    gpu.set_group_lr(1, 0.002).unwrap();
    assert!(matches!(
        gpu.set_group_lr(2, 0.1),
        Err(Error::UnknownGroup {
            group: 2,
            groups: 2
        })
    ));
    assert!(gpu.set_group_lr(0, f64::NAN).is_err());
}

#[test]
fn flat_state_is_laid_out_group_by_group() {
    let Some(ctx) = common::full() else { return };
    let groups = vec![
        ParamGroup::new(Sgd::default().momentum(0.9)).tensor("w", &[10]),
        ParamGroup::new(Sgd::default().momentum(0.5)).tensor("b", &[3]),
    ];
    let mut gpu = GpuOptimizer::with_groups(&ctx, groups).unwrap();
    let (r0, r1) = (gpu.group_range(0).unwrap(), gpu.group_range(1).unwrap());
    let align = ctx.limits().min_storage_buffer_offset_alignment as usize;
    assert_eq!(r1.start * 4 % align, 0, "groups start at bindable offsets");
    gpu.write_grads(&vec![1.0; gpu.len()]).unwrap();
    gpu.step().unwrap();
    let buf = gpu.read_state("momentum_buffer").unwrap();
    assert!(buf[r0.clone()].iter().all(|&b| b == 1.0) && buf[r1.clone()].iter().all(|&b| b == 1.0));
    assert!(buf[r0.end..r1.start].iter().all(|&b| b == 0.0));
    assert_eq!(
        gpu.read_tensor_state("b", "momentum_buffer").unwrap(),
        [1.0; 3]
    );
}

#[test]
fn bad_groups_are_refused() {
    let Some(ctx) = common::full() else { return };
    let mixed = vec![
        ParamGroup::new(Adam::default()).tensor("a", &[4]),
        ParamGroup::new(Sgd::default()).tensor("b", &[4]),
    ];
    assert!(matches!(
        GpuOptimizer::with_groups(&ctx, mixed),
        Err(Error::MixedFamilies {
            first: "adam",
            other: "sgd"
        })
    ));
    assert!(matches!(
        GpuOptimizer::with_groups(&ctx, vec![]),
        Err(Error::Empty)
    ));
    let empty = vec![
        ParamGroup::new(Adam::default()).tensor("a", &[4]),
        ParamGroup::new(Adam::default()),
    ];
    assert!(matches!(
        GpuOptimizer::with_groups(&ctx, empty),
        Err(Error::Empty)
    ));
    let twice = vec![
        ParamGroup::new(Adam::default()).tensor("a", &[4]),
        ParamGroup::new(Adam::default()).tensor("a", &[2]),
    ];
    assert!(matches!(
        GpuOptimizer::with_groups(&ctx, twice),
        Err(Error::DuplicateTensor(_))
    ));
    let bad = vec![ParamGroup::new(Adam::default().betas((1.0, 0.9))).tensor("a", &[4])];
    assert!(matches!(
        GpuOptimizer::with_groups(&ctx, bad),
        Err(Error::InvalidHyperparameter {
            name: "betas.0",
            ..
        })
    ));
    // A schedule one group cannot take leaves every group as it was.
    let groups = vec![
        ParamGroup::new(Sgd::default().momentum(0.9)).tensor("a", &[4]),
        ParamGroup::new(Sgd::default()).tensor("b", &[4]),
    ];
    let mut gpu = GpuOptimizer::with_groups(&ctx, groups).unwrap();
    let cycle = Schedule::OneCycle(wgoptim::schedule::OneCycle::new(0.1, 10));
    assert!(matches!(
        gpu.set_schedule(Some(cycle)),
        Err(Error::NoMomentumToCycle { .. })
    ));
    assert_eq!(gpu.lr().unwrap(), 1e-3);
}
