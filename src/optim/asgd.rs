use super::{Precision, ensure_lr, ensure_non_negative, precision_setters, setters};
use crate::error::Result;
use crate::uniform::StepUniform;

/// ASGD (Polyak & Juditsky, 1992: averaged SGD with a decaying step): `torch.optim.ASGD`.
///
/// ```text
/// g ← −g if maximize
/// g ← g + λ_wd·θ
/// ηₜ = γ/(1 + λγ(t−1))^α ;  μₜ = 1/max(1, t−1−t₀)
/// θ ← θ(1 − ληₜ) − ηₜ·g
/// ax ← θ where μₜ = 1, else ax + (θ − ax)·μₜ
/// ```
///
/// PyTorch keeps ηₜ and μₜ as f32 state tensors, computed after each step from the step count;
/// here they are functions of t computed in f64 on the host each step and rounded to f32 as
/// PyTorch rounds them, so the uniform carries the same values. (PyTorch's ηₜ uses the learning
/// rate of step t−1; with a schedule, wgoptim's uses step t's.) `ax`, the average, is what one
/// evaluates with; the parameters are the SGD iterates.
///
/// Defaults are PyTorch's: lr 1e-2, λ 1e-4, α 0.75, t₀ 1e6, weight decay 0. State: `ax`
/// (4 B/parameter).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Asgd {
    /// Learning rate γ.
    pub lr: f64,
    /// λ: the decay of the step size (and of θ each step).
    pub lambd: f64,
    /// α: the power of the step size's decay.
    pub alpha: f64,
    /// t₀: the step from which the average starts.
    pub t0: f64,
    /// Coupled L2 weight decay λ_wd.
    pub weight_decay: f64,
    /// Maximize the objective instead of minimizing it.
    pub maximize: bool,
    /// How state, gradients and parameters are stored ([`Precision`]); not a hyperparameter of
    /// the rule, which computes in f32 either way.
    #[serde(default)]
    pub precision: Precision,
}

impl Default for Asgd {
    fn default() -> Self {
        Self {
            lr: 1e-2,
            lambd: 1e-4,
            alpha: 0.75,
            t0: 1e6,
            weight_decay: 0.0,
            maximize: false,
            precision: Precision::default(),
        }
    }
}

setters!(Asgd {
    lr: f64,
    lambd: f64,
    alpha: f64,
    t0: f64,
    weight_decay: f64,
    maximize: bool,
});
precision_setters!(Asgd);

impl Asgd {
    /// Checks the hyperparameters: lr, λ, α, t₀, λ_wd ≥ 0; all finite.
    pub fn validate(&self) -> Result<()> {
        ensure_lr(self.lr)?;
        ensure_non_negative("lambd", self.lambd)?;
        ensure_non_negative("alpha", self.alpha)?;
        ensure_non_negative("t0", self.t0)?;
        ensure_non_negative("weight_decay", self.weight_decay)
    }

    /// (1 + λγ(t−1))^α: γ/ηₜ, in f64.
    pub fn eta_divisor(&self, lr: f64, t: u64) -> f64 {
        (1.0 + self.lambd * lr * (t.max(1) - 1) as f64).powf(self.alpha)
    }

    /// μₜ = 1/max(1, t−1−t₀), in f64.
    pub fn average_weight(&self, t: u64) -> f64 {
        1.0 / ((t.max(1) - 1) as f64 - self.t0).max(1.0)
    }

    /// Per-step scalars for step `t`: ηₜ rounded to f32 (as PyTorch's state tensor), then
    /// 1 − ληₜ from it and μₜ, in f64.
    pub fn uniform(&self, lr: f64, t: u64) -> StepUniform {
        let eta = f64::from((lr / self.eta_divisor(lr, t)) as f32);
        StepUniform {
            lr: eta as f32,
            decay: (1.0 - self.lambd * eta) as f32,
            weight_decay: self.weight_decay as f32,
            average: self.average_weight(t) as f32,
            ..StepUniform::neutral(lr, self.maximize)
        }
    }

    /// The uniform whose t-dependent factors come from the device (γ, decay 1, average 1).
    pub(crate) fn deferred_uniform(&self, lr: f64) -> StepUniform {
        StepUniform {
            weight_decay: self.weight_decay as f32,
            ..StepUniform::neutral(lr, self.maximize)
        }
    }
}
