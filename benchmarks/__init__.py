"""Speed and learning benchmarks. Run each as a module from the repository root: `python -m benchmarks.NAME`."""
