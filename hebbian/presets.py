"""Presets per task, resolving a run configuration, and building a run from it.

`resolve(env_id, file_values, flag_values)` starts from the defaults of `hebbian.config`
(the reference code's), applies the task's preset (`PRESETS`), then a TOML/JSON file's
values, then the command line's, checks every value, and fills in what the run derives
(the chosen strategy's own hyperparameters, a pretrained encoder's checksum, the frame
size an encoder takes). `problem_from_config`, `strategy_from_config` and
`evaluator_from_config` build the pieces `es.evolve` runs.

The presets, and where each number comes from:

    ("car_racing", "paper")   Najarro & Risi 2020, enajx/HebbianMetaLearning: the CNN
        (1,362 weights) + plastic 648-128-64-3 ABCD_lr (456,640 coefficients), weights
        normalised by max |w| after every update, tanh/sigmoid/sigmoid action head on the
        linear output, the stop after more than 20 negative rewards in a row.
    ("car_racing", "attention-agent")   Tang et al. 2020, AttentionAgent's
        configs/CarRacing.gin: patch self-attention (1,184) -> top-10 patch centres -> LSTM
        with 16 hidden units -> 3 tanh outputs (2,483), 3,667 evolved parameters started
        at PyTorch's default initialisation; CMA-ES, population 256, sigma 0.1, 16 rollouts
        per individual, 2,000 generations, 100 held-out episodes every 10 generations.
    ("quadruped", "paper")   the reference on AntBulletEnv-v0: 28-128-64-8, no
        normalisation, output tanh(W x) (the squashed output is the update's post activity).
    ("generic", "paper")   any other id: an MLP obs-128-64-act with the reference's ES
        settings, which it uses for every task.

Shared by the paper's presets (config defaults, = the reference's): OpenAI-ES with
standardised centred ranks, population 200, 300 generations, lr 0.2 (x0.995 per
generation while > 0.001), sigma 0.1 (x0.999 while > 0.01), starting centre N(0, 1),
fitness -= 0.01 x mean(coefficients^2), uniform [-0.1, 0.1] initial weights every episode.
"""
from __future__ import annotations

import dataclasses
import inspect
import os

import envs
import es
from hebbian.agent import AgentProblem
from hebbian.config import (
    FIELDS,
    GROUPS,
    ConfigError,
    RunConfig,
    StrategyConfig,
    check_value,
    flatten,
)
from hebbian.encoders import make_encoder
from hebbian.encoders.pretrained import encoder_checksum

PRESETS: dict[tuple[str, str], dict] = {
    ("car_racing", "paper"): {
        "encoder": "cnn",
        "env_options": {"neg_reward_limit": 20},
    },
    ("car_racing", "attention-agent"): {
        "encoder": "patch-attention",
        "network": "lstm",
        "hidden": [16],
        "output_activation": "tanh",
        "normalize": False,
        "strategy": "cma",
        "popsize": 256,
        "sigma": 0.1,
        "lr": None,
        "episodes": 16,
        "generations": 2000,
        "centre_init": "torch-default",
        "coeff_penalty": 0.0,
        "eval_every": 10,
        "eval_episodes": 100,
        "env_options": {"neg_reward_limit": 20},
    },
    ("quadruped", "paper"): {
        "normalize": False,
        "output_activation": "tanh",
    },
    ("generic", "paper"): {},
}
DEFAULT_PRESET = "paper"


def preset_names(family: str) -> list[str]:
    """The presets of a task family, e.g. ["paper", "attention-agent"] for "car_racing"."""
    return [name for fam, name in PRESETS if fam == family]


def preset_values(env_id: str, preset: str | None = None) -> dict:
    """Every setting's value for `env_id` under `preset` (default: "paper"), as a flat dict."""
    family = envs.task_for(env_id).name
    preset = preset or DEFAULT_PRESET
    if (family, preset) not in PRESETS:
        raise ConfigError(f"no preset {preset!r} for {env_id}; its presets are {', '.join(preset_names(family))}")
    values = RunConfig.from_flat({}).flat()
    values.update(PRESETS[(family, preset)])
    values["env_options"] = dict(values["env_options"])
    values.update(env_id=env_id, preset=preset)
    return values


