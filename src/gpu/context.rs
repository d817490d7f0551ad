//! The device the kernels run on: created here, or adopted from the caller.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use super::compat;
use super::kernel::{KernelCache, KernelShape};
use super::tune::{self, Shapes};
use crate::error::Result;
use crate::optim::Optimizer;
use crate::uniform::{ControlBlock, StepScalars};

/// How [`GpuContext::with_options`] creates its device.
#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    /// Cap `max_storage_buffer_binding_size` (bytes) below the adapter's. Tests use 1 MiB so
    /// that chunk seams are crossed at small sizes.
    pub max_binding_bytes: Option<u64>,
    /// Cap `max_compute_workgroups_per_dimension` below the adapter's (tests use a small value
    /// to exercise two-dimensional dispatch).
    pub max_workgroups_per_dimension: Option<u32>,
    /// How kernel shapes are chosen: tuned per adapter on first use and cached on disk (the
    /// default), the built-in defaults, or one fixed shape.
    pub shapes: Shapes,
    /// Where tuned shapes are cached; default `$WGOPTIM_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/wgoptim`, else `$HOME/.cache/wgoptim` (no disk cache if none is set).
    pub shape_cache_dir: Option<PathBuf>,
}

struct Inner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: Option<wgpu::AdapterInfo>,
    kernels: Mutex<KernelCache>,
    /// Bound in place of state a variant does not use (16 bytes each, never read or written).
    placeholders: Vec<wgpu::Buffer>,
    /// `ControlBlock::NEUTRAL` and one `StepScalars::ONES`: bound when no clipping or skipping
    /// is configured, so that the kernels' factors are exactly 1.
    neutral_control: wgpu::Buffer,
    neutral_scalars: wgpu::Buffer,
    /// The dynamic maps and midpoints the int8 kernels load (`precision::code_tables`).
    code_tables: wgpu::Buffer,
    /// One read-only storage binding: `buffers::check_same_device` binds adopted buffers to it.
    probe_layout: wgpu::BindGroupLayout,
    shapes: Shapes,
    shape_cache_dir: Option<PathBuf>,
    /// Shapes chosen so far, by family and variant. Held while tuning, so that one variant is
    /// tuned once however many threads build optimizers of it.
    chosen: Mutex<HashMap<String, KernelShape>>,
}

/// A wgpu device and queue, with the compiled kernels cached for their lifetime.
/// Cheap to clone: clones share the device and the cache.
#[derive(Clone)]
pub struct GpuContext {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.inner.adapter)
            .finish_non_exhaustive()
    }
}

impl GpuContext {
    /// A device of its own on the adapter chosen by `WGPU_ADAPTER_NAME` (a substring of the
    /// name) or else wgpu's default, with backends from `WGPU_BACKEND` (e.g. `vulkan`), and the
    /// adapter's full limits.
    pub fn new() -> Result<Self> {
        Self::with_options(&ContextOptions::default())
    }

    /// As [`GpuContext::new`], with limits lowered by `options`.
    pub fn with_options(options: &ContextOptions) -> Result<Self> {
        let instance = compat::instance();
        let adapter = compat::adapter_from_env(&instance)?;
        let mut limits = adapter.limits();
        if let Some(bytes) = options.max_binding_bytes {
            limits.max_storage_buffer_binding_size =
                limits.max_storage_buffer_binding_size.min(bytes);
        }
        if let Some(n) = options.max_workgroups_per_dimension {
            limits.max_compute_workgroups_per_dimension =
                limits.max_compute_workgroups_per_dimension.min(n);
        }
        let (device, queue) = compat::request_device(&adapter, limits)?;
        Self::build(device, queue, Some(adapter.get_info()), options)
    }

    /// Adopts the caller's device and queue: the optimizers then run beside the caller's own
    /// kernels, on their buffers, with no copies. Fails with [`crate::Error::DeviceLimit`] when
    /// the device's limits are below what the kernels need ([`required_limits`]).
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Result<Self> {
        Self::from_device_with_options(device, queue, &ContextOptions::default())
    }

    /// As [`GpuContext::from_device`], with `options.shapes` and `options.shape_cache_dir`
    /// (the limit caps of `options` apply only to devices this crate creates).
    pub fn from_device_with_options(
        device: wgpu::Device,
        queue: wgpu::Queue,
        options: &ContextOptions,
    ) -> Result<Self> {
        Self::build(device, queue, None, options)
    }

    /// A context on the same device and queue that chooses kernel shapes by `shapes` (its own
    /// kernel cache; optimizers built on either run side by side).
    pub fn with_shapes(&self, shapes: Shapes) -> Result<Self> {
        let options = ContextOptions {
            shapes,
            shape_cache_dir: self.inner.shape_cache_dir.clone(),
            ..Default::default()
        };
        Self::build(
            self.inner.device.clone(),
            self.inner.queue.clone(),
            self.inner.adapter.clone(),
            &options,
        )
    }

