"""Starts `permit-sync local` on free ports for the contract tests and stops it afterwards."""

import os
import secrets
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def binary() -> str:
    return os.environ.get("PERMIT_SYNC_BIN", str(REPO / "target" / "debug" / "permit-sync"))


class LocalPermit:
    def __init__(self):
        self.api_key = "permit_key_" + secrets.token_hex(16)
        self.proc = subprocess.Popen(
            [binary(), "local", "--api-addr", "127.0.0.1:0", "--pdp-addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # The key goes through the environment, not the command line (visible in `ps`).
            env={**os.environ, "PERMIT_LOCAL_API_KEY": self.api_key},
        )
        self.api_url = self.pdp_url = None
        output = []
        for line in self.proc.stdout:
            output.append(line)
            line = line.strip()
            if line.startswith("API:"):
                self.api_url = line.split(None, 1)[1]
            elif line.startswith("PDP:"):
                self.pdp_url = line.split(None, 1)[1]
            elif line.startswith("press Ctrl-C"):
                break
        if not (self.api_url and self.pdp_url):
            self.proc.kill()
            raise RuntimeError("permit-sync local did not start:\n" + "".join(output))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def local_permit():
    permit = LocalPermit()
    yield permit
    permit.stop()
