"""A fake kaggle.com that answers what the installed client (kaggle 2.2.5) sends, for offline tests.

With KAGGLE_API_ENVIRONMENT=LOCALHOST the client's KaggleApi talks to http://localhost, and with this
project's KAGGLE_LOCALHOST_PORT (competition/kaggle/client.py) on that port: the fake serves a free
port it is given or picks (`environment()` says which), so any user can run it, root or not.
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

and the kernel calls, their shapes those of kagglesdk's kernels types (the answers are made with them):

    POST /api/v1/kernels.KernelsApiService/SaveKernel   {"slug", "newTitle", "text", "language", "kernelType",
         "isPrivate", "enableGpu", "enableInternet", "competitionDataSources", "machineShape",
         "sessionTimeoutSeconds"?, "dockerImage"?, ...}
         -> {"ref", "url", "versionNumber", "error"?, "invalidCompetitionSources"?, ...}; the pushed script then
         runs (FakeKaggle.runner: by default for real, in a folder laid out as Kaggle's, see KernelRun)
    POST .../GetKernelSessionStatus   {"userName", "kernelSlug", "versionLabel": "v<N>"?} -> {"status": "QUEUED" | "RUNNING" | "COMPLETE"
         | "ERROR", "failureMessage"?}
    POST .../ListKernelSessionOutput  {"userName", "kernelSlug", "versionLabel"?, "pageSize", "pageToken"}
         -> {"files": [{"fileName", "url"}], "log": JSON [{"stream_name", "time", "data"}], "nextPageToken"}
         (the files once the run has ended; each url is then a plain GET, as storage would serve it)
    POST .../GetAcceleratorQuotaStatistics   {} -> {"quotaRefreshTime", "gpuQuota": {"timeUsed": "3600s",
         "timeReserved": "0s", "totalTimeAllowed": "108000s"}, ...}
    GET /api/v1/kernels/logs/stream/<owner>/<slug>?versionLabel=v<N>   while the run runs, an event stream
         (text/event-stream): "data: {stream_name, time, data}" per log event, then "data: END_OF_LOG"; once it
         has ended, the kept log as one JSON list
    (no versionLabel: the latest version; one that is not "v<N>" of a pushed version: 404)

API calls carry `Authorization: Basic base64(username:key)` (kaggle.json, KAGGLE_USERNAME/KAGGLE_KEY) or
`Bearer <token>` (KAGGLE_API_TOKEN); errors go back as JSON {"code", "message"}, which the client raises
as requests.HTTPError. A submission is scored against the hidden test labels, as Kaggle would.

    with FakeKaggle(make_competition()) as kaggle:   # serving on a free port of 127.0.0.1 until the block ends
        os.environ.update(kaggle.environment())       # where the client finds it
        kaggle.fail("DownloadDataFiles", 500)        # the next call answers 500, the one after is normal
        kaggle.fail("storage", "cut")                # the next zip download stops half-way ("output": a kernel's file)
"""

from __future__ import annotations

import base64
import io
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from competition.kaggle.bootstrap import FAKE_GPUS_VARIABLE, ROOT_VARIABLE

