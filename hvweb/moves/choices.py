"""Choices of the live-migration records, each with a display colour."""

from hvweb.inventory.choices import ColouredChoices, colours, vocabulary
from migrator.spec import MOVE_KINDS
from migrator.stages import Stage

__all__ = ["STAGE_CHOICES", "MigrationState", "MoveKind", "ReplayState", "StageOutcome"]

#: Live or quick migration (``migrator.spec.MOVE_KINDS``).
MoveKind = vocabulary(
    "MoveKind",
    MOVE_KINDS,
    {"live": ("Live migration", "blue"), "quick": ("Quick migration", "orange")},
)


@colours(
    queued="gray", running="blue", succeeded="green", failed="red", cancelled="orange"
)
class MigrationState(ColouredChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"

    @classmethod
    def active(cls) -> tuple[str, ...]:
        """States in which a move holds its VM and its destination's memory."""
        return (cls.QUEUED, cls.RUNNING)


#: The engine's seven stages, as stored values with the seed's labels.
STAGE_CHOICES = [(stage.value, stage.label) for stage in Stage]


@colours(running="blue", finished="green", failed="red", cancelled="orange")
class StageOutcome(ColouredChoices):
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


@colours(queued="gray", done="green", failed="red")
class ReplayState(ColouredChoices):
    """Where a what-if replay of a move is: waiting for a worker, or over."""

    QUEUED = "queued", "Queued"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
