"""The ``mhar`` command line. YAML configs are read here and nowhere else.

    mhar info
    mhar extract rgb   --videos ROOT --store OUT [--annotations CSV] [--workers N] [--config YAML]
    mhar extract audio --videos ROOT --store OUT ...
    mhar extract flow  --backend raft|ptlflow|tvl1|dis|farneback --videos ROOT --store OUT ...
    mhar extract pose  --backend mediapipe|mmpose --videos ROOT --store OUT [--pyskl PKL] ...
    mhar show STORE VIDEO [--modality flow|rgb|pose3d] [--out PNG]
    mhar pyskl STORE OUT.pkl [--keypoints 2d|3d]
    mhar manifest STORE [--csv FILE] [--verify]
    mhar store add STORE --modality NAME --from PATH [--label L] [--split S]
    mhar import NAME SRC STORE [--split cross_subject] [--modalities skeleton,inertial,depth] [--depth-videos DIR]
    mhar train --config CFG [--resume] [--set KEY.PATH=VALUE ...] [--quiet]
    mhar config schema [--out FILE]
    mhar config check CFG [--set KEY.PATH=VALUE ...]
    mhar evaluate RUN [--split test] [--checkpoint best|last|PATH]
    mhar ablate RUN [--split test] [--checkpoint best|last|PATH] [--retrain] [--no-robustness] [--resamples N] [--out DIR] [--require-reliable]
    mhar demo [--out runs/demo] [--videos DIR] [--quick]

``mhar train`` also runs under ``torchrun --nproc_per_node=N -m multimodal_har.cli train ...``.

Every field of an extractor's config is also a flag (``--short-side 224``, ``--fps 10``);
flags override the YAML file, which overrides the defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence


def _parse_value(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _flag_type(hint: Any):
    """An argparse ``type`` for a config field: the field's own type, so ``--stride 2.5`` or
    ``--short-side abc`` are refused by flag name and ``--fps 1e-1`` is read as 0.1 (YAML,
    which read the flags before, took ``1e-1`` for a string). Other types go through YAML."""
    import math

    from .config import scalar_type

    kind, optional = scalar_type(hint)
    if kind is None:
        return _parse_value
    what = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[kind]
    what += " or none" if optional else ""

    def parse(text: str) -> Any:
        t = text.strip()
        if optional and t.lower() in ("none", "null", "~"):
            return None
        try:
            if kind is bool:
                return _WORDS[t.lower()]
            if kind is int:
                return int(t)
            if kind is float:
                value = float(t)
                if math.isfinite(value):
                    return value
                raise ValueError
        except (KeyError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        return text

    parse.__name__ = what  # argparse names the type in some messages
    return parse


def _add_extract_parser(sub) -> None:
    import typing

    from multimodal_har.extractors import EXTRACTORS, POSE_BACKENDS, config_class

    p = sub.add_parser("extract", help="extract a modality from a video folder into a feature store")
    esub = p.add_subparsers(dest="extractor", metavar="MODALITY", required=True)
    for name in EXTRACTORS.names():
        cls = config_class(name)
        ep = esub.add_parser(name, help=(cls.__doc__ or "").strip().splitlines()[0])
        ep.add_argument("--videos", required=True, type=Path, help="the video folder (ROOT/<class>/<video> or any tree)")
        ep.add_argument("--store", required=True, type=Path, help="the feature store folder (created if needed)")
        ep.add_argument("--annotations", type=Path, help="CSV with path,label[,split] (paths relative to --videos)")
        ep.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
        ep.add_argument("--config", type=Path, help="YAML file with config fields for this extractor")
        ep.add_argument("--no-progress", action="store_true", help="no progress bar")
        ep.add_argument("--strict", action="store_true", help="exit with status 1 if any video failed")
        ep.add_argument("--as", dest="store_as", metavar="MODALITY",
                        help="store under this modality name instead of the extractor's own "
                             "(e.g. `rgb --as depth` for depth videos)")
        if name in POSE_BACKENDS:
            ep.add_argument("--pyskl", type=Path, metavar="PKL",
                            help="also write the store's poses as a PYSKL pickle (2D pixels, see `mhar pyskl`)")
        cfg_group = ep.add_argument_group(f"{name} config ({cls.__name__})")
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            cfg_group.add_argument("--" + f.name.replace("_", "-"), dest=f"cfg_{f.name}", type=_flag_type(hints[f.name]),
                                   default=None, metavar=f.name.upper(), help=f"(default: {f.default!r})")


def _cmd_extract(args) -> int:
    from multimodal_har.extractors import build_extractor

    from . import api
    from .config import load_yaml

    cfg = load_yaml(args.config) if args.config else {}
    flags = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}
    cfg.update(flags)
    if args.store_as and cfg.get("modality") not in (None, args.store_as):
        raise SystemExit(f"error: --as {args.store_as} and --modality {cfg['modality']} disagree; give one")
    try:
        extractor = build_extractor(args.extractor, cfg)
    except ValueError as e:  # a value the config refuses: name the flag that gave it
        field = next((f for f in sorted(flags, key=len, reverse=True) if str(e).startswith(f + " ")), None)
        if field is None:
            raise
        raise ValueError(f"argument --{field.replace('_', '-')}: {e}") from None
    if not args.videos.is_dir():
        raise SystemExit(f"error: --videos {args.videos} is not a directory")
    # under torchrun (or any launcher setting RANK / WORLD_SIZE) each process takes videos
    # rank::world_size; they share the store and its manifest (SQLite serialises the writers)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if not 0 <= rank < world:
        raise SystemExit(f"error: RANK={rank} is not in [0, WORLD_SIZE={world})")
    summary = api.extract(extractor, videos=args.videos, store=args.store, annotations=args.annotations,
                          store_as=args.store_as, workers=args.workers, progress=not args.no_progress and rank == 0,
                          rank=rank, world_size=world)
    print((f"[rank {rank}/{world}] " if world > 1 else "") + summary.format())
    print(f"manifest: {args.store / 'manifest.csv'}")
    if getattr(args, "pyskl", None):
        if world > 1:  # the other ranks may still be writing
            print(f"not writing {args.pyskl} under {world} processes: run `mhar pyskl {args.store} "
                  f"{args.pyskl}` once every rank has finished")
        else:
            from .data.store import FeatureStore
            from .skeleton.pyskl import export_store

            n = export_store(FeatureStore(args.store), args.pyskl, modality=extractor.modality)
            print(f"wrote {n} videos to {args.pyskl}")
    return 1 if (args.strict and summary.failed) else 0


def _cmd_show(args) -> int:
    from .data.store import FeatureStore
    from .show import render, save_png

    store = FeatureStore(args.store)
    if not store.has(args.video, args.modality):
        raise FileNotFoundError(f"the store has no {args.modality!r} entry for {args.video!r} "
                                f"(modalities: {', '.join(store.modalities()) or 'none'})")
    out = args.out or Path(f"{args.video.replace('/', '_')}_{args.modality}.png")
    print(save_png(render(store, args.video, args.modality, count=args.count), out))
    return 0


def _cmd_pyskl(args) -> int:
    from .data.store import FeatureStore
    from .skeleton.pyskl import export_store

    n = export_store(FeatureStore(args.store), args.out, modality=args.modality, keypoints=args.keypoints)
    print(f"wrote {n} videos to {args.out}")
    return 0


def _cmd_info(args) -> int:
    from .info import report

    print(report())
    return 0


def _cmd_manifest(args) -> int:
    from .data.store import FeatureStore

    store = FeatureStore(args.store)
    m = store.manifest
    damaged = store.verify() if args.verify else []
    for d in damaged:
        print(f"  DAMAGED {d['modality']} {d['video_id']} ({d['path']}): {d['problem']}")
    print(f"{store.root}: {len(m.videos())} videos")
    for modality, counts in sorted(m.counts().items()):
        print(f"  {modality:10s} " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    just_found = {(d["video_id"], d["modality"]) for d in damaged}
    for e in m.entries(status="failed"):
        if (e["video_id"], e["modality"]) not in just_found:  # those are listed above, with their file
            print(f"  FAILED {e['modality']} {e['video_id']}: {e['error']}")
    if args.csv:
        print(f"wrote {m.export_csv(args.csv)}")
    if args.verify:
        m.export_csv(store.root / "manifest.csv")
        one = len(damaged) == 1
        print(f"verified: {len(damaged)} damaged entr{'y' if one else 'ies'}"
              + (f" marked failed; running the extraction (or import) again redoes {'it' if one else 'them'}"
                 if damaged else ""))
    return 1 if damaged else 0


def _cmd_store_add(args) -> int:
    import numpy as np

    from .data.store import FeatureStore

    store = FeatureStore(args.store, create=True)
    src = args.source
    files = sorted(p for p in src.rglob("*") if p.suffix in (".npy", ".npz")) if src.is_dir() else [src]
    if not files:
        raise SystemExit(f"error: no .npy or .npz files under {src}")
    for f in files:
        rel = f.relative_to(src) if src.is_dir() else Path(f.name)
        video_id = args.id if (args.id and not src.is_dir()) else rel.with_suffix("").as_posix()
        if f.suffix == ".npz":
            with np.load(f, allow_pickle=False) as z:  # arrays only: no pickled objects
                arrays = {k: z[k] for k in z.files}
        else:
            arrays = {"data": np.load(f, allow_pickle=False)}
        attrs = dict(kv.split("=", 1) for kv in args.attr or [])
        store.add(video_id, args.modality, arrays, attrs={k: _parse_value(v) for k, v in attrs.items()},
                  label=args.label, split=args.split)
        print(f"added {args.modality} for {video_id}: " + ", ".join(f"{k} {v.shape} {v.dtype}" for k, v in arrays.items()))
    store.manifest.export_csv(store.root / "manifest.csv")
    return 0


def _cmd_import(args) -> int:
    from . import api
    from .data.importers import format_summary

    options = {k: getattr(args, k) for k in ("modalities", "depth_videos", "benchmark", "layout", "limit",
                                              "subjects", "actions")
               if getattr(args, k) is not None}
    if args.split is not None:
        options["split"] = None if args.split.lower() == "none" else args.split
    for k in ("subjects", "actions"):
        if k in options:
            options[k] = [int(v) if v.isdigit() else v for v in options[k].split(",")]
    summary = api.import_dataset(args.dataset, src=args.src, store=args.store, **options)
    print(format_summary(summary))
    print(f"manifest: {Path(summary['store']) / 'manifest.csv'}")
    return 1 if summary["failed"] else 0


def _cmd_train(args) -> int:
    from . import api
    from .train import TrainingError

    overrides = list(args.set or [])
    if args.run_dir is not None:
        overrides.append(f"run_dir={args.run_dir}")
    config = api.experiment(args.config, overrides=overrides)
    try:
        summary = api.train(config, resume=args.resume, quiet=args.quiet)
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", 0)) == 0:
        print(f"{summary['status']}: best validation top-1 {summary['best_val_top1']:.4f} at epoch "
              f"{summary['best_epoch']}; run: {summary['run_dir']}")
    return 0


def _cmd_config_schema(args) -> int:
    import json

    from .experiment import experiment_schema

    text = json.dumps(experiment_schema(), indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        from .atomic import atomic_write_text

        atomic_write_text(args.out, text)
        print(f"wrote the experiment config's JSON schema to {args.out}")
    return 0


def _cmd_config_check(args) -> int:
    from .experiment import load_experiment, model_kwargs

    config = load_experiment(args.config, list(args.set or []))
    model_kwargs(config.model)  # the arguments build_model will pass, checked without building
    kinds = {m: c.kind or "(from the store)" for m, c in config.data.modalities.items()}
    print(f"ok: {args.config}: streams {kinds}; encoders {[s.name for s in config.model.encoders.values()]}; "
          f"fusion {config.model.fusion.name}")
    return 0


def _cmd_evaluate(args) -> int:
    from . import api
    from .evaluate import format_summary

    summary = api.evaluate(args.run, split=args.split, checkpoint=args.checkpoint, batch_size=args.batch_size,
                           device=args.device, quiet=args.quiet)
    print(format_summary(summary))
    print(f"wrote {summary['out_dir']}")
    return 0


def _cmd_ablate(args) -> int:
    from . import api

    res = api.ablate(args.run, split=args.split, out_dir=args.out, checkpoint=args.checkpoint, retrain=args.retrain,
                     robustness=not args.no_robustness, n_resamples=args.resamples, seed=args.seed,
                     device=args.device, quiet=args.quiet, require_reliable=args.require_reliable)
    print(f"{args.run} [{args.split}, {Path(args.checkpoint).name.removesuffix('.pt')}.pt]: " + res.format())
    print(f"wrote {len(res.files)} files to {res.out_dir}")
    return 0


def _cmd_demo(args) -> int:
    from .demo import DemoError, run_demo

    try:
        run_demo(args.out, videos=args.videos, quick=args.quick, workers=args.workers, quiet=args.quiet)
    except DemoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    """What ``mhar evaluate`` and ``mhar ablate`` both take: the run, its split, checkpoint, device."""
    p.add_argument("run", type=Path, help="the run directory of `mhar train`")
    p.add_argument("--split", default="test")
    p.add_argument("--checkpoint", default="best", metavar="best|last|PATH",
                   help="best.pt or last.pt of the run, or the path of a .pt file (default: best)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1...")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="mhar", description="multimodal human action recognition")
    parser.add_argument("--version", action="version", version=f"multimodal-har {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("info", help="versions, devices and available optional backends").set_defaults(func=_cmd_info)
    _add_extract_parser(sub)
    mp = sub.add_parser("manifest", help="summarise a feature store's manifest")
    mp.add_argument("store", type=Path)
    mp.add_argument("--csv", type=Path, help="also write the one-row-per-video CSV here")
    mp.add_argument("--verify", action="store_true",
                    help="check every ok entry's file against the size and SHA-256 recorded when it was written; "
                         "mark damaged ones failed (a resumed extraction redoes them) and exit 1 if any")
    mp.set_defaults(func=_cmd_manifest)
    shp = sub.add_parser("show", help="draw an entry of a store as a PNG (flow as colour, skeletons over frames, rgb frames)")
    shp.add_argument("store", type=Path)
    shp.add_argument("video", help="the video id")
    shp.add_argument("--modality", default="flow")
    shp.add_argument("--count", type=int, default=6, help="how many evenly spaced pairs / frames")
    shp.add_argument("--out", type=Path, help="PNG path (default: VIDEO_MODALITY.png)")
    shp.set_defaults(func=_cmd_show)

    pp = sub.add_parser("pyskl", help="write a store's poses as a PYSKL / MMAction2 skeleton pickle")
    pp.add_argument("store", type=Path)
    pp.add_argument("out", type=Path)
    pp.add_argument("--modality", default="pose3d")
    pp.add_argument("--keypoints", choices=["2d", "3d"], default="2d",
                    help="2d: image joints in pixels (PYSKL's 2D pipelines); 3d: metres")
    pp.set_defaults(func=_cmd_pyskl)

    sp = sub.add_parser("store", help="feature store tools")
    ssub = sp.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    ap = ssub.add_parser("add", help="bring your own modality: add .npy/.npz arrays named by video id")
    ap.add_argument("store", type=Path)
    ap.add_argument("--modality", required=True, help="modality name, e.g. imu, pose3d")
    ap.add_argument("--from", dest="source", required=True, type=Path,
                    help="a .npy/.npz file, or a folder of them (file path without suffix = video id)")
    ap.add_argument("--id", help="video id for a single file (default: its name)")
    ap.add_argument("--label")
    ap.add_argument("--split")
    ap.add_argument("--attr", action="append", metavar="KEY=VALUE", help="metadata attribute (repeatable)")
    ap.set_defaults(func=_cmd_store_add)

    from .data.importers import IMPORTERS

    ip = sub.add_parser("import", help="import a dataset's skeletons / inertial signals / depth into a store")
    ip.add_argument("dataset", metavar="NAME", help=f"one of: {', '.join(IMPORTERS.names())}")
    ip.add_argument("src", metavar="SRC", type=Path, help="the dataset's folder (pyskl: the .pkl file)")
    ip.add_argument("store", metavar="STORE", type=Path, help="the feature store folder (created if needed)")
    ip.add_argument("--split", help="named protocol (default: the dataset's cross_subject; 'none': no split; "
                                    "pyskl: 'TRAIN_LIST,TEST_LIST')")
    ip.add_argument("--modalities", help="utd_mhad: comma-separated, of skeleton,inertial,depth (default: all)")
    ip.add_argument("--depth-videos", type=Path, help="utd_mhad: folder for the depth videos "
                                                      "(default: STORE_depth_videos beside the store)")
    ip.add_argument("--subjects", help="utd_mhad: only these subjects, comma-separated")
    ip.add_argument("--actions", help="utd_mhad: only these actions (numbers or names), comma-separated")
    ip.add_argument("--limit", type=int, help="utd_mhad: at most this many samples")
    ip.add_argument("--benchmark", help="ntu: ntu60 (default) or ntu120")
    ip.add_argument("--layout", help="pyskl: the layout of the stored joints, e.g. coco_17 (required)")
    ip.set_defaults(func=_cmd_import)

    tp = sub.add_parser("train", help="train a fused model from an experiment config (YAML)")
    tp.add_argument("--config", required=True, type=Path, help="experiment YAML (data, model, train, seed, run_dir)")
    tp.add_argument("--resume", action="store_true", help="continue the run from RUN_DIR/last.pt")
    tp.add_argument("--set", action="append", metavar="KEY.PATH=VALUE",
                    help="override a config value, e.g. --set train.epochs=5 (repeatable; values are YAML)")
    tp.add_argument("--run-dir", help="shorthand for --set run_dir=DIR")
    tp.add_argument("--quiet", action="store_true", help="no progress bars or console lines (train.log is kept)")
    tp.set_defaults(func=_cmd_train)

    cp = sub.add_parser("config", help="experiment configs: JSON schema for editors, check a file")
    csub = cp.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    csp = csub.add_parser("schema", help="write the experiment config's JSON schema (YAML language servers read it)")
    csp.add_argument("--out", type=Path, help="the file to write (default: standard output)")
    csp.set_defaults(func=_cmd_config_schema)
    ccp = csub.add_parser("check", help="validate an experiment config (and overrides) without training")
    ccp.add_argument("config", type=Path)
    ccp.add_argument("--set", action="append", metavar="KEY.PATH=VALUE", help="override a value (repeatable)")
    ccp.set_defaults(func=_cmd_config_check)

    evp = sub.add_parser("evaluate", help="evaluate a trained run: metrics, confusion matrix, per-subset logits")
    _add_run_arguments(evp)
    evp.add_argument("--batch-size", type=int, help="default: the run's eval batch size")
    evp.add_argument("--quiet", action="store_true", help="no progress bar")
    evp.set_defaults(func=_cmd_evaluate)

    abp = sub.add_parser("ablate", help="modality ablation of a trained run: Shapley values, robustness, figures")
    _add_run_arguments(abp)
    abp.add_argument("--retrain", action="store_true", help="also retrain one model per modality subset (slow)")
    abp.add_argument("--no-robustness", action="store_true", help="skip the corruption curves")
    abp.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the CIs (0: none)")
    abp.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the corruptions")
    abp.add_argument("--out", type=Path, help="output folder (default: RUN/ablation_<split>)")
    abp.add_argument("--quiet", action="store_true", help="no progress lines (an unreliable ablation still warns)")
    abp.add_argument("--require-reliable", action="store_true",
                     help="exit with status 2, writing nothing, when the run's subset paths were never trained "
                          "(no modality dropout, no late fusion with train.aux_loss_weight, no --retrain)")
    abp.set_defaults(func=_cmd_ablate)

    dp = sub.add_parser("demo", help="the whole path on the bundled sample videos: extract, train, evaluate, "
                                     "ablate (offline, minutes on a CPU)")
    dp.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (a demo there is resumed)")
    dp.add_argument("--videos", type=Path, help="a video folder instead of the bundled samples")
    dp.add_argument("--quick", action="store_true", help="tiny sizes and 2 epochs: a smoke test of the path")
    dp.add_argument("--workers", type=int, help="extraction processes (default: all cores)")
    dp.add_argument("--quiet", action="store_true", help="no progress output")
    dp.set_defaults(func=_cmd_demo)
    return parser


def _default_pose_backend() -> str:
    """mmpose where it is installed and a GPU is visible, else MediaPipe (CPU)."""
    import importlib.util

    import torch

    if torch.cuda.is_available() and importlib.util.find_spec("mmpose") is not None:
        return "mmpose"
    return "mediapipe"


def _default_flow_backend() -> str:
    import torch

    return "raft" if torch.cuda.is_available() else "dis"


# ``extract GROUP --backend B ...`` -> ``extract B ...``: group -> (backends, default, what it writes)
_GROUPS = {
    "flow": ("FLOW_BACKENDS", _default_flow_backend, "Optical flow into the `flow` modality"),
    "pose": ("POSE_BACKENDS", _default_pose_backend, "3D poses into the `pose3d` modality"),
}


def _backend_alias(argv: list[str]) -> list[str]:
    """``extract flow|pose --backend B ...`` -> ``extract B ...`` (a default backend if none)."""
    from multimodal_har import extractors

    if len(argv) < 2 or argv[0] != "extract" or argv[1] not in _GROUPS:
        return argv
    names_attr, default, what = _GROUPS[argv[1]]
    names = getattr(extractors, names_attr)
    rest = argv[2:]
    backend = None
    for k, a in enumerate(rest):
        if a == "--backend" and k + 1 < len(rest):
            backend, rest = rest[k + 1], rest[:k] + rest[k + 2:]
            break
        if a.startswith("--backend="):
            backend, rest = a.split("=", 1)[1], rest[:k] + rest[k + 1:]
            break
    if backend is None:
        if "-h" in rest or "--help" in rest:
            print("usage: mhar extract %s --backend {%s} --videos ROOT --store OUT [backend flags]\n\n"
                  "%s (--modality NAME to keep several). Backend flags:\n"
                  "  mhar extract BACKEND --help" % (argv[1], ",".join(names), what))
            raise SystemExit(0)
        backend = default()
    if backend not in names:
        raise SystemExit(f"error: unknown {argv[1]} backend {backend!r}; choices: {', '.join(names)}")
    return ["extract", backend, *rest]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_backend_alias(list(sys.argv[1:] if argv is None else argv)))
    if args.command == "extract":
        args.func = _cmd_extract
    from .data.store import DamagedEntryError

    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, NotADirectoryError, DamagedEntryError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
