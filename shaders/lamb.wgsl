// LAMB (apex FusedLAMB: Adam's direction, a trust ratio per tensor); driver: pieces.wgsl.
//   g ← s·c·g ;  m ← β₁m + (1−β₁)g ;  v ← β₂v + (1−β₂)g²
//   u = (m·f₁) / (√v/√(1−β₂ᵗ) + ε) + λθ      (f₁ = 1/(1−β₁ᵗ): lr2 × at_step.lr2_mul)
//   moments: writes m and v, returns (Σθ², Σu²) over the block's lanes
//   apply:   θ ← θ − (γ·r)·u, with r the tensor's trust ratio (1 unless ADAPT)

// Whether the trust ratio applies (apex: λ ≠ 0 or use_nvlamb).
override ADAPT: bool = true;

// State slots (bindings 4, 5): exp_avg, exp_avg_sq.

fn lamb_direction(p: vec4<f32>, m: vec4<f32>, v: vec4<f32>) -> vec4<f32> {
    let d = sqrt(v) / (step.bias_correction2_sqrt * at_step.bias_correction2_sqrt) + step.eps;
    return (m * (step.lr2 * at_step.lr2_mul)) / d + step.weight_decay * p;
}

// x·x summed left to right (the CPU twin's order; `dot` leaves it to the driver).
fn squares(x: vec4<f32>) -> f32 {
    return x.x * x.x + x.y * x.y + x.z * x.z + x.w * x.w;
}

fn moments(i: u32, lanes: vec4<bool>) -> vec2<f32> {
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

fn apply(i: u32, lanes: vec4<bool>, ratio: f32) {
    let p = load_param(i);
    let u = lamb_direction(p, load_exp_avg(i), load_exp_avg_sq(i));
    store_param(i, p, p - (step.lr * ratio) * u, lanes);
}
