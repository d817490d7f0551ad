//! Many tensors in one flat buffer: per-tensor reads and writes land in the right place, a step
//! over all of them equals the twin over the packed vector, gaps stay zero, views bind at
//! aligned offsets, and bad names, shapes, lengths and ranges are typed errors.

mod common;

use wgoptim::verify::Data;
use wgoptim::{Adam, Backend, CpuOptimizer, Error, GpuOptimizer, ParamLayout, Sgd};

fn model_layout(limits: &wgpu::Limits) -> ParamLayout {
    let mut layout = ParamLayout::for_limits(limits);
    for (i, shape) in [&[3usize, 5][..], &[7], &[64, 3], &[1], &[2, 2, 2], &[300]]
        .iter()
        .enumerate()
    {
        layout.add(&format!("layer{i}"), shape).unwrap();
    }
    layout
}

#[test]
fn per_tensor_io_and_a_packed_step() {
    let Some(ctx) = common::small() else { return };
    let layout = model_layout(&ctx.limits());
    let align = ctx.limits().min_storage_buffer_offset_alignment as usize / 4;
    for t in layout.tensors() {
        assert_eq!(
            t.offset % align,
            0,
            "{} at {} is not bindable",
            t.name,
            t.offset
        );
    }
    let optimizer = Adam::adamw().lr(0.01);
    let mut gpu = GpuOptimizer::with_layout(&ctx, optimizer, layout.clone()).unwrap();
    let mut data = Data::new(3);
    let params: Vec<Vec<f32>> = layout
        .tensors()
        .iter()
        .map(|t| data.vector(t.len))
        .collect();
    let grads: Vec<Vec<f32>> = layout
        .tensors()
        .iter()
        .map(|t| data.gradients(t.len))
        .collect();
    for (t, (p, g)) in layout.tensors().iter().zip(params.iter().zip(&grads)) {
        gpu.write_tensor(&t.name, p).unwrap();
        gpu.write_tensor_grads(&t.name, g).unwrap();
    }
    let flat_p = layout
        .pack(&params.iter().map(Vec::as_slice).collect::<Vec<_>>())
        .unwrap();
    let flat_g = layout
        .pack(&grads.iter().map(Vec::as_slice).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(
        gpu.read_params().unwrap(),
        flat_p,
        "tensors land at their offsets, gaps zero"
    );
    let mut twin =
        CpuOptimizer::with_params(&wgoptim::CpuContext::new(), optimizer, &flat_p).unwrap();
    twin.write_grads(&flat_g).unwrap();
    for _ in 0..3 {
        gpu.step().unwrap();
        twin.step().unwrap();
    }
    let stepped = gpu.read_params().unwrap();
    assert_eq!(stepped, twin.params());
    for t in layout.tensors() {
        assert_eq!(
            gpu.read_tensor(&t.name).unwrap(),
            &twin.params()[t.range()],
            "{}",
            t.name
        );
        assert_eq!(
            gpu.read_tensor_state(&t.name, "exp_avg").unwrap(),
            &twin.read_state("exp_avg").unwrap()[t.range()]
        );
    }
    let covered: usize = layout.tensors().iter().map(|t| t.len).sum();
    let zeros = (0..layout.len())
        .filter(|i| !layout.tensors().iter().any(|t| t.range().contains(i)))
        .all(|i| stepped[i] == 0.0);
    assert!(
        zeros && covered < layout.len(),
        "gaps between tensors stay zero"
    );
}

#[test]
fn a_thousand_tensors_are_one_dispatch_per_chunk() {
    let Some(ctx) = common::small() else { return };
    let mut layout = ParamLayout::for_limits(&ctx.limits());
    for i in 0..1000 {
        layout.add(&format!("w{i}"), &[1 + i % 97]).unwrap();
    }
    let gpu =
        GpuOptimizer::with_layout(&ctx, Sgd::default().momentum(0.9), layout.clone()).unwrap();
    let chunk = (common::SMALL_BINDING_BYTES / 4) as usize;
    assert_eq!(gpu.chunks().len(), layout.len().div_ceil(chunk));
    assert!(gpu.chunks().len() < 1000 / 10);
}

#[test]
fn views_bind_in_a_callers_kernel() {
    // A caller's own kernel doubles one tensor's gradients through `tensor_binding`.
    let Some(ctx) = common::full() else { return };
    let layout = model_layout(&ctx.limits());
    let mut gpu = GpuOptimizer::with_layout(&ctx, Sgd::default(), layout).unwrap();
    let g: Vec<f32> = (0..192).map(|i| i as f32).collect();
    gpu.write_tensor_grads("layer2", &g).unwrap();
    let device = ctx.device();
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: None,
        source: wgpu::ShaderSource::Wgsl(
            "@group(0) @binding(0) var<storage, read_write> g: array<f32>;
             @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
                 if id.x < arrayLength(&g) { g[id.x] = 2.0 * g[id.x]; }
             }"
            .into(),
        ),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let binding = gpu.tensor_binding("layer2", 0..192, true).unwrap();
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(binding),
        }],
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(3, 1, 1);
    }
    ctx.queue().submit([encoder.finish()]);
    let all = gpu.read_grads().unwrap();
    let view = gpu.view("layer2").unwrap().clone();
    assert_eq!(
        &all[view.range()],
        g.iter().map(|x| 2.0 * x).collect::<Vec<_>>().as_slice()
    );
    assert!(
        all[..view.offset]
            .iter()
            .chain(&all[view.offset + view.len..])
            .all(|&x| x == 0.0),
        "only the view changed"
    );
}

#[test]
fn bad_names_shapes_lengths_and_ranges() {
    let mut layout = ParamLayout::new(64);
    layout.add("a", &[4, 4]).unwrap();
    assert!(matches!(
        layout.add("a", &[2]),
        Err(Error::DuplicateTensor(_))
    ));
    assert!(matches!(
        layout.add("b", &[3, 0]),
        Err(Error::EmptyTensor { .. })
    ));
    assert!(matches!(
        layout.add("d", &[usize::MAX, 2]),
        Err(Error::TensorTooLarge { .. })
    ));
    assert!(matches!(layout.get("zz"), Err(Error::UnknownTensor(_))));
    assert!(matches!(
        layout.pack(&[&[1.0; 3]]),
        Err(Error::LengthMismatch {
            expected: 16,
            got: 3,
            ..
        })
    ));
    let Some(ctx) = common::full() else { return };
    let mut gpu = GpuOptimizer::with_layout(&ctx, Sgd::default().lr(1.0), layout).unwrap();
    gpu.write_tensor("a", &[1.0; 16]).unwrap();
    assert!(matches!(
        gpu.write_tensor("a", &[9.0; 15]),
        Err(Error::LengthMismatch {
            expected: 16,
            got: 15,
            ..
        })
    ));
    assert!(matches!(
        gpu.write_tensor("nope", &[1.0]),
        Err(Error::UnknownTensor(_))
    ));
    assert!(matches!(
        gpu.read_tensor_state("a", "momentum_buffer"),
        Err(Error::UnknownState { .. })
    ));
    for range in [0..17, 5..5, 16..20] {
        assert!(
            matches!(
                gpu.tensor_binding("a", range.clone(), false),
                Err(Error::ViewOutOfRange { .. })
            ),
            "{range:?}"
        );
    }
    assert_eq!(
        gpu.read_tensor("a").unwrap(),
        [1.0; 16],
        "refused writes changed nothing"
    );
    let plain = GpuOptimizer::new(&ctx, Sgd::default(), 4).unwrap();
    assert!(matches!(plain.view("a"), Err(Error::UnknownTensor(_))));
}
