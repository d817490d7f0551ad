use super::{
    Precision, StateDType, ensure, ensure_eps, ensure_lr, ensure_non_negative, precision_setters,
    setters,
};
use crate::error::{Error, Result};
use crate::uniform::StepUniform;

/// RMSprop, plain or centered, with optional momentum: `torch.optim.RMSprop`.
///
/// ```text
/// g ← −g if maximize
/// g ← g + λθ
/// v ← αv + (1−α)g²
/// centered: ḡ ← αḡ + (1−α)g ;  d = √(v − ḡ²) + ε        else d = √v + ε
/// μ > 0:    b ← μb + g/d ;  θ ← θ − γb                   else θ ← θ − γ·g/d
/// ```
///
/// ε is added after the square root, as in PyTorch (Hinton's lecture notes put it inside).
/// Defaults are PyTorch's: lr 1e-2, α 0.99, ε 1e-8, λ 0, μ 0, not centered.
/// State: `square_avg` (4 B/parameter), `grad_avg` when centered (+4), `momentum_buffer` when
/// μ > 0 (+4).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RmsProp {
    /// Learning rate γ.
    pub lr: f64,
    /// Smoothing constant α of the squared-gradient average.
    pub alpha: f64,
    /// ε, added to the denominator after the square root.
    pub eps: f64,
    /// Coupled L2 weight decay λ.
    pub weight_decay: f64,
    /// Momentum factor μ.
    pub momentum: f64,
    /// Normalize by the estimated variance (v − ḡ²) instead of v.
    pub centered: bool,
    /// Maximize the objective instead of minimizing it.
    pub maximize: bool,
    /// How state, gradients and parameters are stored ([`Precision`]); not a hyperparameter of
    /// the rule, which computes in f32 either way.
    #[serde(default)]
    pub precision: Precision,
}

impl Default for RmsProp {
    fn default() -> Self {
        Self {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
            precision: Precision::default(),
        }
    }
}

setters!(RmsProp {
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
    maximize: bool,
});
precision_setters!(RmsProp);

impl RmsProp {
    /// Whether the momentum buffer is used (μ > 0).
    pub fn has_momentum(&self) -> bool {
        self.momentum > 0.0
    }

    /// Values of the kernel's variant constants `[CENTERED, MOMENTUM]`.
    pub fn variant(&self) -> [bool; 2] {
        [self.centered, self.has_momentum()]
    }

    /// Checks the hyperparameters: lr, λ, μ ≥ 0; α in [0, 1]; ε > 0; all finite.
    pub fn validate(&self) -> Result<()> {
        ensure_lr(self.lr)?;
        ensure(
            (0.0..=1.0).contains(&self.alpha),
            "alpha",
            self.alpha,
            "must be in [0, 1]",
        )?;
        ensure_eps(self.eps)?;
        ensure_non_negative("weight_decay", self.weight_decay)?;
        ensure_non_negative("momentum", self.momentum)?;
        if self.centered && self.precision.state.dtype != StateDType::F32 {
            // √(v − ḡ²) needs v ≥ ḡ², which two independently rounded states do not keep.
            return Err(Error::UnsupportedPrecision {
                optimizer: "centered rmsprop",
                dtype: self.precision.state.dtype.name(),
                why: "sqrt(square_avg - grad_avg^2) needs square_avg >= grad_avg^2, which two independently rounded states break; use f32 state",
            });
        }
        Ok(())
    }

    /// Per-step scalars (RMSprop has no step-dependent ones).
    pub fn uniform(&self, lr: f64, _t: u64) -> StepUniform {
        StepUniform {
            weight_decay: self.weight_decay as f32,
            eps: self.eps as f32,
            momentum: self.momentum as f32,
            alpha: self.alpha as f32,
            one_minus_alpha: (1.0 - self.alpha) as f32,
            ..StepUniform::neutral(lr, self.maximize)
        }
    }
}
