//! Gradient control: loss-scale unscaling, global-norm clipping and non-finite skipping, the
//! same on both backends. The GPU decides it on the device (`shaders/norm.wgsl`,
//! `gpu::clip`); [`norm`] is that shader's twin, summing in the shader's order so that the
//! CPU backend's clip factor equals the GPU's bit for bit.

use crate::error::Result;
use crate::optim::ensure;
use crate::uniform::ControlBlock;

/// What happens to the gradients before an update: on the GPU decided on the device each step
/// (`shaders/norm.wgsl`), on the CPU by its twin [`norm`].
///
/// ```text
/// ĝ = g / loss_scale
/// n = ‖ĝ‖₂ over all parameters of the step;  ĝ ← ĝ · min(1, max_norm / (n + 1e-6))
/// skip the whole step (parameters and state untouched, not counted) if some ĝ is NaN or ±∞
/// ```
/// as `GradScaler.unscale_`, `torch.nn.utils.clip_grad_norm_` and the `found_inf` of PyTorch's
/// fused optimizers do. The norm costs one extra read of the gradients per step.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GradientControl {
    /// Clip the global gradient norm to this (finite, > 0); `None`: no clipping.
    pub max_norm: Option<f64>,
    /// Skip steps with non-finite gradients.
    pub skip_nonfinite: bool,
    /// Divide the gradients by this loss scale S (finite, > 0; 1 = none).
    pub loss_scale: f64,
}

impl Default for GradientControl {
    fn default() -> Self {
        Self {
            max_norm: None,
            skip_nonfinite: false,
            loss_scale: 1.0,
        }
    }
}

impl GradientControl {
    /// Checks `max_norm` and `loss_scale`.
    pub fn validate(&self) -> Result<()> {
        if let Some(m) = self.max_norm {
            ensure(
                m.is_finite() && m > 0.0,
                "max_norm",
                m,
                "must be finite and > 0",
            )?;
        }
        let s = self.loss_scale;
        // The kernels multiply by 1/S in f32: both S and 1/S must be normal f32 numbers, or
        // every step is skipped (1/S = ∞) or every gradient flushed to 0 (1/S subnormal).
        let normal = |x: f64| {
            let x = x as f32;
            x.is_finite() && x >= f32::MIN_POSITIVE
        };
        ensure(
            s.is_finite() && s > 0.0 && normal(s) && normal(1.0 / s),
            "loss_scale",
            s,
            "must be > 0 with S and 1/S normal f32 numbers (about 1.2e-38 to 8.5e37)",
        )
    }
}

/// Vec4 blocks one invocation of norm.wgsl's `partial` sums: `gpu::clip::NORM_SHAPE` (the
/// shader's override and the dispatch size) is built from this one definition.
pub(crate) const NORM_VECS_PER_INVOCATION: usize = 16;
/// Invocations per workgroup of norm.wgsl.
const WORKGROUP: usize = 256;

/// What the norm pass decides for one step (norm.wgsl's `finish`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NormOutcome {
    /// ‖ĝ‖₂ of the unscaled gradients, before clipping.
    pub norm: f32,
    /// (1/S)·c, what every gradient is multiplied by.
    pub grad_mul: f32,
    /// Whether the step is skipped (some ĝ non-finite, with skipping on).
    pub skip: bool,
}

/// Adds `sums[i + half]` into `sums[i]` for `half` = 128, 64, …, 1: norm.wgsl's `reduce`.
pub(crate) fn reduce(sums: &mut [[f32; 2]; WORKGROUP]) -> [f32; 2] {
    let mut half = WORKGROUP / 2;
    while half > 0 {
        for i in 0..half {
            sums[i] = [
                sums[i][0] + sums[i + half][0],
                sums[i][1] + sums[i + half][1],
            ];
        }
        half /= 2;
    }
    sums[0]
}

/// The twin of norm.wgsl over `grads` (the flat gradient vector, as f32 values): partial sums
/// of squares per workgroup of 256 invocations × 16 vec4 blocks, each invocation adding its
/// blocks' `dot(ĝ, ĝ)` in order, the workgroup's tree reduction, then `finish`'s strided sums
/// and tree. The same order as the GPU's wherever the gradients fit one storage binding (one
/// chunk; more chunks add their partial sums in another grouping). The workgroups' sums run
/// on the current rayon pool.
pub fn norm(grads: &[f32], control: &GradientControl) -> NormOutcome {
    decide(sums(grads, control), control)
}

