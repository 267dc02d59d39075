#!/usr/bin/env bash
# The GPU check: the CUDA tests, every benchmark on CUDA, then the whole `paper` ablation
# protocol (all its configurations × 3 seeds) at a fixed epoch budget, timed and extrapolated
# to the paper's 60 epochs; a short table last. Sized for about 10 minutes on one H100: every
# step has its own time limit (13 minutes if every one ran out), so the script always reaches
# the table; a step that ran out says so there.
#
#   benchmarks/gpu_check.sh [--smoke]
#
# Settings (environment): BIONIC_DATA (FER-2013 folder, default ../shared/data/fer2013),
# BIONIC_CHECK_EPOCHS (protocol epochs, default 1), BIONIC_CHECK_PROTOCOL_S (its time limit,
# default 240 s), BIONIC_CHECK_COMPILE=1 (also time --compile), BIONIC_CHECK_OUT (where logs
# go, default a temporary folder), PYTHON (default .venv/bin/python when present).
# --smoke (or BIONIC_CHECK_SMOKE=1): the same steps on the CPU on the built-in demo-small set,
# one seed per configuration — minutes on 2 cores; it checks the script, not the GPU.
set -uo pipefail
cd "$(dirname "$0")/.."

SMOKE=${BIONIC_CHECK_SMOKE:-0}
[ "${1:-}" = "--smoke" ] && SMOKE=1
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
OUT=${BIONIC_CHECK_OUT:-$(mktemp -d -t bionic-gpu-check.XXXXXX)}
EPOCHS=${BIONIC_CHECK_EPOCHS:-1}
mkdir -p "$OUT"
if [ "$SMOKE" = 1 ]; then  # one intra-op thread: a shared 2-core CPU only loses to more
    DEVICE=cpu DATA=demo-small SEEDS=1 LIMIT=512 TESTS_S=300 BENCH_S=300 PROTOCOL_S=900 SIZES=2
    export OMP_NUM_THREADS=1
else
    DEVICE=cuda DATA=${BIONIC_DATA:-../shared/data/fer2013} SEEDS=3 LIMIT=8192 SIZES=14
    TESTS_S=90 BENCH_S=90 PROTOCOL_S=${BIONIC_CHECK_PROTOCOL_S:-240}  # at most 13 min in all
fi
echo "gpu_check: device $DEVICE, data $DATA, logs in $OUT" >&2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
    > "$OUT/gpu.txt" || echo "no nvidia-smi" > "$OUT/gpu.txt"
export PYTHONUNBUFFERED=1

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $OUT/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s)" >&2
    local began=$SECONDS
    timeout --signal=INT --kill-after=20 "$limit" "$@" > "$OUT/$name.log" 2>&1
    echo "$? $((SECONDS - began))" > "$OUT/$name.status"
    tail -n 3 "$OUT/$name.log" >&2
}

# 1. The CUDA tests (marked `gpu`: deselected in ordinary runs; skipped without CUDA).
step tests "$TESTS_S" "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu tests/test_multimodel.py

# 2. The benchmarks on the device (each prints one JSON line last).
B="--data $DATA --device $DEVICE --force"  # the JSON still records the CPU's load
step epoch_fp32 "$BENCH_S" "$PYTHON" benchmarks/epoch.py $B
step epoch_bf16 "$BENCH_S" "$PYTHON" benchmarks/epoch.py $B --precision bf16
step multimodel "$BENCH_S" "$PYTHON" benchmarks/multimodel.py $B --limit $LIMIT --sizes $SIZES
step overhead "$BENCH_S" "$PYTHON" benchmarks/overhead.py $B --limit $LIMIT --rounds 2
step conventional "$BENCH_S" "$PYTHON" benchmarks/conventional.py $B
if [ "${BIONIC_CHECK_COMPILE:-0}" = 1 ]; then  # torch.compile takes minutes: on request only
    step epoch_compile 300 "$PYTHON" benchmarks/epoch.py $B --compile
fi

# 3. The paper protocol: every configuration of `bionic ablate paper` × seeds, fixed epochs,
#    no early stopping, runs of one shape trained together (the default), into its own store.
step protocol "$PROTOCOL_S" "$PYTHON" -m bionic_cli ablate paper --data "$DATA" \
    --device "$DEVICE" --epochs "$EPOCHS" --seeds "$SEEDS" --set patience=0 --no-compare --json \
    --experiments experiments.toml --tracking-uri "sqlite:///$OUT/protocol.db"

