"""The project's one way to Kaggle: the `kaggle` client, with credentials, retries and clear errors.

The kaggle package (2.x, with kagglesdk) does the talking, through its Python API. Around it, this
module finds credentials where that client looks for them, warns when a file holding them is readable
by other users, never prints a key or token, retries network errors and 5xx with backoff a bounded
number of times, and turns HTTP errors into messages that say what to do:

    401  the credentials are wrong, expired or revoked: make a new token at TOKEN_URL
    403  this account has not accepted the competition's rules: accept them at RULES_URL

KAGGLE_API_ENVIRONMENT=LOCALHOST points the client at http://localhost (the tests' fake Kaggle), and
this project's KAGGLE_LOCALHOST_PORT moves that to another port, so the fake needs no port 80 (root).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from common.errors import RemoteError

COMPETITION = "digit-recognizer"
RULES_URL = "https://www.kaggle.com/competitions/{competition}/rules"
TOKEN_URL = "https://www.kaggle.com/settings/api"
# Network errors, 429 and 5xx are tried RETRIES more times, after BACKOFF_S, then twice as long each
# time: 2 + 4 + 8 + 16 = 30 s of waiting at most, then a clear error.
RETRIES = 4
BACKOFF_S = 2.0
# Files that hold a secret, beside kaggle.json; the client reads them from ~/.kaggle whatever
# KAGGLE_CONFIG_DIR says.
ACCESS_TOKEN_FILES = ("~/.kaggle/access_token", "~/.kaggle/access_token.txt")
OAUTH_FILE = "~/.kaggle/credentials.json"  # written by `kaggle auth login`
# A call about one kernel (status, output) answered 401, 403 or 404: Kaggle answers all three for a slug
# this account cannot see (a wrong one, another account's private kernel, one deleted).
NO_KERNEL = ("no such kernel for this account (HTTP {status}): a wrong slug, another account's kernel, or "
             "deleted on Kaggle; --new pushes another")
# A refused push: Kaggle's own reason, and the two usual causes.
PUSH_REFUSED = ("Kaggle refused the push (HTTP {status}: {reason}): a kernel can be pushed only to this account's own "
                "slugs, and Kaggle lends GPUs only to accounts with a verified phone number "
                "(https://www.kaggle.com/settings)")
# The public leaderboard is read a page at a time, best first, until a score below the user's.
LEADERBOARD_PAGE = 200
LEADERBOARD_PAGES = 25

# With KAGGLE_API_ENVIRONMENT=LOCALHOST: the port of the fake Kaggle (the client itself knows only port 80).
ENVIRONMENT_VARIABLE = "KAGGLE_API_ENVIRONMENT"
LOCALHOST_PORT_VARIABLE = "KAGGLE_LOCALHOST_PORT"

T = TypeVar("T")


class KaggleError(RemoteError):
    """Kaggle could not be reached, or refused; the message says what to do and holds no secret."""


class _UploadFailed(Exception):
    """The client reports a failed upload in its return value, not as an exception."""


def import_kaggle_api():
    """The client's KaggleApi class.

    Importing `kaggle` signs in on the spot (kaggle/__init__.py) and prints its own help when there
    are no credentials; find_credentials() says that once, in this project's words, so that text is
    dropped here.
    """
    with contextlib.redirect_stdout(io.StringIO()):
        from kaggle.api.kaggle_api_extended import KaggleApi
    if os.environ.get(ENVIRONMENT_VARIABLE) == "LOCALHOST" and os.environ.get(LOCALHOST_PORT_VARIABLE):
        _local_endpoint_for_tests()
    return KaggleApi


def _local_endpoint_for_tests() -> None:
    """Only for the tests' fake Kaggle (KAGGLE_API_ENVIRONMENT=LOCALHOST with KAGGLE_LOCALHOST_PORT):
    the client's LOCALHOST endpoint at that port, read now (a test picks a free one). kagglesdk has no
    setting for it, so its private table of endpoints is written; a user's session never gets here."""
    from kagglesdk import kaggle_env

    port = os.environ.get(LOCALHOST_PORT_VARIABLE, "").strip()
    if port and not port.isdigit():
        raise KaggleError(f"{LOCALHOST_PORT_VARIABLE}={port!r}: expected a port number")
    kaggle_env._env_to_endpoint[kaggle_env.KaggleEnv.LOCAL] = f"http://localhost:{port}" if port else "http://localhost"


