#!/usr/bin/env python3
"""Boot a test guest made by packaging/vm/build-image under QEMU (TCG) and drive it.

Python 3 standard library only. Used by packaging/system-test; also usable by hand:

    packaging/vm/guest.py arm64 run 'systemctl is-system-running' 'uname -a'
    packaging/vm/guest.py arm64-trixie run 'cat /etc/debian_version'
    packaging/vm/guest.py amd64 console          # serial console on this terminal

API:

    with Guest("arm64") as g:            # boots, waits for the agent's READY handshake
        g.host_port                       # 127.0.0.1:host_port -> guest TCP 8888
        g.syslog_port                     # 127.0.0.1:syslog_port -> guest TCP and UDP 514
        rc, out = g.run("systemctl is-active tcp-listener")
        g.put("target/debs/x.deb", "/root/x.deb")
        g.reboot()                        # poweroff, boot again: the guest's disk is kept
        g.shutdown()                      # poweroff; QEMU is killed if it does not exit

The control channel is a virtio-serial port (/dev/virtio-ports/ctl in the guest) whose
host end is a unix socket this module listens on; QEMU connects to it at start-up. The
protocol (length-prefixed, see packaging/vm/agent/vm-agent):
    host -> guest   RUN <id> <timeout> <len>\\n<script>    PUT <id> <mode> <len> <path>\\n<bytes>
    guest -> host   READY <arch> <kernel>\\n                DONE <id> <rc> <outlen> <errlen>\\n<out><err>
Every wait is bounded; QEMU is killed when the Guest is closed, on exceptions and at exit.
"""

import argparse
import atexit
import hashlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

# Guests by name: the image made by `packaging/vm/build-image NAME` (cached in
# target/vm/NAME), the Debian architecture of the package it tests, and its Debian suite.
_ARM64 = {"qemu": "qemu-system-aarch64", "machine": ["-M", "virt", "-cpu", "cortex-a72"],
          "console": "ttyAMA0", "deb": "arm64"}
_AMD64 = {"qemu": "qemu-system-x86_64", "machine": ["-M", "q35", "-cpu", "max"],
          "console": "ttyS0", "deb": "amd64"}
ARCHES = {
    "arm64": dict(_ARM64, suite="bookworm"),
    "amd64": dict(_AMD64, suite="bookworm"),
    # Debian 13, the base of Raspberry Pi OS since October 2025 (glibc 2.41, systemd 257).
    "arm64-trixie": dict(_ARM64, suite="trixie"),
    "amd64-trixie": dict(_AMD64, suite="trixie"),
}


class GuestError(Exception):
    pass


def cache_dir():
    return os.environ.get("TCP_LISTENER_VM_CACHE") or os.path.join(REPO, "target", "vm")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_live = set()


