"""Experiment configs: typed dataclasses for the model and training, and the model built from them.

A YAML file (read at the CLI edge only) is loaded into :class:`ExperimentConfig` with
:func:`multimodal_har.config.from_dict` (pydantic v2): values are converted to their declared
types, and every problem is reported at once in a :class:`~multimodal_har.config.ConfigError`
(a ``ValueError``) naming its key path (``train.lr: ...``, ``unknown key(s) ['lr_max'] in
train ...``). The data side (:class:`DataConfig`, stream configs by kind) belongs to
:mod:`multimodal_har.data`. :func:`build_model` checks encoder and fusion ``kwargs`` against
their constructors before building; :func:`experiment_schema` is the JSON schema.

.. code-block:: yaml

    data: {store: stores/msr, modalities: {joint: {...}, bone: {...}}}
    model:
      encoders:
        joint: {name: skeleton_gcn, kwargs: {layout: kinect_v1_20, streams: [joint]}}
        bone:  {name: skeleton_gcn, kwargs: {layout: kinect_v1_20, streams: [bone]}}
      fusion: {name: late, kwargs: {mode: mean}}
    train: {epochs: 50, batch_size: 32, lr: 0.001}
    seed: 0
    run_dir: runs/msr_late

The run directory receives the resolved config (every default filled in, plus the class list
the run was trained with) as ``config.yaml``; ``mhar evaluate RUN`` rebuilds everything from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Any, Optional, Sequence

from multimodal_har.atomic import atomic_write_text
from multimodal_har.config import ConfigError, check_kwargs, config_dataclass, from_dict, load_yaml, to_dict
from multimodal_har.data.dataset import DataConfig

CHECKPOINTS = ("best", "last")


@config_dataclass
class EncoderSpec:
    """One modality's encoder: ``build_encoder(name, **kwargs)`` (:mod:`multimodal_har.encoders`)."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@config_dataclass
class FusionSpec:
    """The fusion module: ``build_fusion(name, dims=..., [num_classes=...], **kwargs)`` (:mod:`fusion`)."""

    name: str = "concat"
    kwargs: dict[str, Any] = field(default_factory=dict)


@config_dataclass
class ModelConfig:
    """Attributes:
        encoders: ``{modality: EncoderSpec}``; the keys are the model's input names and must
            equal the data config's modality names. Their order is the modality order.
        fusion: the fusion method.
        head_dropout: dropout before the linear head (feature-level fusion methods).
        ensemble: the fused head adds a correction to the per-modality classifiers' product of
            experts (:class:`~multimodal_har.model.MultimodalClassifier`); feature-level fusion
            methods only.
    """

    encoders: dict[str, EncoderSpec]
    fusion: FusionSpec = field(default_factory=FusionSpec)
    head_dropout: float = 0.0
    ensemble: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.encoders, Mapping) or not self.encoders:
            raise ValueError(f"model.encoders must be a non-empty mapping {{modality: {{name, kwargs}}}}, "
                             f"got {self.encoders!r}")
        self.encoders = {m: s if isinstance(s, EncoderSpec) else from_dict(EncoderSpec, s, where=f"model.encoders.{m}")
                         for m, s in self.encoders.items()}
        if not 0.0 <= self.head_dropout < 1.0:
            raise ValueError(f"model.head_dropout must be in [0, 1), got {self.head_dropout}")