def find_credentials(config_file: str | Path) -> str:
    """Where the client will find credentials, for messages (never the secret itself).

    In the client's order: an access token (KAGGLE_API_TOKEN, ~/.kaggle/access_token), then a legacy
    key (KAGGLE_USERNAME and KAGGLE_KEY, each beating kaggle.json), then `kaggle auth login`'s OAuth.
    Warns when a file holding a secret is readable by others; raises KaggleError when there is none.
    """
    config = Path(config_file)
    token_files = [Path(name).expanduser() for name in ACCESS_TOKEN_FILES]
    for secret in (config, *token_files):
        if os.name != "nt" and secret.is_file() and secret.stat().st_mode & 0o044:
            print(f"warning: {secret} holds a Kaggle secret and is readable by other users; "
                  f"run: chmod 600 {secret}", file=sys.stderr)

    if os.environ.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    for path in token_files:
        if path.is_file() and path.read_text().strip():
            return str(path)
    legacy = _read_kaggle_json(config)
    from_env = [name for name in ("KAGGLE_USERNAME", "KAGGLE_KEY") if os.environ.get(name)]
    if (os.environ.get("KAGGLE_USERNAME") or legacy.get("username")) and (
            os.environ.get("KAGGLE_KEY") or legacy.get("key")):
        return " and ".join(from_env) if len(from_env) == 2 else " and ".join([str(config), *from_env])
    if Path(OAUTH_FILE).expanduser().is_file():
        return f"{OAUTH_FILE} (kaggle auth login)"
    raise KaggleError(
        "no Kaggle credentials found. Make an API token at " + TOKEN_URL + " (\"Generate New Token\"), "
        "then either\n"
        "  export KAGGLE_API_TOKEN=<the token>    (or save it, alone, in ~/.kaggle/access_token)\n"
        "or, with a legacy API key (\"Create Legacy API Key\" downloads kaggle.json),\n"
        f"  save it as {config} and run: chmod 600 {config}\n"
        "  (or export KAGGLE_USERNAME=<your username> KAGGLE_KEY=<the key>)"
    )


def _read_kaggle_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        values = json.loads(path.read_text() or "{}")
    except json.JSONDecodeError as err:  # the error names a position, never the content
        raise KaggleError(f"{path}: not valid JSON ({err}); expected "
                          '{"username": "<your username>", "key": "<the key>"}') from None
    return values if isinstance(values, dict) else {}


