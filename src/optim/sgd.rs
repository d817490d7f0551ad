use super::{Precision, ensure, ensure_lr, ensure_non_negative, precision_setters, setters};
use crate::error::Result;
use crate::uniform::StepUniform;

/// Stochastic gradient descent with momentum, dampening, Nesterov momentum, weight decay and
/// maximize: `torch.optim.SGD`.
///
/// With gradient g, parameter θ, learning rate γ, momentum μ, dampening τ and decay λ:
///
/// ```text
/// g ← −g if maximize
/// g ← g + λθ
/// if μ ≠ 0:  b ← g on the first step, else b ← μb + (1−τ)g
///            g ← g + μb if nesterov, else g ← b
/// θ ← θ − γg
/// ```
///
/// Defaults are PyTorch's: lr 1e-3, μ 0, τ 0, λ 0, no Nesterov. Nesterov needs μ > 0 and τ = 0.
/// State: a momentum buffer (4 B/parameter) only when μ ≠ 0.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sgd {
    /// Learning rate γ.
    pub lr: f64,
    /// Momentum factor μ.
    pub momentum: f64,
    /// Dampening τ of the momentum buffer.
    pub dampening: f64,
    /// Coupled L2 weight decay λ.
    pub weight_decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Maximize the objective instead of minimizing it.
    pub maximize: bool,
    /// How state, gradients and parameters are stored ([`Precision`]); not a hyperparameter of
    /// the rule, which computes in f32 either way.
    #[serde(default)]
    pub precision: Precision,
}

impl Default for Sgd {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
            precision: Precision::default(),
        }
    }
}

setters!(Sgd {
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
    maximize: bool,
});
precision_setters!(Sgd);

impl Sgd {
    /// Whether the momentum buffer is used (μ ≠ 0).
    pub fn has_momentum(&self) -> bool {
        self.momentum != 0.0
    }

    /// Values of the kernel's variant constants `[MOMENTUM, NESTEROV]`.
    pub fn variant(&self) -> [bool; 2] {
        [self.has_momentum(), self.nesterov]
    }

    /// Checks the hyperparameters as PyTorch does, and ε-free ones for finiteness.
    pub fn validate(&self) -> Result<()> {
        ensure_lr(self.lr)?;
        ensure_non_negative("momentum", self.momentum)?;
        ensure_non_negative("weight_decay", self.weight_decay)?;
        ensure(
            self.dampening.is_finite(),
            "dampening",
            self.dampening,
            "must be finite",
        )?;
        if self.nesterov {
            ensure(
                self.momentum > 0.0,
                "momentum",
                self.momentum,
                "nesterov needs momentum > 0",
            )?;
            ensure(
                self.dampening == 0.0,
                "dampening",
                self.dampening,
                "nesterov needs dampening = 0",
            )?;
        }
        Ok(())
    }

    /// Per-step scalars: the buffer coefficients are (0, 1) on step 1 (b ← g), then (μ, 1−τ).
    pub fn uniform(&self, lr: f64, t: u64) -> StepUniform {
        let (keep, add) = if t <= 1 {
            (0.0, 1.0)
        } else {
            (self.momentum, 1.0 - self.dampening)
        };
        StepUniform {
            weight_decay: self.weight_decay as f32,
            momentum: self.momentum as f32,
            buf_keep: keep as f32,
            buf_add: add as f32,
            ..StepUniform::neutral(lr, self.maximize)
        }
    }
}
