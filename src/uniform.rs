//! Host twins of the WGSL uniform structs in `shaders/common.wgsl`.
//!
//! Field order, sizes and offsets are checked against the WGSL declarations by a test that
//! reads them through naga (`tests/shaders.rs`), so the two cannot drift apart silently.

use bytemuck::{Pod, Zeroable};

/// Per-step scalars of one optimizer step, as the kernels read them.
///
/// Every field is computed in `f64` on the host by the optimizer's `uniform()` and rounded to
/// `f32` once; see `shaders/common.wgsl` for what each field means in the update.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct StepUniform {
    /// γ as applied: Adam γ/(1−β₁ᵗ), Adagrad γ/(1+(t−1)η), else γ.
    pub lr: f32,
    /// λ of coupled L2 decay (g ← g + λθ).
    pub weight_decay: f32,
    /// 1 − γλ of decoupled decay (AdamW), else 1.
    pub decay: f32,
    /// −1 when maximizing, else 1; multiplies the gradient first.
    pub grad_scale: f32,
    /// ε.
    pub eps: f32,
    /// μ (RMSprop momentum, SGD Nesterov look-ahead; Muon's momentum, its look-ahead's lerp
    /// weight).
    pub momentum: f32,
    /// SGD: coefficient of the old momentum buffer (0 on the first step, then μ).
    pub buf_keep: f32,
    /// SGD: coefficient of the gradient in the momentum buffer (1 on the first step, then 1−τ).
    pub buf_add: f32,
    /// Adam β₁.
    pub beta1: f32,
    /// Adam 1−β₁, rounded once from f64; Muon 1−μ, its momentum buffer's lerp weight.
    pub one_minus_beta1: f32,
    /// Adam β₂.
    pub beta2: f32,
    /// Adam 1−β₂, rounded once from f64.
    pub one_minus_beta2: f32,
    /// RMSprop α.
    pub alpha: f32,
    /// RMSprop 1−α, rounded once from f64.
    pub one_minus_alpha: f32,
    /// Adam √(1−β₂ᵗ).
    pub bias_correction2_sqrt: f32,
    /// The step t (low 32 bits) when the host knows it, else 0 and the device's count comes
    /// from [`StepScalars::t`]: seeds stochastic rounding (`t = step.t + at_step.t`).
    pub t: u32,
    /// NAdam: the gradient term's step γ(1−μₜ)/(1−Πₜ) (the momentum term's is `lr`); LAMB:
    /// 1/(1−β₁ᵗ), m's bias correction; Adafactor: 1/√t, the bound of its relative step size.
    pub lr2: f32,
    /// ASGD: μₜ, the weight of the new iterate in the average (1 copies it); Adafactor: t^τ,
    /// the weight of the new mean in its second-moment averages.
    pub average: f32,
    /// Rprop η₋: shrinks the step size where the gradient changed sign; Muon: a, the
    /// Newton–Schulz coefficient of X.
    pub eta_minus: f32,
    /// Rprop η₊: grows the step size where the gradient kept its sign; Muon: b, of S = XXᵀ.
    pub eta_plus: f32,
    /// Rprop: the smallest step size; Muon: c, of S².
    pub step_size_min: f32,
    /// Rprop: the largest step size.
    pub step_size_max: f32,
    /// Adafactor ε₂: the floor of RMS(θ) in the step α = max(ε₂, RMS(θ))·ρ.
    pub eps2: f32,
    /// Adafactor d: the update is divided by max(1, RMS(u)/d).
    pub clip_threshold: f32,
}

impl StepUniform {
    /// The neutral uniform: no decay, gradient sign +1, everything else 0.
    pub fn neutral(lr: f64, maximize: bool) -> Self {
        Self {
            lr: lr as f32,
            decay: 1.0,
            grad_scale: if maximize { -1.0 } else { 1.0 },
            average: 1.0,
            ..Self::default()
        }
    }
}

/// Where one dispatch's chunk ends: whole vec4 blocks, then 0–3 elements of a last block.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct ChunkUniform {
    /// Number of whole vec4 blocks in the chunk (the per-tensor driver: its pieces).
    pub full_vecs: u32,
    /// Elements (0–3) in the partial block after them (the per-tensor driver: the chunk's
    /// index, which finds its rows and columns in Adafactor's tables).
    pub tail_lanes: u32,
    /// Norm pass and per-tensor driver: index of this chunk's first partial sum (piece).
    pub first_partial: u32,
    /// The chunk's first vec4 block in the flat parameter space (element index / 4): numbers
    /// the elements for stochastic rounding.
    pub first_vec: u32,
}

