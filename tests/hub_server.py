"""A Hugging Face Hub look-alike on 127.0.0.1, for tests that pull and push through the real
`huggingface_hub` and `datasets` clients, and the network guard that keeps tests off the network.

Load it as a pytest plugin (`pytest_plugins = ["hub_server"]` in tests/conftest.py, or
`pytest -p hub_server`). At configure time it starts one server per process and points HF_ENDPOINT
and the other HF_* settings at it, before any test module imports the clients (both read their
settings once, at import). The `hub` fixture then gives each test an empty hub and a private cache.

Repos are in memory and git-like: commits with 40-hex ids, branches (`main`) and tags, files as
bytes, stored as regular git blobs or as LFS objects the way the real Hub decides it.
"""

import base64
import fnmatch
import hashlib
import importlib.util
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

NETGUARD_DIR = Path(__file__).parent / "netguard"
DEFAULT_TOKEN = "hf_wmplat_test_token"
DEFAULT_USER = "wmplat-tester"
REGULAR_MAX_SIZE = 10 * 1024 * 1024  # larger files always go to LFS, as on the Hub
# The .gitattributes the Hub writes in a new repo (abridged): these files are stored in LFS.
GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in ("*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.gz", "*.h5", "*.joblib",
                    "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.parquet", "*.pickle",
                    "*.pkl", "*.pt", "*.pth", "*.safetensors", "*.tar", "*.tgz", "*.xz", "*.zip",
                    "*.zst", "*tfevents*")
)
REPO_TYPES = {"models": "model", "datasets": "dataset"}
_commit_numbers = itertools.count(1)  # makes every commit id unique within the process


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Blob:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
                f"size {len(self.data)}\n").encode()

    @property
    def oid(self) -> str:
        """The git object id: of the content, or of the LFS pointer file for LFS files."""
        return git_blob_sha1(self.pointer if self.lfs else self.data)

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.oid


@dataclass
class Commit:
    sha: str
    parent: "Commit | None"
    files: dict[str, Blob]
    title: str
    message: str
    author: str
    date: datetime

    def history(self) -> Iterator["Commit"]:
        commit = self
        while commit is not None:
            yield commit
            commit = commit.parent


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created: datetime
    branches: dict[str, Commit] = field(default_factory=dict)
    tags: dict[str, Commit] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    lfs_objects: dict[str, bytes] = field(default_factory=dict)  # uploaded, by sha256