# -- the strategy's own defaults ----------------------------------------------------------
_OPTIMIZER_SETTINGS = {"sgd": {"momentum": "momentum"}, "clipup": {"momentum": "momentum", "max_speed": "max_speed"},
                       "adam": {"adam_beta1": "beta1", "adam_beta2": "beta2", "adam_epsilon": "epsilon"}}


def _signature_defaults(cls) -> dict:
    return {name: p.default for name, p in inspect.signature(cls).parameters.items()
            if p.default is not inspect.Parameter.empty}


def strategy_settings(strategy: str) -> dict:
    """The StrategyConfig settings `strategy` has and their defaults (the strategy's and its
    optimiser's own), e.g. {"shaping": "standardized_ranks", "optimizer": "sgd", ...}."""
    own = _signature_defaults(es.STRATEGIES[strategy])
    names = [f.name for f in dataclasses.fields(StrategyConfig)]
    return {k: own[k] for k in names if k in own}


def optimizer_settings(optimizer: str) -> dict:
    """StrategyConfig names of `optimizer`'s settings and their defaults, e.g. {"momentum": 0.0}."""
    cls = es.optim.OPTIMIZERS[optimizer]
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    return {key: defaults[arg] for key, arg in _OPTIMIZER_SETTINGS[optimizer].items()}


def _fill_strategy(values: dict, explicit: set) -> None:
    """Put the chosen strategy's defaults where the settings say None; refuse settings the
    strategy does not have when the user gave them, drop them when a preset did."""
    name = values["strategy"]
    applicable = strategy_settings(name)
    if "optimizer" in applicable:
        if values.get("optimizer") is None:
            values["optimizer"] = applicable["optimizer"]
        applicable.update(optimizer_settings(values["optimizer"]))
    keys = [f.name for f in dataclasses.fields(StrategyConfig)]
    if name in ("openai-es", "pgpe"):
        applicable["lr"] = None  # applies, but its default is the task preset's
    keys.append("lr")  # CMA-ES adapts its own step: there is no lr to set
    for key in keys:
        if key in applicable:
            if values.get(key) is None and applicable[key] is not None:
                values[key] = applicable[key]
        elif values.get(key) is not None:
            if key in explicit:
                raise ConfigError(f"{key} does not apply to strategy {name} (or its optimiser); remove it")
            values[key] = None
    if name in ("openai-es", "pgpe") and values.get("lr") is None:
        raise ConfigError(f"strategy {name} needs an lr")


# -- resolving ------------------------------------------------------------------------------
def resolve(env_id: str | None, file_values: dict | None = None, flag_values: dict | None = None,
            file_label: str = "the config file") -> RunConfig:
    """Defaults < the task's preset < file < flags, checked and completed; see the module docstring.

    env_id: the task (None: the file's env_id). file_values: a TOML/JSON document (flat or
    grouped, config.json's layout included). flag_values: setting name -> value from the
    command line, None meaning "not given". Raises ConfigError (one line).
    """
    file_flat = flatten(file_values or {}, file_label)
    flags = {k: v for k, v in (flag_values or {}).items() if v is not None}
    unknown = sorted(set(flags) - set(FIELDS) - {"preset"})
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}")
    env_id = env_id or flags.get("env_id") or file_flat.get("env_id")
    if not env_id:
        raise ConfigError("name an environment id (e.g. CarRacing-v2) or --resume RUN_DIR")
    check_value("env_id", env_id, FIELDS["env_id"][1])
    values = preset_values(env_id, flags.get("preset") or file_flat.get("preset"))
    explicit: set = set()
    for source, layer in ((file_label, file_flat), ("the command line", flags)):
        for key, value in layer.items():
            if key in ("env_id", "preset"):
                continue
            value = check_value(key, value, FIELDS[key][1], source)
            explicit.add(key)
            values[key] = {**values["env_options"], **value} if key == "env_options" else value
    values["env_id"] = env_id
    _fill_strategy(values, explicit)
    cfg = RunConfig.from_flat(values)
    return _derive(cfg)


