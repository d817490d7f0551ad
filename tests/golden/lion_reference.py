"""Writes tests/golden/lion_reference.rs, the golden values of Lion in tests/golden_pytorch.rs.
Lion is not in torch.optim: this is Algorithm 2 of Chen et al. 2023, "Symbolic Discovery of
Optimization Algorithms" (arXiv:2302.06675), written out in torch's float32 operations:

    c_t     = beta1 * m_{t-1} + (1 - beta1) * g_t
    theta_t = theta_{t-1} - lr * (sign(c_t) + wd * theta_{t-1})
    m_t     = beta2 * m_{t-1} + (1 - beta2) * g_t

with maximize negating g first (as torch.optim does). Same inputs as pytorch_optim.py.
Run: python tests/golden/lion_reference.py > tests/golden/lion_reference.rs"""
import torch

from pytorch_optim import GRADS, PARAMS, emit

CASES = [
    ("lion", dict(lr=0.05, betas=(0.9, 0.99), weight_decay=0.0, maximize=False)),
    ("lion_decay_maximize", dict(lr=0.05, betas=(0.95, 0.98), weight_decay=0.1, maximize=True)),
]


def lion(lr, betas, weight_decay, maximize):
    """Lion (Chen et al. 2023, Algorithm 2)"""
    theta = torch.tensor(PARAMS, dtype=torch.float32)
    m = torch.zeros_like(theta)
    beta1, beta2 = betas
    rows = []
    for g in GRADS:
        g = torch.tensor(g, dtype=torch.float32)
        if maximize:
            g = -g
        c = beta1 * m + (1 - beta1) * g
        theta = theta - lr * (torch.sign(c) + weight_decay * theta)
        m = beta2 * m + (1 - beta2) * g
        rows.append(theta.clone())
    return rows


emit("lion_reference.py", lion, CASES)
