//! Bad input gets a typed error, and the optimizer it hit is left as it was and still usable.

mod common;

use wgoptim::gpu::kernel::KernelShape;
use wgoptim::gpu::plan_chunks;
use wgoptim::{
    Adadelta, Adafactor, Adagrad, Adam, Adamax, Asgd, Backend, CpuOptimizer, Error, GpuOptimizer,
    Lamb, Lion, NAdam, Optimizer, RAdam, RmsProp, Rprop, Sgd,
};

fn assert_invalid(optimizer: impl Into<Optimizer>, name: &str) {
    let optimizer = optimizer.into();
    match optimizer.validate() {
        Err(Error::InvalidHyperparameter { name: n, .. }) => assert_eq!(n, name, "{optimizer:?}"),
        other => panic!("{optimizer:?}: expected InvalidHyperparameter({name}), got {other:?}"),
    }
    // Both backends refuse it at construction, before allocating anything.
    assert!(matches!(
        CpuOptimizer::with_params(&wgoptim::CpuContext::new(), optimizer, &[1.0]),
        Err(Error::InvalidHyperparameter { .. })
    ));
    if let Some(ctx) = common::full() {
        assert!(matches!(
            GpuOptimizer::new(&ctx, optimizer, 4),
            Err(Error::InvalidHyperparameter { .. })
        ));
    }
}

#[test]
fn hyperparameters_out_of_domain() {
    assert_invalid(Sgd::default().lr(-1e-3), "lr");
    assert_invalid(Sgd::default().lr(f64::NAN), "lr");
    assert_invalid(Sgd::default().lr(f64::INFINITY), "lr");
    assert_invalid(Sgd::default().momentum(-0.9), "momentum");
    assert_invalid(Sgd::default().weight_decay(-1e-4), "weight_decay");
    assert_invalid(Sgd::default().dampening(f64::NAN), "dampening");
    assert_invalid(Sgd::default().nesterov(true), "momentum");
    assert_invalid(
        Sgd::default().nesterov(true).momentum(0.9).dampening(0.1),
        "dampening",
    );
    assert_invalid(RmsProp::default().alpha(1.5), "alpha");
    assert_invalid(RmsProp::default().eps(0.0), "eps");
    assert_invalid(RmsProp::default().momentum(-0.1), "momentum");
    assert_invalid(Adam::default().betas((1.0, 0.999)), "betas.0");
    assert_invalid(Adam::default().betas((0.9, -0.1)), "betas.1");
    assert_invalid(Adam::default().betas((0.9, f64::NAN)), "betas.1");
    assert_invalid(Adam::default().eps(-1e-8), "eps");
    assert_invalid(Adam::adamw().weight_decay(f64::INFINITY), "weight_decay");
    assert_invalid(Adagrad::default().lr_decay(-0.1), "lr_decay");
    assert_invalid(
        Adagrad::default().initial_accumulator_value(-1.0),
        "initial_accumulator_value",
    );
    assert_invalid(Adagrad::default().eps(f64::NAN), "eps");
    assert_invalid(Adamax::default().lr(-2e-3), "lr");
    assert_invalid(Adamax::default().betas((0.9, 1.0)), "betas.1");
    assert_invalid(Adamax::default().eps(0.0), "eps");
    assert_invalid(RAdam::default().betas((f64::NAN, 0.999)), "betas.0");
    assert_invalid(
        RAdam::default()
            .decoupled_weight_decay(true)
            .weight_decay(-0.1),
        "weight_decay",
    );
    assert_invalid(Adadelta::default().rho(1.5), "rho");
    assert_invalid(Adadelta::default().rho(f64::NAN), "rho");
    assert_invalid(Adadelta::default().eps(-1e-6), "eps");
    assert_invalid(NAdam::default().momentum_decay(-4e-3), "momentum_decay");
    assert_invalid(NAdam::default().momentum_decay(f64::NAN), "momentum_decay");
    assert_invalid(NAdam::default().betas((0.9, 1.0)), "betas.1");
    assert_invalid(Rprop::default().etas((1.0, 1.2)), "etas.0");
    assert_invalid(Rprop::default().etas((0.0, 1.2)), "etas.0");
    assert_invalid(Rprop::default().etas((0.5, 1.0)), "etas.1");
    assert_invalid(Rprop::default().etas((0.5, f64::INFINITY)), "etas.1");
    assert_invalid(Rprop::default().step_sizes((-1e-6, 50.0)), "step_sizes.0");
    assert_invalid(Rprop::default().step_sizes((1.0, 0.5)), "step_sizes.1");
    assert_invalid(Rprop::default().lr(f64::NAN), "lr");
    assert_invalid(Asgd::default().lambd(-1e-4), "lambd");
    assert_invalid(Asgd::default().alpha(f64::NAN), "alpha");
    assert_invalid(Asgd::default().t0(f64::INFINITY), "t0");
    assert_invalid(Asgd::default().weight_decay(-0.1), "weight_decay");
    assert_invalid(Lion::default().betas((1.0, 0.99)), "betas.0");
    assert_invalid(Lion::default().weight_decay(f64::NAN), "weight_decay");
    assert_invalid(Lion::default().lr(-1e-4), "lr");
    assert_invalid(Lamb::default().betas((0.9, 1.0)), "betas.1");
    assert_invalid(Lamb::default().eps(0.0), "eps");
    assert_invalid(Lamb::default().weight_decay(f64::NAN), "weight_decay");
    assert_invalid(Adafactor::default().beta2_decay(0.5), "beta2_decay");
    assert_invalid(Adafactor::default().eps((Some(f64::NAN), 1e-3)), "eps.0");
    assert_invalid(Adafactor::default().eps((None, -1.0)), "eps.1");
    assert_invalid(Adafactor::default().d(0.99), "d");
    assert_invalid(Adafactor::default().lr(f64::INFINITY), "lr");
    assert_invalid(wgoptim::Muon::default().ns_steps(100), "ns_steps");
    assert_invalid(wgoptim::Muon::default().momentum(1.5), "momentum");
    assert_invalid(wgoptim::Muon::default().eps(-1.0), "eps");
    assert_invalid(
        wgoptim::Muon::default().weight_decay(f64::NAN),
        "weight_decay",
    );
    assert_invalid(
        wgoptim::Muon::default().ns_coefficients((f64::NAN, -4.775, 2.0315)),
        "ns_coefficients.0",
    );
}

