"""Operations in the deploy template: log groups, tracing, API throttling and access logs, on-failure
destinations of schedules, alarms to one SNS topic, and a dashboard. Generated from the code like the rest.

Stage settings come from `.chalice/config.json`, `stages.<stage>.operations` (defaults below):
    log_retention_days     retention of every function's log group and of the API's access logs
    api_throttling_rate    the API stage's steady requests per second (every method)
    api_throttling_burst   the API stage's burst
    api_p99_alarm_ms       the API latency p99 above which the alarm fires, and each API function's duration p99
    queue_age_alarm_seconds  the age of a main queue's oldest message above which its alarm fires
    (the API functions' reserved concurrency: deploy/api_functions.py; the edge limits' settings: deploy/edge.py)
The alarm topic is a stack parameter: `AlarmTopicArn` (an existing topic) or else `AlarmEmail` (a topic is
created, with that address subscribed). Build time only: never imported by a Lambda.
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib.core.metrics import NAMESPACE as METRICS_NAMESPACE
from deploy.roles import Function, queue_logical_id

DEFAULTS = {
    "log_retention_days": 30,
    "api_throttling_rate": 100,
    "api_throttling_burst": 200,
    "api_p99_alarm_ms": 1000,
    "queue_age_alarm_seconds": 600,
}
# The dimension every EMF business metric carries (chalicelib/core/metrics.py: counts()).
METRICS_DIMENSION = "service"
SCHEDULE_FAILURES_SUFFIX = "_failures"
FAILURES_RETENTION_SECONDS = 14 * 24 * 3600
ALARM_PERIOD = 300

# API Gateway access log line: one JSON object, no query string or body (they may hold phones or tokens).
ACCESS_LOG_FORMAT = json.dumps({
    "requestId": "$context.requestId", "requestTime": "$context.requestTimeEpoch", "ip": "$context.identity.sourceIp",
    "method": "$context.httpMethod", "resource": "$context.resourcePath", "status": "$context.status",
    "latencyMs": "$context.responseLatency", "integrationLatencyMs": "$context.integration.latency",
    "integrationStatus": "$context.integration.status", "error": "$context.error.responseType",
    "authorizerError": "$context.authorizer.error", "responseLength": "$context.responseLength",
}, separators=(",", ":"))


def lint_ignore(*checks_and_reasons: tuple[str, str]) -> dict:
    """cfn-lint metadata that silences a rule on one resource; the reason stays beside it in the template."""
    return {"cfn-lint": {"config": {
        "ignore_checks": [check for check, _ in checks_and_reasons],
        "ignore_reasons": {check: reason for check, reason in checks_and_reasons},
    }}}


DLQ_LINT = lint_ignore(("ES6000", "a dead-letter queue: where failed messages end; it has no DLQ of its own"))
FAILURES_LINT = lint_ignore(("ES6000", "the on-failure destination of a schedule: nothing consumes it, its "
                                       "messages are the record an operator reads"))


def alarm_topic() -> dict:
    """Stack parameters, conditions and the topic every alarm notifies."""
    return {
        "Parameters": {
            "AlarmTopicArn": {"Type": "String", "Default": "",
                              "Description": "An existing SNS topic for every alarm; empty: create one"},
            "AlarmEmail": {"Type": "String", "Default": "",
                           "Description": "Subscribed to the created alarm topic (when AlarmTopicArn is empty)"},
        },
        "Conditions": {
            "UseExistingAlarmTopic": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]},
            "CreateAlarmTopic": {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]},
            "SubscribeAlarmEmail": {"Fn::And": [{"Condition": "CreateAlarmTopic"},
                                                {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}]},
        },
        "Resources": {
            "AlarmTopic": {"Type": "AWS::SNS::Topic", "Condition": "CreateAlarmTopic",
                           "Properties": {"DisplayName": {"Fn::Sub": "${AWS::StackName} alarms"}}},
            "AlarmEmailSubscription": {
                "Type": "AWS::SNS::Subscription", "Condition": "SubscribeAlarmEmail",
                "Metadata": lint_ignore(("ES7000", "an e-mail subscription: an undelivered notification would wait "
                                                   "in a queue nobody reads; the alarm's state stays in CloudWatch")),
                "Properties": {"TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email",
                               "Endpoint": {"Ref": "AlarmEmail"}},
            },
        },
    }


ALARM_TARGET = {"Fn::If": ["UseExistingAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "AlarmTopic"}]}


def alarm(description: str, namespace: str, metric: str, dimensions: dict, *, statistic: str = "Sum",
          threshold: float, comparison: str = "GreaterThanOrEqualToThreshold", periods: int = 1,
          period: int = ALARM_PERIOD, missing: str = "notBreaching") -> dict:
    properties: dict[str, Any] = {
        "AlarmDescription": description,
        "Namespace": namespace, "MetricName": metric,
        "Dimensions": [{"Name": name, "Value": value} for name, value in dimensions.items()],
        "Period": period, "EvaluationPeriods": periods, "DatapointsToAlarm": periods,
        "Threshold": threshold, "ComparisonOperator": comparison, "TreatMissingData": missing,
        "AlarmActions": [ALARM_TARGET], "OKActions": [ALARM_TARGET],
    }
    if statistic.startswith("p"):
        properties["ExtendedStatistic"] = statistic
    else:
        properties["Statistic"] = statistic
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


def schedule_seconds(expression) -> int | None:
    """A Rate's interval in seconds; None for a cron expression."""
    unit = {"MINUTES": 60, "HOURS": 3600, "DAYS": 86400}.get(getattr(expression, "unit", ""))
    return expression.value * unit if unit else None


