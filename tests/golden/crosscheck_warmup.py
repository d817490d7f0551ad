"""Random cross-check of `wgoptim schedule ... warmup_steps=W warmup_start_factor=f` against
torch SequentialLR([LinearLR(start_factor=f, total_iters=W), X], milestones=[W]). Needs torch;
run from the repo root after a release build."""
import random, subprocess
import torch
from torch.optim import lr_scheduler as S
rng = random.Random(1); bad = 0
for c in range(150):
    W = rng.randint(1, 10); f = rng.choice([0.01, 0.1, 0.5]); lr = 0.1
    k, kw = rng.choice([("StepLR", dict(step_size=rng.randint(1, 8), gamma=0.5)), ("ExponentialLR", dict(gamma=0.9)),
                        ("CosineAnnealingLR", dict(T_max=rng.randint(5, 40), eta_min=0.001)),
                        ("MultiStepLR", dict(milestones=[3, 9], gamma=0.3)), ("PolynomialLR", dict(total_iters=12, power=2.0)),
                        ("CosineAnnealingWarmRestarts", dict(T_0=4, T_mult=2))])
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)
    sched = S.SequentialLR(opt, [S.LinearLR(opt, start_factor=f, total_iters=W), getattr(S, k)(opt, **kw)], milestones=[W])
    n = 60; want = []
    for e in range(n):
        want.append(opt.param_groups[0]["lr"]); opt.step(); sched.step()
    params = [f"lr={lr}", f"warmup_steps={W}", f"warmup_start_factor={f}"] + [f"{a}={','.join(map(str,b)) if isinstance(b,list) else b}" for a, b in kw.items()]
    out = subprocess.run(["target/release/wgoptim", "schedule", k, *params, "--steps", str(n)], capture_output=True, text=True)
    got = [float(l.split(",")[1]) for l in out.stdout.strip().split("\n")[1:]]
    for e in range(n):
        if abs(got[e] - want[e]) > 1e-6 * abs(want[e]) + 1e-15:
            print("MISMATCH", k, kw, W, f, "step", e, got[e], want[e]); bad += 1; break
print("warmup cases: 150,", bad, "mismatches")
