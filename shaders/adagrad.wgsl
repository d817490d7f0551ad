// Adagrad with learning-rate decay and an initial accumulator (torch.optim.Adagrad).
//   g ← s·g + λθ ;  S ← S + g² ;  θ ← θ − γ̃·g/(√S + ε)     with γ̃ = γ/(1+(t−1)η) in `step.lr`

// State slot (binding 4): sum.

fn update(i: u32, lanes: vec4<bool>) {
    let p = load_param(i);
    var g = load_grad(i) * grad_factor;
    g = g + step.weight_decay * p;
    let s = load_sum(i) + g * g;
    store_sum(i, s, lanes);
    store_param(i, p, p - (step.lr * at_step.lr_mul) * (g / (sqrt(s) + step.eps)), lanes);
}
