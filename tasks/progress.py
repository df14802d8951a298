"""A progress artifact per customer and flow: each runbook step done, waiting, or next."""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact

from tasks.contracts import progress_artifact

ICONS = {
    "done": "✅ done",
    "waiting": "⏳ waiting",
    "working": "▶️ in progress",
    "next": "· next",
    "skipped": "– skipped",
}


class Progress:
    """Publish the step table whenever a step changes, so a CSM sees where every customer stands."""

    def __init__(self, flow_name: str, company: str, customer_key: str, steps: list[str]):
        self.key = progress_artifact(flow_name, customer_key)
        self.title = f"{company}: {flow_name}"
        self.steps = steps
        self.status = ["next"] * len(steps)
        self.notes = [""] * len(steps)
        self._published = ""

    def mark(self, step: int, status: str, note: str = "") -> None:
        """Set step (1-based) to done / waiting / working / skipped, with an optional note."""
        self.status[step - 1] = status
        self.notes[step - 1] = note
        rows = [
            f"| {i} | {name} | {ICONS[s]} | {n} |"
            for i, (name, s, n) in enumerate(zip(self.steps, self.status, self.notes, strict=True), start=1)
        ]
        markdown = (
            f"### {self.title}\n\n| # | step | status | note |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
        )
        if markdown != self._published:
            create_markdown_artifact(key=self.key, markdown=markdown, description=self.title)
            self._published = markdown
