//! Schedules: closed forms at every boundary, bad parameters, the LR finder in a training loop,
//! and schedules driving optimizers (lr and cycled momentum in each step's uniform, nothing
//! rebuilt, an error past the end that changes nothing).

mod common;

use std::f64::consts::PI;

use wgoptim::schedule::{Cyclic, LrFinder, OneCycle, ReduceLrOnPlateau, Schedule};
use wgoptim::verify::Data;
use wgoptim::{Adagrad, Adam, Backend, CpuOptimizer, Error, GpuContext, GpuOptimizer, Oracle, Sgd};

const B: f64 = 0.2;

fn lr(s: &Schedule, e: u64) -> f64 {
    s.lr(B, e).unwrap()
}

fn eq(a: f64, b: f64) {
    assert!((a - b).abs() <= 1e-12 * b.abs().max(1e-300), "{a} != {b}");
}

#[test]
fn closed_forms_at_their_boundaries() {
    let s = Schedule::step(10);
    for (e, k) in [
        (0, 0),
        (9, 0),
        (10, 1),
        (11, 1),
        (19, 1),
        (20, 2),
        (1000, 100),
    ] {
        eq(lr(&s, e), B * 0.1f64.powi(k));
    }
    let s = Schedule::MultiStep {
        milestones: vec![5, 5, 9],
        gamma: 0.5,
    };
    for (e, k) in [(4, 0), (5, 2), (8, 2), (9, 3), (100, 3)] {
        eq(lr(&s, e), B * 0.5f64.powi(k));
    }
    let s = Schedule::Polynomial {
        total_iters: 4,
        power: 2.0,
    };
    for (e, f) in [(0, 1.0), (1, 0.5625), (3, 0.0625), (4, 0.0), (9, 0.0)] {
        eq(lr(&s, e) + 1.0, B * f + 1.0);
    }
    let s = Schedule::Linear {
        start_factor: 0.25,
        end_factor: 1.0,
        total_iters: 3,
    };
    for (e, f) in [(0, 0.25), (1, 0.5), (3, 1.0), (7, 1.0)] {
        eq(lr(&s, e), B * f);
    }
    let s = Schedule::ConstantFactor {
        factor: 0.5,
        total_iters: 3,
    };
    for (e, f) in [(0, 0.5), (2, 0.5), (3, 1.0), (4, 1.0)] {
        eq(lr(&s, e), B * f);
    }
    let s = Schedule::Cosine {
        t_max: 8,
        eta_min: 0.01,
    };
    for e in [0u64, 4, 8, 12, 16, 17] {
        eq(
            lr(&s, e),
            0.01 + (B - 0.01) * (1.0 + (PI * e as f64 / 8.0).cos()) / 2.0,
        );
    }
    // T_0 = 2, T_mult = 3: cycles [0, 2), [2, 8), [8, 26).
    let s = Schedule::CosineWarmRestarts {
        t_0: 2,
        t_mult: 3,
        eta_min: 0.0,
    };
    for (e, t_cur, t_i) in [
        (0, 0, 2),
        (1, 1, 2),
        (2, 0, 6),
        (7, 5, 6),
        (8, 0, 18),
        (25, 17, 18),
        (26, 0, 54),
    ] {
        eq(
            lr(&s, e) + 1.0,
            B * (1.0 + (PI * t_cur as f64 / t_i as f64).cos()) / 2.0 + 1.0,
        );
    }
    let s = Schedule::warmup(4, Schedule::Exponential { gamma: 0.5 });
    for (e, want) in [
        (0, 0.0),
        (1, B / 4.0),
        (3, 0.75 * B),
        (4, B),
        (5, B / 2.0),
        (6, B / 4.0),
    ] {
        eq(lr(&s, e) + 1.0, want + 1.0);
    }
}

