"""Serve a fake kaggle.com on 127.0.0.1:80, to try `make data`, `make submit` and `make submissions` offline.

    sudo .venv/bin/python scripts/fake_kaggle.py                      # until Ctrl-C
    sudo .venv/bin/python scripts/fake_kaggle.py --rules_not_accepted  # downloads and submits answer 403
    sudo .venv/bin/python scripts/fake_kaggle.py --fail DownloadDataFiles:500 --fail storage:cut

then, in another shell, with the environment it prints (the credentials are the fake's own):

    KAGGLE_API_ENVIRONMENT=LOCALHOST KAGGLE_USERNAME=ada KAGGLE_KEY=... make data DATA_DIR=/tmp/fake/data

It is the tests' fake (competition/kaggle/fake.py), answering what the installed kaggle client sends. The
competition it serves is scikit-learn's digits in the real format (as `make demo-data`), and it scores
submissions against their test labels. Port 80 because the client's LOCALHOST environment has no other.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from competition.data.demo import demo_images  # noqa: E402
from competition.data.digits import PIXEL_COLUMNS  # noqa: E402
from competition.kaggle.fake import KEY, USERNAME, FakeKaggle, competition_zip  # noqa: E402


def digits_competition(n_test: int = 360, seed: int = 0):
    images, labels = demo_images()
    order = np.random.default_rng(seed).permutation(len(images))
    test_idx, train_idx = order[:n_test], order[n_test:]
    pixels = images.reshape(len(images), -1)
    train = pd.DataFrame(pixels[train_idx], columns=PIXEL_COLUMNS)
    train.insert(0, "label", labels[train_idx])
    test = pd.DataFrame(pixels[test_idx], columns=PIXEL_COLUMNS)
    sample = pd.DataFrame({"ImageId": np.arange(1, n_test + 1), "Label": 0})
    return competition_zip(train, test, sample, labels[test_idx])


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
    args = parser.parse_args(argv)
    kaggle = FakeKaggle(digits_competition(), rules_accepted=not args.rules_not_accepted,
                        polls_until_scored=args.polls_until_scored, echo=True)
    for spec in args.fail:
        call, _, fault = spec.partition(":")
        kaggle.fail(call, fault if fault == "cut" else int(fault))
    try:
        kaggle.__enter__()
    except OSError as err:
        print(f"error: cannot serve on 127.0.0.1:80 ({err}); run as root", file=sys.stderr)
        return 1
    print("fake kaggle: serving on http://localhost:80; use it with\n"
          f"  export KAGGLE_API_ENVIRONMENT=LOCALHOST KAGGLE_USERNAME={USERNAME} KAGGLE_KEY={KEY}", flush=True)
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
