use super::{Precision, ensure_eps, ensure_lr, ensure_non_negative, precision_setters, setters};
use crate::error::Result;
use crate::uniform::StepUniform;

/// Adagrad (Duchi et al., 2011) with learning-rate decay: `torch.optim.Adagrad`.
///
/// ```text
/// γ̃ = γ / (1 + (t−1)η)
/// g ← −g if maximize
/// g ← g + λθ ;  S ← S + g² ;  θ ← θ − γ̃·g/(√S + ε)
/// ```
///
/// Defaults are PyTorch's: lr 1e-2, η (`lr_decay`) 0, λ 0, S₀ (`initial_accumulator_value`) 0,
/// ε 1e-10. State: `sum` (4 B/parameter), filled with S₀.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adagrad {
    /// Learning rate γ.
    pub lr: f64,
    /// Learning-rate decay η.
    pub lr_decay: f64,
    /// Coupled L2 weight decay λ.
    pub weight_decay: f64,
    /// Initial value S₀ of the accumulator.
    pub initial_accumulator_value: f64,
    /// ε, added after the square root.
    pub eps: f64,
    /// Maximize the objective instead of minimizing it.
    pub maximize: bool,
    /// How state, gradients and parameters are stored ([`Precision`]); not a hyperparameter of
    /// the rule, which computes in f32 either way.
    #[serde(default)]
    pub precision: Precision,
}

impl Default for Adagrad {
    fn default() -> Self {
        Self {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
            precision: Precision::default(),
        }
    }
}

setters!(Adagrad {
    lr: f64,
    lr_decay: f64,
    weight_decay: f64,
    initial_accumulator_value: f64,
    eps: f64,
    maximize: bool,
});
precision_setters!(Adagrad);

impl Adagrad {
    /// Checks the hyperparameters: lr, η, λ, S₀ ≥ 0; ε > 0; all finite.
    pub fn validate(&self) -> Result<()> {
        ensure_lr(self.lr)?;
        ensure_non_negative("lr_decay", self.lr_decay)?;
        ensure_non_negative("weight_decay", self.weight_decay)?;
        ensure_non_negative("initial_accumulator_value", self.initial_accumulator_value)?;
        ensure_eps(self.eps)
    }

    /// 1 + (t−1)η, in f64.
    pub fn decay_divisor(&self, t: u64) -> f64 {
        1.0 + (t.max(1) - 1) as f64 * self.lr_decay
    }

    /// Per-step scalars for step `t`: γ̃ = γ/(1+(t−1)η) in f64.
    pub fn uniform(&self, lr: f64, t: u64) -> StepUniform {
        let clr = lr / self.decay_divisor(t);
        StepUniform {
            weight_decay: self.weight_decay as f32,
            eps: self.eps as f32,
            ..StepUniform::neutral(clr, self.maximize)
        }
    }
}
