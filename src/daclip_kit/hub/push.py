"""Upload a native folder to the Hugging Face Hub with a generated model card (``daclip-kit push``).

One commit holds ``README.md`` (:func:`~daclip_kit.hub.card.model_card`) and the ``config.json``
+ ``model.safetensors`` of each model folder (:func:`~daclip_kit.hub.folders.plan_push`), sent
with ``huggingface_hub`` (``HfApi.create_repo``, ``create_branch``, ``create_commit``: the
safetensors go through LFS or Xet, as the installed client does). The token is the usual one:
``HF_TOKEN`` or the one ``huggingface-cli login`` saved; ``HF_ENDPOINT`` is read at call time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import DaclipKitError, InputError
from ..model.unit import MODEL_INDEX
from ..weights.hub import HubRef, hub_endpoint, hub_offline
from .card import model_card
from .folders import PushPlan, plan_push, uploaded_files

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class HubPushError(DaclipKitError):
    """A push that could not be done (no token, offline, refused by the Hub)."""


@dataclass(frozen=True)
class PushResult:
    """Where the push went: ``url`` of the commit, its ``commit`` id, the ``files`` sent (paths in
    the repository) and the ``refs`` to load them with (``hf://...``)."""

    url: str
    commit: str
    files: tuple[str, ...]
    refs: tuple[str, ...]


def _token(token: str | None) -> str:
    from huggingface_hub import get_token

    found = token or get_token()
    if not found:
        raise HubPushError("No Hugging Face token: set HF_TOKEN or run `huggingface-cli login` (a token with write "
                           "access, https://huggingface.co/settings/tokens).")
    return found


def push_folder(folder: str | Path, repo_id: str, *, private: bool = False, revision: str | None = None,
                token: str | None = None, message: str | None = None) -> PushResult:
    """Upload ``folder`` (see :func:`~daclip_kit.hub.folders.plan_push`) to the model repository
    ``repo_id`` (created when missing; ``private`` applies to a new one) on branch ``revision``
    (created from ``main`` when missing; default ``main``).

    Raises:
        InputError: ``repo_id`` is not ``OWNER/NAME``.
        CheckpointError: ``folder`` is not native (one line naming what is missing).
        HubPushError: no token, ``HF_HUB_OFFLINE`` set, or the Hub refused (its message).
    """
    if not _REPO_ID.match(repo_id):
        raise InputError(f"{repo_id!r} is not a Hub repository id; write OWNER/NAME (e.g. me/my-nafnet).")
    plan = plan_push(folder)
    if hub_offline():
        raise HubPushError("HF_HUB_OFFLINE is set, so nothing can be pushed; unset it and try again.")
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.utils import HfHubHTTPError

    api = HfApi(endpoint=hub_endpoint(), token=_token(token))
    operations = [CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=model_card(plan, repo_id).encode())]
    if plan.index is not None:
        operations.append(CommitOperationAdd(path_in_repo=MODEL_INDEX, path_or_fileobj=plan.index.encode()))
    for model in plan.models:
        prefix = f"{model.repo_path}/" if model.repo_path else ""
        operations += [CommitOperationAdd(path_in_repo=prefix + name, path_or_fileobj=str(model.local / name))
                       for name in uploaded_files(model.local)]
    branch = revision or "main"
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if branch != "main":
            api.create_branch(repo_id, branch=branch, exist_ok=True, repo_type="model")
        info = api.create_commit(repo_id, operations=operations, revision=branch, repo_type="model",
                                 commit_message=message or f"Upload {plan.models[0].info.name} with daclip-kit")
    except (HfHubHTTPError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HubPushError(f"Pushing {plan.source} to {repo_id} failed: {first}") from exc
    refs = tuple(HubRef(repo_id, branch, m.repo_path).to_ref() for m in plan.models)
    if plan.index is not None:  # the whole model first: restorer and DA-CLIP together
        refs = (HubRef(repo_id, branch).to_ref(), *refs)
    return PushResult(url=str(info.commit_url), commit=str(info.oid), files=tuple(op.path_in_repo for op in operations),
                      refs=refs)


__all__ = ["HubPushError", "PushPlan", "PushResult", "plan_push", "push_folder"]
