"""Readable run names (``brave-heron-42``) for runs the caller did not name."""

from __future__ import annotations

import secrets

__all__ = ["random_run_name"]

_ADJECTIVES = (
    "agile amber bold brave bright calm clever cosmic crisp daring eager fair fast fierce "
    "gentle glad grand happy honest jolly keen kind lively lucky merry mighty neat noble "
    "polite proud quick quiet rapid rare sharp shy silent sleek smart snug solid spry steady "
    "still stout swift tidy vast warm wise witty young zesty"
).split()
_NOUNS = (
    "ant badger bat bear bee bison boar carp cat cobra crab crane crow deer dove duck eagle "
    "eel elk falcon ferret finch fox frog gecko goat goose gull hare hawk heron horse ibis "
    "jay koala lark lemur lion lynx mole moose moth newt otter owl panda pike puma quail "
    "ram raven robin seal shark sloth snail swan tiger toad trout wasp whale wolf wren yak"
).split()


def random_run_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(1000)}"