class KaggleClient:
    """One competition on Kaggle: download its data, submit, read submissions. Signs in when made."""

    def __init__(self, competition: str = COMPETITION, retries: int = RETRIES, backoff_s: float = BACKOFF_S):
        KaggleApi = import_kaggle_api()
        self.competition, self.retries, self.backoff_s = competition, retries, backoff_s
        self.rules_url = RULES_URL.format(competition=competition)
        self.source = find_credentials(KaggleApi.config)
        self._api = KaggleApi()
        # VERBOSE=1 makes the client print each request's headers, Authorization included.
        self._api.args = [arg for arg in KaggleApi.args if arg not in ("--verbose", "-v")]
        self._call("sign in", self._sign_in)
        self.username = self._api.config_values.get("username") or "?"

    def _sign_in(self) -> None:
        try:
            # The client prints its own permission warning and help text; ours came first.
            with contextlib.redirect_stdout(io.StringIO()):
                self._api.authenticate()
        except SystemExit:  # the client exits when it accepts none of the credentials it found
            raise KaggleError(f"sign in: Kaggle did not accept the credentials from {self.source}: the token "
                              f"is wrong, expired or revoked. Make a new one at {TOKEN_URL}.") from None

    def download_data(self, dest: Path) -> int:
        """Download the competition's zip to dest (a temporary name: the caller verifies, renames); bytes."""
        from kagglesdk.competitions.types.competition_api_service import (
            ApiDownloadDataFilesRequest,
        )

        def once() -> int:
            request = ApiDownloadDataFilesRequest()
            request.competition_name = self.competition
            with self._api.build_kaggle_client() as kaggle:
                response = kaggle.competitions.competition_api_client.download_data_files(request)
                # max_retries=0: the client's own retries wait up to a minute each and append to the
                # partial file; ours start the file again, with this client's bounded backoff.
                self._api.download_file(response, str(dest), kaggle.http_client(), quiet=True, resume=False,
                                        max_retries=0)
            return dest.stat().st_size

        return self._call("download", once)

    def submit(self, path: Path, message: str) -> int:
        """Upload path as a submission with this message; its ref, to poll."""

        def once() -> int:
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):  # the client prints upload errors instead of raising
                result = self._api.competition_submit(str(path), message, self.competition, quiet=True)
            if result.message == self._api.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE:
                raise _UploadFailed(f"upload failed: {printed.getvalue().strip() or 'no reason given'}")
            if not result.ref:
                raise KaggleError(f"submit: Kaggle did not confirm the submission: {result.message!r}")
            return result.ref

        return self._call("submit", once)

    def submission(self, ref: int):
        """The submission (kagglesdk ApiSubmission): status, public_score, error_description, ..."""
        from kagglesdk.competitions.types.competition_api_service import (
            ApiGetSubmissionRequest,
        )

        def once():
            request = ApiGetSubmissionRequest()
            request.ref = int(ref)
            # The sdk's call, not KaggleApi.get_submission: that one retries by itself for minutes.
            with self._api.build_kaggle_client() as kaggle:
                return kaggle.competitions.competition_api_client.get_submission(request)

        return self._call(f"submission {ref}", once)

    def submissions(self) -> list:
        """This account's submissions to the competition, newest first."""
        return self._call("list submissions", lambda: self._api.competition_submissions(self.competition)) or []

    def daily_limit(self) -> int | None:
        """Submissions a day Kaggle takes for the competition (its day ends at 00:00 UTC); None if unsaid."""
        def once():
            listed = self._api.competitions_list(search=self.competition)
            for competition in getattr(listed, "competitions", None) or []:
                if (competition.ref or "").rstrip("/").rsplit("/", 1)[-1] == self.competition:
                    return competition.max_daily_submissions or None
            return None

        return self._call("competition's daily limit", once)

    def teams_above(self, score: float, pages: int = LEADERBOARD_PAGES) -> tuple[int, bool]:
        """How many teams of the public leaderboard score above `score`, and whether that count is
        complete (False when the first `pages` pages were all above it). The leaderboard is sorted
        best first, so paging stops at the first score that is not above."""
        from kagglesdk.competitions.types.competition_api_service import (
            ApiGetLeaderboardRequest,
        )

        above, token = 0, ""
        for _ in range(pages):
            def once(token=token):
                request = ApiGetLeaderboardRequest()
                request.competition_name, request.page_size, request.page_token = self.competition, LEADERBOARD_PAGE, token
                with self._api.build_kaggle_client() as kaggle:
                    return kaggle.competitions.competition_api_client.get_leaderboard(request)

            page = self._call("leaderboard", once)
            scores = [float(row.score) for row in page.submissions or [] if row.score]
            higher = [value for value in scores if value > score]
            above += len(higher)
            if len(higher) < len(scores) or not page.next_page_token:
                return above, True
            token = page.next_page_token
        return above, False

    # Script kernels (make kaggle-best, competition/kaggle/kernel.py), through kagglesdk's own calls:
    # KaggleApi's kernels_status and kernels_logs turn 401 and 403 into a ValueError about slugs.

    def push_kernel(self, folder: Path, timeout_s: int | None = None):
        """Push the kernel in folder (kernel-metadata.json and its code file): Kaggle saves a new version
        and starts running it, stopped after timeout_s if given. The response (kagglesdk
        ApiSaveKernelResponse: ref, url, version_number, ...). Not tried again: a push whose answer was lost
        may have started a run (and spends GPU quota)."""
        def once():
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):  # its slug advice
                response = self._api.kernels_push(str(folder), timeout=str(timeout_s) if timeout_s else None)
            if response.error:
                raise KaggleError(f"push: Kaggle did not take the kernel: {response.error}")
            if response.invalid_competition_sources:
                raise KaggleError(f"push: Kaggle did not attach the competition's data ({self.competition}) to the "
                                  f"kernel: accept the competition's rules at {self.rules_url}, then run this again")
            return response

        return self._call("push", once, retries=0, refusals={403: PUSH_REFUSED})

    @staticmethod
    def _kernel_request(request, slug: str, version: int | None):
        """request (a kagglesdk kernel request) for slug's version (None: the latest), as the client writes
        a version: "v<N>" (the API answers 404 to a bare number)."""
        request.user_name, request.kernel_slug = slug.split("/", 1)
        if version:
            request.version_label = f"v{version}"
        return request

    def kernel_status(self, slug: str, version: int | None = None) -> tuple[str, str]:
        """A kernel version's run (None: the latest): its status (QUEUED, RUNNING, COMPLETE, ERROR,
        CANCEL_...) and failure message."""
        from kagglesdk.kernels.types.kernels_api_service import (
            ApiGetKernelSessionStatusRequest,
        )

        def once():
            request = self._kernel_request(ApiGetKernelSessionStatusRequest(), slug, version)
            with self._api.build_kaggle_client() as kaggle:
                response = kaggle.kernels.kernels_api_client.get_kernel_session_status(request)
            return response.status.name, response.failure_message or ""

        return self._call(f"kernel {slug}", once, refusals=KERNEL_REFUSALS)

    def kernel_output(self, slug: str, version: int | None = None, page_token: str = "", page_size: int = 100):
        """One page of a kernel version's run's output (None: the latest): files (file_name, url), its log
        (JSON, a list of {stream_name, time, data}), next_page_token (ApiListKernelSessionOutputResponse)."""
        from kagglesdk.kernels.types.kernels_api_service import (
            ApiListKernelSessionOutputRequest,
        )

        def once():
            request = self._kernel_request(ApiListKernelSessionOutputRequest(), slug, version)
            request.page_size, request.page_token = page_size, page_token
            with self._api.build_kaggle_client() as kaggle:
                return kaggle.kernels.kernels_api_client.list_kernel_session_output(request)

        return self._call(f"kernel {slug}'s output", once, refusals=KERNEL_REFUSALS)

    def kernel_log_stream(self, slug: str, version: int | None = None) -> Iterator[str]:
        """A running kernel version's log as it is written (the client's kernels_logs_stream: Kaggle's
        event stream while the session runs, the kept log once it has ended), a line at a time. Not
        retried: a caller that loses it falls back to polling."""
        import requests

        kernel = f"{slug}/{version}" if version else slug
        try:
            for event in self._api.kernels_logs_stream(kernel):
                yield from (event.get("data") or "").splitlines()
        except ValueError:  # the client's word for 401 and 403 on this call
            raise KaggleError(f"kernel {slug}'s log: no such kernel for this account") from None
        except (requests.RequestException, *_urllib3_errors()) as err:
            raise self._explain(f"kernel {slug}'s log", err, KERNEL_REFUSALS) from None

    def download_url(self, url: str, dest: Path, what: str) -> int:
        """Download url (a kernel's output file, a signed storage URL: no credentials) to dest; bytes.
        A cut download is started again from nothing, with this client's backoff."""
        import requests

        def once() -> int:
            response = requests.get(url, stream=True, timeout=300)
            response.raise_for_status()
            self._api.download_file(response, str(dest), None, quiet=True, resume=False, max_retries=0)
            return dest.stat().st_size

        return self._call(what, once)

    def gpu_quota(self):
        """This account's weekly GPU quota (kagglesdk ApiAcceleratorQuota: time_used, time_reserved by
        sessions still running, total_time_allowed, timedeltas) and when it refreshes (a UTC datetime, or None)."""
        response = self._call("GPU quota", self._api.quota_view)
        return response.gpu_quota, response.quota_refresh_time

    def _call(self, what: str, fn: Callable[[], T], retries: int | None = None,
              refusals: dict[int, str] | None = None) -> T:
        """fn(), tried again on network errors, 429 and 5xx (retries times, default the client's); any
        failure becomes a KaggleError. refusals: what an HTTP status means here, where not what it means for
        the competition ({status} and {reason}, Kaggle's own words, are filled in)."""
        import requests

        retries = self.retries if retries is None else retries
        for attempt in range(retries + 1):
            try:
                return fn()
            except (requests.RequestException, _UploadFailed, *_urllib3_errors()) as err:
                reason = _transient(err)
                if reason is None:
                    raise self._explain(what, err, refusals or {}) from None
                if attempt == retries:
                    raise KaggleError(f"{what}: gave up after {attempt + 1} tries (last: {reason}). "
                                      "Check the network and https://www.kaggle.com, then run again.") from None
                wait = self.backoff_s * 2**attempt
                print(f"kaggle: {what}: {reason}; try {attempt + 2} of {retries + 1} in {wait:.1f}s",
                      file=sys.stderr)
                time.sleep(wait)
        raise AssertionError("unreachable")

    def _explain(self, what: str, err: Exception, refusals: dict[int, str]) -> KaggleError:
        status = _status(err)
        if status in refusals:
            return KaggleError(f"{what}: " + refusals[status].format(status=status, reason=_reason(err)))
        if status == 401:
            return KaggleError(f"{what}: Kaggle refused the credentials from {self.source} (401 Unauthorized): "
                               f"the key or token is wrong, expired or revoked. Make a new one at {TOKEN_URL}.")
        if status == 403:
            return KaggleError(f"{what}: Kaggle refused access to the competition {self.competition} "
                               "(403 Forbidden): this account has not accepted its rules. "
                               f"Accept them at {self.rules_url}, then run this again.")
        if status == 404:
            return KaggleError(f"{what}: Kaggle found no such thing (404) for the competition "
                               f"{self.competition}: {_clean(err)}")
        return KaggleError(f"{what}: {_clean(err)}")