def function_fragments(function: Function, settings: dict, on_failure_queue: str | None) -> dict:
    """Tracing, an explicit name (its log group and role policy know it without a cycle), a log group with
    retention, and for a schedule its on-failure destination (Lambda's async retries, EventBridge's DLQ)."""
    properties: dict[str, Any] = {
        "Tracing": "Active",
        "FunctionName": {"Fn::Sub": "${AWS::StackName}-" + function.logical_id},
    }
    resources: dict[str, Any] = {}
    if on_failure_queue:
        queue_arn = {"Fn::GetAtt": [queue_logical_id(on_failure_queue), "Arn"]}
        properties["EventInvokeConfig"] = {
            "MaximumRetryAttempts": 2,
            "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": queue_arn}},
        }
        event_id = function.logical_id + "Event"  # Chalice's name for a schedule's event
        properties["Events"] = {event_id: {"Properties": {"DeadLetterConfig": {"Arn": queue_arn}}}}
    resources[function.logical_id] = {"Properties": properties}
    resources[function.logical_id + "LogGroup"] = {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {"LogGroupName": {"Fn::Sub": "/aws/lambda/${%s}" % function.logical_id},
                       "RetentionInDays": settings["log_retention_days"]},
    }
    return resources


def schedule_failure_queue(function: Function) -> dict:
    """The queue failed runs of a schedule land in, and the policy that lets EventBridge put undelivered
    events there (Lambda's own on-failure delivery uses the function's role)."""
    queue = function.name + SCHEDULE_FAILURES_SUFFIX
    queue_id = queue_logical_id(queue)
    rule_id = function.logical_id + function.logical_id + "Event"  # SAM: <function><event>
    return {
        queue_id: {"Type": "AWS::SQS::Queue", "Metadata": FAILURES_LINT,
                   "Properties": {"QueueName": queue, "MessageRetentionPeriod": FAILURES_RETENTION_SECONDS}},
        queue_id + "Policy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {"Queues": [{"Ref": queue_id}], "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "ScheduleUndelivered", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
                "Condition": {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}},
            }]}},
        },
    }


def api_stage(settings: dict, method_settings: list[dict] = ()) -> dict:
    """The API stage: a name of its own per stack, tracing, throttling (stage-wide, then `method_settings`: the
    methods' own, deploy/edge.py), JSON access logs."""
    return {
        "RestAPI": {"Properties": {
            "Name": {"Ref": "AWS::StackName"},
            "TracingEnabled": True,
            "MethodSettings": [{
                "HttpMethod": "*", "ResourcePath": "/*",
                "ThrottlingRateLimit": settings["api_throttling_rate"],
                "ThrottlingBurstLimit": settings["api_throttling_burst"],
            }, *method_settings],
            "AccessLogSetting": {"DestinationArn": {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]},
                                 "Format": ACCESS_LOG_FORMAT},
        }},
        "ApiAccessLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": {"Fn::Sub": "/aws/apigateway/${AWS::StackName}-access"},
                           "RetentionInDays": settings["log_retention_days"]},
        },
    }


