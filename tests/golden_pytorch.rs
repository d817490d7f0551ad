//! Golden values from PyTorch: parameters after each of 5 steps on fixed data (10 for RAdam,
//! which rectifies from step 6 in its cases, and for ASGD, whose average starts at step 4 in
//! one case; ASGD's average `ax` too), for every family. Generated into
//! `tests/golden/pytorch_optim.rs` by `tests/golden/pytorch_optim.py` (torch 2.15.0, CPU,
//! foreach=False); each constant sits under the exact constructor call that produced it.
//! Lion, which torch.optim lacks, is checked against `tests/golden/lion_reference.rs`, written
//! by `tests/golden/lion_reference.py` from the paper's Algorithm 2 in torch's f32 operations,
//! and LAMB against `tests/golden/lamb_reference.rs` (`tests/golden/lamb_reference.py`: apex's
//! FusedLAMB in torch's f32 operations). Adafactor, whose state follows the tensors' shapes, has
//! goldens of its own over a model of matrices (`tests/golden/pytorch_adafactor.py`).
//!
//! Tolerance: PyTorch's single-tensor path rounds differently in places (it computes m with
//! `lerp`, and some scalars in f64 before one f32 rounding), so results agree to a few f32 ULP
//! of the update, not bit for bit: |gpu − torch| ≤ 1e-6, or ≤ 1e-6·max(|gpu|, |torch|)
//! (`approx::relative_eq!`; measured differences are ≤ 1 f32 ULP; the parameters are
//! O(1) and move by 1e-3–1e-1 per step; one f32 ULP of 2.0 is 2.4e-7).

mod common;

use wgoptim::{
    Adadelta, Adafactor, Adagrad, Adam, Adamax, Asgd, Backend, CpuContext, CpuOptimizer,
    GpuOptimizer, Lamb, Lion, NAdam, Optimizer, RAdam, RmsProp, Rprop, Sgd,
};

include!("golden/pytorch_optim.rs");

mod lion_reference {
    include!("golden/lion_reference.rs");
}

mod lamb_reference {
    include!("golden/lamb_reference.rs");
}

fn check(optimizer: impl Into<Optimizer>, golden: &[[f32; 7]]) {
    check_with_state(optimizer, golden, None);
}

/// [`check`], and state tensor `name` against `state` after every step.
fn check_with_state(
    optimizer: impl Into<Optimizer>,
    golden: &[[f32; 7]],
    state: Option<(&str, &[[f32; 7]])>,
) {
    let Some(ctx) = common::full() else { return };
    let optimizer = optimizer.into();
    let mut opt = GpuOptimizer::with_params(&ctx, optimizer, &PARAMS).unwrap();
    for (t, (grads, expected)) in GRADS.iter().cycle().zip(golden).enumerate() {
        opt.write_grads(grads).unwrap();
        opt.step().unwrap();
        let mut compare = vec![("parameters", opt.read_params().unwrap(), expected)];
        if let Some((name, rows)) = state {
            compare.push((name, opt.read_state(name).unwrap(), &rows[t]));
        }
        for (what, got, expected) in compare {
            for (i, (&g, &e)) in got.iter().zip(expected).enumerate() {
                assert!(
                    approx::relative_eq!(g, e, epsilon = 1e-6, max_relative = 1e-6),
                    "{} {what}: step {} element {i}: gpu {g:e} vs torch {e:e} (diff {:e})",
                    optimizer.name(),
                    t + 1,
                    (g - e).abs()
                );
            }
        }
    }
}

#[test]
fn sgd_momentum_dampening() {
    check(
        Sgd::default()
            .lr(0.1)
            .momentum(0.9)
            .dampening(0.1)
            .weight_decay(0.01),
        &SGD_MOMENTUM_DAMPENING,
    );
}

#[test]
fn sgd_nesterov_maximize() {
    check(
        Sgd::default()
            .lr(0.1)
            .momentum(0.9)
            .nesterov(true)
            .maximize(true),
        &SGD_NESTEROV_MAXIMIZE,
    );
}

#[test]
fn rmsprop_centered_momentum() {
    let o = RmsProp::default()
        .lr(0.01)
        .alpha(0.9)
        .centered(true)
        .momentum(0.5)
        .weight_decay(0.1);
    check(o, &RMSPROP_CENTERED_MOMENTUM);
}

#[test]
fn rmsprop_plain() {
    check(RmsProp::default().lr(0.01), &RMSPROP_PLAIN);
}

