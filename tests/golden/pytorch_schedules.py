"""Prints tests/schedule_golden.rs's golden sequences: the lr (and momentum, where cycled) that
torch.optim.lr_scheduler gives at steps 0..N-1. Run: python tests/golden/pytorch_schedules.py
(produced with torch 2.15.0). Each case: an SGD optimizer with lr=BASE and momentum=0.9, then
`for e in range(N): record(); opt.step(); sched.step()` (no step after the last record) (plateau: sched.step(metric[e]))."""
import torch
from torch.optim import lr_scheduler as S

BASE = 0.1
METRICS = [1.0, 0.9, 0.95, 0.97, 0.899, 0.9, 0.91, 0.92, 0.93, 0.85, 0.86, 0.87, 0.88, 0.89,
           0.849, 0.848, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
CASES = [
    ("STEP", 25, "S.StepLR(opt, step_size=7, gamma=0.5)"),
    ("MULTISTEP", 25, "S.MultiStepLR(opt, milestones=[3, 8, 8, 15], gamma=0.3)"),
    ("EXPONENTIAL", 25, "S.ExponentialLR(opt, gamma=0.9)"),
    ("POLYNOMIAL", 25, "S.PolynomialLR(opt, total_iters=12, power=2.5)"),
    ("LINEAR", 25, "S.LinearLR(opt, start_factor=0.2, end_factor=0.9, total_iters=10)"),
    ("CONSTANT", 10, "S.ConstantLR(opt, factor=0.5, total_iters=4)"),
    ("COSINE", 50, "S.CosineAnnealingLR(opt, T_max=20, eta_min=0.001)"),
    ("WARM_RESTARTS", 50, "S.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.002)"),
    ("ONECYCLE_COS", 101, "S.OneCycleLR(opt, max_lr=0.5, total_steps=100)"),
    ("ONECYCLE_LINEAR", 37, "S.OneCycleLR(opt, max_lr=1.0, total_steps=36, pct_start=0.25, anneal_strategy='linear', div_factor=10.0, final_div_factor=100.0)"),
    ("ONECYCLE_THREE_PHASE", 41, "S.OneCycleLR(opt, max_lr=0.3, total_steps=40, three_phase=True, base_momentum=0.8, max_momentum=0.9)"),
    ("CYCLIC_TRIANGULAR2", 60, "S.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=4, step_size_down=6, mode='triangular2')"),
    ("CYCLIC_EXP_RANGE", 30, "S.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=5, mode='exp_range', gamma=0.95)"),
    ("WARMUP_COSINE", 40, "S.SequentialLR(opt, [S.LinearLR(opt, start_factor=0.1, total_iters=5), S.CosineAnnealingLR(opt, T_max=30)], milestones=[5])"),
    ("PLATEAU_REL_COOLDOWN", 25, "S.ReduceLROnPlateau(opt, factor=0.5, patience=2, threshold=0.01, cooldown=2)"),
    ("PLATEAU_ABS_COOLDOWN", 25, "S.ReduceLROnPlateau(opt, mode='min', factor=0.3, patience=1, threshold=0.02, threshold_mode='abs', cooldown=3, min_lr=0.004)"),
]

print(f"// torch {torch.__version__}")
for name, n, ctor in CASES:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=BASE, momentum=0.9)
    sched = eval(ctor)
    lrs, moms = [], []
    for e in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        if e == n - 1:
            break  # OneCycleLR raises when stepped past total_steps
        if isinstance(sched, S.ReduceLROnPlateau):
            sched.step(METRICS[e])
        else:
            sched.step()
    print(f"// {ctor}")
    print(f"const {name}: [f64; {n}] = [{', '.join(repr(float(x)) for x in lrs)}];")
    if len(set(moms)) > 1:
        print(f"const {name}_MOMENTUM: [f64; {n}] = [{', '.join(repr(float(x)) for x in moms)}];")
