//! LAMB's trust ratio per tensor of a packed layout: tensors of every size (a lone element, a
//! partial vec4, more than one 4,096-element piece, one crossing a binding seam), in one
//! layout and in parameter groups, on both backends. The backends agree bit for bit (the CPU
//! twin sums in the kernels' order), both match the f64 oracle run tensor by tensor, the padding
//! between tensors is never written, and each tensor really gets a ratio of its own.

mod common;

use wgoptim::cpu::Oracle;
use wgoptim::verify::{self, Data};
use wgoptim::{
    Backend, CpuContext, CpuOptimizer, Error, GpuOptimizer, Lamb, Optimizer, ParamGroup,
    ParamLayout,
};

const SHAPES: [(&str, &[usize]); 6] = [
    ("a", &[3]),
    ("b", &[4097]),
    ("c", &[70, 131]),
    ("d", &[1]),
    // 300,001 elements: past the small device's 262,144-element binding chunks.
    ("e", &[300_001]),
    ("f", &[8192]),
];

fn layout(limits: &wgpu::Limits) -> ParamLayout {
    let mut layout = ParamLayout::for_limits(limits);
    for (name, shape) in SHAPES {
        layout.add(name, shape).unwrap();
    }
    layout
}

/// Writes the same seeded parameters into both backends and takes `steps` steps with the same
/// seeded gradients (zero in the gaps); returns the packed start.
fn run(
    gpu: &mut dyn Backend,
    cpu: &mut dyn Backend,
    layout: &ParamLayout,
    steps: usize,
) -> Vec<f32> {
    let mut data = Data::new(11);
    let mut p0 = vec![0.0; layout.len()];
    for t in layout.tensors() {
        p0[t.range()].copy_from_slice(&data.vector(t.len));
    }
    gpu.write_params(&p0).unwrap();
    cpu.write_params(&p0).unwrap();
    for _ in 0..steps {
        let mut g = vec![0.0; layout.len()];
        for t in layout.tensors() {
            g[t.range()].copy_from_slice(&data.gradients(t.len));
        }
        gpu.write_grads(&g).unwrap();
        gpu.step().unwrap();
        cpu.write_grads(&g).unwrap();
        cpu.step().unwrap();
    }
    p0
}

/// `a` and `b` equal bit for bit; else the first tensor and element where they differ.
fn assert_same(a: &[f32], b: &[f32], layout: &ParamLayout, what: &str) {
    if let Some(i) = (0..a.len()).find(|&i| a[i].to_bits() != b[i].to_bits()) {
        let t = layout.tensors().iter().find(|t| t.range().contains(&i));
        panic!(
            "{what}[{i}] (tensor {:?}): gpu {:e} vs cpu {:e}",
            t.map(|t| (&t.name, t.offset, t.len)),
            a[i],
            b[i]
        );
    }
}

#[test]
fn lamb_ratios_are_per_tensor_on_both_backends() {
    let Some(ctx) = common::small() else { return };
    let layout = layout(&ctx.limits());
    let steps = 5;
    for optimizer in [
        Lamb::default().lr(0.01),
        Lamb::default().lr(0.01).weight_decay(0.0).use_nvlamb(true),
    ] {
        let mut gpu = GpuOptimizer::with_layout(&ctx, optimizer, layout.clone()).unwrap();
        let mut cpu =
            CpuOptimizer::with_layout(&CpuContext::new(), optimizer, layout.clone()).unwrap();
        let p0 = run(&mut gpu, &mut cpu, &layout, steps);
        let (g_params, c_params) = (gpu.read_params().unwrap(), cpu.read_params().unwrap());
        assert_same(&g_params, &c_params, &layout, "parameters");
        for name in ["exp_avg", "exp_avg_sq"] {
            let (a, b) = (gpu.read_state(name).unwrap(), cpu.read_state(name).unwrap());
            assert_same(&a, &b, &layout, name);
        }
        // The oracle over the same tensors, fed the same gradients.
        let tensors: Vec<_> = layout.tensors().iter().map(|t| t.range()).collect();
        let mut oracle = Oracle::with_tensors(optimizer, &p0, tensors).unwrap();
        let mut data = Data::new(11);
        for t in layout.tensors() {
            data.vector(t.len);
        }
        for _ in 0..steps {
            let mut g = vec![0.0; layout.len()];
            for t in layout.tensors() {
                g[t.range()].copy_from_slice(&data.gradients(t.len));
            }
            oracle.step(&g).unwrap();
        }
        for t in layout.tensors() {
            let r = t.range();
            let d = verify::Diff::of(
                &g_params[r.clone()],
                &c_params[r.clone()],
                &oracle.params()[r],
                steps as u64,
            );
            assert!(d.passes(steps as u64), "{}: {d:?}", t.name);
        }
        // The gaps between tensors are never written.
        let mut covered = vec![false; layout.len()];
        for t in layout.tensors() {
            covered[t.range()].iter_mut().for_each(|c| *c = true);
        }
        for (i, _) in covered.iter().enumerate().filter(|(_, c)| !**c) {
            assert_eq!(g_params[i], 0.0, "gap element {i}");
        }
    }
}

/// One oracle over the whole vector (one tensor) differs from the per-tensor one: the layout's
/// ratios are really per tensor.
#[test]
fn one_ratio_for_all_would_differ() {
    let Some(ctx) = common::small() else { return };
    let layout = layout(&ctx.limits());
    let optimizer = Lamb::default().lr(0.01);
    let mut gpu = GpuOptimizer::with_layout(&ctx, optimizer, layout.clone()).unwrap();
    let mut flat = GpuOptimizer::new(&ctx, optimizer, layout.len()).unwrap();
    run(&mut gpu, &mut flat, &layout, 2);
    let (a, b) = (gpu.read_params().unwrap(), flat.read_params().unwrap());
    let differ = layout
        .tensors()
        .iter()
        .filter(|t| a[t.range()] != b[t.range()])
        .count();
    assert_eq!(differ, layout.tensors().len());
}

#[test]
fn lamb_groups_each_keep_their_tensors() {
    let Some(ctx) = common::small() else { return };
    let groups = vec![
        ParamGroup::new(Lamb::default().lr(0.01))
            .tensor("w1", &[300, 20])
            .tensor("w2", &[5000]),
        ParamGroup::new(Lamb::default().lr(0.02).weight_decay(0.0)).tensor("b", &[77]),
    ];
    let mut gpu = GpuOptimizer::with_groups(&ctx, groups.clone()).unwrap();
    let mut cpu = CpuOptimizer::with_groups(&CpuContext::new(), groups).unwrap();
    let layout = gpu.layout().unwrap().clone();
    run(&mut gpu, &mut cpu, &layout, 3);
    let (a, b) = (gpu.read_params().unwrap(), cpu.read_params().unwrap());
    assert_same(&a, &b, &layout, "parameters");
}

#[test]
fn lamb_refuses_low_precision() {
    for o in [
        Optimizer::from(Lamb::default().state(wgoptim::StatePrecision::bf16())),
        Lamb::default().grads(wgoptim::GradDType::F16).into(),
        Lamb::default().params(wgoptim::ParamDType::Bf16).into(),
    ] {
        assert!(
            matches!(
                o.validate(),
                Err(Error::UnsupportedPrecision {
                    optimizer: "lamb",
                    ..
                })
            ),
            "{o:?}"
        );
    }
}
