//! CPU twins of `shaders/adamax.wgsl`.

use crate::optim::Adamax;
use crate::uniform::{DeviceStep, StepUniform};

/// The f32 twin: the shader's `update` for one element, operation for operation.
#[inline]
pub fn update(
    step: &StepUniform,
    dev: &DeviceStep,
    []: [bool; 0],
    param: &mut f32,
    grad: f32,
    [exp_avg, exp_inf, ..]: &mut [f32; 3],
) {
    let p = *param;
    let mut g = grad * (step.grad_scale * dev.grad_mul);
    g = g + step.weight_decay * p;
    let m = step.beta1 * *exp_avg + step.one_minus_beta1 * g;
    let u = (step.beta2 * *exp_inf).max(g.abs() + step.eps);
    *exp_avg = m;
    *exp_inf = u;
    *param = p - (step.lr * dev.at_step.lr_mul) * (m / u);
}

/// The f64 oracle: SEMANTICS.md's rule for step `t` at learning rate `lr`.
pub fn oracle(o: &Adamax, lr: f64, t: u64, param: &mut f64, grad: f64, [m, u, _]: &mut [f64; 3]) {
    let (beta1, beta2) = o.betas;
    let mut g = if o.maximize { -grad } else { grad };
    g += o.weight_decay * *param;
    *m = beta1 * *m + (1.0 - beta1) * g;
    *u = (beta2 * *u).max(g.abs() + o.eps);
    *param -= lr / o.bias_correction(t) * *m / *u;
}
