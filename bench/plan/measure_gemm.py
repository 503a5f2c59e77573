"""Measures bf16 GEMM throughput on the local GPU for the shapes the planner's kernel model
prices (bench/plan/gemm-check.ts compares them with gemmSeconds). Writes JSON to $OUT or stdout.

    python3 bench/plan/measure_gemm.py
"""
import json
import os
import sys

SHAPES = [
    (8192, 8192, 8192),
    (8193, 8192, 8192),
    (16384, 16384, 16384),
    (8192, 12288, 4096),
    (8192, 4096, 4096),
    (8192, 22016, 4096),
    (4096, 2304, 16384),
    (4096, 16384, 2048),
    (4096, 13312, 16384),
    (2048, 1536, 6144),
    (512, 4096, 4096),
    (64, 512, 512),
]


def main() -> None:
    try:
        import torch
    except ImportError:
        print(json.dumps({"error": "torch is not installed"}))
        return
    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device"}))
        return
    dev = torch.device("cuda")
    rows = []
    for m, n, k in SHAPES:
        a = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        b = torch.randn(k, n, device=dev, dtype=torch.bfloat16)
        for _ in range(10):
            torch.matmul(a, b)
        torch.cuda.synchronize()
        iters = max(5, min(200, int(2e13 / (2 * m * n * k))))
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            torch.matmul(a, b)
        end.record()
        torch.cuda.synchronize()
        seconds = start.elapsed_time(end) / 1e3 / iters
        rows.append({"m": m, "n": n, "k": k, "seconds": seconds, "tflops": 2 * m * n * k / seconds / 1e12})
    out = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "rows": rows,
    }
    text = json.dumps(out, indent=2)
    print(text)
    target = os.environ.get("OUT")
    if target:
        with open(os.path.join(target, "gemm.json"), "w") as f:
            f.write(text)


if __name__ == "__main__":
    sys.exit(main())
