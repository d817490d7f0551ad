//! Checkpoints: resuming gives a bit-identical trajectory (50 steps straight against 20, save,
//! load into a fresh optimizer, 30), with groups, a schedule, clipping and skipped steps in
//! play; and a corrupt, truncated or foreign checkpoint is refused with the optimizer intact.

mod common;

use std::collections::HashMap;

use safetensors::tensor::{Dtype, TensorView};
use wgoptim::schedule::Schedule;
use wgoptim::verify::Data;
use wgoptim::{
    Adam, Backend, CpuOptimizer, Error, GpuContext, GpuOptimizer, GradDType, GradientControl,
    Optimizer, ParamDType, ParamGroup, Precision, Sgd, StatePrecision,
};

fn groups(base: Adam) -> Vec<ParamGroup> {
    ParamGroup::split_weight_decay(
        base,
        &[
            ("w1", &[40, 25]),
            ("b1", &[40]),
            ("w2", &[3, 40]),
            ("b2", &[3]),
        ],
        |n| n.starts_with('b'),
    )
}

fn build(ctx: &GpuContext) -> GpuOptimizer {
    let groups = groups(Adam::adamw().lr(0.01).weight_decay(0.05).amsgrad(true));
    let mut opt = GpuOptimizer::with_groups(ctx, groups).unwrap();
    configure(&mut opt);
    opt
}

/// The schedule and gradient control of every optimizer here.
fn configure(opt: &mut dyn Backend) {
    opt.set_schedule(Some(Schedule::warmup(
        5,
        Schedule::Cosine {
            t_max: 40,
            eta_min: 1e-4,
        },
    )))
    .unwrap();
    opt.set_gradient_control(Some(GradientControl {
        max_norm: Some(5.0),
        skip_nonfinite: true,
        loss_scale: 256.0,
    }))
    .unwrap();
}

fn gradients(len: usize) -> Vec<Vec<f32>> {
    let mut data = Data::new(41);
    (1..=50)
        .map(|t| {
            let mut g: Vec<f32> = data.gradients(len).iter().map(|x| x * 256.0).collect();
            if t == 7 || t == 33 {
                g[t] = f32::NAN; // skipped, before and after the checkpoint
            }
            g
        })
        .collect()
}

#[test]
fn resume_is_bit_identical() {
    let Some(ctx) = common::full() else { return };
    let mut straight = build(&ctx);
    let p0 = Data::new(40).vector(straight.len());
    straight.write_params(&p0).unwrap();
    let grads = gradients(straight.len());
    for g in &grads {
        straight.write_grads(g).unwrap();
        straight.step().unwrap();
    }

    let mut first = build(&ctx);
    first.write_params(&p0).unwrap();
    for g in &grads[..20] {
        first.write_grads(g).unwrap();
        first.step().unwrap();
    }
    let path =
        std::env::temp_dir().join(format!("wgoptim-ckpt-{}.safetensors", std::process::id()));
    first.save(&path).unwrap();
    drop(first);

    let mut resumed = build(&ctx);
    resumed.load(&path).unwrap();
    assert_eq!(resumed.steps(), 20);
    assert_eq!(resumed.device_steps().unwrap(), 19);
    for g in &grads[20..] {
        resumed.write_grads(g).unwrap();
        resumed.step().unwrap();
    }
    assert_eq!(
        resumed.read_params().unwrap(),
        straight.read_params().unwrap()
    );
    for name in ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"] {
        assert_eq!(
            resumed.read_state(name).unwrap(),
            straight.read_state(name).unwrap(),
            "{name}"
        );
    }
    assert_eq!(resumed.skipped_steps().unwrap(), 2);
    assert_eq!(
        resumed.device_steps().unwrap(),
        straight.device_steps().unwrap()
    );
    assert_eq!(resumed.lr().unwrap(), straight.lr().unwrap());
    std::fs::remove_file(&path).ok();
}

