"""The one checkpoint format of the training loop, and the one place that reads checkpoints.

A checkpoint is a dict of tensors, Python numbers, strings, lists and dicts, so that it
loads with ``torch.load(..., weights_only=True)``::

    {"format": "bptt-checkpoint", "version": 2, "kind": "training" | "member", ...}

* ``kind="training"``: everything needed to continue an ensemble's training exactly:
  ``problem`` (``"synthetic"`` or ``"table1"``), ``config`` (the problem's configuration),
  ``loop`` (update count, active members, per-member bookkeeping), ``rule`` (the update
  rule's state), ``model`` and ``model_config``, and ``schedule`` (the data source's and
  the schedule's state: random generator states, carried hidden state, epoch figures).
* Both carry ``model_kind`` (a name of :data:`bptt.models.MODELS`) when the network is
  not an Elman network; without it the network is an :class:`bptt.models.ElmanRNN`.
* ``kind="member"``: the network one finished member ends with (or a network saved by
  ``model.save(path)``): ``model``, ``model_config`` and, where the problem keeps one, ``epoch`` (the epoch of the best
  validation figure, Table 1).

Version-1 payloads, written before this format, still load: the synthetic trainer's
state, the final member networks ``{"model", "model_config"}``, and Table 1's
``"table1-ensemble"`` and ``"table1-best"``. They are read with ``weights_only=True`` and
an explicit allow-list of the numpy types they hold (:data:`V1_NUMPY_GLOBALS`), and
migrated here, in memory, to version 2.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch

from bptt.models.persist import FORMAT, VERSION, _cpu, dumps, kind_entry, member, plain, save_model  # noqa: F401

KINDS = ("training", "member")


def _numpy_globals() -> list:
    found = [np.ndarray, np.dtype, np.dtypes.Float64DType, np.dtypes.Int64DType, np.dtypes.BoolDType]
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            mod = __import__(module, fromlist=["_reconstruct"])
        except ImportError:
            continue
        fn = getattr(mod, "_reconstruct", None)
        if fn is not None and fn not in found:
            found.append(fn)
    return found


#: The only non-builtin types a version-1 payload may hold (Table 1's epoch figures were
#: numpy arrays). Version-2 payloads need none of them.
V1_NUMPY_GLOBALS = _numpy_globals()


def training(problem: str, config: dict, loop: dict, rule: dict, model, schedule: dict) -> dict:
    """A version-2 training checkpoint (see the module docstring)."""
    return plain({"format": FORMAT, "version": VERSION, "kind": "training", "problem": problem, "config": config,
                  "loop": loop, "rule": rule, "model": _cpu(model.state_dict()), "model_config": model.config(),
                  "schedule": schedule, **kind_entry(model)})


def model_class(state: dict):
    """The class of the network a checkpoint holds (``model_kind``, default ``"elman"``)."""
    from bptt.models import MODELS

    name = state.get("model_kind", "elman")
    if name not in MODELS:
        raise ValueError(f"the checkpoint holds a model of unknown kind {name!r}; this library knows "
                         f"{', '.join(MODELS)}")
    return MODELS[name]


def loads(payload: bytes) -> dict:
    """Read a checkpoint of any version; version 1 comes back migrated to version 2.

    Raises ``ValueError`` when the payload is not a checkpoint of this library (or holds
    types outside the allow-list).
    """
    try:
        with torch.serialization.safe_globals(V1_NUMPY_GLOBALS):
            state = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - pickle errors come in many types
        raise ValueError(f"not a readable bptt checkpoint ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(state, dict):
        raise ValueError("not a bptt checkpoint: the payload is not a dict")
    if state.get("format") == FORMAT:
        if state.get("version") != VERSION:
            raise ValueError(f"checkpoint version {state.get('version')} is newer than this library reads "
                             f"({VERSION}); upgrade bptt")
        if state.get("kind") not in KINDS:
            raise ValueError(f"not a bptt checkpoint: unknown kind {state.get('kind')!r}")
        return state
    return migrate_v1(state)


def migrate_v1(state: dict) -> dict:
    """A version-1 payload as the version-2 checkpoint it stands for."""
    kind = state.get("kind")
    if kind == "table1-ensemble":
        return _table1_v1(state)
    if kind == "table1-best":
        return {"format": FORMAT, "version": VERSION, "kind": "member", "model": state["model"],
                "model_config": state["model_config"], "epoch": int(state["epoch"])}
    if kind is None and "update" in state and "task_rng" in state:
        return _synthetic_v1(state)
    if kind is None and set(state) == {"model", "model_config"}:
        return {"format": FORMAT, "version": VERSION, "kind": "member", "model": state["model"],
                "model_config": state["model_config"]}
    raise ValueError(f"not a bptt checkpoint: unknown payload with keys {sorted(state)[:8]}")


def _synthetic_v1(s: dict) -> dict:
    config = dict(s["config"])
    update = int(s["update"])
    active = [int(m) for m in s["active"]]
    members = [{"run_id": s["run_ids"][m], "status": str(s["status"][m]),
                "updates": update if m in active else int(s["finished_at"][m]),
                "clipped": int(s["clipped"][m]), "nonfinite": int(s["nonfinite"][m])}
               for m in range(len(config["seeds"]))]
    return {"format": FORMAT, "version": VERSION, "kind": "training", "problem": "synthetic", "config": config,
            "loop": {"update": update, "active": active, "members": members},
            "rule": None, "model": s["model"], "model_config": s["model_config"],
            "schedule": {"group": s["group"], "errors": [float(e) for e in s["errors"]],
                         "finished_at": [int(u) for u in s["finished_at"]], "task_rng": s["task_rng"],
                         "eval_rng": s["eval_rng"], "length_rng": s["length_rng"]}}


def _table1_v1(s: dict) -> dict:
    members = [dict(m, status=str(m["status"])) for m in s["members"]]
    stats = {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) if isinstance(v, np.ndarray) else v
             for k, v in s["stats"].items()}
    return {"format": FORMAT, "version": VERSION, "kind": "training", "problem": "table1",
            "config": dict(s["config"]),
            "loop": {"update": int(s["update"]), "active": list(s["active"]), "members": members},
            "rule": None, "model": s["model"], "model_config": s["model_config"],
            "schedule": {"epoch": int(s["epoch"]), "position": int(s["position"]), "h": s["h"], "stats": stats,
                         "members": members, "best_params": {int(m): p for m, p in s["best_params"].items()}}}


def load_model(payload: bytes | dict, device: str | torch.device = "cpu"):
    """The network a checkpoint holds (a member's, or the whole ensemble of a training one)."""
    from bptt.models import ElmanRNN
    from bptt.models.mixed import from_config

    state = loads(payload) if isinstance(payload, (bytes, bytearray, memoryview)) else payload
    cls = model_class(state)
    model = from_config(state["model_config"], device=device) if cls is ElmanRNN else \
        cls.from_config(state["model_config"], device=device)
    model.load_state_dict(state["model"])
    return model


def load_models(payloads: Sequence[bytes], device: str | torch.device = "cpu"):
    """One ensemble holding the networks of several member checkpoints (same shapes); Elman
    networks each with its own initialization's name and unit (see
    :func:`bptt.models.mixed.stack`)."""
    from bptt.models import ElmanRNN
    from bptt.models.mixed import stack

    states = [loads(p) for p in payloads]
    cls = model_class(states[0])
    if cls is ElmanRNN:
        return stack([st["model_config"] for st in states], [st["model"] for st in states], device=device)
    cfg = dict(states[0]["model_config"])
    cfg["seeds"] = [s for st in states for s in st["model_config"]["seeds"]]
    model = cls.from_config(cfg, device=device)
    with torch.no_grad():
        for name, p in model.state_dict(keep_vars=True).items():
            p.copy_(torch.cat([st["model"][name] for st in states]).to(p.device))
    return model


def load_file(path, device: str | torch.device = "cpu"):
    """The network saved at ``path`` by :func:`save_model` (or any member checkpoint).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a bptt checkpoint.
    """
    import pathlib

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved model at {path}")
    return load_model(path.read_bytes(), device=device)


def latest_training(store, run_ids: Sequence[int]) -> tuple[int, dict] | None:
    """The newest training checkpoint among the runs ``run_ids``: ``(step, checkpoint)``.

    Runs whose last checkpoint is a member's network (a finished run) are passed over;
    ``None`` when no run has a training checkpoint. Payloads are read newest first and
    only until one is a training checkpoint (the members of an ensemble share one).
    """
    found = []
    for rid in run_ids:
        ck = store.load_checkpoint(rid)
        if ck is not None:
            found.append((ck[0], -rid, ck[1]))
    for step, _, payload in sorted(found, key=lambda f: f[:2], reverse=True):
        state = loads(payload)
        if state["kind"] == "training":
            return step, state
    return None


def run_network(store, run_id: int, device: str | torch.device = "cpu"):
    """The network of run ``run_id``: the one it finished with, or, for a run stopped
    mid-training, its member of the ensemble in the newest training checkpoint.

    Raises:
        KeyError: no run ``run_id`` in ``store``.
        ValueError: the run has no checkpoint.
    """
    store.get_run(run_id)
    found = store.load_checkpoint(run_id)
    if found is None:
        raise ValueError(f"run {run_id} has no saved network (no checkpoint was recorded for it)")
    state = loads(found[1])
    model = load_model(state, device=device)
    if state["kind"] == "member":
        return model
    loop = state["loop"]
    active = [int(m) for m in loop["active"]]
    ids = [loop["members"][m].get("run_id") for m in active]
    if run_id not in ids:
        raise ValueError(f"run {run_id}'s newest checkpoint does not hold its network")
    return model.select([ids.index(run_id)])
