//! CPU twins of `shaders/adadelta.wgsl`.

use crate::optim::Adadelta;
use crate::uniform::{DeviceStep, StepUniform};

/// The f32 twin: the shader's `update` for one element, operation for operation.
#[inline]
pub fn update(
    step: &StepUniform,
    dev: &DeviceStep,
    []: [bool; 0],
    param: &mut f32,
    grad: f32,
    [square_avg, acc_delta, ..]: &mut [f32; 3],
) {
    let p = *param;
    let mut g = grad * (step.grad_scale * dev.grad_mul);
    g = g + step.weight_decay * p;
    let v = step.alpha * *square_avg + step.one_minus_alpha * g * g;
    let delta = (*acc_delta + step.eps).sqrt() / (v + step.eps).sqrt() * g;
    let u = step.alpha * *acc_delta + step.one_minus_alpha * delta * delta;
    *square_avg = v;
    *acc_delta = u;
    *param = p - (step.lr * dev.at_step.lr_mul) * delta;
}

/// The f64 oracle: SEMANTICS.md's rule at learning rate `lr`.
pub fn oracle(
    o: &Adadelta,
    lr: f64,
    _t: u64,
    param: &mut f64,
    grad: f64,
    [v, u, _]: &mut [f64; 3],
) {
    let mut g = if o.maximize { -grad } else { grad };
    g += o.weight_decay * *param;
    *v = o.rho * *v + (1.0 - o.rho) * g * g;
    let delta = (*u + o.eps).sqrt() / (*v + o.eps).sqrt() * g;
    *u = o.rho * *u + (1.0 - o.rho) * delta * delta;
    *param -= lr * delta;
}
