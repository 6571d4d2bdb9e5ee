"""Numbers for people: sizes with binary prefixes everywhere (KiB, MiB, GiB), as memory is
counted in pages, and relative changes with their sign."""

# U+2212, a true minus sign: it lines up with the digits and reads as one.
MINUS = "\u2212"


def format_bytes(value: float, *, signed: bool = False) -> str:
    """1.5 KiB, 61.2 MiB; with ``signed``, a sign on every change: +256.0 KiB, \u22121.0 MiB."""
    size = abs(value)
    sign = MINUS if value < 0 else ("+" if signed and value > 0 else "")
    for name, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{sign}{size / scale:,.1f} {name}"
    return f"{sign}{size:,.0f} B"


def sign_of(value: float) -> str:
    return MINUS if value < 0 else "+" if value > 0 else ""


def signed_pct(value: float | None, *, unit: bool = True) -> str:
    """A relative change with its sign always shown: "+7.2 %", "\u22120.35 %"."""
    if value is None:
        return "—"
    magnitude = abs(value)
    digits = f"{magnitude:.2f}" if magnitude < 1 else f"{magnitude:.1f}"
    text = f"{sign_of(value) if float(digits) else ''}{digits}"
    return f"{text} %" if unit else text
