//! The optimizer on the CPU: the kernels' f32 twins over host vectors, with the GPU optimizer's
//! constructors (flat, layout, parameter groups), split across threads.

use super::check_len;
use super::context::CpuContext;
use super::host_vec;
use super::lowp::stored_step;
use crate::backend::{Backend, Progress};
use crate::control::{self, GradientControl, NormOutcome};
use crate::error::{Error, Result};
use crate::layout::{ParamGroup, ParamLayout, TensorView, group_alignment, pack_groups};
use crate::optim::{GradDType, Optimizer, ParamDType, Rounding, StateDType, StateSlot};
use crate::precision::{StoredState, bf16_bits, bf16_value};
use crate::schedule::Schedule;
use crate::uniform::{ControlBlock, DeviceStep, StepUniform};

/// One parameter group's range of the flat vectors and its own state.
#[derive(Clone, Debug)]
struct Segment {
    offset: usize,
    len: usize,
    progress: Progress,
    /// State in binding-slot order, indexed from the group's first element, in its stored form
    /// (f32, bf16 or int8); `None` where the variant has no such slot.
    state: [StoredState; 3],
    /// The group's tensors (element ranges from its start), for per-tensor rules (LAMB).
    tensors: Vec<std::ops::Range<usize>>,
    /// Adafactor: how it sees each tensor (empty for the other families).
    factors: Vec<crate::optim::Factor>,
    /// Muon: its matrices and their scratch space, kept between steps (empty for the other
    /// families).
    matrices: Vec<crate::optim::muon::Matrix>,
    muon_scratch: Vec<super::muon::Scratch>,
    /// Elements of each state slot ([`Optimizer::state_len`]).
    state_len: usize,
}

/// An optimizer over `len()` f32 parameters in host memory, stepped by the kernels' f32 twins:
/// the same results as [`crate::GpuOptimizer`] bit for bit where the device rounds as IEEE 754
/// does (lavapipe does), behind the same constructors and [`Backend`] API.
///
/// Each step splits the parameters into tasks of 32,768 elements run on its [`CpuContext`]'s
/// threads (rayon's global pool, or a pool of its own); each element is updated by
/// the same twin independently, so the thread count never changes a result.
///
/// ```
/// use wgoptim::{Adam, Backend, CpuContext, CpuOptimizer};
/// let mut opt = CpuOptimizer::with_params(&CpuContext::new(), Adam::adamw(), &[0.5; 1000])?;
/// opt.write_grads(&[0.1; 1000])?;
/// opt.step()?;
/// assert!(opt.params()[0] < 0.5);
/// # Ok::<(), wgoptim::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct CpuOptimizer {
    len: usize,
    params: Vec<f32>,
    grads: Vec<f32>,
    segments: Vec<Segment>,
    layout: Option<ParamLayout>,
    ctx: CpuContext,
    /// Clipping, unscaling and skipping, when on, and the counters norm.wgsl keeps on the GPU.
    control: Option<GradientControl>,
    block: ControlBlock,
}

/// The alignment (in f32 elements) of tensors and groups in a CPU layout: 256 bytes, wgpu's
/// default storage offset alignment, so that a CPU layout's offsets are valid on most devices
/// too and equal the GPU's (`layout::group_alignment`).
const CPU_ALIGN: usize = 64;