HOST = "127.0.0.1"
USERNAME, KEY = "ada", "0123456789abcdef-not-a-real-key"
TOKEN = "KGAT_0123456789-not-a-real-token"
API = "/api/v1/"
STORAGE = "/storage/digit-recognizer.zip"
UPLOAD = "/upload/"
OUTPUT = "/kernel-output/"  # where a kernel's output files are served (Kaggle: signed storage URLs)
LOG_STREAM = "/api/v1/kernels/logs/stream/"  # GET <owner>/<slug>?versionLabel=v<N>: a run's log as it comes
GPU_HOURS_A_WEEK = 30


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
    echo: bool = False  # print each call as it comes (tests/serve_fake_kaggle.py)
    max_daily_submissions: int = 5
    leaderboard: list[float] = field(default_factory=lambda: [1.0, 1.0, 0.99971, 0.99914, 0.99757, 0.9967,
                                                                0.99614, 0.995, 0.99171, 0.98, 0.9])
    port: int = 0  # 0: a free one, picked when it starts
    gpu_used_s: float = 3.5 * 3600  # this week's GPU quota, as GetAcceleratorQuotaStatistics tells it
    gpu_total_s: float = GPU_HOURS_A_WEEK * 3600
    gpu_reserved_s: float = 0.0  # held by sessions still running (Kaggle's timeReserved)
    gpu_allowed: bool = True  # False: SaveKernel answers 403, as for an account that may not use GPUs
    # Makes the run of a pushed kernel: runner(script text, kernel-metadata) -> an object with
    # status() -> (status, failure message), log() -> [{"stream_name", "time", "data"}], outputs() -> folder.
    runner: Callable | None = None
    queued_polls: int = 1  # GetKernelSessionStatus answers QUEUED this many times first
    calls: list[str] = field(default_factory=list)  # "DownloadDataFiles", "storage", "upload", ...
    submissions: list[dict] = field(default_factory=list)
    kernels: dict[str, list[dict]] = field(default_factory=dict)  # slug -> its versions' pushes, oldest first
    _faults: dict[str, list] = field(default_factory=dict)
    _uploads: dict[str, bytes] = field(default_factory=dict)

    def fail(self, call: str, *faults) -> None:
        """The next calls to `call` fail, one fault each: an HTTP status, or "cut" (storage only)."""
        self._faults.setdefault(call, []).extend(faults)

    def count(self, call: str) -> int:
        return self.calls.count(call)

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def environment(self) -> dict[str, str]:
        """The variables that send the kaggle client here."""
        return {"KAGGLE_API_ENVIRONMENT": "LOCALHOST", "KAGGLE_LOCALHOST_PORT": str(self.port),
                "NO_PROXY": "localhost,127.0.0.1"}

    def __enter__(self) -> FakeKaggle:
        handler = type("Handler", (_Handler,), {"kaggle": self})
        self._server = ThreadingHTTPServer((HOST, self.port), handler)
        self.port = self._server.server_address[1]
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
        for versions in self.kernels.values():
            for version in versions:
                getattr(version["run"], "stop", lambda: None)()

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
            return 200, {"token": token, "createUrl": f"{self.url}{UPLOAD}{token}"}
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
        if call in KERNEL_CALLS:
            return self._kernel_call(call, body)
        return 404, {"code": 404, "message": f"no such call {call}"}

    # The kernel calls: answers built with kagglesdk's own types, so their JSON is the real one.

    def _kernel_call(self, call: str, body: dict) -> tuple[int, dict]:
        from kagglesdk.kernels.types import kernels_api_service as types
        from kagglesdk.kernels.types.kernels_enums import KernelWorkerStatus

        if call == "GetAcceleratorQuotaStatistics":
            # Written by hand: kagglesdk's own writer of durations drops whole days (timedelta.seconds);
            # its reader takes these ("<seconds>s") as the real API sends them.
            answer = types.ApiGetAcceleratorQuotaStatisticsResponse()
            answer.quota_refresh_time = datetime(2026, 12, 5, 0, 0)  # Kaggle's week turns on Saturday, 00:00 UTC
            return 200, {**answer.to_dict(), "gpuQuota": {"timeUsed": f"{self.gpu_used_s:.0f}s",
                                                          "timeReserved": f"{self.gpu_reserved_s:.0f}s",
                                                          "totalTimeAllowed": f"{self.gpu_total_s:.0f}s"}}
        if call == "SaveKernel":
            return self._save_kernel(body, types)
        slug = f"{body.get('userName')}/{body.get('kernelSlug')}"
        if slug not in self.kernels:
            return 404, {"code": 404, "message": f"Kernel {slug} not found"}
        versions, label = self.kernels[slug], body.get("versionLabel") or ""
        if label and not (label[:1] == "v" and label[1:].isdigit() and 0 < int(label[1:]) <= len(versions)):
            return 404, {"code": 404, "message": f"Kernel {slug} has no version {label}"}  # a bare "3" included
        number = int(label[1:]) if label else len(versions)
        version = versions[number - 1]
        status, failure = version["run"].status()
        if call == "GetKernelSessionStatus":
            version["polls"] += 1
            answer = types.ApiGetKernelSessionStatusResponse()
            answer.status = KernelWorkerStatus.QUEUED if version["polls"] <= self.queued_polls else \
                KernelWorkerStatus[status]
            if failure and answer.status == KernelWorkerStatus.ERROR:
                answer.failure_message = failure
            return 200, answer.to_dict()
        # ListKernelSessionOutput: the log so far; the files once the run has ended, a page at a time.
        answer = types.ApiListKernelSessionOutputResponse()
        answer.log = json.dumps(version["run"].log())
        if status in ("COMPLETE", "ERROR"):
            folder = version["run"].outputs()
            names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
            start, size = int(body.get("pageToken") or 0), int(body.get("pageSize") or 20)
            items = []
            for name in names[start:start + size]:
                item = types.ApiKernelSessionOutputFile()
                item.file_name, item.url = name, f"{self.url}{OUTPUT}{slug}/{number}/{name}?sig=abc123"
                items.append(item)
            answer.files = items
            answer.next_page_token = str(start + size) if start + size < len(names) else ""
        return 200, answer.to_dict()

    def _save_kernel(self, body: dict, types) -> tuple[int, dict]:
        if body.get("enableGpu") and not self.gpu_allowed:
            return 403, {"code": 403, "message": "Phone verification is required to use accelerators"}
        slug = body.get("slug", "")
        owner, _, name = slug.partition("/")
        answer = types.ApiSaveKernelResponse()
        if owner != self.username:
            return 403, {"code": 403, "message": f"You do not have permission to push kernels of {owner}"}
        wrong = [c for c in body.get("competitionDataSources") or [] if c != "digit-recognizer"]
        if wrong or not self.rules_accepted:
            answer.invalid_competition_sources = wrong or ["digit-recognizer"]
        versions = self.kernels.setdefault(slug, [])
        runner = self.runner or KernelRun
        versions.append({"metadata": {k: v for k, v in body.items() if k != "text"}, "text": body.get("text", ""),
                         "polls": 0, "run": runner(body.get("text", ""), body, self.competition)})
        answer.ref, answer.url = f"/code/{slug}", f"{self.url}/code/{slug}"
        answer.version_number, answer.kernel_id = len(versions), 70_000_000 + len(self.kernels)
        return 200, answer.to_dict()

    def output_file(self, path: str) -> bytes | None:
        """A kernel version's output file by its served path (owner/slug/version/name), or None."""
        owner, slug, version, name = (path.split("/", 3) + ["", "", "", ""])[:4]
        versions = self.kernels.get(f"{owner}/{slug}", [])
        if not version.isdigit() or not 0 < int(version) <= len(versions):
            return None
        folder = versions[int(version) - 1]["run"].outputs()
        target = (folder / name).resolve()
        return target.read_bytes() if folder.resolve() in target.parents and target.is_file() else None

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
            return self._send(302, headers={"Location": f"{self.kaggle.url}{STORAGE}?X-Goog-Signature=abc123"})
        with self.kaggle._lock:
            status, answer = self.kaggle._answer(call, request)
        self._send(status, json.dumps(answer).encode())

    def do_GET(self) -> None:
        if self.path.startswith(LOG_STREAM):
            return self._log_stream()
        if self.path.startswith(OUTPUT):
            fault = self._fault("output")
            data = self.kaggle.output_file(self.path[len(OUTPUT):].split("?", 1)[0])
            if data is None:
                return self._send(404)
        elif self.path.startswith(STORAGE):
            fault = self._fault("storage")
            data = self.kaggle.competition.zip_bytes
        else:
            return self._send(404)
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
        self._send(200, data, "application/octet-stream" if self.path.startswith(OUTPUT) else "application/zip",
                   {"Last-Modified": "Mon, 10 Jul 2023 12:00:00 GMT", "Accept-Ranges": "bytes"})

    def _log_stream(self) -> None:
        """A kernel version's log: live as an event stream while it runs, else the kept blob."""
        fault = self._fault("logs/stream")
        if fault is not None:
            return self._send_fault(fault)
        if not self.kaggle._authorized(self.headers.get("Authorization", "")):
            return self._send(401, json.dumps({"code": 401, "message": "Unauthenticated"}).encode())
        path, _, query = self.path[len(LOG_STREAM):].partition("?")
        label = dict(part.partition("=")[::2] for part in query.split("&") if part).get("versionLabel", "")
        with self.kaggle._lock:
            versions = self.kaggle.kernels.get(path)
            ok = versions and (not label or (label[1:].isdigit() and 0 < int(label[1:]) <= len(versions)))
            run = versions[int(label[1:]) - 1 if label else -1]["run"] if ok else None
        if run is None:
            return self._send(404, json.dumps({"code": 404, "message": f"Kernel {path} not found"}).encode())
        if run.status()[0] != "RUNNING":
            return self._send(200, json.dumps(run.log()).encode())
        self.send_response(200)  # no length: the stream ends when the connection closes
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        sent = 0
        while True:
            running = run.status()[0] == "RUNNING"
            events = run.log()
            for event in events[sent:]:
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            sent = len(events)
            self.wfile.flush()
            if not running:
                break
            time.sleep(0.1)
        self.wfile.write(b"data: END_OF_LOG\n\n")

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


