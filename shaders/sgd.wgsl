// SGD with momentum, dampening, Nesterov, coupled weight decay and maximize (torch.optim.SGD).
//   g ← s·c·g + λθ                      (s = grad_scale: −1 when maximizing; c = control.grad_mul)
//   b ← buf_keep·b + buf_add·g          ((0, 1) on the first step, then (μ, 1−τ); the first
//                                        step is the uniform's, or at_step.first when skipping)
//   g ← g + μb if NESTEROV, else g ← b  (only with MOMENTUM)
//   θ ← θ − γg

override MOMENTUM: bool = false;
override NESTEROV: bool = false;

// State slot (binding 4): momentum_buffer.

fn update(i: u32, lanes: vec4<bool>) {
    let p = load_param(i);
    var g = load_grad(i) * grad_factor;
    g = g + step.weight_decay * p;
    if MOMENTUM {
        let first = at_step.first != 0u;
        let keep_b = select(step.buf_keep, 0.0, first);
        let add_g = select(step.buf_add, 1.0, first);
        let b = keep_b * load_momentum_buffer(i) + add_g * g;
        store_momentum_buffer(i, b, lanes);
        if NESTEROV {
            g = g + step.momentum * b;
        } else {
            g = b;
        }
    }
    store_param(i, p, p - step.lr * g, lanes);
}
