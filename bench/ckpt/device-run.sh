#!/usr/bin/env bash
# One prepared run on a CUDA machine (the session's H200): the client's unittests on that torch
# (the CUDA tests included) and the save() stall with GPU state; results under $OUT (or ./out).
set -u
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONPATH=python OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
{ nvidia-smi -L; python3 -c "import torch, numpy, xxhash; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  nproc; free -g | head -2; df -h /dev/shm /tmp; command -v node || echo "no node"; } 2>&1 | tee "$OUT/machine.txt"
SHM=/dev/shm
if [ "$(df --output=avail -B1G /dev/shm | tail -1)" -lt 24 ]; then
  mkdir -p /mnt/cube-shm && mount -t tmpfs -o size=40g tmpfs /mnt/cube-shm && SHM=/mnt/cube-shm
fi
echo "L1 on $SHM" | tee -a "$OUT/machine.txt"
TMPDIR=$SHM timeout 260 python3 -m unittest discover -s python/tests -v > "$OUT/unittest.log" 2>&1
echo "unittest rc=$?" | tee -a "$OUT/machine.txt"; tail -5 "$OUT/unittest.log"
grep -E "^(FAIL|ERROR):" "$OUT/unittest.log" | head -20
timeout 150 python3 bench/ckpt/stall_cuda.py --sizes 256M,1G,4G --shm "$SHM" --json "$OUT/stall_cuda.jsonl" 2>&1 | tee "$OUT/stall_cuda.log"
timeout 100 python3 bench/ckpt/stall.py --size 1G --ranks 1 --no-daemon --shm "$SHM" --json "$OUT/stall_cpu.jsonl" 2>&1 | tail -25 | tee "$OUT/stall_cpu.log"