/// An optimizer on either backend over a copy of `params`.
type Make<'a> = &'a dyn Fn(Optimizer, &[f32]) -> Box<dyn Backend>;

#[test]
fn bad_checkpoints_are_refused_and_change_nothing() {
    let Some(ctx) = common::full() else { return };
    let gpu = |o: Optimizer, p: &[f32]| -> Box<dyn Backend> {
        Box::new(GpuOptimizer::with_params(&ctx, o, p).unwrap())
    };
    let cpu = |o: Optimizer, p: &[f32]| -> Box<dyn Backend> {
        Box::new(CpuOptimizer::with_params(&wgoptim::CpuContext::new(), o, p).unwrap())
    };
    // Each backend refuses what the other's checkpoints would not fit, with the same errors.
    for make in [&gpu as Make, &cpu] {
        for from in [&gpu as Make, &cpu] {
            refuses_bad_checkpoints(make, from);
        }
    }
}

fn refuses_bad_checkpoints(make: Make, from: Make) {
    let mut adam = from(Adam::default().into(), &[1.0, 2.0, 3.0, 4.0, 5.0]);
    adam.write_grads(&[0.5; 5]).unwrap();
    adam.step().unwrap();
    let good = adam.checkpoint().unwrap();

    let mut target = make(Adam::default().into(), &[9.0; 5]);
    let refused = |target: &mut Box<dyn Backend>, bytes: &[u8], want: &str| {
        let e = target.restore(bytes).unwrap_err();
        assert!(e.to_string().contains(want), "expected {want:?}, got: {e}");
        assert_eq!(
            target.read_params().unwrap(),
            [9.0; 5],
            "a refused checkpoint wrote parameters"
        );
        assert_eq!(target.steps(), 0);
        e
    };
    assert!(matches!(
        refused(&mut target, &good[..good.len() / 2], "not a safetensors"),
        Error::Checkpoint(_)
    ));
    assert!(matches!(
        refused(
            &mut target,
            b"definitely not a checkpoint",
            "not a safetensors"
        ),
        Error::Checkpoint(_)
    ));
    let mut flipped = good.clone();
    flipped[10] ^= 0xff; // inside the JSON header length/contents
    assert!(matches!(
        target.restore(&flipped),
        Err(Error::Checkpoint(_) | Error::CheckpointMismatch { .. })
    ));
    assert_eq!(target.read_params().unwrap(), [9.0; 5]);

    // A plain safetensors file without wgoptim's header.
    let data = [0u8; 20];
    let plain = safetensors::serialize(
        [(
            "params",
            TensorView::new(Dtype::F32, vec![5], &data).unwrap(),
        )],
        None,
    )
    .unwrap();
    assert!(matches!(
        refused(&mut target, &plain, "not a wgoptim checkpoint"),
        Error::Checkpoint(_)
    ));

    // Another optimizer kind, another variant, another size.
    let mut sgd = make(Sgd::default().momentum(0.9).into(), &[9.0; 5]);
    let e = sgd.restore(&good).unwrap_err();
    assert!(
        matches!(e, Error::CheckpointMismatch { .. }) && e.to_string().contains("optimizer"),
        "{e}"
    );
    let mut amsgrad = make(Adam::default().amsgrad(true).into(), &[9.0; 5]);
    assert!(matches!(
        amsgrad.restore(&good),
        Err(Error::CheckpointMismatch { .. })
    ));
    let mut longer = make(Adam::default().into(), &[9.0; 6]);
    let e = longer.restore(&good).unwrap_err();
    assert!(e.to_string().contains("parameter count"), "{e}");
    assert_eq!(longer.read_params().unwrap(), [9.0; 6]);

    // The right header with a tensor of the wrong dtype or shape.
    let (_, meta) = safetensors::SafeTensors::read_metadata(&good).unwrap();
    let header: HashMap<String, String> = meta.metadata().clone().unwrap();
    let f64s = [0u8; 40];
    let f32s = [0u8; 20];
    let wrong_dtype = safetensors::serialize(
        [
            (
                "params",
                TensorView::new(Dtype::F64, vec![5], &f64s).unwrap(),
            ),
            (
                "group0.exp_avg",
                TensorView::new(Dtype::F32, vec![5], &f32s).unwrap(),
            ),
            (
                "group0.exp_avg_sq",
                TensorView::new(Dtype::F32, vec![5], &f32s).unwrap(),
            ),
        ],
        Some(header.clone()),
    )
    .unwrap();
    assert!(matches!(
        refused(&mut target, &wrong_dtype, "dtype"),
        Error::CheckpointMismatch { .. }
    ));
    let f32x4 = [0u8; 16];
    let wrong_shape = safetensors::serialize(
        [
            (
                "params",
                TensorView::new(Dtype::F32, vec![5], &f32s).unwrap(),
            ),
            (
                "group0.exp_avg",
                TensorView::new(Dtype::F32, vec![4], &f32x4).unwrap(),
            ),
            (
                "group0.exp_avg_sq",
                TensorView::new(Dtype::F32, vec![5], &f32s).unwrap(),
            ),
        ],
        Some(header.clone()),
    )
    .unwrap();
    assert!(matches!(
        refused(&mut target, &wrong_shape, "shape"),
        Error::CheckpointMismatch { .. }
    ));
    let missing = safetensors::serialize(
        [(
            "params",
            TensorView::new(Dtype::F32, vec![5], &f32s).unwrap(),
        )],
        Some(header),
    )
    .unwrap();
    assert!(matches!(
        refused(&mut target, &missing, "missing"),
        Error::CheckpointMismatch { .. }
    ));

    // After all that, the good checkpoint loads and the optimizer steps on.
    target.restore(&good).unwrap();
    assert_eq!(target.read_params().unwrap(), adam.read_params().unwrap());
    target.write_grads(&[0.5; 5]).unwrap();
    adam.step().unwrap();
    target.step().unwrap();
    assert_eq!(target.read_params().unwrap(), adam.read_params().unwrap());
    assert!(
        target
            .restore(&std::fs::read("/nonexistent/ckpt.safetensors").unwrap_or_default())
            .is_err()
    );
}

