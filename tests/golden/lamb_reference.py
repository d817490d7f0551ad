"""Writes tests/golden/lamb_reference.rs, the golden values of LAMB in tests/golden_pytorch.rs.
LAMB is not in torch.optim: this is NVIDIA apex's FusedLAMB (adam_w_mode=True,
grad_averaging=True, bias_correction=True; apex/optimizers/fused_lamb.py and
csrc/multi_tensor_lamb.cu, stages 1 and 2) written out in torch's float32 operations for one
tensor, without apex's global gradient clipping (wgoptim leaves that to its gradient control):

    m = beta1 * m + (1 - beta1) * g ;  v = beta2 * v + (1 - beta2) * g * g
    u = (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps) + weight_decay * theta
    r = |theta| / |u| if (weight_decay != 0 or use_nvlamb) and both norms are non-zero, else 1
    theta = theta - lr * r * u

with maximize negating g first (as torch.optim does). Same inputs as pytorch_optim.py.
Run: python tests/golden/lamb_reference.py > tests/golden/lamb_reference.rs"""
import torch

from pytorch_optim import GRADS, PARAMS, emit

CASES = [
    ("lamb", dict(lr=0.05, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.1, use_nvlamb=False, maximize=False)),
    ("lamb_no_decay", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.0, use_nvlamb=False, maximize=False)),
    ("lamb_nvlamb_maximize", dict(lr=0.05, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, use_nvlamb=True, maximize=True)),
]


def lamb(lr, betas, eps, weight_decay, use_nvlamb, maximize):
    """LAMB (apex FusedLAMB, stages 1 and 2)"""
    theta = torch.tensor(PARAMS, dtype=torch.float32)
    m = torch.zeros_like(theta)
    v = torch.zeros_like(theta)
    beta1, beta2 = betas
    rows = []
    for t, g in enumerate(GRADS, start=1):
        g = torch.tensor(g, dtype=torch.float32)
        if maximize:
            g = -g
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        u = (m / (1 - beta1**t)) / ((v / (1 - beta2**t)).sqrt() + eps) + weight_decay * theta
        ratio = 1.0
        if weight_decay != 0 or use_nvlamb:
            param_norm, update_norm = theta.norm(), u.norm()
            if param_norm != 0 and update_norm != 0:
                ratio = param_norm / update_norm
        theta = theta - lr * ratio * u
        rows.append(theta.clone())
    return rows


emit("lamb_reference.py", lamb, CASES)
