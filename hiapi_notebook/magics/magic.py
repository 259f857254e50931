"""``%%hiapi`` and ``%hiapi``: registration and one handler per subcommand.

User mistakes become ``UsageError``s, which IPython shows as one line with no
traceback; a failed *task* is shown by its red status bar instead, so a
notebook's other results still appear.
"""

from __future__ import annotations

import difflib
import getpass
import html
import itertools
import logging
import os
import shlex
import threading
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import display
from traitlets import Unicode

from .. import catalog
from ..errors import HiAPIError, PollTimeout, TaskFailed
from ..generation import Generation
from ..session import get_session
from .parse import USAGE, CellArgs, LineError, interpolate, parse_line, split_one_line

HELP = f"""\
%%hiapi — generate images and videos with HiAPI from a cell.

  {USAGE}
  <prompt text; {{name}} is replaced by the notebook variable `name`, {{{{ gives {{>

  MODEL           a model name (default: %hiapi config default_model=...)
  -o VAR          bind the result (a Generation; a list with -n, --sweep or --models)
  -n N            N tasks of the same request, shown as a grid
  --no-wait       return at once; status and result still appear in this cell
  --fresh         submit anew instead of reusing a recorded result
  --FIELD VALUE   any model input (VALUE is JSON when it decodes: 5, true, [..])
  --sweep F=a,b   one task per value (repeat for a cross product); --models a,b too
  --concurrency N at most N of those tasks in flight at once (default 8)
  --force         send a model or field name the catalogue thinks is a typo

%hiapi help | models [filter] | status TASK_ID | login | config [key=value ...]
%hiapi sandbox [--speed F] | connect | history [N] | export FILE | form
%hiapi MODEL prompt text        (a one-line generation)
"""


log = logging.getLogger("hiapi_notebook")
SUBCOMMANDS = (
    "help",
    "models",
    "status",
    "login",
    "config",
    "sandbox",
    "connect",
    "history",
    "export",
    "form",
)


def _looks_like_model(word: str) -> bool:
    """Model names have a dash, a slash or a dot (gpt-image-2, a/b, x-1.5); words that
    have none are mistyped subcommands, not models to pay for."""
    return catalog.get_model(word) is not None or any(c in word for c in "-/.@")


def _fail(message: str) -> UsageError:
    return UsageError(message)


