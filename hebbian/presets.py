"""Run configurations: the paper's defaults per task, merged with a TOML file and flags.

A run configuration is one flat dict (what `config.json` holds) with these keys:

    env_id, env_options (dict), morphologies (list or None),
    network, hidden, rule, activation, init, init_scale, normalize, encoder, encoder_sha256,
    coeff_penalty, strategy, popsize, generations, sigma, lr, episodes, seed,
    workers, backend, ray_address, eval_every, eval_episodes, quiet

`resolve_config(env_id, file_values, flag_values)` starts from the task's preset
(`preset_for`), overrides it with a TOML file's values, then with the command line's, and
checks the result. `problem_from_config(cfg)` builds the fitness problem it describes.
"""
from __future__ import annotations

import envs
from hebbian.agent import AgentConfig, AgentProblem
from hebbian.encoders import make_encoder

# Defaults for any Gymnasium id: MLP obs-128-64-act, the paper's rule and ES settings.
GENERIC = {
    "env_options": {},
    "morphologies": None,
    "network": "hebbian",
    "hidden": [128, 64],
    "rule": "ABCD_lr",
    "activation": "tanh",
    "init": "uniform",
    "init_scale": 0.1,
    "normalize": True,          # the paper normalises weights on every non-Bullet task
    "encoder": None,
    "encoder_sha256": None,     # filled in for pretrained:PATH encoders; checked when loading
    "coeff_penalty": 0.0,
    "strategy": "openai-es",
    "popsize": 64,
    "generations": 100,
    "sigma": 0.1,
    "lr": 0.2,
    "episodes": 1,
    "seed": 0,
    "workers": None,            # None: one worker per CPU
    "backend": "ray",
    "ray_address": None,        # None: local in-process Ray, unless RAY_ADDRESS is set
    "eval_every": 10,
    "eval_episodes": 10,
    "quiet": False,
}

# The paper's setups (Najarro & Risi 2020).
PRESETS = {
    "car_racing": {
        "encoder": "cnn",       # 3x84x84 -> 648 features, 1,362 evolved weights
        "hidden": [128, 64],    # plastic 648-128-64-3: 456,640 ABCD_lr coefficients
        "popsize": 200,
        "generations": 300,
        "lr": 0.2,
        "sigma": 0.1,
        "episodes": 1,
        # Training stops an episode after 20 negative rewards in a row (the paper's early stop).
        "env_options": {"neg_reward_limit": 20},
    },
    "quadruped": {
        "hidden": [128, 64],    # 28-128-64-8: 12,288 synapses, 61,440 coefficients
        "normalize": False,     # the paper did not normalise on the Bullet tasks
        "popsize": 200,
        "generations": 300,
        "lr": 0.2,
        "sigma": 0.1,
        "episodes": 1,
    },
    "generic": {},
}

KEYS = ("env_id", *GENERIC)
NETWORKS = ("hebbian", "static")
BACKENDS = ("ray", "serial")


def preset_for(env_id: str) -> dict:
    """The full default configuration for `env_id` (raises envs.UnknownEnvironmentError)."""
    family = envs.task_family(envs.canonical_id(env_id))
    cfg = {"env_id": env_id, **GENERIC, **PRESETS[family]}
    cfg["env_options"] = dict(cfg["env_options"])
    return cfg


def resolve_config(env_id: str, file_values: dict | None = None, flag_values: dict | None = None) -> dict:
    """Preset < TOML file < flags. Values of None in `flag_values` mean "not given".

    Raises ValueError (one line) for unknown keys or impossible values.
    """
    cfg = preset_for(env_id)
    for source, values in (("config file", file_values or {}), ("command line", flag_values or {})):
        unknown = sorted(set(values) - set(KEYS))
        if unknown:
            raise ValueError(f"unknown setting(s) in the {source}: {', '.join(unknown)}; known: {', '.join(KEYS)}")
        for key, value in values.items():
            if value is None:
                continue
            if key == "env_options":
                cfg["env_options"] = {**cfg["env_options"], **value}
            else:
                cfg[key] = value
    cfg["env_id"] = env_id
    _check(cfg)
    if cfg["encoder"] and cfg["encoder"].startswith("pretrained:"):
        # The weights file is named by path: record its checksum, so a resumed run, or one
        # watched later, refuses a file that changed.
        from hebbian.encoders.pretrained import encoder_checksum

        cfg["encoder_sha256"] = encoder_checksum(cfg["encoder"][len("pretrained:"):])
    if cfg["encoder"] and envs.task_family(env_id) == "car_racing" and "frame_size" not in cfg["env_options"]:
        # Frames are rendered at the size the encoder takes (84 for the paper's CNN, the full
        # 96 for patch attention); written into the config so config.json says which.
        encoder = make_encoder(cfg["encoder"], **encoder_options(cfg))
        cfg["env_options"]["frame_size"] = int(encoder.obs_shape[-1])
    return cfg


def _check(cfg: dict) -> None:
    for key in ("popsize", "generations", "episodes", "eval_episodes"):
        if not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ValueError(f"{key} must be a positive whole number, got {cfg[key]!r}")
    if not isinstance(cfg["eval_every"], int) or cfg["eval_every"] < 0:
        raise ValueError(f"eval_every must be 0 (only at the end) or a positive whole number, got {cfg['eval_every']!r}")
    if cfg["workers"] is not None and (not isinstance(cfg["workers"], int) or cfg["workers"] < 1):
        raise ValueError(f"workers must be a positive whole number, got {cfg['workers']!r}")
    if not all(isinstance(h, int) and h > 0 for h in cfg["hidden"]):
        raise ValueError(f"hidden layer widths must be positive whole numbers, got {cfg['hidden']!r}")
    for key in ("sigma", "lr", "init_scale"):
        if not cfg[key] > 0:
            raise ValueError(f"{key} must be positive, got {cfg[key]!r}")
    if cfg["network"] not in NETWORKS:
        raise ValueError(f"network must be one of {', '.join(NETWORKS)}, got {cfg['network']!r}")
    if cfg["backend"] not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {cfg['backend']!r}")


def encoder_options(cfg: dict) -> dict:
    """Keyword options of the run's encoder (the checksum a pretrained one must match)."""
    return {"sha256": cfg["encoder_sha256"]} if cfg.get("encoder_sha256") else {}


def agent_config(cfg: dict) -> AgentConfig:
    """The AgentConfig that a run configuration describes."""
    return AgentConfig(network=cfg["network"], hidden=tuple(cfg["hidden"]), rule=cfg["rule"],
                       activation=cfg["activation"], init=cfg["init"], init_scale=cfg["init_scale"],
                       normalize=cfg["normalize"], encoder=cfg["encoder"], encoder_options=encoder_options(cfg))


def problem_from_config(cfg: dict, **env_overrides) -> AgentProblem:
    """The fitness problem of a run configuration; `env_overrides` replace env options (e.g. for evaluation)."""
    # The canonical id, so that worker processes build the env without repeating the alias notice.
    return AgentProblem(envs.canonical_id(cfg["env_id"]), agent_config(cfg),
                        env_options={**cfg["env_options"], **env_overrides},
                        morphologies=cfg["morphologies"], coeff_penalty=cfg["coeff_penalty"])
