//! CPU twins of `shaders/asgd.wgsl`.

use crate::optim::Asgd;
use crate::uniform::{DeviceStep, StepUniform};

/// The f32 twin: the shader's `update` for one element, operation for operation.
#[inline]
pub fn update(
    step: &StepUniform,
    dev: &DeviceStep,
    []: [bool; 0],
    param: &mut f32,
    grad: f32,
    [ax, ..]: &mut [f32; 3],
) {
    let p = *param;
    let mut g = grad * (step.grad_scale * dev.grad_mul);
    g = g + step.weight_decay * p;
    let q = p * (step.decay * dev.at_step.decay_mul) - (step.lr * dev.at_step.lr_mul) * g;
    let mu = step.average * dev.at_step.average_mul;
    let mut average = q;
    if mu != 1.0 {
        let a = *ax;
        average = a + (q - a) * mu;
    }
    *ax = average;
    *param = q;
}

/// The f64 oracle: SEMANTICS.md's rule (`torch.optim.ASGD`) for step `t` at learning rate
/// `lr`, with ηₜ and μₜ exact (not rounded to f32 as PyTorch's state tensors are).
pub fn oracle(o: &Asgd, lr: f64, t: u64, param: &mut f64, grad: f64, [ax, _, _]: &mut [f64; 3]) {
    let mut g = if o.maximize { -grad } else { grad };
    g += o.weight_decay * *param;
    let eta = lr / (1.0 + o.lambd * lr * (t - 1) as f64).powf(o.alpha);
    let mu = 1.0 / ((t - 1) as f64 - o.t0).max(1.0);
    *param = *param * (1.0 - o.lambd * eta) - eta * g;
    *ax = if mu == 1.0 {
        *param
    } else {
        *ax + (*param - *ax) * mu
    };
}
