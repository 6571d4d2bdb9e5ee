def htmx_target(request) -> str | None:
    """The id of the element an htmx request will swap, or None for a full page load."""
    if request.headers.get("HX-Request") != "true" or request.headers.get("HX-Boosted"):
        return None
    return request.headers.get("HX-Target")
