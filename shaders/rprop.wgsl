// Rprop (torch.optim.Rprop): a step size per element, grown while the gradient keeps its sign.
//   g ← s·c·g ;  σ = η₊ where g·g₋ > 0, η₋ where g·g₋ < 0, else 1
//   Δ ← min(max(Δ·σ, Δmin), Δmax) ;  g ← 0 where g·g₋ < 0
//   θ ← θ − sign(g)·Δ ;  g₋ ← g

// State slots (bindings 4, 5): prev, step_size.

fn update(i: u32, lanes: vec4<bool>) {
    let p = load_param(i);
    var g = load_grad(i) * grad_factor;
    let s = g * load_prev(i);
    let eta = select(select(vec4(1.0), vec4(step.eta_minus), s < vec4(0.0)), vec4(step.eta_plus), s > vec4(0.0));
    let delta = min(max(load_step_size(i) * eta, vec4(step.step_size_min)), vec4(step.step_size_max));
    g = select(g, vec4(0.0), s < vec4(0.0));
    store_prev(i, g, lanes);
    store_step_size(i, delta, lanes);
    store_param(i, p, p - sign(g) * delta, lanes);
}
