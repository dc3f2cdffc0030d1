"""A throwaway PostgreSQL server for tests and benchmarks: temp data dir, 127.0.0.1, a free port.

``running_postgres()`` is a context manager yielding a :class:`PostgresServer` (with a DSN to an
empty database); ``postgres_dsn`` is the same as a module-scoped pytest fixture (import it into a
test module). :func:`stopped` takes a running server down and brings it back on the same port and
data (a store outage). It uses the Debian binaries (``/usr/lib/postgresql/<major>/bin``) or whatever
``pg_ctl`` is on PATH, and skips - with the reason - only if there are none.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` system user (or
``nobody``) through ``runuser``, in a data directory chowned to that user; the socket directory
lives in the temp dir too, so nothing touches ``/var/run/postgresql``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


@dataclass(frozen=True)
class PostgresServer:
    dsn: str
    host: str
    port: int
    user: str
    dbname: str
    data_dir: Path
    # How to stop and start it again (see stopped()).
    bindir: Path | None = None
    run_as: str | None = None
    options: str = ""
    log: Path | None = None


@contextmanager
def stopped(server: PostgresServer) -> Iterator[None]:
    """The server down (fast shutdown: connections are cut) for the block, then up again."""
    ctl = str(server.bindir / "pg_ctl")  # type: ignore[operator]
    _run([ctl, "-D", str(server.data_dir), "-m", "fast", "-w", "stop"], user=server.run_as, timeout=60)
    try:
        yield
    finally:
        _run([ctl, "-D", str(server.data_dir), "-l", str(server.log), "-w", "-t", str(START_TIMEOUT_S),
              "-o", server.options, "start"], user=server.run_as, timeout=START_TIMEOUT_S + 10)  # fmt: skip


def find_bindir() -> Path:
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    for candidate in candidates:
        if (Path(candidate) / "pg_ctl").exists() and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl and shutil.which("initdb"):
        return Path(pg_ctl).parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql"
    )


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_user() -> str | None:
    """None to run as ourselves; as root, an unprivileged system user that exists."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and neither a 'postgres' nor a 'nobody' user exists")


def _run(cmd: list[str], *, user: str | None, timeout: float) -> None:
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr or result.stdout}")


@contextmanager
def running_postgres(
    *, dbname: str = "modelrollout", settings: dict[str, str] | None = None
) -> Iterator[PostgresServer]:
    bindir = find_bindir()
    user = _server_user()
    tmp = Path(tempfile.mkdtemp(prefix="modelrollout-pg-"))
    data, sockets, log = tmp / "data", tmp / "sock", tmp / "server.log"
    sockets.mkdir()
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (tmp, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    port = _free_port()
    options = {"listen_addresses": "127.0.0.1", "port": str(port), "unix_socket_directories": str(sockets)}
    options.update({"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"})
    options.update(settings or {})
    started = False
    try:
        _run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
             user=user, timeout=START_TIMEOUT_S)  # fmt: skip
        opts = " ".join(f"-c {k}={v}" for k, v in options.items())
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", str(START_TIMEOUT_S), "-o", opts, "start"],
             user=user, timeout=START_TIMEOUT_S + 10)  # fmt: skip
        started = True
        import psycopg

        admin = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        dsn = f"host=127.0.0.1 port={port} user=postgres dbname={dbname}"
        yield PostgresServer(
            dsn=dsn, host="127.0.0.1", port=port, user="postgres", dbname=dbname, data_dir=data,
            bindir=bindir, run_as=user, options=opts, log=log,
        )  # fmt: skip
    finally:
        if started:
            with contextlib.suppress(Exception):  # the temp dir goes anyway; the server dies without it
                _run(
                    [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                    user=user,
                    timeout=60,
                )
        shutil.rmtree(tmp, ignore_errors=True)


def fresh_database(dsn: str) -> str:
    """A new empty database on the same server; the DSN to it (so tests do not share tables)."""
    import psycopg

    info = psycopg.conninfo.conninfo_to_dict(dsn)
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return psycopg.conninfo.make_conninfo(**{**info, "dbname": name})


try:
    import pytest

    @pytest.fixture(scope="module")
    def postgres_dsn() -> Iterator[str]:
        """A DSN to an empty database on a fresh local server, shared by one test module."""
        try:
            find_bindir()
        except PostgresUnavailable as exc:
            pytest.skip(str(exc))
        with running_postgres() as server:
            yield server.dsn

except ImportError:  # used outside pytest (benchmarks)
    pass
