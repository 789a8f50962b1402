"""Run a command-line script's `main` in the test process (its imports are paid once)."""
from __future__ import annotations

import importlib.util


def run_script_main(script, argv, capsys):
    """(exit status, stdout, stderr) of `script`'s main(argv); SystemExit gives the status."""
    spec = importlib.util.spec_from_file_location(f"{script.stem}_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        status = module.main([str(a) for a in argv])
    except SystemExit as e:
        status = e.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err
