// Adamax: Adam with the infinity norm (torch.optim.Adamax).
//   g ← s·c·g + λθ ;  m ← β₁m + (1−β₁)g ;  u ← max(β₂u, |g| + ε)
//   θ ← θ − (γ/(1−β₁ᵗ)) · m/u       (the step's factor is the uniform's times at_step's)

// State slots (bindings 4, 5): exp_avg, exp_inf.

fn update(i: u32, lanes: vec4<bool>) {
    let p = load_param(i);
    var g = load_grad(i) * grad_factor;
    g = g + step.weight_decay * p;
    let m = step.beta1 * load_exp_avg(i) + step.one_minus_beta1 * g;
    let u = max(step.beta2 * load_exp_inf(i), abs(g) + step.eps);
    store_exp_avg(i, m, lanes);
    store_exp_inf(i, u, lanes);
    store_param(i, p, p - (step.lr * at_step.lr_mul) * (m / u), lanes);
}
