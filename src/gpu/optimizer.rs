//! An optimizer whose parameters, gradients and state live in device buffers.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

use super::buffers::{Allocation, BufferRole, DATA_USAGE, check_same_device, check_size, require};
use super::chunk::Chunk;
use super::clip::{Clip, GradientControl};
use super::compat;
use super::context::GpuContext;
use super::segment::{SCALAR_RING, Segment, StateBuffer, UNIFORM_RING, state_bytes};
use crate::backend::Backend;
use crate::control::NormOutcome;
use crate::error::{Error, Result};
use crate::layout::{ParamGroup, ParamLayout, TensorView, group_alignment, pack_groups};
use crate::optim::{GradDType, Optimizer, ParamDType, Rounding};
use crate::precision::StoredState;
use crate::precision::{bf16_bits, bf16_value};
use crate::schedule::Schedule;
use crate::uniform::{ControlBlock, StepScalars, StepUniform};

/// An optimizer over `len` f32 parameters in device buffers, stepped by one fused kernel per
/// parameter group.
///
/// Built once: buffers, pipelines and one bind group per binding-sized chunk. [`Backend::step`]
/// then writes each group's uniform, records one compute pass and submits: it compiles nothing,
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
    len: usize,
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    /// The gradients' type (every group's).
    grad_dtype: GradDType,
    /// The parameters' type (every group's).
    param_dtype: ParamDType,
    /// The bf16 model copy, with master parameters.
    model: Option<wgpu::Buffer>,
    /// One per parameter group, in flat-buffer order.
    segments: Vec<Segment>,
    allocations: Vec<Allocation>,
    layout: Option<ParamLayout>,
    /// Largest readback staging buffer created so far (bytes).
    readback_peak: AtomicU64,
    /// Clipping, unscaling and skipping, when configured.
    clip: Option<Clip>,
    /// Skipping on: what the host knows of the device's step count (see `record_step`).
    anchor: Anchor,
    /// Hash of the last encoder `record_step` recorded into, and how many steps it holds.
    encoder_run: (u64, u64),
    /// The control block as the last step left it, while that step was a decided one
    /// (`step_decided`): the next decided step counts from it without a readback.
    decided: Option<ControlBlock>,
}

/// Bytes of a gradient buffer of `len` elements of `dtype`, padded to whole vec4 blocks.
fn grad_buffer_bytes(dtype: GradDType, len: usize) -> u64 {
    (len as u64).div_ceil(4) * 4 * dtype.bytes()
}

/// Bytes of a buffer of `len` elements of `bytes` bytes each, padded to whole vec4 blocks.
fn half_or_f32_bytes(bytes: u64, len: usize) -> u64 {
    (len as u64).div_ceil(4) * 4 * bytes
}

/// The gradients' and parameters' types of every range: one buffer each, one type each
/// (refused otherwise).
pub(crate) fn dtypes_of(ranges: &[(Optimizer, usize, usize)]) -> Result<(GradDType, ParamDType)> {
    let Some((first, _, _)) = ranges.first() else {
        return Ok((GradDType::F32, ParamDType::F32));
    };
    for (o, _, _) in ranges {
        crate::layout::check_same_dtypes(first, o)?;
    }
    Ok((first.grad_dtype(), first.param_dtype()))
}

/// `data` as half bits of `dtype` (nearest-even), or `None` for f32.
pub(crate) fn half_bits(dtype: GradDType, data: &[f32]) -> Option<Vec<u16>> {
    (dtype != GradDType::F32).then(|| {
        data.iter()
            .map(|&x| dtype.half_bits(x).unwrap_or(0))
            .collect()
    })
}

/// A device step count the host read back (`device`) and the host's step count it is taken
/// to belong to (`host`, lowered by the steps that may not have been submitted then): from
/// host count h on, the device's count lies in [device, device + (h − host)].
#[derive(Clone, Copy, Debug, Default)]
struct Anchor {
    device: u64,
    host: u64,
}

impl std::fmt::Debug for GpuOptimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let groups: Vec<_> = self
            .segments
            .iter()
            .map(|s| (s.progress.optimizer, s.offset..s.offset + s.len))
            .collect();
        f.debug_struct("GpuOptimizer")
            .field("len", &self.len)
            .field("steps", &self.steps())
            .field("groups", &groups)
            .field(
                "tensors",
                &self.layout.as_ref().map_or(0, |l| l.tensors().len()),
            )
            .field("gradient_control", &self.gradient_control())
            .field("context", &self.ctx)
            .finish_non_exhaustive()
    }
}