impl ChunkUniform {
    /// The chunk uniform for `len` elements.
    pub fn for_len(len: u64) -> Self {
        Self {
            full_vecs: (len / 4) as u32,
            tail_lanes: (len % 4) as u32,
            first_partial: 0,
            first_vec: 0,
        }
    }
}

/// Host twin of WGSL `Control`: written on the device each step when clipping or skipping is
/// on (`shaders/norm.wgsl`), a constant [`ControlBlock::NEUTRAL`] otherwise.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct ControlBlock {
    /// Multiplies every gradient: loss-scale unscale × global-norm clip factor.
    pub grad_mul: f32,
    /// Non-zero when this step is skipped.
    pub skip: u32,
    /// Optimizer steps taken on the device, skipped ones not counted: low 32 bits.
    pub steps: u32,
    /// Steps skipped so far: low 32 bits.
    pub skipped: u32,
    /// ‖g‖₂ of the last step's unscaled gradients, before clipping.
    pub grad_norm: f32,
    /// High 32 bits of `steps` (WGSL has no 64-bit integers without an optional feature).
    pub steps_hi: u32,
    /// High 32 bits of `skipped`.
    pub skipped_hi: u32,
    /// Padding.
    pub _pad: u32,
}

impl ControlBlock {
    /// No clipping, no skipping, no unscaling.
    pub const NEUTRAL: Self = Self {
        grad_mul: 1.0,
        skip: 0,
        steps: 0,
        skipped: 0,
        grad_norm: 0.0,
        steps_hi: 0,
        skipped_hi: 0,
        _pad: 0,
    };

    /// The neutral block with the device's counters set.
    pub fn with_counts(steps: u64, skipped: u64) -> Self {
        Self {
            steps: steps as u32,
            steps_hi: (steps >> 32) as u32,
            skipped: skipped as u32,
            skipped_hi: (skipped >> 32) as u32,
            ..Self::NEUTRAL
        }
    }

    /// Steps taken on the device (all 64 bits).
    pub fn steps64(&self) -> u64 {
        u64::from(self.steps_hi) << 32 | u64::from(self.steps)
    }

    /// Steps skipped (all 64 bits).
    pub fn skipped64(&self) -> u64 {
        u64::from(self.skipped_hi) << 32 | u64::from(self.skipped)
    }
}

/// Host twin of WGSL `StepScalars`: the step-dependent factors for device step count `t`,
/// computed in f64 by the optimizer; all ones (and `first` 0) when the uniform carries them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct StepScalars {
    /// Multiplies the learning rate (Adam 1/(1−β₁ᵗ), Adagrad 1/(1+(t−1)η)).
    pub lr_mul: f32,
    /// Multiplies Adam's √(1−β₂ᵗ) of the uniform.
    pub bias_correction2_sqrt: f32,
    /// Non-zero on step 1 (SGD's momentum buffer starts as the gradient).
    pub first: u32,
    /// The step t (low 32 bits) these factors belong to; 0 in the entry of ones.
    pub t: u32,
    /// Multiplies `lr2`: NAdam's (1−μₜ)/(1−Πₜ), LAMB's 1/(1−β₁ᵗ), Adafactor's 1/√t.
    pub lr2_mul: f32,
    /// Multiplies the uniform's `decay`: ASGD's 1 − λγₜ, whose step size depends on t.
    pub decay_mul: f32,
    /// Multiplies the uniform's `average`: ASGD's μₜ, Adafactor's t^τ.
    pub average_mul: f32,
    /// Padding to 32 bytes.
    pub _pad: u32,
}

impl StepScalars {
    /// The factors that leave the uniform's values as they are.
    pub const ONES: Self = Self {
        lr_mul: 1.0,
        bias_correction2_sqrt: 1.0,
        first: 0,
        t: 0,
        lr2_mul: 1.0,
        decay_mul: 1.0,
        average_mul: 1.0,
        _pad: 0,
    };
}

/// What the device contributes to one step besides the uniform: the control block's gradient
/// multiplier and the step's scalars. The CPU twins take it so that they read like the WGSL.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeviceStep {
    /// `control.grad_mul`.
    pub grad_mul: f32,
    /// `at_step`.
    pub at_step: StepScalars,
}

impl DeviceStep {
    /// No clipping or skipping: multiplier 1, scalars all ones.
    pub const NEUTRAL: Self = Self {
        grad_mul: 1.0,
        at_step: StepScalars::ONES,
    };
}
