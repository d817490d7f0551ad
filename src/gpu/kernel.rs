//! WGSL sources, bind-group layouts and the compiled-pipeline cache, keyed by (family, variant).

use std::collections::HashMap;

use crate::optim::Kernel;

/// How a pipeline maps invocations onto elements: `workgroup_size` invocations per workgroup,
/// each updating `vecs_per_invocation` vec4 blocks, either a contiguous run of its own
/// (`strided: false`) or blocks `workgroup_size` apart so that adjacent invocations touch
/// adjacent addresses (`strided: true`, coalesced on GPUs). Passed to the kernel as the
/// overrides `WORKGROUP_SIZE`, `VECS_PER_INVOCATION` and `STRIDED`, and used by the host to
/// size the dispatch: one value, two readers. Every shape gives the same results bit for bit;
/// only the speed differs (see [`KernelShape::CANDIDATES`] and `wgoptim tune`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct KernelShape {
    /// Invocations per workgroup.
    pub workgroup_size: u32,
    /// vec4 blocks per invocation.
    pub vecs_per_invocation: u32,
    /// Blocks `workgroup_size` apart (coalesced) rather than contiguous per invocation.
    pub strided: bool,
}

impl KernelShape {
    /// The shapes a context times when it tunes (256 invocations per workgroup throughout):
    /// one vec4 per invocation and no loop, the shape burn's fused kernels launch (cubecl's
    /// line size 4, 256 invocations); 2, 4 and 8 contiguous blocks per invocation, fastest on
    /// lavapipe (BENCHMARKS.md); and 2, 4 and 8 strided blocks, the coalesced layout GPUs prefer.
    pub const CANDIDATES: [KernelShape; 7] = [
        KernelShape::contiguous(1),
        KernelShape::contiguous(2),
        KernelShape::contiguous(4),
        KernelShape::contiguous(8),
        KernelShape::strided(2),
        KernelShape::strided(4),
        KernelShape::strided(8),
    ];

    /// `vecs` contiguous vec4 blocks per invocation, 256 invocations per workgroup.
    pub const fn contiguous(vecs: u32) -> Self {
        Self {
            workgroup_size: 256,
            vecs_per_invocation: vecs,
            strided: false,
        }
    }

    /// `vecs` vec4 blocks per invocation, 256 apart, 256 invocations per workgroup.
    pub const fn strided(vecs: u32) -> Self {
        Self {
            workgroup_size: 256,
            vecs_per_invocation: vecs,
            strided: true,
        }
    }

    /// The untuned default for a variant with `state_tensors` state buffers. Measured on
    /// lavapipe at 2^24 (BENCHMARKS.md): variants with two or more state tensors (Adam, AMSGrad,
    /// centered RMSprop with momentum) run fastest with 4 contiguous blocks per invocation,
    /// those with one (RMSprop, Adagrad) with 2; SGD does not care.
    pub fn for_state_tensors(state_tensors: usize) -> Self {
        Self::contiguous(if state_tensors >= 2 { 4 } else { 2 })
    }

    /// Elements one workgroup updates.
    pub fn elements_per_workgroup(self) -> u64 {
        u64::from(self.workgroup_size) * u64::from(self.vecs_per_invocation) * 4
    }

    /// A short name: `c4` (4 contiguous blocks), `s4` (4 strided), `c1` (one block).
    pub fn name(self) -> String {
        let kind = if self.strided { 's' } else { 'c' };
        let mut name = format!("{kind}{}", self.vecs_per_invocation);
        if self.workgroup_size != 256 {
            name.push_str(&format!("x{}", self.workgroup_size));
        }
        name
    }

    /// Checks that the device can run this shape (workgroup size within its limits, at least
    /// one block per invocation).
    pub fn validate(self, limits: &wgpu::Limits) -> crate::Result<()> {
        let ok = self.vecs_per_invocation >= 1
            && self.workgroup_size >= 1
            && self.workgroup_size <= limits.max_compute_invocations_per_workgroup
            && self.workgroup_size <= limits.max_compute_workgroup_size_x;
        if ok {
            Ok(())
        } else {
            Err(crate::Error::InvalidShape(format!(
                "{self:?}: needs vecs_per_invocation >= 1 and 1 <= workgroup_size <= {}",
                limits
                    .max_compute_invocations_per_workgroup
                    .min(limits.max_compute_workgroup_size_x)
            )))
        }
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
        ("STRIDED", if shape.strided { 1.0 } else { 0.0 }),
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
