//! Muon over a packed layout of matrices (wide, tall, square, one row, one column, one larger
//! than a 4,096-element piece) in one layout and in parameter groups, on both backends. The
//! backends agree bit for bit (the CPU twin sums every norm and every product in the kernels'
//! order), both stay near the f64 oracle, and what Muon cannot run is refused with a typed
//! error on both: a tensor that is not 2-D (as PyTorch), no layout, low precision, scratch
//! space larger than one storage binding.

mod common;

use wgoptim::cpu::Oracle;
use wgoptim::verify;
use wgoptim::{
    AdjustLr, Backend, CpuContext, CpuOptimizer, Error, GpuOptimizer, Muon, ParamGroup,
    ParamLayout, StatePrecision,
};

const SHAPES: [(&str, &[usize]); 6] = [
    ("wide", &[20, 45]),
    ("tall", &[50, 17]),
    ("square", &[33, 33]),
    ("row", &[1, 300]),
    ("col", &[200, 1]),
    // Two pieces.
    ("big", &[70, 100]),
];

fn layout(limits: &wgpu::Limits) -> ParamLayout {
    let mut layout = ParamLayout::for_limits(limits);
    for (name, shape) in SHAPES {
        layout.add(name, shape).unwrap();
    }
    layout
}

fn data(layout: &ParamLayout, steps: usize) -> (Vec<f32>, Vec<Vec<f32>>) {
    common::layout_data(layout, steps, 11)
}

#[test]
fn matrices_agree_on_both_backends_and_with_the_oracle() {
    let Some(ctx) = common::small() else { return };
    let layout = layout(&ctx.limits());
    let steps = 5;
    let (p0, grads) = data(&layout, steps);
    for optimizer in [
        Muon::default().lr(0.02),
        Muon::default()
            .lr(0.05)
            .nesterov(false)
            .weight_decay(0.0)
            .ns_steps(4)
            .adjust_lr_fn(AdjustLr::MatchRmsAdamw),
        Muon::default()
            .ns_steps(0)
            .adjust_lr_fn(AdjustLr::SpectralUnclamped),
    ] {
        let (gpu, cpu, oracle) = common::step_both(&ctx, optimizer.into(), &layout, &p0, &grads);
        let (g_params, c_params) = (gpu.read_params().unwrap(), cpu.read_params().unwrap());
        assert_eq!(
            common::first_difference(&g_params, &c_params),
            None,
            "{optimizer:?}"
        );
        let (g_buf, c_buf) = (
            gpu.read_state("momentum_buffer").unwrap(),
            cpu.read_state("momentum_buffer").unwrap(),
        );
        assert_eq!(
            common::first_difference(&g_buf, &c_buf),
            None,
            "momentum_buffer"
        );
        let d = verify::Diff::of(
            &g_buf,
            &c_buf,
            oracle.state("momentum_buffer").unwrap(),
            steps as u64,
        );
        assert!(d.passes(steps as u64), "momentum_buffer: {d:?}");
        for t in layout.tensors() {
            let r = t.range();
            let d = verify::Diff::of(
                &g_params[r.clone()],
                &c_params[r.clone()],
                &oracle.params()[r.clone()],
                steps as u64,
            );
            assert!(d.passes(steps as u64), "{}: {d:?}", t.name);
            assert!(g_params[r.clone()] != p0[r], "{} did not move", t.name);
        }
        common::assert_gaps_unwritten(&layout, &g_params);
    }
}

#[test]
fn groups_and_a_checkpoint_resume_bit_identically() {
    let Some(ctx) = common::small() else { return };
    let groups = || {
        ParamGroup::split_weight_decay(Muon::default().lr(0.02), &SHAPES, |name| {
            name == "row" || name == "col"
        })
    };
    common::groups_resume_across_backends(&ctx, groups, "momentum_buffer");
}

#[test]
fn what_muon_cannot_run_is_refused_on_both_backends() {
    let Some(ctx) = common::small() else { return };
    let cpu_ctx = CpuContext::new();
    let shape_error = |e: Error| matches!(e, Error::InvalidShape(m) if m.contains("2-D"));
    // A vector, a scalar, a batch of matrices: not 2-D, as PyTorch refuses them.
    for shape in [&[10][..], &[], &[2, 3, 4]] {
        let mut layout = ParamLayout::for_limits(&ctx.limits());
        layout.add("w", &[8, 8]).unwrap();
        layout.add("x", shape).unwrap();
        let g = GpuOptimizer::with_layout(&ctx, Muon::default(), layout.clone());
        assert!(shape_error(g.err().unwrap()), "{shape:?}");
        let c = CpuOptimizer::with_layout(&cpu_ctx, Muon::default(), layout.clone());
        assert!(shape_error(c.err().unwrap()), "{shape:?}");
    }
    // No layout: the parameters are one vector.
    let e = GpuOptimizer::with_params(&ctx, Muon::default(), &[1.0; 64]).err();
    assert!(shape_error(e.unwrap()));
    let e = CpuOptimizer::with_params(&cpu_ctx, Muon::default(), &[1.0; 64]).err();
    assert!(shape_error(e.unwrap()));
    let e = Oracle::new(Muon::default(), &[1.0; 64]).err();
    assert!(shape_error(e.unwrap()));
    // Low precision.
    let mut layout = ParamLayout::for_limits(&ctx.limits());
    layout.add("w", &[8, 8]).unwrap();
    let bf16 = Muon::default().state(StatePrecision::bf16().min_len(0));
    for e in [
        GpuOptimizer::with_layout(&ctx, bf16, layout.clone()).err(),
        CpuOptimizer::with_layout(&cpu_ctx, bf16, layout.clone()).err(),
    ] {
        assert!(
            matches!(e, Some(Error::UnsupportedPrecision { .. })),
            "{e:?}"
        );
    }
    // Hyperparameters PyTorch refuses (ns_steps ≥ 100, negative lr), and NaN.
    for bad in [
        Muon::default().ns_steps(100),
        Muon::default().lr(-1.0),
        Muon::default().momentum(f64::NAN),
        Muon::default().ns_coefficients((3.4445, f64::INFINITY, 2.0315)),
    ] {
        let e = CpuOptimizer::with_layout(&cpu_ctx, bad, layout.clone()).err();
        assert!(
            matches!(e, Some(Error::InvalidHyperparameter { .. })),
            "{e:?}"
        );
    }
    // The small device binds 1 MiB: a 400×400 matrix needs 4·(2·160,000 + 160,000) bytes
    // of scratch space. The CPU runs it.
    let mut big = ParamLayout::for_limits(&ctx.limits());
    big.add("w", &[400, 400]).unwrap();
    let e = GpuOptimizer::with_layout(&ctx, Muon::default(), big.clone()).err();
    assert!(
        matches!(&e, Some(Error::InvalidShape(m)) if m.contains("scratch")),
        "{e:?}"
    );
    assert!(CpuOptimizer::with_layout(&cpu_ctx, Muon::default(), big).is_ok());
}