#[test]
fn adam_l2_amsgrad() {
    check(
        Adam::default().lr(0.01).weight_decay(0.1).amsgrad(true),
        &ADAM_L2_AMSGRAD,
    );
}

#[test]
fn adam_maximize() {
    check(Adam::default().lr(0.05).maximize(true), &ADAM_MAXIMIZE);
}

#[test]
fn adamw() {
    check(
        Adam::adamw().lr(0.01).betas((0.8, 0.99)).weight_decay(0.1),
        &ADAMW,
    );
}

#[test]
fn adagrad_decay_maximize() {
    let o = Adagrad::default()
        .lr(0.1)
        .lr_decay(0.01)
        .initial_accumulator_value(0.1)
        .weight_decay(0.1)
        .maximize(true);
    check(o, &ADAGRAD_DECAY_MAXIMIZE);
}

#[test]
fn adamax_l2() {
    check(
        Adamax::default()
            .lr(0.05)
            .betas((0.8, 0.99))
            .weight_decay(0.1),
        &ADAMAX_L2,
    );
}

#[test]
fn adamax_maximize() {
    check(
        Adamax::default().lr(0.02).eps(1e-3).maximize(true),
        &ADAMAX_MAXIMIZE,
    );
}

#[test]
fn radam_l2() {
    check(
        RAdam::default()
            .lr(0.05)
            .betas((0.8, 0.9))
            .weight_decay(0.1),
        &RADAM_L2,
    );
}

#[test]
fn radam_decoupled_maximize() {
    check(
        RAdam::default()
            .lr(0.05)
            .betas((0.9, 0.9))
            .weight_decay(0.1)
            .decoupled_weight_decay(true)
            .maximize(true),
        &RADAM_DECOUPLED_MAXIMIZE,
    );
}

#[test]
fn adadelta_l2() {
    check(
        Adadelta::default()
            .lr(0.5)
            .rho(0.8)
            .eps(1e-4)
            .weight_decay(0.1),
        &ADADELTA_L2,
    );
}

#[test]
fn adadelta_maximize() {
    check(Adadelta::default().maximize(true), &ADADELTA_MAXIMIZE);
}

#[test]
fn nadam_l2() {
    check(
        NAdam::default()
            .lr(0.05)
            .betas((0.8, 0.99))
            .weight_decay(0.1)
            .momentum_decay(0.01),
        &NADAM_L2,
    );
}

#[test]
fn nadam_decoupled_maximize() {
    check(
        NAdam::default()
            .lr(0.05)
            .weight_decay(0.1)
            .decoupled_weight_decay(true)
            .maximize(true),
        &NADAM_DECOUPLED_MAXIMIZE,
    );
}

#[test]
fn rprop_bounds() {
    check(
        Rprop::default()
            .lr(0.05)
            .etas((0.4, 1.5))
            .step_sizes((0.01, 0.1)),
        &RPROP_BOUNDS,
    );
}

#[test]
fn rprop_maximize() {
    check(Rprop::default().lr(0.01).maximize(true), &RPROP_MAXIMIZE);
}

#[test]
fn asgd_averaging() {
    let o = Asgd::default()
        .lr(0.05)
        .lambd(0.01)
        .alpha(0.5)
        .t0(2.0)
        .weight_decay(0.1);
    check_with_state(o, &ASGD_AVERAGING, Some(("ax", &ASGD_AVERAGING_AX)));
}

#[test]
fn asgd_maximize() {
    let o = Asgd::default().lr(0.1).maximize(true);
    check_with_state(o, &ASGD_MAXIMIZE, Some(("ax", &ASGD_MAXIMIZE_AX)));
}

#[test]
fn lion() {
    check(
        Lion::default().lr(0.05).betas((0.9, 0.99)),
        &lion_reference::LION,
    );
}

#[test]
fn lion_decay_maximize() {
    check(
        Lion::default()
            .lr(0.05)
            .betas((0.95, 0.98))
            .weight_decay(0.1)
            .maximize(true),
        &lion_reference::LION_DECAY_MAXIMIZE,
    );
}

#[test]
fn lamb() {
    check(
        Lamb::default().lr(0.05).weight_decay(0.1),
        &lamb_reference::LAMB,
    );
}

#[test]
fn lamb_no_decay() {
    check(
        Lamb::default()
            .lr(0.05)
            .betas((0.8, 0.99))
            .weight_decay(0.0),
        &lamb_reference::LAMB_NO_DECAY,
    );
}

