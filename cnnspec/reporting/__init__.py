"""Looking at trained models: evaluation, pictures, predictions and the HTML run report.

- :mod:`cnnspec.reporting.run` — what a TARGET names (a run folder or a ``.keras`` file), safe
  model loading, the run's spec, class names and test data.
- :mod:`cnnspec.reporting.images` — image files and ``.npy`` arrays → model input, the way
  training prepared its images.
- :mod:`cnnspec.reporting.evaluation` — test-set evaluation (``evaluation.json``).
- :mod:`cnnspec.reporting.figures` — feature maps, filters and sample-prediction pictures.
- :mod:`cnnspec.reporting.html` — the self-contained ``report.html``.

Nothing here imports TensorFlow at import time.
"""
