use super::{
    Adam, Precision, ensure_beta, ensure_eps, ensure_lr, ensure_non_negative, precision_setters,
    setters,
};
use crate::error::Result;
use crate::uniform::StepUniform;

/// Adamax (Kingma & Ba, 2015, §7.1: Adam with the infinity norm): `torch.optim.Adamax`.
///
/// ```text
/// g ← −g if maximize
/// g ← g + λθ                         (coupled L2)
/// m ← β₁m + (1−β₁)g
/// u ← max(β₂u, |g| + ε)
/// θ ← θ − (γ/(1−β₁ᵗ)) · m/u
/// ```
///
/// As in PyTorch, ε is added to |g| inside the maximum (so u > 0 from the first step on), and
/// the bias correction 1−β₁ᵗ is computed in f64 on the host each step.
///
/// Defaults are PyTorch's: lr 2e-3, β (0.9, 0.999), ε 1e-8, λ 0. State: `exp_avg` and
/// `exp_inf` (8 B/parameter).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adamax {
    /// Learning rate γ.
    pub lr: f64,
    /// (β₁, β₂): decay rates of the first moment and of the infinity norm.
    pub betas: (f64, f64),
    /// ε, added to |g| inside the maximum.
    pub eps: f64,
    /// Coupled L2 weight decay λ.
    pub weight_decay: f64,
    /// Maximize the objective instead of minimizing it.
    pub maximize: bool,
    /// How state, gradients and parameters are stored ([`Precision`]); not a hyperparameter of
    /// the rule, which computes in f32 either way.
    #[serde(default)]
    pub precision: Precision,
}

impl Default for Adamax {
    fn default() -> Self {
        Self {
            lr: 2e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            maximize: false,
            precision: Precision::default(),
        }
    }
}

setters!(Adamax {
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    maximize: bool,
});
precision_setters!(Adamax);

impl Adamax {
    /// Checks the hyperparameters: lr, λ ≥ 0; β₁, β₂ in [0, 1); ε > 0; all finite.
    pub fn validate(&self) -> Result<()> {
        ensure_lr(self.lr)?;
        ensure_beta("betas.0", self.betas.0)?;
        ensure_beta("betas.1", self.betas.1)?;
        ensure_eps(self.eps)?;
        ensure_non_negative("weight_decay", self.weight_decay)
    }

    /// The Adam with the same β, ε and λ (coupled): Adamax's first moment, bias correction and
    /// uniform are Adam's (its u takes Adam's β₂ slot).
    pub fn adam(&self) -> Adam {
        Adam {
            lr: self.lr,
            betas: self.betas,
            eps: self.eps,
            weight_decay: self.weight_decay,
            maximize: self.maximize,
            precision: self.precision,
            ..Adam::default()
        }
    }

    /// 1 − β₁ᵗ, in f64.
    pub fn bias_correction(&self, t: u64) -> f64 {
        self.adam().bias_correction1(t)
    }

    /// Per-step scalars for step `t`: γ/(1−β₁ᵗ) in f64.
    pub fn uniform(&self, lr: f64, t: u64) -> StepUniform {
        self.uniform_with(lr, self.bias_correction(t))
    }

    /// The uniform with a given bias correction (1 leaves it to the device): Adam's.
    pub(crate) fn uniform_with(&self, lr: f64, bias_correction: f64) -> StepUniform {
        self.adam().uniform_with(lr, bias_correction, 1.0)
    }
}