@magics_class
class HiAPIMagics(Magics):
    default_model = Unicode("", help="Model used when a %%hiapi line names none.").tag(config=True)

    def __init__(self, shell=None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        self.observe(self._default_changed, names="default_model")
        if self.default_model:
            get_session().configure(default_model=self.default_model)

    def _default_changed(self, change) -> None:
        get_session().configure(default_model=change["new"] or None)

    # --- %%hiapi -------------------------------------------------------------------
    @cell_magic("hiapi")
    def hiapi_cell(self, line: str, cell: str) -> None:
        try:
            args = parse_line(line)
        except LineError as exc:
            raise _fail(str(exc)) from None
        prompt = interpolate(cell.strip("\n"), self.shell.user_ns).strip()
        self._run(args, prompt or None)

    def _run(self, args: CellArgs, prompt: str | None) -> Any:
        from ..api import build_request, start

        session = get_session()
        base = {**args.input, **args.fields}
        models = args.models or [args.model or session.settings.default_model]
        if models == [None] or models == [""]:
            raise _fail(
                "no model: name one (%%hiapi gpt-image-2/text-to-image) or set a default "
                "with %hiapi config default_model=NAME"
            )
        combos = _cross(args.sweeps)
        try:
            requests = []
            for model in models:
                for combo in combos:
                    requests.append(
                        build_request(
                            model,
                            prompt,
                            input={**base, **combo},
                            route=args.route,
                            storage=args.storage,
                            callback=args.callback,
                            timeout=args.timeout,
                            force=args.force,
                        )
                    )
            session.require_key()
        except (HiAPIError, ValueError) as exc:
            raise _fail(_one_line(exc)) from None
        grid = len(requests) > 1 or args.n > 1
        batch = None
        if grid:  # one labelled grid; at most --concurrency tasks in flight
            from ..batch import Batch
            from ..views.gallery import GenerationList
            from ..views.grid import ComparisonGrid, show_grid

            batch = Batch(
                [r for r in requests for _ in range(args.n)],
                [v for _ in requests for v in range(args.n)],
                concurrency=args.concurrency,
                fresh=args.fresh,
            )
            gens: list[Generation] = GenerationList(batch.generations)
            show_grid(
                ComparisonGrid.from_sweep(
                    gens, models=models if len(models) > 1 else (), sweeps=args.sweeps, n=args.n
                )
            )
            batch.start()
        else:
            try:
                gens = [start(requests[0], fresh=args.fresh)]
            except (HiAPIError, ValueError) as exc:
                raise _fail(_one_line(exc)) from None
        if args.out:
            self.shell.user_ns[args.out] = gens if grid else gens[0]
        if args.wait:
            self._wait(gens, args, batch)
        elif args.save:
            for gen in gens:
                gen.job.future.add_done_callback(
                    lambda _f, g=gen: threading.Thread(  # copies off the polling loop
                        target=_save_quietly, args=(g, args.save), daemon=True
                    ).start()
                )
        return None

    def _wait(self, gens: list[Generation], args: CellArgs, batch=None) -> None:
        failures: list[str] = []
        try:
            for gen in gens:
                try:
                    gen.wait()
                except TaskFailed:
                    continue  # its bar says so, in red, with the server's reason
                except PollTimeout as exc:  # the task may still finish: say how to watch it
                    failures.append(_one_line(exc))
                except HiAPIError as exc:
                    failures.append(_one_line(exc))
        except KeyboardInterrupt:
            if batch is not None:
                batch.stop("not submitted: the cell was interrupted")
            running = [g.task_id for g in gens if g.task_id and not g.done]
            creating = sum(1 for g in gens if not g.task_id and g.status == "submitting")
            ids = ", ".join(running) or "none yet"
            if creating:
                ids += f" (and {creating} being created)"
            raise _fail(
                f"Interrupted: stopped waiting, nothing was cancelled. Still running on HiAPI: "
                f"{ids}. The status keeps updating here; `%hiapi status TASK_ID` watches it "
                "again, and re-running this cell re-attaches."
            ) from None
        if args.save:
            for gen in gens:
                if gen.job.succeeded:
                    gen.save(args.save)
        if failures:
            raise _fail(failures[0] if len(set(failures)) == 1 else "; ".join(sorted(set(failures))))

    # --- %hiapi --------------------------------------------------------------------
    @line_magic("hiapi")
    def hiapi_line(self, line: str) -> Any:
        words = line.strip().split(None, 1)
        if not words:
            return self.handle_help("")
        command, rest = words[0], (words[1] if len(words) > 1 else "")
        handler = getattr(self, f"handle_{command.replace('-', '_')}", None)
        if handler is not None:
            try:
                return handler(rest)
            except (HiAPIError, ValueError) as exc:
                raise _fail(_one_line(exc)) from None
        if not _looks_like_model(command):
            near = difflib.get_close_matches(command, SUBCOMMANDS, n=1)
            hint = f"did you mean %hiapi {near[0]}? " if near else ""
            raise _fail(
                f"unknown subcommand {command!r}: {hint}%hiapi help lists them; "
                "a one-line generation is %hiapi MODEL [options] prompt"
            )
        # `%hiapi MODEL [options] prompt…`: a one-line generation
        try:
            options, prompt = split_one_line(rest)
            args = parse_line(f"{shlex.quote(command)} {options}")
        except LineError as exc:
            raise _fail(str(exc)) from None
        return self._run(args, prompt or None)

    def handle_help(self, rest: str) -> None:
        print(HELP)

    def handle_models(self, rest: str) -> Any:
        needle = rest.strip().lower()
        specs = [
            m for m in catalog.all_models() if not needle or needle in m.name.lower() or needle == m.kind
        ]
        if not specs:
            raise _fail(f"no model matches {needle!r}; %hiapi models lists them all")
        from ..views.tables import ModelTable

        return ModelTable(specs)

    def handle_status(self, rest: str) -> None:
        task_id = rest.strip()
        if not task_id:
            raise _fail("usage: %hiapi status TASK_ID (the id is shown in every status bar)")
        from .. import _loop
        from ..views import show_job

        session = get_session()
        session.require_key()
        # Ask once, here, so a wrong id is one clear line rather than a red bar.
        _loop.run_sync(session.client.tasks.retrieve(task_id))
        job = session.attach(task_id)
        show_job(job, embed_limit=session.settings.embed_limit)

    def handle_login(self, rest: str) -> None:
        key = getpass.getpass("HiAPI key (kept in memory only): ").strip()
        if not key:
            raise _fail("no key entered; nothing changed")
        session = get_session()
        changes = {"api_key": key}
        if session.using_builtin_sandbox:
            changes["base_url"] = None  # a real key means real HiAPI, not the sandbox
        session.configure(**changes)
        print(
            f"HiAPI key set for this session (memory only; not saved anywhere); "
            f"tasks go to {session.settings.public()['base_url']}."
        )

    def handle_config(self, rest: str) -> None:
        session = get_session()
        shown = session.settings.public()
        words = shlex.split(rest)
        if len(words) == 1 and "=" not in words[0]:
            if words[0] not in shown:
                raise _fail(f"unknown setting {words[0]!r}; settings are: {', '.join(shown)}")
            print(f"{words[0]:18} {shown[words[0]]}")
            return
        if words:
            changes = {}
            for item in words:
                key, eq, value = item.partition("=")
                if not eq:
                    raise _fail(f"config takes key=value pairs, not {item!r}")
                if key == "api_key":
                    raise _fail("use %hiapi login to set the key (it is never echoed)")
                changes[key] = value
            session.configure(**changes)
            model = changes.get("default_model")
            if model and catalog.get_model(model) is None:
                near = catalog.suggest_model(model)
                print(
                    f"note: the catalogue does not know {model!r}"
                    + (f" (did you mean {near}?)" if near else "")
                    + "; it will be sent as is."
                )
        for key, value in session.settings.public().items():
            print(f"{key:18} {value}")

    def handle_sandbox(self, rest: str) -> None:
        tokens = rest.split()
        speed = float(os.environ.get("HIAPI_SANDBOX_SPEED") or 1.0)
        if tokens[:1] == ["--speed"] and len(tokens) == 2:
            try:
                speed = float(tokens[1])
            except ValueError:
                raise _fail("--speed needs a number, e.g. %hiapi sandbox --speed 4") from None
        elif tokens:
            raise _fail("usage: %hiapi sandbox [--speed FACTOR]")
        session = get_session()
        running = session.sandbox is not None
        url = session.start_sandbox(speed=speed)
        extra = (
            " (already running; its speed stays as it started: restart the kernel to change it)"
            if running and tokens
            else ""
        )
        _note(
            f"Using the built-in HiAPI sandbox at {url}: results are synthetic, "
            f"made locally, free, and need no key.{extra}"
        )

    def handle_connect(self, rest: str) -> None:
        session = get_session()
        if session.using_builtin_sandbox or not (session.settings.api_key or os.environ.get("HIAPI_API_KEY")):
            self.handle_sandbox(rest)
            return
        url = session.settings.public()["base_url"]
        if os.environ.get("HIAPI_SANDBOX") == "1":
            _note(f"Using the HiAPI sandbox at {url}: results are synthetic.")
        else:
            _note(
                f"Using HiAPI at {url} with the key from "
                f"{'%hiapi login' if session.settings.api_key else 'HIAPI_API_KEY'}."
            )

    def handle_history(self, rest: str) -> Any:
        from ..views.tables import HistoryTable

        journal = get_session().journal
        if journal is None:
            raise _fail(
                get_session().journal_problem or "the journal is off (%hiapi config journal=true turns it on)"
            )
        text = rest.strip() or "20"
        if not text.isdigit() or int(text) < 1:
            raise _fail(f"usage: %hiapi history [N] (N a whole number of rows), not {text!r}")
        limit = int(text)
        return HistoryTable(journal.history(limit))

    def handle_export(self, rest: str) -> None:
        path = rest.strip()
        if not path:
            raise _fail("usage: %hiapi export FILE.json")
        journal = get_session().journal
        if journal is None:
            raise _fail(get_session().journal_problem or "the journal is off; nothing to export")
        written = journal.export(path)
        print(f"Wrote {written} ({len(journal.history(10**6))} submissions).")

    def handle_form(self, rest: str) -> Any:
        from ..form import PromptForm

        fields = parse_line(rest) if rest.strip() else CellArgs()
        return PromptForm(model=fields.model, **fields.fields)


def _cross(sweeps: dict[str, list[Any]]) -> list[dict[str, Any]]:
    if not sweeps:
        return [{}]
    names = list(sweeps)
    return [dict(zip(names, values)) for values in itertools.product(*sweeps.values())]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _save_quietly(gen: Generation, folder: str) -> None:
    """--no-wait --save: the cell has returned, so a failure can only be logged."""
    try:
        if gen.job.succeeded:
            gen.save(folder)
    except Exception as exc:
        log.warning("hiapi: could not save %s into %s: %s", gen.task_id, folder, exc)


def _note(text: str) -> None:
    display(
        {
            "text/html": f'<div class="hiapi-note" style="padding:4px 8px;border-left:3px solid '
            f'#5bc0de;background:rgba(91,192,222,0.08)">{html.escape(text)}</div>',
            "text/plain": text,
        },
        raw=True,
    )


__all__ = ["HiAPIMagics"]
