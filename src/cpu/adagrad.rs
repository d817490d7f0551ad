//! CPU twins of `shaders/adagrad.wgsl`.

use crate::optim::Adagrad;
use crate::uniform::{DeviceStep, StepUniform};

/// The f32 twin: the shader's `update` for one element, operation for operation.
#[inline]
pub fn update(
    step: &StepUniform,
    dev: &DeviceStep,
    []: [bool; 0],
    param: &mut f32,
    grad: f32,
    [sum, ..]: &mut [f32; 3],
) {
    let p = *param;
    let mut g = grad * (step.grad_scale * dev.grad_mul);
    g = g + step.weight_decay * p;
    let s = *sum + g * g;
    *sum = s;
    *param = p - (step.lr * dev.at_step.lr_mul) * (g / (s.sqrt() + step.eps));
}

/// The f64 oracle: SEMANTICS.md's rule for step `t` at learning rate `lr`.
pub fn oracle(o: &Adagrad, lr: f64, t: u64, param: &mut f64, grad: f64, [sum, ..]: &mut [f64; 3]) {
    let clr = lr / (1.0 + (t - 1) as f64 * o.lr_decay);
    let mut g = if o.maximize { -grad } else { grad };
    g += o.weight_decay * *param;
    *sum += g * g;
    *param -= clr * g / (sum.sqrt() + o.eps);
}
