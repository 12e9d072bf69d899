"""Submit a run's submission.csv to Kaggle and wait for its public score; or list past submissions.

    python -m competition.submit                                   # the run `make submission` picks
    python -m competition.submit --run 20261127-081500-report-aug --message "model 2, 30 epochs"
    python -m competition.submit --list                            # past submissions and their scores

Nothing is sent until the file passes the checks against test.csv: header ImageId,Label, one row per
test image, ImageId 1..N in order, labels 0..9. The message names the run and its validation accuracy
unless --message says otherwise. Kaggle is then polled until the submission is scored (at most
--timeout_s, one progress line per poll); the public score is printed and recorded, with the ref and
the message, in the run's kaggle_submissions.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from competition import startup

startup.begin()  # before TensorFlow loads: Keras' backend, its start-up lines quieted

from common.digits_csv import (
    SUBMISSION_FILE,
    SubmissionError,
    check_submission,
)
from common.errors import add_debug_flag, exit_status
from common.writing import write_json
from competition.cli import add_data_dir, add_models_dir, add_retry_flags, add_run_flag
from competition.config import DATA_DIR, MODELS_DIR
from competition.data.digits import load_test
from competition.data.reading import read_csv, read_json
from competition.kaggle.client import BACKOFF_S, RETRIES, KaggleClient, KaggleError
from competition.runs.choosing import default_run, run_by_id
from competition.runs.layout import METRICS_FILE

RECORD_FILE = "kaggle_submissions.json"  # in the run folder: every submission made from it, with scores
TIMEOUT_S = 600.0  # Kaggle scores this competition in seconds; past ten minutes, check back later
POLL_S = 5.0


def checked_submission(folder: Path, data_dir: str | Path) -> tuple[Path, int]:
    """The run's submission.csv and its rows, once it is fit to send; SubmissionError otherwise."""
    path = folder / SUBMISSION_FILE
    if not path.is_file():
        raise SubmissionError(f"{path}: not there; run `make submission RUN={folder.name}` first")
    if _metrics(folder).get("demo_data"):
        raise SubmissionError(f"run {folder.name} was trained on DEMO data (scikit-learn digits): "
                              "its submission is not for Kaggle")
    test = load_test(data_dir)
    if test.demo:
        raise SubmissionError(f"{test.source} is DEMO data: check against the competition's test.csv "
                              "(`make data`, or --data_dir)")
    frame = read_csv(path)
    check_submission(frame, len(test), str(path))
    return path, len(frame)


def default_message(folder: Path) -> str:
    """The run and what it recorded of itself: its validation accuracy, or a recipe's CV estimate."""
    metrics = _metrics(folder)
    accuracy = (metrics.get("validation") or {}).get("accuracy")  # None for a model of every row
    if accuracy is not None:
        return f"{folder.name} (val accuracy {accuracy:.5f})"
    estimate = (metrics.get("estimate") or {}).get("accuracy")
    return folder.name + (f" (CV estimate {estimate:.5f})" if estimate is not None else "")


def wait_for_score(client: KaggleClient, ref: int, timeout_s: float = TIMEOUT_S, poll_s: float = POLL_S):
    """Poll until Kaggle has scored submission ref (COMPLETE or ERROR); KaggleError past timeout_s."""
    start = time.monotonic()
    while True:
        submission = client.submission(ref)
        status = submission.status.name
        elapsed = time.monotonic() - start
        if status in ("COMPLETE", "ERROR"):
            return submission
        if elapsed + poll_s > timeout_s:
            raise KaggleError(f"submission {ref} is still {status} after {elapsed:.0f}s; Kaggle will score it "
                              "later: see `make submissions`")
        print(f"submit: scoring, {status} after {elapsed:.0f}s (waiting up to {timeout_s:.0f}s)", flush=True)
        time.sleep(poll_s)


