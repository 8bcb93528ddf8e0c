"""Scoring a network on a split: the loop (``evaluate``), the losses a task is trained and
scored by (``losses``), the metrics (``metrics``), the per-class report (``reports``) and a
saved network scored as ``cnnzoo eval`` does (``saved_network``)."""
