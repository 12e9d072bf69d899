"""A fake kaggle.com that answers what the installed client (kaggle 2.2.5) sends, for offline tests.

With KAGGLE_API_ENVIRONMENT=LOCALHOST the client's KaggleApi talks to http://localhost, port 80.
The calls below were read off the real client by pointing it at a logging server:

    POST /api/v1/competitions.CompetitionApiService/DownloadDataFiles   {"competitionName"}
         -> 302 to the zip's storage URL, which the client then GETs (streamed, no redirect back)
    POST .../StartSubmissionUpload   {"competitionName", "contentLength", "lastModifiedEpochSeconds", "fileName"}
         -> {"token", "createUrl"}; the client PUTs the file's bytes to createUrl, without credentials
    POST .../CreateSubmission   {"competitionName", "blobFileTokens", "submissionDescription"} -> {"message", "ref"}
    POST .../GetSubmission      {"ref"} -> {"ref", "status": "PENDING" | "COMPLETE" | "ERROR", "publicScore", ...}
    POST .../ListSubmissions    {"competitionName", "page", "pageToken", "pageSize"} -> {"submissions": [...]}
    POST .../ListCompetitions   {"search", ...} -> {"competitions": [{"ref", "maxDailySubmissions", ...}]}
    POST .../GetLeaderboard     {"competitionName", "pageSize", "pageToken"}
         -> {"submissions": [{"teamId", "teamName", "score"}], "nextPageToken"}  (best first)
    POST /api/v1/security.OAuthService/IntrospectToken   {"token"} -> {"active", "username"}  (access tokens)

API calls carry `Authorization: Basic base64(username:key)` (kaggle.json, KAGGLE_USERNAME/KAGGLE_KEY) or
`Bearer <token>` (KAGGLE_API_TOKEN); errors go back as JSON {"code", "message"}, which the client raises
as requests.HTTPError. A submission is scored against the hidden test labels, as Kaggle would.

    with FakeKaggle(make_competition()) as kaggle:   # serving on 127.0.0.1:80 until the block ends
        kaggle.fail("DownloadDataFiles", 500)        # the next call answers 500, the one after is normal
        kaggle.fail("storage", "cut")                # the next zip download stops half-way
"""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd

HOST, PORT = "127.0.0.1", 80  # the client's LOCALHOST environment is http://localhost, no port to choose
USERNAME, KEY = "ada", "0123456789abcdef-not-a-real-key"
TOKEN = "KGAT_0123456789-not-a-real-token"
API = "/api/v1/"
STORAGE = "/storage/digit-recognizer.zip"
UPLOAD = "/upload/"


@dataclass
class Competition:
    """The files Kaggle serves (as one zip) and the test labels it keeps to score submissions."""

    zip_bytes: bytes
    test_labels: np.ndarray


def make_competition(n_train: int = 40, n_test: int = 25, seed: int = 0) -> Competition:
    """A tiny competition in the real format: random pixels, so it is quick to write and to check."""
    rng = np.random.default_rng(seed)
    columns = [f"pixel{i}" for i in range(784)]
    train = pd.DataFrame(rng.integers(0, 256, (n_train, 784)), columns=columns)
    train.insert(0, "label", rng.integers(0, 10, n_train))
    test = pd.DataFrame(rng.integers(0, 256, (n_test, 784)), columns=columns)
    sample = pd.DataFrame({"ImageId": np.arange(1, n_test + 1), "Label": 0})
    return competition_zip(train, test, sample, rng.integers(0, 10, n_test))


def competition_zip(train: pd.DataFrame, test: pd.DataFrame, sample: pd.DataFrame,
                    test_labels: np.ndarray) -> Competition:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, frame in (("train.csv", train), ("test.csv", test), ("sample_submission.csv", sample)):
            zf.writestr(name, frame.to_csv(index=False))
    return Competition(buffer.getvalue(), np.asarray(test_labels))


