from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class PagedList(list[T], Generic[T]):
    """A list of results plus the token that fetches the next page (``None`` on the last)."""

    def __init__(self, items: list[T], next_page_token: str | None = None) -> None:
        super().__init__(items)
        self.next_page_token = next_page_token
