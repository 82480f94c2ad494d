"""What a checkpoint and a model look like from outside: summaries, advice, charts, unit views."""
import math


def json_number(x, digits: int | None = None):
    """A JSON-safe float: NaN and infinities (and None) become None; rounded
    to ``digits`` decimals when given."""
    if x is None or not math.isfinite(x):
        return None
    return float(x) if digits is None else round(float(x), digits)
