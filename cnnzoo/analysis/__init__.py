"""Instruments that look inside a network: layer table, receptive fields, FLOPs,
Grad-CAM, feature maps, SE channel weights and gradient flow during training."""
