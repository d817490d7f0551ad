//! CPU twins of `shaders/lion.wgsl`.

use crate::optim::Lion;
use crate::uniform::{DeviceStep, StepUniform};

/// `sign` as WGSL (and `torch.sign`) define it: −1, 0 or 1 (0 for ±0, and for NaN as lavapipe
/// computes it), written as two selects so that loops over it vectorize.
#[inline]
pub(crate) fn sign(x: f32) -> f32 {
    let negative = if x < 0.0 { -1.0 } else { 0.0 };
    if x > 0.0 { 1.0 } else { negative }
}

/// The f32 twin: the shader's `update` for one element, operation for operation.
#[inline]
pub fn update(
    step: &StepUniform,
    dev: &DeviceStep,
    []: [bool; 0],
    param: &mut f32,
    grad: f32,
    [exp_avg, ..]: &mut [f32; 3],
) {
    let p = *param;
    let g = grad * (step.grad_scale * dev.grad_mul);
    let m = *exp_avg;
    let c = step.beta1 * m + step.one_minus_beta1 * g;
    *exp_avg = step.beta2 * m + step.one_minus_beta2 * g;
    *param = p * step.decay - step.lr * sign(c);
}

/// f32's unit roundoff, 2⁻²⁴.
const U: f64 = 1.0 / (1u64 << 24) as f64;

/// The f64 oracle: the paper's rule for one element at learning rate `lr`, with a running
/// bound on how far an f32 computation of m may be from the oracle's (`m_error`) and the
/// allowance the parameter has earned (`slack`).
///
/// The f32 m and c are each a few roundings (≤ 2⁻²⁴ relative each, β and 1−β rounded once
/// too) of the exact ones, so |m₃₂ − m| ≤ `m_error` with
/// `m_error ← β₂·m_error + 4·2⁻²⁴(β₂|m| + (1−β₂)|g|)`, and the f32 c is within
/// `β₁·m_error + 4·2⁻²⁴(β₁|m| + (1−β₁)|g|)` of the oracle's. Where |c| is within twice that
/// of 0, the f32 sign may differ and the f32 step may be off by 2γ: `slack` grows by 2γ. The
/// oracle comparison subtracts the slack from each parameter's error.
pub fn oracle(
    o: &Lion,
    lr: f64,
    param: &mut f64,
    grad: f64,
    m: &mut f64,
    m_error: &mut f64,
    slack: &mut f64,
) {
    let (beta1, beta2) = o.betas;
    let g = if o.maximize { -grad } else { grad };
    *param *= 1.0 - lr * o.weight_decay;
    let c = beta1 * *m + (1.0 - beta1) * g;
    let c_error = beta1 * *m_error + 4.0 * U * (beta1 * m.abs() + (1.0 - beta1) * g.abs());
    if c.abs() <= 2.0 * c_error {
        *slack += 2.0 * lr;
    }
    *param -= lr * c.signum() * f64::from(u8::from(c != 0.0));
    *m_error = beta2 * *m_error + 4.0 * U * (beta2 * m.abs() + (1.0 - beta2) * g.abs());
    *m = beta2 * *m + (1.0 - beta2) * g;
}
