//! One parameter group's share of a step: a contiguous range of the flat parameter and
//! gradient buffers, its own hyperparameters, state buffers, uniform, pipeline and one bind
//! group per binding-sized chunk.

use std::num::NonZeroU64;

use wgpu::util::DeviceExt;

use super::buffers::{Allocation, BufferRole, DATA_USAGE};
use super::chunk::{Chunk, plan_chunks};
use super::context::GpuContext;
use super::kernel::{CODE_TABLES_BINDING, KernelKey, KernelShape, MODEL_BINDING, absmax_binding};
use crate::backend::Progress;
use crate::error::Result;
use crate::optim::{Optimizer, StateDType, StateSlot};
use crate::precision::{BLOCK, StoredState};
use crate::uniform::{ChunkUniform, StepScalars, StepUniform};

/// One state tensor on the device: its values (f32, bf16 pairs, or int8 codes four to a u32)
/// and, for int8, one f32 absmax per block.
pub(crate) struct StateBuffer {
    pub slot: StateSlot,
    pub data: wgpu::Buffer,
    pub absmax: Option<wgpu::Buffer>,
}

impl StateBuffer {
    /// Writes `stored` (of this slot's type) from element 0. `fresh`: the buffers are new
    /// (zeroed), so all-zero bytes need no write.
    pub fn upload(&self, queue: &wgpu::Queue, stored: &StoredState, fresh: bool) {
        let (data, absmax) = stored.to_bytes();
        let write = |buffer: &wgpu::Buffer, mut bytes: Vec<u8>| {
            let skip = bytes.is_empty() || (fresh && bytes.iter().all(|&b| b == 0));
            if !skip {
                bytes.resize(bytes.len().next_multiple_of(4), 0);
                queue.write_buffer(buffer, 0, &bytes);
            }
        };
        write(&self.data, data);
        if let Some(buffer) = &self.absmax {
            write(buffer, absmax);
        }
    }
}

/// Bytes of a state buffer of `len` elements of `dtype`, padded to whole vec4 blocks (and for
/// int8 codes, whole blocks), and of its absmax buffer.
pub(crate) fn state_bytes(dtype: StateDType, len: usize) -> (u64, u64) {
    let vecs = (len as u64).div_ceil(4);
    match dtype {
        StateDType::F32 => (vecs * 16, 0),
        StateDType::Bf16 => (vecs * 8, 0),
        StateDType::Int8 => (vecs * 4, 4 * (len as u64).div_ceil(BLOCK as u64)),
    }
}

struct Launch {
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 2],
}

pub(crate) struct Segment {
    /// First element of the range in the flat buffers (a bindable offset).
    pub offset: usize,
    /// Elements in the range.
    pub len: usize,
    pub progress: Progress,
    /// State tensors of this range only, indexed from its start.
    pub state: Vec<StateBuffer>,
    /// The kernel this range runs (its state type resolved for its length).
    pub key: KernelKey,
    pub chunks: Vec<Chunk>,
    step_uniform: wgpu::Buffer,
    chunk_uniform: wgpu::Buffer,
    uniform_align: u64,
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    launches: Vec<Launch>,
    /// Skipping on: the step scalars of a window of device step counts, entry t at
    /// t mod SCALAR_RING (the device may lag the host by the steps it skipped).
    pub scalar_ring: Option<wgpu::Buffer>,
    /// The optimizer (cycled momentum applied) the ring's window was written with; `None`
    /// forces the whole window to be written again.
    pub scalars_written_with: Option<Optimizer>,
    /// `UNIFORM_RING` slots of 64 bytes: each recorded step writes its uniform into its own
    /// slot and copies it into `step_uniform` inside the encoder, so that several steps
    /// recorded before one submission each run with their own scalars.
    uniform_ring: wgpu::Buffer,
}

/// Entries of the step-scalar ring (a power of two, so that it divides 2^32 and the device's
/// low 32 bits of its step count index it). The window of device counts the host keeps
/// written spans at most this many; the host reads the device's count back to move the
/// window once every `SCALAR_RING - UNIFORM_RING - 1` steps (see `GpuOptimizer::record_step`).
pub(crate) const SCALAR_RING: u64 = 4096;

/// Steps of one optimizer that may be recorded before the queue is submitted.
pub(crate) const UNIFORM_RING: u64 = 64;