#[test]
fn onecycle_ends_and_refuses_to_go_past() {
    let o = OneCycle::new(1.0, 10); // phases end at 2.0 and 9.0
    let s = Schedule::OneCycle(o);
    eq(lr(&s, 0), 1.0 / 25.0);
    eq(lr(&s, 2), 1.0);
    eq(s.momentum(2).unwrap().unwrap(), 0.85);
    eq(lr(&s, 9), 1.0 / 25.0 / 1e4);
    eq(s.momentum(9).unwrap().unwrap(), 0.95);
    assert!(
        lr(&s, 10).is_finite(),
        "PyTorch allows stepping to total_steps itself"
    );
    assert!(matches!(
        s.lr(B, 11),
        Err(Error::ScheduleFinished {
            step: 11,
            total_steps: 10
        })
    ));
    assert!(matches!(
        s.momentum(11),
        Err(Error::ScheduleFinished { .. })
    ));
}

#[test]
fn cyclic_peaks_and_troughs() {
    let c = Cyclic {
        step_size_up: 3,
        step_size_down: Some(5),
        ..Cyclic::new(0.1, 0.5)
    };
    let s = Schedule::Cyclic(c);
    for (e, want, m) in [
        (0, 0.1, 0.9),
        (3, 0.5, 0.8),
        (8, 0.1, 0.9),
        (11, 0.5, 0.8),
        (7, 0.1 + 0.4 / 5.0, 0.9 - 0.1 / 5.0),
    ] {
        eq(lr(&s, e), want);
        eq(s.momentum(e).unwrap().unwrap(), m);
    }
}

fn invalid(s: Schedule, name: &str) {
    match s.validate() {
        Err(Error::InvalidHyperparameter { name: n, .. }) => assert_eq!(n, name, "{s:?}"),
        other => panic!("{s:?}: expected {name} to be refused, got {other:?}"),
    }
    // An optimizer refuses it too, and keeps the schedule it had.
    let mut opt = CpuOptimizer::with_params(
        &wgoptim::CpuContext::new(),
        Sgd::default().momentum(0.9),
        &[1.0],
    )
    .unwrap();
    assert!(opt.set_schedule(Some(s)).is_err());
    assert_eq!(opt.lr().unwrap(), 1e-3);
}

#[test]
fn bad_parameters_are_refused() {
    invalid(
        Schedule::Cosine {
            t_max: 0,
            eta_min: 0.0,
        },
        "T_max",
    );
    invalid(
        Schedule::Cosine {
            t_max: 5,
            eta_min: f64::NAN,
        },
        "eta_min",
    );
    invalid(
        Schedule::MultiStep {
            milestones: vec![5, 3],
            gamma: 0.1,
        },
        "milestones",
    );
    invalid(
        Schedule::Step {
            step_size: 0,
            gamma: 0.1,
        },
        "step_size",
    );
    invalid(Schedule::Exponential { gamma: -0.5 }, "gamma");
    invalid(
        Schedule::Exponential {
            gamma: f64::INFINITY,
        },
        "gamma",
    );
    invalid(
        Schedule::CosineWarmRestarts {
            t_0: 0,
            t_mult: 1,
            eta_min: 0.0,
        },
        "T_0",
    );
    invalid(
        Schedule::CosineWarmRestarts {
            t_0: 3,
            t_mult: 0,
            eta_min: 0.0,
        },
        "T_mult",
    );
    invalid(
        Schedule::Linear {
            start_factor: 0.0,
            end_factor: 1.0,
            total_iters: 5,
        },
        "start_factor",
    );
    for pct in [0.0, 1.0, 1.5, -0.1, f64::NAN] {
        invalid(
            Schedule::OneCycle(OneCycle {
                pct_start: pct,
                ..OneCycle::new(0.1, 100)
            }),
            "pct_start",
        );
    }
    invalid(Schedule::OneCycle(OneCycle::new(-0.1, 100)), "max_lr");
    invalid(Schedule::OneCycle(OneCycle::new(0.1, 0)), "total_steps");
    invalid(
        Schedule::OneCycle(OneCycle {
            max_momentum: 1.5,
            ..OneCycle::new(0.1, 100)
        }),
        "max_momentum",
    );
    invalid(Schedule::Cyclic(Cyclic::new(-1.0, 0.1)), "base_lr");
    invalid(
        Schedule::Sequential {
            schedules: vec![Schedule::Constant],
            milestones: vec![3],
        },
        "milestones",
    );
    invalid(Schedule::warmup(3, Schedule::cosine(0)), "T_max");
    for factor in [1.0, 1.5, -0.1, f64::NAN] {
        let mut p = ReduceLrOnPlateau::new(0.1).factor(factor);
        assert!(
            matches!(
                p.step(1.0),
                Err(Error::InvalidHyperparameter { name: "factor", .. })
            ),
            "factor {factor}"
        );
        assert_eq!(p.epochs(), 0);
    }
    assert!(matches!(
        ReduceLrOnPlateau::new(0.1).min_lr(-1.0).validate(),
        Err(Error::InvalidHyperparameter { name: "min_lr", .. })
    ));
    assert!(matches!(
        LrFinder::new(0.0, 10.0, 100),
        Err(Error::InvalidHyperparameter {
            name: "start_lr",
            ..
        })
    ));
    assert!(matches!(
        LrFinder::new(1.0, 0.5, 100),
        Err(Error::InvalidHyperparameter { name: "end_lr", .. })
    ));
    assert!(matches!(
        LrFinder::new(1e-7, 10.0, 1),
        Err(Error::InvalidHyperparameter { name: "steps", .. })
    ));
}

