"""Optional error reporting to Sentry, for web processes and workers alike.

Off unless SENTRY_DSN is set; the SDK is an optional dependency (`pip install '.[sentry]'`) and
is not even imported without a DSN. A DSN without the SDK stops the process at start: an
operator who asked for error reports must not find out at the first incident that none came.
"""

from django.core.exceptions import ImproperlyConfigured


def start_error_reporting(*, dsn: str, environment: str, release: str) -> None:
    try:
        import sentry_sdk
        from sentry_sdk.integrations.celery import CeleryIntegration
        from sentry_sdk.integrations.django import DjangoIntegration
    except ImportError:
        raise ImproperlyConfigured(
            "SENTRY_DSN is set but the Sentry SDK is not installed: "
            "pip install 'fixledger[sentry]' (or unset SENTRY_DSN)."
        ) from None
    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        release=release or None,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        # Request bodies and user details hold what users filed; errors are reported without.
        send_default_pii=False,
        traces_sample_rate=0,
    )
