"""wgoptim's CPU backend against torch's CPU optimizer steps, rounds interleaved.

Each round times torch (fused=True where torch has a fused CPU kernel: SGD, Adam, AdamW;
foreach=True for RMSprop and Adagrad, which have none) in this process, then runs
`wgoptim bench --device cpu` for the same sizes, so both see the same machine phase. Prints one
line per (optimizer, size, tensors) with the median over rounds of each side's median step time
and their ratio, and JSON with every round on request.

    python3 scripts/cpu_vs_torch.py --wgoptim target/release/wgoptim --threads 2 \
        --sizes 2^24,2^26 --rounds 3 --reps 10

`--baseline OLD` also runs another wgoptim binary (an older commit's build) in every round,
after the first, and adds its median and torch's ratio to it: a code change's effect on the
ratio measured in the same rounds.

torch must be installed (`pip install torch==2.15.0 numpy`); the test command does not need it.
"""
import argparse
import json
import statistics
import subprocess
import time

import torch

# wgoptim bench's variant name → torch constructor (PyTorch's defaults otherwise).
OPTIMIZERS = {
    "sgd-momentum": lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, fused=True),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-3, fused=True),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3, fused=True),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=1e-3, foreach=True),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=1e-3, foreach=True),
}


def size(text):
    text = text.strip()
    return 1 << int(text[2:]) if text.startswith("2^") else int(text)


def torch_step_ms(name, n, tensors, reps, warmup):
    per = n // tensors
    params = [torch.nn.Parameter(torch.randn(per)) for _ in range(tensors)]
    for p in params:
        p.grad = torch.randn(per) * 1e-2
    opt = OPTIMIZERS[name](params)
    for _ in range(warmup):
        opt.step()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        opt.step()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def wgoptim_step_ms(exe, names, sizes, tensors, threads, reps, warmup):
    out = subprocess.run(
        [exe, "bench", "--device", "cpu", "--threads", str(threads),
         "--optimizers", ",".join(names), "--sizes", ",".join(map(str, sizes)),
         "--tensors", ",".join(map(str, tensors)), "--reps", str(reps),
         "--warmup", str(warmup), "--json"],
        check=True, capture_output=True, text=True).stdout
    rows = json.loads(out)
    rows = rows["rows"] if isinstance(rows, dict) else rows
    return {(r["kernel"], r["params"], r["tensors"]): r["median_ms"] for r in rows}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wgoptim", default="target/release/wgoptim")
    ap.add_argument("--baseline", help="another wgoptim binary, timed in the same rounds")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", default="2^24,2^26")
    ap.add_argument("--tensors", default="1")
    ap.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = args.optimizers.split(",")
    sizes = [size(s) for s in args.sizes.split(",")]
    tensors = [int(t) for t in args.tensors.split(",")]
    rounds = []
    for r in range(args.rounds):
        ours = wgoptim_step_ms(args.wgoptim, names, sizes, tensors, args.threads, args.reps,
                               args.warmup)
        theirs = {(name, n, k): torch_step_ms(name, n, k, args.reps, args.warmup)
                  for name in names for n in sizes for k in tensors}
        rounds.append({"wgoptim": ours, "torch": theirs})
        if args.baseline:
            rounds[-1]["baseline"] = wgoptim_step_ms(args.baseline, names, sizes, tensors,
                                                     args.threads, args.reps, args.warmup)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.rounds} rounds of "
          f"{args.reps} steps (median of round medians)")
    print(f"{'optimizer':14} {'params':>10} {'tensors':>7} {'wgoptim ms':>11} {'torch ms':>9} "
          f"{'torch/wgoptim':>14} {'per round':>24}")
    for name in names:
        for n in sizes:
            for k in tensors:
                key = (name, n, k)
                ours = [r["wgoptim"][key] for r in rounds]
                theirs = [r["torch"][key] for r in rounds]
                per_round = ", ".join(f"{t / o:.2f}" for o, t in zip(ours, theirs))
                o, t = statistics.median(ours), statistics.median(theirs)
                kind = "fused" if name in ("sgd-momentum", "adam", "adamw") else "foreach"
                print(f"{name:14} {n:>10} {k:>7} {o:>11.2f} {t:>9.2f} {t / o:>13.2f}x "
                      f"{per_round:>24}  ({kind})")
                if args.baseline:
                    old = [r["baseline"][key] for r in rounds]
                    per_round = ", ".join(f"{t / b:.2f}" for b, t in zip(old, theirs))
                    b = statistics.median(old)
                    print(f"{'  baseline':14} {n:>10} {k:>7} {b:>11.2f} {t:>9.2f} "
                          f"{t / b:>13.2f}x {per_round:>24}")
    if args.json:
        print(json.dumps([{k: {",".join(map(str, kk)): v for kk, v in side.items()}
                           for k, side in r.items()} for r in rounds]))


if __name__ == "__main__":
    main()
