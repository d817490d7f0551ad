// Adam and AdamW, with optional AMSGrad (torch.optim.Adam, torch.optim.AdamW), RAdam
// (torch.optim.RAdam: RECTIFIED) and NAdam (torch.optim.NAdam: NESTEROV).
//   g ← s·c·g + λθ               (coupled L2: Adam; λ = 0 here for AdamW)
//   θ ← θ(1 − γλ)                (decoupled: AdamW; decay = 1 for Adam)
//   m ← β₁m + (1−β₁)g ;  v ← β₂v + (1−β₂)g²
//   v̂ ← max(v̂, v) if AMSGRAD, else v̂ = v
//   θ ← θ − (γ/(1−β₁ᵗ)) · m / (√v̂ / √(1−β₂ᵗ) + ε)
// RECTIFIED (RAdam), with r = rₜ√(1−β₂ᵗ) where ρₜ > 5, else 0, in bias_correction2_sqrt:
//   θ ← θ − (γ/(1−β₁ᵗ)) · (r > 0 ? m·r/(√v + ε) : m)
// NESTEROV (NAdam), with γ₂ = γ(1−μₜ)/(1−Πₜ) in lr2 and γμₜ₊₁/(1−Πₜ₊₁) in lr:
//   θ ← θ − γ₂ · g/d − γ' · m/d,  d = √v/√(1−β₂ᵗ) + ε
// (the step's factors are the uniform's times at_step's: one of the two is 1)

override AMSGRAD: bool = false;
override RECTIFIED: bool = false;
override NESTEROV: bool = false;

// State slots (bindings 4, 5, 6): exp_avg, exp_avg_sq, max_exp_avg_sq.

fn update(i: u32, lanes: vec4<bool>) {
    let p = load_param(i);
    var g = load_grad(i) * grad_factor;
    g = g + step.weight_decay * p;
    let m = step.beta1 * load_exp_avg(i) + step.one_minus_beta1 * g;
    let v = step.beta2 * load_exp_avg_sq(i) + step.one_minus_beta2 * g * g;
    store_exp_avg(i, m, lanes);
    store_exp_avg_sq(i, v, lanes);
    if RECTIFIED {
        let r = step.bias_correction2_sqrt * at_step.bias_correction2_sqrt;
        var u = m;
        if r > 0.0 {
            u = (m * r) / (sqrt(v) + step.eps);
        }
        store_param(i, p, p * step.decay - (step.lr * at_step.lr_mul) * u, lanes);
        return;
    }
    var v_hat = v;
    if AMSGRAD {
        v_hat = max(load_max_exp_avg_sq(i), v);
        store_max_exp_avg_sq(i, v_hat, lanes);
    }
    let d = sqrt(v_hat) / (step.bias_correction2_sqrt * at_step.bias_correction2_sqrt) + step.eps;
    var q = p * step.decay;
    if NESTEROV {
        q = q - (step.lr2 * at_step.lr2_mul) * (g / d);
    }
    store_param(i, p, q - (step.lr * at_step.lr_mul) * (m / d), lanes);
}