#[test]
fn every_default_is_valid() {
    for o in [
        Sgd::default().into(),
        RmsProp::default().into(),
        Adam::default().into(),
        Adam::adamw().into(),
        Adagrad::default().into(),
        Adamax::default().into(),
        RAdam::default().into(),
        Adadelta::default().into(),
        NAdam::default().into(),
        Rprop::default().into(),
        Asgd::default().into(),
        Lion::default().into(),
        Lamb::default().into(),
        Adafactor::default().into(),
        wgoptim::Muon::default().into(),
    ] {
        let o: Optimizer = o;
        o.validate().unwrap();
    }
}

#[test]
fn bad_learning_rate_is_refused_and_changes_nothing() {
    let Some(ctx) = common::full() else { return };
    let mut gpu = GpuOptimizer::with_params(&ctx, Adam::default(), &[1.0, 2.0, 3.0]).unwrap();
    for bad in [f64::NAN, -1.0, f64::INFINITY] {
        assert!(matches!(
            gpu.set_lr(bad),
            Err(Error::InvalidHyperparameter { name: "lr", .. })
        ));
        assert_eq!(gpu.lr().unwrap(), 1e-3);
    }
    gpu.write_grads(&[1.0, 1.0, 1.0]).unwrap();
    gpu.step().unwrap();
    let p = gpu.read_params().unwrap();
    assert!(
        p.iter()
            .zip([1.0, 2.0, 3.0])
            .all(|(a, b)| (a - (b - 1e-3)).abs() < 1e-6),
        "{p:?}"
    );
}

#[test]
fn mismatched_lengths_write_nothing() {
    let Some(ctx) = common::full() else { return };
    let params = [1.0, 2.0, 3.0, 4.0, 5.0];
    let mut gpu = GpuOptimizer::with_params(&ctx, Sgd::default().lr(0.5), &params).unwrap();
    let mut cpu =
        CpuOptimizer::with_params(&wgoptim::CpuContext::new(), Sgd::default().lr(0.5), &params)
            .unwrap();
    for backend in [&mut gpu as &mut dyn Backend, &mut cpu] {
        backend.write_grads(&[1.0; 5]).unwrap();
        let short = backend.write_params(&[9.0; 4]);
        assert!(
            matches!(
                short,
                Err(Error::LengthMismatch {
                    expected: 5,
                    got: 4,
                    ..
                })
            ),
            "{short:?}"
        );
        let long = backend.write_grads(&[9.0; 6]);
        assert!(
            matches!(
                long,
                Err(Error::LengthMismatch {
                    expected: 5,
                    got: 6,
                    ..
                })
            ),
            "{long:?}"
        );
        assert_eq!(backend.read_params().unwrap(), params);
        backend.step().unwrap();
        assert_eq!(backend.read_params().unwrap(), [0.5, 1.5, 2.5, 3.5, 4.5]);
    }
    assert_eq!(gpu.read_grads().unwrap(), [1.0; 5]);
}

