"""Start ``kdstudio`` CLI processes quickly: a process that imports the heavy libraries once, then
forks one child per command, so a test can SIGKILL many real processes without paying the
imports (seconds each under load) every time.

Run as a script (``python tests/fakes/forker.py``); it reads JSON lines on stdin and answers one
JSON line per request on stdout:

    {"run": [ARGS...], "log": FILE, "env": {...}}   ->  {"pid": PID}   (the child runs kdstudio ARGS,
                                                         stdout and stderr to FILE, in that environment)
    {"wait": PID}                                   ->  {"status": N}  (its exit code, or -SIGNAL)
    {"poll": PID}                                   ->  {"status": N or null}  (null: still running)

``Forker`` is the test's side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _child(args: list[str], log: str, env: dict[str, str]) -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.clear()
    os.environ.update(env)
    code: Any = 1
    try:
        from kdstudio.cli import main

        code = main(args)
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)


def serve() -> None:
    sys.path.insert(0, str(ROOT))
    import anthropic  # noqa: F401  (the imports every child would otherwise pay for)
    import torch  # noqa: F401
    from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: F401
    from transformers.models.bert import modeling_bert  # noqa: F401  (a lazy import of seconds)

    import kdstudio.cli
    import kdstudio.core.harvest
    import kdstudio.core.train  # noqa: F401

    ended: dict[int, int] = {}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if "run" in request:
            pid = os.fork()
            if pid == 0:
                _child(request["run"], request["log"], request["env"])
            print(json.dumps({"pid": pid}), flush=True)
        else:
            pid = request.get("wait") or request["poll"]
            if pid not in ended:
                done, status = os.waitpid(pid, 0 if "wait" in request else os.WNOHANG)
                if done:
                    ended[pid] = os.waitstatus_to_exitcode(status)
            print(json.dumps({"status": ended.get(pid)}), flush=True)


class Forker:
    """The test's side: ``start(args, log, env) -> pid``, ``wait(pid) -> exit code or -signal``."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__], cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self._ask(None) == {"ready": True}

    def _ask(self, request: dict[str, Any] | None) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        if request is not None:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the forker died"
        return json.loads(line)

    def start(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> int:
        return self._ask({"run": args, "log": str(log), "env": dict(env if env is not None else os.environ)})["pid"]

    def wait(self, pid: int) -> int:
        return self._ask({"wait": pid})["status"]

    def poll(self, pid: int) -> int | None:
        return self._ask({"poll": pid})["status"]

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


if __name__ == "__main__":
    serve()
