"""ResNet-50 training images/s as torchvision's reference script trains it.

torchvision's ``references/classification/train.py`` with its defaults and
``--amp``: ``ImageFolder`` decoding with Pillow, ``RandomResizedCrop(224)``
and a horizontal flip per image, conversion to float and normalisation in
the loader's workers, ``DataLoader(pin_memory=True)``, NCHW, fp16 autocast
with a ``GradScaler``, SGD with momentum 0.9. The same folder, batch size,
worker count and GPU as the cnnzoo run of ``gpu_resnet50_training.sh``.
Prints one JSON line with ``images_per_second``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torchvision
from torch import nn
from torchvision.transforms import v2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder with one sub-folder per class")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20, help="steps not timed")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    transform = v2.Compose([
        v2.RandomResizedCrop(224, antialias=True),
        v2.RandomHorizontalFlip(),
        v2.PILToTensor(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])  # fmt: skip
    dataset = torchvision.datasets.ImageFolder(args.data, transform=transform)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
        pin_memory=True, drop_last=True, persistent_workers=args.workers > 0,
    )  # fmt: skip
    model = torchvision.models.resnet50(num_classes=len(dataset.classes)).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    loss_fn = nn.CrossEntropyLoss()
    step, images, started = 0, 0, None
    while step < args.warmup + args.iterations:
        for batch, targets in loader:
            if step == args.warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                started, images = time.perf_counter(), 0
            batch = batch.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
                loss = loss_fn(model(batch), targets)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            step, images = step + 1, images + batch.shape[0]
            if step == args.warmup + args.iterations:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    print(json.dumps({"images_per_second": round(images / seconds, 1), "images": images,
                      "seconds": round(seconds, 2), "torch": torch.__version__}))  # fmt: skip


if __name__ == "__main__":
    main()