/// A checkpoint of either backend restores into the other and the steps after it agree bit
/// for bit: the GPU's and the CPU's files are the same bytes after the same steps, and
/// 20 steps on one then 30 on the other equal 50 on either, for f32, bf16 and int8 state with
/// half gradients and bf16 parameters, skipped steps and clipping among them.
#[test]
fn checkpoints_move_between_backends_bit_for_bit() {
    let Some(ctx) = common::full() else { return };
    let precisions = [
        Precision::default(),
        Precision {
            state: StatePrecision::bf16().min_len(0),
            grads: GradDType::Bf16,
            ..Default::default()
        },
        Precision {
            state: StatePrecision::int8().min_len(0),
            params: ParamDType::Bf16Master,
            ..Default::default()
        },
        Precision {
            state: StatePrecision::int8().min_len(0),
            grads: GradDType::F16,
            params: ParamDType::Bf16,
        },
    ];
    for precision in precisions {
        let base = Adam::adamw()
            .lr(0.01)
            .weight_decay(0.05)
            .amsgrad(true)
            .state(precision.state)
            .grads(precision.grads)
            .params(precision.params);
        let gpu = || -> Box<dyn Backend> {
            let mut o = GpuOptimizer::with_groups(&ctx, groups(base)).unwrap();
            configure(&mut o);
            Box::new(o)
        };
        let cpu = || -> Box<dyn Backend> {
            let mut o =
                CpuOptimizer::with_groups(&wgoptim::CpuContext::new(), groups(base)).unwrap();
            configure(&mut o);
            Box::new(o)
        };
        let len = gpu().len();
        let dtype = gpu().optimizer().state_layout().dtype();
        assert_eq!(dtype, precision.state.dtype_for(len), "{precision:?}");
        let p0 = Data::new(40).vector(len);
        let grads = gradients(len);
        let run = |opt: &mut Box<dyn Backend>, grads: &[Vec<f32>]| {
            for g in grads {
                opt.write_grads(g).unwrap();
                opt.step().unwrap();
            }
        };
        let (mut on_gpu, mut on_cpu) = (gpu(), cpu());
        for opt in [&mut on_gpu, &mut on_cpu] {
            opt.write_params(&p0).unwrap();
            run(opt, &grads[..20]);
        }
        let (from_gpu, from_cpu) = (on_gpu.checkpoint().unwrap(), on_cpu.checkpoint().unwrap());
        assert!(from_gpu == from_cpu, "{precision:?}: the two files differ");
        // Straight on, and across.
        let (mut gpu_then_cpu, mut cpu_then_gpu) = (cpu(), gpu());
        gpu_then_cpu.restore(&from_gpu).unwrap();
        cpu_then_gpu.restore(&from_cpu).unwrap();
        let mut ends = Vec::new();
        for mut opt in [on_gpu, on_cpu, gpu_then_cpu, cpu_then_gpu] {
            run(&mut opt, &grads[20..]);
            assert_eq!(opt.skipped_steps().unwrap(), 2);
            ends.push(opt.checkpoint().unwrap());
        }
        for (i, end) in ends.iter().enumerate() {
            assert!(*end == ends[0], "{precision:?}: run {i} ends elsewhere");
        }
    }
}

