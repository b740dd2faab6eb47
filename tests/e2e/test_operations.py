"""The operations part of the template, as the emulator deployed it: every function's own role with only its
grant, its log group with the stage's retention, the schedule's on-failure destination, the alarm per DLQ."""
from __future__ import annotations

import json

from local.deployment import STACK_NAME
from local.emulator import ROOT

CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
RETENTION = CONFIG["stages"]["local"]["operations"]["log_retention_days"]


def test_every_function_logs_to_its_own_group_with_the_stage_retention(stack):
    logs = stack.client("logs")
    functions = stack.handle.state["functions"]
    assert "RouteSharingApi" in functions and "PlatformApi" in functions and "PickerOrdersUpdater" in functions
    for logical_id, name in functions.items():
        assert name == f"{STACK_NAME}-{logical_id}"  # the name the role's log permission names
        groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
        assert [g.get("retentionInDays") for g in groups if g["logGroupName"] == f"/aws/lambda/{name}"] == \
            [RETENTION], logical_id


def test_each_function_role_holds_only_its_own_grant(stack):
    lam, iam = stack.client("lambda"), stack.client("iam")

    def tables_of(logical_id: str) -> set[str]:
        role = lam.get_function_configuration(FunctionName=stack.function_name(logical_id))["Role"].split("/")[-1]
        documents = [iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
                     for name in iam.list_role_policies(RoleName=role)["PolicyNames"]]
        documents = [json.loads(d) if isinstance(d, str) else d for d in documents]
        resources = [r for d in documents for s in d["Statement"] if s["Effect"] == "Allow"
                     for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]
        return {r.split(":table/")[1] for r in resources if ":table/" in r and "/index/" not in r}

    assert tables_of("PickerOrdersUpdater") == {"configs", "leases", "picker_orders"}
    assert tables_of("SaveSharingKeys") == {"configs", "route_sharing_orders", "route_sharing_keys",
                                            "route_sharing_phone_keys"}
    # Each service's routes run in a function of their own, whose role names that service's tables alone.
    assert tables_of("RouteSharingApi") == {"configs", "route_sharing_orders", "route_sharing_keys",
                                            "route_sharing_phone_keys"}
    assert tables_of("PlatformApi") == {"configs"}


def test_failed_scheduled_runs_go_to_the_schedule_failures_queue(stack):
    config = stack.client("lambda").get_function_event_invoke_config(
        FunctionName=stack.function_name("PickerOrdersUpdater"), Qualifier="$LATEST")  # where SAM puts it
    destination = config["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination.endswith(":picker_orders_updater_failures")
    assert stack.queue_url("picker_orders_updater_failures")
