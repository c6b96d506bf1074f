"""``cnnspec search``: a spec's ``search:`` section run as an Optuna study.

:mod:`.study` opens the storage and the study (a journal file in the output folder by default,
or any SQLAlchemy URL) and refuses a study with another space; :mod:`.worker` runs trials, each
an ordinary run folder trained by :mod:`cnnspec.training.trainer`; :mod:`.runner` starts the
worker processes, handles Ctrl-C and dead workers; :mod:`.results` writes search.json,
best.yaml, the plots and search.html. Optuna and TensorFlow are imported only here, lazily.
"""