KERNEL_CALLS = ("SaveKernel", "GetKernelSessionStatus", "ListKernelSessionOutput", "GetAcceleratorQuotaStatistics")
# Under the fake's stand-in for /kaggle: where Kaggle mounts a competition attached by competition_sources
# (since 2025; before, input/<slug>), and where a kernel writes its outputs.
KAGGLE_INPUT = "input/competitions/digit-recognizer"
KAGGLE_WORKING = "working"
GPUS_OF_SHAPE = {"NvidiaTeslaT4": 2, "NvidiaTeslaP100": 2}  # Kaggle runs a retired P100 session on two T4s


class KernelRun:
    """A pushed script kernel run for real: in a folder laid out as Kaggle's /kaggle (input/competitions/
    digit-recognizer with the competition's CSVs, working/ for its outputs and the current folder), by
    this Python as a plain script, its output lines the kernel's log. Nothing is passed to the script:
    it finds the folder as it finds /kaggle (bootstrap.ROOT_VARIABLE names the stand-in).
    NotebookRun runs it as Kaggle does."""

    def __init__(self, text: str, metadata: dict, competition: Competition):
        self.root = Path(tempfile.mkdtemp(prefix="fake-kaggle-kernel-")) / "kaggle"
        self.input, self.working = self.root / KAGGLE_INPUT, self.root / KAGGLE_WORKING
        self.working.mkdir(parents=True)
        with zipfile.ZipFile(io.BytesIO(competition.zip_bytes)) as zf:
            zf.extractall(self.input)
        self.source = self.root / "src"
        self.source.mkdir()
        self._events: list[dict] = []
        self._start = time.monotonic()
        self._process = subprocess.Popen(self.command(text), cwd=self.working, env=kernel_environment(
            self.root, metadata), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def command(self, text: str) -> list[str]:
        script = self.source / "script.py"
        script.write_text(text)
        return [sys.executable, str(script)]

    def _read(self) -> None:
        for line in self._process.stdout:
            self._events.append({"stream_name": "stdout", "time": round(time.monotonic() - self._start, 3),
                                 "data": line})

    def status(self) -> tuple[str, str]:
        code = self._process.poll()
        if code is None:
            return "RUNNING", ""
        self._reader.join()
        return ("COMPLETE", "") if code == 0 else ("ERROR", f"Your notebook tried to run but exited with code {code}")

    def log(self) -> list[dict]:
        return list(self._events)

    def outputs(self) -> Path:
        return self.working

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()


class NotebookRun(KernelRun):
    """A pushed script kernel run as Kaggle runs one: the script as the one cell of a notebook
    (__script__.ipynb), executed by nbconvert in a Jupyter kernel of `runtime` (a Python with Kaggle's
    libraries, nbconvert and ipykernel: make test's .venv-kaggle), then rendered to __results__.html;
    nbconvert's lines end the log, as on Kaggle. The runner of FakeKaggle:
    `runner=lambda text, body, competition: NotebookRun(text, body, competition, runtime)`."""

    def __init__(self, text: str, metadata: dict, competition: Competition, runtime: str | Path):
        self.runtime = str(runtime)
        super().__init__(text, metadata, competition)

    def command(self, text: str) -> list[str]:
        notebook = {"cells": [{"cell_type": "code", "execution_count": None, "id": "script", "metadata": {},
                               "outputs": [], "source": text}],
                    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
                    "nbformat": 4, "nbformat_minor": 5}
        (self.source / "__script__.ipynb").write_text(json.dumps(notebook))
        # Executed in the kernel's folder (the notebook's), errors kept in the notebook as Kaggle keeps them;
        # failed (exit 1) where the cell ended in an error, a sys.exit(N) included; then rendered.
        nbconvert = f"{shlex.quote(self.runtime)} -m nbconvert"
        failed = ("import json, sys; cells = json.load(open('__notebook__.ipynb'))['cells']; "
                  "sys.exit(any(o['output_type'] == 'error' for c in cells for o in c.get('outputs', [])))")
        return ["sh", "-c", f"cd {shlex.quote(str(self.source))} && {nbconvert} --to notebook --execute "
                "--ExecutePreprocessor.timeout=None --ExecutePreprocessor.allow_errors=True --output __notebook__ "
                f"__script__.ipynb && {shlex.quote(self.runtime)} -c {shlex.quote(failed)}; status=$?; "
                f"{nbconvert} --to html --output __results__ __notebook__.ipynb; exit $status"]

    def log(self) -> list[dict]:
        """nbconvert's lines as they come; once the notebook has run, its cell's output before the lines
        that render it (Kaggle's log has both, in that order)."""
        events = list(self._events)
        notebook = self.source / "__notebook__.ipynb"
        if self._process.poll() is None or not notebook.is_file():
            return events
        [cell] = json.loads(notebook.read_text())["cells"]
        when = events[-1]["time"] if events else 0.0
        printed = [{"stream_name": output.get("name", "stderr"), "time": when,
                    "data": "".join(output["text"]) if "text" in output else
                    "\n".join([*output.get("traceback", [])[-1:], f"{output['ename']}: {output['evalue']}\n"])}
                   for output in cell.get("outputs", []) if output.get("output_type") in ("stream", "error")]
        rendering = next((i for i, event in enumerate(events) if "to html" in event["data"]), len(events))
        return events[:rendering] + printed + events[rendering:]


def kernel_environment(root: Path, metadata: dict) -> dict[str, str]:
    """A kernel's environment: this one less what a kernel knows nothing of (ours, the client's), with
    the fake's stand-in for /kaggle and the GPUs its accelerator has (faked: the CPU trains)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("KAGGLE_", "DIGITS_", "PYTHONPATH"))}
    gpus = GPUS_OF_SHAPE.get(metadata.get("machineShape") or "", 0) if metadata.get("enableGpu") else 0
    return {**env, ROOT_VARIABLE: str(root), FAKE_GPUS_VARIABLE: str(gpus)}


def digits_competition(n_test: int = 360, seed: int = 0) -> Competition:
    """scikit-learn's digits in the competition's format (as `make demo-data`, not marked as demo), scored
    against their test labels: a competition a model can learn in one epoch."""
    from competition.data.demo import demo_images
    from competition.data.digits import PIXEL_COLUMNS

    images, labels = demo_images()
    order = np.random.default_rng(seed).permutation(len(images))
    test_idx, train_idx = order[:n_test], order[n_test:]
    pixels = images.reshape(len(images), -1)
    train = pd.DataFrame(pixels[train_idx], columns=PIXEL_COLUMNS)
    train.insert(0, "label", labels[train_idx])
    test = pd.DataFrame(pixels[test_idx], columns=PIXEL_COLUMNS)
    sample = pd.DataFrame({"ImageId": np.arange(1, n_test + 1), "Label": 0})
    return competition_zip(train, test, sample, labels[test_idx])
