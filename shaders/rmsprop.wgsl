// RMSprop, plain or centered, with optional momentum (torch.optim.RMSprop).
//   g ← s·g + λθ
//   v ← αv + (1−α)g²
//   d = √(v − ḡ²) + ε with ḡ ← αḡ + (1−α)g if CENTERED, else d = √v + ε
//   b ← μb + g/d ; θ ← θ − γb if MOMENTUM, else θ ← θ − γ·g/d

override CENTERED: bool = false;
override MOMENTUM: bool = false;

// State slots (bindings 4, 5, 6): square_avg, grad_avg, momentum_buffer.

fn update(i: u32, lanes: vec4<bool>) {
    let p = load_param(i);
    var g = load_grad(i) * grad_factor;
    g = g + step.weight_decay * p;
    let v = step.alpha * load_square_avg(i) + step.one_minus_alpha * g * g;
    store_square_avg(i, v, lanes);
    var d: vec4<f32>;
    if CENTERED {
        let gm = step.alpha * load_grad_avg(i) + step.one_minus_alpha * g;
        store_grad_avg(i, gm, lanes);
        d = sqrt(v - gm * gm) + step.eps;
    } else {
        d = sqrt(v) + step.eps;
    }
    if MOMENTUM {
        let b = step.momentum * load_momentum_buffer(i) + g / d;
        store_momentum_buffer(i, b, lanes);
        store_param(i, p, p - step.lr * b, lanes);
    } else {
        store_param(i, p, p - step.lr * (g / d), lanes);
    }
}
