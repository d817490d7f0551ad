//! An optimizer whose parameters, gradients and state live in device buffers.

use std::num::NonZeroU64;

use wgpu::util::DeviceExt;

use super::compat;
use super::context::GpuContext;
use super::kernel::KernelShape;
use crate::backend::{Backend, Progress};
use crate::error::{Error, Result};
use crate::layout::{ParamLayout, TensorView};
use crate::optim::{Optimizer, StateSlot};
use crate::uniform::{ChunkUniform, StepUniform};

/// Bytes a buffer of `len` f32 elements needs: the kernels read whole vec4 blocks, so the
/// length is rounded up to a multiple of 4 (the padding lanes are never written).
pub fn padded_bytes(len: usize) -> u64 {
    (len as u64).div_ceil(4) * 16
}

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

/// What a buffer the optimizer allocated holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferRole {
    /// The parameters θ.
    Parameters,
    /// The gradients g.
    Gradients,
    /// One state tensor.
    State,
    /// Per-step and per-chunk uniforms.
    Uniform,
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

struct Launch {
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 2],
}

/// An optimizer over `len` f32 parameters in device buffers, stepped by one fused kernel.
///
/// Built once: buffers, pipeline and one bind group per chunk. [`GpuOptimizer::step`] then
/// writes the step's uniform, records one dispatch per chunk and submits: it compiles nothing,
/// reads nothing back and does not wait for the device.
///
/// ```no_run
/// use wgoptim::{Adam, Backend, GpuContext, GpuOptimizer};
/// let ctx = GpuContext::new()?;
/// let mut opt = GpuOptimizer::with_params(&ctx, Adam::adamw(), &[0.5; 1000])?;
/// opt.write_grads(&[0.1; 1000])?;
/// opt.step()?;
/// let params = opt.read_params()?;
/// # Ok::<(), wgoptim::Error>(())
/// ```
pub struct GpuOptimizer {
    ctx: GpuContext,
    progress: Progress,
    len: usize,
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    state: Vec<(StateSlot, wgpu::Buffer)>,
    step_uniform: wgpu::Buffer,
    pipeline: wgpu::ComputePipeline,
    launches: Vec<Launch>,
    chunks: Vec<Chunk>,
    allocations: Vec<Allocation>,
    layout: Option<ParamLayout>,
    /// Largest device allocator total seen while a readback's staging buffer was alive.
    readback_peak: std::sync::atomic::AtomicU64,
}

const DATA_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

