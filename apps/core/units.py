"""Sizes for people: binary prefixes everywhere (KiB, MiB, GiB), as memory is counted in pages."""


def format_bytes(value: float, *, signed: bool = False) -> str:
    """1.5 KiB, 61.2 MiB; with ``signed``, a sign on every change: +256.0 KiB, \u22121.0 MiB."""
    size = abs(value)
    # U+2212, a true minus sign: it lines up with the digits.
    sign = "\u2212" if value < 0 else ("+" if signed and value > 0 else "")
    for name, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{sign}{size / scale:,.1f} {name}"
    return f"{sign}{size:,.0f} B"
