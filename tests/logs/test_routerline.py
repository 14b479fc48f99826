"""Router lines (HEROKU_BEHAVIOUR §3.7) as metrics read them."""

from kiku.logs.routerline import RouterRequest, parse

INFO = (
    'at=info method=GET path="/" host=myapp.localhost request_id=8601b555-6a83 '
    'fwd="204.204.204.204" dyno=web.1 connect=1ms service=18ms status=200 bytes=13 '
    "protocol=http"
)


def test_info_line() -> None:
    assert parse(INFO) == RouterRequest("web", 200, 18, None)


def test_error_line_has_its_code() -> None:
    line = (
        'at=error code=H12 desc="Request timeout" method=GET path="/slow" host=a.localhost '
        'request_id=x fwd="1.2.3.4" dyno=web.2 connect=0ms service=30000ms status=503 '
        "bytes=0 protocol=http"
    )
    assert parse(line) == RouterRequest("web", 503, 30000, "H12")


def test_no_dyno_reached_counts_for_web_without_a_time() -> None:
    line = (
        'at=error code=H14 desc="No web processes running" method=GET path="/" host=a '
        'request_id=x fwd="1.2.3.4" dyno= connect= service= status=503 bytes=0 protocol=http'
    )
    assert parse(line) == RouterRequest("web", 503, None, "H14")


def test_warning_prefix_and_quoted_values_with_spaces_and_fields() -> None:
    line = (
        'sock=client at=warning code=H27 desc="Client Request Interrupted" method=POST '
        'path="/?status=500&service=9ms" host=a request_id=x fwd="1.2.3.4" dyno=web.1 '
        "connect=2ms service=7ms status=499 bytes=0 protocol=http"
    )
    # A warning is not an error; values inside the quoted path are not fields.
    assert parse(line) == RouterRequest("web", 499, 7, None)


def test_maintenance_is_info_and_blank_status_is_none() -> None:
    h80 = (
        'at=info code=H80 desc="Maintenance mode" method=GET path="/" host=a request_id=x '
        'fwd="1.2.3.4" dyno= connect= service= status=503 bytes=0 protocol=http'
    )
    assert parse(h80) == RouterRequest("web", 503, None, None)
    h24 = 'at=error code=H24 desc="Forced close" method=GET path="/" dyno=web.1 service=3ms status='
    assert parse(h24) == RouterRequest("web", None, 3, "H24")


def test_other_lines_are_not_requests() -> None:
    assert parse("State changed from starting to up") is None
    assert parse("at=info but no request here") is None
    assert parse("") is None
