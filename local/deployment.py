"""Package the app and deploy it as a CloudFormation stack on the emulator: the same template that goes to AWS.

The app is packaged by deploy/package.py (`chalice package --stage local` merged with the generated resources).
The emulator's event source mappings and schedules then run the handlers; nothing here pumps events. Also what
`fire` and `logs` need: a schedule's event, the functions' names, their log groups.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import http.client
import json
import pathlib
import time
import urllib.parse
import uuid

from deploy.package import package
from local.emulator import REGION, ROOT, STATE_DIR, aws_client, emulator_url, log, signed_headers, wait_for

BUILD_DIR = ROOT / "build" / "local"
DEMO_CONFIGS = ROOT / "local" / "demo_configs"
STACK_NAME = "taxi-delivery-local"
BUCKET = "taxi-delivery-local-deploy"
# Secrets the local stage reads from SSM Parameter Store (SecureString), as deployed stages do; the values
# are the upstream simulator's (local/simulator/upstreams/krt.py). Seeded before every deploy, never overwritten.
LOCAL_PARAMETERS = {
    "/taxi-delivery/local/krt-credentials": json.dumps({"client_id": "taxi-local", "client_secret": "local-secret"}),
}



def _upload(zip_path: pathlib.Path) -> str:
    s3 = aws_client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(Bucket=BUCKET)
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()[:16]
    # A fresh key every deploy: same key + same template is "No updates are to be performed".
    key = f"deployment-{digest}-{uuid.uuid4().hex[:8]}.zip"
    s3.upload_file(str(zip_path), BUCKET, key)
    return f"s3://{BUCKET}/{key}"


def stack_status() -> str | None:
    try:
        return aws_client("cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"][0]["StackStatus"]
    except Exception as error:  # does not exist
        if "does not exist" in str(error):
            return None
        raise


def _enable_ttl(template: dict) -> None:
    """The emulator ignores TimeToLiveSpecification in templates: enable TTL after deploy (once)."""
    dynamodb = aws_client("dynamodb")
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        spec = properties.get("TimeToLiveSpecification")
        if resource.get("Type") != "AWS::DynamoDB::Table" or not spec:
            continue
        table = properties["TableName"]
        current = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            if current.get("AttributeName") == spec["AttributeName"]:
                continue
            # The model's TTL attribute changed: as on AWS, disable the old one before enabling the new one.
            dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification={
                "AttributeName": current["AttributeName"], "Enabled": False})
        dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification=spec)


def seed_parameters() -> None:
    """Put the local stage's SSM SecureStrings into the emulator (a value set by hand is kept)."""
    ssm = aws_client("ssm")
    for name, value in LOCAL_PARAMETERS.items():
        # Asked first: ministack answers a put over an existing name with a bare 400, not ParameterAlreadyExists.
        try:
            ssm.get_parameter(Name=name)
            continue
        except ssm.exceptions.ParameterNotFound:
            pass
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=False)


