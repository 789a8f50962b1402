#!/usr/bin/env python
"""Evolve Hebbian plasticity rules (or static weights) on a Gymnasium task.

    python scripts/evolve.py CarRacing-v2                 # the paper's setup
    python scripts/evolve.py LunarLander-v3 --popsize 64 --generations 200
    python scripts/evolve.py --resume runs/CarRacing-v2/20261128T101500Z-0

Settings come from the task's preset (the paper's for CarRacing and the quadruped), then a
TOML file (--config), then the flags; the resolved set goes to <run>/config.json.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import envs
import es
from hebbian import presets
from hebbian.rules import RULE_NAMES

# Settings that may change when a run is resumed: where and how it runs, not what it computes.
RESUMABLE = ("workers", "backend", "ray_address", "quiet", "generations")


def _default(key: str) -> str:
    values = {family: {**presets.GENERIC, **p}[key] for family, p in presets.PRESETS.items()}
    if len(set(map(repr, values.values()))) == 1:
        return f"default: {values['generic']}"
    return "default: " + ", ".join(f"{family} {value}" for family, value in values.items())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("env_id", nargs="?", help="Gymnasium id or alias, e.g. CarRacing-v2, AntBulletEnv-v0, LunarLander-v3")
    p.add_argument("--config", type=Path, help="TOML file of settings (same names as the flags, with underscores)")
    a = p.add_argument_group("agent")
    a.add_argument("--network", choices=presets.NETWORKS, help=_default("network"))
    a.add_argument("--rule", choices=RULE_NAMES, help=_default("rule"))
    a.add_argument("--hidden", type=int, nargs="+", help=f"hidden layer widths ({_default('hidden')})")
    a.add_argument("--activation", choices=("tanh", "relu", "linear"), help=_default("activation"))
    a.add_argument("--init", choices=("uniform", "normal", "xavier", "coevolve"), help=_default("init"))
    a.add_argument("--init-scale", type=float, help=_default("init_scale"))
    a.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                   help=f"divide each layer by its max |w| after every update ({_default('normalize')})")
    a.add_argument("--encoder", help=f"pixel encoder, e.g. cnn, patch-attention ({_default('encoder')})")
    a.add_argument("--coeff-penalty", type=float, help=f"fitness -= this x mean(coeff^2) ({_default('coeff_penalty')})")
    t = p.add_argument_group("task")
    t.add_argument("--morphologies", nargs="+", metavar="NAME",
                   help=f"quadruped: train on the mean over these bodies ({', '.join(envs.MORPHOLOGIES)})")
    t.add_argument("--morphology", help="quadruped: the one body to train on (default: healthy)")
    t.add_argument("--max-steps", type=int, help="cap on steps per episode (default: the environment's time limit)")
    t.add_argument("--exact-env", action="store_true", default=None,
                   help="CarRacing: train on Gymnasium's own environment instead of the fast identical one")
    e = p.add_argument_group("evolution")
    e.add_argument("--strategy", choices=es.STRATEGY_NAMES, help=_default("strategy"))
    e.add_argument("--popsize", type=int, help=_default("popsize"))
    e.add_argument("--generations", type=int, help=_default("generations"))
    e.add_argument("--sigma", type=float, help=_default("sigma"))
    e.add_argument("--lr", type=float, help=_default("lr"))
    e.add_argument("--episodes", type=int, help=f"episodes per individual ({_default('episodes')})")
    e.add_argument("--seed", type=int, help=_default("seed"))
    e.add_argument("--eval-every", type=int, help=f"evaluate the centre on held-out seeds every K generations, "
                                                  f"0 = only at the end ({_default('eval_every')})")
    e.add_argument("--eval-episodes", type=int, help=_default("eval_episodes"))
    r = p.add_argument_group("execution")
    r.add_argument("--backend", choices=presets.BACKENDS, help=_default("backend"))
    r.add_argument("--workers", type=int, help="Ray workers (default: one per CPU of the cluster)")
    r.add_argument("--ray-address", help="join a Ray cluster ('auto', or set RAY_ADDRESS); default: local in-process Ray")
    r.add_argument("--run-dir", type=Path, help="run folder (default: runs/<env-id>/<UTC time>-<seed>/)")
    r.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR, bit for bit")
    r.add_argument("--quiet", action="store_true", default=None, help="one plain line per generation, no progress bar")
    return p


def flag_values(args: argparse.Namespace) -> dict:
    """The settings given on the command line, as configuration keys (None = not given)."""
    values = {k: v for k, v in vars(args).items()
              if k in presets.KEYS and k not in ("env_id", "env_options")}
    env_options = {}
    if args.morphology is not None:
        env_options["morphology"] = args.morphology
    if args.exact_env:
        env_options["exact_env"] = True
    if args.max_steps is not None:
        if args.max_steps < 1:
            raise ValueError(f"--max-steps must be a positive whole number, got {args.max_steps}")
        env_options["max_episode_steps"] = args.max_steps
    values["env_options"] = env_options or None
    return values


def load_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"config file {path} is not valid TOML: {e}") from None


def configure(args: argparse.Namespace) -> tuple[dict, Path, bool]:
    """(resolved configuration, run folder, resuming?) from the parsed arguments."""
    if args.resume is not None:
        cfg = {k: v for k, v in es.read_config(args.resume).items() if k in presets.KEYS}
        given = {k: v for k, v in flag_values(args).items() if v is not None}
        if args.env_id is not None and args.env_id != cfg["env_id"]:
            raise ValueError(f"{args.resume} is a run of {cfg['env_id']}, not {args.env_id}")
        fixed = sorted(set(given) - set(RESUMABLE))
        if fixed or args.config is not None:
            raise ValueError(f"a resumed run keeps its settings; only {', '.join(RESUMABLE)} may change "
                             f"(got {', '.join(fixed) or '--config'})")
        cfg.update(given)
        return cfg, args.resume, True
    if args.env_id is None:
        raise ValueError("name an environment id (e.g. CarRacing-v2) or --resume RUN_DIR")
    file_values = load_toml(args.config) if args.config is not None else {}
    file_values.pop("env_id", None)
    with warnings.catch_warnings(record=True) as notices:
        warnings.simplefilter("always", envs.EnvironmentAliasWarning)
        envs.canonical_id(args.env_id, warn=True)
    for notice in notices:  # one plain line, not a Python warning with its source line
        print(f"note: {notice.message}", file=sys.stderr)
    cfg = presets.resolve_config(args.env_id, file_values, flag_values(args))
    run_dir = args.run_dir or es.make_run_dir(envs.canonical_id(args.env_id), cfg["seed"])
    return cfg, run_dir, False


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        cfg, run_dir, resume = configure(args)
        problem = presets.problem_from_config(cfg)
        strategy = es.make_strategy(cfg["strategy"], problem.num_params, cfg["popsize"], cfg["sigma"], cfg["lr"])
        if cfg["backend"] == "serial":
            evaluator = es.SerialEvaluator(problem)
        else:
            evaluator = es.RayEvaluator(problem, num_workers=cfg["workers"],
                                        address=cfg["ray_address"] or os.environ.get("RAY_ADDRESS"))
    except (ValueError, es.UsageError) as e:  # envs.UnknownEnvironmentError is a ValueError
        parser.exit(2, f"evolve.py: error: {e}\n")
    try:
        with evaluator:
            result = es.evolve(problem, strategy, evaluator, run_dir, generations=cfg["generations"],
                               episodes=cfg["episodes"], seed=cfg["seed"], eval_every=cfg["eval_every"],
                               eval_episodes=cfg["eval_episodes"], config=cfg, resume=resume,
                               progress="quiet" if cfg["quiet"] else "auto")
    except es.UsageError as e:
        parser.exit(2, f"evolve.py: error: {e}\n")
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: python scripts/evolve.py --resume {run_dir}", file=sys.stderr)
        return 130
    final = "" if result.final_eval_mean is None else \
        f"; centre on held-out seeds {result.final_eval_mean:.1f} +/- {result.final_eval_std:.1f}"
    print(f"done: {result.generations} generations, {result.env_steps} env steps{final}; run folder {result.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
