"""Build the Lambda function zip: the relay package and only what its handlers import.

    python deploy/aws/lambda/build.py                  # dist/loki-relay-lambda-x86_64.zip and -arm64.zip
    python deploy/aws/lambda/build.py --arch arm64 --python 3.12 --out dist

Wheels come from PyPI for the Lambda platform (manylinux, the runtime's CPython), never from this
machine, so the zip is right whatever machine builds it. Left out on purpose: the web server
(fastapi, starlette, uvicorn, pydantic, prometheus-client), which the handlers do not use, and
boto3/botocore, which the Lambda runtime provides. Handlers: relay.aws.lambda_handler.handler
(direct) and relay.aws.forwarder.handler (forwarder). The build fails if the zip is over 10 MB or
holds a package it must not.

The zip carries bytecode (__pycache__, unchecked-hash .pyc) compiled by a CPython of the runtime's
version: Lambda's /var/task is read-only, so without it every cold start compiles each module it
imports from source. That compiler is this interpreter when its version is --python, else
python<version> on PATH, else --compiler; with none, the zip holds sources only (a warning says so).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# What relay.aws.lambda_handler imports, with the project's lower bounds (pyproject.toml).
FUNCTION_DEPS = [
    "httpx>=0.27",
    "python-snappy>=0.7",
    "protobuf>=5.26",
    "pyyaml>=6.0",
    "google-re2>=1.1",
    "orjson>=3.9",
]
# Top-level names that must not be in the zip.
FORBIDDEN = ("fastapi", "starlette", "uvicorn", "pydantic", "pydantic_core", "prometheus_client", "boto3", "botocore")
PLATFORMS = {
    "x86_64": ["manylinux2014_x86_64", "manylinux_2_28_x86_64"],
    "arm64": ["manylinux2014_aarch64", "manylinux_2_28_aarch64"],
}
MAX_BYTES = 10 * 1000 * 1000
EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed times: the same sources give the same zip


def install(arch: str, python: str, target: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
           "--target", str(target), "--implementation", "cp", "--python-version", python,
           "--only-binary=:all:"]
    for p in PLATFORMS[arch]:
        cmd += ["--platform", p]
    subprocess.run(cmd + FUNCTION_DEPS, check=True)


def copy_relay(target: Path) -> None:
    src = ROOT / "relay"
    for path in sorted(src.rglob("*.py")):
        dest = target / "relay" / path.relative_to(src)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)


def find_compiler(python: str, given: str | None) -> str | None:
    """A CPython `python` (e.g. 3.12) to compile the bytecode with, or None."""
    candidates = [given] if given else [sys.executable, shutil.which(f"python{python}")]
    for exe in candidates:
        if not exe:
            continue
        try:
            got = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2], sys.implementation.name)"],
                                 capture_output=True, text=True, timeout=60, check=False)
        except OSError:
            continue
        if got.returncode == 0 and got.stdout.split() == [python, "cpython"]:
            return exe
    if given:
        raise SystemExit(f"build.py: --compiler {given} is not CPython {python}")
    return None


def compile_tree(tree: Path, compiler: str) -> None:
    # unchecked-hash: the .pyc is trusted as is (no source mtime to match; the zip's times are fixed).
    subprocess.run([compiler, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(tree)],
                   check=True)


def write_zip(tree: Path, out: Path) -> None:
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for path in files:
            info = zipfile.ZipInfo(str(path.relative_to(tree)), EPOCH)
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, path.read_bytes(), compresslevel=9)


def check(tree: Path, out: Path) -> None:
    present = sorted(n for n in FORBIDDEN if (tree / n).exists())
    if present:
        raise SystemExit(f"build.py: {out.name} would hold {', '.join(present)}")
    size = out.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"build.py: {out.name} is {size} bytes, over {MAX_BYTES}")


def build(arch: str, python: str, out_dir: Path, compiler: str | None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"loki-relay-lambda-{arch}.zip"
    with tempfile.TemporaryDirectory(prefix="loki-relay-lambda-") as tmp:
        tree = Path(tmp)
        install(arch, python, tree)
        shutil.rmtree(tree / "bin", ignore_errors=True)  # console scripts of the deps: unused
        copy_relay(tree)
        if compiler:
            compile_tree(tree, compiler)
        write_zip(tree, out)
        check(tree, out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", choices=["x86_64", "arm64", "all"], default="all")
    ap.add_argument("--python", default="3.12", help="CPython version of the Lambda runtime (python3.12 -> 3.12)")
    ap.add_argument("--out", type=Path, default=ROOT / "dist")
    ap.add_argument("--compiler", help="a CPython of version --python that compiles the bytecode in the zip")
    args = ap.parse_args(argv)
    compiler = find_compiler(args.python, args.compiler)
    if compiler is None:
        print(f"build.py: warning: no CPython {args.python} found (--compiler): the zip holds no bytecode, "
              "so each cold start compiles what it imports", file=sys.stderr)
    for arch in ["x86_64", "arm64"] if args.arch == "all" else [args.arch]:
        out = build(arch, args.python, args.out, compiler)
        print(f"{out} {out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
