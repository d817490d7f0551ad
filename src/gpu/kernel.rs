//! WGSL sources, bind-group layouts and the compiled-pipeline cache, keyed by (family, variant).

use std::collections::HashMap;

use crate::optim::{GradDType, Kernel, ParamDType, StateDType};

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

    /// The block-wise (int8 state) kernel's fixed shape: one vec4 block per invocation, 256
    /// invocations, so that a workgroup holds whole quantization blocks. Not tuned.
    pub const BLOCKWISE: KernelShape = KernelShape::contiguous(1);

    /// The per-tensor driver's fixed shape: a workgroup is one piece of 256 invocations × 4
    /// contiguous vec4 blocks (`shaders/pieces.wgsl`). Not tuned.
    pub const PER_TENSOR: KernelShape = KernelShape::contiguous(4);

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
const HALF: &str = include_str!("../../shaders/half.wgsl");
const PARAM_F32: &str = include_str!("../../shaders/param_f32.wgsl");
const PARAM_MASTER: &str = include_str!("../../shaders/param_master.wgsl");
const PARAM_BF16: &str = include_str!("../../shaders/param_bf16.wgsl");
const GRAD_F32: &str = include_str!("../../shaders/grad_f32.wgsl");
const GRAD_HALF: &str = include_str!("../../shaders/grad_half.wgsl");
const LOWP: &str = include_str!("../../shaders/lowp.wgsl");
const STATE_F32: &str = include_str!("../../shaders/state_f32.wgsl");
const STATE_BF16: &str = include_str!("../../shaders/state_bf16.wgsl");
const STATE_INT8: &str = include_str!("../../shaders/state_int8.wgsl");
const ELEMENTWISE_DRIVER: &str = include_str!("../../shaders/elementwise.wgsl");
const BLOCKWISE_DRIVER: &str = include_str!("../../shaders/blockwise.wgsl");
const PIECES_DRIVER: &str = include_str!("../../shaders/pieces.wgsl");
const NORM: &str = include_str!("../../shaders/norm.wgsl");

/// Binding of the bf16 model copy of master-weight parameters.
pub(crate) const MODEL_BINDING: u32 = 7;

/// Binding of the block-wise kernel's code tables.
pub(crate) const CODE_TABLES_BINDING: u32 = 10;

/// Binding of the per-tensor driver's piece and tensor tables (`shaders/pieces.wgsl`).
pub(crate) const PIECE_TABLES_BINDING: u32 = 10;

/// Binding of the per-tensor driver's sums and trust ratios.
pub(crate) const PIECE_SUMS_BINDING: u32 = 11;

/// Binding of the scratch space of families that need one (Muon's Newton–Schulz matrices).
pub(crate) const SCRATCH_BINDING: u32 = 12;

/// Binding of the absmax buffer of int8 state slot `slot`.
pub(crate) fn absmax_binding(slot: usize) -> u32 {
    11 + slot as u32
}

/// The gradient module of `grads` at `binding`: the `grad` binding and `load_grad`.
fn grad_module(grads: GradDType, binding: u32) -> String {
    let module = match grads {
        GradDType::F32 => GRAD_F32.to_string(),
        GradDType::F16 => GRAD_HALF.replace("$unpack", "f16_unpack"),
        GradDType::Bf16 => GRAD_HALF.replace("$unpack", "bf16_unpack"),
    };
    module
        .replace("$dtype", grads.name())
        .replace("$binding", &binding.to_string())
}

/// Which kernel a pipeline runs: the family, the gradients' type, and the type and use of each
/// of its state slots. Slots the variant does not use are declared f32 (bound to a
/// placeholder, never touched).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KernelKey {
    /// The family.
    pub kernel: Kernel,
    /// The gradients' type.
    pub grads: GradDType,
    /// The parameters' type.
    pub params: ParamDType,
    /// The state's element type.
    pub dtype: StateDType,
    /// Which of the family's state slots the variant uses.
    pub used: [bool; 3],
    /// Which are never negative (the unsigned map; stochastic bf16 rounding).
    pub non_negative: [bool; 3],
}

