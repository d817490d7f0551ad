//! Adafactor's factored second moments over a packed layout: matrices (one row, one column,
//! batches of matrices), vectors (one crossing a binding seam), a scalar, in one layout and in
//! parameter groups, on both backends. The backends agree bit for bit (the CPU twin sums every
//! row, column, mean and piece in the kernels' order), both match the f64 oracle run tensor by
//! tensor, the state is B·(rows + columns) per matrix, and a matrix the device cannot bind
//! whole is refused with a typed error.

mod common;

use wgoptim::verify;
use wgoptim::{
    Adafactor, Backend, CpuContext, CpuOptimizer, Error, GpuOptimizer, Optimizer, ParamGroup,
    ParamLayout,
};

const SHAPES: [(&str, &[usize]); 8] = [
    ("w", &[70, 131]),
    ("b", &[131]),
    ("k", &[3, 5, 7]),
    ("row", &[1, 300]),
    ("col", &[300, 1]),
    ("s", &[]),
    // Inside the first chunk, more than one 4,096-element piece per row block.
    ("m", &[100, 1000]),
    // 200,001 elements, from about 110,000: across the small device's 262,144-element binding
    // chunks (its state, bound whole, still fits the small device's 1 MiB bindings).
    ("v", &[200_001]),
];

fn layout(limits: &wgpu::Limits) -> ParamLayout {
    let mut layout = ParamLayout::for_limits(limits);
    for (name, shape) in SHAPES {
        layout.add(name, shape).unwrap();
    }
    layout
}

/// The state elements Adafactor needs for `shape`, written out from its definition.
fn state_len(shape: &[usize]) -> usize {
    match shape {
        [lead @ .., r, c] => lead.iter().product::<usize>() * (r + c),
        _ => shape.iter().product(),
    }
}

fn data(layout: &ParamLayout, steps: usize) -> (Vec<f32>, Vec<Vec<f32>>) {
    common::layout_data(layout, steps, 5)
}

#[test]
fn factored_moments_agree_on_both_backends_and_with_the_oracle() {
    let Some(ctx) = common::small() else { return };
    let layout = layout(&ctx.limits());
    let steps = 6;
    let (p0, grads) = data(&layout, steps);
    for optimizer in [
        Adafactor::default(),
        Adafactor::default()
            .lr(0.05)
            .weight_decay(0.1)
            .beta2_decay(-0.5)
            .eps((Some(1e-20), 1e-3))
            .d(2.0)
            .maximize(true),
    ] {
        let (gpu, cpu, oracle) = common::step_both(&ctx, optimizer.into(), &layout, &p0, &grads);
        let (g_params, c_params) = (gpu.read_params().unwrap(), cpu.read_params().unwrap());
        assert_eq!(
            common::first_difference(&g_params, &c_params),
            None,
            "parameters"
        );
        let (g_state, c_state) = (
            gpu.read_state("variance").unwrap(),
            cpu.read_state("variance").unwrap(),
        );
        let expected: usize = SHAPES.iter().map(|(_, s)| state_len(s)).sum();
        assert_eq!(g_state.len(), expected);
        assert_eq!(
            common::first_difference(&g_state, &c_state),
            None,
            "variance"
        );
        let oracle_state = oracle.state("variance").unwrap();
        let d = verify::Diff::of(&g_state, &c_state, oracle_state, steps as u64);
        assert!(d.passes(steps as u64), "variance: {d:?}");
        for t in layout.tensors() {
            let r = t.range();
            let d = verify::Diff::of(
                &g_params[r.clone()],
                &c_params[r.clone()],
                &oracle.params()[r.clone()],
                steps as u64,
            );
            assert!(d.passes(steps as u64), "{}: {d:?}", t.name);
            // Each tensor moved (maximize or not), and its state is its own slice.
            assert!(
                g_params[r.clone()] != p0[r.clone()],
                "{} did not move",
                t.name
            );
            let state = gpu.read_tensor_state(&t.name, "variance").unwrap();
            assert_eq!(state.len(), state_len(&t.shape), "{}", t.name);
            assert_eq!(state, cpu.read_tensor_state(&t.name, "variance").unwrap());
        }
        common::assert_gaps_unwritten(&layout, &g_params);
    }
}

#[test]
fn groups_and_a_checkpoint_resume_bit_identically() {
    let Some(ctx) = common::small() else { return };
    let groups = || {
        ParamGroup::split_weight_decay(
            Adafactor::default().weight_decay(0.05),
            &SHAPES[..6],
            |name| name == "b" || name == "s",
        )
    };
    common::groups_resume_across_backends(&ctx, groups, "variance");
}

