//! Global-norm gradient clipping, loss-scale unscaling and non-finite skipping, decided on the
//! device each step by `shaders/norm.wgsl` before the update passes read the control block.

use std::num::NonZeroU64;

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use super::chunk::plan_chunks;
use super::context::GpuContext;
use super::kernel::KernelShape;
pub use crate::control::GradientControl;
use crate::error::Result;
use crate::precision::GradDType;
use crate::uniform::{ChunkUniform, ControlBlock};

/// How the norm pass's `partial` maps invocations onto gradient blocks (the override
/// `VECS_PER_INVOCATION` of norm.wgsl, and the dispatch size): shaped like the update kernels.
pub const NORM_SHAPE: KernelShape =
    KernelShape::contiguous(crate::control::NORM_VECS_PER_INVOCATION as u32);

impl GradientControl {
    /// The norm pass's configuration (the one place S, 1/S and the clip threshold become f32;
    /// the CPU twin `control::norm` reads it as the shader does).
    pub(crate) fn uniform(&self, partials: u32) -> NormUniform {
        NormUniform {
            unscale: (1.0 / self.loss_scale) as f32,
            max_norm: self.max_norm.unwrap_or(0.0) as f32,
            skip_nonfinite: u32::from(self.skip_nonfinite),
            partials,
        }
    }
}

/// Host twin of WGSL `NormConfig` (norm.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct NormUniform {
    /// 1/S.
    pub unscale: f32,
    /// Clip threshold, ≤ 0 for none.
    pub max_norm: f32,
    /// Non-zero: skip non-finite steps.
    pub skip_nonfinite: u32,
    /// Partial sums to add up.
    pub partials: u32,
}

pub(crate) struct Clip {
    pub config: GradientControl,
    /// The control block the update kernels read.
    pub control: wgpu::Buffer,
    uniform: wgpu::Buffer,
    partials: u32,
    /// Workgroups (x, y) of `partial` over each chunk.
    workgroups: Vec<[u32; 2]>,
    partial: wgpu::ComputePipeline,
    finish: wgpu::ComputePipeline,
    chunk_groups: Vec<wgpu::BindGroup>,
    finish_group: wgpu::BindGroup,
}

impl Clip {
    /// Buffers and bind groups over the `len` gradients of `grads` (of type `dtype`); the
    /// control block starts with the device step count at `steps`. Call inside an error scope.
    pub fn build(
        ctx: &GpuContext,
        grads: &wgpu::Buffer,
        dtype: GradDType,
        len: usize,
        config: GradientControl,
        steps: u64,
    ) -> Result<Self> {
        let device = ctx.device();
        let limits = ctx.limits();
        let chunks = plan_chunks(&limits, len, NORM_SHAPE)?;
        // One partial sum per workgroup of every chunk, at consecutive offsets.
        let firsts: Vec<u32> = chunks
            .iter()
            .scan(0u32, |next, c| {
                let first = *next;
                *next += c.workgroups[0] * c.workgroups[1];
                Some(first)
            })
            .collect();
        let partials: u32 = chunks
            .iter()
            .map(|c| c.workgroups[0] * c.workgroups[1])
            .sum();
        let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("norm config"),
            contents: bytemuck::bytes_of(&config.uniform(partials)),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let align = u64::from(limits.min_uniform_buffer_offset_alignment).max(16);
        let mut chunk_bytes = vec![0u8; chunks.len() * align as usize];
        for (i, c) in chunks.iter().enumerate() {
            let u = ChunkUniform {
                first_partial: firsts[i],
                ..ChunkUniform::for_len(c.elements)
            };
            let at = i * align as usize;
            chunk_bytes[at..at + 16].copy_from_slice(bytemuck::bytes_of(&u));
        }
        let chunk_uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("norm chunks"),
            contents: &chunk_bytes,
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let partial_sums = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("norm partial sums"),
            size: u64::from(partials) * 8,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let start = ControlBlock::with_counts(steps, 0);
        let control = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("control block"),
            contents: bytemuck::bytes_of(&start),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        });
        let (layout, partial, finish) = ctx.kernels().norm(device, NORM_SHAPE, dtype);
        // A half gradient takes 2 of the f32's 4 bytes: its chunk's range halves.
        let shrink = 4 / dtype.bytes();
        let entry = |binding, resource| wgpu::BindGroupEntry { binding, resource };
        let chunk_groups = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("norm"),
                    layout: &layout,
                    entries: &[
                        entry(0, uniform.as_entire_binding()),
                        entry(
                            1,
                            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: &chunk_uniform,
                                offset: i as u64 * align,
                                size: NonZeroU64::new(16),
                            }),
                        ),
                        entry(
                            2,
                            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: grads,
                                offset: c.offset_bytes / shrink,
                                size: NonZeroU64::new(c.size_bytes / shrink),
                            }),
                        ),
                        entry(3, partial_sums.as_entire_binding()),
                        entry(4, control.as_entire_binding()),
                    ],
                })
            })
            .collect::<Vec<_>>();
        // `finish` reads neither the chunk nor the gradients; it reuses the first chunk's group.
        let finish_group = chunk_groups[0].clone();
        Ok(Self {
            config,
            control,
            uniform,
            partials,
            workgroups: chunks.iter().map(|c| c.workgroups).collect(),
            partial,
            finish,
            chunk_groups,
            finish_group,
        })
    }

    /// Writes a new configuration (lands at the next submission).
    pub fn set_config(&mut self, queue: &wgpu::Queue, config: GradientControl) {
        self.config = config;
        queue.write_buffer(
            &self.uniform,
            0,
            bytemuck::bytes_of(&config.uniform(self.partials)),
        );
    }

    /// Records the norm pass: partial sums per chunk, then the control block.
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.partial);
        for (group, [x, y]) in self.chunk_groups.iter().zip(&self.workgroups) {
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(*x, *y, 1);
        }
        pass.set_pipeline(&self.finish);
        pass.set_bind_group(0, &self.finish_group, &[]);
        pass.dispatch_workgroups(1, 1, 1);
    }
}
