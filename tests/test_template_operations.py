"""Operations in the template: traces, log groups, alarms on every function, queue and schedule, the dashboard."""
from __future__ import annotations

import json

import pytest

from chalicelib.core import access
from deploy import grants
from tests.conftest import ROOT
from tests.packaged import PROD_OPERATIONS, alarms_of, function_names, dimension_of, resources_of, template  # noqa: F401


def test_every_function_is_traced_and_logs_to_its_own_group_with_the_stage_retention(template):
    groups = resources_of(template, "AWS::Logs::LogGroup")
    for logical_id, function in resources_of(template, "AWS::Serverless::Function").items():
        assert function["Properties"]["Tracing"] == "Active", logical_id
        assert function["Properties"]["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-" + logical_id}
        mine = [g["Properties"] for g in groups.values()
                if g["Properties"]["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${%s}" % logical_id}]
        assert len(mine) == 1, logical_id
        assert mine[0]["RetentionInDays"] == PROD_OPERATIONS["log_retention_days"] == 30


def test_the_api_stage_is_traced_throttled_and_logs_json(template):
    api = template["Resources"]["RestAPI"]["Properties"]
    assert api["TracingEnabled"] is True
    [default] = [m for m in api["MethodSettings"] if m["HttpMethod"] == "*" and m["ResourcePath"] == "/*"]
    assert default["ThrottlingRateLimit"] == PROD_OPERATIONS["api_throttling_rate"]
    assert default["ThrottlingBurstLimit"] == PROD_OPERATIONS["api_throttling_burst"]
    log_group = api["AccessLogSetting"]["DestinationArn"]["Fn::GetAtt"][0]
    assert template["Resources"][log_group]["Properties"]["RetentionInDays"] == 30
    line = json.loads(api["AccessLogSetting"]["Format"])
    assert {"requestId", "status", "latencyMs", "resource"} <= set(line)
    assert not any("querystring" in str(v).lower() or "$input" in str(v) for v in line.values())


def test_every_alarm_notifies_the_one_topic(template):
    target = {"Fn::If": ["UseExistingAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "AlarmTopic"}]}
    for alarm in alarms_of(template):
        assert alarm["AlarmActions"] == [target], alarm["AlarmDescription"]
    assert set(template["Parameters"]) >= {"AlarmTopicArn", "AlarmEmail"}
    topic = template["Resources"]["AlarmTopic"]
    assert topic["Type"] == "AWS::SNS::Topic" and topic["Condition"] == "CreateAlarmTopic"


def test_alarms_watch_every_dlq_queue_function_schedule_and_the_api(template):
    alarms = [alarm for alarm in alarms_of(template) if "MetricName" in alarm]  # one metric each (not a query)
    queues = {r["Properties"]["QueueName"]: r["Properties"] for r in resources_of(template, "AWS::SQS::Queue").values()}
    dead_letter = {template["Resources"][q["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Properties"]
                   ["QueueName"] for q in queues.values() if "RedrivePolicy" in q}
    dead_letter |= {name for name in queues if name.endswith("_failures")}
    main = {name for name, q in queues.items() if "RedrivePolicy" in q}
    assert dead_letter and main
    for queue in dead_letter:
        [alarm] = [a for a in alarms if a["MetricName"] == "ApproximateNumberOfMessagesVisible"
                   and dimension_of(a, "QueueName") == queue]
        assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    for queue in main:
        [alarm] = [a for a in alarms if a["MetricName"] == "ApproximateAgeOfOldestMessage"
                   and dimension_of(a, "QueueName") == queue]
        assert alarm["Threshold"] == PROD_OPERATIONS["queue_age_alarm_seconds"]
    names = function_names(template)
    for logical_id in names:
        for metric in ("Errors", "Throttles"):
            assert [a for a in alarms if a["MetricName"] == metric
                    and dimension_of(a, "FunctionName") == {"Ref": logical_id}], (logical_id, metric)
    schedules = [logical_id for logical_id, f in resources_of(template, "AWS::Serverless::Function").items()
                 if any(e["Type"] == "Schedule" for e in f["Properties"].get("Events", {}).values())]
    assert schedules
    for logical_id in schedules:
        [stopped] = [a for a in alarms if a["MetricName"] == "Invocations"
                     and dimension_of(a, "FunctionName") == {"Ref": logical_id}]
        assert stopped["ComparisonOperator"] == "LessThanThreshold" and stopped["Threshold"] == 1
        assert stopped["TreatMissingData"] == "breaching"
    api = [a for a in alarms if a["Namespace"] == "AWS/ApiGateway"]
    assert {(a["MetricName"], a.get("Statistic") or a.get("ExtendedStatistic")) for a in api} == \
        {("5XXError", "Average"), ("Latency", "p99")}
    latency = next(a for a in api if a["MetricName"] == "Latency")
    assert latency["Threshold"] == PROD_OPERATIONS["api_p99_alarm_ms"]
    assert all(dimension_of(a, "ApiName") == template["Resources"]["RestAPI"]["Properties"]["Name"] for a in api)


def test_failed_schedule_runs_go_to_an_on_failure_queue(template):
    for logical_id, function in resources_of(template, "AWS::Serverless::Function").items():
        events = [e for e in function["Properties"].get("Events", {}).values() if e["Type"] == "Schedule"]
        if not events:
            assert "EventInvokeConfig" not in function["Properties"], logical_id
            continue
        on_failure = function["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
        queue_id = on_failure["Destination"]["Fn::GetAtt"][0]
        assert on_failure["Type"] == "SQS" and template["Resources"][queue_id]["Type"] == "AWS::SQS::Queue"
        assert all(e["Properties"]["DeadLetterConfig"]["Arn"] == on_failure["Destination"] for e in events)
        policies = [p["Properties"] for p in resources_of(template, "AWS::SQS::QueuePolicy").values()
                    if p["Properties"]["Queues"] == [{"Ref": queue_id}]]
        assert policies and policies[0]["PolicyDocument"]["Statement"][0]["Principal"] == \
            {"Service": "events.amazonaws.com"}


def test_the_dashboard_shows_every_function_and_queue(template):
    [dashboard] = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    json.loads(body)
    for logical_id in function_names(template):
        assert "${%s}" % logical_id in body, logical_id
    for queue in resources_of(template, "AWS::SQS::Queue").values():
        assert f'"{queue["Properties"]["QueueName"]}"' in body
    assert '"TaxiDelivery"' in body or "{TaxiDelivery,service}" in body


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_every_parameter_a_stage_names_is_one_its_functions_are_granted(stage):
    """KRT_CREDENTIALS_PARAMETER, CARGO_TOKEN_PARAMETER...: a name the grants do not cover would be refused
    by IAM in that stage only (the grants name each parameter per stage, never across stages)."""
    grants.load_all()
    granted = {name.replace("{stage}", stage)
               for grant in (*access.FUNCTION_GRANTS.values(), *access.ROUTE_GRANTS.values())
               for name in grant.parameters}
    assert not any("*" in name for name in granted), granted
    variables = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"][stage]["environment_variables"]
    named = {value for key, value in variables.items() if key.endswith("_PARAMETER")}
    assert named and named <= granted, named - granted


# --- edge limits ---------------------------------------------------------------------------------------
