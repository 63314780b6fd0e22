"""Training vs billable seconds of a finished job: what managed spot saved.

DescribeTrainingJob reports `TrainingTimeInSeconds` (the time the instances trained) and
`BillableTimeInSeconds` (what is charged: for managed spot, the spot-discounted equivalent,
so the saving is 1 - billable / training); both are per instance, so the charge for an
N-instance job is N times the billable seconds.
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional


@dataclass(frozen=True)
class BillingSummary:
    training_seconds: int
    billable_seconds: int
    instance_count: int
    spot: bool

    @property
    def savings_percent(self) -> Optional[float]:
        """How much managed spot saved, in percent of the training time; None without spot or time."""
        if not self.spot or self.training_seconds <= 0:
            return None
        return round(100.0 * (1 - self.billable_seconds / self.training_seconds), 1)

    @property
    def billable_instance_seconds(self) -> int:
        return self.billable_seconds * self.instance_count

    def markdown(self) -> str:
        """One line for the publish report."""
        line = f"{self.training_seconds} s training, {self.billable_seconds} s billable"
        if self.instance_count > 1:
            line += (
                f" per instance ({self.billable_instance_seconds} instance-seconds on {self.instance_count} instances)"
            )
        if self.savings_percent is not None:
            line += f"; managed spot saved {self.savings_percent}%"
        return line


def billing_summary(described: Mapping[str, Any]) -> Optional[BillingSummary]:
    """From a DescribeTrainingJob answer; None while the job has no times yet (still starting)."""
    training = described.get("TrainingTimeInSeconds")
    billable = described.get("BillableTimeInSeconds")
    if training is None or billable is None:
        return None
    count = int(described.get("ResourceConfig", {}).get("InstanceCount", 1) or 1)
    return BillingSummary(int(training), int(billable), count, bool(described.get("EnableManagedSpotTraining")))
