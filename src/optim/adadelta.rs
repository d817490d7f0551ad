use super::{
    Precision, ensure, ensure_eps, ensure_lr, ensure_non_negative, precision_setters, setters,
};
use crate::error::Result;
use crate::uniform::StepUniform;

/// Adadelta (Zeiler, 2012): `torch.optim.Adadelta`.
///
/// ```text
/// g ← −g if maximize
/// g ← g + λθ                              (coupled L2)
/// v ← ρv + (1−ρ)g²
/// Δ ← √(u + ε) / √(v + ε) · g
/// u ← ρu + (1−ρ)Δ²
/// θ ← θ − γΔ
/// ```
///
/// Defaults are PyTorch's: lr 1.0, ρ 0.9, ε 1e-6, λ 0. State: `square_avg` (v) and
/// `acc_delta` (u), 8 B/parameter. ρ and 1−ρ travel in the uniform's α fields (RMSprop's
/// decay of its squared average, the same role).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adadelta {
    /// Learning rate γ (scales Δ).
    pub lr: f64,
    /// ρ: decay rate of both running averages.
    pub rho: f64,
    /// ε, inside both square roots.
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

impl Default for Adadelta {
    fn default() -> Self {
        Self {
            lr: 1.0,
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
            maximize: false,
            precision: Precision::default(),
        }
    }
}

setters!(Adadelta {
    lr: f64,
    rho: f64,
    eps: f64,
    weight_decay: f64,
    maximize: bool,
});
precision_setters!(Adadelta);

impl Adadelta {
    /// Checks the hyperparameters as PyTorch does: lr, λ ≥ 0; ρ in [0, 1]; ε > 0; all finite.
    pub fn validate(&self) -> Result<()> {
        ensure_lr(self.lr)?;
        ensure(
            (0.0..=1.0).contains(&self.rho),
            "rho",
            self.rho,
            "must be in [0, 1]",
        )?;
        ensure_eps(self.eps)?;
        ensure_non_negative("weight_decay", self.weight_decay)
    }

    /// Per-step scalars (none depends on t): γ, λ, ε, ρ and 1−ρ (in f64, rounded once).
    pub fn uniform(&self, lr: f64, _t: u64) -> StepUniform {
        StepUniform {
            weight_decay: self.weight_decay as f32,
            eps: self.eps as f32,
            alpha: self.rho as f32,
            one_minus_alpha: (1.0 - self.rho) as f32,
            ..StepUniform::neutral(lr, self.maximize)
        }
    }
}
