"""Labs features an app can switch on (`kiku features`, `/apps/{app}/features`)."""

from __future__ import annotations

from dataclasses import dataclass

from kiku.errors import NotFound

RUNTIME_DYNO_METADATA = "runtime-dyno-metadata"
HTTP_SESSION_AFFINITY = "http-session-affinity"
PREBOOT = "preboot"
LOG_RUNTIME_METRICS = "log-runtime-metrics"


@dataclass(frozen=True)
class Feature:
    name: str
    display_name: str
    description: str
    doc_url: str


# Only features kiku really implements are offered.
FEATURES = {
    feature.name: feature
    for feature in (
        Feature(
            RUNTIME_DYNO_METADATA,
            "Dyno Metadata",
            "Information about the app, release and dyno in the dyno's environment "
            "(HEROKU_APP_ID, HEROKU_RELEASE_VERSION, HEROKU_SLUG_COMMIT, ...), from the "
            "next release on.",
            "https://devcenter.heroku.com/articles/dyno-metadata",
        ),
        Feature(
            HTTP_SESSION_AFFINITY,
            "HTTP Session Affinity",
            "The router pins each client to one web dyno with a heroku-session-affinity "
            "cookie, while that dyno is up. Takes effect at once.",
            "https://devcenter.heroku.com/articles/session-affinity",
        ),
        Feature(
            PREBOOT,
            "Preboot",
            "On a deploy, restart or config change, new web dynos start and take traffic "
            "before the old ones get SIGTERM. Takes effect from the next dyno replacement.",
            "https://devcenter.heroku.com/articles/preboot",
        ),
        Feature(
            LOG_RUNTIME_METRICS,
            "Log runtime metrics",
            "Each running dyno's load average and memory in the app's logs every 20 seconds "
            "(heroku[web.1]: source=web.1 ... sample#memory_total=...), from the next sample "
            "on: unlike Heroku, no restart is needed.",
            "https://devcenter.heroku.com/articles/log-runtime-metrics",
        ),
    )
}


def feature_named(name: str) -> Feature:
    feature = FEATURES.get(name)
    if feature is None:
        raise NotFound(
            f"Couldn't find that feature ({name}); kiku offers {', '.join(sorted(FEATURES))}.",
            resource="app-feature",
        )
    return feature
