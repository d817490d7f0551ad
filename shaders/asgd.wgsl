// ASGD (torch.optim.ASGD): SGD with a decaying step, and the average of its iterates.
//   g ← s·c·g + λ_wd·θ
//   θ ← θ(1 − ληₜ) − ηₜ·g
//   ax ← θ if μₜ = 1, else ax + (θ − ax)·μₜ
// (ηₜ, 1 − ληₜ and μₜ are the uniform's times at_step's: one of the two is 1)

// State slot (binding 4): ax.

fn update(i: u32, lanes: vec4<bool>) {
    let p = load_param(i);
    var g = load_grad(i) * grad_factor;
    g = g + step.weight_decay * p;
    let q = p * (step.decay * at_step.decay_mul) - (step.lr * at_step.lr_mul) * g;
    let mu = step.average * at_step.average_mul;
    var ax = q;
    if mu != 1.0 {
        let a = load_ax(i);
        ax = a + (q - a) * mu;
    }
    store_ax(i, ax, lanes);
    store_param(i, p, q, lanes);
}
