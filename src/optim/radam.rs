use super::{
    Adam, Precision, ensure_beta, ensure_eps, ensure_lr, ensure_non_negative, precision_setters,
    setters,
};
use crate::error::Result;
use crate::uniform::StepUniform;

/// RAdam (Liu et al., 2020: Adam with the variance of the adaptive learning rate rectified):
/// `torch.optim.RAdam`.
///
/// ```text
/// g ← −g if maximize
/// g ← g + λθ                         (coupled L2), or θ ← θ(1 − γλ) (decoupled_weight_decay)
/// m ← β₁m + (1−β₁)g ;  v ← β₂v + (1−β₂)g²
/// ρ∞ = 2/(1−β₂) − 1 ;  ρₜ = ρ∞ − 2tβ₂ᵗ/(1−β₂ᵗ)
/// ρₜ > 5:  rₜ = √((ρₜ−4)(ρₜ−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρₜ))
///          θ ← θ − (γ/(1−β₁ᵗ)) · m · rₜ√(1−β₂ᵗ) / (√v + ε)
/// else:    θ ← θ − (γ/(1−β₁ᵗ)) · m
/// ```
///
/// As in PyTorch, ε is added to √v before the bias correction √(1−β₂ᵗ) multiplies it in. The
/// switch depends on t alone: ρₜ, rₜ and both bias corrections are computed in f64 on the host
/// each step, and the kernel receives rₜ√(1−β₂ᵗ), 0 for the unrectified steps.
///
/// Defaults are PyTorch's: lr 1e-3, β (0.9, 0.999), ε 1e-8, λ 0 (coupled). State: `exp_avg`
/// and `exp_avg_sq` (8 B/parameter).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RAdam {
    /// Learning rate γ.
    pub lr: f64,
    /// (β₁, β₂): decay rates of the first and second moment averages.
    pub betas: (f64, f64),
    /// ε, added to √v.
    pub eps: f64,
    /// Weight decay λ (coupled L2, or decoupled with `decoupled_weight_decay`).
    pub weight_decay: f64,
    /// Decoupled weight decay (as AdamW).
    pub decoupled_weight_decay: bool,
    /// Maximize the objective instead of minimizing it.
    pub maximize: bool,
    /// How state, gradients and parameters are stored ([`Precision`]); not a hyperparameter of
    /// the rule, which computes in f32 either way.
    #[serde(default)]
    pub precision: Precision,
}

impl Default for RAdam {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            maximize: false,
            precision: Precision::default(),
        }
    }
}

setters!(RAdam {
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    decoupled_weight_decay: bool,
    maximize: bool,
});
precision_setters!(RAdam);

impl RAdam {
    /// Values of the Adam kernel's variant constants `[AMSGRAD, RECTIFIED, NESTEROV]`: RAdam
    /// runs on `shaders/adam.wgsl` with RECTIFIED on.
    pub fn variant(&self) -> [bool; 3] {
        [false, true, false]
    }

    /// Checks the hyperparameters: lr, λ ≥ 0; β₁, β₂ in [0, 1); ε > 0; all finite.
    pub fn validate(&self) -> Result<()> {
        ensure_lr(self.lr)?;
        ensure_beta("betas.0", self.betas.0)?;
        ensure_beta("betas.1", self.betas.1)?;
        ensure_eps(self.eps)?;
        ensure_non_negative("weight_decay", self.weight_decay)
    }

    /// The Adam with the same hyperparameters: RAdam's moments, bias correction and uniform
    /// are Adam's.
    pub fn adam(&self) -> Adam {
        Adam {
            lr: self.lr,
            betas: self.betas,
            eps: self.eps,
            weight_decay: self.weight_decay,
            amsgrad: false,
            decoupled_weight_decay: self.decoupled_weight_decay,
            maximize: self.maximize,
            precision: self.precision,
        }
    }

    /// 1 − β₁ᵗ, in f64.
    pub fn bias_correction1(&self, t: u64) -> f64 {
        self.adam().bias_correction1(t)
    }

    /// The rectification of step `t` times √(1−β₂ᵗ), in f64: rₜ√(1−β₂ᵗ) where ρₜ > 5, else
    /// 0 (the unrectified step, plain momentum).
    pub fn rectification(&self, t: u64) -> f64 {
        let bias_correction2 = self.adam().bias_correction2(t);
        let (t, beta2) = (t.max(1) as f64, self.betas.1);
        let rho_inf = 2.0 / (1.0 - beta2) - 1.0;
        let rho_t = rho_inf - 2.0 * t * beta2.powf(t) / bias_correction2;
        if rho_t > 5.0 {
            let rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                .sqrt();
            rect * bias_correction2.sqrt()
        } else {
            0.0
        }
    }

    /// Per-step scalars for step `t`: γ/(1−β₁ᵗ), rₜ√(1−β₂ᵗ) (or 0), 1−γλ (decoupled), each in
    /// f64.
    pub fn uniform(&self, lr: f64, t: u64) -> StepUniform {
        self.uniform_with(lr, self.bias_correction1(t), self.rectification(t))
    }

    /// The uniform with a given bias correction and rectification (1 and 1 leave them to the
    /// device): Adam's, with rₜ√(1−β₂ᵗ) where Adam has √(1−β₂ᵗ).
    pub(crate) fn uniform_with(
        &self,
        lr: f64,
        bias_correction1: f64,
        rectification: f64,
    ) -> StepUniform {
        self.adam()
            .uniform_with(lr, bias_correction1, rectification)
    }
}
