"""Where each key of a TOML document is: key path -> line, for error messages.

tomllib gives values, not positions. This scanner walks a document that tomllib has already
accepted and records the line of every key, table, array-of-tables element and array element,
as paths like ("hosts", "U", "routes", 1, "via"). Unknown constructs are skipped, never fatal:
a missing entry only means an error is reported without its line.
"""

from __future__ import annotations

import re

Path = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.lines: dict[Path, int] = {}
        self.array_tables: dict[Path, int] = {}  # header path -> index of its last element

    def line(self) -> int:
        return self.text.count("\n", 0, self.pos) + 1

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def skip_space(self, newlines: bool) -> None:
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in " \t\r" or (newlines and ch == "\n"):
                self.pos += 1
            elif ch == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return

    def key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self.skip_space(False)
            ch = self.peek()
            if ch in ('"', "'"):
                parts.append(self.string())
            else:
                match = _BARE_KEY.match(self.text, self.pos)
                if not match:
                    return parts
                parts.append(match.group())
                self.pos = match.end()
            self.skip_space(False)
            if self.peek() != ".":
                return parts
            self.pos += 1

    def string(self) -> str:
        quote = self.peek(3) if self.peek(3) in ('"""', "'''") else self.peek()
        start = self.pos + len(quote)
        end = start
        while True:
            end = self.text.find(quote, end)
            if end < 0:
                self.pos = len(self.text)
                return self.text[start:]
            if quote.startswith('"') and _escaped(self.text, end):
                end += 1
                continue
            break
        self.pos = end + len(quote)
        raw = self.text[start:end]
        return raw.encode().decode("unicode_escape") if quote == '"' else raw

    def value(self, path: Path) -> None:
        self.skip_space(False)
        self.lines.setdefault(path, self.line())
        ch = self.peek()
        if ch == "{":
            self.pos += 1
            while True:
                self.skip_space(True)
                if self.peek() in ("}", ""):
                    self.pos += 1
                    return
                if self.peek() == ",":
                    self.pos += 1
                    continue
                line = self.line()
                keys = self.key()
                self.lines.setdefault((*path, *keys), line)
                self.skip_space(False)
                if self.peek() == "=":
                    self.pos += 1
                self.value((*path, *keys))
        elif ch == "[":
            self.pos += 1
            index = 0
            while True:
                self.skip_space(True)
                if self.peek() in ("]", ""):
                    self.pos += 1
                    return
                if self.peek() == ",":
                    self.pos += 1
                    index += 1
                    continue
                self.value((*path, index))
        elif ch in ('"', "'"):
            self.string()
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in ",]}\n#":
                self.pos += 1

    def resolve(self, keys: list[str]) -> Path:
        """A header's keys, with the current element index after each array-of-tables."""
        path: Path = ()
        for key in keys:
            path = (*path, key)
            if path in self.array_tables:
                path = (*path, self.array_tables[path])
        return path

    def document(self) -> dict[Path, int]:
        current: Path = ()
        while True:
            self.skip_space(True)
            if self.pos >= len(self.text):
                return self.lines
            line = self.line()
            if self.peek(2) == "[[":
                self.pos += 2
                keys = self.key()
                self.pos = self.text.find("]]", self.pos) + 2
                parent = self.resolve(keys[:-1])
                header = (*parent, keys[-1])
                index = self.array_tables.get(header, -1) + 1
                self.array_tables[header] = index
                current = (*header, index)
                self.lines.setdefault(header, line)
                self.lines[current] = line
            elif self.peek() == "[":
                self.pos += 1
                keys = self.key()
                self.pos = self.text.find("]", self.pos) + 1
                current = self.resolve(keys)
                self.lines.setdefault(current, line)
            else:
                keys = self.key()
                if not keys:  # not a key: skip the line rather than loop
                    end = self.text.find("\n", self.pos)
                    self.pos = len(self.text) if end < 0 else end
                    continue
                path = (*current, *keys)
                self.lines.setdefault(path, line)
                self.skip_space(False)
                if self.peek() == "=":
                    self.pos += 1
                self.value(path)


def _escaped(text: str, index: int) -> bool:
    backslashes = 0
    while index > 0 and text[index - 1] == "\\":
        backslashes += 1
        index -= 1
    return backslashes % 2 == 1


def key_lines(text: str) -> dict[Path, int]:
    """Line (1-based) of every key path in a TOML document tomllib has accepted."""
    return _Scanner(text).document()


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of `path`, or of its nearest ancestor that has one."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def format_path(path: Path) -> str:
    """("hosts", "U", "routes", 1, "via") -> "hosts.U.routes[1].via"."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else f'"{part}"'
            text += f".{name}" if text else name
    return text
