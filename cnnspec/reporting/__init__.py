"""Looking at trained models: evaluation, pictures, predictions and the HTML run report.

- :mod:`cnnspec.reporting.run` — what a TARGET names (a run folder or a ``.keras`` file), safe
  model loading, the run's files, spec and class names.
- :mod:`cnnspec.reporting.held_out` — a run's test data (its own split, or ``--data``), with
  :mod:`~cnnspec.reporting.run_splits`, :mod:`~cnnspec.reporting.data_option`,
  :mod:`~cnnspec.reporting.class_match` and :mod:`~cnnspec.reporting.pixel_ranges`.
- :mod:`cnnspec.reporting.model_graph` and :mod:`cnnspec.reporting.stand_in` — a loaded model
  read as a graph, and the spec of a model that has none.
- :mod:`cnnspec.reporting.predictions` — a model's answers (probabilities) for test images.
- :mod:`cnnspec.reporting.images` — image files and ``.npy`` arrays → model input, the way
  training prepared its images.
- :mod:`cnnspec.reporting.evaluation` — test-set evaluation (``evaluation.json``).
- :mod:`cnnspec.reporting.figures` — feature maps, filters and sample-prediction pictures.
- :mod:`cnnspec.reporting.html` — the self-contained ``report.html``.

Nothing here imports TensorFlow at import time.
"""