class HubError(Exception):
    """An error answer: HTTP status, the Hub's X-Error-Code and a message."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 headers: Mapping[str, str] | None = None, body: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = dict(headers or {})
        self.body = body or {}


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _folders_of(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _tree_sha(files: Mapping[str, Blob], folder: str) -> str:
    prefix = f"{folder}/" if folder else ""
    lines = sorted(f"{path} {blob.oid}" for path, blob in files.items() if path.startswith(prefix))
    return hashlib.sha1("\n".join(lines).encode()).hexdigest()


def _is_lfs_path(path: str, gitattributes: bytes) -> bool:
    for line in gitattributes.decode(errors="replace").splitlines():
        pattern, _, attributes = line.strip().partition(" ")
        if "filter=lfs" not in attributes.split():
            continue
        target = path if "/" in pattern else path.rsplit("/", 1)[-1]
        if fnmatch.fnmatch(target, pattern.lstrip("/")):
            return True
    return False


class HubState:
    """All repos of one hub, and the tokens it accepts. Thread-safe: one lock around it all."""

    def __init__(self, tokens: Mapping[str, str]):
        self.lock = threading.RLock()
        self.tokens = dict(tokens)  # token -> user name
        self.repos: dict[tuple[str, str], Repo] = {}

    def reset(self, tokens: Mapping[str, str]) -> None:
        with self.lock:
            self.repos.clear()
            self.tokens = dict(tokens)

    # -- repos and revisions

    def repo(self, repo_type: str, repo_id: str, user: str | None = None) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and user is None):
            raise HubError(404, f"Repository not found: {repo_type}s/{repo_id}", "RepoNotFound")
        return repo

    def create_repo(self, repo_type: str, repo_id: str, private: bool = False) -> Repo:
        if repo_type not in REPO_TYPES.values():
            raise HubError(400, f"unknown repo type {repo_type!r}")
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id) or "--" in repo_id or ".." in repo_id:
            raise HubError(400, f"invalid repo id {repo_id!r}")
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                raise HubError(409, f"You already created this {repo_type} repo: {repo_id}")
            repo = Repo(repo_type, repo_id, private, now())
            self.repos[(repo_type, repo_id)] = repo
            blob = Blob(GITATTRIBUTES.encode(), lfs=False)
            self._add_commit(repo, "main", {".gitattributes": blob}, "initial commit", "",
                             DEFAULT_USER)
            return repo

    def resolve(self, repo: Repo, revision: str) -> Commit:
        name = revision.removeprefix("refs/heads/").removeprefix("refs/tags/")
        commit = repo.branches.get(name) or repo.tags.get(name) or repo.commits.get(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _add_commit(self, repo: Repo, branch: str, files: dict[str, Blob], title: str,
                    message: str, author: str) -> Commit:
        parent = repo.branches.get(branch)
        text = (f"tree {_tree_sha(files, '')}\nparent {parent.sha if parent else ''}\n"
                f"number {next(_commit_numbers)}\n\n{title}\n\n{message}")
        commit = Commit(hashlib.sha1(text.encode()).hexdigest(), parent, files, title, message,
                        author, now())
        repo.commits[commit.sha] = commit
        repo.branches[branch] = commit
        return commit

    def commit(self, repo: Repo, branch: str, operations: list[dict], header: dict,
               author: str) -> Commit:
        """Apply the operations of one /commit call on top of `branch`."""
        with self.lock:
            head = self.resolve(repo, branch)
            if branch not in repo.branches:
                raise HubError(400, f"Cannot commit to {branch!r}: not a branch")
            parent = header.get("parentCommit")
            if parent and parent != head.sha:
                raise HubError(412, f"A commit has happened since {parent}: the head of {branch}"
                                    f" is {head.sha}. Please refresh and try again.")
            files = dict(head.files)
            for operation in operations:
                self._apply(repo, files, operation["key"], operation["value"])
            return self._add_commit(repo, branch, files, header.get("summary") or "",
                                    header.get("description") or "", author)

    def _apply(self, repo: Repo, files: dict[str, Blob], key: str, value: dict) -> None:
        path = value.get("path", "")
        if not path or path.startswith("/") or ".." in path.split("/"):
            raise HubError(400, f"invalid path in commit: {path!r}")
        if key == "file":
            files[path] = Blob(base64.b64decode(value["content"]), lfs=False)
        elif key == "lfsFile":
            data = repo.lfs_objects.get(value["oid"])
            if data is None:
                raise HubError(400, f"LFS object {value['oid']} for {path} was never uploaded")
            files[path] = Blob(data, lfs=True)
        elif key == "deletedFile":
            if files.pop(path, None) is None:
                raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
        elif key == "deletedFolder":
            prefix = path.rstrip("/") + "/"
            doomed = [name for name in files if name.startswith(prefix)]
            if not doomed:
                raise HubError(404, f"A folder with this name doesn't exist: {path}",
                               "EntryNotFound")
            for name in doomed:
                del files[name]
        else:
            raise HubError(400, f"unknown commit operation {key!r}")

    def upload_mode(self, commit: Commit, path: str, size: int, sample: bytes) -> str:
        gitattributes = commit.files.get(".gitattributes")
        lfs = (size > REGULAR_MAX_SIZE or b"\0" in sample
               or (gitattributes is not None and _is_lfs_path(path, gitattributes.data)))
        return "lfs" if lfs else "regular"


# -- JSON views of repos, as the Hub API writes them


def _last_commit(commit: Commit, path: str, is_file: bool) -> dict:
    def version(c: Commit):
        return c.files.get(path) if is_file else _tree_sha(c.files, path)

    introduced = commit
    for older in commit.history():
        if version(older) != version(commit):
            break
        introduced = older
    return {"id": introduced.sha, "title": introduced.title, "date": iso(introduced.date)}


def file_entry(commit: Commit, path: str, expand: bool = False) -> dict:
    blob = commit.files[path]
    entry = {"type": "file", "oid": blob.oid, "size": len(blob.data), "path": path}
    if blob.lfs:
        entry["lfs"] = {"oid": blob.sha256, "size": len(blob.data),
                        "pointerSize": len(blob.pointer)}
    if expand:
        entry["lastCommit"] = _last_commit(commit, path, is_file=True)
    return entry


def folder_entry(commit: Commit, path: str, expand: bool = False) -> dict:
    entry = {"type": "directory", "oid": _tree_sha(commit.files, path), "path": path}
    if expand:
        entry["lastCommit"] = _last_commit(commit, path, is_file=False)
    return entry


def folders(commit: Commit) -> set[str]:
    return {folder for path in commit.files for folder in _folders_of(path)}


def tree_entries(commit: Commit, path: str, recursive: bool, expand: bool) -> list[dict]:
    path = path.strip("/")
    if path and path not in folders(commit):
        raise HubError(404, f"Path {path} not found as a folder", "EntryNotFound",
                       {"X-Repo-Commit": commit.sha})
    prefix = f"{path}/" if path else ""

    def wanted(name: str) -> bool:
        return name.startswith(prefix) and (recursive or "/" not in name[len(prefix):])

    entries = [folder_entry(commit, name, expand) for name in sorted(folders(commit))
               if wanted(name)]
    entries += [file_entry(commit, name, expand) for name in sorted(commit.files) if wanted(name)]
    return entries


def repo_info(repo: Repo, commit: Commit, blobs: bool) -> dict:
    siblings = []
    for path, blob in sorted(commit.files.items()):
        sibling: dict = {"rfilename": path}
        if blobs:
            sibling.update(size=len(blob.data), blobId=blob.oid)
            if blob.lfs:
                sibling["lfs"] = {"size": len(blob.data), "sha256": blob.sha256,
                                  "pointerSize": len(blob.pointer)}
        siblings.append(sibling)
    return {"_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24], "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0], "sha": commit.sha, "private": repo.private,
            "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": [],
            "createdAt": iso(repo.created), "lastModified": iso(commit.date),
            "siblings": siblings}


def commit_entry(commit: Commit) -> dict:
    return {"id": commit.sha, "title": commit.title, "message": commit.message,
            "authors": [{"user": commit.author}], "date": iso(commit.date)}


def _validate_card(content: str) -> dict:
    """The /api/validate-yaml check: the YAML front matter of a card must parse to a mapping."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.DOTALL)
    if not match:
        return {"errors": [], "warnings": []}
    import yaml

    try:
        metadata = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        return {"errors": [{"message": f"invalid YAML in the card metadata: {error}"}]}
    if metadata is not None and not isinstance(metadata, dict):
        return {"errors": [{"message": "the card metadata must be a YAML mapping"}]}
    return {"errors": [], "warnings": []}


