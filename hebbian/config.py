"""The run configuration: every setting of a run, typed, with its default and help, in one place.

A run is described by a `RunConfig`, five groups of settings plus the preset they started from:

    env               EnvConfig        which task: env id, its options, the quadruped's bodies
    agent             AgentConfig      the policy: encoder, network, plasticity rule, weights
    evolution         EvolutionConfig  the search: strategy, population, generations, episodes,
                                       seed, sigma, lr, starting centre, fitness penalty,
                                       held-out evaluation
    strategy_options  StrategyConfig   the chosen strategy's own hyperparameters (shaping,
                                       optimizer, decays, PGPE's stdev step, the noise
                                       table's size); None means "that strategy's default"
    execution         ExecutionConfig  how the run executes (workers, backend, Ray address,
                                       display): the only group a resumed run may change

Every field is, under the same name, a TOML key (flat, ``hidden = [64]``, or inside a table
named after its group, ``[agent]``), a command-line flag (``--hidden 64``), and an entry of
config.json (grouped, as `RunConfig.to_dict` writes it). Field metadata gives the help text
and the checks; `check_value` applies them to values from TOML or JSON, so a string where a
number belongs, a number where a list belongs, or an unknown key is one clear line
(`ConfigError`, a usage error: exit status 2), never a silent conversion.

The defaults here are the paper's reference code's (Najarro & Risi 2020,
enajx/HebbianMetaLearning): the task presets in `hebbian.presets` change only what the
reference changes per task. The strategy group's defaults are the strategy classes' own
(`es.OpenAIES`, `es.PGPE`, `es.CMAES` and the optimisers), read from their signatures, so
that they live in one place; `hebbian.presets.resolve` writes the values that apply to the
chosen strategy into the resolved configuration, and config.json shows them.

This module only describes and checks settings; `hebbian.presets` builds runs from them.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import es
from es.shaping import SHAPINGS
from hebbian.rules import RULE_NAMES


class ConfigError(es.UsageError):
    """A setting that is unknown, of the wrong type or out of range (one line; exit status 2)."""


# -- field descriptions -------------------------------------------------------------------
KINDS = ("int", "float", "bool", "str", "ints", "strs", "table")


def setting(default: Any, help: str, kind: str, *, choices: tuple | None = None, low: float | None = None,
            high: float | None = None, above: float | None = None, nullable: bool = False,
            flag: bool = True) -> Any:
    """A dataclass field with its help text and checks.

    kind: one of KINDS ("ints"/"strs" are non-empty lists, "table" a dict of scalars).
    choices: the allowed values; low/high: inclusive bounds; above: exclusive lower bound;
    nullable: None is allowed (JSON null; TOML has none, so a TOML file cannot set it);
    flag: whether evolve.py has a flag for it (False for values the run fills in itself).
    """
    assert kind in KINDS, kind
    meta = {"help": help, "kind": kind, "choices": choices, "low": low, "high": high, "above": above,
            "nullable": nullable, "flag": flag}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def _describe(meta: dict) -> str:
    what = {"int": "a whole number", "float": "a finite number", "bool": "true or false", "str": "a string",
            "ints": "a list of whole numbers", "strs": "a list of strings", "table": "a table of options"}[meta["kind"]]
    if meta["choices"]:
        what = "one of " + ", ".join(map(str, meta["choices"]))
    bounds = []
    if meta["above"] is not None:
        bounds.append(f"> {meta['above']}")
    if meta["low"] is not None:
        bounds.append(f">= {meta['low']}")
    if meta["high"] is not None:
        bounds.append(f"<= {meta['high']}")
    if bounds:
        what += " " + " and ".join(bounds)
    return what


def check_value(key: str, value: Any, meta: dict, source: str = "") -> Any:
    """`value` for the setting `key` if it fits `meta` (ints stay ints, floats become float),
    else ConfigError "KEY must be WHAT, got VALUE (in SOURCE)"."""
    where = f" (in {source})" if source else ""

    def bad():
        return ConfigError(f"{key} must be {_describe(meta)}, got {value!r}{where}")

    def scalar_ok(v, kind):
        if kind == "bool":
            return isinstance(v, bool)
        if kind == "int":
            return isinstance(v, int) and not isinstance(v, bool)
        if kind == "float":
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        return isinstance(v, str)

    def in_range(v):
        if meta["choices"] and v not in meta["choices"]:
            return False
        if meta["above"] is not None and not v > meta["above"]:
            return False
        if meta["low"] is not None and v < meta["low"]:
            return False
        return meta["high"] is None or v <= meta["high"]

    if value is None:
        if meta["nullable"]:
            return None
        raise bad()
    kind = meta["kind"]
    if kind in ("ints", "strs"):
        item = "int" if kind == "ints" else "str"
        if not isinstance(value, (list, tuple)) or not value or not all(scalar_ok(v, item) and in_range(v) for v in value):
            raise bad()
        return list(value)
    if kind == "table":
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise bad()
        for k, v in value.items():
            ok = v is None or isinstance(v, (bool, str)) or (isinstance(v, (int, float)) and math.isfinite(v))
            if not ok:
                raise ConfigError(f"{key}.{k} must be a number, a string, true/false or null, got {v!r}{where}")
        return dict(value)
    if not scalar_ok(value, kind) or not in_range(value):
        raise bad()
    return float(value) if kind == "float" else value


# -- the groups ---------------------------------------------------------------------------
NETWORKS = ("hebbian", "static", "lstm")
ACTIVATIONS = ("tanh", "relu", "linear")
INITS = ("uniform", "normal", "xavier", "coevolve")
CENTRE_INITS = ("normal", "uniform", "torch-default")
STRATEGIES = es.STRATEGY_NAMES
OPTIMIZERS = ("sgd", "adam", "clipup")
BACKENDS = ("ray", "serial")
MAX_WIDTH = 65_536  # a layer wider than this is a typo, not a network (and would not fit in memory)


@dataclass
class EnvConfig:
    """Which task the agent plays."""

    env_id: str = setting("", "Gymnasium id or alias, e.g. CarRacing-v2, AntBulletEnv-v0, LunarLander-v3", "str", flag=False)
    env_options: dict = setting({}, "options of envs.make for the task (TOML table [env_options]; "
                                    "flag --env-option KEY=VALUE, repeatable)", "table", flag=False)
    morphologies: list | None = setting(None, "quadruped: train on the mean return over these bodies", "strs",
                                        nullable=True)


@dataclass
class AgentConfig:
    """The policy: encoder (optional) -> network -> action head."""

    network: str = setting("hebbian", "hebbian: evolve a plasticity rule; static: evolve the weights; "
                                      "lstm: an evolved LSTM controller (the attention agent's)", "str", choices=NETWORKS)
    hidden: list = setting([128, 64], "hidden layer widths", "ints", low=1, high=MAX_WIDTH)
    rule: str = setting("ABCD_lr", "plasticity rule (hebbian network)", "str", choices=RULE_NAMES)
    activation: str = setting("tanh", "hidden-layer activation", "str", choices=ACTIVATIONS)
    output_activation: str = setting("linear", "output-layer activation; with tanh the squashed output is "
                                               "also the last layer's post-synaptic activity (the reference "
                                               "on Bullet tasks) and the action head only rescales it",
                                     "str", choices=("linear", "tanh"))
    init: str = setting("uniform", "initial weights drawn at every episode (hebbian network); coevolve: "
                                   "evolved with the rule", "str", choices=INITS)
    init_scale: float = setting(0.1, "uniform: weights in [-s, s]; normal: std s", "float", above=0)
    normalize: bool = setting(True, "divide each layer by its max |w| after every update (the reference "
                                    "does on every non-Bullet task)", "bool")
    weight_limit: float = setting(1e3, "divergence guard: weights are kept within [-limit, limit] (the "
                                       "reference has no such clip)", "float", above=0)
    encoder: str | None = setting(None, "pixel encoder, e.g. cnn, patch-attention, vit-linear, "
                                        "pretrained:PATH", "str", nullable=True)
    encoder_sha256: str | None = setting(None, "checksum of a pretrained:PATH encoder's file, filled in by "
                                               "the run and checked when it is loaded", "str", nullable=True,
                                         flag=False)


@dataclass
class EvolutionConfig:
    """The search: what every generation computes and how the centre starts."""

    strategy: str = setting("openai-es", "evolution strategy", "str", choices=STRATEGIES)
    popsize: int = setting(200, "individuals per generation (even for openai-es and pgpe)", "int", low=1)
    generations: int = setting(300, "generations to run (a resume may raise it)", "int", low=1)
    episodes: int = setting(1, "episodes per individual per generation (per body with several morphologies)",
                            "int", low=1)
    seed: int = setting(0, "run seed: every random draw derives from it", "int", low=0, high=2**63 - 1)
    sigma: float = setting(0.1, "initial noise standard deviation, in parameter units", "float", above=0)
    lr: float | None = setting(0.2, "centre learning rate (openai-es: SGD/Adam step; pgpe: ClipUp step; "
                                    "cma has none)", "float", above=0, nullable=True)
    centre_init: str = setting("normal", "distribution of the starting centre: normal N(0, s^2) (the "
                                         "reference's torch.randn, coefficients and CNN weights alike), "
                                         "uniform U[-s, s], or torch-default (PyTorch's default layer "
                                         "initialisation, the attention agent's)", "str", choices=CENTRE_INITS)
    centre_init_scale: float = setting(1.0, "s of centre_init (normal: std; uniform: bound)", "float", above=0)
    coeff_penalty: float = setting(0.01, "fitness -= this x mean(evolved coefficients^2): the plasticity "
                                         "coefficients of a hebbian network (not co-evolved initial or "
                                         "encoder weights), the weights of a static one", "float", low=0)
    eval_every: int = setting(10, "evaluate the centre on held-out seeds every K generations, 0 = only at "
                                  "the end (a resume may change it: it does not change the search)", "int", low=0)
    eval_episodes: int = setting(10, "held-out episodes per evaluation", "int", low=1)
    stop_score: float | None = setting(None, "end the run early once stop_evals held-out evaluations in a "
                                             "row have a mean of at least this (e.g. 900 for CarRacing); a "
                                             "resume may change it", "float", nullable=True)
    stop_evals: int = setting(3, "held-out evaluations in a row the stop rule asks for", "int", low=1)


@dataclass
class StrategyConfig:
    """The chosen strategy's own hyperparameters; None = that strategy's default (see --help)."""

    shaping: str | None = setting(None, "fitness shaping (openai-es, pgpe)", "str", choices=tuple(SHAPINGS),
                                  nullable=True)
    optimizer: str | None = setting(None, "centre optimiser (openai-es, pgpe)", "str", choices=OPTIMIZERS,
                                    nullable=True)
    momentum: float | None = setting(None, "momentum of sgd or clipup", "float", low=0, high=0.999999,
                                     nullable=True)
    adam_beta1: float | None = setting(None, "Adam's beta1", "float", low=0, high=0.999999, nullable=True)
    adam_beta2: float | None = setting(None, "Adam's beta2", "float", low=0, high=0.999999, nullable=True)
    adam_epsilon: float | None = setting(None, "Adam's epsilon", "float", above=0, nullable=True)
    max_speed: float | None = setting(None, "ClipUp's maximum speed (default: 2 x lr)", "float", above=0,
                                      nullable=True)
    weight_decay: float | None = setting(None, "centre -= weight_decay x centre in every step (openai-es)",
                                         "float", low=0, nullable=True)
    lr_decay: float | None = setting(None, "lr *= lr_decay after every update while lr > lr_limit",
                                     "float", above=0, high=1, nullable=True)
    lr_limit: float | None = setting(None, "lr stops decaying at or below this", "float", low=0, nullable=True)
    sigma_decay: float | None = setting(None, "sigma *= sigma_decay after every update while sigma > "
                                              "sigma_limit (openai-es)", "float", above=0, high=1, nullable=True)
    sigma_limit: float | None = setting(None, "sigma stops decaying at or below this (openai-es)", "float",
                                        low=0, nullable=True)
    stdev_lr: float | None = setting(None, "PGPE: learning rate of the per-parameter stdev", "float", low=0,
                                     nullable=True)
    stdev_max_change: float | None = setting(None, "PGPE: largest relative stdev change per generation",
                                             "float", above=0, high=0.999999, nullable=True)
    noise_table_size: int | None = setting(None, "floats in the seeded table the members' noise is sliced "
                                                 "from (openai-es, pgpe), at least 16 x num_params; auto: the "
                                                 "smallest power of two >= 128 x num_params, at least 2**20 "
                                                 "(CarRacing: 2**26, 256 MiB per node)",
                                           "int", low=1, nullable=True)


@dataclass
class ExecutionConfig:
    """How a run executes; nothing here changes its numbers, so a resume may change any of it."""

    workers: int | None = setting(None, "Ray workers (default: one per CPU of the cluster)", "int", low=1,
                                  nullable=True)
    backend: str = setting("ray", "ray: a local in-process Ray, or the cluster of --ray-address; "
                                  "serial: this process only", "str", choices=BACKENDS)
    ray_address: str | None = setting(None, "join a Ray cluster ('auto', or set RAY_ADDRESS); default: a "
                                            "local in-process Ray", "str", nullable=True)
    quiet: bool = setting(False, "one plain line per generation, no progress bar", "bool")
    keep_checkpoints: int = setting(3, "checkpoints kept in RUN_DIR/checkpoints, the newest (older ones are "
                                       "deleted; 1 keeps a run folder small enough to commit)", "int", low=1)


GROUPS: dict[str, type] = {"env": EnvConfig, "agent": AgentConfig, "evolution": EvolutionConfig,
                           "strategy_options": StrategyConfig, "execution": ExecutionConfig}
FIELDS: dict[str, tuple[str, dict]] = {}
"""Setting name -> (group, metadata), for every field of every group (the names are unique)."""
for _group, _cls in GROUPS.items():
    for _f in dataclasses.fields(_cls):
        assert _f.name not in FIELDS and _f.name not in GROUPS, _f.name
        FIELDS[_f.name] = (_group, dict(_f.metadata))

RESUMABLE = (*(f.name for f in dataclasses.fields(ExecutionConfig)), "generations", "eval_every", "stop_score",
             "stop_evals")
"""Settings a resumed run may change: how it executes, how far the same run goes (its
generations and stop rule), and how often its centre is evaluated on the held-out seeds
(none of them changes the search)."""

RESERVED = ("es_run", "versions")
"""Keys es.evolve adds to config.json; ignored when a config.json is read back as settings."""


@dataclass
class RunConfig:
    """A whole run's settings. `preset` names the preset its defaults came from."""

    preset: str
    env: EnvConfig
    agent: AgentConfig
    evolution: EvolutionConfig
    strategy_options: StrategyConfig
    execution: ExecutionConfig

    def to_dict(self) -> dict:
        """JSON-able, grouped: {"preset": ..., "env": {...}, "agent": {...}, ...} (config.json's layout)."""
        return {"preset": self.preset, **{g: dataclasses.asdict(getattr(self, g)) for g in GROUPS}}

    def flat(self) -> dict:
        """Every setting by its name, e.g. {"env_id": ..., "hidden": [...], ...}."""
        out = {"preset": self.preset}
        for g in GROUPS:
            out.update(dataclasses.asdict(getattr(self, g)))
        return out

    @classmethod
    def from_flat(cls, values: dict, source: str = "") -> "RunConfig":
        """From a complete dict of setting names (each value checked); ConfigError names the first bad one."""
        unknown = sorted(set(values) - set(FIELDS) - {"preset"})
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}" + (f" in {source}" if source else "")
                              + "; see scripts/evolve.py --help for the names")
        groups = {}
        for g, klass in GROUPS.items():
            kwargs = {}
            for f in dataclasses.fields(klass):
                if f.name in values:
                    kwargs[f.name] = check_value(f.name, values[f.name], dict(f.metadata), source)
            groups[g] = klass(**kwargs)
        preset = values.get("preset", "")
        if not isinstance(preset, str):
            raise ConfigError(f"preset must be a string, got {preset!r}" + (f" (in {source})" if source else ""))
        return cls(preset, **groups)

    def replace(self, **changes: Any) -> "RunConfig":
        """A copy with settings (by name) changed; each value is checked."""
        return RunConfig.from_flat({**self.flat(), **changes})