def _derive(cfg: RunConfig) -> RunConfig:
    """Fill in what the run derives from its settings (recorded in config.json)."""
    agent, env = cfg.agent, cfg.env
    if agent.encoder and agent.encoder.startswith("pretrained:") and agent.encoder_sha256 is None:
        # The weights file is named by path: record its checksum, so a resumed run, or one
        # watched later, refuses a file that changed.
        cfg = cfg.replace(encoder_sha256=encoder_checksum(agent.encoder[len("pretrained:"):]))
    if agent.encoder and envs.task_for(env.env_id).pixels and "frame_size" not in env.env_options:
        # Frames are rendered at the size the encoder takes (84 for the paper's CNN, the full
        # 96 for patch attention); written into the config so config.json says which.
        encoder = make_encoder(agent.encoder, **encoder_options(cfg))
        cfg = cfg.replace(env_options={**env.env_options, "frame_size": int(encoder.obs_shape[-1])})
    return cfg


def from_saved(saved: dict, source: str = "config.json") -> RunConfig:
    """The RunConfig of a run folder's config.json (grouped, or the flat layout of older runs,
    whose missing settings take the defaults that were implicit then)."""
    return RunConfig.from_flat(flatten(saved, source), source)


# -- building -------------------------------------------------------------------------------
def encoder_options(cfg: RunConfig) -> dict:
    """Keyword options of the run's encoder (the checksum a pretrained one must match)."""
    return {"sha256": cfg.agent.encoder_sha256} if cfg.agent.encoder_sha256 else {}


def problem_from_config(cfg: RunConfig, morphologies: list | None | bool = True, **env_overrides) -> AgentProblem:
    """The fitness problem of a run configuration.

    morphologies: True = the run's own; None = one body (pass morphology=... in env_overrides);
    env_overrides replace env options (e.g. the evaluation protocol's).
    """
    ev = cfg.evolution
    # The canonical id, so that worker processes build the env without repeating the alias notice.
    return AgentProblem(envs.canonical_id(cfg.env.env_id), cfg.agent, encoder_options=encoder_options(cfg),
                        env_options={**cfg.env.env_options, **env_overrides},
                        morphologies=cfg.env.morphologies if morphologies is True else morphologies,
                        coeff_penalty=ev.coeff_penalty, centre_init=ev.centre_init,
                        centre_init_scale=ev.centre_init_scale)


def strategy_from_config(cfg: RunConfig, num_params: int):
    """The strategy of a run configuration, for `num_params` parameters."""
    ev, st = cfg.evolution, cfg.strategy_options
    kwargs = {}
    if ev.strategy in ("openai-es", "pgpe"):
        own = strategy_settings(ev.strategy)
        kwargs = {k: getattr(st, k) for k in own if k != "optimizer"}
        kwargs["optimizer"] = st.optimizer
        kwargs["optimizer_kwargs"] = {arg: getattr(st, key) for key, arg in _OPTIMIZER_SETTINGS[st.optimizer].items()}
    return es.make_strategy(ev.strategy, num_params, ev.popsize, ev.sigma, ev.lr, **kwargs)


def evaluator_from_config(cfg: RunConfig, problem):
    """SerialEvaluator or RayEvaluator as the execution settings say (not started yet)."""
    ex = cfg.execution
    if ex.backend == "serial":
        return es.SerialEvaluator(problem)
    return es.RayEvaluator(problem, num_workers=ex.workers, address=ex.ray_address or os.environ.get("RAY_ADDRESS"))


def default_description(key: str) -> str:
    """"default: V" or "default: car_racing V1, quadruped V2, ..." over the presets, for --help."""
    values = {}
    for family, name in PRESETS:
        label = family if name == DEFAULT_PRESET else f"{family}/{name}"
        merged = {**RunConfig.from_flat({}).flat(), **PRESETS[(family, name)]}
        values[label] = merged[key]
    if key in (f.name for f in dataclasses.fields(StrategyConfig)):
        per = {s: strategy_settings(s).get(key, "-") for s in ("openai-es", "pgpe")}
        if key in ("momentum", "max_speed", "adam_beta1", "adam_beta2", "adam_epsilon"):
            per = {o: optimizer_settings(o).get(key, "-") for o in _OPTIMIZER_SETTINGS}
        return "default: " + ", ".join(f"{k} {'auto' if v is None else v}" for k, v in per.items())
    if len({repr(v) for v in values.values()}) == 1:
        return f"default: {next(iter(values.values()))}"
    return "default: " + ", ".join(f"{label} {value}" for label, value in values.items())


__all__ = ["GROUPS", "PRESETS", "RunConfig", "default_description", "evaluator_from_config", "from_saved",
           "preset_names", "preset_values", "problem_from_config", "resolve", "strategy_from_config",
           "strategy_settings"]
