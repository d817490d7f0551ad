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
    /// μ (RMSprop momentum, SGD Nesterov look-ahead).
    pub momentum: f32,
    /// SGD: coefficient of the old momentum buffer (0 on the first step, then μ).
    pub buf_keep: f32,
    /// SGD: coefficient of the gradient in the momentum buffer (1 on the first step, then 1−τ).
    pub buf_add: f32,
    /// Adam β₁.
    pub beta1: f32,
    /// Adam 1−β₁, rounded once from f64.
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
    /// Padding to a 16-byte multiple.
    pub _pad: f32,
}

impl StepUniform {
    /// The neutral uniform: no decay, gradient sign +1, everything else 0.
    pub fn neutral(lr: f64, maximize: bool) -> Self {
        Self {
            lr: lr as f32,
            decay: 1.0,
            grad_scale: if maximize { -1.0 } else { 1.0 },
            ..Self::default()
        }
    }
}

/// Where one dispatch's chunk ends: whole vec4 blocks, then 0–3 elements of a last block.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct ChunkUniform {
    /// Number of whole vec4 blocks in the chunk.
    pub full_vecs: u32,
    /// Elements (0–3) in the partial block after them.
    pub tail_lanes: u32,
    /// Padding.
    pub _pad0: u32,
    /// Padding.
    pub _pad1: u32,
}

impl ChunkUniform {
    /// The chunk uniform for `len` elements.
    pub fn for_len(len: u64) -> Self {
        Self {
            full_vecs: (len / 4) as u32,
            tail_lanes: (len % 4) as u32,
            _pad0: 0,
            _pad1: 0,
        }
    }
}
