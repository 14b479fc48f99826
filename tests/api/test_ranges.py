import pytest

from kiku.api.ranges import Range, paginate_list, parse_range
from kiku.errors import RangeNotSatisfiable

FIELDS = ["id", "name"]


def test_no_header_means_id_ascending_default_page() -> None:
    assert parse_range(None, FIELDS) == Range("id", max=200)
    assert parse_range("", FIELDS, default_max=50) == Range("id", max=50)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("id ..; max=10", Range("id", max=10)),
        ("id ..; max=10;", Range("id", max=10)),
        ("name ..; order=desc,max=10;", Range("name", max=10, order="desc")),
        ("name ..; max=15, order=desc", Range("name", max=15, order="desc")),
        ("name ]foo..; max=5", Range("name", start="foo", exclusive=True, max=5)),
        ("name foo..bar", Range("name", start="foo", end="bar")),
        # heroku3 sends this malformed default; it must be read leniently.
        ("id ..; ;", Range("id")),
        ("id ..; max=5000", Range("id", max=1000)),
        ("id ..; max=0", Range("id", max=1)),
        ("id ..; max=abc", Range("id")),
        ("garbage", Range("id")),
    ],
)
def test_parse_is_lenient(header: str, expected: Range) -> None:
    assert parse_range(header, FIELDS) == expected


def test_field_the_list_cannot_sort_by_is_416_naming_the_fields() -> None:
    with pytest.raises(RangeNotSatisfiable, match="id, name"):
        parse_range("version ..; max=10", FIELDS)


def test_next_range_keeps_size_and_order() -> None:
    assert Range("id", max=2).next_range("abc") == "id ]abc..; max=2"
    assert Range("name", max=3, order="desc").next_range("b") == "name ]b..; max=3, order=desc"
    again = parse_range(Range("name", max=3, order="desc").next_range("b"), FIELDS)
    assert again == Range("name", start="b", exclusive=True, max=3, order="desc")


def test_paginate_list_walks_every_item_once() -> None:
    items = [f"item-{i:03}" for i in range(25)]
    keys = {"id": lambda item: item}
    seen: list[str] = []
    header: str | None = "id ..; max=10"
    statuses = []
    while header is not None:
        page = paginate_list(items, parse_range(header, ["id"]), keys)
        seen += page.items
        statuses.append(page.status)
        header = page.headers.get("Next-Range")
    assert seen == sorted(items)
    assert statuses == [206, 206, 200]


def test_paginate_list_descending() -> None:
    page = paginate_list(
        ["a", "b", "c"], parse_range("id ..; order=desc,max=2", ["id"]), {"id": str}
    )
    assert page.items == ["c", "b"]
    assert page.headers["Next-Range"] == "id ]b..; max=2, order=desc"
    rest = paginate_list(
        ["a", "b", "c"], parse_range(page.headers["Next-Range"], ["id"]), {"id": str}
    )
    assert rest.items == ["a"] and rest.status == 200
