"""Reading the form's controls back into a request, and showing what is wrong beside the
control it is about (a part of ``PromptForm``, kept apart to keep each module short)."""

from __future__ import annotations

from typing import Any

from .. import api, catalog
from ..catalog import CatalogError, ModelSpec
from ..errors import HiAPIError, RequestValidationError
from ..models import Request
from .fields import UNSET, ExtraField, error_html, one_line
from .media import Control, words_of


class FormChecks:
    """What ``PromptForm`` reads and checks; the form builds the widgets named here."""

    prompt_area: Any
    prompt_error: Any
    error: Any
    _fields: dict[str, Control]
    _extras: list[ExtraField]
    _messages: dict[str, str]

    @property
    def model(self) -> str:
        raise NotImplementedError

    @property
    def spec(self) -> ModelSpec | None:
        return catalog.get_model(self.model)

    def _prompt_field(self, spec: ModelSpec | None) -> str:
        if spec is not None and "prompt" not in spec.fields and "text" in spec.fields:
            return "text"  # text-to-speech models take their words as `text`
        return "prompt"

    def _collect(self, check: bool = True) -> tuple[dict[str, Any], dict[str, str]]:
        """(input to send, errors by field; "" for the form as a whole). ``check`` adds
        the catalogue's checks to the controls' own."""
        errors: dict[str, str] = {}
        spec = self.spec
        prompt_field = self._prompt_field(spec)
        data: dict[str, Any] = {}
        prompt = self.prompt_area.value.strip()
        if prompt:
            data[prompt_field] = prompt
        for name, field in self._fields.items():
            try:
                value = field.read()
            except ValueError as exc:
                errors[name] = str(exc)
                continue
            if value is not UNSET and value != []:  # what a control shows is what is sent
                data[name] = value
        for i, extra in enumerate(self._extras):
            try:
                item = extra.read()
            except ValueError as exc:
                errors[f"\0extra{i}"] = str(exc)
                continue
            if item is not None:
                data[item[0]] = item[1]
        if check and not errors:
            try:
                catalog.validate_input(self.model, words_of(self._fields, data))
            except CatalogError as exc:
                errors[exc.field or ""] = exc.message
        return data, errors

    @property
    def value(self) -> dict[str, Any]:
        """The current settings as ``build_request`` arguments (``model``, ``prompt``, fields);
        usable in ``generate_many``. Not checked against the catalogue (``request()`` is)."""
        data, errors = self._collect(check=False)
        if errors:
            raise RequestValidationError(one_line(next(iter(errors.values()))))
        out: dict[str, Any] = {"model": self.model}
        if "prompt" in data:
            out["prompt"] = data.pop("prompt")
        out.update(data)
        return out

    def request(self, *, show_errors: bool = True) -> Request:
        """The current request, checked; invalid settings raise ``RequestValidationError``
        (a ``ValueError``) and, with ``show_errors``, show beside their field."""
        data, errors = self._collect()
        if show_errors:
            self._show_errors(errors)
        if errors:
            raise RequestValidationError(one_line(next(iter(errors.values()))))
        try:
            return api.build_request(self.model, None, input=data)
        except (HiAPIError, ValueError) as exc:
            if show_errors:  # a bad media value shows beside its field
                self._show_errors({getattr(exc, "field", None) or "": str(exc)})
            raise

    def _clear_errors(self) -> None:
        self._messages = {}
        self.prompt_error.value = ""
        self.error.value = ""
        for field in self._fields.values():
            field.error.value = ""
        for extra in self._extras:
            extra.error.value = ""

    def _show_errors(self, errors: dict[str, str]) -> None:
        self._clear_errors()
        prompt_field = self._prompt_field(self.spec)
        for name, message in errors.items():
            shown = name if name and not name.startswith("\0") else "form"
            if name.startswith("\0extra"):
                shown = self._extras[int(name[6:])].key.value.strip() or "(unnamed field)"
            self._messages[shown] = one_line(message)
            if name == prompt_field:
                self.prompt_error.value = error_html(message)
            elif name in self._fields:
                self._fields[name].error.value = error_html(message)
            elif name.startswith("\0extra"):
                self._extras[int(name[6:])].error.value = error_html(message)
            else:
                target = next((e for e in self._extras if e.key.value.strip() == name), None)
                (target.error if target is not None else self.error).value = error_html(message)

    def _form_error(self, message: str) -> None:
        self._messages["form"] = one_line(message)
        self.error.value = error_html(message)

    @property
    def errors(self) -> dict[str, str]:
        """The inline errors now shown, by field ("form" for the line beside Generate)."""
        return dict(self._messages)
