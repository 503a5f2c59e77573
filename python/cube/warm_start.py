"""A warm interpreter for the next attempt of a rank: torch already imported, the script not yet.

The node agent starts it (`<python> -c <loader> <this file> <token>`) with the environment the
rank's next attempt will have, while the current attempt trains. It imports torch, then asks the
agent over its Unix socket (`CUBE_AGENT_SOCKET`, `POST /v1/warm {token}`) what to run, and waits.
When the attempt is launched on this node, the answer is the launch exactly as a cold start
would have it: argv (`<python> script.py ...`), the complete environment and the working
directory. It then becomes that rank: the environment replaced (os.environ and the C environ),
the working directory changed, `sys.argv` and `sys.path[0]` set as `python script.py` sets them,
and the script run as `__main__`. The answer `{"exit": true}`, or the agent going away, ends it.

Deliberately standalone: it must not import the `cube` package, whose modules read the
environment when imported; the script imports it afresh under the real environment.
"""

from __future__ import annotations

import json
import os
import runpy
import socket
import sys


def _ask(socket_path: str, token: str) -> dict:
    """POSTs /v1/warm and waits (without a timeout) for the agent's answer."""
    body = json.dumps({"token": token}).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(socket_path)
        s.sendall(
            b"POST /v1/warm HTTP/1.1\r\nhost: agent\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, payload = b"".join(chunks).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return {"exit": True}
    return json.loads(payload)


def _set_comm(name: str) -> None:
    """Names this process in /proc/<pid>/comm (what `ps` and Cube's rank finders read)."""
    try:
        with open("/proc/self/comm", "w") as f:
            f.write(name)
    except OSError:
        pass


def main() -> None:
    # Until it becomes a rank, tools that find ranks by their environment (which it already
    # has) must not take it for one: they skip processes named cube-warm.
    try:
        with open("/proc/self/comm") as f:
            comm = f.read().strip()
    except OSError:
        comm = os.path.basename(sys.executable)
    _set_comm("cube-warm")
    token = sys.argv[1]
    socket_path = os.environ["CUBE_AGENT_SOCKET"]
    import torch  # noqa: F401  (the point: the seconds a cold start spends here)
    import torch.distributed  # noqa: F401
    import torch.nn.functional  # noqa: F401

    try:
        launch = _ask(socket_path, token)
    except OSError:
        sys.exit(0)  # the agent is gone: nothing will be launched here
    if launch.get("exit"):
        sys.exit(0)
    argv: list[str] = launch["argv"]
    _set_comm(comm)
    os.environ.clear()
    os.environ.update(launch["env"])
    os.chdir(launch["cwd"])
    script = argv[1]
    sys.argv = argv[1:]
    # What `python script.py` puts first on the path (the loader took `-c`'s '' out).
    sys.path.insert(0, os.path.dirname(os.path.realpath(script)))
    runpy.run_path(script, run_name="__main__")


main()