#[test]
fn empty_is_refused() {
    assert!(matches!(
        CpuOptimizer::with_params(&wgoptim::CpuContext::new(), Adam::default(), &[]),
        Err(Error::Empty)
    ));
    let Some(ctx) = common::full() else { return };
    assert!(matches!(
        GpuOptimizer::new(&ctx, Adam::default(), 0),
        Err(Error::Empty)
    ));
    assert!(matches!(
        GpuOptimizer::with_params(&ctx, Adam::default(), &[]),
        Err(Error::Empty)
    ));
}

#[test]
fn buffer_larger_than_the_device_allows() {
    let Some(ctx) = common::full() else { return };
    let max = ctx.limits().max_buffer_size;
    let len = (max / 4 + 1) as usize;
    match GpuOptimizer::new(&ctx, Adam::default(), len) {
        Err(Error::BufferTooLarge { bytes, max: m, .. }) => assert!(bytes > m && m == max),
        other => panic!("expected BufferTooLarge, got {:?}", other.err()),
    }
}

#[test]
fn dispatch_beyond_two_dimensions_is_refused() {
    let limits = wgpu::Limits {
        max_compute_workgroups_per_dimension: 2,
        max_storage_buffer_binding_size: 1 << 30,
        max_buffer_size: 1 << 30,
        ..wgpu::Limits::default()
    };
    let shape = KernelShape::for_state_tensors(1); // 2048 elements per workgroup
    assert_eq!(shape.elements_per_workgroup(), 2048);
    assert!(plan_chunks(&limits, 4 * 2048, shape).is_ok());
    assert!(matches!(
        plan_chunks(&limits, 5 * 2048, shape),
        Err(Error::DispatchTooLarge { max: 2, .. })
    ));
}

fn buffer(ctx: &wgoptim::GpuContext, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("caller's"),
        size,
        usage,
        mapped_at_creation: false,
    })
}

#[test]
fn adopted_buffers_are_checked() {
    let Some(ctx) = common::full() else { return };
    use wgpu::BufferUsages as U;
    let good = U::STORAGE | U::COPY_SRC | U::COPY_DST;
    let n = 10; // needs 48 bytes: three whole vec4 blocks
    let no_storage = GpuOptimizer::adopt(
        &ctx,
        Adam::default(),
        buffer(&ctx, 48, U::COPY_DST),
        buffer(&ctx, 48, good),
        n,
    );
    assert!(
        matches!(
            no_storage,
            Err(Error::MissingUsage {
                what: "parameter buffer",
                ..
            })
        ),
        "{:?}",
        no_storage.err()
    );
    let small = GpuOptimizer::adopt(
        &ctx,
        Adam::default(),
        buffer(&ctx, 48, good),
        buffer(&ctx, 40, good),
        n,
    );
    assert!(
        matches!(
            small,
            Err(Error::BufferTooSmall {
                what: "gradient buffer",
                bytes: 40,
                needed: 48
            })
        ),
        "{:?}",
        small.err()
    );
    // STORAGE alone is enough to step; reading back needs COPY_SRC, writing COPY_DST.
    let mut opt = GpuOptimizer::adopt(
        &ctx,
        Adam::default(),
        buffer(&ctx, 48, U::STORAGE),
        buffer(&ctx, 48, U::STORAGE),
        n,
    )
    .unwrap();
    opt.step().unwrap();
    assert!(matches!(opt.read_params(), Err(Error::MissingUsage { .. })));
    assert!(matches!(
        opt.write_grads(&[0.0; 10]),
        Err(Error::MissingUsage { .. })
    ));
    assert_eq!(opt.steps(), 1);
}

#[test]
fn unknown_state_name() {
    let cpu =
        CpuOptimizer::with_params(&wgoptim::CpuContext::new(), Adam::default(), &[1.0]).unwrap();
    match cpu.read_state("momentum_buffer") {
        Err(Error::UnknownState { available, .. }) => assert_eq!(available, "exp_avg, exp_avg_sq"),
        other => panic!("{other:?}"),
    }
    let Some(ctx) = common::full() else { return };
    let gpu = GpuOptimizer::new(&ctx, Adam::default(), 3).unwrap();
    assert!(matches!(
        gpu.read_state("max_exp_avg_sq"),
        Err(Error::UnknownState { .. })
    ));
}

#[test]
fn wgpu_validation_error_is_returned_and_the_step_not_counted() {
    let Some(ctx) = common::full() else { return };
    use wgpu::BufferUsages as U;
    let params = buffer(&ctx, 16, U::STORAGE | U::COPY_SRC);
    let grads = buffer(&ctx, 16, U::STORAGE);
    let mut opt = GpuOptimizer::adopt(&ctx, Sgd::default(), params.clone(), grads, 4).unwrap();
    opt.step().unwrap();
    params.destroy();
    match opt.step() {
        Err(Error::Wgpu(message)) => assert!(!message.is_empty()),
        other => panic!("expected a wgpu error, got {other:?}"),
    }
    assert_eq!(opt.steps(), 1);
}
