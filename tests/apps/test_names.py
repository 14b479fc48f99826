import random

import pytest

from kiku.apps import names


@pytest.mark.parametrize("name", ["abc", "my-app", "a1b2", "x" * 30, "app-2"])
def test_valid_names(name: str) -> None:
    assert names.is_valid(name)


@pytest.mark.parametrize(
    "name",
    ["ab", "x" * 31, "1app", "-app", "app-", "My-App", "my_app", "my app", "app.io", ""],
)
def test_invalid_names(name: str) -> None:
    assert not names.is_valid(name)


def test_generated_names_are_adjective_noun_digits_and_valid() -> None:
    rng = random.Random(7)
    for _ in range(500):
        name = names.generate(rng)
        adjective, noun, digits = name.split("-")
        assert adjective in names.ADJECTIVES and noun in names.NOUNS
        assert digits.isdigit() and 3 <= len(digits) <= 5
        assert names.is_valid(name)


def test_rule_text_says_what_is_allowed() -> None:
    assert "start with a letter" in names.RULE
    assert "3 to 30" in names.RULE
