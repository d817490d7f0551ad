//! CPU twins of `shaders/adam.wgsl` (Adam, AdamW, RAdam and NAdam).

use crate::optim::{Adam, NAdam, RAdam};
use crate::uniform::{DeviceStep, StepUniform};

/// The f32 twin: the shader's `update` for one element, operation for operation.
#[inline]
pub fn update(
    step: &StepUniform,
    dev: &DeviceStep,
    [amsgrad, rectified, nesterov]: [bool; 3],
    param: &mut f32,
    grad: f32,
    [exp_avg, exp_avg_sq, max_exp_avg_sq]: &mut [f32; 3],
) {
    let p = *param;
    let mut g = grad * (step.grad_scale * dev.grad_mul);
    g = g + step.weight_decay * p;
    let m = step.beta1 * *exp_avg + step.one_minus_beta1 * g;
    let v = step.beta2 * *exp_avg_sq + step.one_minus_beta2 * g * g;
    *exp_avg = m;
    *exp_avg_sq = v;
    if rectified {
        let r = step.bias_correction2_sqrt * dev.at_step.bias_correction2_sqrt;
        let mut u = m;
        if r > 0.0 {
            u = (m * r) / (v.sqrt() + step.eps);
        }
        *param = p * step.decay - (step.lr * dev.at_step.lr_mul) * u;
        return;
    }
    let mut v_hat = v;
    if amsgrad {
        v_hat = max_exp_avg_sq.max(v);
        *max_exp_avg_sq = v_hat;
    }
    let d =
        v_hat.sqrt() / (step.bias_correction2_sqrt * dev.at_step.bias_correction2_sqrt) + step.eps;
    let mut q = p * step.decay;
    if nesterov {
        q = q - (step.lr2 * dev.at_step.lr2_mul) * (g / d);
    }
    *param = q - (step.lr * dev.at_step.lr_mul) * (m / d);
}

/// The f64 oracle: SEMANTICS.md's rule for step `t` at learning rate `lr`.
pub fn oracle(o: &Adam, lr: f64, t: u64, param: &mut f64, grad: f64, [m, v, v_max]: &mut [f64; 3]) {
    let (beta1, beta2) = o.betas;
    let mut g = if o.maximize { -grad } else { grad };
    if o.decoupled_weight_decay {
        *param *= 1.0 - lr * o.weight_decay;
    } else {
        g += o.weight_decay * *param;
    }
    *m = beta1 * *m + (1.0 - beta1) * g;
    *v = beta2 * *v + (1.0 - beta2) * g * g;
    let v_hat = if o.amsgrad {
        *v_max = v_max.max(*v);
        *v_max
    } else {
        *v
    };
    let t = t as f64;
    let d = v_hat.sqrt() / (1.0 - beta2.powf(t)).sqrt() + o.eps;
    *param -= lr / (1.0 - beta1.powf(t)) * *m / d;
}

/// The f64 oracle of RAdam: SEMANTICS.md's rule for step `t` at learning rate `lr` (PyTorch's
/// order: m/(1−β₁ᵗ)·γ·√(1−β₂ᵗ)/(√v + ε)·rₜ).
pub fn radam_oracle(
    o: &RAdam,
    lr: f64,
    t: u64,
    param: &mut f64,
    grad: f64,
    [m, v, _]: &mut [f64; 3],
) {
    let (beta1, beta2) = o.betas;
    let mut g = if o.maximize { -grad } else { grad };
    if o.decoupled_weight_decay {
        *param *= 1.0 - lr * o.weight_decay;
    } else {
        g += o.weight_decay * *param;
    }
    *m = beta1 * *m + (1.0 - beta1) * g;
    *v = beta2 * *v + (1.0 - beta2) * g * g;
    let corrected = *m / o.bias_correction1(t);
    let r = o.rectification(t);
    if r > 0.0 {
        *param -= corrected * lr * r / (v.sqrt() + o.eps);
    } else {
        *param -= corrected * lr;
    }
}

/// The f64 oracle of NAdam for step `t` at learning rate `lr`: SEMANTICS.md's rule, PyTorch's
/// order (the gradient term first, then the momentum term, both over √(v/(1−β₂ᵗ)) + ε). The
/// step's coefficients (Πₜ is a product over the t steps) are computed once, for the returned
/// per-element rule.
pub fn nadam_oracle(o: &NAdam, lr: f64, t: u64) -> impl Fn(&mut f64, f64, &mut [f64; 3]) + use<> {
    let o = *o;
    let (beta1, beta2) = o.betas;
    let mu = |i: u64| beta1 * (1.0 - 0.5 * 0.96f64.powf(i as f64 * o.momentum_decay));
    let product: f64 = (1..=t).map(mu).product();
    let grad_step = lr * (1.0 - mu(t)) / (1.0 - product);
    let momentum_step = lr * mu(t + 1) / (1.0 - product * mu(t + 1));
    let bias_correction2 = 1.0 - beta2.powf(t as f64);
    move |param, grad, [m, v, _]| {
        let mut g = if o.maximize { -grad } else { grad };
        if o.decoupled_weight_decay {
            *param *= 1.0 - lr * o.weight_decay;
        } else {
            g += o.weight_decay * *param;
        }
        *m = beta1 * *m + (1.0 - beta1) * g;
        *v = beta2 * *v + (1.0 - beta2) * g * g;
        let d = (*v / bias_correction2).sqrt() + o.eps;
        *param -= grad_step * g / d;
        *param -= momentum_step * *m / d;
    }
}
