use super::{
    Adam, Precision, ensure_beta, ensure_eps, ensure_lr, ensure_non_negative, precision_setters,
    setters,
};
use crate::error::Result;
use crate::uniform::StepUniform;

/// NAdam (Dozat, 2016: Adam with Nesterov momentum): `torch.optim.NAdam`.
///
/// ```text
/// g ← −g if maximize
/// g ← g + λθ                         (coupled L2), or θ ← θ(1 − γλ) (decoupled_weight_decay)
/// μₜ = β₁(1 − ½·0.96^(tψ)) ;  Πₜ = μ₁μ₂⋯μₜ      (ψ: momentum_decay)
/// m ← β₁m + (1−β₁)g ;  v ← β₂v + (1−β₂)g²
/// d = √v/√(1−β₂ᵗ) + ε
/// θ ← θ − γ(1−μₜ)/(1−Πₜ) · g/d − γμₜ₊₁/(1−Πₜμₜ₊₁) · m/d
/// ```
///
/// PyTorch keeps Πₜ as a state tensor (`mu_product`); here it is a function of t computed in
/// f64 on the host each step with the two step factors, so the kernel is Adam's with its
/// NESTEROV constant on (the gradient term's step in the uniform's `lr2`). Because Πₜ is
/// computed from the current β₁, a schedule may not cycle NAdam's β₁ (PyTorch's product would
/// remember the β₁ of every past step): [`crate::Error::NoMomentumToCycle`].
///
/// Defaults are PyTorch's: lr 2e-3, β (0.9, 0.999), ε 1e-8, λ 0 (coupled), ψ 4e-3. State:
/// `exp_avg` and `exp_avg_sq` (8 B/parameter).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NAdam {
    /// Learning rate γ.
    pub lr: f64,
    /// (β₁, β₂): decay rates of the first and second moment averages.
    pub betas: (f64, f64),
    /// ε, added after the bias-corrected square root.
    pub eps: f64,
    /// Weight decay λ (coupled L2, or decoupled with `decoupled_weight_decay`).
    pub weight_decay: f64,
    /// ψ, the momentum decay of the schedule μₜ.
    pub momentum_decay: f64,
    /// Decoupled weight decay (as AdamW).
    pub decoupled_weight_decay: bool,
    /// Maximize the objective instead of minimizing it.
    pub maximize: bool,
    /// How state, gradients and parameters are stored ([`Precision`]); not a hyperparameter of
    /// the rule, which computes in f32 either way.
    #[serde(default)]
    pub precision: Precision,
}

impl Default for NAdam {
    fn default() -> Self {
        Self {
            lr: 2e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            momentum_decay: 4e-3,
            decoupled_weight_decay: false,
            maximize: false,
            precision: Precision::default(),
        }
    }
}

setters!(NAdam {
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    momentum_decay: f64,
    decoupled_weight_decay: bool,
    maximize: bool,
});
precision_setters!(NAdam);

/// Below this Πₜ, 1 − Πₜ is 1 in f64 (and Πₜ only shrinks): [`NAdam::mu_product`] stops there.
const NEGLIGIBLE_PRODUCT: f64 = 1e-20;

impl NAdam {
    /// Values of the Adam kernel's variant constants `[AMSGRAD, RECTIFIED, NESTEROV]`: NAdam
    /// runs on `shaders/adam.wgsl` with NESTEROV on.
    pub fn variant(&self) -> [bool; 3] {
        [false, false, true]
    }

    /// Checks the hyperparameters: lr, λ, ψ ≥ 0; β₁, β₂ in [0, 1); ε > 0; all finite.
    pub fn validate(&self) -> Result<()> {
        ensure_lr(self.lr)?;
        ensure_beta("betas.0", self.betas.0)?;
        ensure_beta("betas.1", self.betas.1)?;
        ensure_eps(self.eps)?;
        ensure_non_negative("weight_decay", self.weight_decay)?;
        ensure_non_negative("momentum_decay", self.momentum_decay)
    }

    /// The Adam with the same hyperparameters: NAdam's moments, second bias correction and
    /// uniform are Adam's.
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

    /// μₜ = β₁(1 − ½·0.96^(tψ)), in f64.
    pub fn mu(&self, t: u64) -> f64 {
        self.betas.0 * (1.0 - 0.5 * 0.96f64.powf(t as f64 * self.momentum_decay))
    }

    /// Πₜ = μ₁⋯μₜ, in f64 (1 for t = 0). The product is taken until it falls below 1e-20,
    /// where 1 − Πₜ is 1 in f64: O(min(t, 46/−ln β₁)) multiplications.
    pub fn mu_product(&self, t: u64) -> f64 {
        let mut product = 1.0;
        for i in 1..=t {
            product *= self.mu(i);
            if product < NEGLIGIBLE_PRODUCT {
                break;
            }
        }
        product
    }

    /// The two step factors of step `t`, without γ: (1−μₜ)/(1−Πₜ) for the gradient and
    /// μₜ₊₁/(1−Πₜμₜ₊₁) for the momentum, in f64.
    pub fn step_factors(&self, t: u64) -> (f64, f64) {
        let t = t.max(1);
        let (mu, mu_next) = (self.mu(t), self.mu(t + 1));
        let product = self.mu_product(t);
        (
            (1.0 - mu) / (1.0 - product),
            mu_next / (1.0 - product * mu_next),
        )
    }

    /// Per-step scalars for step `t`: γ·(1−μₜ)/(1−Πₜ) in `lr2`, γμₜ₊₁/(1−Πₜ₊₁) in `lr`,
    /// √(1−β₂ᵗ), 1−γλ (decoupled), each in f64.
    pub fn uniform(&self, lr: f64, t: u64) -> StepUniform {
        let (grad_factor, momentum_factor) = self.step_factors(t);
        self.uniform_with(
            lr,
            grad_factor,
            momentum_factor,
            self.adam().bias_correction2(t).sqrt(),
        )
    }

    /// The uniform with given step factors and √(1−β₂ᵗ) (1, 1 and 1 leave them to the
    /// device): Adam's, with the two steps.
    pub(crate) fn uniform_with(
        &self,
        lr: f64,
        grad_factor: f64,
        momentum_factor: f64,
        bias_correction2_sqrt: f64,
    ) -> StepUniform {
        StepUniform {
            lr: (lr * momentum_factor) as f32,
            lr2: (lr * grad_factor) as f32,
            ..self.adam().uniform_with(lr, 1.0, bias_correction2_sqrt)
        }
    }
}
