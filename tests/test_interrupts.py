"""Ctrl-C/SIGTERM during fit are deferred to a batch boundary (cnnspec/training/interrupts.py)."""

from __future__ import annotations

import contextlib
import gc
import signal
import sys

import pytest

from cnnspec.training.interrupts import InterruptGate


def test_outside_fit_a_signal_raises_at_once() -> None:
    gate = InterruptGate()
    with pytest.raises(KeyboardInterrupt):
        gate.handler(signal.SIGINT, None)


def test_inside_fit_the_first_signal_waits_for_a_check_and_a_second_raises() -> None:
    gate = InterruptGate()
    with pytest.raises(KeyboardInterrupt), gate.deferred():
        gate.handler(signal.SIGINT, None)  # deferred: nothing raised here
        assert gate.requested
        with pytest.raises(KeyboardInterrupt):
            gate.handler(signal.SIGINT, None)  # the second one does not wait
        gate.handler(signal.SIGTERM, None)
        gate.check()  # raises: leaves the block with KeyboardInterrupt
        pytest.fail("check() must raise")
    assert not gate.requested and not gate.deferring


def test_a_signal_after_the_last_check_is_raised_on_the_way_out() -> None:
    gate = InterruptGate()
    with pytest.raises(KeyboardInterrupt), gate.deferred():
        gate.handler(signal.SIGTERM, None)
    assert not gate.requested
    with gate.deferred():  # no signal: nothing raised
        gate.check()


def test_a_signal_swallowed_before_fit_is_raised_when_fit_starts() -> None:
    """Set-up code (a __del__, a TensorFlow callback) may swallow the KeyboardInterrupt raised
    outside fit: the gate remembers it, so training never starts after a Ctrl-C."""
    gate = InterruptGate()
    with contextlib.suppress(KeyboardInterrupt):  # swallowed, as a __del__ would
        gate.handler(signal.SIGINT, None)
    with pytest.raises(KeyboardInterrupt), gate.deferred():
        pytest.fail("fit must not start")
    assert not gate.requested
    with gate.deferred():  # raised once: the next fit runs
        gate.check()


def test_a_signal_swallowed_by_a_finaliser_is_not_reported_but_raised_at_the_next_check(monkeypatch) -> None:
    """Python prints an exception raised in a ``__del__`` or weakref callback ("Exception ignored
    in ...", with a traceback) and drops it; the gate remembers the signal, so that report would
    only be noise on the user's terminal (it failed a search test's no-traceback check)."""
    reports: list[type[BaseException]] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda report: reports.append(report.exc_type))
    gate = InterruptGate()

    class SignalledWhileFinalised:
        def __del__(self) -> None:
            gate.handler(signal.SIGINT, None)

    class FailsWhileFinalised:
        def __del__(self) -> None:
            raise ValueError("a finaliser's own failure")

    SignalledWhileFinalised()  # dropped at once: its __del__ runs and the signal is swallowed
    gc.collect()
    assert reports == [] and gate.requested
    FailsWhileFinalised()
    gc.collect()
    assert reports == [ValueError]  # anything else still reaches the previous hook
    with pytest.raises(KeyboardInterrupt):
        gate.check()
