use super::{Precision, ensure, ensure_lr, precision_setters, setters};
use crate::error::Result;
use crate::uniform::StepUniform;

/// Rprop (Riedmiller & Braun, 1993, without weight backtracking, as `torch.optim.Rprop`): a step
/// size per parameter, grown where the gradient keeps its sign and shrunk where it flips.
///
/// ```text
/// g ← −g if maximize
/// σ = η₊ where g·g₋ > 0, η₋ where g·g₋ < 0, else 1      (g₋: `prev`, 0 at first)
/// Δ ← min(max(Δ·σ, Δmin), Δmax)                        (Δ: `step_size`, γ at first)
/// g ← 0 where g·g₋ < 0
/// θ ← θ − sign(g)·Δ ;  g₋ ← g
/// ```
///
/// As in PyTorch, the learning rate is only the initial step size (a schedule changes nothing
/// after the state exists) and there is no weight decay. Nothing depends on t.
///
/// Defaults are PyTorch's: lr 1e-2, η (0.5, 1.2), step sizes (1e-6, 50). State: `prev` and
/// `step_size` (8 B/parameter).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rprop {
    /// Learning rate γ: the initial step size of every parameter.
    pub lr: f64,
    /// (η₋, η₊): the step size's factors after a sign change and after none, 0 < η₋ < 1 < η₊.
    pub etas: (f64, f64),
    /// (Δmin, Δmax): the step size's bounds.
    pub step_sizes: (f64, f64),
    /// Maximize the objective instead of minimizing it.
    pub maximize: bool,
    /// How state, gradients and parameters are stored ([`Precision`]); not a hyperparameter of
    /// the rule, which computes in f32 either way.
    #[serde(default)]
    pub precision: Precision,
}

impl Default for Rprop {
    fn default() -> Self {
        Self {
            lr: 1e-2,
            etas: (0.5, 1.2),
            step_sizes: (1e-6, 50.0),
            maximize: false,
            precision: Precision::default(),
        }
    }
}

setters!(Rprop {
    lr: f64,
    etas: (f64, f64),
    step_sizes: (f64, f64),
    maximize: bool,
});
precision_setters!(Rprop);

impl Rprop {
    /// Checks the hyperparameters: lr ≥ 0; 0 < η₋ < 1 < η₊ (PyTorch's check); 0 ≤ Δmin ≤ Δmax;
    /// all finite.
    pub fn validate(&self) -> Result<()> {
        ensure_lr(self.lr)?;
        let (minus, plus) = self.etas;
        ensure(
            minus > 0.0 && minus < 1.0,
            "etas.0",
            minus,
            "must be in (0, 1)",
        )?;
        ensure(
            plus > 1.0 && plus.is_finite(),
            "etas.1",
            plus,
            "must be finite and > 1",
        )?;
        let (min, max) = self.step_sizes;
        ensure(
            min.is_finite() && min >= 0.0,
            "step_sizes.0",
            min,
            "must be finite and >= 0",
        )?;
        ensure(
            max.is_finite() && max >= min,
            "step_sizes.1",
            max,
            "must be finite and >= step_sizes.0",
        )
    }

    /// Per-step scalars: η₋, η₊, Δmin, Δmax (none depends on t or on the learning rate).
    pub fn uniform(&self, lr: f64, _t: u64) -> StepUniform {
        StepUniform {
            eta_minus: self.etas.0 as f32,
            eta_plus: self.etas.1 as f32,
            step_size_min: self.step_sizes.0 as f32,
            step_size_max: self.step_sizes.1 as f32,
            ..StepUniform::neutral(lr, self.maximize)
        }
    }
}
