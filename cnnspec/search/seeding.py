"""The seed a worker's sampler draws with: keyed by a trial number the storage gave it alone.

A seeded search must be reproducible, so a sampler's seed comes from the section's ``seed``.
Optuna's random and TPE samplers draw from their own generator, whatever the study holds, so two
samplers with one seed draw the same values. A worker used to key its seed by its index and the
number of trials the study held when it opened it (:func:`sampler_seed`): two copies of one
command started together (each worker 0, each reading the same count) drew the same values,
trial after trial, and so did two that joined a continued study together. Neither the index nor
a count read before asking is one worker's alone. A trial number is: the storage gives each to
one worker (a database numbers a new trial in the write that inserts it, under the study row's
lock or SQLite's write lock; the journal under its file lock; a waiting trial is taken by a
checked change of its state, which the workers of one ``--out``, and those sharing one SQLite
file, also make under a lock file: :func:`cnnspec.search.worker.ask_lock`).
A slot claimed in the study's attributes would need a compare-and-set that Optuna's storages do
not offer; the trial number costs nothing and is there on every storage.

So :class:`KeyedSampler` keeps the seed a lone worker always had, keyed by the study's size when
it opened it, only when it is the worker that got the trial of that number (a lone worker
always does: it gets every trial made after it opened the study); otherwise it keys its seed by
the number of the first trial it draws values for, which is its own. Every worker's seed is then
keyed by a number no other worker's is, and a lone search draws exactly what it drew before.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any


def sampler_seed(seed: int | None, worker: int, key: int) -> int | None:
    """The seed of a sampler keyed by trial number ``key``: ``seed + worker`` for trial 0 (a new
    study), a number derived from all three otherwise; ``None`` without a seed.

    A continued study (or a worker that replaces a dead one) is keyed by a later trial than its
    start was, so it draws new values, and a search with the same history the same ones."""
    if seed is None:
        return None
    if key == 0:
        return seed + worker
    digest = hashlib.sha256(f"{seed}:{worker}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def keyed_sampler(
    optuna: Any, make: Callable[[int | None], Any], seed: int | None, worker: int, existing: int
) -> Any:
    """A sampler that draws like ``make(seed)``, its seed keyed by a trial number this worker
    holds (:class:`KeyedSampler`); ``existing``: the trials the study held when it was opened."""
    return _keyed_class(optuna)(make, seed, worker, existing)


@functools.cache
def _keyed_class(optuna: Any) -> type:
    """:class:`KeyedSampler` on Optuna's base class (Optuna is imported only when a search runs)."""

    class Keyed(KeyedSampler, optuna.samplers.BaseSampler):  # type: ignore[misc, name-defined]
        pass

    return Keyed


class KeyedSampler:
    """Optuna's sampler ``make(seed)``, seeded by a trial number this worker alone holds.

    It starts as the sampler a lone worker has always had (keyed by ``existing``). When this
    worker first draws values (a trial not enqueued with its values) for a trial other than
    number ``existing``, and did not get trial ``existing`` itself before (an enqueued retry),
    another worker got that number: the sampler is then made again, keyed by the number of the
    trial it draws for. The key is settled once; a sampler made again has drawn nothing yet."""

    def __init__(
        self, make: Callable[[int | None], Any], seed: int | None, worker: int, existing: int
    ) -> None:
        self._make = make
        self._seed = seed
        self._worker = worker
        self._existing = existing
        self._inner = make(sampler_seed(seed, worker, existing))
        self._holds_existing = False
        self._settled = seed is None  # unseeded: its generator is the system's, nobody else's
        #: The trial number the seed is keyed by, once settled (``None`` before, or unseeded).
        self.key: int | None = None

    def _settle(self, trial: Any) -> None:
        if self._settled:
            return
        self._settled = True
        self.key = self._existing if self._holds_existing else trial.number
        if self.key != self._existing:
            self._inner = self._make(sampler_seed(self._seed, self._worker, self.key))

    def before_trial(self, study: Any, trial: Any) -> None:
        # (a trial Optuna constructs is one this worker asked: before_trial runs only there)
        if trial.number == self._existing:
            self._holds_existing = True
        if "fixed_params" not in trial.system_attrs:  # its values are drawn, not enqueued
            self._settle(trial)
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
        self._settle(trial)  # (a trial enqueued with some of its values only)
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
        self._settle(trial)
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
        self._settle(trial)
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._inner.reseed_rng()
