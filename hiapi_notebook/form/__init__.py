"""The prompt form: controls built from the catalogue, a Generate button that submits
through the API, and a history of results under it."""

from .form import PromptForm

__all__ = ["PromptForm"]
