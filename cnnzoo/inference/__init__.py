"""Using a trained network: loading it from a run, a checkpoint or an exported folder,
predicting files, and sharing it with a model card."""
