import pytest

from kiku.dynos.sizes import check_formation, size_named
from kiku.errors import InvalidParams


def test_sizes_carry_herokus_memory() -> None:
    assert [
        size_named(n).memory_mb
        for n in ("free", "hobby", "standard-1x", "standard-2x", "performance-m", "performance-l")
    ] == [512, 512, 512, 1024, 2560, 14336]
    assert size_named("Standard-2X").name == "Standard-2X"
    with pytest.raises(InvalidParams, match="choose one of"):
        size_named("huge")


def test_free_and_hobby_run_one_dyno_per_type() -> None:
    check_formation({"web": (1, "hobby"), "worker": (1, "hobby")})
    with pytest.raises(InvalidParams, match="more than 1 Hobby"):
        check_formation({"web": (2, "hobby")})


def test_free_and_hobby_do_not_mix() -> None:
    with pytest.raises(InvalidParams, match="Cannot mix"):
        check_formation({"web": (1, "free"), "worker": (1, "standard-1x")})
    check_formation({"web": (1, "standard-1x"), "worker": (3, "performance-m")})
    check_formation({"web": (1, "free"), "worker": (0, "standard-1x")})


def test_a_host_too_small_for_a_size_says_so() -> None:
    with pytest.raises(InvalidParams, match="This host has 8192 MB"):
        check_formation({"web": (1, "performance-l")}, host_mb=8192)
    check_formation({"web": (1, "performance-m")}, host_mb=8192)


def test_at_most_100_dynos() -> None:
    with pytest.raises(InvalidParams, match="at most 100"):
        check_formation({"web": (60, "standard-1x"), "worker": (41, "standard-1x")})