impl CpuOptimizer {
    /// One step with the gradient control's decision `outcome` (none without control).
    fn step_with(&mut self, outcome: Option<NormOutcome>) -> Result<()> {
        // The step the device applies if it is not skipped: with skipping on, the uniform
        // leaves its step-dependent factors to the scalars of that step (as on the GPU).
        let t = self.block.steps64() + 1;
        let steps = self
            .segments
            .iter()
            .map(|s| {
                s.progress.check_can_step()?;
                let at_step = match s.progress.deferred {
                    true => s.progress.next_optimizer()?.step_scalars(t),
                    false => DeviceStep::NEUTRAL.at_step,
                };
                let grad_mul = outcome.map_or(1.0, |o| o.grad_mul);
                Ok((s.progress.next_uniform()?, DeviceStep { grad_mul, at_step }))
            })
            .collect::<Result<Vec<_>>>()?;
        let skip = outcome.is_some_and(|o| o.skip);
        for (segment, (uniform, dev)) in self.segments.iter_mut().zip(&steps) {
            segment.progress.advance();
            if skip {
                continue;
            }
            let range = segment.offset..segment.offset + segment.len;
            if let Optimizer::Lamb(o) = &segment.progress.optimizer {
                let [StoredState::F32(m), StoredState::F32(v), _] = &mut segment.state else {
                    unreachable!("LAMB validates to f32 state");
                };
                super::lamb::step(
                    o,
                    uniform,
                    dev,
                    &segment.tensors,
                    &mut self.params[range.clone()],
                    &self.grads[range],
                    [m, v],
                    &self.ctx,
                );
                continue;
            }
            if let Optimizer::Muon(o) = &segment.progress.optimizer {
                let StoredState::F32(buf) = &mut segment.state[0] else {
                    unreachable!("Muon validates to f32 state");
                };
                super::muon::step(
                    o,
                    uniform,
                    dev,
                    &segment.matrices,
                    &mut self.params[range.clone()],
                    &self.grads[range],
                    buf,
                    &mut segment.muon_scratch,
                    &self.ctx,
                );
                continue;
            }
            if let Optimizer::Adafactor(_) = &segment.progress.optimizer {
                let StoredState::F32(variance) = &mut segment.state[0] else {
                    unreachable!("Adafactor validates to f32 state");
                };
                super::adafactor::step(
                    uniform,
                    dev,
                    &segment.factors,
                    &mut self.params[range.clone()],
                    &self.grads[range],
                    variance,
                    &self.ctx,
                );
                continue;
            }
            stored_step(
                &segment.progress.optimizer,
                uniform,
                dev,
                segment.offset,
                &mut self.params[range.clone()],
                &self.grads[range],
                &mut segment.state,
                &self.ctx,
            );
        }
        if let Some(o) = outcome {
            o.count(&mut self.block);
        }
        Ok(())
    }

    /// An optimizer over `len` parameters, all zero until written (as
    /// [`crate::GpuOptimizer::new`]).
    pub fn new(ctx: &CpuContext, optimizer: impl Into<Optimizer>, len: usize) -> Result<Self> {
        let optimizer = optimizer.into();
        optimizer.validate()?;
        Self::build(ctx, &[(optimizer, 0, len)], len, None)
    }

    /// An optimizer over a copy of `params`, with zero gradients and fresh state (as
    /// [`crate::GpuOptimizer::with_params`]).
    pub fn with_params(
        ctx: &CpuContext,
        optimizer: impl Into<Optimizer>,
        params: &[f32],
    ) -> Result<Self> {
        let mut opt = Self::new(ctx, optimizer, params.len())?;
        opt.store_params(0, params);
        Ok(opt)
    }

    /// An optimizer over the tensors of `layout`, packed into one flat vector (as
    /// [`crate::GpuOptimizer::with_layout`]). Parameters start at zero.
    pub fn with_layout(
        ctx: &CpuContext,
        optimizer: impl Into<Optimizer>,
        layout: ParamLayout,
    ) -> Result<Self> {
        let optimizer = optimizer.into();
        optimizer.validate()?;
        if layout.is_empty() {
            return Err(Error::Empty);
        }
        let len = layout.len();
        Self::build(ctx, &[(optimizer, 0, len)], len, Some(layout))
    }

    /// An optimizer over parameter groups, each with its own hyperparameters (as
    /// [`crate::GpuOptimizer::with_groups`], with the same refusals: no groups, an empty
    /// group, groups of different families).
    pub fn with_groups(ctx: &CpuContext, groups: Vec<ParamGroup>) -> Result<Self> {
        let align = group_alignment(&groups, CPU_ALIGN as u64 * 4);
        let (layout, ranges) = pack_groups(&groups, ParamLayout::new(align))?;
        let len = layout.len();
        Self::build(ctx, &ranges, len, Some(layout))
    }

