"""Tab completion on the ``%%hiapi`` / ``%hiapi`` line: model names, then the
chosen model's fields after ``--`` and their enum values."""
from __future__ import annotations

from .. import catalog
from .parse import _VALUE_OPTIONS

OPTIONS = ["-o", "-n", "--no-wait", "--fresh", "--route", "--input", "--callback", "--timeout",
           "--save", "--sweep", "--models", "--storage"]


def complete_line(line: str) -> list[str]:
    """Candidates for the last word of ``line`` (which starts with %hiapi or %%hiapi)."""
    words = line.split()
    if words and words[0].lstrip("%") == "hiapi":
        words = words[1:]
    ends_with_space = line.endswith((" ", "\t"))
    current = "" if ends_with_space or not words else words[-1]
    before = words if ends_with_space else words[:-1]
    model = next((w for i, w in enumerate(before) if not w.startswith("-")
                  and (i == 0 or before[i - 1] not in _VALUE_OPTIONS)
                  and not (i > 0 and before[i - 1].startswith("--")
                           and before[i - 1] not in ("--no-wait", "--fresh"))), None)
    spec = catalog.get_model(model) if model else None
    if before and before[-1].startswith("--") and spec is not None:
        field = spec.fields.get(before[-1][2:])
        if field is not None and field.enum:
            return [str(v) for v in field.enum if str(v).startswith(current)]
    if current.startswith("-"):
        names = list(OPTIONS)
        if spec is not None:
            names += [f"--{name}" for name in spec.fields if name != "prompt"]
        return [n for n in names if n.startswith(current)]
    if model is None:
        return [m for m in catalog.model_names() if m.startswith(current)]
    return []


def install(shell) -> None:
    """Register with IPython's completer for both the line and cell magic."""
    def hook(_self, event):
        return complete_line(event.line)
    for key in ("%hiapi", "%%hiapi"):
        shell.set_hook("complete_command", hook, str_key=key)
