"""The state transition function (STF) of the derivatives rollup: the rules, version 1.

Read in this order: `constants` (bounds), `state` (records, leaf encodings, the root),
`transactions` (encodings), `signing` (EIP-712), `margin` (money rules), `fork` (the
one entry point, `apply`). `docs/spec.md` states the same rules in prose.
"""

from .fork import Receipt, apply
from .reasons import Reason

__all__ = ["Receipt", "Reason", "apply"]