# 4. The table.
"$PYTHON" - "$OUT" "$EPOCHS" <<'EOF'
import json
import sys
from pathlib import Path

out, epochs = Path(sys.argv[1]), int(sys.argv[2])


def last_json(name):
    try:
        return json.loads((out / f"{name}.log").read_text().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None


def status(name):
    try:
        code, seconds = (out / f"{name}.status").read_text().split()
    except (OSError, ValueError):
        return "not run"
    return {"0": "ok", "124": "TIMED OUT", "130": "TIMED OUT"}.get(code, f"exit {code}") + \
        f", {seconds} s"


rows = []
log = (out / "tests.log").read_text() if (out / "tests.log").exists() else ""
rows.append(("CUDA tests", (log.strip().splitlines() or ["no output"])[-1], status("tests")))
for name, label in (("epoch_fp32", "paper epoch, fp32"), ("epoch_bf16", "paper epoch, bf16"),
                    ("epoch_compile", "paper epoch, compiled")):
    r = last_json(name)
    if r is not None:
        rows.append((label, f"{r['epoch_seconds']:.1f} s, {r['images_per_s']:.0f} img/s, "
                            f"RSS {r['peak_rss_mb']:.0f} MB", status(name)))
    elif (out / f"{name}.status").exists():
        rows.append((label, "no result", status(name)))
r = last_json("multimodel")
rows.append((f"{r['seeds'] if r else '?'} seeds together",
             f"speedup {r['speedup_ratio']:.2f}x ({r['mode']}, "
             f"{r['sequential_seconds']:.0f} s -> {r['together_seconds']:.0f} s)"
             if r else "no result", status("multimodel")))
r = last_json("overhead")
rows.append(("plugin-core overhead", f"ratio {r['overhead_ratio']:.3f}" if r else "no result",
             status("overhead")))
r = last_json("conventional")
rows.append(("vs DataLoader script", f"speedup {r['speedup_ratio']:.2f}x "
             f"({r['conventional_epoch_seconds']:.1f} s vs {r['bionic_epoch_seconds']:.1f} s)"
             if r else "no result", status("conventional")))

# The protocol, from its MLflow store: wall time, and the time of one epoch of every run.
summary = last_json("protocol")
runs, per_epoch, reached, planned = [], {}, {}, 0
try:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'protocol.db'}")
    experiment = client.get_experiment_by_name("paper")
    runs = client.search_runs([experiment.experiment_id], "tags.`bionic.kind` = 'run'",
                              max_results=1000) if experiment else []
    sweeps = client.search_runs([experiment.experiment_id], "tags.`bionic.kind` = 'sweep'",
                                max_results=1) if experiment else []
    planned = int(sweeps[0].data.tags.get("bionic.n_runs", 0)) if sweeps else len(runs)
    for run in runs:  # epoch_time of a run trained with others is its share of the step
        for m in client.get_metric_history(run.info.run_id, "epoch_time"):
            per_epoch[m.step] = per_epoch.get(m.step, 0.0) + m.value
            reached[m.step] = reached.get(m.step, 0) + 1
except Exception as exc:  # noqa: BLE001 - the table must still print
    print(f"protocol store unreadable: {type(exc).__name__}: {exc}", file=sys.stderr)
try:
    wall = float((out / "protocol.status").read_text().split()[1])
except (OSError, ValueError, IndexError):
    wall = float("nan")
if per_epoch:
    last = max(per_epoch)
    epoch_s = per_epoch[last]  # the last (warmest) epoch of every run, summed
    planned = planned or len(runs)
    partial = reached[last] < planned
    if partial:  # timed out: scale the runs that got there up to all of them
        epoch_s *= planned / reached[last]
    fixed = max(0.0, wall - sum(per_epoch.values()))
    projected = (fixed + 60 * epoch_s) / 60
    counts = summary["counts"] if summary else {}
    text = (f"{planned} runs ({counts.get('finished', '?')} finished), {epochs} epoch(s): "
            f"{wall:.0f} s; one epoch of all runs {epoch_s:.0f} s"
            f"{f' (from {reached[last]} runs)' if partial else ''}; 60 epochs ~ "
            f"{projected:.1f} min (target <= 10)")
else:
    text = "no epoch finished"
rows.append(("paper protocol", text, status("protocol")))
gpu = (out / "gpu.txt").read_text().strip()
width = max(len(r[0]) for r in rows)
print(f"\ngpu_check on {gpu} (logs: {out})")
for check, result, how in rows:
    print(f"{check:<{width}}  {result}  [{how}]")
EOF
