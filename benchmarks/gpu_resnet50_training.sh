#!/usr/bin/env bash
# ResNet-50 training images/s on one CUDA GPU, cnnzoo against torchvision's reference settings.
#
# Both read the same synthetic JPEG folder (ImageNet-like 500x375 images, written once by
# `cnnzoo make-folder`), at batch BATCH with WORKERS loader processes:
#   cnnzoo:      streamed loader (libjpeg-turbo, uint8 batches, normalised once per batch),
#                channels_last, bf16 autocast and torch.compile (PRECISION, COMPILE);
#   torchvision: benchmarks/torchvision_reference.py, its reference train.py's defaults
#                with --amp (Pillow, per-image float transforms, NCHW, fp16 + GradScaler).
# Prints both JSON results and the ratio. Run from the repository root:
#   bash benchmarks/gpu_resnet50_training.sh
# Small CPU trial of the script itself:
#   DEVICE=cpu IMAGES=64 CLASSES=4 ITERS=2 BATCH=8 WORKERS=2 COMPILE=0 bash benchmarks/gpu_resnet50_training.sh
set -euo pipefail
PYTHON=${PYTHON:-python}
OUT=${OUT:-runs/gpu-resnet50}
IMAGES=${IMAGES:-20000}
ITERS=${ITERS:-600}  # cnnzoo's images/s includes the one-off compile time: many steps keep it small
BATCH=${BATCH:-256}
WORKERS=${WORKERS:-$(nproc)}
DEVICE=${DEVICE:-cuda}
PRECISION=${PRECISION:-bf16}
COMPILE=${COMPILE:-1}

if [ ! -d "$OUT/folder" ]; then
  $PYTHON -m cnnzoo make-folder "$OUT/folder" --images "$IMAGES" --classes "${CLASSES:-100}" --size 375,500 \
    --workers "$WORKERS"
fi
compile_flag=$([ "$COMPILE" = 1 ] && echo --compile || echo --no-compile)
$PYTHON -m cnnzoo train resnet50 --data "folder:$OUT/folder" --data-mode stream \
  --image-size 224 --in-channels 3 --batch-size "$BATCH" --iterations "$ITERS" \
  --workers "$WORKERS" --device "$DEVICE" --precision "$PRECISION" --channels-last \
  $compile_flag --augment basic --no-plots --quiet --out "$OUT/cnnzoo" --force
ours=$($PYTHON -c "import json; print(json.load(open('$OUT/cnnzoo/metrics.json'))['images_per_second'])")
theirs_json=$($PYTHON benchmarks/torchvision_reference.py --data "$OUT/folder" \
  --batch-size "$BATCH" --workers "$WORKERS" --iterations "$ITERS" --device "$DEVICE")
echo "$theirs_json"
theirs=$($PYTHON -c "import json, sys; print(json.loads(sys.argv[1])['images_per_second'])" "$theirs_json")
$PYTHON -c "print(f'cnnzoo {float($ours):.1f} img/s, torchvision reference {float($theirs):.1f} img/s: {float($ours) / float($theirs):.2f}x')"
