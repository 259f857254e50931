"""Tab completion on the ``%%hiapi`` / ``%hiapi`` line: subcommands, model names,
then the chosen model's fields after ``--`` and their allowed values. Every name
comes from ``grammar``'s tables and the catalogue. Registered as an IPython matcher
that, on these lines, suppresses the others (Python names like ``abs`` are never
what comes after ``%%hiapi MODEL --``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import catalog
from ..grammar import model_word, option_names
from ..subcommands import SUBCOMMAND_NAMES

if TYPE_CHECKING:
    from IPython.core.completer import CompletionContext, SimpleMatcherResult
    from IPython.core.interactiveshell import InteractiveShell


def complete_line(line: str) -> list[str]:
    """Candidates for the last word of ``line`` (which starts with %hiapi or %%hiapi)."""
    words = line.split()
    cell = bool(words) and words[0] == "%%hiapi"
    if words and words[0].lstrip("%") == "hiapi":
        words = words[1:]
    ends_with_space = line.endswith((" ", "\t"))
    current = "" if ends_with_space or not words else words[-1]
    before = words if ends_with_space else words[:-1]
    if not cell and before[:1] == ["config"]:
        from ..config import Settings

        return [f"{name}=" for name in Settings().public() if name.startswith(current)]
    if not cell and before[:1] and before[0] in SUBCOMMAND_NAMES:
        return []
    model = model_word(before)
    spec = catalog.get_model(model) if model else None
    if before and before[-1].startswith("--") and spec is not None:
        field = spec.fields.get(before[-1][2:])
        if field is not None and field.enum:
            return [str(v) for v in field.enum if str(v).startswith(current)]
    if current.startswith("-"):
        names = option_names()
        if spec is not None:
            names = [f"--{name}" for name in spec.fields if name != "prompt"] + names
        return [n for n in names if n.startswith(current)]
    if model is None:
        firsts = ([] if cell else list(SUBCOMMAND_NAMES)) + catalog.model_names()
        return [m for m in firsts if m.startswith(current)]
    return []


def install(shell: InteractiveShell) -> None:
    """Register the matcher with IPython's completer: the Matcher API v2 where IPython
    has it (8.6 on), else the older line matchers (IPython 7.34, as Colab pins it)."""
    try:
        from IPython.core.completer import SimpleCompletion, context_matcher
    except ImportError:
        _install_line_matcher(shell)
        return

    @context_matcher(identifier="hiapi_notebook")
    def hiapi_matcher(context: CompletionContext) -> SimpleMatcherResult:
        line = context.text_until_cursor.rsplit("\n", 1)[-1]
        if not line.lstrip().startswith(("%hiapi", "%%hiapi")):
            return {"completions": [], "suppress": False}
        current = "" if line.endswith((" ", "\t")) else (line.split() or [""])[-1]
        found = complete_line(line.lstrip())
        return {
            "completions": [SimpleCompletion(text=c, type="hiapi") for c in found],
            "suppress": bool(found),
            "matched_fragment": current,
            "ordered": True,
        }

    shell.Completer.custom_matchers.append(hiapi_matcher)


def _install_line_matcher(shell: InteractiveShell) -> None:
    """IPython before 8.6: a "magic argument matcher" gets the line; what it returns is
    offered alone (as ``suppress`` does), in place of IPython's current token, which
    stops at its delimiters (``16:9`` is two tokens there): each candidate is cut to match."""
    completer: Any = shell.Completer

    def hiapi_line_matcher(line_buffer: str) -> list[str]:
        line = completer.text_until_cursor.rsplit("\n", 1)[-1]
        if not line.lstrip().startswith(("%hiapi", "%%hiapi")):
            return []
        current = "" if line.endswith((" ", "\t")) else (line.split() or [""])[-1]
        token = completer.splitter.split_line(line, len(line))
        cut = len(current) - len(token) if current.endswith(token) else 0
        return [c[cut:] for c in complete_line(line.lstrip())]

    completer.magic_arg_matchers.insert(0, hiapi_line_matcher)