impl GpuOptimizer {
    /// An optimizer over `len` parameters, all zero until written.
    pub fn new(ctx: &GpuContext, optimizer: impl Into<Optimizer>, len: usize) -> Result<Self> {
        let optimizer = optimizer.into();
        optimizer.validate()?;
        Self::owned(ctx, &[(optimizer, 0, len)], len, None)
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

    /// An optimizer over the tensors of `layout`, packed into one flat buffer: one step is one
    /// fused dispatch per binding-sized chunk however many tensors there are. Parameters start
    /// at zero; write them per tensor with [`GpuOptimizer::write_tensor`].
    pub fn with_layout(
        ctx: &GpuContext,
        optimizer: impl Into<Optimizer>,
        layout: ParamLayout,
    ) -> Result<Self> {
        let optimizer = optimizer.into();
        optimizer.validate()?;
        if layout.is_empty() {
            return Err(Error::Empty);
        }
        let len = layout.len();
        Self::owned(ctx, &[(optimizer, 0, len)], len, Some(layout))
    }

    /// An optimizer over parameter groups, as `torch.optim` takes `param_groups`: each group's
    /// tensors are packed contiguously and stepped by one pass with the group's own
    /// hyperparameters (learning rate, weight decay, betas, momentum, variant). All groups
    /// must be of one family (all Adam/AdamW, all SGD, …). See
    /// [`ParamGroup::split_weight_decay`] for the usual no-decay mask on biases and norms.
    pub fn with_groups(ctx: &GpuContext, groups: Vec<ParamGroup>) -> Result<Self> {
        let device_align = u64::from(ctx.limits().min_storage_buffer_offset_alignment);
        let align = group_alignment(&groups, device_align);
        let (layout, ranges) = pack_groups(&groups, ParamLayout::new(align))?;
        let len = layout.len();
        Self::owned(ctx, &ranges, len, Some(layout))
    }

    /// An optimizer that steps the caller's own buffers in place, with no copies.
    ///
    /// Both need `STORAGE` usage and at least [`crate::padded_bytes`]`(len)` bytes (half-precision
    /// gradients, [`crate::GradDType`], half that: two per `u32`, lane 0 low); reading them back
    /// also needs `COPY_SRC`, writing them from the host `COPY_DST`. They must come from
    /// `ctx`'s device (see [`GpuContext::from_device`]): a buffer of another device or another
    /// `wgpu::Instance` is refused with [`Error::ForeignBuffer`] as far as wgpu lets a library
    /// tell (see `check_same_device` in `src/gpu/buffers.rs` for the one case it cannot).
    pub fn adopt(
        ctx: &GpuContext,
        optimizer: impl Into<Optimizer>,
        params: wgpu::Buffer,
        grads: wgpu::Buffer,
        len: usize,
    ) -> Result<Self> {
        let optimizer = optimizer.into();
        optimizer.validate()?;
        check_size(ctx, "parameters", len)?;
        let needed = half_or_f32_bytes(optimizer.param_dtype().bytes(), len);
        let grad_bytes = grad_buffer_bytes(optimizer.grad_dtype(), len);
        for (what, buffer, needed) in [
            ("parameter buffer", &params, needed),
            ("gradient buffer", &grads, grad_bytes),
        ] {
            require(what, buffer, wgpu::BufferUsages::STORAGE)?;
            if buffer.size() < needed {
                return Err(Error::BufferTooSmall {
                    what,
                    bytes: buffer.size(),
                    needed,
                });
            }
            check_same_device(ctx, what, buffer)?;
        }
        Self::build(
            ctx,
            &[(optimizer, 0, len)],
            len,
            params,
            grads,
            Vec::new(),
            None,
        )
    }

    /// Allocates the parameter and gradient buffers, then builds the segments.
    fn owned(
        ctx: &GpuContext,
        ranges: &[(Optimizer, usize, usize)],
        len: usize,
        layout: Option<ParamLayout>,
    ) -> Result<Self> {
        check_size(ctx, "parameters", len)?;
        let (grad_dtype, param_dtype) = dtypes_of(ranges)?;
        let bytes = half_or_f32_bytes(param_dtype.bytes(), len);
        let grad_bytes = grad_buffer_bytes(grad_dtype, len);
        let create = |label, size| {
            ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: DATA_USAGE,
                mapped_at_creation: false,
            })
        };
        let (params, grads) = compat::scoped(ctx.device(), || {
            (create("parameters", bytes), create("gradients", grad_bytes))
        })?;
        let allocations = vec![
            Allocation {
                label: "parameters".into(),
                role: BufferRole::Parameters,
                bytes,
            },
            Allocation {
                label: "gradients".into(),
                role: BufferRole::Gradients,
                bytes: grad_bytes,
            },
        ];
        Self::build(ctx, ranges, len, params, grads, allocations, layout)
    }

    fn build(
        ctx: &GpuContext,
        ranges: &[(Optimizer, usize, usize)],
        len: usize,
        params: wgpu::Buffer,
        grads: wgpu::Buffer,
        mut allocations: Vec<Allocation>,
        layout: Option<ParamLayout>,
    ) -> Result<Self> {
        let (grad_dtype, param_dtype) = dtypes_of(ranges)?;
        let model = (param_dtype == ParamDType::Bf16Master).then(|| {
            let bytes = half_or_f32_bytes(2, len);
            allocations.push(Allocation {
                label: "model (bf16)".into(),
                role: BufferRole::Model,
                bytes,
            });
            ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("model (bf16)"),
                size: bytes,
                usage: DATA_USAGE,
                mapped_at_creation: false,
            })
        });
        // Chosen (and, on first use, tuned) before the scope below: tuning submits work of its own.
        let shapes = ranges
            .iter()
            .map(|(optimizer, _, len)| ctx.shape_for(&optimizer.resolved_for(*len)))
            .collect::<Result<Vec<_>>>()?;
        let segments = compat::scoped(ctx.device(), || {
            ranges
                .iter()
                .zip(shapes)
                .map(|(&(optimizer, offset, seg_len), shape)| {
                    let tensors =
                        crate::layout::group_tensors(layout.as_ref(), offset..offset + seg_len);
                    let mut segment = Segment::build(
                        ctx,
                        optimizer,
                        shape,
                        offset,
                        seg_len,
                        &tensors,
                        &mut allocations,
                    )?;
                    segment.bind(
                        ctx,
                        [&params, &grads],
                        model.as_ref(),
                        ctx.neutral_control(),
                        ctx.neutral_scalars(),
                    );
                    Ok(segment)
                })
                .collect::<Result<Vec<Segment>>>()
        })??;
        Ok(Self {
            ctx: ctx.clone(),
            len,
            params,
            grads,
            grad_dtype,
            param_dtype,
            model,
            segments,
            allocations,
            layout,
            readback_peak: AtomicU64::new(0),
            clip: None,
            anchor: Anchor::default(),
            encoder_run: (0, 0),
            decided: None,
        })
    }

    /// The control block, read back, when gradient control is on.
    pub(crate) fn control_block(&self) -> Result<Option<ControlBlock>> {
        let Some(clip) = &self.clip else {
            return Ok(None);
        };
        let words = self.read_range("control block", &clip.control, 0, 8)?;
        Ok(Some(bytemuck::pod_read_unaligned(bytemuck::cast_slice(
            &words,
        ))))
    }

    pub(crate) fn write_control_block(&self, block: &ControlBlock) -> Result<()> {
        if let Some(clip) = &self.clip {
            compat::scoped(self.ctx.device(), || {
                self.ctx
                    .queue()
                    .write_buffer(&clip.control, 0, bytemuck::bytes_of(block))
            })?;
        }
        Ok(())
    }

    /// After a restore: the device's count is `device` at host count `host`; the next step
    /// writes the whole window of step scalars again.
    pub(crate) fn reanchor(&mut self, device: u64, host: u64) {
        self.anchor = Anchor { device, host };
        for segment in &mut self.segments {
            segment.scalars_written_with = None;
        }
    }

    /// The binding of elements `range` of tensor `name` in the parameter buffer (`grads:
    /// true`: the gradient buffer), for your own kernels. Tensors start at the device's storage
    /// offset alignment (with [`ParamLayout::for_limits`]), so a whole view binds as a range.
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
        let bytes = if grads {
            self.grad_dtype.bytes()
        } else {
            self.param_dtype.bytes()
        };
        Ok(wgpu::BufferBinding {
            buffer: if grads { &self.grads } else { &self.params },
            offset: (view.offset + range.start) as u64 * bytes,
            size: NonZeroU64::new((range.end - range.start) as u64 * bytes),
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

    fn group_of(&self, offset: usize) -> usize {
        self.segments
            .iter()
            .rposition(|s| s.offset <= offset)
            .unwrap_or(0)
    }

    /// The buffer of one state tensor of the first group, by PyTorch's name.
    pub fn state_buffer(&self, name: &str) -> Result<&wgpu::Buffer> {
        self.group_state_buffer(0, name)
    }

    /// The buffer of one state tensor of group `g` (indexed from the group's first element):
    /// f32 values, bf16 bit patterns two to a u32, or int8 codes four to a u32, as the group's
    /// state type says (the absmax of int8 state is another buffer).
    pub fn group_state_buffer(&self, g: usize, name: &str) -> Result<&wgpu::Buffer> {
        self.group_state(g, name).map(|s| &s.data)
    }

    fn group_state(&self, g: usize, name: &str) -> Result<&StateBuffer> {
        let Some(segment) = self.segments.get(g) else {
            return Err(Error::UnknownGroup {
                group: g,
                groups: self.segments.len(),
            });
        };
        segment
            .state
            .iter()
            .find(|s| s.slot.name == name)
            .ok_or_else(|| Error::UnknownState {
                optimizer: segment.progress.optimizer.name(),
                name: name.to_string(),
                available: segment.progress.optimizer.state_layout().names(),
            })
    }

    /// Writes one state tensor of group `g` in its stored form (of the group's state type and
    /// length).
    pub(crate) fn write_group_state_stored(
        &self,
        g: usize,
        name: &str,
        stored: &StoredState,
    ) -> Result<()> {
        let state = self.group_state(g, name)?;
        stored.check_fits(state.slot.dtype, self.segments[g].state_len)?;
        state.upload(self.ctx.queue(), stored, false);
        Ok(())
    }

    /// The buffers this optimizer allocated, with their sizes.
    pub fn allocations(&self) -> &[Allocation] {
        &self.allocations
    }

    /// The largest staging buffer (bytes) a readback has created: the transient cost of
    /// reading back. 0 before any readback.
    pub fn readback_peak_bytes(&self) -> u64 {
        self.readback_peak.load(Ordering::Relaxed)
    }

    /// How the parameters are split into bindings and dispatches, group after group.
    pub fn chunks(&self) -> Vec<Chunk> {
        self.segments
            .iter()
            .flat_map(|s| s.chunks.iter().copied())
            .collect()
    }

    /// The context the optimizer runs on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Records one step into the caller's `encoder` and counts it, without submitting.
    ///
    /// Each recorded step writes its scalars into a slot of its own and copies them into place
    /// inside the encoder, so that up to 64 steps may be recorded into one encoder (or several)
    /// before the queue is submitted; a 65th into the same encoder is refused with
    /// [`Error::TooManyRecordedSteps`]. Fails (recording nothing) when a schedule is finished,
    /// at [`crate::MAX_STEPS`], or when a readback below fails.
    ///
    /// With non-finite skipping, the device's step count lags the host's by the steps it
    /// skipped, and the host keeps the step scalars of every count the device may have
    /// written; once every 4031 steps it reads the device's count back (16 bytes, waiting for
    /// the queue) to move that window, so any number of skipped steps stays exact.
    pub fn record_step(&mut self, encoder: &mut wgpu::CommandEncoder) -> Result<()> {
        self.record(encoder, None)
    }

    /// Records and submits one step; on failure the host's counts are as before.
    fn submit_step(&mut self, decided: Option<NormOutcome>) -> Result<()> {
        let device = self.ctx.device().clone();
        let saved: Vec<u64> = self.segments.iter().map(|s| s.progress.steps).collect();
        let saved_run = self.encoder_run;
        let result = compat::scoped(&device, || {
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("wgoptim step"),
            });
            self.record(&mut encoder, decided)?;
            self.ctx.queue().submit([encoder.finish()]);
            Ok(())
        })
        .and_then(|recorded| recorded);
        if result.is_err() {
            for (s, steps) in self.segments.iter_mut().zip(saved) {
                s.progress.steps = steps;
            }
            self.encoder_run = saved_run;
            self.decided = None;
        }
        result
    }

    /// [`Self::record_step`], or with `decided`, a step whose gradient-control outcome was
    /// made elsewhere: the control block is counted as norm.wgsl's `finish` would and written
    /// ahead of the encoder, and the norm pass is left out.
    fn record(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        decided: Option<NormOutcome>,
    ) -> Result<()> {
        for segment in &self.segments {
            segment.progress.check_can_step()?;
        }
        // The decided step's control block, counted from the last decided step's (read back
        // only when another kind of step or a restore came between).
        let counted = match decided {
            Some(outcome) => {
                let mut block = match self.decided {
                    Some(block) => block,
                    None => self.control_block()?.ok_or(Error::NoGradientControl)?,
                };
                outcome.count(&mut block);
                Some(block)
            }
            None => None,
        };
        let id = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            encoder.hash(&mut h);
            h.finish()
        };
        let run = if self.encoder_run.0 == id {
            self.encoder_run.1 + 1
        } else {
            1
        };
        if run > UNIFORM_RING {
            return Err(Error::TooManyRecordedSteps { max: UNIFORM_RING });
        }
        let uniforms = self
            .segments
            .iter()
            .map(|s| s.progress.next_uniform())
            .collect::<Result<Vec<StepUniform>>>()?;
        if self.clip.as_ref().is_some_and(|c| c.config.skip_nonfinite) {
            self.write_step_scalars()?;
        }
        if let Some(block) = &counted {
            self.write_control_block(block)?;
        }
        self.decided = counted;
        let host = self.steps();
        for (segment, uniform) in self.segments.iter().zip(&uniforms) {
            segment.record_uniform(self.ctx.queue(), encoder, uniform, host);
        }
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("wgoptim step"),
                timestamp_writes: None,
            });
            if let Some(clip) = self.clip.as_ref().filter(|_| decided.is_none()) {
                clip.encode(&mut pass);
            }
            for segment in &self.segments {
                segment.encode(&mut pass);
            }
        }
        for segment in &mut self.segments {
            segment.progress.advance();
        }
        self.encoder_run = (id, run);
        Ok(())
    }

    /// Skipping on: makes sure every group's ring holds the step scalars of every count the
    /// device may reach at this step, reading the device's count back when the window of
    /// possible counts would outgrow the ring.
    fn write_step_scalars(&mut self) -> Result<()> {
        let host = self.steps();
        if host.saturating_sub(self.anchor.host) + 1 > SCALAR_RING {
            // Steps recorded but perhaps not yet submitted are not in the count read back.
            let device = self.device_steps()?;
            self.reanchor(device, host.saturating_sub(UNIFORM_RING));
        }
        let Anchor { device, host: at } = self.anchor;
        let window = device + 1..=device + host.saturating_sub(at) + 1;
        for segment in &mut self.segments {
            segment.write_scalars(self.ctx.queue(), window.clone())?;
        }
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
        let raw = self.read_bytes(what, buffer, offset as u64 * 4, len as u64 * 4)?;
        Ok(bytemuck::pod_collect_to_vec(&raw))
    }

    /// Reads `bytes` bytes of `buffer` from byte `offset` (both rounded up to whole words).
    fn read_bytes(
        &self,
        what: &'static str,
        buffer: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
    ) -> Result<Vec<u8>> {
        require(what, buffer, wgpu::BufferUsages::COPY_SRC)?;
        let device = self.ctx.device();
        let words = bytes.next_multiple_of(4);
        let staging = compat::scoped(device, || {
            let staging = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback staging"),
                size: words,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder = device.create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(buffer, offset, &staging, 0, words);
            self.ctx.queue().submit([encoder.finish()]);
            staging
        })?;
        self.readback_peak.fetch_max(words, Ordering::Relaxed);
        let mut raw = compat::read_mapped(device, &staging)?;
        raw.truncate(bytes as usize);
        Ok(raw)
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

    /// Writes elements `offset..offset + len` of the gradients from f32 values, rounded to
    /// nearest-even into the gradients' type.
    fn write_grad_range(&self, offset: usize, len: usize, data: &[f32]) -> Result<()> {
        let Some(bits) = half_bits(self.grad_dtype, data) else {
            return self.write_range("gradients", &self.grads, offset, len, data);
        };
        if data.len() != len {
            return Err(Error::LengthMismatch {
                what: "gradients",
                expected: len,
                got: data.len(),
            });
        }
        self.write_half_range(offset, &bits)
    }

    /// Writes half-precision gradient bits from element `offset`.
    fn write_half_range(&self, offset: usize, bits: &[u16]) -> Result<()> {
        self.write_half("gradients", &self.grads, offset, bits)
    }

    /// Writes 16-bit values into `buffer` from element `offset` (even: tensors and buffers
    /// start on whole vec4 blocks), padded with a zero to whole words.
    fn write_half(
        &self,
        what: &'static str,
        buffer: &wgpu::Buffer,
        offset: usize,
        bits: &[u16],
    ) -> Result<()> {
        require(what, buffer, wgpu::BufferUsages::COPY_DST)?;
        let mut words = bits.to_vec();
        words.resize(bits.len().next_multiple_of(2), 0);
        compat::scoped(self.ctx.device(), || {
            self.ctx
                .queue()
                .write_buffer(buffer, offset as u64 * 2, bytemuck::cast_slice(&words))
        })
    }

    /// Writes elements `offset..offset + len` of the parameters from f32 values: bf16
    /// parameters, and the model copy of master weights, rounded to nearest-even.
    fn write_param_range(&self, offset: usize, len: usize, data: &[f32]) -> Result<()> {
        if data.len() != len {
            return Err(Error::LengthMismatch {
                what: "parameters",
                expected: len,
                got: data.len(),
            });
        }
        let bf16 = || -> Vec<u16> {
            data.iter()
                .map(|&x| bf16_bits(x, Rounding::NearestEven, 0))
                .collect()
        };
        match self.param_dtype {
            ParamDType::F32 => self.write_range("parameters", &self.params, offset, len, data),
            ParamDType::Bf16 => self.write_half("parameters", &self.params, offset, &bf16()),
            ParamDType::Bf16Master => {
                self.write_range("parameters", &self.params, offset, len, data)?;
                match &self.model {
                    Some(model) => self.write_half("model copy", model, offset, &bf16()),
                    None => Ok(()),
                }
            }
        }
    }

    /// Reads elements `offset..offset + len` of the parameters (bf16 widened to f32).
    fn read_param_range(&self, offset: usize, len: usize) -> Result<Vec<f32>> {
        if self.param_dtype != ParamDType::Bf16 {
            return self.read_range("parameter buffer", &self.params, offset, len);
        }
        let raw = self.read_bytes(
            "parameter buffer",
            &self.params,
            offset as u64 * 2,
            len as u64 * 2,
        )?;
        let bits: Vec<u16> = bytemuck::pod_collect_to_vec(&raw);
        Ok(bits.iter().map(|&h| bf16_value(h)).collect())
    }

    /// The parameters' type.
    pub fn param_dtype(&self) -> ParamDType {
        self.param_dtype
    }

    /// The bf16 model copy of master-weight parameters ([`ParamDType::Bf16Master`]): two
    /// values per `u32`, written by every step; bind it in your forward pass.
    pub fn model_buffer(&self) -> Option<&wgpu::Buffer> {
        self.model.as_ref()
    }

    /// The bf16 model copy's bits (reads back), with master-weight parameters.
    pub fn read_model_bits(&self) -> Result<Option<Vec<u16>>> {
        let Some(model) = &self.model else {
            return Ok(None);
        };
        let raw = self.read_bytes("model copy", model, 0, self.len as u64 * 2)?;
        Ok(Some(bytemuck::pod_collect_to_vec(&raw)))
    }

    /// The gradients' type.
    pub fn grad_dtype(&self) -> GradDType {
        self.grad_dtype
    }

    /// Writes the gradients as half-precision bit patterns of the optimizer's
    /// [`GradDType`] (f16 or bf16, as your backward pass produced them); refused with
    /// [`Error::GradDTypeMismatch`] when the optimizer reads f32 gradients.
    pub fn write_grad_bits(&mut self, bits: &[u16]) -> Result<()> {
        if self.grad_dtype == GradDType::F32 {
            return Err(Error::GradDTypeMismatch {
                expected: "f32",
                got: "16-bit",
            });
        }
        if bits.len() != self.len {
            return Err(Error::LengthMismatch {
                what: "gradients",
                expected: self.len,
                got: bits.len(),
            });
        }
        self.write_half_range(0, bits)
    }

    /// Reads the gradients back (widened to f32 from a half type).
    pub fn read_grads(&self) -> Result<Vec<f32>> {
        if self.grad_dtype == GradDType::F32 {
            return self.read_buffer("gradient buffer", &self.grads);
        }
        let raw = self.read_bytes("gradient buffer", &self.grads, 0, self.len as u64 * 2)?;
        let bits: Vec<u16> = bytemuck::pod_collect_to_vec(&raw);
        Ok(bits
            .iter()
            .map(|&h| self.grad_dtype.half_value(h))
            .collect())
    }
}