    fn build(
        ctx: &CpuContext,
        ranges: &[(Optimizer, usize, usize)],
        len: usize,
        layout: Option<ParamLayout>,
    ) -> Result<Self> {
        if len == 0 {
            return Err(Error::Empty);
        }
        // The largest vectors first: a length no host can hold fails here, before any state
        // (whose stored forms take at most 4 bytes per element too) is built.
        let params = host_vec("parameters", len, 0.0)?;
        let grads = host_vec("gradients", len, 0.0)?;
        let segments = ranges
            .iter()
            .map(|&(optimizer, offset, seg_len)| {
                let optimizer = optimizer.resolved_for(seg_len);
                let shaped =
                    crate::layout::group_tensors(layout.as_ref(), offset..offset + seg_len);
                let state_len = optimizer.state_len(seg_len, &shaped);
                let mut state: [StoredState; 3] = Default::default();
                for slot in optimizer.state_layout().slots {
                    state[slot.slot] = match slot.dtype {
                        StateDType::F32 => {
                            StoredState::F32(host_vec("state", state_len, slot.init)?)
                        }
                        _ => StoredState::filled(&slot, state_len, slot.init),
                    };
                }
                let factors = if optimizer.kernel().shaped_state() {
                    crate::optim::factors(&shaped).0
                } else {
                    Vec::new()
                };
                let matrices = match optimizer {
                    Optimizer::Muon(_) => crate::optim::muon::matrices(&shaped)?.0,
                    _ => Vec::new(),
                };
                let muon_scratch = super::muon::Scratch::for_matrices(&matrices)?;
                Ok(Segment {
                    offset,
                    len: seg_len,
                    progress: Progress::new(optimizer)?,
                    state,
                    tensors: shaped.into_iter().map(|(r, _)| r).collect(),
                    factors,
                    matrices,
                    muon_scratch,
                    state_len,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            len,
            params,
            grads,
            segments,
            layout,
            ctx: ctx.clone(),
            control: None,
            block: ControlBlock::NEUTRAL,
        })
    }

    /// Threads a step runs on.
    pub fn threads(&self) -> usize {
        self.ctx.threads()
    }

    /// The context (thread pool) the steps run on.
    pub fn context(&self) -> &CpuContext {
        &self.ctx
    }

    /// The parameters, without a copy.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Stores parameters from element `start` as the device keeps them: bf16 parameters
    /// rounded to nearest-even (and kept as their f32 value).
    fn store_params(&mut self, start: usize, data: &[f32]) {
        let params = &mut self.params[start..start + data.len()];
        match self.segments[0].progress.optimizer.param_dtype() {
            ParamDType::Bf16 => {
                for (p, &x) in params.iter_mut().zip(data) {
                    *p = bf16_value(bf16_bits(x, Rounding::NearestEven, 0));
                }
            }
            _ => params.copy_from_slice(data),
        }
    }

    /// The bf16 model copy's bits, with master-weight parameters
    /// ([`ParamDType::Bf16Master`]): the f32 masters rounded to nearest-even, as the kernels
    /// write the copy.
    pub fn read_model_bits(&self) -> Option<Vec<u16>> {
        (self.segments[0].progress.optimizer.param_dtype() == ParamDType::Bf16Master).then(|| {
            self.params
                .iter()
                .map(|&p| bf16_bits(p, Rounding::NearestEven, 0))
                .collect()
        })
    }

    /// Stores gradients from element `start` as the kernels read them: rounded to nearest-even
    /// into the gradients' type and widened back (the CPU keeps them as f32).
    fn store_grads(&mut self, start: usize, data: &[f32]) {
        let dtype = self.segments[0].progress.optimizer.grad_dtype();
        let grads = &mut self.grads[start..start + data.len()];
        if dtype == GradDType::F32 {
            grads.copy_from_slice(data);
        } else {
            for (g, &x) in grads.iter_mut().zip(data) {
                *g = dtype.round(x);
            }
        }
    }

    fn segment(&self, g: usize) -> Result<&Segment> {
        self.segments.get(g).ok_or(Error::UnknownGroup {
            group: g,
            groups: self.segments.len(),
        })
    }

    /// One state tensor of group `g`, decoded to f32.
    fn group_state(&self, g: usize, name: &str) -> Result<Vec<f32>> {
        self.group_state_stored(g, name)
            .map(|(slot, stored)| stored.decode(slot.non_negative))
    }

    fn group_state_stored(&self, g: usize, name: &str) -> Result<(StateSlot, &StoredState)> {
        let segment = self.segment(g)?;
        let optimizer = &segment.progress.optimizer;
        let layout = optimizer.state_layout();
        match layout.find(name) {
            Some(slot) => Ok((*slot, &segment.state[slot.slot])),
            None => Err(Error::UnknownState {
                optimizer: optimizer.name(),
                name: name.to_string(),
                available: layout.names(),
            }),
        }
    }
}

impl crate::checkpoint::Stored for CpuOptimizer {
    fn group_progress(&self, g: usize) -> &Progress {
        &self.segments[g].progress
    }
    fn write_group_state_stored(
        &mut self,
        g: usize,
        name: &str,
        stored: &StoredState,
    ) -> Result<()> {
        let (slot, _) = self.group_state_stored(g, name)?;
        stored.check_fits(slot.dtype, self.segments[g].state_len)?;
        self.segments[g].state[slot.slot] = stored.clone();
        Ok(())
    }
    fn control_block(&self) -> Result<Option<ControlBlock>> {
        Ok(self.control.map(|_| self.block))
    }
    fn restore_counters(&mut self, block: &ControlBlock, _host: u64) -> Result<()> {
        self.block = *block;
        Ok(())
    }
    fn group_progress_mut(&mut self, g: usize) -> &mut Progress {
        &mut self.segments[g].progress
    }
    fn finish_restore(&self) -> Result<()> {
        Ok(())
    }
}

impl Backend for CpuOptimizer {
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
        let range = self.view(name)?.range();
        check_len("parameters", range.len(), data.len())?;
        self.store_params(range.start, data);
        Ok(())
    }
    fn write_tensor_grads(&mut self, name: &str, data: &[f32]) -> Result<()> {
        let range = self.view(name)?.range();
        check_len("gradients", range.len(), data.len())?;
        self.store_grads(range.start, data);
        Ok(())
    }
    fn read_tensor(&self, name: &str) -> Result<Vec<f32>> {
        Ok(self.params[self.view(name)?.range()].to_vec())
    }
    fn read_tensor_state(&self, name: &str, state: &str) -> Result<Vec<f32>> {
        let view = self.view(name)?;
        let g = self
            .segments
            .iter()
            .rposition(|s| s.offset <= view.offset)
            .unwrap_or(0);
        let start = view.offset - self.segments[g].offset;
        let span = crate::optim::tensor_state(&self.segments[g].factors, start..start + view.len);
        Ok(self.group_state(g, state)?[span].to_vec())
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
        self.segment(g)?.progress.next_lr()
    }
    fn set_group_lr(&mut self, g: usize, lr: f64) -> Result<()> {
        self.segment(g)?;
        self.segments[g].progress.set_lr(lr)
    }
    fn read_group_state(&self, g: usize, name: &str) -> Result<Vec<f32>> {
        self.group_state(g, name)
    }
    fn read_group_state_stored(&self, g: usize, name: &str) -> Result<StoredState> {
        self.group_state_stored(g, name).map(|(_, s)| s.clone())
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
        let steps = self.device_steps()?;
        let skipping = control.is_some_and(|c| c.skip_nonfinite);
        for segment in &mut self.segments {
            segment.progress.steps = steps;
            segment.progress.deferred = skipping;
        }
        self.block = ControlBlock::with_counts(steps, 0);
        self.control = control;
        Ok(())
    }
    fn gradient_control(&self) -> Option<GradientControl> {
        self.control
    }
    fn set_loss_scale(&mut self, scale: f64) -> Result<()> {
        let mut config = self.control.unwrap_or_default();
        config.loss_scale = scale;
        config.validate()?;
        match &mut self.control {
            Some(c) => {
                *c = config;
                Ok(())
            }
            None => self.set_gradient_control(Some(config)),
        }
    }
    fn device_steps(&self) -> Result<u64> {
        Ok(match self.control {
            Some(_) => self.block.steps64(),
            None => self.segments[0].progress.steps,
        })
    }
    fn skipped_steps(&self) -> Result<u64> {
        Ok(self.control.map_or(0, |_| self.block.skipped64()))
    }
    fn last_grad_norm(&self) -> Result<Option<f32>> {
        Ok(self.control.map(|_| self.block.grad_norm))
    }

    /// Group 0's optimizer (see [`CpuOptimizer::group_optimizer`] for the others).
    fn optimizer(&self) -> &Optimizer {
        &self.segments[0].progress.optimizer
    }
    fn len(&self) -> usize {
        self.len
    }
    fn steps(&self) -> u64 {
        self.segments[0].progress.steps
    }
    /// Group 0's learning rate for the next step (see [`CpuOptimizer::group_lr`]).
    fn lr(&self) -> Result<f64> {
        self.segments[0].progress.next_lr()
    }
    /// Sets every group's base learning rate.
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
    /// Group 0's next uniform.
    fn next_uniform(&self) -> Result<StepUniform> {
        self.segments[0].progress.next_uniform()
    }
    fn write_params(&mut self, params: &[f32]) -> Result<()> {
        check_len("parameters", self.len, params.len())?;
        self.store_params(0, params);
        Ok(())
    }
    /// Writes the gradients (rounded to nearest-even when the optimizer reads half-precision
    /// gradients, as on the GPU).
    fn write_grads(&mut self, grads: &[f32]) -> Result<()> {
        check_len("gradients", self.len, grads.len())?;
        self.store_grads(0, grads);
        Ok(())
    }
    /// One step of every group; refused as a whole (nothing changed) if any group's schedule
    /// is finished or a group is at [`crate::MAX_STEPS`].
    fn step(&mut self) -> Result<()> {
        let grads = &self.grads;
        let outcome = self
            .control
            .map(|c| self.ctx.install(|| control::norm(grads, &c)));
        self.step_with(outcome)
    }
    fn state_bytes(&self) -> u64 {
        let slots = self.segments.iter().flat_map(|s| &s.state);
        slots.map(|s| s.allocated_bytes() as u64).sum()
    }
    fn step_decided(&mut self, outcome: NormOutcome) -> Result<()> {
        if self.control.is_none() {
            return Err(Error::NoGradientControl);
        }
        self.step_with(Some(outcome))
    }
    fn read_params(&self) -> Result<Vec<f32>> {
        Ok(self.params.clone())
    }
    fn read_params_into(&self, out: &mut [f32]) -> Result<()> {
        check_len("output", self.len, out.len())?;
        out.copy_from_slice(&self.params);
        Ok(())
    }
    /// One state tensor over all parameters, group by group (zero where a group has no such
    /// state or between groups), as [`crate::GpuOptimizer`]'s.
    fn read_state(&self, name: &str) -> Result<Vec<f32>> {
        if self.segments[0].progress.optimizer.kernel().shaped_state() {
            // Adafactor: not one value per parameter; the groups' states one after another.
            let mut all = Vec::new();
            for g in 0..self.segments.len() {
                all.extend(self.group_state(g, name)?);
            }
            return Ok(all);
        }
        let mut flat = vec![0.0; self.len];
        let mut found = false;
        for (g, segment) in self.segments.iter().enumerate() {
            if let Ok(state) = self.group_state(g, name) {
                flat[segment.offset..segment.offset + segment.len].copy_from_slice(&state);
                found = true;
            }
        }
        if found {
            Ok(flat)
        } else {
            self.group_state(0, name).map(|_| flat)
        }
    }
}
