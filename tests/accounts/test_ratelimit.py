from kiku.accounts.ratelimit import RateLimiter
from kikutest import FakeClock


def test_allows_the_whole_budget_then_refuses() -> None:
    limiter = RateLimiter(4500, FakeClock())
    results = [limiter.take("u")[0] for _ in range(4500)]
    assert all(results)
    assert limiter.take("u") == (False, 0)


def test_remaining_counts_down() -> None:
    limiter = RateLimiter(4500, FakeClock())
    assert limiter.remaining("u") == 4500
    assert limiter.take("u") == (True, 4499)
    assert limiter.take("u") == (True, 4498)
    assert limiter.remaining("u") == 4498


def test_refills_at_75_a_minute() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4500, clock)
    for _ in range(4500):
        limiter.take("u")
    clock.advance(60)
    allowed = [limiter.take("u")[0] for _ in range(76)]
    assert allowed.count(True) == 75


def test_accounts_are_limited_separately() -> None:
    limiter = RateLimiter(2, FakeClock())
    assert limiter.take("a")[0] and limiter.take("a")[0]
    assert not limiter.take("a")[0]
    assert limiter.take("b") == (True, 1)


def test_a_full_hour_restores_the_full_budget() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock)
    for _ in range(10):
        limiter.take("u")
    clock.advance(3600)
    assert limiter.remaining("u") == 10