# -- HTTP

_REPO = r"(?P<owner>[^/]+)/(?P<name>[^/]+)"
_API = rf"/api/(?P<types>models|datasets)/{_REPO}"
_WEB = rf"/(?P<prefix>datasets/)?{_REPO}"
ROUTES = [
    ("GET", r"/api/whoami-v2", "whoami"),
    ("POST", r"/api/repos/create", "create_repo"),
    ("POST", r"/api/repos/delete", "delete_repo"),
    ("POST", r"/api/validate-yaml", "validate_yaml"),
    ("GET", rf"{_API}(?:/revision/(?P<rev>[^/]+))?", "repo_info"),
    ("GET", rf"{_API}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?", "tree"),
    ("POST", rf"{_API}/paths-info/(?P<rev>[^/]+)", "paths_info"),
    ("GET", rf"{_API}/refs", "refs"),
    ("GET", rf"{_API}/commits/(?P<rev>[^/]+)", "commits"),
    ("POST", rf"{_API}/preupload/(?P<rev>[^/]+)", "preupload"),
    ("POST", rf"{_API}/commit/(?P<rev>[^/]+)", "commit"),
    ("POST", rf"{_API}/branch/(?P<rev>[^/]+)", "create_branch"),
    ("DELETE", rf"{_API}/branch/(?P<rev>[^/]+)", "delete_branch"),
    ("POST", rf"{_API}/tag/(?P<rev>[^/]+)", "create_tag"),
    ("DELETE", rf"{_API}/tag/(?P<rev>[^/]+)", "delete_tag"),
    ("POST", rf"{_WEB}\.git/info/lfs/objects/batch", "lfs_batch"),
    ("PUT", rf"/lfs-upload/(?P<kind>model|dataset)/{_REPO}/(?P<oid>[0-9a-f]{{64}})", "lfs_upload"),
    ("GET", rf"{_WEB}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ("HEAD", rf"{_WEB}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
]
ROUTES = [(method, re.compile(pattern + "$"), action) for method, pattern, action in ROUTES]


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "HubHTTPServer"

    def log_message(self, format, *args) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- plumbing

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        self.body = self._read_body()
        self.server.hub.requests.append(f"{method} {self.path}")
        try:
            for route_method, pattern, action in ROUTES:
                match = pattern.match(url.path)
                if match and route_method == method:
                    args = {key: unquote(value) for key, value in match.groupdict().items()
                            if value is not None}
                    getattr(self, f"_{action}")(**args)
                    return
            raise HubError(404, f"no such endpoint in the test hub: {method} {url.path}")
        except HubError as error:
            headers = {**error.headers, "X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            self._send_json({"error": error.message, **error.body}, error.status, headers)
        except Exception as error:  # a bug in the test hub: say so in the answer, not silently
            traceback.print_exc()
            message = f"test hub failed: {type(error).__name__}: {error}"
            self._send_json({"error": message}, 500, {"X-Error-Message": message})

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json_body(self) -> dict:
        try:
            return json.loads(self.body or b"{}")
        except ValueError as error:
            raise HubError(400, f"request body is not JSON: {error}") from None

    def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))  # of the body a GET would get
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, data, status: int = 200, headers: Mapping[str, str] | None = None):
        self._send(status, json.dumps(data).encode(),
                   {"Content-Type": "application/json", **(headers or {})})

    def _user(self, required: bool = False) -> str | None:
        """The user of the request's token; a token the hub does not know is refused."""
        authorization = self.headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ").strip() if authorization else ""
        if token:
            user = self.server.hub.state.tokens.get(token)
            if user is None:
                raise HubError(401, "Invalid credentials in Authorization header")
            return user
        if required:
            raise HubError(401, "This action needs a token (Authorization: Bearer ...)")
        return None

    def _repo(self, types: str, owner: str, name: str, write: bool = False) -> Repo:
        user = self._user(required=write)
        return self.server.hub.state.repo(REPO_TYPES[types], f"{owner}/{name}", user)

    def _repo_url(self, repo: Repo) -> str:
        prefix = "datasets/" if repo.repo_type == "dataset" else ""
        return f"{self.server.hub.endpoint}/{prefix}{repo.repo_id}"

    # -- endpoints

    def _whoami(self) -> None:
        user = self._user(required=True)
        self._send_json({"type": "user", "id": hashlib.sha1(user.encode()).hexdigest()[:24],
                         "name": user, "fullname": user, "orgs": [],
                         "auth": {"type": "access_token",
                                  "accessToken": {"displayName": "test", "role": "write"}}})

    def _create_repo(self) -> None:
        user = self._user(required=True)
        body = self._json_body()
        repo_id = f"{body.get('organization') or user}/{body.get('name')}"
        repo_type = body.get("type") or "model"
        private = body.get("visibility") == "private" or bool(body.get("private"))
        try:
            repo = self.server.hub.state.create_repo(repo_type, repo_id, private)
        except HubError as error:
            if error.status == 409:
                prefix = "datasets/" if repo_type == "dataset" else ""
                error.body["url"] = f"{self.server.hub.endpoint}/{prefix}{repo_id}"
            raise
        self._send_json({"url": self._repo_url(repo), "name": repo_id, "id": repo_id})

    def _delete_repo(self) -> None:
        user = self._user(required=True)
        body = self._json_body()
        repo_id = f"{body.get('organization') or user}/{body.get('name')}"
        state = self.server.hub.state
        with state.lock:
            repo = state.repo(body.get("type") or "model", repo_id, user)
            del state.repos[(repo.repo_type, repo.repo_id)]
        self._send_json({})

    def _validate_yaml(self) -> None:
        result = _validate_card(self._json_body().get("content", ""))
        self._send_json(result, 400 if result["errors"] else 200)

    def _repo_info(self, types, owner, name, rev="main") -> None:
        repo = self._repo(types, owner, name)
        commit = self.server.hub.state.resolve(repo, rev)
        self._send_json(repo_info(repo, commit, blobs=self._flag("blobs")))

    def _flag(self, name: str, values: Mapping[str, list[str]] | None = None) -> bool:
        value = (values if values is not None else self.query).get(name, ["false"])[0]
        return value.lower() in ("1", "true")

    def _tree(self, types, owner, name, rev, path="") -> None:
        repo = self._repo(types, owner, name)
        commit = self.server.hub.state.resolve(repo, rev)
        self._send_json(tree_entries(commit, path, self._flag("recursive"), self._flag("expand")))

    def _paths_info(self, types, owner, name, rev) -> None:
        repo = self._repo(types, owner, name)
        commit = self.server.hub.state.resolve(repo, rev)
        form = parse_qs(self.body.decode())
        expand = self._flag("expand", form)
        entries = []
        for path in form.get("paths", []):
            path = path.strip("/")
            if path in commit.files:
                entries.append(file_entry(commit, path, expand))
            elif path in folders(commit):
                entries.append(folder_entry(commit, path, expand))
        self._send_json(entries)

    def _refs(self, types, owner, name) -> None:
        repo = self._repo(types, owner, name)

        def refs(kind: str, named: Mapping[str, Commit]) -> list[dict]:
            return [{"name": ref, "ref": f"refs/{kind}/{ref}", "targetCommit": commit.sha}
                    for ref, commit in sorted(named.items())]

        data = {"branches": refs("heads", repo.branches), "converts": [],
                "tags": refs("tags", repo.tags)}
        if self._flag("include_prs"):
            data["pullRequests"] = []
        self._send_json(data)

    def _commits(self, types, owner, name, rev) -> None:
        repo = self._repo(types, owner, name)
        head = self.server.hub.state.resolve(repo, rev)
        self._send_json([commit_entry(commit) for commit in head.history()])

    def _preupload(self, types, owner, name, rev) -> None:
        repo = self._repo(types, owner, name, write=True)
        state = self.server.hub.state
        commit = state.resolve(repo, rev)
        answers = []
        for file in self._json_body().get("files", []):
            sample = base64.b64decode(file.get("sample", ""))
            mode = state.upload_mode(commit, file["path"], file["size"], sample)
            existing = commit.files.get(file["path"])
            # The client compares this with its own: sha256 for LFS files, git sha1 for others.
            oid = None if existing is None else (existing.sha256 if existing.lfs
                                                 else git_blob_sha1(existing.data))
            answers.append({"path": file["path"], "uploadMode": mode, "shouldIgnore": False,
                            "oid": oid})
        self._send_json({"files": answers, "commitOid": commit.sha})

    def _commit(self, types, owner, name, rev) -> None:
        repo = self._repo(types, owner, name, write=True)
        user = self._user(required=True)
        lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "a commit starts with a header line")
        commit = self.server.hub.state.commit(repo, rev, lines[1:], lines[0]["value"], user)
        self._send_json({"success": True, "commitOid": commit.sha, "pullRequestUrl": None,
                         "commitUrl": f"{self._repo_url(repo)}/commit/{commit.sha}"})

    def _create_branch(self, types, owner, name, rev) -> None:
        repo = self._repo(types, owner, name, write=True)
        state = self.server.hub.state
        with state.lock:
            if rev in repo.branches:
                raise HubError(409, f"Branch {rev} already exists")
            repo.branches[rev] = state.resolve(repo, self._json_body().get("startingPoint")
                                               or "main")
        self._send_json({})

    def _delete_branch(self, types, owner, name, rev) -> None:
        repo = self._repo(types, owner, name, write=True)
        if repo.branches.pop(rev, None) is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        self._send_json({})

    def _create_tag(self, types, owner, name, rev) -> None:
        repo = self._repo(types, owner, name, write=True)
        tag = self._json_body().get("tag", "")
        state = self.server.hub.state
        with state.lock:
            if tag in repo.tags:
                raise HubError(409, f"Tag {tag} already exists")
            repo.tags[tag] = state.resolve(repo, rev)
        self._send_json({})

    def _delete_tag(self, types, owner, name, rev) -> None:
        repo = self._repo(types, owner, name, write=True)
        if repo.tags.pop(rev, None) is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        self._send_json({})

    def _lfs_batch(self, owner, name, prefix="") -> None:
        types = "datasets" if prefix else "models"
        repo = self._repo(types, owner, name, write=True)
        objects = []
        for item in self._json_body().get("objects", []):
            answer = {"oid": item["oid"], "size": item["size"], "authenticated": True}
            if item["oid"] not in repo.lfs_objects:
                href = (f"{self.server.hub.endpoint}/lfs-upload/{repo.repo_type}/{repo.repo_id}"
                        f"/{item['oid']}")
                answer["actions"] = {"upload": {"href": href}}
            objects.append(answer)
        self._send_json({"transfer": "basic", "objects": objects},
                        headers={"Content-Type": "application/vnd.git-lfs+json"})

    def _lfs_upload(self, kind, owner, name, oid) -> None:
        # Like a storage bucket's signed URL, the upload address needs no token.
        state = self.server.hub.state
        repo = state.repo(kind, f"{owner}/{name}", user=self.server.hub.user)
        if hashlib.sha256(self.body).hexdigest() != oid:
            raise HubError(400, f"uploaded content does not match its sha256 {oid}")
        with state.lock:
            repo.lfs_objects[oid] = self.body
        self._send(200, b"", {"ETag": f'"{oid}"'})

    def _resolve(self, owner, name, rev, path, prefix="") -> None:
        repo = self._repo("datasets" if prefix else "models", owner, name)
        commit = self.server.hub.state.resolve(repo, rev)
        blob = commit.files.get(path)
        if blob is None:
            raise HubError(404, f"Entry not found: {path} at {commit.sha}", "EntryNotFound",
                           {"X-Repo-Commit": commit.sha})
        headers = {"Content-Type": "application/octet-stream", "ETag": f'"{blob.etag}"',
                   "X-Repo-Commit": commit.sha, "Accept-Ranges": "bytes"}
        if blob.lfs:
            headers.update({"X-Linked-Etag": f'"{blob.etag}"',
                            "X-Linked-Size": str(len(blob.data))})
        status, body = self._byte_range(blob.data, headers)
        self._send(status, body, headers)

    def _byte_range(self, data: bytes, headers: dict) -> tuple[int, bytes]:
        spec = self.headers.get("Range")
        if not spec:
            return 200, data
        match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", spec)
        if not match or match.groups() == ("", ""):
            raise HubError(400, f"unsupported Range header {spec!r}")
        first, last = match.groups()
        size = len(data)
        if first:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        else:
            start, end = max(size - int(last), 0), size - 1
        if start >= size or start > end:
            raise HubError(416, f"range {spec!r} not satisfiable for {size} bytes",
                           headers={"Content-Range": f"bytes */{size}"})
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return 206, data[start:end + 1]


class HubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hub: "HubServer"):
        self.hub = hub
        super().__init__(("127.0.0.1", 0), HubHandler)


class HubServer:
    """The running test hub: its address, its state, and helpers to set up and inspect repos
    without going through HTTP. `repo_type` defaults to "dataset" in these helpers."""

    def __init__(self, token: str = DEFAULT_TOKEN, user: str = DEFAULT_USER):
        self.token, self.user = token, user
        self.state = HubState({token: user})
        self.requests: list[str] = []  # "METHOD /path?query" of every request, in order
        self.http = HubHTTPServer(self)
        self.endpoint = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.thread = threading.Thread(target=self.http.serve_forever, name="test-hub",
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()

    def reset(self) -> None:
        """Forget every repo and request; accept only the default token again."""
        self.state.reset({self.token: self.user})
        self.requests.clear()

    def accept_token(self, token: str, user: str) -> None:
        with self.state.lock:
            self.state.tokens[token] = user

    # -- set up

    def create_repo(self, repo_id: str, files: Mapping[str, bytes | str] | None = None, *,
                    repo_type: str = "dataset", private: bool = False) -> str:
        """Create a repo (with the Hub's initial commit), then commit `files`; return the head."""
        repo = self.state.create_repo(repo_type, repo_id, private)
        if files:
            return self.commit(repo_id, files, repo_type=repo_type)
        return repo.branches["main"].sha

    def commit(self, repo_id: str, files: Mapping[str, bytes | str] | None = None, *,
               delete: tuple[str, ...] = (), repo_type: str = "dataset", branch: str = "main",
               message: str = "test commit") -> str:
        """Commit files (LFS or regular as the Hub would choose) and deletions; return the id."""
        state = self.state
        with state.lock:
            repo = state.repo(repo_type, repo_id, self.user)
            head = state.resolve(repo, branch)
            operations = []
            for path, content in (files or {}).items():
                data = content.encode() if isinstance(content, str) else content
                if state.upload_mode(head, path, len(data), data[:512]) == "lfs":
                    repo.lfs_objects[hashlib.sha256(data).hexdigest()] = data
                    operations.append({"key": "lfsFile", "value": {
                        "path": path, "oid": hashlib.sha256(data).hexdigest()}})
                else:
                    operations.append({"key": "file", "value": {
                        "path": path, "content": base64.b64encode(data).decode()}})
            operations += [{"key": "deletedFile", "value": {"path": path}} for path in delete]
            return state.commit(repo, branch, operations, {"summary": message}, self.user).sha

    def tamper(self, repo_id: str, path: str, data: bytes | str, *, revision: str = "main",
               repo_type: str = "dataset") -> None:
        """Replace a file's bytes inside an existing commit, keeping the commit id: the hub then
        serves (with matching ETag and size) content that is not what was pushed."""
        data = data.encode() if isinstance(data, str) else data
        with self.state.lock:
            commit = self._commit(repo_id, revision, repo_type)
            if path not in commit.files:
                raise KeyError(f"{path} is not in {repo_id}@{commit.sha}")
            commit.files = {**commit.files, path: Blob(data, commit.files[path].lfs)}

    # -- inspect

    def _commit(self, repo_id: str, revision: str, repo_type: str) -> Commit:
        state = self.state
        return state.resolve(state.repo(repo_type, repo_id, self.user), revision)

    def repo_ids(self, repo_type: str = "dataset") -> list[str]:
        return sorted(repo_id for kind, repo_id in self.state.repos if kind == repo_type)

    def head(self, repo_id: str, *, branch: str = "main", repo_type: str = "dataset") -> str:
        return self._commit(repo_id, branch, repo_type).sha

    def commits(self, repo_id: str, *, revision: str = "main",
                repo_type: str = "dataset") -> list[str]:
        """Commit ids from `revision` back to the initial commit, newest first."""
        return [c.sha for c in self._commit(repo_id, revision, repo_type).history()]

    def files(self, repo_id: str, *, revision: str = "main",
              repo_type: str = "dataset") -> dict[str, bytes]:
        commit = self._commit(repo_id, revision, repo_type)
        return {path: blob.data for path, blob in sorted(commit.files.items())}

    def read(self, repo_id: str, path: str, *, revision: str = "main",
             repo_type: str = "dataset") -> bytes:
        files = self.files(repo_id, revision=revision, repo_type=repo_type)
        if path not in files:
            raise KeyError(f"{path} is not in {repo_id}@{revision}")
        return files[path]

    def is_lfs(self, repo_id: str, path: str, *, revision: str = "main",
               repo_type: str = "dataset") -> bool:
        return self._commit(repo_id, revision, repo_type).files[path].lfs


# -- the network guard


def _netguard():
    """The guard module of tests/netguard/sitecustomize.py, loaded under a name of its own so
    that it does not clash with another `sitecustomize`."""
    module = sys.modules.get("wmplat_netguard")
    if module is None:
        spec = importlib.util.spec_from_file_location("wmplat_netguard",
                                                      NETGUARD_DIR / "sitecustomize.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["wmplat_netguard"] = module
        spec.loader.exec_module(module)
    return module


def _with_netguard_path(pythonpath: str | None) -> str:
    parts = [part for part in (pythonpath or "").split(os.pathsep) if part]
    if str(NETGUARD_DIR) not in parts:
        parts.insert(0, str(NETGUARD_DIR))
    return os.pathsep.join(parts)


def install_network_guard(log: Path | str | None = None) -> None:
    """Refuse connections to anything but this machine, in this process and (through
    WMPLAT_NETGUARD, PYTHONPATH and sitecustomize) in every Python process it starts. Refused
    attempts are recorded (also in `log`, for subprocesses); `blocked_connections` lists them."""
    _netguard().install()
    os.environ["WMPLAT_NETGUARD"] = "1"
    os.environ["PYTHONPATH"] = _with_netguard_path(os.environ.get("PYTHONPATH"))
    if log is not None:
        os.environ["WMPLAT_NETGUARD_LOG"] = str(log)


def blocked_connections(clear: bool = False) -> list[str]:
    """Attempts the guard refused so far, in this process and in logged subprocesses."""
    guard = _netguard()
    attempts = list(guard.blocked)
    log = os.environ.get("WMPLAT_NETGUARD_LOG")
    if log and os.path.exists(log):
        attempts += Path(log).read_text(encoding="utf-8").splitlines()
    if clear:
        guard.blocked.clear()
        if log and os.path.exists(log):
            Path(log).write_text("", encoding="utf-8")
    return attempts


# -- pytest plugin

_SESSION_ENV = ("HF_ENDPOINT", "HF_TOKEN", "HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE",
                "HF_HUB_DISABLE_XET", "HF_UPDATE_DOWNLOAD_COUNTS", "HF_HUB_DISABLE_TELEMETRY",
                "HF_HUB_DISABLE_UPDATE_CHECK", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_session: dict = {}


def client_env(endpoint: str, token: str, home: Path) -> dict[str, str]:
    """The settings that point the clients at a test hub, with a private cache under `home`."""
    return {"HF_ENDPOINT": endpoint, "HF_TOKEN": token, "HF_HOME": str(home),
            "HF_HUB_CACHE": str(home / "hub"), "HF_DATASETS_CACHE": str(home / "datasets"),
            "HF_HUB_DISABLE_XET": "1",  # else LFS uploads ask a xet token endpoint
            "HF_UPDATE_DOWNLOAD_COUNTS": "0",  # else `datasets` pings an S3 bucket
            "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1"}


def pytest_configure(config) -> None:
    """Start this process's hub and set the HF_* settings before any test imports a client."""
    if _session:
        return
    server = HubServer()
    home = Path(tempfile.mkdtemp(prefix="wmplat-hf-"))
    _session.update(server=server, home=home,
                    saved={name: os.environ.get(name) for name in _SESSION_ENV})
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.pop(name, None)
    os.environ.update(client_env(server.endpoint, server.token, home))
    # Read the settings now: a client first imported inside a test using `hub` would keep that
    # test's private cache for the rest of the worker, and in-process commands would then see a
    # moved cache (tests/inprocess.py refuses them).
    import huggingface_hub.constants  # noqa: F401


def pytest_unconfigure(config) -> None:
    if not _session:
        return
    _session["server"].close()
    shutil.rmtree(_session["home"], ignore_errors=True)
    for name, value in _session["saved"].items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _session.clear()


def _check_client_settings(endpoint: str) -> None:
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and constants.ENDPOINT != endpoint:
        pytest.fail(f"huggingface_hub was imported with HF_ENDPOINT={constants.ENDPOINT}, not the"
                    f" test hub {endpoint}: load hub_server as a plugin (pytest_plugins ="
                    " ['hub_server'] in conftest.py) so it sets HF_* before the clients load")


@pytest.fixture(scope="session")
def hub_server() -> HubServer:
    """The hub of this test process (shared by its tests; `hub` empties it for each test)."""
    if not _session:
        pytest_configure(None)
    return _session["server"]


@dataclass
class Hub:
    """One test's view of the hub: `endpoint`, `token`, `home` (a private HF_HOME) and `env`,
    the settings a CLI subprocess needs. Other attributes are the server's helpers
    (create_repo, commit, tamper, head, commits, files, read, is_lfs, requests, ...)."""

    server: HubServer
    home: Path
    env: dict[str, str]

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    @property
    def token(self) -> str:
        return self.server.token

    def __getattr__(self, name: str):
        return getattr(self.server, name)


@pytest.fixture
def hub(hub_server: HubServer, tmp_path_factory) -> Iterator[Hub]:
    """An empty hub and a private Hugging Face cache for one test. `hub.env` is also applied to
    os.environ for the test's duration: subprocesses see all of it; in-process clients keep the
    endpoint and cache they read at import (pass cache_dir= for a private in-process cache)."""
    _check_client_settings(hub_server.endpoint)
    hub_server.reset()
    home = tmp_path_factory.mktemp("hf-home")
    env = client_env(hub_server.endpoint, hub_server.token, home)
    env.update(WMPLAT_NETGUARD="1", PYTHONPATH=_with_netguard_path(os.environ.get("PYTHONPATH")))
    if os.environ.get("WMPLAT_NETGUARD_LOG"):
        env["WMPLAT_NETGUARD_LOG"] = os.environ["WMPLAT_NETGUARD_LOG"]
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield Hub(hub_server, home, env)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(autouse=True)
def _no_blocked_connections() -> Iterator[None]:
    """Fail a test during which the network guard refused a connection, even a swallowed one."""
    before = len(blocked_connections())
    yield
    attempts = blocked_connections()[before:]
    if attempts:
        pytest.fail("the test tried to reach the network:\n" + "\n".join(attempts))
