"""Serve a fake kaggle.com on 127.0.0.1, to try `make data`, `make submit`, `make submissions` and
`make kaggle-best` offline.

    .venv/bin/python tests/serve_fake_kaggle.py                      # on port 8080 until Ctrl-C
    .venv/bin/python tests/serve_fake_kaggle.py --rules_not_accepted  # downloads and submits answer 403
    .venv/bin/python tests/serve_fake_kaggle.py --fail DownloadDataFiles:500 --fail storage:cut
    .venv/bin/python tests/serve_fake_kaggle.py --gpu_used_h 29        # a week's GPU quota nearly spent
    .venv/bin/python tests/serve_fake_kaggle.py --notebook .venv-kaggle/bin/python   # kernels run as Kaggle runs them

then, in another shell, with the environment it prints (the credentials are the fake's own):

    KAGGLE_API_ENVIRONMENT=LOCALHOST KAGGLE_LOCALHOST_PORT=8080 KAGGLE_USERNAME=ada KAGGLE_KEY=... \
        make data DATA_DIR=/tmp/fake/data

It is the tests' fake (tests/fake_kaggle.py), answering what the installed kaggle client sends. The
competition it serves is scikit-learn's digits in the real format (as `make demo-data`), and it scores
submissions against their test labels; a pushed kernel runs for real, here (its KernelRun; with --notebook,
as a notebook executed by nbconvert in a Jupyter kernel of that Python, its NotebookRun), its two T4s faked.
"""

from __future__ import annotations

import argparse
import sys
import time

# Run as a file (python tests/serve_fake_kaggle.py): its folder, where the fake lives, is on the path.
from fake_kaggle import KEY, USERNAME, FakeKaggle, NotebookRun, digits_competition


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules_not_accepted", action="store_true",
                        help="answer 403 to downloads and submissions, as for an account that has not "
                             "accepted the rules")
    parser.add_argument("--fail", action="append", default=[], metavar="CALL:FAULT",
                        help="fail the next CALL (DownloadDataFiles, storage, StartSubmissionUpload, "
                             "CreateSubmission, GetSubmission, ...) with FAULT (an HTTP status, or cut); repeatable")
    parser.add_argument("--polls_until_scored", type=int, default=2,
                        help="GetSubmission answers PENDING this many times first (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port to serve on (default: %(default)s)")
    parser.add_argument("--gpu_used_h", type=float, default=3.5,
                        help="GPU hours of this week's 30 used already (default: %(default)s)")
    parser.add_argument("--notebook", metavar="PYTHON", default=None,
                        help="run pushed kernels as Kaggle does, a notebook executed by nbconvert, in a Jupyter kernel "
                             "of this Python (one with nbconvert and ipykernel: make .venv-kaggle/.installed)")
    args = parser.parse_args(argv)
    kaggle = FakeKaggle(digits_competition(), rules_accepted=not args.rules_not_accepted,
                        polls_until_scored=args.polls_until_scored, echo=True, port=args.port,
                        gpu_used_s=args.gpu_used_h * 3600)
    if args.notebook:
        kaggle.runner = lambda text, body, competition: NotebookRun(text, body, competition, args.notebook)
    for spec in args.fail:
        call, _, fault = spec.partition(":")
        kaggle.fail(call, fault if fault == "cut" else int(fault))
    try:
        kaggle.__enter__()
    except OSError as err:
        print(f"error: cannot serve on 127.0.0.1:{args.port} ({err}); pick another --port", file=sys.stderr)
        return 1
    print(f"fake kaggle: serving on {kaggle.url}; use it with\n"
          f"  export KAGGLE_API_ENVIRONMENT=LOCALHOST KAGGLE_LOCALHOST_PORT={kaggle.port} "
          f"KAGGLE_USERNAME={USERNAME} KAGGLE_KEY={KEY}", flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        kaggle.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
