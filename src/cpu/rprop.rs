//! CPU twins of `shaders/rprop.wgsl`.

use super::lion::sign;
use crate::optim::Rprop;
use crate::uniform::{DeviceStep, StepUniform};

/// The f32 twin: the shader's `update` for one element, operation for operation.
#[inline]
pub fn update(
    step: &StepUniform,
    dev: &DeviceStep,
    []: [bool; 0],
    param: &mut f32,
    grad: f32,
    [prev, step_size, ..]: &mut [f32; 3],
) {
    let p = *param;
    let mut g = grad * (step.grad_scale * dev.grad_mul);
    let s = g * *prev;
    let eta = if s > 0.0 {
        step.eta_plus
    } else if s < 0.0 {
        step.eta_minus
    } else {
        1.0
    };
    let delta = (*step_size * eta)
        .max(step.step_size_min)
        .min(step.step_size_max);
    if s < 0.0 {
        g = 0.0;
    }
    *prev = g;
    *step_size = delta;
    *param = p - sign(g) * delta;
}

/// The f64 oracle: SEMANTICS.md's rule (`torch.optim.Rprop`) for one element.
pub fn oracle(o: &Rprop, param: &mut f64, grad: f64, [prev, step_size, _]: &mut [f64; 3]) {
    let (eta_minus, eta_plus) = o.etas;
    let (min, max) = o.step_sizes;
    let mut g = if o.maximize { -grad } else { grad };
    let s = g * *prev;
    let eta = match s.partial_cmp(&0.0) {
        Some(std::cmp::Ordering::Greater) => eta_plus,
        Some(std::cmp::Ordering::Less) => eta_minus,
        _ => 1.0,
    };
    *step_size = (*step_size * eta).clamp(min, max);
    if s < 0.0 {
        g = 0.0;
    }
    *prev = g;
    if g != 0.0 {
        *param -= g.signum() * *step_size;
    }
}