impl crate::checkpoint::Stored for GpuOptimizer {
    fn group_progress(&self, g: usize) -> &crate::backend::Progress {
        &self.segments[g].progress
    }
    fn write_group_state_stored(
        &mut self,
        g: usize,
        name: &str,
        stored: &StoredState,
    ) -> Result<()> {
        GpuOptimizer::write_group_state_stored(self, g, name, stored)
    }
    fn control_block(&self) -> Result<Option<ControlBlock>> {
        self.control_block()
    }
    fn restore_counters(&mut self, block: &ControlBlock, host: u64) -> Result<()> {
        self.decided = None;
        self.write_control_block(block)?;
        self.reanchor(block.steps64(), host);
        Ok(())
    }
    fn group_progress_mut(&mut self, g: usize) -> &mut crate::backend::Progress {
        &mut self.segments[g].progress
    }
    fn finish_restore(&self) -> Result<()> {
        compat::wait(self.ctx.device())
    }
}

impl Backend for GpuOptimizer {
    fn layout(&self) -> Option<&ParamLayout> {
        self.layout.as_ref()
    }
    fn view(&self, name: &str) -> Result<&TensorView> {
        match &self.layout {
            Some(l) => l.get(name),
            None => Err(Error::UnknownTensor(name.to_string())),
        }
    }
    fn write_tensor(&mut self, name: &str, data: &[f32]) -> Result<()> {
        let view = self.view(name)?.clone();
        self.write_param_range(view.offset, view.len, data)
    }
    fn write_tensor_grads(&mut self, name: &str, data: &[f32]) -> Result<()> {
        let view = self.view(name)?.clone();
        self.write_grad_range(view.offset, view.len, data)
    }
    fn read_tensor(&self, name: &str) -> Result<Vec<f32>> {
        let view = self.view(name)?;
        self.read_param_range(view.offset, view.len)
    }
    fn read_tensor_state(&self, name: &str, state: &str) -> Result<Vec<f32>> {
        let view = self.view(name)?;
        let g = self.group_of(view.offset);
        let start = view.offset - self.segments[g].offset;
        let span = crate::optim::tensor_state(&self.segments[g].factors, start..start + view.len);
        let group = self.read_group_state(g, state)?;
        Ok(group[span].to_vec())
    }
    fn groups(&self) -> usize {
        self.segments.len()
    }
    fn group_range(&self, g: usize) -> Option<std::ops::Range<usize>> {
        self.segments.get(g).map(|s| s.offset..s.offset + s.len)
    }
    fn group_optimizer(&self, g: usize) -> Option<&Optimizer> {
        self.segments.get(g).map(|s| &s.progress.optimizer)
    }
    fn group_lr(&self, g: usize) -> Result<f64> {
        match self.segments.get(g) {
            Some(s) => s.progress.next_lr(),
            None => Err(Error::UnknownGroup {
                group: g,
                groups: self.segments.len(),
            }),
        }
    }
    fn set_group_lr(&mut self, g: usize, lr: f64) -> Result<()> {
        let n = self.segments.len();
        match self.segments.get_mut(g) {
            Some(s) => s.progress.set_lr(lr),
            None => Err(Error::UnknownGroup {
                group: g,
                groups: n,
            }),
        }
    }
    fn read_group_state(&self, g: usize, name: &str) -> Result<Vec<f32>> {
        let stored = self.read_group_state_stored(g, name)?;
        Ok(stored.decode(self.group_state(g, name)?.slot.non_negative))
    }
    fn read_group_state_stored(&self, g: usize, name: &str) -> Result<StoredState> {
        let state = self.group_state(g, name)?;
        let len = self.segments[g].state_len;
        let (data_bytes, absmax_bytes) = state_bytes(state.slot.dtype, len);
        let data = self.read_bytes("state buffer", &state.data, 0, data_bytes)?;
        let absmax = match &state.absmax {
            Some(b) => self.read_bytes("state buffer", b, 0, absmax_bytes)?,
            None => Vec::new(),
        };
        Ok(StoredState::from_bytes(
            state.slot.dtype,
            len,
            &data,
            &absmax,
        ))
    }