impl KernelKey {
    /// The key of `optimizer`'s kernel (its state type as configured; see
    /// [`crate::Optimizer::resolved_for`]).
    pub fn of(optimizer: &crate::Optimizer) -> Self {
        let layout = optimizer.state_layout();
        let (mut used, mut non_negative) = ([false; 3], [false; 3]);
        for slot in &layout.slots {
            used[slot.slot] = true;
            non_negative[slot.slot] = slot.non_negative;
        }
        Self {
            kernel: optimizer.kernel(),
            grads: optimizer.grad_dtype(),
            params: optimizer.param_dtype(),
            dtype: layout.dtype(),
            used,
            non_negative,
        }
    }

    /// Whether the kernel runs the block-wise driver (int8 state).
    pub fn blockwise(&self) -> bool {
        self.dtype == StateDType::Int8 && self.used.iter().any(|&u| u)
    }

    /// Whether the kernel runs the per-tensor driver (`shaders/pieces.wgsl`: LAMB, Adafactor).
    pub fn per_tensor(&self) -> bool {
        self.kernel.per_tensor()
    }

    /// Storage buffers the kernel binds: parameters, gradients, every state binding of the
    /// family, the control block, the step scalars; block-wise kernels add the code tables and
    /// one absmax per used slot (int8 AMSGrad: 11).
    pub fn storage_buffers(&self) -> u32 {
        let state = self.kernel.state_bindings() as u32;
        let blockwise = if self.blockwise() {
            1 + self.used.iter().filter(|&&u| u).count() as u32
        } else {
            0
        };
        let model = u32::from(self.params == ParamDType::Bf16Master);
        let tables = if self.per_tensor() { 2 } else { 0 };
        let scratch = u32::from(self.kernel.scratch());
        4 + state + blockwise + model + tables + scratch
    }

    /// Checks that `limits` allow this kernel's bindings (more than [`super::required_limits`]
    /// guarantees, for int8 state).
    pub fn check_limits(&self, limits: &wgpu::Limits) -> crate::Result<()> {
        // Binding numbers must lie below the limit: 9 (step scalars) is the last of an
        // element-wise kernel, the absmax of the last used slot of a block-wise one.
        let bindings = match (0..3).rev().find(|&k| self.used[k]) {
            Some(k) if self.blockwise() => absmax_binding(k) + 1,
            _ if self.kernel.scratch() => SCRATCH_BINDING + 1,
            _ if self.per_tensor() => PIECE_SUMS_BINDING + 1,
            _ => 10,
        };
        super::context::require_limits(&[
            (
                "max_storage_buffers_per_shader_stage",
                self.storage_buffers(),
                limits.max_storage_buffers_per_shader_stage,
            ),
            (
                "max_bindings_per_bind_group",
                bindings,
                limits.max_bindings_per_bind_group,
            ),
        ])
    }

    /// The type of slot `k` in the module: the state's for a used slot, else f32.
    fn slot_dtype(&self, k: usize) -> StateDType {
        if self.used[k] {
            self.dtype
        } else {
            StateDType::F32
        }
    }
}

