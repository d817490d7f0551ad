"""Prints tests/golden_pytorch.rs's golden values: parameters after steps 1..=5 of
torch.optim on fixed float32 data. Run: python tests/golden/pytorch_optim.py
(produced with torch 2.15.0 on CPU, single-tensor path: foreach=False)."""
import numpy as np
import torch

PARAMS = [0.5, -1.25, 2.0, -0.003, 0.75, -0.4, 1e-3]
GRADS = [  # one row per step
    [0.1, -0.2, 0.3, 0.05, -0.7, 0.0, 1.5],
    [-0.3, 0.1, 0.25, -0.6, 0.2, 0.9, -0.05],
    [0.02, 0.4, -0.15, 0.35, 0.5, -0.8, 0.6],
    [0.6, -0.45, 0.05, 0.1, -0.1, 0.3, -1.2],
    [-0.05, 0.3, 0.7, -0.25, 0.15, -0.6, 0.2],
]
CASES = [
    ("sgd_momentum_dampening", "SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("sgd_nesterov_maximize", "SGD", dict(lr=0.1, momentum=0.9, nesterov=True, maximize=True)),
    ("rmsprop_centered_momentum", "RMSprop", dict(lr=0.01, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.1)),
    ("rmsprop_plain", "RMSprop", dict(lr=0.01)),
    ("adam_l2_amsgrad", "Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("adam_maximize", "Adam", dict(lr=0.05, maximize=True)),
    ("adamw", "AdamW", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    ("adagrad_decay_maximize", "Adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.1, maximize=True)),
]

print(f"// torch {torch.__version__}")
for name, cls, kw in CASES:
    p = torch.nn.Parameter(torch.tensor(PARAMS, dtype=torch.float32))
    opt = getattr(torch.optim, cls)([p], foreach=False, **kw)
    rows = []
    for g in GRADS:
        p.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
        rows.append(p.detach().clone())
    args = ", ".join(f"{k}={v}" for k, v in kw.items())
    print(f"// torch.optim.{cls}([p], foreach=False, {args})")
    print(f"const {name.upper()}: [[f32; {len(PARAMS)}]; {len(GRADS)}] = [")
    for r in rows:
        print("    [" + ", ".join(str(np.float32(x)) for x in r.numpy()) + "],")  # shortest round-trip f32
    print("];")
