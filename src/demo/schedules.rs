//! Every schedule, traced through a real optimizer: the learning rate and momentum that each
//! step's uniform carries to the kernel.

use super::Engine;
use crate::error::Result;
use crate::optim::Sgd;
use crate::schedule::{Anneal, Cyclic, CyclicMode, OneCycle, ReduceLrOnPlateau, Schedule};

/// Every schedule the crate offers, with parameters that show its shape over 100 steps.
pub fn catalog() -> Vec<(&'static str, Schedule)> {
    vec![
        (
            "StepLR(step_size=25, γ=0.5)",
            Schedule::Step {
                step_size: 25,
                gamma: 0.5,
            },
        ),
        (
            "MultiStepLR([30, 60, 80], γ=0.3)",
            Schedule::MultiStep {
                milestones: vec![30, 60, 80],
                gamma: 0.3,
            },
        ),
        (
            "ExponentialLR(γ=0.97)",
            Schedule::Exponential { gamma: 0.97 },
        ),
        (
            "PolynomialLR(T=80, p=2)",
            Schedule::Polynomial {
                total_iters: 80,
                power: 2.0,
            },
        ),
        (
            "LinearLR(1/3 → 1, T=40)",
            Schedule::Linear {
                start_factor: 1.0 / 3.0,
                end_factor: 1.0,
                total_iters: 40,
            },
        ),
        (
            "ConstantLR(f=1/3, T=30)",
            Schedule::ConstantFactor {
                factor: 1.0 / 3.0,
                total_iters: 30,
            },
        ),
        (
            "CosineAnnealingLR(T_max=100)",
            Schedule::Cosine {
                t_max: 100,
                eta_min: 0.0,
            },
        ),
        (
            "WarmRestarts(T_0=10, T_mult=2)",
            Schedule::CosineWarmRestarts {
                t_0: 10,
                t_mult: 2,
                eta_min: 0.0,
            },
        ),
        (
            "warm-up 10 + cosine",
            Schedule::warmup(10, Schedule::cosine(90)),
        ),
        (
            "Sequential(constant, exp)",
            Schedule::Sequential {
                schedules: vec![
                    Schedule::ConstantFactor {
                        factor: 0.5,
                        total_iters: 1000,
                    },
                    Schedule::Exponential { gamma: 0.95 },
                ],
                milestones: vec![40],
            },
        ),
        (
            "OneCycleLR(cos)",
            Schedule::OneCycle(OneCycle::new(0.1, 100)),
        ),
        (
            "OneCycleLR(linear, 3 phases)",
            Schedule::OneCycle(OneCycle {
                anneal_strategy: Anneal::Linear,
                three_phase: true,
                ..OneCycle::new(0.1, 100)
            }),
        ),
        (
            "CyclicLR(triangular2)",
            Schedule::Cyclic(Cyclic {
                step_size_up: 10,
                mode: CyclicMode::Triangular2,
                ..Cyclic::new(0.01, 0.1)
            }),
        ),
        (
            "CyclicLR(exp_range, γ=0.98)",
            Schedule::Cyclic(Cyclic {
                step_size_up: 8,
                step_size_down: Some(12),
                mode: CyclicMode::ExpRange { gamma: 0.98 },
                ..Cyclic::new(0.01, 0.1)
            }),
        ),
    ]
}

/// One traced step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Traced {
    /// The learning rate in the step's uniform.
    pub lr: f64,
    /// The momentum in it (SGD's μ).
    pub momentum: f64,
}

/// Runs `steps` steps of an SGD-momentum optimizer on `engine` under `schedule` (base lr
/// `base`), recording what each step's uniform carries.
pub fn trace(
    engine: &dyn Engine,
    schedule: &Schedule,
    base: f64,
    steps: u64,
) -> Result<Vec<Traced>> {
    let sgd = Sgd::default().lr(base).momentum(0.9);
    let mut opt = engine.with_params(sgd.into(), &[0.0; 4])?;
    opt.set_schedule(Some(schedule.clone()))?;
    let mut out = Vec::new();
    for _ in 0..steps {
        let u = opt.next_uniform()?;
        out.push(Traced {
            lr: f64::from(u.lr),
            momentum: f64::from(u.momentum),
        });
        opt.step()?;
    }
    Ok(out)
}

/// A loss that falls, then flattens with a little noise: what ReduceLROnPlateau is shown
/// with (one value per epoch).
pub fn stalled_loss(epochs: usize) -> Vec<f64> {
    (1..=epochs)
        .map(|e| 1.0 / (1.0 + e as f64).sqrt().min(4.0) + 0.01 * ((e * 7919 % 13) as f64 / 13.0))
        .collect()
}

/// ReduceLROnPlateau fed [`stalled_loss`], for the picture: (lr per epoch).
pub fn plateau_trace(base: f64, epochs: usize) -> Result<Vec<f64>> {
    let mut p = ReduceLrOnPlateau::new(base)
        .patience(5)
        .factor(0.5)
        .cooldown(3);
    let mut lrs = vec![p.lr()];
    for loss in stalled_loss(epochs.saturating_sub(1)) {
        lrs.push(p.step(loss)?);
    }
    Ok(lrs)
}
