//! WGSL sources, bind-group layouts and the compiled-pipeline cache, keyed by (family, variant).

use std::collections::HashMap;

use crate::optim::Kernel;

/// How a pipeline maps invocations onto elements: `workgroup_size` invocations per workgroup,
/// each updating `vecs_per_invocation` contiguous vec4 blocks. Passed to the kernel as the
/// overrides `WORKGROUP_SIZE` and `VECS_PER_INVOCATION`, and used by the host to size the
/// dispatch: one value, two readers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KernelShape {
    /// Invocations per workgroup.
    pub workgroup_size: u32,
    /// Contiguous vec4 blocks per invocation.
    pub vecs_per_invocation: u32,
}

impl KernelShape {
    /// The shape for a variant with `state_tensors` state buffers. Measured on lavapipe at 2^24
    /// (BENCHMARKS.md): variants with two or more state tensors (Adam, AMSGrad, centered RMSprop
    /// with momentum) run fastest with 4 blocks per invocation, those with one (RMSprop,
    /// Adagrad) with 2; SGD does not care. 256 invocations per workgroup throughout.
    pub fn for_state_tensors(state_tensors: usize) -> Self {
        Self {
            workgroup_size: 256,
            vecs_per_invocation: if state_tensors >= 2 { 4 } else { 2 },
        }
    }

    /// Elements one workgroup updates.
    pub fn elements_per_workgroup(self) -> u64 {
        u64::from(self.workgroup_size) * u64::from(self.vecs_per_invocation) * 4
    }
}

const TYPES: &str = include_str!("../../shaders/types.wgsl");
const COMMON: &str = include_str!("../../shaders/common.wgsl");
const NORM: &str = include_str!("../../shaders/norm.wgsl");

/// The complete WGSL module of a family: `types.wgsl`, `common.wgsl`, then the family's file.
pub fn shader_source(kernel: Kernel) -> String {
    let family = match kernel {
        Kernel::Sgd => include_str!("../../shaders/sgd.wgsl"),
        Kernel::RmsProp => include_str!("../../shaders/rmsprop.wgsl"),
        Kernel::Adam => include_str!("../../shaders/adam.wgsl"),
        Kernel::Adagrad => include_str!("../../shaders/adagrad.wgsl"),
    };
    format!("{TYPES}\n{COMMON}\n{family}")
}

/// The WGSL module of the gradient-norm pass: `types.wgsl` then `norm.wgsl`.
pub fn norm_source() -> String {
    format!("{TYPES}\n{NORM}")
}

/// The override constants of one pipeline: its shape and the variant's flags.
pub fn pipeline_constants(
    kernel: Kernel,
    variant: &[bool],
    shape: KernelShape,
) -> Vec<(&'static str, f64)> {
    let mut constants = vec![
        ("WORKGROUP_SIZE", f64::from(shape.workgroup_size)),
        ("VECS_PER_INVOCATION", f64::from(shape.vecs_per_invocation)),
    ];
    for (name, &on) in kernel.variant_constants().iter().zip(variant) {
        constants.push((name, if on { 1.0 } else { 0.0 }));
    }
    constants
}

/// One compute-visible buffer entry of a bind-group layout.
fn layout_entry(binding: u32, ty: wgpu::BufferBindingType) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// A storage-buffer binding type.
fn storage(read_only: bool) -> wgpu::BufferBindingType {
    wgpu::BufferBindingType::Storage { read_only }
}

/// The bind-group layout of a family:
/// 0 step uniform, 1 chunk uniform, 2 parameters (read-write), 3 gradients (read-only),
/// 4… state (read-write), one per state binding the family declares, 8 the control block and
/// 9 the step scalars (both read-only).
fn bind_group_layout(device: &wgpu::Device, kernel: Kernel) -> wgpu::BindGroupLayout {
    let entry = layout_entry;
    let mut entries = vec![
        entry(0, wgpu::BufferBindingType::Uniform),
        entry(1, wgpu::BufferBindingType::Uniform),
        entry(2, storage(false)),
        entry(3, storage(true)),
    ];
    for k in 0..kernel.state_bindings() {
        entries.push(entry(4 + k as u32, storage(false)));
    }
    entries.push(entry(8, storage(true))); // control block
    entries.push(entry(9, storage(true))); // step scalars
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(kernel.name()),
        entries: &entries,
    })
}

/// A family's compiled objects.
struct Family {
    layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    module: wgpu::ShaderModule,
}

/// Shader modules, layouts and pipelines, built on first use and reused for the context's life.
#[derive(Default)]
pub(crate) struct KernelCache {
    families: HashMap<Kernel, Family>,
    norm: HashMap<
        KernelShape,
        (
            wgpu::BindGroupLayout,
            wgpu::ComputePipeline,
            wgpu::ComputePipeline,
        ),
    >,
    pipelines: HashMap<(Kernel, Vec<bool>, KernelShape), wgpu::ComputePipeline>,
    /// Pipelines compiled so far (a test checks that stepping compiles none).
    pub created: usize,
}

impl KernelCache {
    /// The norm pass's layout and its `partial` and `finish` pipelines for `shape`, compiled if
    /// new.
    pub fn norm(
        &mut self,
        device: &wgpu::Device,
        shape: KernelShape,
    ) -> (
        wgpu::BindGroupLayout,
        wgpu::ComputePipeline,
        wgpu::ComputePipeline,
    ) {
        let created = &mut self.created;
        let (layout, partial, finish) = self.norm.entry(shape).or_insert_with(|| {
            let entry = layout_entry;
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("norm"),
                entries: &[
                    entry(0, wgpu::BufferBindingType::Uniform),
                    entry(1, wgpu::BufferBindingType::Uniform),
                    entry(2, storage(true)),
                    entry(3, storage(false)),
                    entry(4, storage(false)),
                ],
            });
            let pipeline_layout = super::compat::pipeline_layout(device, "norm", &layout);
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("norm"),
                source: wgpu::ShaderSource::Wgsl(norm_source().into()),
            });
            *created += 2;
            let constants = [("VECS_PER_INVOCATION", f64::from(shape.vecs_per_invocation))];
            let make = |entry: &str| {
                super::compat::compute_pipeline_entry(
                    device,
                    entry,
                    &pipeline_layout,
                    &module,
                    entry,
                    &constants,
                )
            };
            (layout, make("partial"), make("finish"))
        });
        (layout.clone(), partial.clone(), finish.clone())
    }

    /// The bind-group layout and pipeline of `(kernel, variant, shape)`, compiled if new.
    pub fn get(
        &mut self,
        device: &wgpu::Device,
        kernel: Kernel,
        variant: &[bool],
        shape: KernelShape,
    ) -> (wgpu::BindGroupLayout, wgpu::ComputePipeline) {
        let family = self.families.entry(kernel).or_insert_with(|| {
            let layout = bind_group_layout(device, kernel);
            let pipeline_layout = super::compat::pipeline_layout(device, kernel.name(), &layout);
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(kernel.name()),
                source: wgpu::ShaderSource::Wgsl(shader_source(kernel).into()),
            });
            Family {
                layout,
                pipeline_layout,
                module,
            }
        });
        let key = (kernel, variant.to_vec(), shape);
        let created = &mut self.created;
        let pipeline = self.pipelines.entry(key).or_insert_with(|| {
            *created += 1;
            let constants = pipeline_constants(kernel, variant, shape);
            super::compat::compute_pipeline(
                device,
                kernel.name(),
                &family.pipeline_layout,
                &family.module,
                &constants,
            )
        });
        (family.layout.clone(), pipeline.clone())
    }
}
