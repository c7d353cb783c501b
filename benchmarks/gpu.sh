#!/usr/bin/env bash
# SRFT vs GRPO overhead on one GPU in bf16 with a ~0.5B-parameter random-init Qwen2 shape (Qwen2.5-0.5B's layout),
# completions of 2048 tokens, plus tokens/s and MFU of the loss path. Needs torch/transformers/accelerate/peft with
# CUDA; trl and this project are installed from local wheels, so the machine needs no network:
#
#   # on a machine with network, from the repository root:
#   pip wheel --no-deps -w wheels . trl==1.16.0 math-verify==0.9.0 latex2sympy2_extended==1.11.0 \
#       antlr4-python3-runtime==4.13.2     # add datasets and its dependencies if the GPU image lacks them
#   # on the GPU machine:
#   WHEELS=wheels bash benchmarks/gpu.sh            # PEAK_TFLOPS defaults to 989 (H100 SXM, dense bf16)
#
# Prints the same table as benchmarks/overhead.py (ratios SRFT / GRPO against their targets).
set -euo pipefail
WHEELS=${WHEELS:-wheels}
PEAK_TFLOPS=${PEAK_TFLOPS:-989}
COMPLETION_LEN=${COMPLETION_LEN:-2048}
if ! python -c "import trl, srft_trainer" 2>/dev/null; then
    pip install --no-index --no-deps --find-links "$WHEELS" "$WHEELS"/*.whl
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python benchmarks/overhead.py --device cuda --bf16 --hidden 896 --intermediate 4864 --layers 24 --heads 14 \
    --kv-heads 2 --vocab 151936 --batch 16 --group 8 --completion-len "$COMPLETION_LEN" --reps 5 \
    --peak-tflops "$PEAK_TFLOPS"
