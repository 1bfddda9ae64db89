"""Token buckets (429) and the circuit breaker (503)."""

from __future__ import annotations

import pytest
import trio

from plugins.scaler_reactive.admission import Admission
from plugins.scaler_reactive.config import BreakerConfig

from .helpers import make_version


def limited(max_tokens: int, per_fill: int, interval_ms: int):
    rate = {"maxTokenCount": max_tokens, "tokensPerFill": per_fill, "fillInterval": interval_ms}
    return make_version(rateLimit=rate).profile


async def test_token_bucket_gives_exactly_the_configured_successes(autojump_clock):
    admission = Admission()
    profile = limited(5, 2, 1000)
    results = [admission.admit(profile) for _ in range(12)]
    assert results.count(None) == 5
    rejection = results[-1]
    assert (rejection.status, rejection.reason) == (429, "rate_limited")
    assert rejection.retry_after == pytest.approx(1.0)
    await trio.sleep(0.6)
    assert admission.admit(profile).retry_after == pytest.approx(0.4)
    await trio.sleep(0.4)  # one fill: two more tokens
    assert [admission.admit(profile) is None for _ in range(3)] == [True, True, False]
    await trio.sleep(10)  # refills cap at maxTokenCount
    assert sum(admission.admit(profile) is None for _ in range(10)) == 5
    assert admission.statistics()["rejections"]["rate_limited"] == 7 + 1 + 1 + 5


async def test_functions_without_rate_limit_are_admitted(autojump_clock):
    admission = Admission()
    profile = make_version().profile
    assert all(admission.admit(profile) is None for _ in range(1000))


async def test_changed_rate_limit_resets_the_bucket(autojump_clock):
    admission = Admission()
    for _ in range(3):
        admission.admit(limited(3, 1, 1000))
    assert admission.admit(limited(3, 1, 1000)) is not None
    assert admission.admit(limited(4, 1, 1000)) is None


async def test_breaker_opens_after_five_bad_checks_and_closes_after_three(autojump_clock):
    admission = Admission(BreakerConfig())
    load = {"pending": 0}
    admission.breaker.gauge = lambda: (5, load["pending"])
    admission.breaker.load = lambda: 0.5
    profile = make_version().profile
    async with trio.open_nursery() as nursery:
        await nursery.start(admission.breaker.run)
        await trio.sleep(0.5)
        load["pending"] = 1001
        await trio.sleep(4)  # four bad checks
        assert admission.admit(profile) is None
        await trio.sleep(1)  # the fifth
        rejection = admission.admit(profile)
        assert (rejection.status, rejection.reason) == (503, "circuit_open")
        assert "pending 1001 > 1000" in rejection.message
        assert rejection.retry_after == 3.0
        load["pending"] = 0
        await trio.sleep(2)
        assert admission.admit(profile) is not None  # two healthy checks: still open
        await trio.sleep(1)
        assert admission.admit(profile) is None
        nursery.cancel_scope.cancel()


def test_breaker_counts_active_plus_pending_and_load():
    admission = Admission(BreakerConfig(open_after=1, close_after=1, max_load=10.0))
    admission.breaker.gauge = lambda: (9999, 2)
    admission.breaker.load = lambda: 1.0
    assert admission.breaker.check() is True
    admission.breaker.gauge = lambda: (0, 0)
    assert admission.breaker.check() is False
    admission.breaker.load = lambda: 10.5
    assert admission.breaker.check() is True
    assert admission.breaker.last["reasons"] == ["load average 10.5 > 10.0"]
    # Off by default: the load average is machine-wide.
    default = Admission(BreakerConfig(open_after=1, close_after=1))
    default.breaker.gauge = lambda: (0, 0)
    default.breaker.load = lambda: 99.0
    assert default.breaker.check() is False
