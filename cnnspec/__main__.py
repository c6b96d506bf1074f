"""``python -m cnnspec``: the ``cnnspec`` console script, for an environment whose scripts
folder is not on ``PATH`` (or to pick the interpreter: ``.venv/bin/python -m cnnspec``)."""

import sys

from cnnspec.cli.app import main

if __name__ == "__main__":
    # the command as a run's lock.json and messages record it: `cnnspec train …`, not this file
    sys.argv[0] = "cnnspec"
    main(prog_name="python -m cnnspec")
