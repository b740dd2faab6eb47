"""The local stack: the real deployment, on one machine, on loopback only.

    python -m local.stack run       # emulator + deploy + API forwarder :8000 + upstream simulator :8100 (Ctrl-C stops)
    python -m local.stack deploy    # re-package and update the running stack (after a code change)
    python -m local.stack fire PickerOrdersUpdater   # run a @schedule handler now (its CloudFormation logical id)
    python -m local.stack logs SaveSharingKeys      # the function's recent log lines

Its parts: local/emulator.py (the AWS emulator: ministack on 127.0.0.1:4566, or the one AWS_ENDPOINT_URL names),
local/deployment.py (package, deploy the CloudFormation stack, fire a schedule, read logs), local/forwarder.py (the
stable API address :8000), local/simulator/ (the upstreams on :8100). This module puts them together and holds
the commands.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading

from local.deployment import (read_outputs, stack_status, api_base, deploy, fire_schedule, recent_logs,
                              seed_demo_configs, wait_for_api)
from local.emulator import HOST, STATE_DIR, emulator_healthy, emulator_url, http_ok, log, start_emulator, stop_process
from local.forwarder import API_PORT, start_forwarder

SIMULATOR_PORT = int(os.environ.get("LOCAL_SIMULATOR_PORT", "8100"))


# --- the whole stack -----------------------------------------------------------------------------------

@dataclasses.dataclass
class RunningStack:
    state: dict
    api_url: str
    simulator_url: str
    emulator: subprocess.Popen | None = None
    servers: list = dataclasses.field(default_factory=list)

    def function_name(self, logical_id: str) -> str:
        return self.state["functions"][logical_id]

    def fire_schedule(self, logical_id: str) -> dict:
        return fire_schedule(logical_id, self.state)


def _port_open(port: int) -> bool:
    return http_ok(f"http://{HOST}:{port}/", timeout=0.5)


def _clean_emulator_leftovers() -> None:
    shutil.rmtree(STATE_DIR / "emulator-tmp", ignore_errors=True)


@contextlib.contextmanager
def running(redeploy: bool = True):
    """Reuse a running stack (make run) or start one for the duration of the block."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    emulator, servers = None, []
    try:
        if not emulator_healthy():
            if os.environ.get("AWS_ENDPOINT_URL"):
                raise RuntimeError(f"AWS_ENDPOINT_URL={emulator_url()} does not answer")
            emulator = start_emulator()
        if not _port_open(SIMULATOR_PORT):
            from local.simulator.server import serve

            servers.append(serve(SIMULATOR_PORT)[0])
        if redeploy or stack_status() is None:
            state = deploy()
        else:
            state = read_outputs()
        if not _port_open(API_PORT):
            servers.append(start_forwarder(API_PORT))
        wait_for_api(state)
        seed_demo_configs(state)
        yield RunningStack(state=state, api_url=f"http://{HOST}:{API_PORT}",
                           simulator_url=f"http://{HOST}:{SIMULATOR_PORT}", emulator=emulator, servers=servers)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        if emulator is not None:
            stop_process(emulator)
            _clean_emulator_leftovers()
            (STATE_DIR / "stack.json").unlink(missing_ok=True)


def _print_banner(stack: RunningStack) -> None:
    api = api_base(stack.state)
    print(f"""
Local stack is up (Ctrl-C stops everything):
  API (stable)        {stack.api_url}            e.g. curl {stack.api_url}/ping
  API (emulator)      {api}/
  AWS emulator        {emulator_url()}   e.g. aws --endpoint-url {emulator_url()} sqs list-queues
  Upstream simulator  {stack.simulator_url}       e.g. curl -X POST {stack.simulator_url}/_control/faults -d '{{"upstream":"protocol","mode":"error"}}'
  Functions           {', '.join(sorted(stack.state['functions']))}
  After a code change: make deploy      Fire a schedule now: make fire FN=<Function>
""", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.stack", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start everything in the foreground")
    commands.add_parser("deploy", help="re-package and update the running stack")
    fire = commands.add_parser("fire", help="invoke a @schedule function now")
    fire.add_argument("function", help="its logical id, e.g. PickerOrdersUpdater")
    logs = commands.add_parser("logs", help="a function's recent log lines")
    logs.add_argument("function")
    logs.add_argument("--minutes", type=int, default=15)
    args = parser.parse_args(argv)

    if args.command == "run":
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        try:
            with running() as stack:
                _print_banner(stack)
                stopping.wait()
        except KeyboardInterrupt:
            pass
        log("stack.stopped")
    elif args.command == "deploy":
        if not emulator_healthy():
            sys.exit("no emulator is running: start it with `make run`")
        state = deploy()
        wait_for_api(state)
        seed_demo_configs(state)
    elif args.command == "fire":
        print(json.dumps(fire_schedule(args.function), ensure_ascii=False, indent=2))
    elif args.command == "logs":
        print("\n".join(recent_logs(args.function, args.minutes)))


if __name__ == "__main__":
    main()
