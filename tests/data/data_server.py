"""A local HTTP server laid out like the original data locations, built from the real files (fixtures)."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from bptt.data import registry

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("BPTT_DATA", REPO.parent / "shared" / "data"))
HAVE_DATA = all((DATA_DIR / f.path).is_file() for f in registry.FILES)
NO_DATA = f"the real data files are not all in {DATA_DIR} (set BPTT_DATA to a folder holding them)"

#: What the test archive holds instead of the released ptb.char.train.txt, so that a
#: download has to make that file from ptb.train.txt.
OTHER_CHAR_TRAIN = b"a n o t h e r _ v e r s i o n \n "


def server_path(url: str) -> str:
    """The path of an original address, unquoted, relative to the server root."""
    return unquote(urlsplit(url).path).lstrip("/")


@pytest.fixture(scope="session")
def originals(tmp_path_factory) -> Path:
    """A folder laid out like the original servers: the four .mat files and simple-examples.tgz."""
    if not HAVE_DATA:
        pytest.skip(NO_DATA)
    root = tmp_path_factory.mktemp("originals")
    for file in registry.FILES:
        if file.member is None:
            dest = root / server_path(file.url)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(DATA_DIR / file.path, dest)
    archive = root / server_path(registry.PTB_ARCHIVE)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for file in registry.files_of("ptb"):
            if file.name == "ptb.char.train.txt":
                info = tarfile.TarInfo("./" + file.member)
                info.size = len(OTHER_CHAR_TRAIN)
                tar.addfile(info, io.BytesIO(OTHER_CHAR_TRAIN))
            else:
                tar.add(DATA_DIR / file.path, arcname="./" + file.member)
    return root


@dataclass
class ServerState:
    """How the test server behaves, changeable while it runs.

    ranges: answer ``Range: bytes=N-`` with 206; otherwise ignore it (200, whole file).
    cut_after: for a path, close the connection after this many body bytes ...
    cuts_left: ... on this many more responses for that path.
    requests: ``(path, Range header or None)`` of every GET, in order.
    """

    root: Path
    ranges: bool = True
    cut_after: dict[str, int] = field(default_factory=dict)
    cuts_left: dict[str, int] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    url: str = ""

    def ranges_asked(self, path: str) -> list[str | None]:
        return [r for p, r in self.requests if p == path]


def _handler(state: ServerState):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            rel = unquote(urlsplit(self.path).path).lstrip("/")
            range_header = self.headers.get("Range")
            state.requests.append((rel, range_header))
            path = state.root / rel
            if not path.is_file():
                self.send_error(404)
                return
            body = path.read_bytes()
            start = 0
            if state.ranges and range_header and range_header.startswith("bytes="):
                start = int(range_header[6:].split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            payload = body[start:]
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if state.cuts_left.get(rel, 0) > 0:
                state.cuts_left[rel] -= 1
                self.wfile.write(payload[: state.cut_after[rel]])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def server(originals, tmp_path):
    """A server on 127.0.0.1 (free port) over a fresh copy of the originals' layout (symlinks)."""
    root = tmp_path / "server"
    for src in originals.rglob("*"):
        if src.is_file():
            dest = root / src.relative_to(originals)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(src)
    state = ServerState(root)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
