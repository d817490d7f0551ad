"""torch's fused optimizer steps on CUDA, timed the way `wgoptim bench` times its kernels:
median of `reps` steps after warm-up, CUDA events, beside a device-to-device copy of the same
parameter count. Prints JSON (rows like wgoptim bench's) on stdout. Used by scripts/gpu-report.sh.
"""
import argparse
import json
import statistics

import torch


def size(text):
    text = text.strip()
    return 1 << int(text[2:]) if text.startswith("2^") else int(text)


# name, constructor, bytes one fused step must move per parameter (SEMANTICS.md)
OPTIMIZERS = [
    ("sgd", lambda p: torch.optim.SGD(p, lr=1e-3, fused=True), 12),
    ("sgd-momentum", lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, fused=True), 20),
    ("adam", lambda p: torch.optim.Adam(p, lr=1e-3, fused=True), 28),
    ("adamw", lambda p: torch.optim.AdamW(p, lr=1e-3, fused=True), 28),
]


def timed(fn, reps, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="2^24,2^26")
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()
    rows = []
    for n in [size(s) for s in args.sizes.split(",")]:
        src = torch.randn(n, device="cuda")
        dst = torch.empty_like(src)
        copy_ms, _ = timed(lambda: dst.copy_(src), args.reps)
        copy_gbs = 8 * n / copy_ms / 1e6
        for name, make, bytes_per_param in OPTIMIZERS:
            p = torch.nn.Parameter(torch.rand(n, device="cuda") * 2 - 1)
            p.grad = torch.randn(n, device="cuda")
            opt = make([p])
            median_ms, min_ms = timed(opt.step, args.reps)
            gbs = bytes_per_param * n / median_ms / 1e6
            rows.append(
                dict(kernel=name, params=n, tensors=1, median_ms=median_ms, min_ms=min_ms,
                     bytes_per_param=bytes_per_param, gb_per_s=gbs, copy_gb_per_s=copy_gbs,
                     percent_of_copy=100 * gbs / copy_gbs)
            )
            del opt, p
        del src, dst
        torch.cuda.empty_cache()
    print(json.dumps(dict(torch=torch.__version__, device=torch.cuda.get_device_name(),
                          cuda=torch.version.cuda, rows=rows), indent=1))


if __name__ == "__main__":
    main()
