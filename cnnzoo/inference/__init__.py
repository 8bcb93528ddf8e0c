"""Using a trained network: the :class:`~cnnzoo.inference.predictor.Predictor` that
``cnnzoo.load`` returns (``predictor``), predicting image files (``predict_files``) into
per-image rows (``predictions``) in batches that fit (``batching``), and sharing a run as a
safetensors folder (``export``) with its model card (``model_card``)."""
