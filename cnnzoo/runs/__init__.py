"""What a run is: its configuration (``config``), its resolved plan (``plan``), its
checkpoints (``checkpoint``), its directory and resume policy (``directory``), its
per-epoch log (``log``) and its curves (``plots``)."""