def flatten(values: dict, source: str = "") -> dict:
    """Setting name -> value from a TOML/JSON document: flat keys, group tables ([agent] ...) or
    both (config.json's grouped layout); the keys es.evolve adds (es_run, versions) are dropped.

    ConfigError for a key that is no setting, for a group that is not a table, and for a
    setting given twice.
    """
    if not isinstance(values, dict):
        raise ConfigError(f"{source or 'the configuration'} must be a table of settings, got {type(values).__name__}")
    out: dict = {}

    def put(key, value):
        if key in out:
            raise ConfigError(f"{key} is given twice" + (f" in {source}" if source else ""))
        out[key] = value

    for key, value in values.items():
        if key in RESERVED:
            continue
        if key in GROUPS:
            if not isinstance(value, dict):
                raise ConfigError(f"{key} must be a table of {key} settings, got {value!r}" + (f" (in {source})" if source else ""))
            names = {f.name for f in dataclasses.fields(GROUPS[key])}
            stray = sorted(set(value) - names)
            if stray:
                raise ConfigError(f"unknown {key} setting(s) {', '.join(stray)}" + (f" in {source}" if source else "")
                                  + f"; the {key} settings are {', '.join(sorted(names))}")
            for k, v in value.items():
                put(k, v)
        elif key in FIELDS or key == "preset":
            put(key, value)
        else:
            raise ConfigError(f"unknown setting {key!r}" + (f" in {source}" if source else "")
                              + "; see scripts/evolve.py --help for the names")
    return out