    fn build(
        device: wgpu::Device,
        queue: wgpu::Queue,
        adapter: Option<wgpu::AdapterInfo>,
        options: &ContextOptions,
    ) -> Result<Self> {
        check_limits(&device.limits())?;
        if let Shapes::Fixed(shape) = options.shapes {
            shape.validate(&device.limits())?;
        }
        let placeholders = (0..3)
            .map(|_| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("wgoptim placeholder state"),
                    size: 16,
                    usage: wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: false,
                })
            })
            .collect();
        use wgpu::util::DeviceExt;
        let constant = |label, contents: &[u8]| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: wgpu::BufferUsages::STORAGE,
            })
        };
        let neutral_control = constant(
            "wgoptim neutral control",
            bytemuck::bytes_of(&ControlBlock::NEUTRAL),
        );
        let neutral_scalars = constant(
            "wgoptim neutral step scalars",
            bytemuck::bytes_of(&StepScalars::ONES),
        );
        let code_tables = constant(
            "wgoptim int8 code tables",
            bytemuck::cast_slice(&crate::precision::code_tables()),
        );
        let probe_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("wgoptim adopted-buffer probe"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: true },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            }],
        });
        Ok(Self {
            inner: Arc::new(Inner {
                probe_layout,
                device,
                queue,
                adapter,
                kernels: Mutex::new(KernelCache::default()),
                placeholders,
                neutral_control,
                neutral_scalars,
                code_tables,
                shapes: options.shapes,
                shape_cache_dir: options
                    .shape_cache_dir
                    .clone()
                    .or_else(tune::default_cache_dir),
                chosen: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The device.
    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// The queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    /// The adapter's description (for an adopted device, as wgpu reports it).
    pub fn adapter_info(&self) -> wgpu::AdapterInfo {
        match &self.inner.adapter {
            Some(a) => a.clone(),
            None => self.inner.device.adapter_info(),
        }
    }

    /// One line naming the adapter, backend and driver (and "adopted" for an adopted device).
    pub fn describe(&self) -> String {
        let a = self.adapter_info();
        let adopted = if self.inner.adapter.is_none() {
            ", adopted device"
        } else {
            ""
        };
        format!(
            "{} ({:?}, {:?}, driver {} {}{adopted})",
            a.name, a.backend, a.device_type, a.driver, a.driver_info
        )
    }

    /// How this context chooses kernel shapes.
    pub fn shapes(&self) -> Shapes {
        self.inner.shapes
    }

    /// Where tuned shapes are cached on disk, if anywhere.
    pub fn shape_cache_dir(&self) -> Option<&std::path::Path> {
        self.inner.shape_cache_dir.as_deref()
    }

    /// The kernel shape `optimizer` runs with on this context: the fixed one, the built-in
    /// default, or (tuning) the one cached for this adapter, timed now if there is none (the
    /// built-in default if timing fails).
    pub fn shape_for(&self, optimizer: &Optimizer) -> Result<KernelShape> {
        let key = super::kernel::KernelKey::of(optimizer);
        if key.blockwise() {
            // One shape only: a workgroup holds whole quantization blocks.
            return Ok(KernelShape::BLOCKWISE);
        }
        if key.per_tensor() {
            // One shape only: a workgroup is one piece (shaders/pieces.wgsl).
            return Ok(KernelShape::PER_TENSOR);
        }
        let builtin = KernelShape::for_state_tensors(optimizer.state_layout().slots.len());
        match self.inner.shapes {
            Shapes::Fixed(shape) => return Ok(shape),
            Shapes::Builtin => return Ok(builtin),
            Shapes::Tuned => {}
        }
        let key = tune::variant_key(optimizer);
        let mut chosen = self.inner.chosen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shape) = chosen.get(&key) {
            return Ok(*shape);
        }
        let cache = tune::ShapeCache::new(self.shape_cache_dir(), &self.adapter_info());
        let shape = match cache.as_ref().and_then(|c| c.get(optimizer)) {
            Some(shape) if shape.validate(&self.limits()).is_ok() => shape,
            _ => match tune::tune(self, optimizer, &tune::TuneOptions::default()) {
                Ok(report) => {
                    if let Some(cache) = &cache {
                        // A cache that cannot be written only costs a re-tune next time.
                        let _ = cache.put(optimizer, report.best);
                    }
                    report.best
                }
                // Timing failed (out of memory for the timed buffers, say): the built-in shape
                // is always valid, so the optimizer is still built; nothing is cached.
                Err(_) => builtin,
            },
        };
        chosen.insert(key, shape);
        Ok(shape)
    }

    /// The device's limits.
    pub fn limits(&self) -> wgpu::Limits {
        self.inner.device.limits()
    }

    /// Blocks until all work submitted to the queue has finished.
    pub fn wait(&self) -> Result<()> {
        compat::wait(&self.inner.device)
    }

    /// Compute pipelines compiled on this context so far.
    pub fn pipelines_created(&self) -> usize {
        self.kernels().created
    }

    pub(crate) fn kernels(&self) -> MutexGuard<'_, KernelCache> {
        // A panic while holding the lock cannot leave the cache inconsistent (entries are
        // inserted whole), so a poisoned lock is still usable.
        self.inner.kernels.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn placeholder(&self, slot: usize) -> &wgpu::Buffer {
        &self.inner.placeholders[slot]
    }

    pub(crate) fn neutral_control(&self) -> &wgpu::Buffer {
        &self.inner.neutral_control
    }

    pub(crate) fn code_tables(&self) -> &wgpu::Buffer {
        &self.inner.code_tables
    }

    pub(crate) fn neutral_scalars(&self) -> &wgpu::Buffer {
        &self.inner.neutral_scalars
    }

    pub(crate) fn probe_layout(&self) -> &wgpu::BindGroupLayout {
        &self.inner.probe_layout
    }

    /// The buffers only this context holds (never handed out).
    pub(crate) fn private_buffers(&self) -> impl Iterator<Item = &wgpu::Buffer> {
        let i = &self.inner;
        i.placeholders
            .iter()
            .chain([&i.neutral_control, &i.neutral_scalars])
    }
}

/// The limits the kernels need beyond wgpu's downlevel defaults: Adam and RMSprop bind seven
/// storage buffers (parameters, gradients, three state tensors, the control block and the step
/// scalars) and two uniform buffers in one group of ten bindings, and each kernel runs 256
/// invocations per workgroup (the tuned shapes too). int8 state needs more (its code tables and
/// one absmax per state tensor: int8 Adam 10 storage buffers and 14 bindings, AMSGrad 11 and
/// 14); an optimizer that asks for more than the device has is refused with
/// [`crate::Error::DeviceLimit`] when it is built.
pub fn required_limits() -> wgpu::Limits {
    wgpu::Limits {
        max_storage_buffers_per_shader_stage: 7,
        max_uniform_buffers_per_shader_stage: 2,
        max_bindings_per_bind_group: 10,
        max_bind_groups: 1,
        max_compute_invocations_per_workgroup: 256,
        max_compute_workgroup_size_x: 256,
        ..wgpu::Limits::downlevel_defaults()
    }
}

/// Checks `limits` against [`required_limits`]; the error names the first limit too low.
fn check_limits(limits: &wgpu::Limits) -> Result<()> {
    let need = required_limits();
    let checks = [
        (
            "max_storage_buffers_per_shader_stage",
            need.max_storage_buffers_per_shader_stage,
            limits.max_storage_buffers_per_shader_stage,
        ),
        (
            "max_uniform_buffers_per_shader_stage",
            need.max_uniform_buffers_per_shader_stage,
            limits.max_uniform_buffers_per_shader_stage,
        ),
        (
            "max_bindings_per_bind_group",
            need.max_bindings_per_bind_group,
            limits.max_bindings_per_bind_group,
        ),
        (
            "max_bind_groups",
            need.max_bind_groups,
            limits.max_bind_groups,
        ),
        (
            "max_compute_invocations_per_workgroup",
            need.max_compute_invocations_per_workgroup,
            limits.max_compute_invocations_per_workgroup,
        ),
        (
            "max_compute_workgroup_size_x",
            need.max_compute_workgroup_size_x,
            limits.max_compute_workgroup_size_x,
        ),
    ];
    require_limits(&checks)
}

/// `Error::DeviceLimit` for the first `(limit, required, available)` the device falls short of.
pub(crate) fn require_limits(checks: &[(&'static str, u32, u32)]) -> Result<()> {
    match checks
        .iter()
        .find(|(_, required, available)| available < required)
    {
        Some(&(limit, required, available)) => Err(crate::Error::DeviceLimit {
            limit,
            required: u64::from(required),
            available: u64::from(available),
        }),
        None => Ok(()),
    }
}

/// Every adapter the instance sees (honouring `WGPU_BACKEND`), for `wgoptim info`.
pub fn list_adapters() -> Vec<wgpu::AdapterInfo> {
    compat::adapters(&compat::instance())
        .iter()
        .map(|a| a.get_info())
        .collect()
}