def api_gateway_account() -> dict:
    """API Gateway writes access logs through ONE role per account and region (its account setting).
    `ManageApiGatewayAccount=false` leaves an already configured account alone."""
    return {
        "Parameters": {"ManageApiGatewayAccount": {
            "Type": "String", "Default": "true", "AllowedValues": ["true", "false"],
            "Description": "Set API Gateway's CloudWatch role for this account and region (needed for access logs)",
        }},
        "Conditions": {"SetApiGatewayAccount": {"Fn::Equals": [{"Ref": "ManageApiGatewayAccount"}, "true"]}},
        "Resources": {
            "ApiGatewayLogsRole": {
                "Type": "AWS::IAM::Role", "Condition": "SetApiGatewayAccount",
                "Properties": {
                    "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                        "Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"},
                        "Action": "sts:AssumeRole"}]},
                    "Policies": [{"PolicyName": "ApiGatewayLogs", "PolicyDocument": {
                        "Version": "2012-10-17", "Statement": [{
                            "Sid": "WriteApiLogs", "Effect": "Allow",
                            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups",
                                       "logs:DescribeLogStreams", "logs:PutLogEvents"],
                            "Resource": {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}"
                                                    ":log-group:*"},
                        }]}}],
                },
            },
            "ApiGatewayAccount": {
                "Type": "AWS::ApiGateway::Account", "Condition": "SetApiGatewayAccount",
                "Properties": {"CloudWatchRoleArn": {"Fn::GetAtt": ["ApiGatewayLogsRole", "Arn"]}},
            },
        },
    }