impl Segment {
    /// Allocates the state and uniforms of `optimizer` over `len` elements starting at
    /// `offset`, and fetches (or compiles) its pipeline of `shape`. Call inside an error scope, then
    /// [`Segment::bind`].
    pub fn build(
        ctx: &GpuContext,
        optimizer: Optimizer,
        shape: KernelShape,
        offset: usize,
        len: usize,
        allocations: &mut Vec<Allocation>,
    ) -> Result<Self> {
        let optimizer = optimizer.resolved_for(len);
        let progress = Progress::new(optimizer)?;
        let key = KernelKey::of(&optimizer);
        key.check_limits(&ctx.limits())?;
        let shape = if key.blockwise() {
            KernelShape::BLOCKWISE
        } else {
            shape
        };
        let limits = ctx.limits();
        let chunks = plan_chunks(&limits, len, shape)?;
        let device = ctx.device();
        let state = optimizer
            .state_layout()
            .slots
            .into_iter()
            .map(|slot| {
                let (bytes, absmax_bytes) = state_bytes(slot.dtype, len);
                let mut buffer = |label: &str, size: u64| {
                    allocations.push(Allocation {
                        label: label.into(),
                        role: BufferRole::State,
                        bytes: size,
                    });
                    device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(label),
                        size,
                        usage: DATA_USAGE,
                        mapped_at_creation: false,
                    })
                };
                let data = buffer(slot.name, bytes);
                let absmax = (absmax_bytes > 0)
                    .then(|| buffer(&format!("{} absmax", slot.name), absmax_bytes));
                let state = StateBuffer { slot, data, absmax };
                // Fresh buffers are zero, which is 0 in every type but the signed int8 map (code
                // 127). Else fill, the padding of the last vec4 block too.
                let signed_int8 = slot.dtype == StateDType::Int8 && !slot.non_negative;
                if slot.init != 0.0 || signed_int8 {
                    let padded = len.next_multiple_of(4);
                    let init = StoredState::filled(&slot, padded, slot.init);
                    state.upload(ctx.queue(), &init, true);
                }
                state
            })
            .collect();
        let uniform_bytes = std::mem::size_of::<StepUniform>() as u64;
        let step_uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("step uniform"),
            size: uniform_bytes,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let uniform_ring = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("step uniform ring"),
            size: uniform_bytes * UNIFORM_RING,
            usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let uniform_align = u64::from(limits.min_uniform_buffer_offset_alignment).max(16);
        let mut chunk_bytes = vec![0u8; chunks.len() * uniform_align as usize];
        for (i, c) in chunks.iter().enumerate() {
            let at = i * uniform_align as usize;
            let uniform = ChunkUniform {
                first_vec: ((offset as u64 * 4 + c.offset_bytes) / 16) as u32,
                ..ChunkUniform::for_len(c.elements)
            };
            chunk_bytes[at..at + 16].copy_from_slice(bytemuck::bytes_of(&uniform));
        }
        let chunk_uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("chunk uniforms"),
            contents: &chunk_bytes,
            usage: wgpu::BufferUsages::UNIFORM,
        });
        for (label, size) in [
            ("step uniform", step_uniform.size()),
            ("step uniform ring", uniform_ring.size()),
            ("chunk uniforms", chunk_uniform.size()),
        ] {
            allocations.push(Allocation {
                label: label.into(),
                role: BufferRole::Uniform,
                bytes: size,
            });
        }
        let (layout, pipeline) = ctx.kernels().get(device, key, &optimizer.variant(), shape);
        Ok(Self {
            offset,
            len,
            progress,
            state,
            key,
            chunks,
            step_uniform,
            chunk_uniform,
            uniform_align,
            layout,
            pipeline,
            launches: Vec::new(),
            scalar_ring: None,
            scalars_written_with: None,
            uniform_ring,
        })
    }

    /// (Re)builds the bind groups over the shared buffers and the control block and step
    /// scalars in force. Call inside an error scope.
    pub fn bind(
        &mut self,
        ctx: &GpuContext,
        [params, grads]: [&wgpu::Buffer; 2],
        model: Option<&wgpu::Buffer>,
        control: &wgpu::Buffer,
        scalars: &wgpu::Buffer,
    ) {
        let device = ctx.device();
        let kernel = self.progress.optimizer.kernel();
        let base = self.offset as u64 * 4;
        let param_bytes = self.key.params.bytes();
        let grad_bytes = self.key.grads.bytes();
        self.launches = self
            .chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                // This chunk's range of a flat buffer of `bytes` bytes per element (f32 4;
                // bf16 and f16 2).
                let flat = |buffer, bytes: u64| {
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer,
                        offset: (base + c.offset_bytes) / 4 * bytes,
                        size: NonZeroU64::new(c.size_bytes / 4 * bytes),
                    })
                };
                let mut entries = vec![
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: self.step_uniform.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &self.chunk_uniform,
                            offset: i as u64 * self.uniform_align,
                            size: NonZeroU64::new(16),
                        }),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: flat(params, param_bytes),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: flat(grads, grad_bytes),
                    },
                    wgpu::BindGroupEntry {
                        binding: 8,
                        resource: control.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 9,
                        resource: scalars.as_entire_binding(),
                    },
                ];
                // A state buffer's range of this chunk: its bytes per element are the f32's
                // divided by `shrink` (int8 codes 4, bf16 2).
                let state_range = |buffer, shrink: u64| {
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer,
                        offset: c.offset_bytes / shrink,
                        size: NonZeroU64::new(c.size_bytes / shrink),
                    })
                };
                for k in 0..kernel.state_bindings() {
                    let resource = match self.state.iter().find(|s| s.slot.slot == k) {
                        Some(s) => match s.slot.dtype {
                            StateDType::F32 => state_range(&s.data, 1),
                            StateDType::Bf16 => state_range(&s.data, 2),
                            StateDType::Int8 => state_range(&s.data, 4),
                        },
                        None => ctx.placeholder(k).as_entire_binding(),
                    };
                    entries.push(wgpu::BindGroupEntry {
                        binding: 4 + k as u32,
                        resource,
                    });
                }
                if let Some(model) = model {
                    entries.push(wgpu::BindGroupEntry {
                        binding: MODEL_BINDING,
                        resource: flat(model, 2),
                    });
                }
                if self.key.blockwise() {
                    entries.push(wgpu::BindGroupEntry {
                        binding: CODE_TABLES_BINDING,
                        resource: ctx.code_tables().as_entire_binding(),
                    });
                    for s in &self.state {
                        let absmax = s.absmax.as_ref().expect("int8 state has an absmax");
                        let first = c.offset_bytes / 4 / BLOCK as u64;
                        let blocks = (c.elements).div_ceil(BLOCK as u64);
                        entries.push(wgpu::BindGroupEntry {
                            binding: absmax_binding(s.slot.slot),
                            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: absmax,
                                offset: first * 4,
                                size: NonZeroU64::new(blocks * 4),
                            }),
                        });
                    }
                }
                Launch {
                    bind_group: device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some(kernel.name()),
                        layout: &self.layout,
                        entries: &entries,
                    }),
                    workgroups: c.workgroups,
                }
            })
            .collect();
    }

    /// Records this step's `uniform` into `encoder`: written into ring slot `slot` (lands at
    /// the next submission, before the encoder runs) and copied into the bound uniform there.
    pub fn record_uniform(
        &self,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        uniform: &StepUniform,
        slot: u64,
    ) {
        let bytes = std::mem::size_of::<StepUniform>() as u64;
        let at = (slot % UNIFORM_RING) * bytes;
        queue.write_buffer(&self.uniform_ring, at, bytemuck::bytes_of(uniform));
        encoder.copy_buffer_to_buffer(&self.uniform_ring, at, &self.step_uniform, 0, bytes);
    }

    /// With a scalar ring, writes the step scalars of the device step counts `window` (at most
    /// `SCALAR_RING` of them): all of them when the optimizer the next step runs (cycled
    /// momentum) differs from the one they were written with, else only the newest.
    pub fn write_scalars(
        &mut self,
        queue: &wgpu::Queue,
        window: std::ops::RangeInclusive<u64>,
    ) -> Result<()> {
        let Some(ring) = &self.scalar_ring else {
            return Ok(());
        };
        let optimizer = self.progress.next_optimizer()?;
        let (first, last) = (*window.start(), *window.end());
        let first = if self.scalars_written_with == Some(optimizer) {
            last
        } else {
            first.max(last.saturating_sub(SCALAR_RING - 1))
        };
        // One write per contiguous run of ring entries (two where the window wraps).
        let mut t = first;
        while t <= last {
            let at = t % SCALAR_RING;
            let run_end = last.min(t + (SCALAR_RING - 1 - at));
            let entries: Vec<StepScalars> =
                (t..=run_end).map(|u| optimizer.step_scalars(u)).collect();
            let stride = std::mem::size_of::<StepScalars>() as u64;
            queue.write_buffer(ring, at * stride, bytemuck::cast_slice(&entries));
            t = run_end + 1;
        }
        self.scalars_written_with = Some(optimizer);
        Ok(())
    }

    /// Records this segment's dispatches.
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        for launch in &self.launches {
            pass.set_bind_group(0, &launch.bind_group, &[]);
            pass.dispatch_workgroups(launch.workgroups[0], launch.workgroups[1], 1);
        }
    }
}
