def proxied_client_ip(request) -> str | None:
    """The client address as our proxy saw it: the last entry it appended to X-Forwarded-For.

    Earlier entries come from the client and can be forged; the last one is the proxy's own.
    """
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    last = forwarded.rsplit(",", 1)[-1].strip()
    return last or request.META.get("REMOTE_ADDR")
