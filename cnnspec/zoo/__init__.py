"""The packaged model zoo: one spec per keras.applications family (``<family>.yaml``, its
variants as data under ``variants:``) and the block libraries they share (``blocks/``).

Specs name them ``zoo:NAME`` (a variant, e.g. ``zoo:resnet50``) and ``zoo:blocks/NAME``; the
front end finds them through :func:`cnnspec.resources.zoo_dir` (see :mod:`cnnspec.spec.zoo`).
This package holds data only.
"""
