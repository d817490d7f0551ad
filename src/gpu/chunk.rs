//! How the flat parameter space is cut into binding-sized chunks and dispatches: the one
//! planner the update kernels (`segment.rs`) and the norm pass (`clip.rs`) share.

use super::kernel::KernelShape;
use crate::error::{Error, Result};

/// Bytes a buffer of `len` f32 elements needs: the kernels read whole vec4 blocks, so the
/// length is rounded up to a multiple of 4 (the padding lanes are never written).
pub fn padded_bytes(len: usize) -> u64 {
    (len as u64).div_ceil(4) * 16
}

/// Chunks (after the last) start at multiples of this many elements: 64 int8 blocks, whose
/// absmax (256 bytes) is then bindable at wgpu's largest offset alignment.
pub const CHUNK_GRANULE: u64 = 64 * crate::precision::BLOCK as u64;

/// One binding-sized piece of the flat parameter space and its dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Byte offset of the chunk in every buffer.
    pub offset_bytes: u64,
    /// Bytes bound (whole vec4 blocks).
    pub size_bytes: u64,
    /// Elements updated.
    pub elements: u64,
    /// Workgroups (x, y) of its dispatch.
    pub workgroups: [u32; 2],
}

/// Splits `len` elements into chunks no larger than the device's storage binding limit, each
/// starting at an offset the device accepts, with two-dimensional dispatches of `shape`'s
/// workgroups when one chunk needs more than `max_compute_workgroups_per_dimension`.
pub fn plan_chunks(limits: &wgpu::Limits, len: usize, shape: KernelShape) -> Result<Vec<Chunk>> {
    let align = u64::from(limits.min_storage_buffer_offset_alignment).max(16);
    let max_binding = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    let chunk_elements = (max_binding / align) * align / 4;
    // Whole multiples of CHUNK_GRANULE elements when the binding allows, so that every
    // chunk's int8 codes, bf16 pairs and int8 absmax also start at bindable offsets.
    let chunk_elements = if chunk_elements >= CHUNK_GRANULE {
        chunk_elements / CHUNK_GRANULE * CHUNK_GRANULE
    } else {
        chunk_elements
    };
    if chunk_elements == 0 {
        return Err(Error::BufferTooLarge {
            what: "one binding",
            bytes: align,
            max: max_binding,
        });
    }
    let max_dim = limits.max_compute_workgroups_per_dimension.max(1);
    let len = len as u64;
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < len {
        let elements = chunk_elements.min(len - start);
        let groups = elements.div_ceil(shape.elements_per_workgroup());
        let x = groups.min(u64::from(max_dim));
        let y = groups.div_ceil(x);
        if y > u64::from(max_dim) {
            return Err(Error::DispatchTooLarge {
                workgroups: groups,
                max: max_dim,
            });
        }
        chunks.push(Chunk {
            offset_bytes: start * 4,
            size_bytes: padded_bytes(elements as usize),
            elements,
            workgroups: [x as u32, y as u32],
        });
        start += elements;
    }
    Ok(chunks)
}
