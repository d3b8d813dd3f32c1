#!/usr/bin/env bash
# The hardware report of docs/PERFORMANCE.md, for a machine with a GPU: `bitgrad devices`, the
# kernel benchmark (with the large f32 GEMMs), both main-job models' training steps
# (`bench --train`, random data, so no data files are needed), and the PyTorch peers
# (scripts/torch_peer.py: the same models as straight-through BNNs, torch.matmul in fp32 with
# TF32 off), all in one run on one adapter. Writes report.json (everything) and report.txt (the
# table) in the output folder, with each stage's own output beside them. Each stage has a time
# limit; the whole report stays under 10 minutes on a current GPU.
#
# Usage: scripts/gpu_report.sh [OUTDIR]     (default gpu-report)
#   BITGRAD=path/to/bitgrad  a prebuilt release binary (default: target/release/bitgrad, built if
#                            missing)
#   STEPS=50                 timed training steps per model
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-report}
bin=${BITGRAD:-target/release/bitgrad}
steps=${STEPS:-50}
mkdir -p "$out"
if [ ! -x "$bin" ]; then
    cargo build --release --bin bitgrad || exit 1
fi
# A fresh tuning cache: the report times every variant choice itself and records them.
export BITGRAD_CACHE_DIR="$out/tuning"
rm -rf "$BITGRAD_CACHE_DIR"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

stage() { # name seconds command...: runs one stage with a time limit, output to OUTDIR/name.txt
    local name=$1 limit=$2
    shift 2
    echo "== $name (at most ${limit} s)"
    local start=$SECONDS
    timeout "$limit" "$@" > >(tee "$out/$name.txt") 2> >(tee "$out/$name.err" >&2)
    local rc=$?
    echo "$name: exit $rc after $((SECONDS - start)) s"
    echo "$rc" >"$out/$name.rc"
}

stage devices 60 "$bin" devices
all=--all
if grep -q '^selected: .*software' "$out/devices.txt"; then
    all= # the large f32 GEMMs take minutes per run on a CPU rasterizer
fi
stage bench 300 "$bin" bench $all --min-time 0.5 --json "$out/bench.json"
stage train 150 "$bin" bench --train --steps "$steps" --json "$out/train.json"
if python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    # torch.matmul also at the main job's products, as the benchmark listed them (m,k,n).
    gemms=$(python3 -c '
import json, re, sys
shapes = []
for m in json.load(open(sys.argv[1]))["kernels"]:
    r = re.search(r"step (\d+)x(\d+)x(\d+)", m["shape"])
    if r and r.groups() not in shapes:
        shapes.append(r.groups())
print(";".join(",".join(s) for s in shapes))' "$out/bench.json" 2>/dev/null)
    stage torch 150 python3 scripts/torch_peer.py --steps "$steps" --gemms "$gemms" --json "$out/torch.json"
else
    echo "PyTorch with CUDA is not installed here: no peer figures" | tee "$out/torch.txt"
fi

python3 - "$out" <<'EOF'
import json, os, re, sys

out = sys.argv[1]


def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


bench, train, torch = load("bench.json"), load("train.json"), load("torch.json")
adapter = (bench or train or {}).get("adapter", "unknown")
report = {"adapter": adapter, "bench": bench, "train": train, "torch": torch}
lines = [f"adapter: {adapter}"]
# Ceilings of ../shared/PLATFORM.md for the Hopper parts (H100 and H200 share SMs and clocks).
hopper = any(n in adapter for n in ("H100", "H200"))
popcount_bound, fp32_peak = (134e12, 67e12) if hopper else (None, None)
if bench:
    lines.append("")
    lines.append(f"{'kernel':<10} {'shape':<40} {'median ms':>10} {'rate':>12}  {'of ceiling':>10}  variant")
    for m in bench["kernels"]:
        rate = m["rate"] * 1e9
        ceiling = popcount_bound if m["kernel"] == "xnor_gemm" else fp32_peak if m["kernel"] == "f32_gemm" else None
        share = f"{100 * rate / ceiling:.1f}%" if ceiling else "-"
        variant = m["kernels"][0] if len(m["kernels"]) == 1 else f"{len(m['kernels'])} dispatches"
        lines.append(f"{m['kernel']:<10} {m['shape']:<40} {m['median_ms']:>10.3f} {m['rate']:>9.2f} {m['unit'][:3]:<3} {share:>10}  {variant}")
    if torch:
        lines.append("")
        lines.append("f32 GEMM against torch.matmul (fp32, TF32 off), same shape:")
        ours = {re.search(r"\d+x\d+x\d+", m["shape"]).group(0): m for m in bench["kernels"] if m["kernel"] == "f32_gemm"}
        for t in torch["matmul"]:
            o = ours.get(t["shape"])
            if o:
                lines.append(f"  {t['shape']:<18} bitgrad {o['rate']:>9.1f} GFLOP/s, torch {t['gflops']:>9.1f} GFLOP/s: {o['rate'] / t['gflops']:.3f}x")
if train:
    lines.append("")
    lines.append(f"{'model':<6} {'bitgrad images/s':>17} {'dispatches':>11} {'gpu ms':>8} {'torch images/s':>15} {'bitgrad/torch':>14}")
    peers = {t["model"]: t for t in (torch or {}).get("train", [])}
    for m in train["train"]:
        p = peers.get(m["model"])
        theirs = f"{p['images_per_s']:.0f}" if p else "-"
        ratio = f"{m['images_per_s'] / p['images_per_s']:.2f}x" if p else "-"
        gpu = f"{m['gpu_ms']:.3f}" if m.get("gpu_ms") is not None else "-"
        lines.append(f"{m['model']:<6} {m['images_per_s']:>17.0f} {m['dispatches']:>11} {gpu:>8} {theirs:>15} {ratio:>14}")
text = "\n".join(lines) + "\n"
with open(os.path.join(out, "report.json"), "w") as f:
    json.dump(report, f, indent=2)
with open(os.path.join(out, "report.txt"), "w") as f:
    f.write(text)
print(text, end="")
EOF
