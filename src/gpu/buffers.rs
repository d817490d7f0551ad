//! The buffers an optimizer allocates or adopts: their usages, the record of each allocation,
//! and the checks an adopted or written buffer must pass.

use super::chunk::padded_bytes;
use super::compat;
use super::context::GpuContext;
use crate::error::{Error, Result};

/// Usages of every data buffer wgoptim allocates (parameters, gradients, state).
pub(crate) const DATA_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

/// What a buffer the optimizer allocated holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferRole {
    /// The parameters θ.
    Parameters,
    /// The gradients g.
    Gradients,
    /// The bf16 model copy of f32 master parameters (written each step, never read).
    Model,
    /// One state tensor.
    State,
    /// Per-step and per-chunk uniforms.
    Uniform,
    /// Per-tensor rules (LAMB, Adafactor, Muon): the piece and tensor tables and their sums.
    Tables,
    /// Scratch space a step overwrites (Muon's Newton–Schulz matrices).
    Scratch,
}

/// One buffer this optimizer allocated (adopted buffers are not listed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// Its label (state buffers carry PyTorch's state name).
    pub label: String,
    /// What it holds.
    pub role: BufferRole,
    /// Its size in bytes.
    pub bytes: u64,
}

pub(crate) fn check_size(ctx: &GpuContext, what: &'static str, len: usize) -> Result<u64> {
    if len == 0 {
        return Err(Error::Empty);
    }
    let bytes = padded_bytes(len);
    let max = ctx.limits().max_buffer_size;
    if bytes > max {
        return Err(Error::BufferTooLarge { what, bytes, max });
    }
    Ok(bytes)
}

pub(crate) fn require(
    what: &'static str,
    buffer: &wgpu::Buffer,
    needed: wgpu::BufferUsages,
) -> Result<()> {
    if buffer.usage().contains(needed) {
        Ok(())
    } else {
        Err(Error::MissingUsage {
            what,
            needed,
            has: buffer.usage(),
        })
    }
}

/// Checks, as far as wgpu lets a library, that an adopted `buffer` belongs to `ctx`'s device.
///
/// wgpu exposes no buffer's device, and a buffer of another `wgpu::Instance` is looked up by
/// its id in this device's registry, where the id either names nothing (wgpu-core panics) or
/// names another buffer (which the kernels would then silently update). So: the id must not
/// be one of this context's private buffers (which a caller cannot hold), and binding the
/// buffer's last bytes on this device must succeed without a panic or a validation error (a
/// buffer of another device of the same instance, or an id naming a smaller or non-storage
/// buffer here, fails it). One case stays undetectable: an id that happens to name another
/// large storage buffer of this very device.
pub(crate) fn check_same_device(
    ctx: &GpuContext,
    what: &'static str,
    buffer: &wgpu::Buffer,
) -> Result<()> {
    if ctx.private_buffers().any(|b| b == buffer) {
        return Err(Error::ForeignBuffer { what });
    }
    let align = u64::from(ctx.limits().min_storage_buffer_offset_alignment).max(4);
    let size = buffer.size() & !3;
    if size < 4 {
        return Ok(());
    }
    let offset = (size.saturating_sub(16) / align) * align;
    let device = ctx.device();
    let probe = compat::scoped(device, || {
        compat::quietly(|| {
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("wgoptim adopted-buffer probe"),
                layout: ctx.probe_layout(),
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer,
                        offset,
                        size: std::num::NonZeroU64::new(size - offset),
                    }),
                }],
            })
        })
    });
    match probe {
        Ok(Some(_)) => Ok(()),
        Ok(None) | Err(_) => Err(Error::ForeignBuffer { what }),
    }
}
