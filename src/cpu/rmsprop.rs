//! CPU twins of `shaders/rmsprop.wgsl`.

use crate::optim::RmsProp;
use crate::uniform::{DeviceStep, StepUniform};

/// The f32 twin: the shader's `update` for one element, operation for operation.
#[inline]
pub fn update(
    step: &StepUniform,
    dev: &DeviceStep,
    [centered, momentum]: [bool; 2],
    param: &mut f32,
    grad: f32,
    [square_avg, grad_avg, momentum_buffer]: &mut [f32; 3],
) {
    let p = *param;
    let mut g = grad * (step.grad_scale * dev.grad_mul);
    g = g + step.weight_decay * p;
    let v = step.alpha * *square_avg + step.one_minus_alpha * g * g;
    *square_avg = v;
    let d = if centered {
        let gm = step.alpha * *grad_avg + step.one_minus_alpha * g;
        *grad_avg = gm;
        (v - gm * gm).sqrt() + step.eps
    } else {
        v.sqrt() + step.eps
    };
    if momentum {
        let b = step.momentum * *momentum_buffer + g / d;
        *momentum_buffer = b;
        *param = p - step.lr * b;
    } else {
        *param = p - step.lr * (g / d);
    }
}

/// The f64 oracle: SEMANTICS.md's rule at learning rate `lr`.
pub fn oracle(
    o: &RmsProp,
    lr: f64,
    _t: u64,
    param: &mut f64,
    grad: f64,
    [v, gm, b]: &mut [f64; 3],
) {
    let mut g = if o.maximize { -grad } else { grad };
    g += o.weight_decay * *param;
    *v = o.alpha * *v + (1.0 - o.alpha) * g * g;
    let d = if o.centered {
        *gm = o.alpha * *gm + (1.0 - o.alpha) * g;
        (*v - *gm * *gm).sqrt() + o.eps
    } else {
        v.sqrt() + o.eps
    };
    if o.momentum > 0.0 {
        *b = o.momentum * *b + g / d;
        *param -= lr * *b;
    } else {
        *param -= lr * g / d;
    }
}
