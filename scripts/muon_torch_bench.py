"""torch.optim.Muon's step time on the CPU, for BENCHMARKS.md's Muon table: one 256 x 256
matrix, 64 matrices of 32 x 32, one 512 x 512; 2 threads, random gradients, 3 warm-up steps,
median and min of 7. Run: python scripts/muon_torch_bench.py (torch 2.15)."""
import time

import torch

torch.set_num_threads(2)
for shape, count in [((256, 256), 1), ((32, 32), 64), ((512, 512), 1)]:
    ps = [torch.nn.Parameter(torch.randn(*shape)) for _ in range(count)]
    for p in ps:
        p.grad = torch.randn(*shape)
    opt = torch.optim.Muon(ps, lr=0.02)
    for _ in range(3):
        opt.step()
    ts = []
    for _ in range(7):
        t0 = time.perf_counter()
        opt.step()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    print("torch.optim.Muon", shape, "x", count, "median ms %.3f min %.3f" % (ts[3] * 1e3, ts[0] * 1e3))
