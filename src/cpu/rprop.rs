//! CPU twins of `shaders/rprop.wgsl`.

use super::lion::sign;
use crate::optim::Rprop;
use crate::uniform::{DeviceStep, StepUniform};

/// WGSL `select(f, t, c)`: `t` where `c`, else `f`.
#[inline(always)]
fn select(f: f32, t: f32, c: bool) -> f32 {
    if c { t } else { f }
}

/// WGSL `max` as lavapipe computes it for these operands (neither is NaN here: a NaN step
/// size needs a NaN gradient, which skipping keeps out): the larger.
#[inline(always)]
fn max(a: f32, b: f32) -> f32 {
    if a > b { a } else { b }
}

/// WGSL `min`, as [`max`].
#[inline(always)]
fn min(a: f32, b: f32) -> f32 {
    if a < b { a } else { b }
}

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
    // WGSL's nested `select`s, written so that they compile to blends.
    let eta = select(select(1.0, step.eta_minus, s < 0.0), step.eta_plus, s > 0.0);
    let delta = min(
        max(*step_size * eta, step.step_size_min),
        step.step_size_max,
    );
    g = select(g, 0.0, s < 0.0);
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
