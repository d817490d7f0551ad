// LAMB (apex FusedLAMB: Adam's direction, a trust ratio per tensor); driver: pieces.wgsl.
//   g ← s·c·g ;  m ← β₁m + (1−β₁)g ;  v ← β₂v + (1−β₂)g²
//   u = (m·f₁) / (√v/√(1−β₂ᵗ) + ε) + λθ      (f₁ = 1/(1−β₁ᵗ): lr2 × at_step.lr2_mul)
//   moments:       writes m and v, returns (Σθ², Σu²) over the block's lanes
//   tensor_factor: the trust ratio r = ‖θ‖/‖u‖ (1 where either is 0, or without ADAPT)
//   apply:         θ ← θ − (γ·r)·u

// Whether the trust ratio applies (apex: λ ≠ 0 or use_nvlamb).
override ADAPT: bool = true;

// State slots (bindings 4, 5): exp_avg, exp_avg_sq.

fn lamb_direction(p: vec4<f32>, m: vec4<f32>, v: vec4<f32>) -> vec4<f32> {
    let d = sqrt(v) / (step.bias_correction2_sqrt * at_step.bias_correction2_sqrt) + step.eps;
    return (m * (step.lr2 * at_step.lr2_mul)) / d + step.weight_decay * p;
}

fn moments(i: u32, lanes: vec4<bool>, tensor: u32) -> vec2<f32> {
    let p = load_param(i);
    let g = load_grad(i) * grad_factor;
    let m = step.beta1 * load_exp_avg(i) + step.one_minus_beta1 * g;
    let v = step.beta2 * load_exp_avg_sq(i) + step.one_minus_beta2 * g * g;
    store_exp_avg(i, m, lanes);
    store_exp_avg_sq(i, v, lanes);
    let zero = vec4<f32>(0.0);
    let u = select(zero, lamb_direction(p, m, v), lanes);
    return vec2<f32>(squares(select(zero, p, lanes)), squares(u));
}

fn tensor_factor(tensor: u32, s: vec2<f32>) -> f32 {
    var ratio = 1.0;
    if ADAPT {
        let param_norm = sqrt(s.x);
        let update_norm = sqrt(s.y);
        // > 0 rather than apex's ≠ 0 (the same for norms): a NaN norm gives ratio 1 on every
        // driver, as on the CPU, instead of a comparison drivers may order either way.
        if param_norm > 0.0 && update_norm > 0.0 {
            ratio = param_norm / update_norm;
        }
    }
    return ratio;
}

fn apply(i: u32, lanes: vec4<bool>, tensor: u32, ratio: f32) {
    let p = load_param(i);
    let u = lamb_direction(p, load_exp_avg(i), load_exp_avg_sq(i));
    store_param(i, p, p - (step.lr * ratio) * u, lanes);
}
