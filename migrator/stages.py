"""The seven stages of a Hyper-V live migration, in the order they run."""

from __future__ import annotations

import enum

__all__ = ["STAGE_LABELS", "Stage"]


class Stage(enum.StrEnum):
    """A stage of the live migration; its value is a stable machine name."""

    CONFIGURATION_TRANSFER = "configuration_transfer"
    DESTINATION_CREATION = "destination_creation"
    MEMORY_TRANSFER = "memory_transfer"
    STATE_TRANSFER = "state_transfer"
    STORAGE_TRANSFER = "storage_transfer"
    ONLINE = "online"
    NETWORK_REDIRECTION = "network_redirection"

    @property
    def label(self) -> str:
        """The human label, as the seed names the stage."""
        return STAGE_LABELS[self]

    @property
    def number(self) -> int:
        """1 for configuration transfer … 7 for network redirection."""
        return list(Stage).index(self) + 1

    @property
    def cancellable(self) -> bool:
        """Hyper-V accepts a cancel during setup and data transfer (stages 1–3)."""
        return self.number <= 3


STAGE_LABELS: dict[Stage, str] = {
    Stage.CONFIGURATION_TRANSFER: "Configuration transfer",
    Stage.DESTINATION_CREATION: "Destination VM creation",
    Stage.MEMORY_TRANSFER: "Transfer of memory pages",
    Stage.STATE_TRANSFER: "Transfer of state",
    Stage.STORAGE_TRANSFER: "Transfer of storage",
    Stage.ONLINE: "VM brought online",
    Stage.NETWORK_REDIRECTION: "Network re-direction",
}