@dataclass
class FakeKaggle:
    competition: Competition
    username: str = USERNAME
    key: str = KEY
    token: str = TOKEN
    rules_accepted: bool = True
    polls_until_scored: int = 2  # GetSubmission answers PENDING this many times first
    echo: bool = False  # print each call as it comes (scripts/fake_kaggle.py)
    max_daily_submissions: int = 5
    leaderboard: list[float] = field(default_factory=lambda: [1.0, 1.0, 0.99971, 0.99914, 0.99757, 0.9967,
                                                                0.99614, 0.995, 0.99171, 0.98, 0.9])
    calls: list[str] = field(default_factory=list)  # "DownloadDataFiles", "storage", "upload", ...
    submissions: list[dict] = field(default_factory=list)
    _faults: dict[str, list] = field(default_factory=dict)
    _uploads: dict[str, bytes] = field(default_factory=dict)

    def fail(self, call: str, *faults) -> None:
        """The next calls to `call` fail, one fault each: an HTTP status, or "cut" (storage only)."""
        self._faults.setdefault(call, []).extend(faults)

    def count(self, call: str) -> int:
        return self.calls.count(call)

    def __enter__(self) -> FakeKaggle:
        handler = type("Handler", (_Handler,), {"kaggle": self})
        self._server = ThreadingHTTPServer((HOST, PORT), handler)  # OSError when port 80 is not ours
        self._server.daemon_threads = True
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # What each call answers: (status, JSON body).

    def _authorized(self, header: str) -> bool:
        basic = base64.b64encode(f"{self.username}:{self.key}".encode()).decode()
        return header in (f"Basic {basic}", f"Bearer {self.token}")

    def _answer(self, call: str, body: dict) -> tuple[int, dict]:
        if call == "IntrospectToken":
            active = body.get("token") == self.token
            return 200, {"active": active, "username": self.username if active else ""}
        if call in ("DownloadDataFiles", "StartSubmissionUpload", "CreateSubmission") and not self.rules_accepted:
            return 403, {"code": 403, "message": "You must accept this competition's rules before you'll be "
                                                 "able to download files or submit."}
        if call == "StartSubmissionUpload":
            token = f"blob-{len(self._uploads) + 1}"
            self._uploads[token] = b""
            return 200, {"token": token, "createUrl": f"http://localhost{UPLOAD}{token}"}
        if call == "CreateSubmission":
            return 200, self._create_submission(body)
        if call == "GetSubmission":
            found = [s for s in self.submissions if s["ref"] == body.get("ref")]
            if not found:
                return 404, {"code": 404, "message": "Submission not found"}
            submission = found[0]
            if submission["status"] == "PENDING":
                submission["polls"] += 1
                if submission["polls"] > self.polls_until_scored:
                    submission.update(submission.pop("result"))
            return 200, _public(submission)
        if call == "ListSubmissions":
            return 200, {"submissions": [_public(s) for s in reversed(self.submissions)]}
        if call == "ListCompetitions":
            return 200, {"competitions": [{"id": 3004, "ref": "https://www.kaggle.com/competitions/digit-recognizer",
                                           "title": "Digit Recognizer",
                                           "maxDailySubmissions": self.max_daily_submissions}]}
        if call == "GetLeaderboard":
            start, size = int(body.get("pageToken") or 0), int(body.get("pageSize") or 20)
            page = sorted(self.leaderboard, reverse=True)[start:start + size]
            rows = [{"teamId": start + i + 1, "teamName": f"team {start + i + 1}", "score": f"{v:.5f}"}
                    for i, v in enumerate(page)]
            more = start + size < len(self.leaderboard)
            return 200, {"submissions": rows, "nextPageToken": str(start + size) if more else ""}
        return 404, {"code": 404, "message": f"no such call {call}"}

    def _create_submission(self, body: dict) -> dict:
        data = self._uploads.get(body.get("blobFileTokens", ""))
        ref = 51_000_001 + len(self.submissions)
        try:
            labels = pd.read_csv(io.BytesIO(data))["Label"].to_numpy()
            result = {"status": "COMPLETE", "publicScore": f"{(labels == self.competition.test_labels).mean():.5f}"}
        except Exception as err:  # Kaggle scores what it gets, and says why it could not
            result = {"status": "ERROR", "errorDescription": f"Could not score the file: {err}"}
        self.submissions.append({
            "ref": ref, "status": "PENDING", "polls": 0, "result": result, "fileName": "submission.csv",
            "description": body.get("submissionDescription", ""), "totalBytes": len(data or b""),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        })
        return {"message": "Successfully submitted to Digit Recognizer", "ref": ref}


def _public(submission: dict) -> dict:
    return {k: v for k, v in submission.items() if k not in ("polls", "result")}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    kaggle: FakeKaggle  # set on the subclass that FakeKaggle makes

    def log_message(self, *args) -> None:
        pass

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes = b"", content_type: str = "application/json",
              headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _fault(self, call: str):
        with self.kaggle._lock:
            self.kaggle.calls.append(call)
            queue = self.kaggle._faults.get(call)
            fault = queue.pop(0) if queue else None
        if self.kaggle.echo:
            print(f"fake kaggle: {self.command} {call}" + (f" -> fault {fault}" if fault else ""), flush=True)
        return fault

    def _send_fault(self, fault) -> None:
        if fault >= 500:  # as a load balancer would: not JSON
            self._send(fault, b"<html><body>Server Error</body></html>", "text/html")
        else:
            self._send(fault, json.dumps({"code": fault, "message": "fault"}).encode())

    def do_POST(self) -> None:
        body = self._body()
        if not self.path.startswith(API):
            return self._send(404)
        call = self.path.rsplit("/", 1)[-1]
        fault = self._fault(call)
        if fault is not None:
            return self._send_fault(fault)
        if call != "IntrospectToken" and not self.kaggle._authorized(self.headers.get("Authorization", "")):
            return self._send(401, json.dumps({"code": 401, "message": "Unauthenticated"}).encode())
        request = json.loads(body or b"{}")
        if call == "DownloadDataFiles" and self.kaggle.rules_accepted:
            # Kaggle answers with a redirect to a signed storage URL.
            return self._send(302, headers={"Location": f"http://localhost{STORAGE}?X-Goog-Signature=abc123"})
        with self.kaggle._lock:
            status, answer = self.kaggle._answer(call, request)
        self._send(status, json.dumps(answer).encode())

    def do_GET(self) -> None:
        if not self.path.startswith(STORAGE):
            return self._send(404)
        fault = self._fault("storage")
        data = self.kaggle.competition.zip_bytes
        if fault == "cut":  # promise the whole file, send half, hang up
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if fault is not None:
            return self._send_fault(fault)
        self._send(200, data, "application/zip",
                   {"Last-Modified": "Mon, 10 Jul 2023 12:00:00 GMT", "Accept-Ranges": "bytes"})

    def do_PUT(self) -> None:
        data = self._body()
        token = self.path[len(UPLOAD):]
        fault = self._fault("upload")
        if fault is not None:
            return self._send_fault(fault)
        with self.kaggle._lock:
            if token not in self.kaggle._uploads:
                return self._send(404)
            self.kaggle._uploads[token] = data
        self._send(200, b"{}")
