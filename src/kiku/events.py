"""`AppEvents`: what the platform tells an app's log stream about what people and the
platform did: `app[api]: Release v5 created by user jane@example.com`,
`heroku[web.1]: State changed from starting to up` (HEROKU_BEHAVIOUR §4.6).

One place for those words, so the API, the builder and the dyno manager say them alike.
Without a logplex (unit tests of one part) the events go nowhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiku.logs.logplex import Logplex
    from kiku.store.models import User


class AppEvents:
    def __init__(self, logplex: Logplex | None = None) -> None:
        self.logplex = logplex

    def api(self, app_id: str, text: str, user: User | str | None = None) -> None:
        """`app[api]: TEXT by user EMAIL`."""
        email = user if isinstance(user, str) or user is None else user.email
        self.publish(app_id, "app", "api", f"{text} by user {email}" if email else text)

    def system(self, app_id: str, process: str, text: str) -> None:
        """`heroku[PROCESS]: TEXT` (the dyno manager, the slug compiler, logplex)."""
        self.publish(app_id, "heroku", process, text)

    def publish(self, app_id: str, source: str, process: str, text: str) -> None:
        if self.logplex is not None:
            self.logplex.publish(app_id, source, process, text)
