"""``hf://OWNER/NAME[@REV][/SUB]`` with any revision: ``refs/...`` takes three parts, any other
revision one (a ``/`` in it written ``%2F``); :meth:`HubRef.to_ref` writes a reference back so that
it parses to the same thing; downloads through the local Hub (``fake_hub.FakeHub``) fetch the files
of the revision named."""

from __future__ import annotations

import json

import pytest

from daclip_kit.errors import WeightsNotFoundError
from daclip_kit.weights import parse_hub_ref, resolve_weights
from daclip_kit.weights.hub import HubRef, HubRefError

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize("ref, revision, path, canonical", [
    ("hf://me/x", "main", "", "hf://me/x"),
    ("hf://me/x@main/", "main", "", "hf://me/x"),
    ("hf://me/x@v2/network-ema", "v2", "network-ema", "hf://me/x@v2/network-ema"),
    (f"hf://me/x@{COMMIT}/net", COMMIT, "net", f"hf://me/x@{COMMIT}/net"),
    ("hf://me/x@refs/pr/1", "refs/pr/1", "", "hf://me/x@refs/pr/1"),
    ("hf://me/x@refs/pr/1/sub", "refs/pr/1", "sub", "hf://me/x@refs/pr/1/sub"),
    ("hf://me/x@refs/pr/12/a/b.pth", "refs/pr/12", "a/b.pth", "hf://me/x@refs/pr/12/a/b.pth"),
    ("hf://me/x@refs/convert/parquet", "refs/convert/parquet", "", "hf://me/x@refs/convert/parquet"),
    ("hf://me/x@feature%2Fx/sub", "feature/x", "sub", "hf://me/x@feature%2Fx/sub"),
    ("hf://me/x@feature%2fx", "feature/x", "", "hf://me/x@feature%2Fx"),  # either case of the escape
    ("hf://me/x@refs%2Fpr%2F1/sub", "refs/pr/1", "sub", "hf://me/x@refs/pr/1/sub"),
    ("hf://me/x@refs/heads/feature%2Fx/sub", "refs/heads/feature/x", "sub", "hf://me/x@refs/heads/feature%2Fx/sub"),
])
def test_a_revision_is_read_by_one_rule_and_written_back(ref, revision, path, canonical):
    hub = parse_hub_ref(ref)
    assert (hub.repo_id, hub.revision, hub.path) == ("me/x", revision, path)
    assert hub.to_ref() == str(hub) == canonical
    assert parse_hub_ref(canonical) == hub


def test_a_subfolder_after_a_pull_request_is_not_part_of_the_revision():
    assert parse_hub_ref("hf://me/x@refs/pr/1/sub/model.safetensors").is_file
    assert not parse_hub_ref("hf://me/x@refs/pr/1/sub").is_file


@pytest.mark.parametrize("revision", ["feature/x", "a/b/c", "refs", "refs/pr", "refs/heads/feature/x", "50%",
                                      "v1.0", "release-2024_01", COMMIT])
@pytest.mark.parametrize("path", ["", "network-ema", "a/b/model.safetensors"])
def test_every_revision_round_trips(revision, path):
    hub = HubRef("me/x", revision, path)
    assert parse_hub_ref(hub.to_ref()) == hub, hub.to_ref()


@pytest.mark.parametrize("ref, part", [
    ("hf://me/x@refs", "refs/ but not three parts; write e.g. hf://me/x@refs/pr/1"),
    ("hf://me/x@refs/pr", "refs/ but not three parts"),
    ("hf://me/x@refs//1/sub", "refs/ but not three parts"),
    ("hf://me/x@", "the revision after '@' is empty"),
    ("hf://me/x@a..b", "invalid revision 'a..b'"),
    ("hf://me/x@%2Fx", "invalid revision '/x'"),
    ("hf://me/x@feature%2F%2Fx", "invalid revision 'feature//x'"),
    ("hf://me/x@a%20b", "invalid revision 'a b'"),
    ("hf://me/x@v1/../y", "'..' part in its subfolder"),
    ("hf://me", "names no repository"),
    ("hf://me/bad name@v1", "not a valid Hub reference"),
])
def test_malformed_revisions_are_one_error_naming_the_rule(ref, part):
    with pytest.raises(HubRefError) as info:
        parse_hub_ref(ref)
    assert part in str(info.value)
    if "revision" in part or "refs/" in part:
        assert "%2F" in str(info.value) or "leave out '@'" in str(info.value)  # says how to write one


def _commit(api, repo_id: str, files: dict[str, bytes], **kwargs):
    from huggingface_hub import CommitOperationAdd

    return api.create_commit(repo_id, [CommitOperationAdd(path_in_repo=k, path_or_fileobj=v) for k, v in files.items()],
                             commit_message="test", **kwargs)


def _folder(tag: str) -> dict[str, bytes]:
    """A native folder's two files; the weights are binary (LFS on the Hub), different per tag."""
    return {"config.json": json.dumps({"tag": tag}).encode(), "model.safetensors": b"\0" + tag.encode() * 64}


def test_a_pull_request_and_a_branch_with_a_slash_resolve_their_own_files(hub):
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token="hf_test_write_token")
    api.create_repo("me/x")
    _commit(api, "me/x", {f"net/{k}": v for k, v in _folder("main").items()})
    pr = _commit(api, "me/x", {f"sub/{k}": v for k, v in _folder("pr").items()}, create_pr=True)
    assert pr.pr_revision == "refs/pr/1"
    api.create_branch("me/x", branch="feature/x")
    _commit(api, "me/x", {f"sub/{k}": v for k, v in _folder("feature").items()}, revision="feature/x")

    for ref, tag in (("hf://me/x@refs/pr/1/sub", "pr"), ("hf://me/x@feature%2Fx/sub", "feature"),
                     ("hf://me/x/net", "main")):
        folder = resolve_weights(ref)
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == _folder(tag), ref
    # the revision went to the Hub as one part, the subfolder after it
    assert hub.requests_for("GET", "/me/x/resolve/refs%2Fpr%2F1/sub/config.json")
    assert hub.requests_for("GET", "/me/x/resolve/feature%2Fx/sub/config.json")
    one = resolve_weights("hf://me/x@refs/pr/1/sub/model.safetensors")
    assert one.is_file() and one.read_bytes() == _folder("pr")["model.safetensors"]

    with pytest.raises(WeightsNotFoundError, match=r"hf://me/x/sub/config\.json does not exist"):
        resolve_weights("hf://me/x/sub")  # main has no sub: the files above came from their revisions
    with pytest.raises(WeightsNotFoundError, match=r"no revision 'refs/pr/2'.*refs/pr/1"):
        resolve_weights("hf://me/x@refs/pr/2/sub")
