"""``python -m cnnspec``: the ``cnnspec`` console script, for an environment whose scripts
folder is not on ``PATH`` (or to pick the interpreter: ``.venv/bin/python -m cnnspec``)."""

from cnnspec.cli.app import main

if __name__ == "__main__":
    main()
