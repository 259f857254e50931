"""``%%hiapi`` and ``%hiapi``: registration, and one handler per subcommand.

Each handler gets typed arguments from ``grammar`` and calls the API; every user
mistake becomes one line through ``one_line_errors``. A failed *task* is shown by
its red status bar instead, so a notebook's other results still appear.
"""

from __future__ import annotations

import getpass
import html
import math
import os
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import display
from traitlets import Unicode

from .. import catalog
from ..errors import HiAPIError
from ..grammar import CellArgs, interpolate, parse_line, split_one_line
from ..session import get_session
from ..subcommands import (
    SUBCOMMAND_NAMES,
    ConfigArgs,
    ExportArgs,
    FormArgs,
    HistoryArgs,
    ModelsArgs,
    NoArgs,
    SandboxArgs,
    StatusArgs,
    help_text,
    parse_subcommand,
)
from .errors import ShownInCell, one_line, one_line_errors, usage_error

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.utils.bunch import Bunch

    from ..form import PromptForm
    from ..journal import Journal
    from ..views.history import HistoryView
    from ..views.spend import SpendView
    from ..views.tables import ModelTable

Handler = TypeVar("Handler", bound=Callable[..., Any])


def _named(marker: Callable[[str], object], name: str) -> Callable[[Handler], Handler]:
    """``cell_magic(name)`` / ``line_magic(name)`` typed as the decorator it is: IPython
    annotates the call as "a handler or a decorator", which no handler can be passed to."""
    return cast("Callable[[Handler], Handler]", marker(name))


def _shown_settings() -> dict[str, Any]:
    """The settings as ``%hiapi config`` prints them; ``frontend=auto`` says what it found."""
    from ..views import frontend

    shown = get_session().settings.public()
    if shown.get("frontend") == "auto":
        shown["frontend"] = f"auto (detected: {frontend.detect()})"
    return shown


def _looks_like_model(word: str) -> bool:
    """Model names have a dash, a slash or a dot (gpt-image-2, a/b, x-1.5); words that
    have none are mistyped subcommands, not models to pay for."""
    return catalog.get_model(word) is not None or any(c in word for c in "-/.@")


