use super::{
    Precision, ensure_beta, ensure_eps, ensure_lr, ensure_non_negative, precision_setters, setters,
};
use crate::error::Result;
use crate::uniform::StepUniform;

/// Adam (Kingma & Ba, 2015), with AMSGrad and either coupled L2 decay (`torch.optim.Adam`) or
/// decoupled weight decay (AdamW, Loshchilov & Hutter, 2019: `torch.optim.AdamW`).
///
/// ```text
/// g ← −g if maximize
/// g ← g + λθ                         (Adam: coupled L2)
/// θ ← θ(1 − γλ)                      (AdamW: decoupled, with θ before this step's update)
/// m ← β₁m + (1−β₁)g ;  v ← β₂v + (1−β₂)g²
/// v̂ ← max(v̂, v) with amsgrad, else v̂ = v
/// θ ← θ − (γ/(1−β₁ᵗ)) · m / (√v̂/√(1−β₂ᵗ) + ε)
/// ```
///
/// As in PyTorch (and unlike the paper) the decoupled decay is multiplied by the learning
/// rate, and ε is added after the bias-corrected square root. The bias corrections 1−β₁ᵗ and
/// √(1−β₂ᵗ) are computed in f64 on the host each step.
///
/// Defaults: [`Adam::default`] is PyTorch's Adam (lr 1e-3, β (0.9, 0.999), ε 1e-8, λ 0);
/// [`Adam::adamw`] is PyTorch's AdamW (the same with λ 1e-2, decoupled).
/// State: `exp_avg` and `exp_avg_sq` (8 B/parameter), `max_exp_avg_sq` with amsgrad (+4).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adam {
    /// Learning rate γ.
    pub lr: f64,
    /// (β₁, β₂): decay rates of the first and second moment averages.
    pub betas: (f64, f64),
    /// ε, added after the bias-corrected square root.
    pub eps: f64,
    /// Weight decay λ (coupled L2, or decoupled with `decoupled_weight_decay`).
    pub weight_decay: f64,
    /// Keep the running maximum of v (AMSGrad, Reddi et al., 2018).
    pub amsgrad: bool,
    /// Decoupled weight decay: AdamW.
    pub decoupled_weight_decay: bool,
    /// Maximize the objective instead of minimizing it.
    pub maximize: bool,
    /// How state, gradients and parameters are stored ([`Precision`]); not a hyperparameter of
    /// the rule, which computes in f32 either way.
    #[serde(default)]
    pub precision: Precision,
}

impl Default for Adam {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled_weight_decay: false,
            maximize: false,
            precision: Precision::default(),
        }
    }
}

setters!(Adam {
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    decoupled_weight_decay: bool,
    maximize: bool,
});
precision_setters!(Adam);

impl Adam {
    /// PyTorch's AdamW defaults: Adam with decoupled weight decay λ = 1e-2.
    pub fn adamw() -> Self {
        Self {
            weight_decay: 1e-2,
            decoupled_weight_decay: true,
            ..Self::default()
        }
    }

    /// Values of the kernel's variant constants `[AMSGRAD, RECTIFIED, NESTEROV]` (RECTIFIED
    /// is [`crate::RAdam`]'s, NESTEROV [`crate::NAdam`]'s).
    pub fn variant(&self) -> [bool; 3] {
        [self.amsgrad, false, false]
    }

    /// Checks the hyperparameters: lr, λ ≥ 0; β in [0, 1); ε > 0; all finite.
    pub fn validate(&self) -> Result<()> {
        ensure_lr(self.lr)?;
        ensure_beta("betas.0", self.betas.0)?;
        ensure_beta("betas.1", self.betas.1)?;
        ensure_eps(self.eps)?;
        ensure_non_negative("weight_decay", self.weight_decay)
    }

    /// 1 − β₁ᵗ, in f64.
    pub fn bias_correction1(&self, t: u64) -> f64 {
        1.0 - self.betas.0.powf(t.max(1) as f64)
    }

    /// 1 − β₂ᵗ, in f64.
    pub fn bias_correction2(&self, t: u64) -> f64 {
        1.0 - self.betas.1.powf(t.max(1) as f64)
    }

    /// Per-step scalars for step `t`: γ/(1−β₁ᵗ), √(1−β₂ᵗ), 1−γλ (decoupled), each in f64.
    pub fn uniform(&self, lr: f64, t: u64) -> StepUniform {
        self.uniform_with(
            lr,
            self.bias_correction1(t),
            self.bias_correction2(t).sqrt(),
        )
    }

    /// The uniform with given bias corrections 1−β₁ᵗ and √(1−β₂ᵗ) (1 and 1 leave them to the
    /// device). Adamax and RAdam build theirs here too.
    pub(crate) fn uniform_with(
        &self,
        lr: f64,
        bias_correction1: f64,
        bias_correction2_sqrt: f64,
    ) -> StepUniform {
        let (beta1, beta2) = self.betas;
        let (coupled, decay) = if self.decoupled_weight_decay {
            (0.0, 1.0 - lr * self.weight_decay)
        } else {
            (self.weight_decay, 1.0)
        };
        StepUniform {
            lr: (lr / bias_correction1) as f32,
            weight_decay: coupled as f32,
            decay: decay as f32,
            eps: self.eps as f32,
            beta1: beta1 as f32,
            one_minus_beta1: (1.0 - beta1) as f32,
            beta2: beta2 as f32,
            one_minus_beta2: (1.0 - beta2) as f32,
            bias_correction2_sqrt: bias_correction2_sqrt as f32,
            ..StepUniform::neutral(lr, self.maximize)
        }
    }
}
