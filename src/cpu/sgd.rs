//! CPU twins of `shaders/sgd.wgsl`.

use crate::optim::Sgd;
use crate::uniform::{DeviceStep, StepUniform};

/// The f32 twin: the shader's `update` for one element, operation for operation.
#[inline]
pub fn update(
    step: &StepUniform,
    dev: &DeviceStep,
    [momentum, nesterov]: [bool; 2],
    param: &mut f32,
    grad: f32,
    [momentum_buffer, ..]: &mut [f32; 3],
) {
    let p = *param;
    let mut g = grad * (step.grad_scale * dev.grad_mul);
    g = g + step.weight_decay * p;
    if momentum {
        let first = dev.at_step.first != 0;
        let keep_b = if first { 0.0 } else { step.buf_keep };
        let add_g = if first { 1.0 } else { step.buf_add };
        let b = keep_b * *momentum_buffer + add_g * g;
        *momentum_buffer = b;
        if nesterov {
            g = g + step.momentum * b;
        } else {
            g = b;
        }
    }
    *param = p - step.lr * g;
}

/// The f64 oracle: SEMANTICS.md's rule for step `t` at learning rate `lr`.
pub fn oracle(o: &Sgd, lr: f64, t: u64, param: &mut f64, grad: f64, [buf, ..]: &mut [f64; 3]) {
    let mut g = if o.maximize { -grad } else { grad };
    g += o.weight_decay * *param;
    if o.momentum != 0.0 {
        *buf = if t == 1 {
            g
        } else {
            o.momentum * *buf + (1.0 - o.dampening) * g
        };
        g = if o.nesterov {
            g + o.momentum * *buf
        } else {
            *buf
        };
    }
    *param -= lr * g;
}
