// Lion (Chen et al. 2023; as optax.lion): the sign of an interpolated momentum.
//   g ← s·c·g
//   θ ← θ(1 − γλ) − γ·sign(β₁m + (1−β₁)g)
//   m ← β₂m + (1−β₂)g

// State slot (binding 4): exp_avg.

fn update(i: u32, lanes: vec4<bool>) {
    let p = load_param(i);
    let g = load_grad(i) * grad_factor;
    let m = load_exp_avg(i);
    let c = step.beta1 * m + step.one_minus_beta1 * g;
    store_exp_avg(i, step.beta2 * m + step.one_minus_beta2 * g, lanes);
    store_param(i, p, p * step.decay - step.lr * sign(c), lanes);
}
