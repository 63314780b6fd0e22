from __future__ import annotations

from mlbuild.sagemaker.billing import billing_summary


def test_spot_savings_on_two_instances() -> None:
    summary = billing_summary(
        {
            "TrainingTimeInSeconds": 1000,
            "BillableTimeInSeconds": 300,
            "EnableManagedSpotTraining": True,
            "ResourceConfig": {"InstanceCount": 2},
        }
    )
    assert summary is not None and summary.savings_percent == 70.0 and summary.billable_instance_seconds == 600
    assert (
        summary.markdown()
        == "1000 s training, 300 s billable per instance (600 instance-seconds on 2 instances); managed spot saved 70.0%"
    )


def test_on_demand_has_no_savings_line() -> None:
    summary = billing_summary(
        {"TrainingTimeInSeconds": 50, "BillableTimeInSeconds": 50, "ResourceConfig": {"InstanceCount": 1}}
    )
    assert summary is not None and summary.savings_percent is None
    assert summary.markdown() == "50 s training, 50 s billable"


def test_no_times_yet() -> None:
    assert billing_summary({"TrainingJobStatus": "InProgress"}) is None
