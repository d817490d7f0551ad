// RMSprop, plain or centered, with optional momentum (torch.optim.RMSprop).
//   g ← s·g + λθ
//   v ← αv + (1−α)g²
//   d = √(v − ḡ²) + ε with ḡ ← αḡ + (1−α)g if CENTERED, else d = √v + ε
//   b ← μb + g/d ; θ ← θ − γb if MOMENTUM, else θ ← θ − γ·g/d

override CENTERED: bool = false;
override MOMENTUM: bool = false;

@group(0) @binding(4) var<storage, read_write> square_avg: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> grad_avg: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> momentum_buffer: array<vec4<f32>>;

fn update(i: u32, lanes: vec4<bool>) {
    let p = param[i];
    var g = grad[i] * grad_factor;
    g = g + step.weight_decay * p;
    let v = step.alpha * square_avg[i] + step.one_minus_alpha * g * g;
    square_avg[i] = keep(square_avg[i], v, lanes);
    var d: vec4<f32>;
    if CENTERED {
        let gm = step.alpha * grad_avg[i] + step.one_minus_alpha * g;
        grad_avg[i] = keep(grad_avg[i], gm, lanes);
        d = sqrt(v - gm * gm) + step.eps;
    } else {
        d = sqrt(v) + step.eps;
    }
    if MOMENTUM {
        let b = step.momentum * momentum_buffer[i] + g / d;
        momentum_buffer[i] = keep(momentum_buffer[i], b, lanes);
        param[i] = keep(p, p - step.lr * b, lanes);
    } else {
        param[i] = keep(p, p - step.lr * (g / d), lanes);
    }
}
