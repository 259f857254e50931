"""What a person sees: live status bars, media, galleries and grids, and static
bundles that survive in a saved notebook. Views follow jobs; they never poll, and
they import nothing from the layers above them (API, session, form, magics)."""

from .frontend import use_widgets
from .render import media_bundle, status_bundle
from .status import TaskView, TextTaskView, show_job
from .text import status_line

__all__ = [
    "TaskView",
    "TextTaskView",
    "media_bundle",
    "show_job",
    "status_bundle",
    "status_line",
    "use_widgets",
]