    fn checkpoint(&self) -> Result<Vec<u8>> {
        crate::checkpoint::checkpoint(self)
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        crate::checkpoint::restore(self, bytes)
    }

    fn set_gradient_control(&mut self, control: Option<GradientControl>) -> Result<()> {
        if let Some(c) = &control {
            c.validate()?;
        }
        // The step count the device and the host agree on from here.
        let steps = self.device_steps()?;
        let skipping = control.is_some_and(|c| c.skip_nonfinite);
        let ctx = self.ctx.clone();
        let (params, grads, model) = (&self.params, &self.grads, self.model.as_ref());
        let clip = compat::scoped(ctx.device(), || -> Result<Option<Clip>> {
            let clip = match control {
                Some(c) => Some(Clip::build(
                    &ctx,
                    grads,
                    self.grad_dtype,
                    self.len,
                    c,
                    steps,
                )?),
                None => None,
            };
            for segment in &mut self.segments {
                segment.scalar_ring = skipping.then(|| {
                    ctx.device().create_buffer(&wgpu::BufferDescriptor {
                        label: Some("step scalar ring"),
                        size: SCALAR_RING * std::mem::size_of::<StepScalars>() as u64,
                        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    })
                });
                let control = clip.as_ref().map_or(ctx.neutral_control(), |c| &c.control);
                let scalars = segment
                    .scalar_ring
                    .clone()
                    .unwrap_or_else(|| ctx.neutral_scalars().clone());
                segment.bind(&ctx, [params, grads], model, control, &scalars);
            }
            Ok(clip)
        })??;
        for segment in &mut self.segments {
            segment.progress.steps = steps;
            segment.progress.deferred = skipping;
            segment.scalars_written_with = None;
        }
        self.anchor = Anchor {
            device: steps,
            host: steps,
        };
        self.clip = clip;
        self.decided = None;
        Ok(())
    }
    fn gradient_control(&self) -> Option<GradientControl> {
        self.clip.as_ref().map(|c| c.config)
    }
    fn set_loss_scale(&mut self, scale: f64) -> Result<()> {
        let mut config = self.gradient_control().unwrap_or_default();
        config.loss_scale = scale;
        config.validate()?;
        match &mut self.clip {
            Some(clip) => {
                clip.set_config(self.ctx.queue(), config);
                Ok(())
            }
            None => self.set_gradient_control(Some(config)),
        }
    }
    fn device_steps(&self) -> Result<u64> {
        Ok(match self.control_block()? {
            Some(c) => c.steps64(),
            None => self.segments[0].progress.steps,
        })
    }
    fn skipped_steps(&self) -> Result<u64> {
        Ok(self.control_block()?.map_or(0, |c| c.skipped64()))
    }
    fn last_grad_norm(&self) -> Result<Option<f32>> {
        Ok(self.control_block()?.map(|c| c.grad_norm))
    }