def deploy() -> dict:
    started = time.monotonic()
    seed_parameters()
    template, zip_path = package("local", BUILD_DIR)
    code_uri = _upload(zip_path)
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = code_uri
    cloudformation = aws_client("cloudformation")
    # Through S3, as `aws cloudformation deploy` does: an inline TemplateBody is capped at 51,200 bytes.
    template_key = code_uri.rsplit("/", 1)[-1].removesuffix(".zip") + ".template.json"
    aws_client("s3").put_object(Bucket=BUCKET, Key=template_key, Body=json.dumps(template).encode())
    arguments = dict(StackName=STACK_NAME, TemplateURL=f"{emulator_url()}/{BUCKET}/{template_key}",
                     Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"])
    status = stack_status()
    created = status is None or status.endswith("_FAILED") or status == "ROLLBACK_COMPLETE"
    if status is None:
        cloudformation.create_stack(**arguments)
    elif status.endswith("_FAILED") or status == "ROLLBACK_COMPLETE":
        cloudformation.delete_stack(StackName=STACK_NAME)
        wait_for(lambda: stack_status() is None, 60, "the failed stack to go")
        cloudformation.create_stack(**arguments)
    else:
        cloudformation.update_stack(**arguments)
    final = wait_for(lambda: (s := stack_status()) and not s.endswith("_IN_PROGRESS") and s, 180, "the stack")
    if final not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        events = cloudformation.describe_stack_events(StackName=STACK_NAME)["StackEvents"][:10]
        reasons = [e.get("ResourceStatusReason") for e in events if e.get("ResourceStatusReason")]
        raise RuntimeError(f"stack {final}: {reasons}")
    _enable_ttl(template)
    state = {**read_outputs(), "created": created}
    log("stack.deployed", status=final, seconds=round(time.monotonic() - started, 1),
        api=f"{emulator_url()}/_aws/execute-api/{state['api_id']}/api/")
    return state


def read_outputs() -> dict:
    """The API id changes when the route set changes: re-read it after every deploy."""
    cloudformation = aws_client("cloudformation")
    outputs = {o["OutputKey"]: o["OutputValue"]
               for o in cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0].get("Outputs", [])}
    functions = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=STACK_NAME):
        for resource in page["StackResourceSummaries"]:
            if resource["ResourceType"] in ("AWS::Lambda::Function", "AWS::Serverless::Function"):
                functions[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
    state = {"api_id": outputs["RestAPIId"], "functions": functions}
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    (STATE_DIR / "stack.json").write_text(json.dumps(state, indent=2))
    return state


def read_state() -> dict:
    path = STATE_DIR / "stack.json"
    return json.loads(path.read_text()) if path.exists() else read_outputs()


def api_base(state: dict | None = None) -> str:
    return f"{emulator_url()}/_aws/execute-api/{(state or read_state())['api_id']}/api"


def seed_demo_configs(state: dict) -> None:
    """Ship the local stage's demo configs through the config API, as an operator would. Only into a stack
    just created: values changed by hand on a running stack survive `make deploy`."""
    if not state.get("created"):
        return
    base = api_base(state)
    for path in sorted(DEMO_CONFIGS.glob("*.json")):
        for name, value in json.loads(path.read_text()).items():
            answer = _request("PUT", f"{base}/internal/v1/configs/{name}", {"value": value})
            if answer[0] != 200:
                raise RuntimeError(f"demo config {name} was refused: {answer}")
    log("configs.seeded", files=sorted(p.name for p in DEMO_CONFIGS.glob("*.json")))


def _request(method: str, url: str, body=None, timeout: float = 30) -> tuple[int, str]:
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    payload = json.dumps(body).encode() if body is not None else None
    headers = signed_headers(method, url, payload, {"Content-Type": "application/json"})
    connection.request(method, parsed.path + ("?" + parsed.query if parsed.query else ""), body=payload,
                       headers=headers)
    response = connection.getresponse()
    return response.status, response.read().decode()


def wait_for_api(state: dict) -> None:
    wait_for(lambda: _request("GET", api_base(state) + "/ping", timeout=15)[0] == 200, 60, "the API to answer /ping")


# --- on-demand schedules and logs ----------------------------------------------------------------------

def scheduled_event() -> dict:
    """What EventBridge sends a scheduled Lambda; Chalice's event class needs every field."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "000000000000", "time": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION, "resources": ["arn:aws:events:us-east-1:000000000000:rule/local-fire"], "detail": {},
    }


def fire_schedule(logical_id: str, state: dict | None = None) -> dict:
    name = (state or read_state())["functions"][logical_id]
    answer = aws_client("lambda").invoke(FunctionName=name, Payload=json.dumps(scheduled_event()).encode())
    payload = answer["Payload"].read().decode() or "null"
    if answer.get("FunctionError"):
        raise RuntimeError(f"{logical_id} failed: {payload}")
    return {"status": answer["StatusCode"], "payload": json.loads(payload)}


def recent_logs(logical_id: str, minutes: int = 15) -> list[str]:
    name = read_state()["functions"][logical_id]
    logs = aws_client("logs")
    since = int((time.time() - minutes * 60) * 1000)
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", startTime=since)["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [event["message"].rstrip() for event in events]