@config_dataclass
class TrainConfig:
    """Attributes:
        epochs: fusion epochs (stage 2; the whole training when ``pretrain_epochs`` is 0). 0
            after ``pretrain_epochs`` or with ``init_from``: no fusion training, the model is
            the ensemble of the separately trained encoders as it is (a ``late`` fusion of their
            stage-1 heads, e.g. the four-stream skeleton ensemble with fixed weights), saved as
            ``last.pt`` for ``mhar evaluate``.
        batch_size: the global batch (split over the processes under torchrun).
        eval_batch_size: validation / evaluation batch (default ``batch_size``).
        lr, weight_decay, betas: AdamW.
        warmup_epochs: linear warm-up from 0 (may be fractional), then cosine decay to
            ``min_lr_ratio * lr`` at the last step; stepped per batch.
        grad_clip: max global gradient norm (0: off).
        amp: bf16 autocast on CUDA (ignored on CPU).
        label_smoothing: of the cross-entropy.
        modality_dropout: probability that a training sample with >= 2 modalities sees only a
            random non-empty proper subset of them (uniform over those subsets).
        early_stop_patience: stop after this many epochs without a better validation top-1
            (0: never).
        pretrain_epochs: stage 1, before fusion: each encoder trained alone on its modality
            with its own linear head, for this many epochs (0: no stage 1).
        pretrain_lr: stage 1 learning rate (default ``lr``).
        freeze_encoders: stage 2 keeps the encoders frozen (eval mode, no gradient);
            otherwise they are fine-tuned with the fusion.
        init_from: ``{modality: run dir or checkpoint}``: start these encoders (and their
            per-modality heads) from separately trained runs, e.g. one ``mhar train`` run per
            modality; with ``pretrain_epochs: 0`` this is stage 1 done elsewhere, and a ``late``
            fusion then starts as the ensemble of those runs (:mod:`multimodal_har.recipes`).
        encoder_lr_scale: stage 2 learning rate of the encoders relative to ``lr`` (per-group
            learning rates: e.g. 0.1 fine-tunes pre-trained encoders slowly while the fusion
            learns at ``lr``); ignored with ``freeze_encoders``.
        aux_loss_weight: stage 2 adds ``aux_loss_weight`` times the mean per-modality
            cross-entropy (the ``late`` fusion's own heads, else the stage-1 heads) to the fused
            loss (:mod:`multimodal_har.recipes`); 0: off.
        ogm_alpha: OGM-GE gradient modulation of the dominant modality (Peng et al. CVPR 2022,
            :mod:`multimodal_har.recipes`); 0: off; the paper uses 0.1-0.8.
        validate_every: validate (and consider ``best.pt``) every this many epochs and after
            the last one; 0: after the last one only (a fixed schedule that reads no
            validation score saves the time); early-stopping patience counts validations.
        max_bad_batches: batches with a NaN/inf loss that are skipped (and logged) before the
            run stops with an error; 0: the first one is an error.
        deterministic: deterministic algorithms (exact resume on GPU too; slower).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``...
        log_every: steps between TensorBoard scalars of the training loss.
    """

    epochs: int = 30
    batch_size: int = 32
    eval_batch_size: Optional[int] = None
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0
    amp: bool = True
    label_smoothing: float = 0.0
    modality_dropout: float = 0.0
    early_stop_patience: int = 0
    pretrain_epochs: int = 0
    pretrain_lr: Optional[float] = None
    freeze_encoders: bool = False
    init_from: dict[str, str] = field(default_factory=dict)
    encoder_lr_scale: float = 1.0
    aux_loss_weight: float = 0.0
    ogm_alpha: float = 0.0
    validate_every: int = 1
    max_bad_batches: int = 0
    deterministic: bool = False
    device: str = "auto"
    log_every: int = 10

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(f"train.{what}")

        need(self.epochs >= 1 or (self.epochs == 0 and (self.init_from or self.pretrain_epochs > 0)),
             f"epochs must be >= 1 (0 only after pretrain_epochs or with init_from: the ensemble of the "
             f"separately trained encoders as it is), got {self.epochs}")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.eval_batch_size is None or self.eval_batch_size >= 1,
             f"eval_batch_size must be >= 1, got {self.eval_batch_size}")
        need(self.lr > 0, f"lr must be > 0, got {self.lr}")
        need(self.warmup_epochs >= 0, f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        need(0 <= self.min_lr_ratio <= 1, f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        need(self.grad_clip >= 0, f"grad_clip must be >= 0 (0: off), got {self.grad_clip}")
        need(0 <= self.modality_dropout <= 1, f"modality_dropout must be in [0, 1], got {self.modality_dropout}")
        need(0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        need(self.early_stop_patience >= 0, f"early_stop_patience must be >= 0, got {self.early_stop_patience}")
        need(self.pretrain_epochs >= 0, f"pretrain_epochs must be >= 0, got {self.pretrain_epochs}")
        need(self.encoder_lr_scale > 0, f"encoder_lr_scale must be > 0 (freeze_encoders stops them), got "
                                        f"{self.encoder_lr_scale}")
        need(self.aux_loss_weight >= 0, f"aux_loss_weight must be >= 0, got {self.aux_loss_weight}")
        need(self.ogm_alpha >= 0, f"ogm_alpha must be >= 0, got {self.ogm_alpha}")
        need(self.validate_every >= 0, f"validate_every must be >= 0 (0: after the last epoch only), got "
                                       f"{self.validate_every}")
        need(self.max_bad_batches >= 0, f"max_bad_batches must be >= 0, got {self.max_bad_batches}")
        need(len(self.betas) == 2, f"betas must be two numbers, got {self.betas}")
        self.betas = tuple(float(b) for b in self.betas)


@config_dataclass
class ExperimentConfig:
    """Attributes:
        data: what to read and how (:class:`multimodal_har.data.dataset.DataConfig`).
        model: encoders, fusion, head.
        train: optimisation.
        seed: every random draw of the run follows from it.
        run_dir: checkpoints, logs and the resolved config go here.
        classes: the class names in index order; default: the sorted labels of the train split
            (what the run used is written into the run's ``config.yaml``).
    """

    data: DataConfig
    model: ModelConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    run_dir: str = "runs/exp"
    classes: Optional[list[str]] = None


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``["train.epochs=3", "model.fusion.name=late"]`` set into the nested dict ``data`` (values
    parsed as YAML: ``3`` is an int, ``[1, 2]`` a list); returns ``data``."""
    import yaml

    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r}: expected KEY.PATH=VALUE, e.g. train.epochs=3")
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise ValueError(f"override {item!r}: {p!r} is not a mapping in the config")
            node = child
        node[parts[-1]] = yaml.safe_load(text)
    return data


def experiment_from_dict(data: Mapping[str, Any]) -> ExperimentConfig:
    """A config mapping (as in YAML) -> :class:`ExperimentConfig`; unknown keys are rejected."""
    data = dict(data)
    for key in ("data", "model"):
        if key not in data:
            raise ValueError(f"the experiment config needs a {key!r} section (keys: data, model, train, seed, "
                             f"run_dir, classes)")
    return from_dict(ExperimentConfig, data)


def load_experiment(path: str | Path, overrides: Sequence[str] = (), *, upgrade: bool = False) -> ExperimentConfig:
    """Read a YAML experiment config, apply ``KEY.PATH=VALUE`` overrides, check it.

    Overrides are validated with the file, by the same pydantic validators (a value is typed by
    its field: ``--set train.lr=1e-3`` is 0.001); a problem an override caused names it:
    ``c.yaml: train.epochs: Input should be a valid integer ... (from --set train.epochs=1.5)``.
    ``upgrade``: the file is a run's resolved config, perhaps written by an older version
    (:func:`multimodal_har.data.kinds.upgrade_stream`).
    """
    data = apply_overrides(load_yaml(path), overrides)
    if upgrade and isinstance(data.get("data"), Mapping) and isinstance(data["data"].get("modalities"), Mapping):
        from multimodal_har.data.kinds import upgrade_stream

        data["data"]["modalities"] = {k: upgrade_stream(v) for k, v in data["data"]["modalities"].items()}
    try:
        return experiment_from_dict(data)
    except ConfigError as e:
        raise ConfigError([f"{path}: {p}{_override_of(p, overrides)}" for p in e.problems]) from None
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e


def _override_of(problem: str, overrides: Sequence[str]) -> str:
    """`` (from --set K=V)`` when override ``K=V`` is where ``problem`` is (else "")."""
    for item in overrides:
        key = item.partition("=")[0]
        parent, _, last = key.rpartition(".")
        if problem.startswith((f"{key}:", f"{key}.", f"{key}[")) or (
                problem.startswith("unknown key(s) [") and f"'{last}'" in problem.split("]")[0]
                and problem.split("] ", 1)[-1].startswith(f"in {parent} for " if parent else "for ")):
            return f" (from --set {item})"
    return ""


def experiment_schema() -> dict[str, Any]:
    """The JSON schema of an experiment config (``mhar config schema``), for editors: every
    section and key with its type and default, stream configs as one schema per ``kind``
    (including kinds registered before the call)."""
    from multimodal_har.config import adapter

    schema = adapter(ExperimentConfig).json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "multimodal-har experiment config",
            **{k: v for k, v in schema.items() if k != "title"}}


def _plain(x: Any) -> Any:
    """Tuples -> lists, recursively (YAML-safe)."""
    if isinstance(x, Mapping):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def config_to_dict(config: ExperimentConfig) -> dict[str, Any]:
    return _plain(to_dict(config))


def save_config(config: ExperimentConfig, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomically)."""
    import yaml

    return atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


def load_run_config(run_dir: str | Path) -> ExperimentConfig:
    """The resolved config of a run (``RUN/config.yaml``)."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {run_dir} is not a run directory of `mhar train`")
    return load_experiment(path, upgrade=True)


def model_kwargs(config: ModelConfig) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The encoders' and the fusion's ``kwargs`` checked against their constructors
    (:func:`multimodal_har.config.check_kwargs`; :class:`ConfigError` names the key path) and
    converted to the annotated types: ``({modality: encoder kwargs}, fusion kwargs)``. The
    fusion's ``dims`` (and ``num_classes`` for a fusion that produces logits) are the model's
    to set: refused in the config. What :func:`build_model` and ``mhar config check`` run."""
    from multimodal_har.encoders import ENCODERS
    from multimodal_har.fusion import FUSION

    enc = {m: check_kwargs(ENCODERS.get(spec.name), spec.kwargs, where=f"model.encoders.{m}.kwargs", name=spec.name)
           for m, spec in config.encoders.items()}
    cls = FUSION.get(config.fusion.name)
    fusion = check_kwargs(cls, config.fusion.kwargs, where="model.fusion.kwargs", name=config.fusion.name,
                          provided=["dims", "num_classes"] if getattr(cls, "produces_logits", False) else ["dims"])
    return enc, fusion


def build_model(config: ModelConfig, num_classes: int):
    """The :class:`~multimodal_har.model.MultimodalClassifier` of ``config`` for ``num_classes``
    (arguments checked first: :func:`model_kwargs`)."""
    from multimodal_har.encoders import build_encoder
    from multimodal_har.fusion import FUSION, build_fusion
    from multimodal_har.model import MultimodalClassifier

    enc_kwargs, fusion_kwargs = model_kwargs(config)
    encoders = {m: build_encoder(spec.name, **enc_kwargs[m]) for m, spec in config.encoders.items()}
    provided: dict[str, Any] = {"dims": {m: e.out_dim for m, e in encoders.items()}}
    if getattr(FUSION.get(config.fusion.name), "produces_logits", False):
        provided["num_classes"] = num_classes
    fusion = build_fusion(config.fusion.name, **provided, **fusion_kwargs)
    return MultimodalClassifier(encoders=encoders, fusion=fusion, num_classes=num_classes,
                                head_dropout=config.head_dropout, ensemble=config.ensemble)


__all__ = ["CHECKPOINTS", "DataConfig", "EncoderSpec", "ExperimentConfig", "FusionSpec", "ModelConfig", "TrainConfig",
           "apply_overrides", "build_model", "config_to_dict", "experiment_from_dict", "experiment_schema",
           "load_experiment",
           "load_run_config", "model_kwargs", "save_config"]
