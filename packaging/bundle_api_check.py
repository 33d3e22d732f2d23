"""Start a built bundle's `imagedesk serve` on a free loopback port and call it.

    python packaging/bundle_api_check.py dist/imagedesk-cloud/imagedesk

The self-test imports the API's modules; this proves the bundled server answers:
/v1/models with the token gives 200 and a model list, without it 401. Run by
packaging/build.sh after the self-test, in a throw-away profile.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

TOKEN = "bundle-check-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status_and_body(url: str, token: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def main(executable: str) -> int:
    port = free_port()
    home = tempfile.mkdtemp(prefix="imagedesk-bundle-api-")
    env = {**os.environ, "IMAGEDESK_HOME": home, "IMAGEDESK_API_TOKEN": TOKEN,
           "QT_QPA_PLATFORM": "offscreen"}
    server = subprocess.Popen([executable, "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1/models"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = status_and_body(url, TOKEN)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    output = server.stdout.read().decode(errors="replace") if server.stdout else ""
                    print(f"the bundle's API server did not start:\n{output}", file=sys.stderr)
                    return 1
                time.sleep(0.2)
        models = [entry["id"] for entry in json.loads(body)["data"]]
        unauthorised, _ = status_and_body(url, None)
        print(f"bundle API: /v1/models -> {status} {models}; without the token -> "
              f"{unauthorised}")
        return 0 if status == 200 and "auto" in models and unauthorised == 401 else 1
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