@magics_class
class HiAPIMagics(Magics):
    default_model = Unicode("", help="Model used when a %%hiapi line names none.").tag(config=True)

    def __init__(self, shell: InteractiveShell | None = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        self.observe(self._default_changed, names="default_model")
        if self.default_model:
            get_session().configure(default_model=self.default_model)

    def _default_changed(self, change: Bunch) -> None:
        get_session().configure(default_model=change["new"] or None)

    # --- %%hiapi and %hiapi MODEL prompt -------------------------------------------------------
    @property
    def _namespace(self) -> dict[str, Any]:
        """The notebook's variables."""
        # A handler runs only inside the shell that registered it (load_ipython_extension).
        assert self.shell is not None, "HiAPIMagics runs inside an IPython shell"
        return self.shell.user_ns

    @_named(cell_magic, "hiapi")
    @one_line_errors
    def hiapi_cell(self, line: str, cell: str) -> None:
        args = parse_line(line)
        prompt = interpolate(cell.strip("\n"), self._namespace).strip()
        self._run(args, prompt or None)

    def _run(self, args: CellArgs, prompt: str | None) -> None:
        from .. import api

        bound: list[Any] = []

        def bind(result: Any) -> None:
            bound.append(result)
            if args.out:
                self._namespace[args.out] = result

        try:
            api.run_cell(args, prompt, bind=bind, resolve=self._media_words)
        except KeyboardInterrupt:
            if not bound:
                raise
            raise ShownInCell(_interrupted(bound)) from None  # each bar says it runs on
        except HiAPIError as exc:
            if not bound or exc.status == 402:  # the balance and where to top up: said once, here
                raise
            raise ShownInCell(one_line(exc)) from None  # its bar (or grid cell) shows it, in red

    def _media_words(self, model: str | None, fields: dict[str, Any]) -> dict[str, Any]:
        """Words given for media fields: a notebook variable first, else a file beside the
        notebook (the kernel's folder), else as written (then refused as neither)."""
        from ..inputs import resolve_words

        return resolve_words(model, fields, self._namespace)

    @_named(line_magic, "hiapi")
    @one_line_errors
    def hiapi_line(self, line: str) -> object:
        words = line.strip().split(None, 1)
        if not words:
            self.handle_help(NoArgs())
            return None
        command, rest = words[0], (words[1] if len(words) > 1 else "")
        if command in SUBCOMMAND_NAMES:
            return getattr(self, f"handle_{command}")(parse_subcommand(command, rest))
        if not _looks_like_model(command):
            near = catalog.closest(command, SUBCOMMAND_NAMES, catalog.HINT_CUTOFF)
            hint = f"did you mean %hiapi {near}? " if near else ""
            raise usage_error(
                f"unknown subcommand {command!r}: {hint}%hiapi help lists them; "
                "a one-line generation is %hiapi MODEL [options] prompt"
            )
        options, prompt = split_one_line(rest)
        self._run(parse_line(f"{shlex.quote(command)} {options}"), prompt or None)
        return None

    # --- subcommands ----------------------------------------------------------------------------
    def handle_help(self, args: NoArgs) -> None:
        print(help_text())

    def handle_models(self, args: ModelsArgs) -> ModelTable:
        from ..views.tables import ModelTable

        needle = args.filter.lower()
        specs = [
            m for m in catalog.all_models() if not needle or needle in m.name.lower() or needle == m.kind
        ]
        if not specs:
            raise usage_error(f"no model matches {needle!r}; %hiapi models lists them all")
        return ModelTable(specs)

    def handle_status(self, args: StatusArgs) -> None:
        from .. import api

        api.watch(args.task_id)

    def handle_wait(self, args: NoArgs) -> None:
        from .. import api

        try:
            waited = api.wait()
        except KeyboardInterrupt:
            ids = ", ".join(g.task_id or "one being created" for g in api.running()) or "none"
            raise ShownInCell(
                f"Interrupted: stopped waiting, nothing was cancelled. Still running on HiAPI: {ids}. "
                "%hiapi wait waits again."
            ) from None
        if not waited:
            print("No task of this kernel is running.")
            return
        ok = sum(1 for g in waited if g.job.succeeded)
        failed = (
            f", {len(waited) - ok} did not succeed (each says why in its cell)" if ok < len(waited) else ""
        )
        print(f"Waited for {len(waited)} task{'s' if len(waited) != 1 else ''}: {ok} succeeded{failed}.")

    def handle_login(self, args: NoArgs) -> None:
        session = get_session()
        changes: dict[str, Any] = {}
        if session.using_builtin_sandbox:
            changes["base_url"] = None  # a real key means real HiAPI, not the sandbox
        # The key goes straight from the prompt into the settings: no name of ours holds it,
        # so no frame a traceback could print has it among its locals.
        session.configure(api_key=_typed_key(), **changes)
        print(
            "HiAPI key set for this session (memory only; not saved anywhere); "
            f"tasks go to {session.settings.public()['base_url']}."
        )

    def handle_config(self, args: ConfigArgs) -> None:
        session = get_session()
        shown = _shown_settings()
        if args.name == "learnt_rate":
            print(f"{args.name:18} {session.learnt_rate() or 'none (no API key set)'}")
            return
        if args.name is not None:
            if args.name not in shown:
                raise usage_error(f"unknown setting {args.name!r}; settings are: {', '.join(shown)}")
            print(f"{args.name:18} {shown[args.name]}")
            return
        if args.changes:
            session.configure(**args.changes)
            model = args.changes.get("default_model")
            if model and catalog.get_model(model) is None:
                near = catalog.suggest_model(model)
                print(
                    f"note: the catalogue does not know {model!r}"
                    + (f" (did you mean {near}?)" if near else "")
                    + "; it will be sent as is."
                )
        for key, value in _shown_settings().items():
            print(f"{key:18} {value}")
        rate = session.learnt_rate()
        if rate is not None:
            print(f"{'learnt_rate':18} {rate}")

    def handle_sandbox(self, args: SandboxArgs) -> None:
        speed = args.speed if args.speed is not None else _env_speed()
        session = get_session()
        running = session.sandbox is not None
        url = session.start_sandbox(speed=speed, balance=args.balance)
        extra = (
            " (already running; its speed and balance stay as they started: "
            "restart the kernel to change them)"
            if running and (args.speed is not None or args.balance is not None)
            else ""
        )
        if not running and args.balance is not None:
            extra += (
                f" It bills each task's estimate against a balance of ${args.balance:.2f} (402 once spent)."
            )
        _note(
            f"Using the built-in HiAPI sandbox at {url}: results are synthetic, "
            f"made locally, free, and need no key.{extra}"
        )

    def handle_connect(self, args: SandboxArgs) -> None:
        session = get_session()
        if session.using_builtin_sandbox or not (session.settings.api_key or os.environ.get("HIAPI_API_KEY")):
            self.handle_sandbox(args)
            return
        url = session.settings.public()["base_url"]
        if os.environ.get("HIAPI_SANDBOX") == "1":
            _note(f"Using the HiAPI sandbox at {url}: results are synthetic.")
        else:
            source = "%hiapi login" if session.settings.api_key else "HIAPI_API_KEY"
            _note(f"Using HiAPI at {url} with the key from {source}.")

    def handle_history(self, args: HistoryArgs) -> HistoryView:
        from ..views.history import HistoryView

        journal = _journal()
        records = journal.history(args.limit, text=args.text, model=args.model, status=args.status)
        shown = [f"“{args.text}”" if args.text else "", args.model, args.status]
        title = " · ".join(p for p in shown if p)
        settings = get_session().settings
        return HistoryView(
            records,
            title=f"history: {title}" if title else "",
            folder=journal.path.parent,
            outputs=get_session().outputs_dir,
            embed=settings.embed,
            embed_limit=int(settings.embed_limit),
        )

    def handle_export(self, args: ExportArgs) -> None:
        from ..reports import write_manifest

        journal = _journal()
        notebook = None if args.all else get_session().notebook
        chosen = journal.records(notebook=notebook)
        written = write_manifest(args.path, lambda: chosen, journal=journal.path, notebook=notebook)
        if notebook is not None:
            folder = len(journal.history(-1))
            print(
                f"Wrote {written} ({_count(len(chosen))} of {notebook}; "
                f"--all writes the folder's {_count(folder)})."
            )
        elif args.all:
            print(f"Wrote {written} ({_count(len(chosen))}: the whole folder's).")
        else:
            print(
                f"Wrote {written} ({_count(len(chosen))}: the whole folder's, as this front end "
                "does not say which notebook runs here)."
            )

    def handle_spend(self, args: NoArgs) -> SpendView:
        from .. import api
        from ..views.spend import SpendView

        session = get_session()
        note = "" if session.journal is not None else "the journal is off: this folder's spend is not known"
        return SpendView(api.spend(), limit=session.settings.spend_limit, note=note)

    def handle_form(self, args: FormArgs) -> PromptForm:
        from ..form import PromptForm

        return PromptForm(model=args.model, **self._media_words(args.model, args.fields))


def _typed_key() -> str:
    try:
        typed = getpass.getpass("HiAPI key (kept in memory only): ").strip()
    except (EOFError, OSError):
        raise usage_error(
            "no terminal to type the key in: set HIAPI_API_KEY in the environment that starts Jupyter"
        ) from None
    if not typed:
        raise usage_error("no key entered; nothing changed")
    return typed


def _journal() -> Journal:
    session = get_session()
    journal = session.journal
    if journal is None:
        raise usage_error(
            session.journal_problem or "the journal is off (%hiapi config journal=true turns it on)"
        )
    return journal


def _count(n: int) -> str:
    return f"{n} submission{'' if n == 1 else 's'}"


def _env_speed() -> float:
    text = os.environ.get("HIAPI_SANDBOX_SPEED") or "1"
    try:
        speed = float(text)
    except ValueError:
        speed = math.nan
    if not math.isfinite(speed) or not 0 < speed <= 1000:
        raise usage_error(f"HIAPI_SANDBOX_SPEED must be a number above 0 and at most 1000, not {text!r}")
    return speed


def _interrupted(bound: list[Any]) -> str:
    """What an interrupt leaves: nothing is cancelled; say what still runs and how to watch it."""
    generations = list(bound[0]) if bound and isinstance(bound[0], list) else list(bound)
    running = [g.task_id for g in generations if g.task_id and not g.done]
    creating = sum(1 for g in generations if not g.task_id and g.status == "submitting")
    ids = ", ".join(running) or "none yet"
    if creating:
        ids += f" (and {creating} being created)"
    return (
        f"Interrupted: stopped waiting, nothing was cancelled. Still running on HiAPI: {ids}. "
        "The status keeps updating here; `%hiapi status TASK_ID` watches it again, "
        "and re-running this cell re-attaches."
    )


def _note(text: str) -> None:
    display(
        {
            "text/html": '<div class="hiapi-note" style="padding:4px 8px;border-left:3px solid '
            f'#5bc0de;background:rgba(91,192,222,0.08)">{html.escape(text)}</div>',
            "text/plain": text,
        },
        raw=True,
    )


__all__ = ["HiAPIMagics"]
