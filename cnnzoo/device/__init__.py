"""Where and how tensors run: the device, precision and threads (``placement``) and the
memory layout (``memory_format``), asked the same way by training, evaluation and timing."""
