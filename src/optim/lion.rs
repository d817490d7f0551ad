use super::{
    Adam, Precision, ensure_beta, ensure_lr, ensure_non_negative, precision_setters, setters,
};
use crate::error::Result;
use crate::uniform::StepUniform;

/// Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2; as
/// `optax.lion` and the authors' reference): the sign of an interpolated momentum.
///
/// ```text
/// g ← −g if maximize
/// θ ← θ(1 − γλ)                      (decoupled weight decay)
/// θ ← θ − γ · sign(β₁m + (1−β₁)g)
/// m ← β₂m + (1−β₂)g
/// ```
///
/// sign(0) = 0, as `torch.sign` and `jnp.sign`. Lion is not in `torch.optim`; its goldens come
/// from `tests/golden/lion_reference.py`, the paper's program written out in torch's f32
/// operations.
///
/// Every step moves each parameter by exactly ±γ (or 0), so where β₁m + (1−β₁)g is within
/// f32 rounding of 0 the f32 kernel and the f64 oracle may step in opposite directions: the
/// oracle comparison allows 2γ for each such step of each element (`crate::cpu::Oracle`).
///
/// Defaults are the authors' PyTorch port's (`lion-pytorch`): lr 1e-4, β (0.9, 0.99), λ 0.
/// State: `exp_avg` (4 B/parameter).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Lion {
    /// Learning rate γ.
    pub lr: f64,
    /// (β₁, β₂): the interpolation of the update and the decay of the momentum.
    pub betas: (f64, f64),
    /// Decoupled weight decay λ.
    pub weight_decay: f64,
    /// Maximize the objective instead of minimizing it.
    pub maximize: bool,
    /// How state, gradients and parameters are stored ([`Precision`]); not a hyperparameter of
    /// the rule, which computes in f32 either way.
    #[serde(default)]
    pub precision: Precision,
}

impl Default for Lion {
    fn default() -> Self {
        Self {
            lr: 1e-4,
            betas: (0.9, 0.99),
            weight_decay: 0.0,
            maximize: false,
            precision: Precision::default(),
        }
    }
}

setters!(Lion {
    lr: f64,
    betas: (f64, f64),
    weight_decay: f64,
    maximize: bool,
});
precision_setters!(Lion);

impl Lion {
    /// Checks the hyperparameters: lr, λ ≥ 0; β₁, β₂ in [0, 1); all finite.
    pub fn validate(&self) -> Result<()> {
        ensure_lr(self.lr)?;
        ensure_beta("betas.0", self.betas.0)?;
        ensure_beta("betas.1", self.betas.1)?;
        ensure_non_negative("weight_decay", self.weight_decay)
    }

    /// Per-step scalars: γ, β₁, 1−β₁, β₂, 1−β₂ and 1−γλ, each in f64 (AdamW's uniform without
    /// bias corrections); none depends on t.
    pub fn uniform(&self, lr: f64, _t: u64) -> StepUniform {
        Adam {
            lr: self.lr,
            betas: self.betas,
            weight_decay: self.weight_decay,
            decoupled_weight_decay: true,
            maximize: self.maximize,
            ..Adam::default()
        }
        .uniform_with(lr, 1.0, 1.0)
    }
}