    /// Group 0's optimizer (see [`GpuOptimizer::group_optimizer`] for the others).
    fn optimizer(&self) -> &Optimizer {
        &self.segments[0].progress.optimizer
    }
    fn len(&self) -> usize {
        self.len
    }
    fn steps(&self) -> u64 {
        self.segments[0].progress.steps
    }
    /// Group 0's learning rate for the next step (see [`GpuOptimizer::group_lr`] for the others).
    fn lr(&self) -> Result<f64> {
        self.segments[0].progress.next_lr()
    }
    /// Sets every group's base learning rate (see [`GpuOptimizer::set_group_lr`]).
    fn set_lr(&mut self, lr: f64) -> Result<()> {
        crate::backend::set_lr_all(self.segments.iter_mut().map(|s| &mut s.progress), lr)
    }
    /// Drives every group from `schedule`, each from its own base learning rate (PyTorch's
    /// per-group semantics). Refused as a whole if any group cannot take it.
    fn set_schedule(&mut self, schedule: Option<Schedule>) -> Result<()> {
        crate::backend::set_schedule_all(
            self.segments.iter_mut().map(|s| &mut s.progress),
            schedule,
        )
    }
    /// The first group's next uniform.
    fn next_uniform(&self) -> Result<StepUniform> {
        self.segments[0].progress.next_uniform()
    }
    /// Writes the parameters (bf16 parameters and the model copy of master weights rounded
    /// to nearest-even).
    fn write_params(&mut self, params: &[f32]) -> Result<()> {
        self.write_param_range(0, self.len, params)
    }
    /// Writes the gradients, rounded to nearest-even when the optimizer reads half-precision
    /// gradients.
    fn write_grads(&mut self, grads: &[f32]) -> Result<()> {
        self.write_grad_range(0, self.len, grads)
    }
    /// One fused step of every group, submitted without waiting. wgpu errors (a destroyed
    /// buffer, say) come back as [`Error::Wgpu`] and the step is not counted.
    fn step(&mut self) -> Result<()> {
        self.submit_step(None)
    }
    fn state_bytes(&self) -> u64 {
        let state = self
            .allocations
            .iter()
            .filter(|a| a.role == BufferRole::State);
        state.map(|a| a.bytes).sum()
    }
    fn step_decided(&mut self, outcome: NormOutcome) -> Result<()> {
        if self.clip.is_none() {
            return Err(Error::NoGradientControl);
        }
        self.submit_step(Some(outcome))
    }
    /// Reads the parameters (the f32 masters of master weights; bf16 ones widened exactly).
    fn read_params(&self) -> Result<Vec<f32>> {
        self.read_param_range(0, self.len)
    }
    /// One state tensor over all parameters, group by group (zero where a group has no such
    /// state or between groups).
    fn read_state(&self, name: &str) -> Result<Vec<f32>> {
        if self.segments[0].progress.optimizer.kernel().shaped_state() {
            // Adafactor: not one value per parameter; the groups' states one after another.
            let mut all = Vec::new();
            for g in 0..self.segments.len() {
                all.extend(self.read_group_state(g, name)?);
            }
            return Ok(all);
        }
        let mut flat = vec![0.0; self.len];
        let mut found = false;
        for (g, segment) in self.segments.iter().enumerate() {
            if self.group_state(g, name).is_ok() {
                let part = self.read_group_state(g, name)?;
                flat[segment.offset..segment.offset + segment.len].copy_from_slice(&part);
                found = true;
            }
        }
        if found {
            Ok(flat)
        } else {
            self.state_buffer(name).map(|_| flat)
        }
    }
}