impl GpuOptimizer {
    /// An optimizer over `len` parameters, all zero until written.
    pub fn new(ctx: &GpuContext, optimizer: impl Into<Optimizer>, len: usize) -> Result<Self> {
        let optimizer = optimizer.into();
        optimizer.validate()?;
        let bytes = check_size(ctx, "parameters", len)?;
        let create = |label| {
            ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage: DATA_USAGE,
                mapped_at_creation: false,
            })
        };
        let (params, grads) =
            compat::scoped(ctx.device(), || (create("parameters"), create("gradients")))?;
        let mut opt = Self::build(ctx, optimizer, len, params, grads)?;
        for (label, role) in [
            ("parameters", BufferRole::Parameters),
            ("gradients", BufferRole::Gradients),
        ] {
            opt.allocations.push(Allocation {
                label: label.into(),
                role,
                bytes,
            });
        }
        Ok(opt)
    }

    /// An optimizer over a copy of `params`.
    pub fn with_params(
        ctx: &GpuContext,
        optimizer: impl Into<Optimizer>,
        params: &[f32],
    ) -> Result<Self> {
        let mut opt = Self::new(ctx, optimizer, params.len())?;
        opt.write_params(params)?;
        Ok(opt)
    }

    /// An optimizer that steps the caller's own buffers in place, with no copies.
    ///
    /// Both need `STORAGE` usage and at least [`padded_bytes`]`(len)` bytes; reading them back
    /// also needs `COPY_SRC`, writing them from the host `COPY_DST`. They must come from
    /// `ctx`'s device (see [`GpuContext::from_device`]).
    pub fn adopt(
        ctx: &GpuContext,
        optimizer: impl Into<Optimizer>,
        params: wgpu::Buffer,
        grads: wgpu::Buffer,
        len: usize,
    ) -> Result<Self> {
        let optimizer = optimizer.into();
        optimizer.validate()?;
        let needed = check_size(ctx, "parameters", len)?;
        for (what, buffer) in [("parameter buffer", &params), ("gradient buffer", &grads)] {
            require(what, buffer, wgpu::BufferUsages::STORAGE)?;
            if buffer.size() < needed {
                return Err(Error::BufferTooSmall {
                    what,
                    bytes: buffer.size(),
                    needed,
                });
            }
        }
        Self::build(ctx, optimizer, len, params, grads)
    }

    fn build(
        ctx: &GpuContext,
        optimizer: Optimizer,
        len: usize,
        params: wgpu::Buffer,
        grads: wgpu::Buffer,
    ) -> Result<Self> {
        let progress = Progress::new(optimizer)?;
        let limits = ctx.limits();
        let shape = KernelShape::for_state_tensors(optimizer.state_layout().slots.len());
        let chunks = plan_chunks(&limits, len, shape)?;
        let device = ctx.device();
        let bytes = padded_bytes(len);
        let uniform_align = u64::from(limits.min_uniform_buffer_offset_alignment).max(16);
        let built = compat::scoped(device, || {
            let mut allocations = Vec::new();
            let state: Vec<(StateSlot, wgpu::Buffer)> = optimizer
                .state_layout()
                .slots
                .into_iter()
                .map(|slot| {
                    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(slot.name),
                        size: bytes,
                        usage: DATA_USAGE,
                        mapped_at_creation: false,
                    });
                    if slot.init != 0.0 {
                        let fill = vec![slot.init; (bytes / 4) as usize];
                        ctx.queue()
                            .write_buffer(&buffer, 0, bytemuck::cast_slice(&fill));
                    }
                    allocations.push(Allocation {
                        label: slot.name.into(),
                        role: BufferRole::State,
                        bytes,
                    });
                    (slot, buffer)
                })
                .collect();
            let step_uniform = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("step uniform"),
                size: std::mem::size_of::<StepUniform>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut chunk_bytes = vec![0u8; chunks.len() * uniform_align as usize];
            for (i, c) in chunks.iter().enumerate() {
                let at = i * uniform_align as usize;
                let u = ChunkUniform::for_len(c.elements);
                chunk_bytes[at..at + 16].copy_from_slice(bytemuck::bytes_of(&u));
            }
            let chunk_uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("chunk uniforms"),
                contents: &chunk_bytes,
                usage: wgpu::BufferUsages::UNIFORM,
            });
            for (label, size) in [
                ("step uniform", step_uniform.size()),
                ("chunk uniforms", chunk_uniform.size()),
            ] {
                allocations.push(Allocation {
                    label: label.into(),
                    role: BufferRole::Uniform,
                    bytes: size,
                });
            }
            let kernel = optimizer.kernel();
            let (layout, pipeline) = ctx
                .kernels()
                .get(device, kernel, &optimizer.variant(), shape);
            let launches = chunks
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let range = |buffer| {
                        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer,
                            offset: c.offset_bytes,
                            size: NonZeroU64::new(c.size_bytes),
                        })
                    };
                    let mut entries = vec![
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: step_uniform.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: &chunk_uniform,
                                offset: i as u64 * uniform_align,
                                size: NonZeroU64::new(16),
                            }),
                        },
                        wgpu::BindGroupEntry {
                            binding: 2,
                            resource: range(&params),
                        },
                        wgpu::BindGroupEntry {
                            binding: 3,
                            resource: range(&grads),
                        },
                    ];
                    for k in 0..kernel.state_bindings() {
                        let resource = match state.iter().find(|(s, _)| s.slot == k) {
                            Some((_, buffer)) => range(buffer),
                            None => ctx.placeholder(k).as_entire_binding(),
                        };
                        entries.push(wgpu::BindGroupEntry {
                            binding: 4 + k as u32,
                            resource,
                        });
                    }
                    Launch {
                        bind_group: device.create_bind_group(&wgpu::BindGroupDescriptor {
                            label: Some(kernel.name()),
                            layout: &layout,
                            entries: &entries,
                        }),
                        workgroups: c.workgroups,
                    }
                })
                .collect();
            (state, step_uniform, pipeline, launches, allocations)
        })?;
        let (state, step_uniform, pipeline, launches, allocations) = built;
        Ok(Self {
            ctx: ctx.clone(),
            progress,
            len,
            params,
            grads,
            state,
            step_uniform,
            pipeline,
            launches,
            chunks,
            allocations,
            layout: None,
            readback_peak: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// An optimizer over the tensors of `layout`, packed into one flat buffer: one step is one
    /// fused dispatch per binding-sized chunk however many tensors there are. Parameters start
    /// at zero; write them per tensor with [`GpuOptimizer::write_tensor`].
    pub fn with_layout(
        ctx: &GpuContext,
        optimizer: impl Into<Optimizer>,
        layout: ParamLayout,
    ) -> Result<Self> {
        let mut opt = Self::new(ctx, optimizer, layout.len())?;
        opt.layout = Some(layout);
        Ok(opt)
    }

    /// The tensor layout, when built with [`GpuOptimizer::with_layout`].
    pub fn layout(&self) -> Option<&ParamLayout> {
        self.layout.as_ref()
    }

    /// The view of tensor `name`.
    pub fn view(&self, name: &str) -> Result<&TensorView> {
        match &self.layout {
            Some(l) => l.get(name),
            None => Err(Error::UnknownTensor(name.to_string())),
        }
    }

    /// Overwrites one tensor's parameters.
    pub fn write_tensor(&mut self, name: &str, data: &[f32]) -> Result<()> {
        let view = self.view(name)?.clone();
        self.write_range(
            "parameter buffer",
            &self.params,
            view.offset,
            view.len,
            data,
        )
    }

    /// Overwrites one tensor's gradients.
    pub fn write_tensor_grads(&mut self, name: &str, data: &[f32]) -> Result<()> {
        let view = self.view(name)?.clone();
        self.write_range("gradient buffer", &self.grads, view.offset, view.len, data)
    }

    /// Reads one tensor's parameters.
    pub fn read_tensor(&self, name: &str) -> Result<Vec<f32>> {
        let view = self.view(name)?;
        self.read_range("parameter buffer", &self.params, view.offset, view.len)
    }

    /// Reads one tensor's slice of a state buffer (`exp_avg`, …).
    pub fn read_tensor_state(&self, name: &str, state: &str) -> Result<Vec<f32>> {
        let view = self.view(name)?;
        self.read_range(
            "state buffer",
            self.state_buffer(state)?,
            view.offset,
            view.len,
        )
    }

    /// The binding of elements `range` of tensor `name` in the parameter buffer (`grads:
    /// true`: the gradient buffer), for your own kernels. Tensors start at 256-byte aligned
    /// offsets (with [`ParamLayout::for_limits`]), so a whole view binds as a storage range.
    pub fn tensor_binding(
        &self,
        name: &str,
        range: std::ops::Range<usize>,
        grads: bool,
    ) -> Result<wgpu::BufferBinding<'_>> {
        let view = self.view(name)?;
        if range.start >= range.end || range.end > view.len {
            return Err(Error::ViewOutOfRange {
                name: name.to_string(),
                start: range.start,
                end: range.end,
                len: view.len,
            });
        }
        Ok(wgpu::BufferBinding {
            buffer: if grads { &self.grads } else { &self.params },
            offset: (view.offset + range.start) as u64 * 4,
            size: NonZeroU64::new((range.end - range.start) as u64 * 4),
        })
    }

    /// The parameter buffer (bind it in your own kernels, or copy into it).
    pub fn params_buffer(&self) -> &wgpu::Buffer {
        &self.params
    }

    /// The gradient buffer (let your backward pass write into it, then call `step`).
    pub fn grads_buffer(&self) -> &wgpu::Buffer {
        &self.grads
    }

    /// The buffer of one state tensor, by PyTorch's name.
    pub fn state_buffer(&self, name: &str) -> Result<&wgpu::Buffer> {
        self.state
            .iter()
            .find(|(s, _)| s.name == name)
            .map(|(_, b)| b)
            .ok_or_else(|| Error::UnknownState {
                optimizer: self.progress.optimizer.name(),
                name: name.to_string(),
                available: self.progress.optimizer.state_layout().names(),
            })
    }

    /// The buffers this optimizer allocated, with their sizes.
    pub fn allocations(&self) -> &[Allocation] {
        &self.allocations
    }

    /// The device allocator's largest total (bytes) seen while a readback's staging buffer was
    /// alive; 0 before any readback or where the backend gives no allocator report.
    pub fn readback_peak_bytes(&self) -> u64 {
        self.readback_peak
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How the parameters are split into bindings and dispatches.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// The context the optimizer runs on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Records one step into the caller's `encoder` and counts it, without submitting.
    ///
    /// The step's uniform is written with `Queue::write_buffer`, which takes effect at the
    /// next submission: record at most one step of this optimizer per submitted batch.
    /// Fails (recording nothing) only when the schedule is finished.
    pub fn record_step(&mut self, encoder: &mut wgpu::CommandEncoder) -> Result<()> {
        let uniform = self.progress.next_uniform()?;
        self.ctx
            .queue()
            .write_buffer(&self.step_uniform, 0, bytemuck::bytes_of(&uniform));
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(self.progress.optimizer.name()),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.pipeline);
            for launch in &self.launches {
                pass.set_bind_group(0, &launch.bind_group, &[]);
                pass.dispatch_workgroups(launch.workgroups[0], launch.workgroups[1], 1);
            }
        }
        self.progress.advance();
        Ok(())
    }

    fn read_buffer(&self, what: &'static str, buffer: &wgpu::Buffer) -> Result<Vec<f32>> {
        self.read_range(what, buffer, 0, self.len)
    }

    fn read_range(
        &self,
        what: &'static str,
        buffer: &wgpu::Buffer,
        offset: usize,
        len: usize,
    ) -> Result<Vec<f32>> {
        require(what, buffer, wgpu::BufferUsages::COPY_SRC)?;
        let device = self.ctx.device();
        let bytes = len as u64 * 4;
        let staging = compat::scoped(device, || {
            let staging = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback staging"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder = device.create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(buffer, offset as u64 * 4, &staging, 0, bytes);
            self.ctx.queue().submit([encoder.finish()]);
            staging
        })?;
        if let Some(report) = device.generate_allocator_report() {
            self.readback_peak.fetch_max(
                report.total_allocated_bytes,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        let raw = compat::read_mapped(device, &staging)?;
        Ok(bytemuck::pod_collect_to_vec(&raw))
    }

    fn write_buffer(&self, what: &'static str, buffer: &wgpu::Buffer, data: &[f32]) -> Result<()> {
        self.write_range(what, buffer, 0, self.len, data)
    }

    fn write_range(
        &self,
        what: &'static str,
        buffer: &wgpu::Buffer,
        offset: usize,
        len: usize,
        data: &[f32],
    ) -> Result<()> {
        if data.len() != len {
            return Err(Error::LengthMismatch {
                what,
                expected: len,
                got: data.len(),
            });
        }
        require(what, buffer, wgpu::BufferUsages::COPY_DST)?;
        compat::scoped(self.ctx.device(), || {
            let bytes = bytemuck::cast_slice(data);
            self.ctx
                .queue()
                .write_buffer(buffer, offset as u64 * 4, bytes)
        })
    }

    /// Reads the gradients back.
    pub fn read_grads(&self) -> Result<Vec<f32>> {
        self.read_buffer("gradient buffer", &self.grads)
    }
}

impl Backend for GpuOptimizer {
    fn optimizer(&self) -> &Optimizer {
        &self.progress.optimizer
    }
    fn len(&self) -> usize {
        self.len
    }
    fn steps(&self) -> u64 {
        self.progress.steps
    }
    fn lr(&self) -> Result<f64> {
        self.progress.next_lr()
    }
    fn set_lr(&mut self, lr: f64) -> Result<()> {
        self.progress.set_lr(lr)
    }
    fn set_schedule(&mut self, schedule: Option<crate::schedule::Schedule>) -> Result<()> {
        self.progress.set_schedule(schedule)
    }
    fn next_uniform(&self) -> Result<StepUniform> {
        self.progress.next_uniform()
    }
    fn write_params(&mut self, params: &[f32]) -> Result<()> {
        self.write_buffer("parameter buffer", &self.params, params)
    }
    fn write_grads(&mut self, grads: &[f32]) -> Result<()> {
        self.write_buffer("gradient buffer", &self.grads, grads)
    }
    /// One fused step over every chunk, submitted without waiting. wgpu errors (a destroyed
    /// buffer, say) come back as [`Error::Wgpu`] and the step is not counted.
    fn step(&mut self) -> Result<()> {
        let device = self.ctx.device().clone();
        let saved = self.progress.steps;
        let result = compat::scoped(&device, || {
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("wgoptim step"),
            });
            self.record_step(&mut encoder)?;
            self.ctx.queue().submit([encoder.finish()]);
            Ok(())
        })
        .and_then(|recorded| recorded);
        if result.is_err() {
            self.progress.steps = saved;
        }
        result
    }
    fn read_params(&self) -> Result<Vec<f32>> {
        self.read_buffer("parameter buffer", &self.params)
    }
    fn read_state(&self, name: &str) -> Result<Vec<f32>> {
        self.read_buffer("state buffer", self.state_buffer(name)?)
    }
}

fn check_size(ctx: &GpuContext, what: &'static str, len: usize) -> Result<u64> {
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

fn require(what: &'static str, buffer: &wgpu::Buffer, needed: wgpu::BufferUsages) -> Result<()> {
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
