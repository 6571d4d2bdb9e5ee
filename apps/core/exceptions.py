class Conflict(Exception):
    """The object changed since the caller last saw it; their write was not applied."""
