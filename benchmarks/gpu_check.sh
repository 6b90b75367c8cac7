#!/usr/bin/env bash
# One prepared GPU check for a session lent a device (the `device` tool): about 9 minutes on one
# H100/H200, plus about 2 for the last step (bench_memory, which can run in a call of its own);
# every result lands in $OUT as JSON/text. Run from the repository root:
#
#   run(command="bash benchmarks/gpu_check.sh", timeout_s=540, carry=[".wheels"])
#
# The device image has PyTorch but not open_clip or ema-pytorch; carry their wheels once made here:
#   .venv/bin/pip download --no-deps -d .wheels open_clip_torch ftfy wcwidth ema-pytorch
#   echo /.wheels/ >> .git/info/exclude
# Each step has its own time limit, so one slow step cannot eat the others' figures.
set -uo pipefail
OUT=${OUT:-/tmp/daclip-kit-gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
PY=${PY:-python3}
if [ -d .wheels ]; then
  $PY -m pip install -q --no-index --find-links .wheels --no-deps open_clip_torch ftfy wcwidth ema-pytorch \
    >"$OUT/pip.txt" 2>&1 || echo "pip install from .wheels failed (see pip.txt)"
fi
$PY - <<'PY' | tee "$OUT/device.txt"
import torch, platform
print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0),
      "python", platform.python_version())
PY
step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2; shift 2
  echo "== $name"
  timeout "$limit" "$@" >"$OUT/$name.txt" 2>&1; echo "exit $? ($name)" | tee -a "$OUT/$name.txt"
  tail -n 12 "$OUT/$name.txt"
}
step unet 90 $PY benchmarks/bench_unet.py --device cuda --bf16 --batch 1 8 --json "$OUT/unet.json"
step restore100 200 $PY benchmarks/bench_restore.py --device cuda --size 256 --steps 100 --batch 8 \
  --repeats 3 --json "$OUT/restore100.json"
step mrs10 120 $PY benchmarks/bench_restore.py --device cuda --size 256 --sampler mrs --steps 10 --batch 16 \
  --repeats 5 --json "$OUT/mrs10.json"
# the -fast models' sampler: the posterior strided to 10 evaluations
step fast10 120 $PY benchmarks/bench_restore.py --device cuda --size 256 --sampler irsde --steps 10 --batch 16 \
  --repeats 5 --json "$OUT/fast10.json"
# the speed ladder's student rungs (docs/samplers.md): a distilled student (`train distill`) is the same
# network run by its saved sampler (mrs, first-order ODE on the training schedule) for K evaluations
for k in 1 2 4; do
  step "student$k" 60 $PY benchmarks/bench_restore.py --device cuda --size 256 --sampler mrs --steps "$k" \
    --sampler-set order=1 --sampler-set training_schedule=true --sampler-set lambda_min=0 \
    --batch 16 --repeats 5 --settings reference,eager,bf16,batch --json "$OUT/student$k.json"
done
step encode 60 $PY benchmarks/bench_encode.py --device cuda --batch 1 8 --precision fp32 bf16 --compile \
  --json "$OUT/encode.json"
for prec in bf16 fp32; do  # the forward's estimate beside torch.cuda.max_memory_allocated
  step estimate_$prec 90 $PY benchmarks/memory_check.py --device cuda --sizes 1024 2048 --precision $prec \
    --json "$OUT/estimate_$prec.json"
done
step memory 60 $PY - <<'PY'
import json, os, torch, daclip_kit
from daclip_kit.core.pipeline import RestorationPipeline, RestoreOptions
net = daclip_kit.create_backbone("irsde-unet-plain").cuda().eval()  # the universal U-Net without its 1-token contexts
pipe = RestorationPipeline(denoiser=net, sampler=daclip_kit.create_sampler("irsde"))
rows = []
for side, budget in ((1024, 6 * 2**30), (2048, 6 * 2**30), (4096, 6 * 2**30)):
    lq = torch.rand(1, 3, side, side, device="cuda")
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    opts = RestoreOptions(steps=2, precision="bf16", max_memory=budget)
    est = pipe.estimate_memory(1, side, side, "bf16")
    tile = pipe.plan_tile(1, side, side, opts, torch.device("cuda"), "bf16")
    with torch.no_grad():
        pipe(lq, options=opts)
    peak = torch.cuda.max_memory_allocated() - base
    rows.append({"side": side, "budget_gib": budget / 2**30, "estimate_untiled_gib": est / 2**30,
                 "tile": tile, "peak_gib": peak / 2**30})
    print(rows[-1])
json.dump(rows, open(os.path.join(os.environ.get("OUT", "."), "memory.json"), "w"), indent=2)
PY
# --max-memory against the measured peak (max_memory_allocated) and the tiling overhead, 1024 and 2048 px
# (about 2 minutes; alone: run(command="python benchmarks/bench_memory.py --device cuda --json $OUT/m.json"))
step bench_memory 240 $PY benchmarks/bench_memory.py --device cuda --sizes 1024 2048 --budgets 512M,1G,2G \
  --steps 10 --json "$OUT/bench_memory.json"
echo "done: $(ls "$OUT")"