#[test]
fn momentum_cycling_needs_momentum() {
    let cycle = Schedule::OneCycle(OneCycle::new(0.1, 10));
    // NAdam has β₁ but refuses: its μ-product would have to remember every past β₁.
    let refusing: [wgoptim::Optimizer; 5] = [
        Adagrad::default().into(),
        Sgd::default().into(),
        wgoptim::NAdam::default().into(),
        wgoptim::Rprop::default().into(),
        wgoptim::Asgd::default().into(),
    ];
    for o in refusing {
        let mut opt = CpuOptimizer::with_params(&wgoptim::CpuContext::new(), o, &[1.0]).unwrap();
        assert!(matches!(
            opt.set_schedule(Some(cycle.clone())),
            Err(Error::NoMomentumToCycle { .. })
        ));
    }
    let flat = Schedule::OneCycle(OneCycle {
        cycle_momentum: false,
        ..OneCycle::new(0.1, 10)
    });
    CpuOptimizer::with_params(&wgoptim::CpuContext::new(), Adagrad::default(), &[1.0])
        .unwrap()
        .set_schedule(Some(flat))
        .unwrap();
}

#[test]
fn finder_sweeps_stops_on_divergence_and_suggests() {
    // Training loop: SGD on ½‖θ‖², which diverges once lr > 2.
    let mut finder = LrFinder::new(1e-4, 100.0, 200).unwrap();
    let mut opt =
        CpuOptimizer::with_params(&wgoptim::CpuContext::new(), Sgd::default(), &[1.0; 16]).unwrap();
    while let Some(lr) = finder.next_lr() {
        opt.set_lr(lr).unwrap();
        let theta = opt.read_params().unwrap();
        opt.write_grads(&theta).unwrap(); // ∇ ½‖θ‖² = θ
        opt.step().unwrap();
        let loss: f64 = opt
            .params()
            .iter()
            .map(|&x| 0.5 * f64::from(x) * f64::from(x))
            .sum();
        if !finder.record(loss) {
            break;
        }
    }
    let points = finder.points();
    assert!(points.len() < 200, "the sweep must stop on divergence");
    let last = points.last().unwrap();
    assert!(
        last.lr > 2.0
            && last.smoothed
                > 4.0
                    * points
                        .iter()
                        .map(|p| p.smoothed)
                        .fold(f64::INFINITY, f64::min)
    );
    // Lr of each step: exponential from 1e-4 to 100.
    eq(finder.lr(0), 1e-4);
    eq(finder.lr(199), 100.0);
    eq(points[1].lr / points[0].lr, 1e6f64.powf(1.0 / 199.0));
    // Smoothing: bias-corrected EMA with β = 0.98.
    let mut avg = 0.0;
    for (i, p) in points.iter().enumerate() {
        avg = 0.98 * avg + 0.02 * p.loss;
        eq(p.smoothed, avg / (1.0 - 0.98f64.powi(i as i32 + 1)));
    }
    let suggested = finder.suggestion().unwrap();
    assert!(
        suggested > 1e-3 && suggested < 2.0,
        "suggestion {suggested}"
    );
}

