#!/usr/bin/env bash
# He et al.'s CIFAR-10 table (arXiv:1512.03385, Table 6 and Fig. 6) on one CUDA GPU: the
# paper's schedule (configs/resnet_cifar10.yaml; resnet110_cifar10.yaml for ResNet-110) on
# all 50k training images (--val-fraction 0: the last iteration's weights are the result).
#
# Networks in order of value: ResNet-20 and -56 and plain-20 and -56 (the degradation pair),
# then the rest of the table. The script stops when BUDGET seconds are spent; a network
# stopped on the way saves last.pt where it stood (SIGTERM), and the next call resumes it
# exactly, so repeated calls of a few minutes each walk down the table. Each finished
# network prints its metrics.json as one line. Run from the repository root:
#   DATA=folder:data/cifar10-jpeg bash benchmarks/gpu_cifar_resnet_table.sh
# Small CPU trial of the script itself (a few steps per network):
#   DEVICE=cpu PRECISION=fp32 EXTRA="--iterations 3 --batch-size 8" MODELS="resnet20 plain20" \
#     DATA=folder:PATH bash benchmarks/gpu_cifar_resnet_table.sh
set -euo pipefail
PYTHON=${PYTHON:-python}
DATA=${DATA:-cifar10}
OUT=${OUT:-runs/gpu-cifar-table}
BUDGET=${BUDGET:-540}
DEVICE=${DEVICE:-cuda}
PRECISION=${PRECISION:-bf16}
EXTRA=${EXTRA:-}
MODELS=${MODELS:-"resnet20 resnet56 plain20 plain56 resnet32 resnet44 plain32 plain44 resnet110"}

one_line() { $PYTHON -c "import json, sys; print(json.dumps(json.load(open(sys.argv[1]))))" "$1"; }
deadline=$((SECONDS + BUDGET))
for model in $MODELS; do
  run="$OUT/$model"
  if [ -f "$run/metrics.json" ]; then
    one_line "$run/metrics.json"
    continue
  fi
  left=$((deadline - SECONDS))
  if [ "$left" -le 30 ]; then
    echo "budget spent: $model and the networks after it wait for the next call"
    break
  fi
  config=configs/resnet_cifar10.yaml
  [ "$model" = resnet110 ] && config=configs/resnet110_cifar10.yaml
  start=--force
  [ -f "$run/last.pt" ] && start=--resume
  # shellcheck disable=SC2086  # EXTRA is a list of flags
  timeout --signal=TERM --kill-after=60 "$left" \
    $PYTHON -m cnnzoo train "$model" --config "$config" --data "$DATA" --val-fraction 0 \
    --device "$DEVICE" --precision "$PRECISION" --quiet --no-plots --out "$run" $start $EXTRA \
    || echo "$model stopped after ${left}s; the next call resumes it from $run/last.pt"
  if [ -f "$run/metrics.json" ]; then one_line "$run/metrics.json"; fi
done