KERNEL_REFUSALS = {401: NO_KERNEL, 403: NO_KERNEL, 404: NO_KERNEL}


def _reason(err: Exception) -> str:
    """Kaggle's own words in an error answer ({"code", "message"}), else the status's name."""
    response = getattr(err, "response", None)
    try:
        message = response.json().get("message")
    except (AttributeError, ValueError):
        message = None
    return str(message)[:200] if message else getattr(response, "reason", "") or "no reason given"


def _urllib3_errors() -> tuple[type[Exception], ...]:
    import urllib3.exceptions

    return (urllib3.exceptions.ProtocolError, urllib3.exceptions.TimeoutError)


def _status(err: Exception) -> int | None:
    response = getattr(err, "response", None)
    return response.status_code if response is not None else None


def _transient(err: Exception) -> str | None:
    """Why err is worth another try (a short reason), or None when trying again would not help."""
    import requests

    status = _status(err)
    if status is not None:
        return f"HTTP {status}" if status >= 500 or status == 429 else None
    if isinstance(err, _UploadFailed):
        return str(err)
    if isinstance(err, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                        *_urllib3_errors())):
        cause = re.search(r"\[Errno -?\d+\] [^\"')]+", str(err))  # "[Errno 111] Connection refused"
        return f"network error, {type(err).__name__}: {cause.group(0) if cause else _clean(err)}"
    return None


def _clean(err: Exception) -> str:
    """The error's text, short, without URL query strings (signed storage URLs carry signatures)."""
    while len(err.args) == 1 and isinstance(err.args[0], BaseException):  # requests wraps urllib3's errors
        err = err.args[0]
    text = err.args[0] if len(err.args) > 1 and isinstance(err.args[0], str) else str(err)  # (text, cause)
    return re.sub(r"(https?://[^\s?'\"]+)\?[^\s'\")]*", r"\1", text)[:300]
