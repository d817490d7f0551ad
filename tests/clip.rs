//! On-device gradient control against the f64 oracle: global-norm clipping over all groups,
//! loss-scale unscaling, and skipping steps with non-finite gradients (parameters and state
//! untouched, step not counted, so the bias corrections follow the device's count).
//!
//! The oracle gets what PyTorch would compute: the clip factor min(1, M/(‖g‖₂ + 1e-6)) from an
//! f64 norm, and no step at all where a gradient is NaN or ±∞. Tolerance as in
//! `wgoptim::verify` (the device's f32 norm differs from the f64 one by ~1e-6 relative).

mod common;

use wgoptim::verify::{Data, Diff};
use wgoptim::{
    Adam, Backend, Error, GpuOptimizer, GradientControl, Optimizer, Oracle, ParamGroup, Sgd,
};

fn norm(g: &[f32]) -> f64 {
    g.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

fn assert_close(gpu: &[f32], oracle: &[f64], steps: u64, what: &str) {
    let d = Diff::of(gpu, gpu, oracle, steps);
    assert!(d.tolerance_used <= 1.0, "{what}: {d:?}");
}

#[test]
fn clipping_uses_the_global_norm_over_all_groups() {
    if common::small().is_none() {
        return;
    }
    // A context of its own, so that the pipeline count below is this test's alone.
    let ctx = wgoptim::GpuContext::with_options(&wgoptim::ContextOptions {
        max_binding_bytes: Some(common::SMALL_BINDING_BYTES),
        max_workgroups_per_dimension: Some(common::SMALL_WORKGROUPS_PER_DIMENSION),
        shapes: wgoptim::Shapes::Builtin,
        ..Default::default()
    })
    .unwrap();
    let groups = vec![
        ParamGroup::new(Adam::adamw().lr(0.01)).tensor("w", &[300_001]),
        ParamGroup::new(Adam::adamw().lr(0.02).weight_decay(0.0)).tensor("b", &[77]),
    ];
    let mut gpu = GpuOptimizer::with_groups(&ctx, groups.clone()).unwrap();
    let max_norm = 50.0;
    gpu.set_gradient_control(Some(GradientControl {
        max_norm: Some(max_norm),
        ..Default::default()
    }))
    .unwrap();
    let (rw, rb) = (gpu.group_range(0).unwrap(), gpu.group_range(1).unwrap());
    let mut data = Data::new(31);
    let p0 = data.vector(gpu.len());
    gpu.write_params(&p0).unwrap();
    let mut oracles: Vec<Oracle> = [(&groups[0], &rw), (&groups[1], &rb)]
        .iter()
        .map(|(g, r)| Oracle::new(g.optimizer, &p0[(*r).clone()]).unwrap())
        .collect();
    let pipelines = ctx.pipelines_created();
    for step in 1..=10u64 {
        // Large gradients for the first steps (clipped), small ones after (not clipped).
        let scale = if step <= 5 { 1.0 } else { 0.01 };
        let mut g: Vec<f32> = data
            .gradients(gpu.len())
            .iter()
            .map(|x| x * scale)
            .collect();
        for x in &mut g[rw.end..rb.start] {
            *x = 0.0; // the gap between groups holds no gradient
        }
        gpu.write_grads(&g).unwrap();
        gpu.step().unwrap();
        let n = norm(&g);
        let coef = (max_norm / (n + 1e-6)).min(1.0);
        for (oracle, r) in oracles.iter_mut().zip([&rw, &rb]) {
            let clipped: Vec<f32> = g[r.clone()]
                .iter()
                .map(|&x| (f64::from(x) * coef) as f32)
                .collect();
            oracle.step(&clipped).unwrap();
        }
        let reported = f64::from(gpu.last_grad_norm().unwrap().unwrap());
        assert!(
            (reported - n).abs() <= 1e-5 * n,
            "step {step}: device norm {reported} vs {n}"
        );
        assert_eq!(
            coef < 1.0,
            step <= 5,
            "the test must clip some steps and not others"
        );
    }
    let p = gpu.read_params().unwrap();
    assert_close(&p[rw.clone()], oracles[0].params(), 10, "group 0");
    assert_close(&p[rb.clone()], oracles[1].params(), 10, "group 1");
    assert_eq!(
        ctx.pipelines_created(),
        pipelines,
        "no pipeline compiled while stepping"
    );
}

#[test]
fn loss_scale_is_undone_in_the_same_pass() {
    let Some(ctx) = common::full() else { return };
    let n = 4099;
    let mut data = Data::new(32);
    let p0 = data.vector(n);
    let optimizer = Sgd::default().lr(0.1).momentum(0.9);
    let mut gpu = GpuOptimizer::with_params(&ctx, optimizer, &p0).unwrap();
    let mut oracle = Oracle::new(optimizer, &p0).unwrap();
    for step in 0..6 {
        let scale = [1024.0, 1024.0, 512.0, 65536.0, 2.0, 1.0][step];
        gpu.set_loss_scale(scale).unwrap();
        let g = data.gradients(n);
        let scaled: Vec<f32> = g.iter().map(|&x| x * scale as f32).collect();
        gpu.write_grads(&scaled).unwrap();
        gpu.step().unwrap();
        oracle.step(&g).unwrap();
    }
    assert_close(
        &gpu.read_params().unwrap(),
        oracle.params(),
        6,
        "unscaled SGD",
    );
}

#[test]
fn non_finite_steps_are_skipped_and_not_counted() {
    let Some(ctx) = common::small() else { return };
    for optimizer in [
        Optimizer::from(Adam::default().lr(0.01).amsgrad(true)),
        Sgd::default().lr(0.05).momentum(0.9).into(),
        wgoptim::Adagrad::default().lr_decay(0.1).into(),
        wgoptim::Adamax::default().lr(0.01).into(),
        // Rectified from its 6th applied step on: the device's count picks the branch.
        wgoptim::RAdam::default()
            .lr(0.01)
            .weight_decay(0.1)
            .decoupled_weight_decay(true)
            .into(),
        // Two step factors from Πₜ of the device's count.
        wgoptim::NAdam::default()
            .lr(0.01)
            .momentum_decay(0.05)
            .into(),
        // Both bias corrections of the device's count, in both of its per-tensor passes.
        wgoptim::Lamb::default().lr(0.01).into(),
        // 1/√t and t^τ of the device's count, in its row/column pass and its per-tensor step.
        wgoptim::Adafactor::default()
            .lr(0.05)
            .weight_decay(0.1)
            .into(),
        // ηₜ, 1 − ληₜ and the average's μₜ (from its 4th applied step) of the device's count.
        wgoptim::Asgd::default()
            .lr(0.05)
            .lambd(0.05)
            .alpha(0.5)
            .t0(2.0)
            .into(),
    ] {
        // Two chunks on the small device; Adafactor over a matrix inside the first and a vector
        // across the seam (its averages bound whole must fit one binding).
        let layout = optimizer.kernel().shaped_state().then(|| {
            let mut layout = wgoptim::ParamLayout::for_limits(&ctx.limits());
            layout.add("w", &[250, 1000]).unwrap();
            layout.add("v", &[50_007]).unwrap();
            layout
        });
        let n = layout.as_ref().map_or(300_007, |l| l.len());
        let mut data = Data::new(33);
        let p0 = data.vector(n);
        let mut gpu = match &layout {
            Some(l) => {
                let mut gpu = GpuOptimizer::with_layout(&ctx, optimizer, l.clone()).unwrap();
                gpu.write_params(&p0).unwrap();
                gpu
            }
            None => GpuOptimizer::with_params(&ctx, optimizer, &p0).unwrap(),
        };
        gpu.set_gradient_control(Some(GradientControl {
            skip_nonfinite: true,
            ..Default::default()
        }))
        .unwrap();
        let mut oracle = match &layout {
            Some(l) => {
                let tensors = l.tensors().iter().map(|t| (t.range(), t.shape.clone()));
                Oracle::with_shapes(optimizer, &p0, tensors.collect()).unwrap()
            }
            None => Oracle::new(optimizer, &p0).unwrap(),
        };
        let bad_steps = [1usize, 4, 5];
        for step in 1..=11usize {
            let mut g = data.gradients(n);
            if bad_steps.contains(&step) {
                g[(step * 7919) % n] = if step == 4 { f32::INFINITY } else { f32::NAN };
                let (before, state) = (
                    gpu.read_params().unwrap(),
                    gpu.read_state(optimizer.state_layout().slots[0].name)
                        .unwrap(),
                );
                gpu.write_grads(&g).unwrap();
                gpu.step().unwrap();
                assert_eq!(
                    gpu.read_params().unwrap(),
                    before,
                    "{} step {step}: parameters touched",
                    optimizer.name()
                );
                assert_eq!(
                    gpu.read_state(optimizer.state_layout().slots[0].name)
                        .unwrap(),
                    state,
                    "state touched"
                );
            } else {
                gpu.write_grads(&g).unwrap();
                gpu.step().unwrap();
                oracle.step(&g).unwrap();
            }
        }
        assert_eq!(gpu.steps(), 11, "calls");
        assert_eq!(gpu.device_steps().unwrap(), 8, "applied steps");
        assert_eq!(gpu.skipped_steps().unwrap(), 3);
        assert_close(
            &gpu.read_params().unwrap(),
            oracle.params(),
            8,
            optimizer.name(),
        );
        // Turning skipping off hands the count back to the host; steps go on matching.
        gpu.set_gradient_control(None).unwrap();
        assert_eq!(gpu.steps(), 8);
        for _ in 0..2 {
            let g = data.gradients(n);
            gpu.write_grads(&g).unwrap();
            gpu.step().unwrap();
            oracle.step(&g).unwrap();
        }
        assert_close(
            &gpu.read_params().unwrap(),
            oracle.params(),
            10,
            optimizer.name(),
        );
        for slot in optimizer.state_layout().slots {
            assert_close(
                &gpu.read_state(slot.name).unwrap(),
                oracle.state(slot.name).unwrap(),
                10,
                &format!("{} {}", optimizer.name(), slot.name),
            );
        }
    }
}

#[test]
fn bad_gradient_control_is_refused_and_changes_nothing() {
    let Some(ctx) = common::full() else { return };
    let mut gpu = GpuOptimizer::with_params(&ctx, Adam::default(), &[1.0; 8]).unwrap();
    let good = GradientControl {
        max_norm: Some(1.0),
        ..Default::default()
    };
    gpu.set_gradient_control(Some(good)).unwrap();
    for bad in [
        GradientControl {
            max_norm: Some(0.0),
            ..good
        },
        GradientControl {
            max_norm: Some(-1.0),
            ..good
        },
        GradientControl {
            max_norm: Some(f64::NAN),
            ..good
        },
        GradientControl {
            loss_scale: 0.0,
            ..good
        },
        GradientControl {
            loss_scale: f64::INFINITY,
            ..good
        },
    ] {
        assert!(
            matches!(
                gpu.set_gradient_control(Some(bad)),
                Err(Error::InvalidHyperparameter { .. })
            ),
            "{bad:?}"
        );
        assert_eq!(gpu.gradient_control(), Some(good));
    }
    assert!(matches!(
        gpu.set_loss_scale(-2.0),
        Err(Error::InvalidHyperparameter {
            name: "loss_scale",
            ..
        })
    ));
    assert_eq!(gpu.gradient_control(), Some(good));
    gpu.write_grads(&[1.0; 8]).unwrap();
    gpu.step().unwrap();
    assert!(
        gpu.last_grad_norm()
            .unwrap()
            .is_some_and(|n| (n - 8f32.sqrt()).abs() < 1e-5)
    );
}

/// A step whose decision comes from outside (`step_decided`, what the sharded optimizer uses)
/// with the outcome the norm pass would find equals an ordinary step on both backends, counters
/// included; a skip decided outside skips; without gradient control it is refused and nothing
/// changes.
#[test]
fn a_decision_made_outside_equals_the_norm_pass() {
    let Some(ctx) = common::full() else { return };
    let cpu = wgoptim::CpuContext::with_threads(1).unwrap();
    let n = 5000;
    let control = GradientControl {
        max_norm: Some(0.5),
        skip_nonfinite: true,
        loss_scale: 8.0,
    };
    let params: Vec<f32> = (0..n).map(|i| ((i % 13) as f32 - 6.0) * 0.01).collect();
    let grads = |t: usize| -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7 + t * 3) % 11) as f32 * 0.03 - 0.15)
            .collect()
    };
    let opt: Optimizer = Adam::adamw().lr(0.01).into();
    let mut backends: Vec<Box<dyn Backend>> = vec![
        Box::new(GpuOptimizer::with_params(&ctx, opt, &params).unwrap()),
        Box::new(wgoptim::CpuOptimizer::with_params(&cpu, opt, &params).unwrap()),
    ];
    for b in &mut backends {
        // Refused without control.
        b.write_grads(&grads(0)).unwrap();
        let outcome = wgoptim::control::norm(&grads(0), &control);
        assert!(matches!(
            b.step_decided(outcome),
            Err(Error::NoGradientControl)
        ));
        assert_eq!(b.read_params().unwrap(), params);
        assert_eq!(b.steps(), 0);
        b.set_gradient_control(Some(control)).unwrap();
    }
    let mut plain = wgoptim::CpuOptimizer::with_params(&cpu, opt, &params).unwrap();
    plain.set_gradient_control(Some(control)).unwrap();
    for t in 0..6 {
        let mut g = grads(t);
        if t == 3 {
            g[17] = f32::INFINITY;
        }
        plain.write_grads(&g).unwrap();
        plain.step().unwrap();
        let outcome = wgoptim::control::decide(wgoptim::control::sums(&g, &control), &control);
        assert_eq!(outcome.skip, t == 3);
        for b in &mut backends {
            b.write_grads(&g).unwrap();
            b.step_decided(outcome).unwrap();
        }
    }
    let want = plain.read_params().unwrap();
    for b in &backends {
        assert_eq!(b.read_params().unwrap(), want);
        assert_eq!(b.skipped_steps().unwrap(), 1);
        assert_eq!(b.device_steps().unwrap(), 5);
        assert_eq!(b.last_grad_norm().unwrap(), plain.last_grad_norm().unwrap());
    }
}
