use super::{
    Adam, Precision, ensure_beta, ensure_eps, ensure_f32_per_tensor, ensure_lr,
    ensure_non_negative, precision_setters, setters,
};
use crate::error::Result;
use crate::uniform::StepUniform;

/// LAMB (You et al., 2019, "Large Batch Optimization for Deep Learning"), as NVIDIA apex's
/// `FusedLAMB` computes it (`adam_w_mode`, `grad_averaging` and bias correction on): Adam's
/// direction, scaled per tensor by the trust ratio ‖θ‖/‖u‖.
///
/// ```text
/// g ← −g if maximize
/// m ← β₁m + (1−β₁)g ;  v ← β₂v + (1−β₂)g²
/// u = (m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε) + λθ            (every element of a tensor)
/// r = ‖θ‖/‖u‖ over the tensor, 1 where either norm is 0 (or NaN: apex would spread the NaN
///     over the tensor), and 1 for every tensor unless λ ≠ 0 or use_nvlamb (apex's rule)
/// θ ← θ − γ·r·u
/// ```
///
/// apex first clips the global gradient norm (`max_grad_norm` 1.0); here that is the backends'
/// gradient control, `GradientControl { max_norm: Some(1.0), .. }`, with PyTorch's
/// `clip_grad_norm_` factor min(1, max_norm/(‖g‖ + 1e-6)).
///
/// The norms are per tensor of the layout (`with_layout`, `with_groups`; the whole group for
/// `with_params`), each a sum of squares in a fixed order (`shaders/pieces.wgsl`): pieces of
/// 4,096 elements of one tensor, 256 invocations each summing 4 vec4 blocks in order, a tree
/// over the invocations, then the pieces in order. The CPU twin sums in the same order, so the
/// two agree bit for bit. A step runs two dispatches per binding chunk and one per group,
/// however many tensors there are.
///
/// Defaults are apex's: lr 1e-3, β (0.9, 0.999), ε 1e-6, λ 0.01. State: `exp_avg` and
/// `exp_avg_sq` (8 B/parameter). f32 state, gradients and parameters only
/// ([`crate::Error::UnsupportedPrecision`] otherwise).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Lamb {
    /// Learning rate γ.
    pub lr: f64,
    /// (β₁, β₂): decay rates of the first and second moment averages.
    pub betas: (f64, f64),
    /// ε, added after the bias-corrected square root.
    pub eps: f64,
    /// Weight decay λ, added to the update (AdamW's mode) before the trust ratio.
    pub weight_decay: f64,
    /// Apply the trust ratio even when λ = 0 (apex's NVLAMB).
    pub use_nvlamb: bool,
    /// Maximize the objective instead of minimizing it.
    pub maximize: bool,
    /// How state, gradients and parameters are stored ([`Precision`]); the state must be f32.
    #[serde(default)]
    pub precision: Precision,
}

impl Default for Lamb {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-6,
            weight_decay: 0.01,
            use_nvlamb: false,
            maximize: false,
            precision: Precision::default(),
        }
    }
}

setters!(Lamb {
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    use_nvlamb: bool,
    maximize: bool,
});
precision_setters!(Lamb);

impl Lamb {
    /// Values of the kernel's variant constant `[ADAPT]`: whether the trust ratio applies.
    pub fn variant(&self) -> [bool; 1] {
        [self.use_nvlamb || self.weight_decay != 0.0]
    }

    /// Checks the hyperparameters: lr, λ ≥ 0; β₁, β₂ in [0, 1); ε > 0; all finite; f32 state,
    /// gradients and parameters.
    pub fn validate(&self) -> Result<()> {
        ensure_lr(self.lr)?;
        ensure_beta("betas.0", self.betas.0)?;
        ensure_beta("betas.1", self.betas.1)?;
        ensure_eps(self.eps)?;
        ensure_non_negative("weight_decay", self.weight_decay)?;
        ensure_f32_per_tensor("lamb", self.precision)
    }

    /// The Adam with the same β and ε: LAMB's moments and bias corrections are Adam's.
    pub fn adam(&self) -> Adam {
        Adam {
            lr: self.lr,
            betas: self.betas,
            eps: self.eps,
            maximize: self.maximize,
            precision: self.precision,
            ..Adam::default()
        }
    }

    /// Per-step scalars for step `t`: γ, 1/(1−β₁ᵗ) in `lr2`, √(1−β₂ᵗ), λ, each in f64.
    pub fn uniform(&self, lr: f64, t: u64) -> StepUniform {
        let adam = self.adam();
        self.uniform_with(
            lr,
            1.0 / adam.bias_correction1(t),
            adam.bias_correction2(t).sqrt(),
        )
    }

    /// The uniform with given 1/(1−β₁ᵗ) and √(1−β₂ᵗ) (1 and 1 leave them to the device).
    pub(crate) fn uniform_with(
        &self,
        lr: f64,
        moment_factor: f64,
        bias_correction2_sqrt: f64,
    ) -> StepUniform {
        StepUniform {
            lr: lr as f32,
            lr2: moment_factor as f32,
            weight_decay: self.weight_decay as f32,
            ..self.adam().uniform_with(lr, 1.0, bias_correction2_sqrt)
        }
    }
}
