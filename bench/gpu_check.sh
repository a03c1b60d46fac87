#!/usr/bin/env bash
# Ready for the GPU: simulate a tiny sample, shard it, train at two batch sizes, DDP where there are
# two GPUs, predict; on CUDA, with one table of events/s and what the code chose (bf16 autocast,
# channels-last, pinned memory, sparse batches decoded on the device, peak GPU memory). Without a
# GPU (or with --dry) the same steps run on the CPU at tiny sizes (CI: tests/bench/test_gpu_check.py).
# The work is bench/gpu_check.py; this wrapper only picks the python and passes the arguments on.
#
#   bash bench/gpu_check.sh              # GPU mode where torch sees CUDA, else the dry mode
#   bash bench/gpu_check.sh --dry        # dry mode: under a minute on a 2-core CPU
#   bash bench/gpu_check.sh --require-gpu --traceback   # on a GPU machine: never fall back to dry
#
# Python: $PYTHON if set, else .venv/bin/python if present, else python3; src/ goes on PYTHONPATH,
# so the package need not be installed. Exit 0 when every step ran, 1 (one line) when one failed.
#
# On the device machine (one H200, 16 cores; its python3 holds a CUDA torch, h5py, numba, pandas,
# scipy, safetensors, scikit-learn, matplotlib, but not particle, hepunits or pythia8mc, and it
# cannot download), once, here in the repository root:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl pythia8mc==8.317.2 particle==1.1.0 hepunits==2.4.7
# then one device run with carry [".whl"] and timeout_s 420:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site \
#     && PYTHONUNBUFFERED=1 bash bench/gpu_check.sh --require-gpu --traceback
# Expected time there: about 2 minutes, an estimate from the sizes (it has not run on a GPU yet): 2 x 4,000
# events simulated (the numba kernels compile once, about 20 s), 40+ steps per batch size, predict
# for 2 s. The DDP row says "skipped (1 GPU)" on a one-GPU machine.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -n "${PYTHON:-}" ]]; then
    py="$PYTHON"
elif [[ -x "$root/.venv/bin/python" ]]; then
    py="$root/.venv/bin/python"
else
    py=python3
fi
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}"
exec "$py" "$root/bench/gpu_check.py" "$@"
