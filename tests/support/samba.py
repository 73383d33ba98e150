"""A real Samba server (smbd) on a free loopback port with a temporary share and user.

Follows TESTING.md: a private smb.conf (nothing of the system's Samba is touched), a Unix
user without a home or shell, the SMB password set with smbpasswd, ``smbd -D``; stopped by
the pid in its pid file. Needs root and the Debian ``samba`` package.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.support.procs import free_port, wait_for_port


def samba_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "Samba tests need root (useradd, smbd)"
    for tool in ("smbd", "smbpasswd", "useradd", "userdel"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed (apt-get install samba)"
    return None


def _alive(pid: int) -> bool:
    """False once the process is gone or a zombie (PID 1 here may never reap it)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class Samba:
    def __init__(self, workdir: Path, share: str = "backups") -> None:
        self.workdir = workdir
        self.share = share
        self.port = free_port()
        self.user = "fpt" + uuid.uuid4().hex[:8]
        self.password = "Smb-" + uuid.uuid4().hex[:12]
        self.state = workdir / "state"
        # The share lives outside pytest's tmp tree: that tree is mode 0700, which the share's
        # (unprivileged) user could not traverse.
        self._share_root = Path(tempfile.mkdtemp(prefix="facepro-smb-"))
        self._share_root.chmod(0o755)
        self.share_dir = self._share_root / "share"
        self.conf = workdir / "smb.conf"
        self.pid: int | None = None

    def start(self) -> Samba:
        (self.state / "ncalrpc").mkdir(parents=True)
        self.share_dir.mkdir(parents=True)
        s = self.state
        self.conf.write_text(f"""[global]
  smb ports = {self.port}
  interfaces = lo
  bind interfaces only = yes
  server role = standalone server
  private dir = {s}
  lock directory = {s}
  state directory = {s}
  cache directory = {s}
  pid directory = {s}
  ncalrpc dir = {s}/ncalrpc
  log file = {s}/log.%m
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  server min protocol = SMB2
[{self.share}]
  path = {self.share_dir}
  read only = no
  valid users = {self.user}
""")
        subprocess.run([_tool("useradd"), "-M", "-s", "/usr/sbin/nologin", self.user], check=True,
                       capture_output=True)
        shutil.chown(self.share_dir, self.user, self.user)
        subprocess.run([_tool("smbpasswd"), "-c", str(self.conf), "-s", "-a", self.user],
                       input=f"{self.password}\n{self.password}\n", text=True, check=True, capture_output=True)
        # Its own session: on SIGTERM smbd signals its whole process group, which must not
        # be pytest's.
        subprocess.run([_tool("smbd"), "-s", str(self.conf), "-D", "--no-process-group"], check=True,
                       capture_output=True, start_new_session=True)
        wait_for_port(self.port, timeout=20)
        pid_file = next(iter(self.state.glob("smbd*.pid")), None)
        deadline = time.monotonic() + 5
        while pid_file is None and time.monotonic() < deadline:
            time.sleep(0.05)
            pid_file = next(iter(self.state.glob("smbd*.pid")), None)
        if pid_file is None:
            raise RuntimeError(f"smbd wrote no pid file in {self.state}")
        self.pid = int(pid_file.read_text().split()[0])
        return self

    def target(self, name: str = "nas", **extra: object) -> dict:
        spec = {"name": name, "type": "smb", "server": "127.0.0.1", "share": self.share, "port": self.port,
                "username": self.user, "password": self.password, "timeout_s": 10}
        spec.update(extra)
        return spec

    def stop(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                for _ in range(100):
                    if not _alive(self.pid):
                        break
                    time.sleep(0.05)
                else:
                    os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = None
        subprocess.run([_tool("userdel"), "-f", self.user], capture_output=True)
        shutil.rmtree(self._share_root, ignore_errors=True)
