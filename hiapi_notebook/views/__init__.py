"""What a person sees: live status bars, media, and static bundles that survive
in a saved notebook. Views follow jobs; they never poll."""

from .media import media_bundle
from .status import TaskView, TextTaskView, show_job, use_widgets
from .text import status_line

__all__ = ["TaskView", "TextTaskView", "media_bundle", "show_job", "status_line", "use_widgets"]
