//! The device the kernels run on: created here, or adopted from the caller.

use std::sync::{Arc, Mutex, MutexGuard};

use super::compat;
use super::kernel::KernelCache;
use crate::error::Result;
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
        Ok(Self::build(device, queue, Some(adapter.get_info())))
    }

    /// Adopts the caller's device and queue: the optimizers then run beside the caller's own
    /// kernels, on their buffers, with no copies.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        Self::build(device, queue, None)
    }

    fn build(device: wgpu::Device, queue: wgpu::Queue, adapter: Option<wgpu::AdapterInfo>) -> Self {
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
        Self {
            inner: Arc::new(Inner {
                device,
                queue,
                adapter,
                kernels: Mutex::new(KernelCache::default()),
                placeholders,
                neutral_control,
                neutral_scalars,
            }),
        }
    }

    /// The device.
    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// The queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    /// The adapter's description, when this context created the device.
    pub fn adapter_info(&self) -> Option<&wgpu::AdapterInfo> {
        self.inner.adapter.as_ref()
    }

    /// One line naming the adapter and backend (or "adopted device").
    pub fn describe(&self) -> String {
        match &self.inner.adapter {
            Some(a) => format!(
                "{} ({:?}, {:?}, driver {} {})",
                a.name, a.backend, a.device_type, a.driver, a.driver_info
            ),
            None => "adopted device".to_string(),
        }
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

    pub(crate) fn neutral_scalars(&self) -> &wgpu::Buffer {
        &self.inner.neutral_scalars
    }
}

/// Every adapter the instance sees (honouring `WGPU_BACKEND`), for `wgoptim info`.
pub fn list_adapters() -> Vec<wgpu::AdapterInfo> {
    compat::adapters(&compat::instance())
        .iter()
        .map(|a| a.get_info())
        .collect()
}
