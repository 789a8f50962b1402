"""Run a command-line script's `main` in the test process (its imports are paid once)."""
from __future__ import annotations

import importlib.util
import sys


def run_script_main(script, argv, capsys):
    """(exit status, stdout, stderr) of `script`'s main(argv); SystemExit gives the status."""
    folder = str(script.parent)  # as `python script` does: the script's folder first, for scripts/_checkout.py
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"{script.stem}_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        status = module.main([str(a) for a in argv])
    except SystemExit as e:
        status = e.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err