/// The complete WGSL module of a kernel: `types.wgsl`, `common.wgsl`, `half.wgsl`, the
/// gradient module, `lowp.wgsl`, one state module per slot of the family (instantiated with the slot's name, binding, map and
/// rounding), the family's file, `finish_states`, and the driver.
pub fn shader_source(key: KernelKey) -> String {
    let kernel = key.kernel;
    let family = match kernel {
        Kernel::Sgd => include_str!("../../shaders/sgd.wgsl"),
        Kernel::RmsProp => include_str!("../../shaders/rmsprop.wgsl"),
        Kernel::Adam => include_str!("../../shaders/adam.wgsl"),
        Kernel::Adagrad => include_str!("../../shaders/adagrad.wgsl"),
        Kernel::Adamax => include_str!("../../shaders/adamax.wgsl"),
        Kernel::Adadelta => include_str!("../../shaders/adadelta.wgsl"),
        Kernel::Rprop => include_str!("../../shaders/rprop.wgsl"),
        Kernel::Asgd => include_str!("../../shaders/asgd.wgsl"),
        Kernel::Lion => include_str!("../../shaders/lion.wgsl"),
        Kernel::Lamb => include_str!("../../shaders/lamb.wgsl"),
        Kernel::Adafactor => include_str!("../../shaders/adafactor.wgsl"),
        Kernel::Muon => concat!(
            include_str!("../../shaders/muon.wgsl"),
            "\n",
            include_str!("../../shaders/gemm.wgsl")
        ),
    };
    let mut states = String::new();
    let mut finish = String::from(
        "// Requantizes every used state slot (block-wise driver only).\nfn finish_states(i: u32, lanes: vec4<bool>) {\n",
    );
    for (k, name) in kernel.state_names().iter().enumerate() {
        let template = match key.slot_dtype(k) {
            StateDType::F32 => STATE_F32,
            StateDType::Bf16 => STATE_BF16,
            StateDType::Int8 => STATE_INT8,
        };
        let module = template
            .replace("$absmax_binding", &absmax_binding(k).to_string())
            .replace("$binding", &(4 + k).to_string())
            .replace("$slot", &k.to_string())
            .replace("$map", if key.non_negative[k] { "1" } else { "0" })
            .replace(
                "$stochastic",
                if key.non_negative[k] { "true" } else { "false" },
            )
            .replace("$name", name);
        states.push_str(&module);
        states.push('\n');
        if key.used[k] {
            finish.push_str(&format!("    finish_{name}(i, lanes);\n"));
        }
    }
    finish.push_str("}\n");
    let driver = if key.per_tensor() {
        PIECES_DRIVER
    } else if key.blockwise() {
        BLOCKWISE_DRIVER
    } else {
        ELEMENTWISE_DRIVER
    };
    let param = match key.params {
        ParamDType::F32 => PARAM_F32,
        ParamDType::Bf16Master => PARAM_MASTER,
        ParamDType::Bf16 => PARAM_BF16,
    };
    let grad = grad_module(key.grads, 3);
    let mut constants = lowp_constants();
    if kernel == Kernel::Muon {
        constants.push_str(&format!(
            "const OUT_TILE: u32 = {}u;\n",
            crate::optim::muon::GEMM_TILE
        ));
    }
    format!(
        "{TYPES}\n{COMMON}\n{HALF}\n{param}\n{grad}\n{constants}{LOWP}\n{states}{family}\n{finish}\n{driver}"
    )
}

/// The low-precision constants the shaders share with `src/precision.rs`, written from their
/// one definition there.
fn lowp_constants() -> String {
    use crate::precision::{BLOCK, BUCKET_BITS, PARAM_STREAM_SLOT};
    format!(
        "const PARAM_STREAM_SLOT: u32 = {PARAM_STREAM_SLOT}u;\nconst BLOCK_VECS: u32 = {}u;\nconst BUCKET_SHIFT: u32 = {}u;\n",
        BLOCK / 4,
        32 - BUCKET_BITS
    )
}

/// The WGSL module of the gradient-norm pass over gradients of `grads`: `types.wgsl`,
/// `half.wgsl`, the gradient module, `norm.wgsl`.
pub fn norm_source(grads: GradDType) -> String {
    let grad = grad_module(grads, 2);
    format!("{TYPES}\n{HALF}\n{grad}\n{NORM}")
}