#[test]
fn lamb_nvlamb_maximize() {
    check(
        Lamb::default()
            .lr(0.05)
            .weight_decay(0.0)
            .use_nvlamb(true)
            .maximize(true),
        &lamb_reference::LAMB_NVLAMB_MAXIMIZE,
    );
}

mod adafactor_golden {
    include!("golden/pytorch_adafactor.rs");
}

/// Adafactor over matrices (one batched), a vector and a scalar, against torch.optim.Adafactor
/// (`tests/golden/pytorch_adafactor.py`): the parameters and the row, column and full averages
/// after each of 8 steps, on both backends. Same tolerance as above: torch takes its norms and
/// means in its own summation order and its α and RMS(u) in f64.
fn check_adafactor(optimizer: Adafactor, golden: &[[f32; 51]], state: &[[f32; 35]]) {
    use adafactor_golden::{GRADS, PARAMS, SHAPES};
    let Some(ctx) = common::full() else { return };
    let mut layout = wgoptim::ParamLayout::for_limits(&ctx.limits());
    for (name, shape) in SHAPES {
        layout.add(name, shape).unwrap();
    }
    // The goldens' tensors one after another, scattered into the layout (gaps zero).
    let split = |flat: &[f32]| -> Vec<Vec<f32>> {
        let mut at = 0;
        layout
            .tensors()
            .iter()
            .map(|t| {
                at += t.len;
                flat[at - t.len..at].to_vec()
            })
            .collect()
    };
    let pack = |flat: &[f32]| {
        let parts = split(flat);
        layout
            .pack(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
            .unwrap()
    };
    let gpu = GpuOptimizer::with_layout(&ctx, optimizer, layout.clone()).unwrap();
    let cpu = CpuOptimizer::with_layout(&CpuContext::new(), optimizer, layout.clone()).unwrap();
    for (which, mut opt) in [
        ("gpu", Box::new(gpu) as Box<dyn Backend>),
        ("cpu", Box::new(cpu)),
    ] {
        opt.write_params(&pack(&PARAMS)).unwrap();
        for (t, grads) in GRADS.iter().enumerate() {
            opt.write_grads(&pack(grads)).unwrap();
            opt.step().unwrap();
            let params: Vec<f32> = layout
                .tensors()
                .iter()
                .flat_map(|v| opt.read_tensor(&v.name).unwrap())
                .collect();
            let compare = [
                ("parameters", params, &golden[t][..]),
                (
                    "variance",
                    opt.read_state("variance").unwrap(),
                    &state[t][..],
                ),
            ];
            for (what, got, expected) in compare {
                assert_eq!(got.len(), expected.len());
                for (i, (&g, &e)) in got.iter().zip(expected).enumerate() {
                    assert!(
                        approx::relative_eq!(g, e, epsilon = 1e-6, max_relative = 1e-6),
                        "adafactor {which} {what}: step {} element {i}: {g:e} vs torch {e:e}",
                        t + 1,
                    );
                }
            }
        }
    }
}

#[test]
fn adafactor_default() {
    check_adafactor(
        Adafactor::default(),
        &adafactor_golden::ADAFACTOR_DEFAULT,
        &adafactor_golden::ADAFACTOR_DEFAULT_VARIANCE,
    );
}

#[test]
fn adafactor_decay_maximize() {
    check_adafactor(
        Adafactor::default()
            .lr(0.05)
            .beta2_decay(-0.5)
            .eps((Some(1e-20), 1e-2))
            .d(2.0)
            .weight_decay(0.1)
            .maximize(true),
        &adafactor_golden::ADAFACTOR_DECAY_MAXIMIZE,
        &adafactor_golden::ADAFACTOR_DECAY_MAXIMIZE_VARIANCE,
    );
}

mod muon_golden {
    include!("golden/muon_reference.rs");
}

/// Muon over a wide, a tall and a square matrix against torch.optim.Muon
/// (`tests/golden/muon_reference.py`), on both backends, after each of 6 steps:
/// - the momentum buffers, within the tolerance above (the same lerps);
/// - the parameters against torch's rule with its iteration in float32 (`NAME_F32`), within
///   the tolerance above: the products sum in another order (torch's blocked GEMM), and five
///   steps of the quintic iteration amplify that to a few f32 ULP;
/// - the parameters against torch.optim.Muon itself (`NAME`), whose iteration runs in
///   bfloat16: within 2e-3 of each O(1) parameter after 6 steps of 0.01–0.03 (bf16 keeps 8
///   bits: its X is within about 1 % of the f32 one).
fn check_muon(
    optimizer: wgoptim::Muon,
    torch: &[[f32; 70]],
    f32_rule: &[[f32; 70]],
    momentum: &[[f32; 70]],
) {
    use muon_golden::{GRADS, PARAMS, SHAPES};
    let Some(ctx) = common::full() else { return };
    let mut layout = wgoptim::ParamLayout::for_limits(&ctx.limits());
    for (name, shape) in SHAPES {
        layout.add(name, shape).unwrap();
    }
    let parts = |flat: &[f32]| -> Vec<f32> {
        let mut at = 0;
        let parts: Vec<Vec<f32>> = layout
            .tensors()
            .iter()
            .map(|t| {
                at += t.len;
                flat[at - t.len..at].to_vec()
            })
            .collect();
        layout
            .pack(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
            .unwrap()
    };
    let gpu = GpuOptimizer::with_layout(&ctx, optimizer, layout.clone()).unwrap();
    let cpu = CpuOptimizer::with_layout(&CpuContext::new(), optimizer, layout.clone()).unwrap();
    let close = |g: f32, e: f32| approx::relative_eq!(g, e, epsilon = 1e-6, max_relative = 1e-6);
    let (mut worst_f32, mut worst_bf16) = (0.0f32, 0.0f32);
    for (which, mut opt) in [
        ("gpu", Box::new(gpu) as Box<dyn Backend>),
        ("cpu", Box::new(cpu)),
    ] {
        opt.write_params(&parts(&PARAMS)).unwrap();
        for (t, grads) in GRADS.iter().enumerate() {
            opt.write_grads(&parts(grads)).unwrap();
            opt.step().unwrap();
            let read = |state: Option<&str>| -> Vec<f32> {
                layout
                    .tensors()
                    .iter()
                    .flat_map(|v| match state {
                        Some(s) => opt.read_tensor_state(&v.name, s).unwrap(),
                        None => opt.read_tensor(&v.name).unwrap(),
                    })
                    .collect()
            };
            let (params, buf) = (read(None), read(Some("momentum_buffer")));
            for (i, &g) in params.iter().enumerate() {
                let (e, b) = (f32_rule[t][i], torch[t][i]);
                assert!(
                    close(g, e),
                    "muon {which}: step {} element {i}: {g:e} vs torch (f32 iteration) {e:e}",
                    t + 1
                );
                assert!(
                    (g - b).abs() <= 2e-3,
                    "muon {which}: step {} element {i}: {g:e} vs torch (bf16) {b:e}",
                    t + 1
                );
                worst_f32 = worst_f32.max((g - e).abs());
                worst_bf16 = worst_bf16.max((g - b).abs());
            }
            for (i, (&g, &e)) in buf.iter().zip(&momentum[t]).enumerate() {
                assert!(
                    close(g, e),
                    "muon {which} momentum: step {} element {i}",
                    t + 1
                );
            }
        }
    }
    println!(
        "largest |wgoptim - torch|: f32 iteration {worst_f32:e}, bf16 iteration {worst_bf16:e}"
    );
}

#[test]
fn muon_nesterov_default() {
    use muon_golden::*;
    check_muon(
        wgoptim::Muon::default().lr(0.02),
        &MUON,
        &MUON_F32,
        &MUON_MOMENTUM,
    );
}

#[test]
fn muon_plain_unclamped() {
    use muon_golden::*;
    check_muon(
        wgoptim::Muon::default()
            .lr(0.02)
            .nesterov(false)
            .weight_decay(0.0)
            .ns_steps(4)
            .adjust_lr_fn(wgoptim::AdjustLr::SpectralUnclamped),
        &MUON_PLAIN_UNCLAMPED,
        &MUON_PLAIN_UNCLAMPED_F32,
        &MUON_PLAIN_UNCLAMPED_MOMENTUM,
    );
}

#[test]
fn muon_match_rms_adamw() {
    use muon_golden::*;
    check_muon(
        wgoptim::Muon::default()
            .lr(0.01)
            .momentum(0.9)
            .weight_decay(0.05)
            .eps(1e-5)
            .ns_coefficients((2.0, -1.5, 0.5))
            .adjust_lr_fn(wgoptim::AdjustLr::MatchRmsAdamw),
        &MUON_RMS,
        &MUON_RMS_F32,
        &MUON_RMS_MOMENTUM,
    );
}
