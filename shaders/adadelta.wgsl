// Adadelta (torch.optim.Adadelta); ρ and 1−ρ in the uniform's alpha fields.
//   g ← s·c·g + λθ ;  v ← ρv + (1−ρ)g²
//   Δ ← √(u + ε)/√(v + ε) · g ;  u ← ρu + (1−ρ)Δ² ;  θ ← θ − γΔ

// State slots (bindings 4, 5): square_avg, acc_delta.

fn update(i: u32, lanes: vec4<bool>) {
    let p = load_param(i);
    var g = load_grad(i) * grad_factor;
    g = g + step.weight_decay * p;
    let v = step.alpha * load_square_avg(i) + step.one_minus_alpha * g * g;
    let acc = load_acc_delta(i);
    let delta = sqrt(acc + step.eps) / sqrt(v + step.eps) * g;
    let u = step.alpha * acc + step.one_minus_alpha * delta * delta;
    store_square_avg(i, v, lanes);
    store_acc_delta(i, u, lanes);
    store_param(i, p, p - (step.lr * at_step.lr_mul) * delta, lanes);
}
