"""JSON from outside (request bodies, imported files, form fields), refused when nested deeper
than any document fixledger reads: the standard parser recurses once per level, so a body of a
few kilobytes nested thousands deep would otherwise end in a RecursionError, a 500.
"""

import json

# Deeper than any change, profile or checklist document (they nest three or four levels).
MAX_DEPTH = 64


class JSONTooDeep(ValueError):
    def __init__(self, limit: int = MAX_DEPTH):
        super().__init__(f"JSON nested deeper than {limit} levels.")


def depth_within(data, limit: int = MAX_DEPTH) -> bool:
    """Whether `data` nests at most `limit` containers deep (walked without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def loads(text: str | bytes, *, limit: int = MAX_DEPTH, **kwargs):
    """json.loads that raises JSONTooDeep (a ValueError) instead of recursing without bound."""
    try:
        data = json.loads(text, **kwargs)
    except RecursionError:
        raise JSONTooDeep(limit) from None
    if not depth_within(data, limit):
        raise JSONTooDeep(limit)
    return data
