#!/usr/bin/env python
"""Evolve Hebbian plasticity rules (or static weights) on a Gymnasium task.

    python scripts/evolve.py CarRacing-v2                          # the paper's setup
    python scripts/evolve.py CarRacing-v2 --preset attention-agent # Tang et al.'s agent
    python scripts/evolve.py LunarLander-v3 --popsize 64 --generations 200
    python scripts/evolve.py CarRacing-v2 --print-config           # the resolved settings, as JSON
    python scripts/evolve.py --config runs/X/config.json           # the same run again
    python scripts/evolve.py --resume runs/CarRacing-v3/20261128T101500Z-0

Settings come from the task's preset (the paper's reference code for CarRacing, the
quadruped and every other id), then a TOML or JSON file (--config; a run's own config.json
reproduces it), then the flags; the resolved set goes to <run>/config.json. Every flag
below is also a TOML key (the flag's name with underscores), flat or in the table of its
group ([agent], [evolution], ...).
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import _checkout  # noqa: F401  (first: the packages below must be this checkout's)
import envs
import es
from hebbian import config as rc
from hebbian import presets
from hebbian.cli import OneLineParser, exit_unexpected, first_line, interrupted_status, sigterm_as_interrupt

GROUP_TITLES = {"env": "task", "agent": "agent", "evolution": "evolution",
                "strategy_options": "strategy hyperparameters (default: the chosen strategy's own)",
                "execution": "execution (may change on --resume)"}


def _flag_kwargs(name: str, meta: dict) -> dict:
    kind = meta["kind"]
    kwargs = {"help": f"{meta['help']} ({presets.default_description(name)})", "default": None}
    if kind == "bool":
        kwargs["action"] = argparse.BooleanOptionalAction
    elif kind in ("ints", "strs"):
        kwargs.update(nargs="+", type=int if kind == "ints" else str, metavar="N" if kind == "ints" else "NAME")
    else:
        kwargs["type"] = {"int": int, "float": float, "str": str}[kind]
    if meta["choices"]:
        kwargs["choices"] = meta["choices"]
    return kwargs


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("env_id", nargs="?", help="Gymnasium id or alias, e.g. CarRacing-v2, AntBulletEnv-v0, LunarLander-v3")
    p.add_argument("--config", type=Path, help="TOML or JSON file of settings (a run's config.json reproduces that run)")
    p.add_argument("--preset", help="the task's preset: paper (default; every task), attention-agent (CarRacing)")
    p.add_argument("--print-config", action="store_true", help="print the resolved settings as JSON and exit")
    groups = {g: p.add_argument_group(title) for g, title in GROUP_TITLES.items()}
    for name, (group, meta) in rc.FIELDS.items():
        if meta["flag"]:
            groups[group].add_argument("--" + name.replace("_", "-"), dest=name, **_flag_kwargs(name, meta))
    t = groups["env"]
    t.add_argument("--env-option", action="append", metavar="KEY=VALUE", default=None,
                   help="an option of envs.make, VALUE in TOML syntax (e.g. neg_reward_limit=20); repeatable")
    t.add_argument("--morphology", help="quadruped: the one body to train on (default: healthy)")
    t.add_argument("--max-steps", type=int, help="cap on env steps per episode (default: the task's time limit; "
                                                  "the quadruped's counts its 40 burn-in steps, as the reference)")
    t.add_argument("--exact-env", action="store_true", default=None,
                   help="CarRacing: train on Gymnasium's own environment instead of the fast identical one")
    x = groups["execution"]
    x.add_argument("--run-dir", type=Path, help="run folder (default: runs/<env-id>/<UTC time>-<seed>/)")
    x.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR, bit for bit")
    return p


def _parse_env_option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise rc.ConfigError(f"--env-option must be KEY=VALUE, got {text!r}")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare word is a string
    return key.strip(), parsed


def flag_values(args: argparse.Namespace) -> dict:
    """The settings given on the command line, by setting name (None = not given)."""
    values = {name: getattr(args, name) for name, (_, meta) in rc.FIELDS.items() if meta["flag"]}
    values["preset"] = args.preset
    env_options = dict(_parse_env_option(t) for t in args.env_option or [])
    if args.morphology is not None:
        env_options["morphology"] = args.morphology
    if args.exact_env:
        env_options["exact_env"] = True
    if args.max_steps is not None:
        if args.max_steps < 1:
            raise rc.ConfigError(f"--max-steps must be a positive whole number, got {args.max_steps}")
        env_options["max_episode_steps"] = args.max_steps
    values["env_options"] = env_options or None
    return values


def load_file(path: Path) -> dict:
    """A TOML file, or JSON when it ends in .json (a run's config.json); ConfigError if unreadable."""
    if path.is_dir():
        raise rc.ConfigError(f"config file {path} is a folder; give a .toml file or a run's config.json")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise rc.ConfigError(f"config file {path} does not exist") from None
    except OSError as e:
        raise rc.ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    try:
        if path.suffix == ".json":
            return json.loads(data)
        return tomllib.loads(data.decode())
    except (ValueError, UnicodeDecodeError) as e:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise rc.ConfigError(f"config file {path} is not valid {kind}: {str(e).splitlines()[0]}") from None


def configure(args: argparse.Namespace) -> tuple[rc.RunConfig, Path, bool]:
    """(resolved configuration, run folder, resuming?) from the parsed arguments."""
    if args.resume is not None:
        if args.run_dir is not None and args.run_dir.resolve() != args.resume.resolve():
            raise rc.ConfigError(f"--resume {args.resume} continues that folder; --run-dir {args.run_dir} names "
                                 "another (drop --run-dir)")
        saved = es.read_config(args.resume)
        cfg = presets.from_saved(saved, f"{args.resume}/config.json")
        es_run = saved.get("es_run", {})
        for key in ("generations", "eval_every"):  # changed by an earlier resume: es_run has what is in force
            value = es_run.get(key)
            if isinstance(value, int) and value != getattr(cfg.evolution, key):
                cfg = cfg.replace(**{key: value})
        if "stop" in es_run:  # the stop rule in force, also when an earlier resume set or dropped it
            stop = es_run["stop"] if isinstance(es_run["stop"], dict) else {}
            cfg = cfg.replace(stop_score=stop.get("score"), stop_evals=stop.get("evals", cfg.evolution.stop_evals))
        given = {k: v for k, v in flag_values(args).items() if v is not None}
        if args.env_id is not None and envs.canonical_id(args.env_id) != envs.canonical_id(cfg.env.env_id):
            raise rc.ConfigError(f"{args.resume} is a run of {cfg.env.env_id}, not {args.env_id}")
        saved_values = cfg.flat()

        def changes(key, value):
            if key == "env_options":
                return any(saved_values["env_options"].get(k, object()) != v for k, v in value.items())
            return saved_values[key] != value

        fixed = sorted(k for k, v in given.items() if k not in rc.RESUMABLE and changes(k, v))
        if fixed or args.config is not None:
            raise rc.ConfigError(f"a resumed run keeps its settings; only {', '.join(rc.RESUMABLE)} may change "
                                 f"(got {', '.join(fixed) or '--config'})")
        return cfg.replace(**{k: v for k, v in given.items() if k in rc.RESUMABLE}), args.resume, True
    file_values = load_file(args.config) if args.config is not None else {}
    env_id = args.env_id
    if env_id is not None:
        with warnings.catch_warnings(record=True) as notices:
            warnings.simplefilter("always", envs.EnvironmentAliasWarning)
            envs.canonical_id(env_id, warn=True)
        for notice in notices:  # one plain line, not a Python warning with its source line
            print(f"note: {notice.message}", file=sys.stderr)
    cfg = presets.resolve(env_id, file_values, flag_values(args), file_label=str(args.config))
    run_dir = args.run_dir
    if run_dir is None and not args.print_config:
        run_dir = es.make_run_dir(envs.canonical_id(cfg.env.env_id), cfg.evolution.seed)
    return cfg, run_dir, False


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg, run_dir, resume = configure(args)
        if args.print_config:
            print(json.dumps(cfg.to_dict(), indent=2))
            return 0
        problem = presets.problem_from_config(cfg)
        strategy = presets.strategy_from_config(cfg, problem.num_params)
        evaluator = presets.evaluator_from_config(cfg, problem)
    except (ValueError, es.UsageError) as e:  # ConfigError and envs.UnknownEnvironmentError are ValueErrors
        parser.exit(2, f"evolve.py: error: {first_line(e)}\n")
    except TypeError as e:  # an env option of the wrong type, refused by the env's own constructor
        parser.exit(2, f"evolve.py: error: cannot build the task with these options: {first_line(e)}\n")
    except MemoryError:
        parser.exit(2, "evolve.py: error: the agent does not fit in this machine's memory; use smaller --hidden\n")
    ev = cfg.evolution
    resume_hint = f"what is saved is kept; continue with: python scripts/evolve.py --resume {run_dir}"
    try:
        with sigterm_as_interrupt(), evaluator:
            result = es.evolve(problem, strategy, evaluator, run_dir, generations=ev.generations,
                               episodes=ev.episodes, seed=ev.seed, eval_every=ev.eval_every,
                               eval_episodes=ev.eval_episodes, config=cfg.to_dict(), resume=resume,
                               progress="quiet" if cfg.execution.quiet else "auto",
                               keep_checkpoints=cfg.execution.keep_checkpoints, stop_score=ev.stop_score,
                               stop_evals=ev.stop_evals)
    except es.UsageError as e:
        parser.exit(2, f"evolve.py: error: {first_line(e)}\n")
    except es.ESError as e:  # the run broke (NaN fitness, a crashing problem): what is saved stays usable
        parser.exit(1, f"evolve.py: error: {first_line(e)}; every generation before it is saved in {run_dir}\n")
    except OSError as e:  # a full disk, a folder made read-only during the run
        where = f" {e.filename}" if e.filename else ""
        parser.exit(1, f"evolve.py: error: cannot write{where}: {e.strerror or e}; {resume_hint}\n")
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: every finished generation is saved
        status, word = interrupted_status(e)
        print(f"\n{word}; continue with: python scripts/evolve.py --resume {run_dir}", file=sys.stderr)
        return status
    except Exception as e:  # a bug: still one line, the traceback on request
        exit_unexpected(parser, e)
    final = "" if result.final_eval_mean is None else \
        f"; centre on held-out seeds {result.final_eval_mean:.1f} +/- {result.final_eval_std:.1f}"
    if result.stopped_early:
        print(f"stopped by the stop rule: {ev.stop_evals} held-out evaluations in a row reached {ev.stop_score:g}")
    print(f"done: {result.generations} generations, {result.env_steps} env steps{final}; run folder {result.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
