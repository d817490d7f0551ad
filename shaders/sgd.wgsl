// SGD with momentum, dampening, Nesterov, coupled weight decay and maximize (torch.optim.SGD).
//   g ← s·g + λθ                        (s = grad_scale: −1 when maximizing)
//   b ← buf_keep·b + buf_add·g          ((0, 1) on the first step, then (μ, 1−τ))
//   g ← g + μb if NESTEROV, else g ← b  (only with MOMENTUM)
//   θ ← θ − γg

override MOMENTUM: bool = false;
override NESTEROV: bool = false;

@group(0) @binding(4) var<storage, read_write> momentum_buffer: array<vec4<f32>>;

fn update(i: u32, lanes: vec4<bool>) {
    let p = param[i];
    var g = grad[i] * step.grad_scale;
    g = g + step.weight_decay * p;
    if MOMENTUM {
        let b = step.buf_keep * momentum_buffer[i] + step.buf_add * g;
        momentum_buffer[i] = keep(momentum_buffer[i], b, lanes);
        if NESTEROV {
            g = g + step.momentum * b;
        } else {
            g = b;
        }
    }
    param[i] = keep(p, p - step.lr * g, lanes);
}