/// The override constants of one pipeline: its shape (element-wise driver only) and the
/// variant's flags.
pub fn pipeline_constants(
    key: KernelKey,
    variant: &[bool],
    shape: KernelShape,
) -> Vec<(&'static str, f64)> {
    let mut constants = Vec::new();
    if !key.blockwise() && !key.per_tensor() {
        constants.extend([
            ("WORKGROUP_SIZE", f64::from(shape.workgroup_size)),
            ("VECS_PER_INVOCATION", f64::from(shape.vecs_per_invocation)),
            ("STRIDED", if shape.strided { 1.0 } else { 0.0 }),
        ]);
    }
    for (name, &on) in key.kernel.variant_constants().iter().zip(variant) {
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

/// The bind-group layout of a kernel:
/// 0 step uniform, 1 chunk uniform, 2 parameters (read-write), 3 gradients (read-only),
/// 4… state (read-write), one per state binding the family declares, 7 the bf16 model copy
/// (master weights only), 8 the control block and 9 the step scalars (both read-only);
/// block-wise kernels add 10 the code tables (read-only) and 11… each used slot's absmax
/// (read-write); the per-tensor driver 10 its tables (read-only) and 11 its sums, and Muon 12
/// its scratch space (both read-write).
fn bind_group_layout(device: &wgpu::Device, key: KernelKey) -> wgpu::BindGroupLayout {
    let kernel = key.kernel;
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
    if key.params == ParamDType::Bf16Master {
        entries.push(entry(MODEL_BINDING, storage(false))); // the bf16 model copy
    }
    entries.push(entry(8, storage(true))); // control block
    entries.push(entry(9, storage(true))); // step scalars
    if key.blockwise() {
        entries.push(entry(CODE_TABLES_BINDING, storage(true)));
        for k in (0..3).filter(|&k| key.used[k]) {
            entries.push(entry(absmax_binding(k), storage(false)));
        }
    }
    if key.per_tensor() {
        entries.push(entry(PIECE_TABLES_BINDING, storage(true)));
        entries.push(entry(PIECE_SUMS_BINDING, storage(false)));
    }
    if kernel.scratch() {
        entries.push(entry(SCRATCH_BINDING, storage(false)));
    }
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
    families: HashMap<KernelKey, Family>,
    norm: HashMap<
        (KernelShape, GradDType),
        (
            wgpu::BindGroupLayout,
            wgpu::ComputePipeline,
            wgpu::ComputePipeline,
        ),
    >,
    pipelines: HashMap<(KernelKey, Vec<bool>, KernelShape, &'static str), wgpu::ComputePipeline>,
    /// Pipelines compiled so far (a test checks that stepping compiles none).
    pub created: usize,
}

impl KernelCache {
    /// The norm pass's layout and its `partial` and `finish` pipelines for `shape` over
    /// gradients of `grads`, compiled if new.
    pub fn norm(
        &mut self,
        device: &wgpu::Device,
        shape: KernelShape,
        grads: GradDType,
    ) -> (
        wgpu::BindGroupLayout,
        wgpu::ComputePipeline,
        wgpu::ComputePipeline,
    ) {
        let created = &mut self.created;
        let (layout, partial, finish) = self.norm.entry((shape, grads)).or_insert_with(|| {
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
                source: wgpu::ShaderSource::Wgsl(norm_source(grads).into()),
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

    /// The bind-group layout and the pipeline of `(key, variant, shape)` for entry point
    /// `entry` (`main`; the per-tensor driver's three passes), compiled if new.
    pub fn get_entry(
        &mut self,
        device: &wgpu::Device,
        key: KernelKey,
        variant: &[bool],
        shape: KernelShape,
        entry: &'static str,
    ) -> (wgpu::BindGroupLayout, wgpu::ComputePipeline) {
        let kernel = key.kernel;
        let family = self.families.entry(key).or_insert_with(|| {
            let layout = bind_group_layout(device, key);
            let pipeline_layout = super::compat::pipeline_layout(device, kernel.name(), &layout);
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(kernel.name()),
                source: wgpu::ShaderSource::Wgsl(shader_source(key).into()),
            });
            Family {
                layout,
                pipeline_layout,
                module,
            }
        });
        let created = &mut self.created;
        let pipeline = self
            .pipelines
            .entry((key, variant.to_vec(), shape, entry))
            .or_insert_with(|| {
                *created += 1;
                let constants = pipeline_constants(key, variant, shape);
                super::compat::compute_pipeline_entry(
                    device,
                    kernel.name(),
                    &family.pipeline_layout,
                    &family.module,
                    entry,
                    &constants,
                )
            });
        (family.layout.clone(), pipeline.clone())
    }
}
