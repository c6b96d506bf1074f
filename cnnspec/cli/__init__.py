"""The command-line interface: one module per command, joined in :mod:`cnnspec.cli.app`."""
