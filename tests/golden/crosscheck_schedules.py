"""Random cross-check of `wgoptim schedule` against torch.optim.lr_scheduler (needs torch).
Run: python tests/golden/crosscheck_schedules.py [N_CASES] (uses target/release/wgoptim).
Prints each mismatch (relative difference > 1e-6) and a summary; exits 1 on any mismatch."""
import random, subprocess, sys
import torch
from torch.optim import lr_scheduler as S

BIN = "target/release/wgoptim"
rng = random.Random(0)

def case():
    k = rng.choice(["StepLR", "MultiStepLR", "ExponentialLR", "PolynomialLR", "LinearLR", "ConstantLR",
                    "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "OneCycleLR", "CyclicLR", "ReduceLROnPlateau"])
    lr = rng.choice([0.1, 1.0, 3e-4, 0.05])
    if k == "StepLR": kw = dict(step_size=rng.randint(1, 20), gamma=rng.choice([0.1, 0.5, 0.9]))
    elif k == "MultiStepLR": kw = dict(milestones=sorted(rng.sample(range(1, 60), rng.randint(1, 5))), gamma=rng.choice([0.1, 0.3]))
    elif k == "ExponentialLR": kw = dict(gamma=rng.uniform(0.8, 0.999))
    elif k == "PolynomialLR": kw = dict(total_iters=rng.randint(0, 80), power=rng.choice([0.5, 1.0, 2.0, 3.7]))
    elif k == "LinearLR": kw = dict(start_factor=rng.uniform(0.01, 1), end_factor=rng.uniform(0, 1), total_iters=rng.randint(0, 60))
    elif k == "ConstantLR": kw = dict(factor=rng.uniform(0, 1), total_iters=rng.randint(0, 30))
    elif k == "CosineAnnealingLR": kw = dict(T_max=rng.randint(1, 70), eta_min=rng.choice([0.0, lr / 100]))
    elif k == "CosineAnnealingWarmRestarts": kw = dict(T_0=rng.randint(1, 15), T_mult=rng.randint(1, 3), eta_min=rng.choice([0.0, lr / 50]))
    elif k == "OneCycleLR":
        t = rng.randint(10, 150)
        kw = dict(max_lr=rng.choice([0.1, 1.0, 0.01]), total_steps=t, pct_start=rng.uniform(0.1, 0.45),
                  anneal_strategy=rng.choice(["cos", "linear"]), div_factor=rng.choice([25.0, 10.0]),
                  final_div_factor=rng.choice([1e4, 100.0]), three_phase=rng.choice([False, True]))
    elif k == "CyclicLR":
        kw = dict(base_lr=0.001, max_lr=rng.choice([0.01, 0.1]), step_size_up=rng.randint(1, 20),
                  step_size_down=rng.choice([None, rng.randint(1, 20)]), mode=rng.choice(["triangular", "triangular2", "exp_range"]),
                  gamma=rng.uniform(0.9, 1.0))
    else:
        kw = dict(mode=rng.choice(["min", "max"]), factor=rng.uniform(0.1, 0.9), patience=rng.randint(0, 4),
                  threshold=rng.choice([1e-4, 0.01, 0.05]), threshold_mode=rng.choice(["rel", "abs"]),
                  cooldown=rng.randint(0, 3), min_lr=rng.choice([0.0, lr / 20]))
    return k, lr, kw

def arg(v):
    if isinstance(v, bool): return "true" if v else "false"
    if isinstance(v, list): return ",".join(map(str, v))
    return repr(v) if isinstance(v, float) else str(v)

n_cases = int(sys.argv[1]) if len(sys.argv) > 1 else 300
bad = 0
for c in range(n_cases):
    k, lr, kw = case()
    n = kw["total_steps"] + 1 if k == "OneCycleLR" else rng.randint(20, 150)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)
    metrics = [rng.choice([1.0, 0.9, 0.8, 1.1]) * (1 - 0.001 * e) for e in range(n)]
    sched = getattr(S, k)(opt, **{kk: vv for kk, vv in kw.items() if vv is not None})
    want = []
    for e in range(n):
        want.append((opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]))
        opt.step()
        if e == n - 1: break
        sched.step(metrics[e]) if k == "ReduceLROnPlateau" else sched.step()
    params = [f"lr={lr!r}"] + [f"{kk}={arg(vv)}" for kk, vv in kw.items() if vv is not None]
    if k == "ReduceLROnPlateau": params.append("metrics=" + ",".join(repr(m) for m in metrics))
    out = subprocess.run([BIN, "schedule", k, *params, "--steps", str(n)], capture_output=True, text=True)
    if out.returncode != 0:
        print("FAIL", k, params[:8], out.stderr.strip()); bad += 1; continue
    lines = out.stdout.strip().split("\n")
    cycled = lines[0].endswith("momentum")
    for e, line in enumerate(lines[1:]):
        f = line.split(",")
        got_lr = float(f[1])
        w_lr, w_m = want[e]
        ok = abs(got_lr - w_lr) <= 1e-6 * abs(w_lr) + 1e-15
        if cycled: ok = ok and abs(float(f[2]) - w_m) <= 1e-6 * abs(w_m)
        if not ok:
            print("MISMATCH", k, kw, "step", e, "ours", f[1:], "torch", w_lr, w_m); bad += 1; break
print(f"{n_cases} cases, {bad} mismatches")
sys.exit(1 if bad else 0)