def submit_run(run: str | None = None, data_dir: str | Path = DATA_DIR, models_dir: str | Path = MODELS_DIR,
        message: str | None = None, timeout_s: float = TIMEOUT_S, poll_s: float = POLL_S,
        retries: int = RETRIES, backoff_s: float = BACKOFF_S) -> str:
    """Check, submit and wait; the public score."""
    chosen = run_by_id(models_dir, run) if run else default_run(models_dir)
    if not run:
        print(chosen.line())
    folder = chosen.folder
    path, rows = checked_submission(folder, data_dir)
    message = message or default_message(folder)
    client = KaggleClient(retries=retries, backoff_s=backoff_s)
    print(f"submit: {path} ({rows:,} rows, checked against test.csv) to {client.competition} "
          f"as {client.username}: {message!r}")
    ref = client.submit(path, message)
    record = {"ref": ref, "message": message, "file": str(path),
              "submitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "status": "PENDING"}
    _record(folder, record)
    print(f"submit: uploaded, ref {ref}")
    scored = wait_for_score(client, ref, timeout_s, poll_s)  # past the timeout the record says PENDING
    record.update(status=scored.status.name, public_score=scored.public_score)
    _record(folder, record)
    if scored.status.name == "ERROR":
        raise KaggleError(f"Kaggle could not score submission {ref}: "
                          f"{(scored.error_description or '').strip() or 'no reason given'}")
    print(f"submit: public score {scored.public_score} (ref {ref}, {message!r}) -> {folder / RECORD_FILE}")
    return scored.public_score


def list_submissions(retries: int = RETRIES, backoff_s: float = BACKOFF_S) -> list:
    """Past submissions and their scores; then how many Kaggle takes today and where the best stands."""
    client = KaggleClient(retries=retries, backoff_s=backoff_s)
    submissions = client.submissions()
    if not submissions:
        print(f"submissions: none yet to {client.competition} by {client.username}")
    else:
        print(f"{'ref':>10}  {'date (UTC)':<16}  {'status':<8}  {'public':>7}  description")
        for s in submissions:
            date = s.date.strftime("%Y-%m-%d %H:%M") if s.date else ""
            print(f"{s.ref:>10}  {date:<16}  {s.status.name:<8}  {s.public_score or '':>7}  {s.description or ''}")
    for line in standing(client, submissions):
        print(line)
    return submissions


def standing(client: KaggleClient, submissions: list, now: datetime | None = None) -> list[str]:
    """Submissions left today and the best public score's place on the leaderboard, as far as Kaggle
    says; a line saying so where it does not (the listing stands without them)."""
    now = now or datetime.now(timezone.utc)
    lines = []
    try:
        limit = client.daily_limit()
    except KaggleError as err:
        lines.append(f"submissions: today's limit unknown ({err})")
    else:
        today = sum(1 for s in submissions if s.date and _utc(s.date).date() == now.date())
        if limit:
            until = 24 * 60 - (now.hour * 60 + now.minute)
            lines.append(f"submissions: {max(limit - today, 0)} of {limit} left today ({today} made; Kaggle's day "
                         f"ends at 00:00 UTC, in {until // 60}h {until % 60:02d}m)")
        else:
            lines.append(f"submissions: {today} made today; Kaggle does not say its daily limit")
    scored = [float(s.public_score) for s in submissions if s.public_score]
    if not scored:
        lines.append("leaderboard: no scored submission yet")
        return lines
    best = max(scored)
    try:
        above, complete = client.teams_above(best)
    except KaggleError as err:
        lines.append(f"leaderboard: your best public score {best:.5f}; its place unknown ({err})")
    else:
        place = f"#{above + 1}" if complete else f"below #{above}"
        lines.append(f"leaderboard: your best public score {best:.5f} places you {place} on the public "
                     f"leaderboard ({above:,} teams score higher)")
    return lines


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)  # Kaggle's are UTC


def _metrics(folder: Path) -> dict:
    path = folder / METRICS_FILE
    return read_json(path) if path.is_file() else {}


def _record(folder: Path, entry: dict) -> None:
    path = folder / RECORD_FILE
    entries = read_json(path) if path.is_file() else []
    entries = [e for e in entries if e.get("ref") != entry["ref"]] + [entry]
    write_json(path, entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="list past submissions instead of submitting")
    add_run_flag(parser)
    add_data_dir(parser)
    add_models_dir(parser)
    parser.add_argument("--message", default=None,
                        help="submission description (default: the run id and its validation accuracy)")
    parser.add_argument("--timeout_s", type=float, default=TIMEOUT_S,
                        help="stop waiting for the score after this long (default: %(default)s)")
    parser.add_argument("--poll_s", type=float, default=POLL_S, help="seconds between polls (default: %(default)s)")
    add_retry_flags(parser, RETRIES, BACKOFF_S)
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.timeout_s <= 0 or args.poll_s <= 0 or args.retries < 0 or args.backoff_s < 0:
        parser.error("--timeout_s and --poll_s must be above 0, --retries and --backoff_s 0 or more")
    if args.list:
        return exit_status(lambda: list_submissions(args.retries, args.backoff_s), args.debug)
    return exit_status(lambda: submit_run(args.run, args.data_dir, args.models_dir, args.message, args.timeout_s,
                                   args.poll_s, args.retries, args.backoff_s), args.debug)


if __name__ == "__main__":
    sys.exit(main())
