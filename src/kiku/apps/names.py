"""Heroku's app-name rule (HEROKU_BEHAVIOUR §9.1) and generated `adjective-noun-1234` names."""

from __future__ import annotations

import random
import re

NAME = re.compile(r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$")
RULE = (
    "Name must start with a letter, end with a letter or digit and can only contain "
    "lowercase letters, digits, and dashes, and be 3 to 30 characters long."
)

ADJECTIVES = (
    "afternoon agile amber ancient autumn billowing bitter black blue bold brave breezy "
    "bright broad calm cold cool crimson curly damp dark dawn delicate divine dry empty "
    "evening falling fancy flat floral fragrant frosty gentle green hidden holy icy jolly "
    "late lingering little lively long lucky misty morning muddy mute nameless noisy odd "
    "old orange patient plain polished proud purple quiet rapid red restless rough round "
    "royal shiny shrill shy silent small snowy soft solitary sparkling spring square "
    "steep still summer super sweet throbbing tight tiny twilight wandering weathered "
    "white wild winter wispy withered yellow young"
).split()
NOUNS = (
    "art band bar base bird block boat bonus bread breeze brook bush butterfly cake cell "
    "cherry cloud credit darkness dawn dew disk dream dust feather field fire firefly "
    "flower fog forest frog frost glade glitter grass hall hat haze heart hill king lab "
    "lake leaf limit math meadow mode moon morning mountain mouse mud night paper pine "
    "poetry pond queen rain recipe resonance rice river salad scene sea shadow shape "
    "silence sky smoke snow snowflake sound star sun sunset surf term thunder tooth tree "
    "truth union unit violet voice water waterfall wave wildflower wind wood"
).split()


def is_valid(name: str) -> bool:
    return bool(NAME.match(name))


def generate(rng: random.Random | None = None) -> str:
    """A name like `misty-meadow-6277`; the caller retries if it is taken."""
    rng = rng or random.SystemRandom()
    digits = rng.randint(100, 99999)
    return f"{rng.choice(ADJECTIVES)}-{rng.choice(NOUNS)}-{digits}"
