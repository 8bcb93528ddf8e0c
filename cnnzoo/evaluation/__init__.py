"""Scoring a network on a split: the loop (``evaluate``), the metrics (``metrics``) and
the per-class report (``reports``)."""