def alarms(functions: list[Function], main_queues: list[str], dead_letter_queues: list[str],
           settings: dict) -> dict:
    resources: dict[str, Any] = {}
    for queue in dead_letter_queues:
        resources[queue_logical_id(queue) + "NotEmptyAlarm"] = alarm(
            f"{queue}: messages are waiting (failed messages or runs). See the runbook: DLQ not empty.",
            "AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": queue},
            statistic="Maximum", threshold=1)
    for queue in main_queues:
        resources[queue_logical_id(queue) + "OldestMessageAlarm"] = alarm(
            f"{queue}: the oldest message waits over {settings['queue_age_alarm_seconds']} s. See the runbook.",
            "AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": queue},
            statistic="Maximum", threshold=settings["queue_age_alarm_seconds"], comparison="GreaterThanThreshold")
    for function in functions:
        name = {"FunctionName": {"Ref": function.logical_id}}
        resources[function.logical_id + "ErrorsAlarm"] = alarm(
            f"{function.name}: invocations failed (unhandled error or timeout). See the runbook.",
            "AWS/Lambda", "Errors", name, threshold=1)
        resources[function.logical_id + "ThrottlesAlarm"] = alarm(
            f"{function.name}: invocations throttled (concurrency limit). See the runbook.",
            "AWS/Lambda", "Throttles", name, threshold=1)
        if function.kind == "api":
            # Which service makes the API slow: its function's own p99, on the API latency alarm's terms.
            resources[function.logical_id + "DurationP99Alarm"] = alarm(
                f"{function.name}: duration p99 over {settings['api_p99_alarm_ms']} ms for 3 minutes. See the runbook.",
                "AWS/Lambda", "Duration", name, statistic="p99", threshold=settings["api_p99_alarm_ms"],
                comparison="GreaterThanThreshold", period=60, periods=3)
        seconds = schedule_seconds(getattr(function.source, "schedule_expression", None)) \
            if function.kind == "schedule" else None
        if function.kind == "schedule":
            # Three missed runs (or a day for a cron); no data at all means it is not running: breaching.
            period = min(max(60, (seconds or 86400) // 60 * 60), 86400)
            periods = 3 if seconds else 1
            if period * periods > 86400:
                periods = max(1, 86400 // period)
            resources[function.logical_id + "NotRunningAlarm"] = alarm(
                f"{function.name}: the schedule stopped running. See the runbook.",
                "AWS/Lambda", "Invocations", name, threshold=1, comparison="LessThanThreshold",
                period=period, periods=periods, missing="breaching")
    api = {"ApiName": {"Ref": "AWS::StackName"}, "Stage": "api"}
    resources["Api5xxRateAlarm"] = alarm(
        "API: over 5 % of requests answered 5xx for 3 minutes. See the runbook.",
        "AWS/ApiGateway", "5XXError", api, statistic="Average", threshold=0.05,
        comparison="GreaterThanThreshold", period=60, periods=3)
    resources["ApiLatencyP99Alarm"] = alarm(
        f"API: p99 latency over {settings['api_p99_alarm_ms']} ms for 3 minutes. See the runbook.",
        "AWS/ApiGateway", "Latency", api, statistic="p99", threshold=settings["api_p99_alarm_ms"],
        comparison="GreaterThanThreshold", period=60, periods=3)
    return resources


def _services_with_code() -> list[str]:
    """The service packages of chalicelib, those with tables of their own (the EMF `service` dimension is the
    package name)."""
    import importlib.util
    import pkgutil

    import chalicelib

    return sorted(m.name for m in pkgutil.iter_modules(chalicelib.__path__)
                  if m.ispkg and importlib.util.find_spec(f"chalicelib.{m.name}.models") is not None)


def dashboard(functions: list[Function], main_queues: list[str], dead_letter_queues: list[str]) -> dict:
    region = "${AWS::Region}"
    api = ["ApiName", "${AWS::StackName}", "Stage", "api"]

    def widget(title: str, metrics: list, *, stat: str = "Sum", width: int = 12, view: str = "timeSeries") -> dict:
        return {"type": "metric", "width": width, "height": 6, "properties": {
            "title": title, "region": region, "stat": stat, "period": 60, "view": view, "metrics": metrics}}

    widgets = [
        widget("API requests, 4xx, 5xx", [["AWS/ApiGateway", "Count", *api], ["AWS/ApiGateway", "4XXError", *api],
                                          ["AWS/ApiGateway", "5XXError", *api]]),
        widget("API latency p50 / p99 (ms)", [["AWS/ApiGateway", "Latency", *api, {"stat": "p50"}],
                                              ["AWS/ApiGateway", "Latency", *api, {"stat": "p99"}]]),
        widget("Function errors", [["AWS/Lambda", "Errors", "FunctionName", "${%s}" % f.logical_id]
                                   for f in functions]),
        widget("Function throttles", [["AWS/Lambda", "Throttles", "FunctionName", "${%s}" % f.logical_id]
                                      for f in functions]),
        widget("Function duration p99 (ms)", [["AWS/Lambda", "Duration", "FunctionName", "${%s}" % f.logical_id]
                                              for f in functions], stat="p99"),
        widget("Schedule runs", [["AWS/Lambda", "Invocations", "FunctionName", "${%s}" % f.logical_id]
                                 for f in functions if f.kind == "schedule"] or
               [["AWS/Lambda", "Invocations"]]),
        widget("Queue: oldest message age (s)", [["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", q]
                                                 for q in main_queues], stat="Maximum"),
        widget("Queue: messages waiting", [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q]
                                           for q in main_queues], stat="Maximum"),
        widget("Dead-letter and failure queues: messages", [
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q] for q in dead_letter_queues],
            stat="Maximum", width=24),
    ]
    # EMF business metrics (chalicelib/core/metrics.py): the names are chosen where they are counted, so the
    # widgets search by dimension set: every metric a service counts appears without editing this file.
    def search(title: str, query: str, width: int = 12) -> dict:
        return {"type": "metric", "width": width, "height": 6, "properties": {
            "title": title, "region": region, "period": 300, "view": "timeSeries", "stat": "Sum",
            "metrics": [[{"expression": f"SEARCH('{query}', 'Sum', 300)", "id": "m"}]]}}

    namespace, service = METRICS_NAMESPACE, METRICS_DIMENSION
    widgets += [
        search("Queue messages done / failed / invalid, by queue",
               "{%s,%s,queue}" % (namespace, service)),
        search("Upstream failures, by upstream", '{%s,%s,upstream} MetricName="UpstreamFailures"'
               % (namespace, service)),
        search("Job runs, skips, failures and items handled, by job", "{%s,%s,job}" % (namespace, service)),
    ]
    widgets += [search(f"{name}: business counts", '{%s,%s} %s="%s"' % (namespace, service, service, name))
                for name in _services_with_code()]
    # Deptrans' product metric (counted per sender run, chalicelib/deptrans/sender.py): of the drivers on line
    # in the regions, the share KRT does not have, and the reasons, in drivers.
    lost = [[namespace, f"SupplyLost{reason}", service, "deptrans", {"yAxis": "right"}]
            for reason in ("NoId", "NoPosition", "Category", "Upstream")]
    widgets.append({"type": "metric", "width": 24, "height": 6, "properties": {
        "title": "deptrans: share of supply on line in the regions that could be lost (%), and why (drivers)",
        "region": region, "period": 300, "view": "timeSeries", "stat": "Sum", "metrics": [
            [{"expression": "100 * (online - reported) / online", "id": "lost", "label": "could be lost, %"}],
            [namespace, "SupplyOnLine", service, "deptrans", {"id": "online", "visible": False}],
            [namespace, "SupplyReported", service, "deptrans", {"id": "reported", "visible": False}], *lost]}})
    body = json.dumps({"widgets": widgets}, separators=(",", ":"))
    return {"Dashboard": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {
        "DashboardName": {"Ref": "AWS::StackName"}, "DashboardBody": {"Fn::Sub": body}}}}