#[test]
fn schedule_drives_each_steps_uniform_on_the_gpu() {
    if common::full().is_none() {
        return;
    }
    let ctx = GpuContext::new().unwrap(); // its own, to count pipelines
    let n = 1027;
    let params = Data::new(5).vector(n);
    let schedule = Schedule::OneCycle(OneCycle::new(0.05, 20));
    let optimizer = Sgd::default().momentum(0.9).nesterov(true);
    let mut gpu = GpuOptimizer::with_params(&ctx, optimizer, &params).unwrap();
    let mut cpu =
        CpuOptimizer::with_params(&wgoptim::CpuContext::new(), optimizer, &params).unwrap();
    gpu.set_schedule(Some(schedule.clone())).unwrap();
    cpu.set_schedule(Some(schedule.clone())).unwrap();
    let pipelines = ctx.pipelines_created();
    let mut data = Data::new(6);
    for e in 0..=20u64 {
        let u = gpu.next_uniform().unwrap();
        assert_eq!(u.lr, schedule.lr(0.0, e).unwrap() as f32, "lr at {e}");
        let m = schedule.momentum(e).unwrap().unwrap();
        assert_eq!(u.momentum, m as f32, "momentum at {e}");
        assert_eq!(
            u.buf_keep,
            if e == 0 { 0.0 } else { m as f32 },
            "buffer coefficient at {e}"
        );
        let g = data.gradients(n);
        for b in [&mut gpu as &mut dyn Backend, &mut cpu] {
            b.write_grads(&g).unwrap();
            b.step().unwrap();
        }
    }
    assert_eq!(gpu.read_params().unwrap(), cpu.read_params().unwrap());
    assert_eq!(
        ctx.pipelines_created(),
        pipelines,
        "a schedule must not rebuild pipelines"
    );
    // Past total_steps: a typed error, no step counted, nothing changed.
    let before = gpu.read_params().unwrap();
    assert!(matches!(
        gpu.step(),
        Err(Error::ScheduleFinished {
            step: 21,
            total_steps: 20
        })
    ));
    assert_eq!(gpu.steps(), 21);
    assert_eq!(gpu.read_params().unwrap(), before);
}

#[test]
fn scheduled_lr_matches_the_oracle_with_the_closed_form() {
    let Some(ctx) = common::full() else { return };
    let n = 4099;
    let params = Data::new(8).vector(n);
    let schedule = Schedule::warmup(
        5,
        Schedule::Cosine {
            t_max: 25,
            eta_min: 1e-4,
        },
    );
    let optimizer = Adam::adamw().lr(0.02);
    let mut gpu = GpuOptimizer::with_params(&ctx, optimizer, &params).unwrap();
    gpu.set_schedule(Some(schedule)).unwrap();
    let mut oracle = Oracle::new(optimizer, &params).unwrap();
    let mut data = Data::new(9);
    for e in 0..30u64 {
        let closed = if e < 5 {
            0.02 * e as f64 / 5.0
        } else {
            1e-4 + (0.02 - 1e-4) * (1.0 + (PI * (e - 5) as f64 / 25.0).cos()) / 2.0
        };
        oracle.set_lr(closed).unwrap();
        let g = data.gradients(n);
        gpu.write_grads(&g).unwrap();
        gpu.step().unwrap();
        oracle.step(&g).unwrap();
    }
    let got = gpu.read_params().unwrap();
    let worst = got
        .iter()
        .zip(oracle.params())
        .map(|(&a, &b)| (f64::from(a) - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < 1e-5, "worst |gpu - oracle| = {worst:e}");
}