def _die_with_parent():
    """In the QEMU child: get SIGKILL when the Python process dies, even by SIGKILL."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except Exception:
        pass


def _kill_all():
    for g in list(_live):
        g.close()


atexit.register(_kill_all)


class Guest:
    def __init__(self, arch, host_port=None, memory=1024, smp=2, console_log=None,
                 boot_timeout=600, verbose=False):
        if arch not in ARCHES:
            raise GuestError("unknown arch %r (want one of %s)" % (arch, ", ".join(ARCHES)))
        self.arch = arch
        self.image = os.path.join(cache_dir(), arch)
        self.host_port = host_port or free_port()
        # 127.0.0.1:syslog_port -> guest TCP and UDP 514 (the tcp-listener@syslog instance).
        self.syslog_port = free_port()
        self.memory = memory
        self.smp = smp
        self.boot_timeout = boot_timeout
        self.verbose = verbose
        self.workdir = tempfile.mkdtemp(prefix="tcp-listener-vm-%s-" % arch)
        self.console_log = console_log or os.path.join(self.workdir, "console.log")
        self.proc = None
        self.conn = None
        self.listener = None
        self._buf = b""
        self._next_id = 1
        self.boot_seconds = None      # QEMU start -> agent READY
        self.ready_line = None

    # ---------------------------------------------------------------- lifecycle
    def qemu_command(self, serial="file"):
        a = ARCHES[self.arch]
        for f in ("disk.qcow2", "vmlinuz", "initrd.img"):
            if not os.path.exists(os.path.join(self.image, f)):
                raise GuestError("%s/%s missing: run packaging/vm/build-image %s"
                                 % (self.image, f, self.arch))
        append = ("console=%s root=/dev/vda rootfstype=ext4 rw panic=-1 quiet loglevel=4 "
                  "net.ifnames=0 systemd.show_status=auto" % a["console"])
        cmd = [a["qemu"]] + a["machine"] + [
            "-smp", str(self.smp), "-m", str(self.memory),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", os.path.join(self.image, "vmlinuz"),
            "-initrd", os.path.join(self.image, "initrd.img"),
            "-append", append,
            # A throw-away overlay in the work directory: the cached image is never
            # modified, and what the guest writes survives its reboot (reboot()).
            "-drive", "file=%s,if=none,id=hd,format=qcow2" % self._overlay(),
            "-device", "virtio-blk-pci,drive=hd",
            "-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:%d-:8888,hostfwd=tcp:127.0.0.1:%d-:514,"
            "hostfwd=udp:127.0.0.1:%d-:514" % (self.host_port, self.syslog_port, self.syslog_port),
            "-device", "virtio-net-pci,netdev=n0,romfile=",
            "-device", "virtio-rng-pci",
            "-device", "virtio-serial-pci",
            "-chardev", "socket,id=ctl,path=%s" % self.sock_path,
            "-device", "virtserialport,chardev=ctl,name=ctl",
        ]
        if serial == "stdio":
            cmd += ["-serial", "mon:stdio"]
        else:
            cmd += ["-serial", "file:%s" % self.console_log]
        return cmd

    def _overlay(self):
        """The guest's disk: a qcow2 overlay over the cached image, made once per Guest."""
        path = os.path.join(self.workdir, "overlay.qcow2")
        if not os.path.exists(path):
            r = subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                                os.path.join(self.image, "disk.qcow2"), path],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if r.returncode != 0:
                raise GuestError("qemu-img create (overlay) failed: %s"
                                 % r.stdout.decode(errors="replace").strip())
        return path

    def reboot(self, timeout=None):
        """Power the guest off cleanly and boot it again on the same disk (the overlay), as
        a reboot does. Returns the boot seconds (QEMU start -> agent READY). Raises
        GuestError if the guest does not power off in 90 s."""
        if self.proc is None or self.proc.poll() is not None:
            raise GuestError("reboot: the guest is not running")
        cmd = b"systemctl --no-block poweroff\n"
        self._send(b"RUN %d 30 %d\n" % (self._new_id(), len(cmd)) + cmd)
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            raise GuestError("reboot: the guest did not power off in 90 s" + self._diag())
        _live.discard(self)
        for s in (self.conn, self.listener):
            if s is not None:
                s.close()
        self.conn = self.listener = None
        os.unlink(self.sock_path)
        self._buf = b""
        return self.start()

    def _listen(self):
        self.sock_path = os.path.join(self.workdir, "ctl.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.sock_path)
        self.listener.listen(1)

    def start(self, serial="file"):
        """Start QEMU and wait (bounded) for the agent's READY line. Returns boot seconds."""
        self._listen()
        cmd = self.qemu_command(serial)
        if self.verbose:
            print("+ " + " ".join(cmd), file=sys.stderr)
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL if serial != "stdio" else None,
            stdout=None if serial == "stdio" else subprocess.DEVNULL,
            stderr=open(os.path.join(self.workdir, "qemu.stderr"), "wb"),
            start_new_session=(serial != "stdio"), preexec_fn=_die_with_parent)
        _live.add(self)
        # QEMU connects to our socket while it starts (it is the chardev's client).
        deadline = t0 + 30
        while True:
            self._check_alive()
            r, _, _ = select.select([self.listener], [], [], 0.5)
            if r:
                self.conn, _ = self.listener.accept()
                self.conn.setblocking(False)
                break
            if time.monotonic() > deadline:
                raise GuestError("QEMU did not connect to the control socket in 30 s" + self._diag())
        if serial == "stdio":
            return None
        line = self._read_line(t0 + self.boot_timeout, want=b"READY")
        self.ready_line = line.decode(errors="replace")
        self.boot_seconds = time.monotonic() - t0
        return self.boot_seconds

    def _check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise GuestError("QEMU exited with status %s" % self.proc.returncode + self._diag())

    def console_tail(self, n=40):
        try:
            with open(self.console_log, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""

    def _diag(self):
        msg = ""
        try:
            with open(os.path.join(self.workdir, "qemu.stderr"), "rb") as f:
                err = f.read().decode(errors="replace").strip()
            if err:
                msg += "\n--- qemu stderr ---\n" + err
        except OSError:
            pass
        tail = self.console_tail()
        if tail:
            msg += "\n--- serial console (last lines) ---\n" + tail
        return msg

    def shutdown(self, timeout=90):
        """Power the guest off cleanly; kill QEMU if it has not exited within timeout."""
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            return True
        clean = False
        try:
            self._send(b"RUN %d 30 %d\n" % (self._new_id(), len(b"systemctl --no-block poweroff\n"))
                       + b"systemctl --no-block poweroff\n")
            self.proc.wait(timeout=timeout)
            clean = True
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.close()
        return clean

    def close(self):
        """Kill QEMU (if still running) and remove the work directory."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for s in (self.conn, self.listener):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        self.conn = self.listener = None
        _live.discard(self)
        if self.workdir and os.path.isdir(self.workdir):
            # keep the console log if the caller asked for it elsewhere
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    # ---------------------------------------------------------------- channel I/O
    def _new_id(self):
        self._next_id += 1
        return self._next_id

    def _send(self, data, timeout=120):
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        while view:
            self._check_alive()
            _, w, _ = select.select([], [self.conn], [], 0.5)
            if w:
                try:
                    n = self.conn.send(view[:65536])
                except BlockingIOError:
                    n = 0
                view = view[n:]
            elif time.monotonic() > deadline:
                raise GuestError("timed out sending to the guest agent")

    def _fill(self, deadline):
        """Read whatever is available into the buffer; bounded by deadline."""
        while True:
            self._check_alive()
            now = time.monotonic()
            if now > deadline:
                raise GuestError("timed out waiting for the guest agent" + self._diag())
            r, _, _ = select.select([self.conn], [], [], min(1.0, deadline - now))
            if r:
                chunk = self.conn.recv(65536)
                if not chunk:
                    raise GuestError("control channel closed by QEMU" + self._diag())
                self._buf += chunk
                return

    def _read_line(self, deadline, want=None):
        """Next line (without newline); with want, skip lines not starting with it."""
        while True:
            i = self._buf.find(b"\n")
            if i < 0:
                self._fill(deadline)
                continue
            line, self._buf = self._buf[:i], self._buf[i + 1:]
            if want is None or line.startswith(want):
                return line

    def _read_exact(self, n, deadline):
        while len(self._buf) < n:
            self._fill(deadline)
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def _answer(self, rid, deadline):
        while True:
            line = self._read_line(deadline)
            parts = line.split()
            if len(parts) == 5 and parts[0] == b"DONE":
                _, gid, rc, olen, elen = parts
                out = self._read_exact(int(olen), deadline)
                err = self._read_exact(int(elen), deadline)
                if int(gid) == rid:
                    return int(rc), out, err
                # an answer to an earlier request that timed out: drop it
            elif parts[:1] == [b"READY"]:
                self.ready_line = line.decode(errors="replace")
                if self.verbose:
                    print("[guest %s] agent (re)started: %s" % (self.arch, self.ready_line),
                          file=sys.stderr)

    # ---------------------------------------------------------------- public API
    def run_full(self, cmd, timeout=120):
        """Run a bash script in the guest as root. Returns (rc, stdout bytes, stderr bytes).
        rc 124 = the guest-side timeout killed it."""
        script = cmd.encode() if isinstance(cmd, str) else cmd
        rid = self._new_id()
        self._send(b"RUN %d %d %d\n" % (rid, int(timeout), len(script)) + script)
        return self._answer(rid, time.monotonic() + timeout + 30)

    def run(self, cmd, timeout=120, stderr=True):
        """Run cmd; returns (rc, output str). stderr=True merges stderr after stdout."""
        rc, out, err = self.run_full(cmd, timeout)
        if self.verbose:
            print("[guest %s] $ %s -> %d" % (self.arch, cmd, rc), file=sys.stderr)
        text = out.decode(errors="replace")
        if stderr and err:
            text += err.decode(errors="replace")
        return rc, text

    def put(self, local_path, guest_path, mode="0644", timeout=300):
        """Copy a host file into the guest (atomic rename there), verified by sha256."""
        with open(local_path, "rb") as f:
            data = f.read()
        if any(c in guest_path for c in " \n"):
            raise GuestError("guest path must not contain blanks: %r" % guest_path)
        rid = self._new_id()
        self._send(b"PUT %d %s %d %s\n" % (rid, mode.encode(), len(data), guest_path.encode())
                   + data, timeout)
        rc, out, err = self._answer(rid, time.monotonic() + timeout)
        want = hashlib.sha256(data).hexdigest()
        if rc != 0 or out.decode().strip() != want:
            raise GuestError("put %s -> %s failed (rc %d, %s)" % (local_path, guest_path, rc,
                                                                 (out + err).decode().strip()))

    def wait_booted(self, timeout=300):
        """`systemctl is-system-running --wait`: returns its state (running/degraded/...)."""
        rc, out = self.run("systemctl is-system-running --wait", timeout=timeout)
        return out.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("arch", choices=sorted(ARCHES))
    ap.add_argument("action", choices=["run", "console"])
    ap.add_argument("commands", nargs="*", help="shell commands to run in the guest")
    ap.add_argument("--port", type=int, help="host port forwarded to guest 8888")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    g = Guest(args.arch, host_port=args.port, verbose=args.verbose)
    if args.action == "console":
        print("serial console of the %s guest; 127.0.0.1:%d -> guest:8888; "
              "quit with Ctrl-a x" % (args.arch, g.host_port), file=sys.stderr)
        try:
            g.start(serial="stdio")
            g.proc.wait()
        finally:
            g.close()
        return 0
    status = 0
    try:
        g.start()
        print("[guest %s] agent ready after %.1f s: %s" % (args.arch, g.boot_seconds, g.ready_line),
              file=sys.stderr)
        state = g.wait_booted()
        print("[guest %s] system state: %s" % (args.arch, state), file=sys.stderr)
        for c in args.commands:
            rc, out = g.run(c)
            sys.stdout.write(out)
            print("[guest %s] exit %d: %s" % (args.arch, rc, c), file=sys.stderr)
            status = status or rc
        g.shutdown()
    except GuestError as e:
        print("guest.py: %s" % e, file=sys.stderr)
        status = 1
    finally:
        g.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
