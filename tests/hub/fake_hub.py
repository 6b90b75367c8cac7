"""A small Hugging Face Hub in the test process: the endpoints ``huggingface_hub`` calls to create a
repository, upload files (regular and LFS) and download them, and nothing else.

Write (an ``Authorization`` header is required):

* ``POST /api/repos/create``                          ``{"name", "organization", "visibility"?}``
* ``POST /api/validate-yaml``                         the model card's YAML front matter is parsed
* ``POST /api/models/OWNER/NAME/branch/BRANCH``       a branch at the tip of ``main``
* ``POST /api/models/OWNER/NAME/preupload/REV``       ``uploadMode`` per file: ``lfs`` for binary
                                                      samples and ``*.safetensors``, else ``regular``
* ``POST /OWNER/NAME.git/info/lfs/objects/batch``     LFS batch API (``basic`` transfer): an upload
                                                      and a verify action per new object
* ``PUT  /lfs-upload/OID``                            the object's bytes; their SHA-256 must be OID
* ``POST /lfs-verify``                                ``{"oid", "size"}`` of a stored object
* ``POST /api/models/OWNER/NAME/commit/REV``          ndjson: header, ``file`` (base64), ``lfsFile``;
  with ``?create_pr=1`` the commit goes on top of REV to a new pull request, the ref ``refs/pr/N``
  (N = 1, 2, ...), and ``pullRequestUrl`` ends in ``/discussions/N``, as on the Hub

Read:

* ``HEAD|GET /OWNER/NAME/resolve/REV/PATH``           REV a branch, ``refs/pr/N`` or commit, percent-encoded
  as one part (``refs%2Fpr%2F1``, as ``huggingface_hub`` sends it); ``X-Repo-Commit``,
  ``ETag`` (git blob SHA-1 of a regular file, SHA-256 of an LFS file, which also goes in
  ``X-Linked-Etag`` and ``X-Linked-Size``), ``Content-Length``, ``Accept-Ranges``; ``Range: bytes=N-``
  answers ``206`` with ``Content-Range``. Errors carry ``X-Error-Code`` (``RepoNotFound``,
  ``RevisionNotFound``, ``EntryNotFound``) as the Hub's do.

Faults for the tests: :attr:`FakeHub.cut_once` (paths whose next full GET sends the headers and half
the bytes, then drops the connection) and :attr:`FakeHub.tamper` (paths served with other bytes of
the same length, under the true ETag). Every request is logged in :attr:`FakeHub.requests`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class StoredFile:
    data: bytes
    lfs: bool

    @property
    def etag(self) -> str:
        return hashlib.sha256(self.data).hexdigest() if self.lfs else git_oid(self.data)


@dataclass
class Repo:
    private: bool
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit
    commits: dict[str, dict[str, StoredFile]] = field(default_factory=dict)  # commit -> path -> file

    def commit_of(self, rev: str) -> str | None:
        if rev in self.branches:
            return self.branches[rev]
        return rev if rev in self.commits else None


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case


class FakeHub:
    """Start with :meth:`start` (binds 127.0.0.1 on a free port), stop with :meth:`stop`."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[Request] = []
        self.cut_once: set[str] = set()
        self.tamper: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._n_commits = 0

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def requests_for(self, method: str, path_end: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path.endswith(path_end)]

    def new_commit(self, repo: Repo, parent: str | None, files: dict[str, StoredFile]) -> str:
        self._n_commits += 1
        sha = hashlib.sha1(f"{parent}:{self._n_commits}:{sorted(files)}".encode()).hexdigest()
        repo.commits[sha] = files
        return sha


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet
        pass

    # -- plumbing -------------------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, code: str, message: str) -> None:
        self._json(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

    def _authorized(self) -> bool:
        return self.headers.get("Authorization", "").startswith("Bearer ")

    def _log(self) -> None:
        with self.hub.lock:
            self.hub.requests.append(Request(self.command, urlsplit(self.path).path,
                                             {k.lower(): v for k, v in self.headers.items()}))

    def _repo(self, repo_id: str) -> Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorized()):
            self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            return None
        return repo

    # -- verbs ----------------------------------------------------------------------------------
    def do_HEAD(self):
        self._log()
        self._resolve(urlsplit(self.path).path)

    def do_GET(self):
        self._log()
        self._resolve(urlsplit(self.path).path)

    def do_PUT(self):
        self._log()
        path = urlsplit(self.path).path
        body = self._body()
        if not path.startswith("/lfs-upload/"):
            return self._error(404, "NotFound", path)
        oid = path.rsplit("/", 1)[1]
        if hashlib.sha256(body).hexdigest() != oid:
            return self._json(400, {"error": "sha256 of the uploaded bytes is not the oid"})
        self.hub.lfs[oid] = body
        self._send(200)

    def do_POST(self):
        self._log()
        path = unquote(urlsplit(self.path).path)
        body = self._body()
        if path == "/lfs-verify":
            info = json.loads(body)
            ok = len(self.hub.lfs.get(info["oid"], b"")) == info["size"] and info["oid"] in self.hub.lfs
            return self._json(200 if ok else 404, {})
        if not self._authorized():
            return self._json(401, {"error": "Invalid credentials in Authorization header"},
                              {"X-Error-Message": "Invalid credentials in Authorization header"})
        if path == "/api/repos/create":
            return self._create(json.loads(body))
        if path == "/api/validate-yaml":
            return self._validate_yaml(json.loads(body)["content"])
        if path.endswith(".git/info/lfs/objects/batch"):
            return self._lfs_batch(json.loads(body))
        parts = path.split("/")
        # /api/models/OWNER/NAME/{preupload,commit,branch}/REV
        if len(parts) >= 7 and parts[1:3] == ["api", "models"]:
            repo_id, action, rev = f"{parts[3]}/{parts[4]}", parts[5], "/".join(parts[6:])
            repo = self._repo(repo_id)
            if repo is None:
                return None
            if action == "preupload":
                return self._preupload(json.loads(body))
            if action == "commit":
                create_pr = parse_qs(urlsplit(self.path).query).get("create_pr") == ["1"]
                return self._commit(repo_id, repo, rev, body, create_pr=create_pr)
            if action == "branch":
                return self._branch(repo, rev)
        return self._error(404, "NotFound", path)

    # -- write endpoints ------------------------------------------------------------------------
    def _create(self, payload: dict) -> None:
        repo_id = f"{payload['organization']}/{payload['name']}"
        if repo_id in self.hub.repos:
            return self._json(409, {"error": "You already created this model repo", "url": f"{self.hub.url}/{repo_id}"})
        repo = Repo(private=payload.get("visibility") == "private" or bool(payload.get("private")))
        repo.branches["main"] = self.hub.new_commit(repo, None, {})
        self.hub.repos[repo_id] = repo
        self._json(200, {"url": f"{self.hub.url}/{repo_id}", "name": repo_id})

    def _validate_yaml(self, content: str) -> None:
        import yaml

        errors = []
        if not content.startswith("---\n") or "\n---\n" not in content[4:]:
            errors.append({"message": "no YAML front matter"})
        else:
            try:
                meta = yaml.safe_load(content[4:content.index("\n---\n", 4)])
                if not isinstance(meta, dict):
                    errors.append({"message": "front matter is not a mapping"})
            except yaml.YAMLError as exc:
                errors.append({"message": str(exc)})
        self._json(400 if errors else 200, {"errors": errors, "warnings": []})

    def _branch(self, repo: Repo, branch: str) -> None:
        if branch in repo.branches:
            return self._json(409, {"error": "branch exists"})
        repo.branches[branch] = repo.branches["main"]
        self._json(200, {})

    def _preupload(self, payload: dict) -> None:
        files = []
        for f in payload["files"]:
            sample = base64.b64decode(f["sample"])
            lfs = f["path"].endswith(".safetensors") or b"\0" in sample
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False})
        self._json(200, {"files": files})

    def _lfs_batch(self, payload: dict) -> None:
        assert payload["operation"] == "upload"
        objects = []
        for obj in payload["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.hub.lfs:
                entry["actions"] = {"upload": {"href": f"{self.hub.url}/lfs-upload/{obj['oid']}"},
                                    "verify": {"href": f"{self.hub.url}/lfs-verify"}}
            objects.append(entry)
        self._json(200, {"transfer": "basic", "objects": objects})

    def _commit(self, repo_id: str, repo: Repo, rev: str, body: bytes, *, create_pr: bool = False) -> None:
        if rev not in repo.branches:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        parent = repo.branches[rev]
        files = dict(repo.commits[parent])
        for line in body.decode().splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "file":
                files[value["path"]] = StoredFile(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                data = self.hub.lfs.get(value["oid"])
                if data is None:
                    return self._json(422, {"error": f"LFS object {value['oid']} was not uploaded"})
                files[value["path"]] = StoredFile(data, lfs=True)
            elif key != "header":
                return self._json(400, {"error": f"unsupported operation {key}"})
        sha = self.hub.new_commit(repo, parent, files)
        pr_url = None
        if create_pr:  # the branch stays; the commit is the pull request's ref
            number = 1 + sum(name.startswith("refs/pr/") for name in repo.branches)
            repo.branches[f"refs/pr/{number}"] = sha
            pr_url = f"{self.hub.url}/{repo_id}/discussions/{number}"
        else:
            repo.branches[rev] = sha
        self._json(200, {"commitUrl": f"{self.hub.url}/{repo_id}/commit/{sha}", "commitOid": sha,
                         "pullRequestUrl": pr_url})

    # -- read endpoint --------------------------------------------------------------------------
    def _resolve(self, raw_path: str) -> None:
        parts = [unquote(part) for part in raw_path.split("/")]  # REV is one encoded part: refs%2Fpr%2F1
        # /OWNER/NAME/resolve/REV/PATH...
        if len(parts) < 6 or parts[3] != "resolve":
            return self._error(404, "NotFound", raw_path)
        repo = self._repo(f"{parts[1]}/{parts[2]}")
        if repo is None:
            return None
        commit = repo.commit_of(parts[4])
        if commit is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {parts[4]}")
        file_path = "/".join(parts[5:])
        stored = repo.commits[commit].get(file_path)
        if stored is None:
            return self._error(404, "EntryNotFound", f"{file_path} does not exist at {commit}")
        data = self.hub.tamper.get(file_path, stored.data)
        headers = {"X-Repo-Commit": commit, "ETag": f'"{stored.etag}"', "Accept-Ranges": "bytes"}
        if stored.lfs:
            headers.update({"X-Linked-Etag": f'"{stored.etag}"', "X-Linked-Size": str(len(stored.data))})
        if self.command == "HEAD":
            return self._send(200, data, headers, content_type="application/octet-stream")
        start = 0
        range_header = self.headers.get("Range")
        if range_header:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if file_path in self.hub.cut_once and not range_header:
            self.hub.cut_once.discard(file_path)
            self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return None
        return self._send(206 if range_header else 200, data[start:], headers,
                          content_type="application/octet-stream")
