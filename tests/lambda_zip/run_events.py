"""Runs inside the isolated interpreter of test_aws_lambda_zip.py (python -S, PYTHONPATH = the
unpacked zip, then a folder holding only boto3 and what boto3 needs): calls the handler on each
event of the JSON file argv[1], prints one JSON document with the results and every module that
was loaded from outside the standard library, the zip and that folder."""

import importlib.util
import json
import os
import sys
import sysconfig

allowed = [os.path.realpath(p) for p in os.environ["PYTHONPATH"].split(os.pathsep)]
allowed += [os.path.realpath(sysconfig.get_paths()["stdlib"]), os.path.realpath(sysconfig.get_paths()["platstdlib"])]

out: dict = {"results": [], "error": None}
try:
    from relay.aws import lambda_handler

    for event in json.load(open(sys.argv[1])):
        out["results"].append(lambda_handler.handler(event, None))
except Exception as e:  # reported to the test, which shows it
    out["error"] = f"{type(e).__name__}: {e}"

outside = []
for name, mod in sorted(sys.modules.items()):
    if name in ("__main__", "__mp_main__"):  # the runner itself (multiprocessing aliases it)
        continue
    f = getattr(mod, "__file__", None)
    if f and not any(os.path.realpath(f).startswith(a + os.sep) for a in allowed):
        outside.append(f"{name} {f}")
out["outside"] = outside

# Modules of the zip imported without valid bytecode from it (compiled from source at import: in
# Lambda, /var/task is read-only, so that cost comes back at every cold start).
task = os.path.realpath(os.environ["PYTHONPATH"].split(os.pathsep)[0])
from_source = []
for name, mod in sorted(sys.modules.items()):
    f, cached = getattr(mod, "__file__", None), getattr(mod, "__cached__", None)
    if not f or not f.endswith(".py") or not os.path.realpath(f).startswith(task + os.sep):
        continue
    try:
        with open(cached, "rb") as fh:
            header = fh.read(8)
    except (OSError, TypeError):
        header = b""
    if header[:4] != importlib.util.MAGIC_NUMBER:
        from_source.append(name)
out["from_source"] = from_source
out["loaded"] = sorted({n.split(".")[0] for n in sys.modules})
print(json.dumps(out))
