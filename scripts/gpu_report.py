"""Merges what scripts/gpu-report.sh collected in OUTDIR into OUTDIR/report.json and
OUTDIR/report.md. Missing or broken parts are reported as such, never invented."""
import json
import pathlib
import sys


def load(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return {"error": f"{path.name}: {e}"}


def text(path):
    try:
        return path.read_text()
    except OSError as e:
        return f"({path.name}: {e})"


def table(rows, cols):
    out = ["| " + " | ".join(c for c, _ in cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(f(r) for _, f in cols) + " |")
    return "\n".join(out)


def main():
    out, elapsed, gpu = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""
    info = text(out / "info.txt")
    tune = load(out / "tune.json") if (out / "tune.json").exists() else None
    bench = load(out / "bench.json") if (out / "bench.json").exists() else None
    torch = load(out / "torch.json") if (out / "torch.json").exists() else None
    verify = text(out / "verify.txt") if (out / "verify.txt").exists() else None
    report = dict(seconds=int(elapsed), nvidia_smi=gpu, info=info, tune=tune, verify=verify,
                  bench=bench, torch=torch)
    (out / "report.json").write_text(json.dumps(report, indent=1))

    md = ["# wgoptim GPU report", "", f"Took {elapsed} s. nvidia-smi: {gpu or '(none)'}", "",
          "## Adapters (`wgoptim info`)", "", "```", info.strip(), "```", ""]
    if "NO ADAPTER" in text(out / "log.txt") or "NO VULKAN DRIVER" in text(out / "log.txt"):
        md += ["**No Vulkan driver sees the GPU** (see log.txt): the figures below, if any, are "
               "not the GPU's.", ""]
    if tune and "variants" in tune:
        md += ["## Kernel shapes (`wgoptim tune`)", "", f"adapter: {tune.get('adapter')}", ""]
        rows = []
        for v in tune["variants"]:
            r = v["report"]
            times = {f"{'s' if s['strided'] else 'c'}{s['vecs_per_invocation']}": t
                     for s, t in r["timings"]}
            best = f"{'s' if r['best']['strided'] else 'c'}{r['best']['vecs_per_invocation']}"
            builtin = f"{'s' if r['builtin']['strided'] else 'c'}{r['builtin']['vecs_per_invocation']}"
            rows.append(dict(name=v["optimizer"], n=r["elements"], times=times, best=best,
                             builtin=builtin))
        shapes = list(rows[0]["times"]) if rows else []
        cols = [("variant", lambda r: r["name"]), ("params", lambda r: str(r["n"]))]
        cols += [(s + " ms", (lambda s: lambda r: f"{r['times'].get(s, float('nan')):.3f}")(s))
                 for s in shapes]
        cols += [("best", lambda r: r["best"]), ("built-in", lambda r: r["builtin"]),
                 ("built-in ÷ best", lambda r: f"{r['times'][r['builtin']] / r['times'][r['best']]:.2f}x")]
        md += [table(rows, cols), ""]
    elif tune:
        md += ["## Kernel shapes", "", f"failed: {tune}", ""]
    if verify is not None:
        md += ["## Verification (`wgoptim verify`)", "", "```", verify.strip(), "```", ""]
    cols = [("kernel", lambda r: r["kernel"]), ("params", lambda r: str(r["params"])),
            ("median ms", lambda r: f"{r['median_ms']:.4f}"), ("GB/s", lambda r: f"{r['gb_per_s']:.1f}"),
            ("copy GB/s", lambda r: f"{r['copy_gb_per_s']:.1f}"),
            ("% of copy", lambda r: f"{r['percent_of_copy']:.0f}%")]
    if bench and "rows" in bench:
        md += ["## Step time (`wgoptim bench`)", "", f"adapter: {bench.get('adapter')}, clock "
               f"{bench.get('clock')}", "", table(bench["rows"], cols), ""]
    elif bench:
        md += ["## Step time", "", f"failed: {bench}", ""]
    if torch and "rows" in torch:
        md += [f"## torch {torch.get('torch')} fused, CUDA {torch.get('cuda')}, {torch.get('device')}",
               "", table(torch["rows"], cols), ""]
        if bench and "rows" in bench:
            ours = {(r["kernel"], r["params"]): r for r in bench["rows"] if r.get("tensors", 1) == 1}
            pairs = [(t, ours[(t["kernel"], t["params"])]) for t in torch["rows"]
                     if (t["kernel"], t["params"]) in ours]
            md += ["### Same card, same size: wgoptim's speed ÷ torch's (torch median ÷ wgoptim median)", "",
                   table(pairs, [("kernel", lambda p: p[0]["kernel"]), ("params", lambda p: str(p[0]["params"])),
                                 ("wgoptim ms", lambda p: f"{p[1]['median_ms']:.4f}"),
                                 ("torch ms", lambda p: f"{p[0]['median_ms']:.4f}"),
                                 ("ratio", lambda p: f"{p[0]['median_ms'] / p[1]['median_ms']:.2f}x")]), ""]
    elif torch:
        md += ["## torch", "", f"failed: {torch}", ""]
    else:
        md += ["## torch", "", "torch with CUDA was not found: no comparison.", ""]
    (out / "report.md").write_text("\n".join(md))


if __name__ == "__main__":
    main()
