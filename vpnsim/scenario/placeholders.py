"""`{name}` in a program's argv: what it stands for, and which names a file may use.

`{python}` is vpnsim's Python; a `[tls]` table adds the TLS lab's files (`tlslab.make_files`).
Only these names are replaced, anywhere in an argument (`--ca={ca}`); other braces, as in a
`python -c` program, are left alone. An argument that is a lone `{word}` naming nothing is a
typo, reported when the file is loaded.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping

PYTHON = "python"
TLS = ("pki", "ca", "cert", "key", "users", "other_ca", "impostor_cert", "impostor_key")
KNOWN = (PYTHON, *TLS)
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def placeholder_problems(argv: Iterable[str], has_tls: bool) -> list[tuple[int, str]]:
    """(argument index, message) for each placeholder the file cannot fill."""
    problems = []
    for index, part in enumerate(argv):
        lone = re.fullmatch(r"\{([A-Za-z_]\w*)\}", part)
        if lone and lone.group(1) not in KNOWN:
            known = ", ".join("{" + n + "}" for n in KNOWN)
            problems.append((index, f"unknown placeholder {part!r} (known: {known})"))
            continue
        needs = sorted({n for n in _PLACEHOLDER.findall(part) if n in TLS})
        if needs and not has_tls:
            problems.append(
                (index, f"{{{needs[0]}}} needs a [tls] table (the lab's PKI and logins)")
            )
    return problems


def fill(argv: Iterable[str], values: Mapping[str, str]) -> list[str]:
    """`argv` with each known `{name}` replaced; `{python}` is always this Python."""
    given = {PYTHON: sys.executable, **values}

    def replace(match: re.Match[str]) -> str:
        return given.get(match.group(1), match.group(0))

    return [_PLACEHOLDER.sub(replace, part) for part in argv]