/// The first half of [`norm`]: `[Σ ĝ², number of vec4 blocks holding a non-finite ĝ]` over
/// `grads`, summed in norm.wgsl's order. A sharded optimizer adds these over its ranks before
/// [`decide`].
pub fn sums(grads: &[f32], control: &GradientControl) -> [f32; 2] {
    let unscale = control.uniform(0).unscale;
    use rayon::prelude::*;
    let partials: Vec<[f32; 2]> = grads
        .par_chunks(WORKGROUP * RUN)
        .map(|group| workgroup(group, unscale))
        .collect();
    let mut sums = [[0.0f32; 2]; WORKGROUP];
    for (i, p) in partials.iter().enumerate() {
        let s = &mut sums[i % WORKGROUP];
        *s = [s[0] + p[0], s[1] + p[1]];
    }
    reduce(&mut sums)
}

/// Elements one invocation of norm.wgsl's `partial` sums.
const RUN: usize = NORM_VECS_PER_INVOCATION * 4;

/// One vec4 block of `partial`'s loop: `[dot(ĝ, ĝ), 1 if some ĝ is non-finite]` with
/// ĝ = g·(1/S); a short last block reads zeros past the end, as the shader does.
#[inline(always)]
fn block(b: &[f32], unscale: f32) -> [f32; 2] {
    let mut g = [0.0f32; 4];
    for (x, &y) in g.iter_mut().zip(b) {
        *x = y * unscale;
    }
    let dot = g[0] * g[0] + g[1] * g[1] + g[2] * g[2] + g[3] * g[3];
    let non_finite = g.iter().fold(false, |bad, x| bad | !x.is_finite());
    [dot, if non_finite { 1.0 } else { 0.0 }]
}

/// One workgroup of `partial`: each invocation adds its blocks in order, then the tree.
fn workgroup(group: &[f32], unscale: f32) -> [f32; 2] {
    let mut sums = [[0.0f32; 2]; WORKGROUP];
    if group.len() == WORKGROUP * RUN {
        // Block j of every invocation, then block j + 1: each invocation's sum gets the same
        // additions in the same order, and the 256 independent sums overlap in the pipeline
        // instead of waiting on one another.
        for j in (0..RUN).step_by(4) {
            for (i, acc) in sums.iter_mut().enumerate() {
                let [dot, bad] = block(&group[i * RUN + j..i * RUN + j + 4], unscale);
                *acc = [acc[0] + dot, acc[1] + bad];
            }
        }
    } else {
        for (acc, run) in sums.iter_mut().zip(group.chunks(RUN)) {
            for b in run.chunks(4) {
                let [dot, bad] = block(b, unscale);
                *acc = [acc[0] + dot, acc[1] + bad];
            }
        }
    }
    reduce(&mut sums)
}

/// The second half of [`norm`], norm.wgsl's `finish` from the summed `[Σ ĝ², non-finite
/// count]`: n = √(Σ ĝ²), c = min(1, max_norm / (n + 1e-6)), skip if the count is > 0 and
/// skipping is on.
pub fn decide(sums: [f32; 2], control: &GradientControl) -> NormOutcome {
    let cfg = control.uniform(0);
    let [square, non_finite] = sums;
    let norm = square.sqrt();
    let mut clip = 1.0f32;
    if cfg.max_norm > 0.0 {
        clip = clip.min(cfg.max_norm / (norm + 1e-6));
    }
    NormOutcome {
        norm,
        grad_mul: cfg.unscale * clip,
        skip: non_finite > 0.0 && cfg.skip_nonfinite != 0,
    }
}

impl NormOutcome {
    /// Counts the step in `block` as norm.wgsl's `finish` does (taken or skipped) and records
    /// the norm and multiplier.
    pub(crate) fn count(&self, block: &mut ControlBlock) {
        let (steps, skipped) = (block.steps64(), block.skipped64());
        *block = ControlBlock {
            grad_mul: self.grad_mul,
            skip: u32::from(self.skip),
            grad_norm: self.norm,
            ..if self.skip {
                ControlBlock::with_counts(steps, skipped + 1)
            } else {
                ControlBlock::with_counts(steps + 1, skipped)
            }
        };
    }
}