#[test]
fn a_matrix_across_a_binding_seam_is_refused() {
    let Some(ctx) = common::small() else { return };
    let mut layout = ParamLayout::for_limits(&ctx.limits());
    layout.add("lead", &[200_000]).unwrap();
    // 200,000 + 100,000 elements: across the small device's 262,144-element seam.
    layout.add("w", &[100, 1000]).unwrap();
    match GpuOptimizer::with_layout(&ctx, Adafactor::default(), layout.clone()) {
        Err(Error::InvalidShape(why)) => assert!(why.contains("Adafactor"), "{why}"),
        other => panic!("expected InvalidShape, got {:?}", other.map(|_| ())),
    }
    // The CPU has no bindings: the same layout runs there.
    CpuOptimizer::with_layout(&CpuContext::new(), Adafactor::default(), layout).unwrap();
    // A vector's averages past one binding (the state is bound whole): refused too.
    match GpuOptimizer::new(&ctx, Adafactor::default(), 300_001) {
        Err(Error::InvalidShape(why)) => assert!(why.contains("state"), "{why}"),
        other => panic!("expected InvalidShape, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn bad_hyperparameters_and_precisions_are_refused() {
    let Some(ctx) = common::full() else { return };
    for bad in [
        Adafactor::default().lr(-1.0),
        Adafactor::default().beta2_decay(0.1),
        Adafactor::default().beta2_decay(f64::NAN),
        Adafactor::default().eps((Some(-1.0), 1e-3)),
        Adafactor::default().eps((None, -1e-3)),
        Adafactor::default().d(0.5),
        Adafactor::default().weight_decay(-0.1),
    ] {
        let err = GpuOptimizer::with_params(&ctx, bad, &[1.0; 8]).unwrap_err();
        assert!(
            matches!(err, Error::InvalidHyperparameter { .. }),
            "{bad:?}: {err}"
        );
    }
    for state in [
        wgoptim::StatePrecision::bf16(),
        wgoptim::StatePrecision::int8(),
    ] {
        let o = Optimizer::from(Adafactor::default()).with_state_precision(state);
        let err = CpuOptimizer::new(&CpuContext::new(), o, 8).unwrap_err();
        assert!(matches!(err, Error::UnsupportedPrecision { .. }), "{err}");
    }
}

/// Special gradients in matrices (±0, subnormals, ±∞, NaN spread over rows and columns) and a
/// matrix whose gradient is all zero: both backends give the same bits (NaN for NaN), and the
/// all-zero matrix only decays (mean(R) = 0 is held at ε₁, V̂ = 0 at ε₁², u = 0).
#[test]
fn special_gradients_in_matrices_agree_on_both_backends() {
    let Some(ctx) = common::full() else { return };
    let specials = [
        0.0,
        -0.0,
        1e-40,
        -1e-40,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        0.5,
        -0.25,
    ];
    let mut layout = ParamLayout::for_limits(&ctx.limits());
    for (name, shape) in [
        ("a", &[8usize, 12][..]),
        ("b", &[7, 5]),
        ("zero", &[4, 4]),
        ("v", &[9]),
    ] {
        layout.add(name, shape).unwrap();
    }
    let same = |a: f32, b: f32| (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits();
    let optimizer = Adafactor::default().weight_decay(0.1);
    let mut gpu = GpuOptimizer::with_layout(&ctx, optimizer, layout.clone()).unwrap();
    let mut cpu = CpuOptimizer::with_layout(&CpuContext::new(), optimizer, layout.clone()).unwrap();
    let (p0, _) = data(&layout, 0);
    gpu.write_params(&p0).unwrap();
    cpu.write_params(&p0).unwrap();
    let zero = layout.get("zero").unwrap().range();
    for step in 0..3 {
        let mut g: Vec<f32> = (0..layout.len())
            .map(|i| specials[(i * 7 + step * 5) % specials.len()])
            .collect();
        g[zero.clone()].iter_mut().for_each(|x| *x = 0.0);
        for b in [&mut gpu as &mut dyn Backend, &mut cpu] {
            b.write_grads(&g).unwrap();
            b.step().unwrap();
        }
    }
    let pairs = [
        (
            "params",
            gpu.read_params().unwrap(),
            cpu.read_params().unwrap(),
        ),
        (
            "variance",
            gpu.read_state("variance").unwrap(),
            cpu.read_state("variance").unwrap(),
        ),
    ];
    for (what, a, b) in pairs {
        assert_eq!(a.len(), b.len());
        for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
            assert!(same(x, y), "{what}[{i}]: gpu {x:e} vs cpu {y:e}");
        }
    }
    // The all-zero matrix: θ(1 − γλ) three times, nothing else.
    let got = gpu.read_tensor("zero").unwrap();
    for (k, (&x, &p)) in got.iter().zip(&p0[zero]).enumerate() {
        let decay = (1.0 - 1e-2 * 0.1) as f32;
        let want = p * decay * decay * decay;
        assert_eq!(x.to_bits(), want.to_bits(), "zero[{k}]: {x:e} vs {want:e}");
    }
}