/// Every family's resume is bit identical on the GPU, with a cosine schedule: the step-dependent
/// factors (bias corrections, RAdam's rectification, NAdam's μ-product, ASGD's ηₜ and μₜ,
/// Adagrad's decay) come back from the step count, and the state from the file.
#[test]
fn every_family_resumes_bit_identically() {
    let Some(ctx) = common::full() else { return };
    let (n, total, at) = (1001, 12, 5);
    let variants = wgoptim::verify::variants();
    for kernel in wgoptim::Kernel::ALL {
        assert!(
            variants.iter().any(|(_, o)| o.kernel() == kernel),
            "{kernel:?}"
        );
    }
    for (name, optimizer) in variants {
        // Over one vector, or the matrices Muon needs (`verify::shaped_layout`).
        let layout = match optimizer {
            wgoptim::Optimizer::Muon(_) => wgoptim::verify::shaped_layout(&optimizer, n),
            _ => None,
        };
        let len = layout.as_ref().map_or(n, |l| l.len());
        let p0 = Data::new(42).vector(len);
        let mut data = Data::new(43);
        let grads: Vec<Vec<f32>> = (0..total).map(|_| data.gradients(len)).collect();
        let fresh = || match &layout {
            Some(l) => GpuOptimizer::with_layout(&ctx, optimizer, l.clone()).unwrap(),
            None => GpuOptimizer::new(&ctx, optimizer, n).unwrap(),
        };
        let build = || {
            let mut o = fresh();
            o.write_params(&p0).unwrap();
            o.set_schedule(Some(wgoptim::Schedule::cosine(total as u64)))
                .unwrap();
            o
        };
        let mut straight = build();
        for g in &grads {
            straight.write_grads(g).unwrap();
            straight.step().unwrap();
        }
        let mut first = build();
        for g in &grads[..at] {
            first.write_grads(g).unwrap();
            first.step().unwrap();
        }
        let bytes = first.checkpoint().unwrap();
        let mut resumed = fresh();
        resumed.restore(&bytes).unwrap();
        for g in &grads[at..] {
            resumed.write_grads(g).unwrap();
            resumed.step().unwrap();
        }
        assert_eq!(
            resumed.read_params().unwrap(),
            straight.read_params().unwrap(),
            "{name}"
        );
        for slot in optimizer.state_layout().slots {
            assert_eq!(
                resumed.read_state(slot.name).unwrap(),
                straight.read_state(slot.name).unwrap(),
                "{name} {}",
                slot.name
            );
        }
    }
}
