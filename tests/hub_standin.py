"""
A stand-in for the Hugging Face Hub's HTTP API, small enough to read: `huggingface_hub`'s real client (as `srft train`,
`Trainer.push_to_hub` and `snapshot_download` use it) talks to it over HTTP on 127.0.0.1, so pushes are tested
end to end without huggingface.co.

What it serves (the calls huggingface_hub 2.4 makes for these operations, read from its source):

- `GET /api/whoami-v2`: a fixed user (`HubStandin.user`), also the namespace of a repo created without one;
- `POST /api/repos/create`: 409 with the repo's url when it exists (what `create_repo(exist_ok=True)` expects);
  a new repo gets an initial commit holding `.gitattributes`, as on the Hub;
- `POST /api/validate-yaml`: accepts every model card (records it);
- `POST /api/{type}s/{id}/preupload/{rev}`: `lfs` for `*.safetensors`/`*.bin` and files over 1 KB, else `regular`,
  with the current blob's oid so unchanged files are skipped by the client;
- `POST /{id}.git/info/lfs/objects/batch`, then `PUT` to a second server on another port (the "storage", as S3 is
  another host: the client sends no token there) and `POST` verify; objects already stored get no upload action;
- `POST /api/{type}s/{id}/commit/{rev}`: the NDJSON commit (header, `file`, `lfsFile`, `deletedFile`,
  `deletedFolder`); an `lfsFile` whose object was never uploaded is refused, as is a stale `parentCommit`;
- `GET /api/{type}s/{id}[/revision/{rev}]` and `GET /api/{type}s/{id}/tree/{rev}[/{path}]` (recursive or not);
- `HEAD`/`GET /{id}/resolve/{rev}/{path}`: `ETag` and `X-Repo-Commit` for every file; an LFS file answers `302` to
  the storage server with `X-Linked-Etag` (its sha256) and `X-Linked-Size`, as the Hub redirects to its CDN;
  missing entries, revisions and repos get the `X-Error-Code` the client turns into its typed errors.

Every commit is kept (`HubStandin.commits(repo_id)`), each with its full file tree, so a test can count the pushes and
read any file at any commit; revisions are `main` or a commit oid. File contents live under the server's folder,
addressed by sha256. Requests the stand-in does not know are answered 404 and listed in `HubStandin.unhandled`;
`fail_commits` (or `fail_commit_messages`, a substring of the commit message) makes commits fail with HTTP 500.

What it does not check or model: Xet storage (clients must run with `HF_HUB_DISABLE_XET=1`: the plain LFS path is what
is exercised), real authentication (any bearer token is accepted for writes, none is needed for reads), the Hub's
validation of model cards, repo names and `.gitattributes`, branches, tags, pull requests, gated or private access,
multipart LFS uploads, rate limits, and pagination of long tree listings.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest


TYPE_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack", ".zip")
LFS_MIN_SIZE = 1024  # the Hub's rule is 10 MB or a binary sample; smaller here so tiny test files take the LFS path
GITATTRIBUTES = b"".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n".encode() for suffix in LFS_SUFFIXES)
COMMIT_OID = re.compile(r"^[0-9a-f]{40}$")


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob (what the Hub reports as a regular file's `oid` and `ETag`)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class Blob:
    """A file in a commit's tree: its content's sha256 (the storage key) and how git would hold it."""

    sha256: str
    size: int
    lfs: bool
    git_oid: str  # of the content for a regular file, of the pointer for an LFS file


@dataclass
class Commit:
    oid: str
    title: str
    description: str
    files: dict[str, Blob]
    date: float = field(default_factory=time.time)


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    commits: list[Commit] = field(default_factory=list)

    @property
    def head(self) -> Commit:
        return self.commits[-1]

    def resolve(self, revision: str) -> Commit | None:
        if revision == "main":
            return self.head
        return next((c for c in self.commits if COMMIT_OID.match(revision) and c.oid == revision), None)


class HubError(Exception):
    """An error answer: status, message, and the `X-Error-Code` huggingface_hub maps to its error classes."""

    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.commit = status, message, code, commit


class HubStandin:
    """
    The stand-in Hub: an API server and a storage server (LFS uploads and downloads) on 127.0.0.1, sharing one state.

    Args:
        root (`Path`): folder for the stored file contents.
        user (`str`, *optional*, defaults to `"srft-tester"`): the user `whoami` names (the default namespace).

    Use as a context manager, or `start()`/`stop()`. `url` is the value for `HF_ENDPOINT`; [`client_env`] builds a
    subprocess environment that points huggingface_hub at it.
    """

    def __init__(self, root: str | os.PathLike, user: str = "srft-tester"):
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.user = user
        self.repos: dict[tuple[str, str], Repo] = {}
        self.fail_commits = False
        self.fail_commit_messages: str | None = None
        self.cards: list[str] = []  # every README.md sent to validate-yaml
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, both servers
        self.unhandled: list[tuple[str, str]] = []
        self.storage_auth: list[str] = []  # Authorization headers that reached the storage server (should be none)
        self.lock = threading.RLock()
        self._api: ThreadingHTTPServer | None = None
        self._storage: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------------------------------- lifecycle

    def start(self) -> HubStandin:
        for role in ("api", "storage"):
            server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            server.daemon_threads = True
            server.hub = self  # type: ignore[attr-defined]
            server.role = role  # type: ignore[attr-defined]
            setattr(self, f"_{role}", server)
            thread = threading.Thread(target=server.serve_forever, name=f"hub-standin-{role}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in (self._api, self._storage):
            if server is not None:
                server.shutdown()
                server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> HubStandin:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._api is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._api.server_address[1]}"

    @property
    def storage_url(self) -> str:
        assert self._storage is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._storage.server_address[1]}"

    def client_env(self, home: str | os.PathLike, base: dict[str, str] | None = None) -> dict[str, str]:
        """
        Environment for a subprocess whose huggingface_hub talks to this stand-in (the client reads these when it is
        imported, hence a subprocess): plain LFS instead of Xet, online, a dummy token, its own `HF_HOME` cache.
        """
        env = dict(os.environ if base is None else base)
        for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN_PATH", "HUGGING_FACE_HUB_TOKEN"):
            env.pop(var, None)  # each would override HF_HOME's cache or token
        env.update(
            HF_ENDPOINT=self.url,
            HF_HUB_DISABLE_XET="1",
            HF_HUB_OFFLINE="0",
            TRANSFORMERS_OFFLINE="0",
            HF_TOKEN="dummy-token",
            HF_HOME=str(home),
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            PYTHONUNBUFFERED="1",
        )
        return env

    # ------------------------------------------------------------------------------------------- for tests

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        with self.lock:
            if (repo_type, repo_id) not in self.repos:
                raise KeyError(f"no {repo_type} repo {repo_id!r} on the stand-in; it has {sorted(self.repos)}")
            return self.repos[(repo_type, repo_id)]

    def commits(self, repo_id: str, repo_type: str = "model") -> list[Commit]:
        """Every commit of the repo's `main`, oldest first (the first is the repo's creation)."""
        with self.lock:
            return list(self.repo(repo_id, repo_type).commits)

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, Blob]:
        with self.lock:
            commit = self.repo(repo_id, repo_type).resolve(revision)
            if commit is None:
                raise KeyError(f"no revision {revision!r} in {repo_id}")
            return dict(commit.files)

    def read(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model") -> bytes:
        return self.object_path(self.files(repo_id, revision, repo_type)[path].sha256).read_bytes()

    def object_path(self, sha256: str) -> Path:
        return self.objects / sha256

    # ------------------------------------------------------------------------------------------- state changes

    def store(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = self.object_path(sha)
        if not path.exists():
            tmp = path.with_name(f".{sha}.{threading.get_ident()}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return sha

    def create_repo(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                raise HubError(409, f"You already created this {repo_type} repo")
            repo = Repo(repo_type, repo_id, private)
            sha = self.store(GITATTRIBUTES)
            blob = Blob(sha, len(GITATTRIBUTES), False, git_blob_oid(GITATTRIBUTES))
            repo.commits.append(self._new_commit(repo, "initial commit", "", {".gitattributes": blob}))
            self.repos[(repo_type, repo_id)] = repo
            return repo

    def _new_commit(self, repo: Repo, title: str, description: str, files: dict[str, Blob]) -> Commit:
        parent = repo.commits[-1].oid if repo.commits else ""
        seed = json.dumps([parent, title, sorted((p, b.sha256) for p, b in files.items()), time.time_ns()])
        return Commit(hashlib.sha1(seed.encode()).hexdigest(), title, description, files)

    def upload_mode(self, path: str, size: int) -> str:
        return "lfs" if path.endswith(LFS_SUFFIXES) or size > LFS_MIN_SIZE else "regular"

    def commit(self, repo: Repo, revision: str, lines: list[dict[str, Any]]) -> Commit:
        """Applies an NDJSON commit payload to `main`; raises [`HubError`] the way the Hub refuses one."""
        if revision != "main":
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The commit payload must start with a header line")
        header = lines[0]["value"]
        title = header.get("summary") or ""
        if self.fail_commits or (self.fail_commit_messages and self.fail_commit_messages in title):
            raise HubError(500, "Internal Error - the stand-in Hub refuses commits (fail_commits)")
        with self.lock:
            head = repo.head
            if header.get("parentCommit") not in (None, head.oid):
                raise HubError(412, f"A commit has happened since. Please refresh and try again. ({head.oid})")
            files = dict(head.files)
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value") or {}
                path = value.get("path", "")
                if not path or path.startswith("/") or ".." in path.split("/"):
                    raise HubError(400, f"Invalid path {path!r}")
                if key == "file":
                    if value.get("encoding") != "base64":
                        raise HubError(400, f"Unsupported encoding for {path}")
                    data = base64.b64decode(value["content"])
                    files[path] = Blob(self.store(data), len(data), False, git_blob_oid(data))
                elif key == "lfsFile":
                    oid = value.get("oid", "")
                    stored = self.object_path(oid)
                    if value.get("algo") != "sha256" or not stored.exists():
                        raise HubError(422, f"Your push was rejected: LFS object {oid} for {path} was never uploaded")
                    size = stored.stat().st_size
                    if value.get("size") not in (None, size):
                        raise HubError(422, f"LFS object {oid} has size {size}, not {value.get('size')}")
                    files[path] = Blob(oid, size, True, git_blob_oid(lfs_pointer(oid, size)))
                elif key == "deletedFile":
                    if files.pop(path, None) is None:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                elif key == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    for name in [name for name in files if name.startswith(prefix)]:
                        del files[name]
                else:
                    raise HubError(400, f"Unknown commit operation {key!r}")
            commit = self._new_commit(repo, title, header.get("description") or "", files)
            repo.commits.append(commit)
            return commit

    # ------------------------------------------------------------------------------------------- views

    def repo_url(self, repo: Repo) -> str:
        return f"{self.url}/{TYPE_PREFIX[repo.repo_type]}{repo.repo_id}"

    def info(self, repo: Repo, commit: Commit) -> dict[str, Any]:
        namespace = repo.repo_id.split("/")[0]
        return {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": namespace,
            "sha": commit.oid,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "lastModified": _iso(commit.date),
            "createdAt": _iso(repo.commits[0].date),
            "tags": [],
            "downloads": 0,
            "likes": 0,
            "siblings": [{"rfilename": path} for path in sorted(commit.files)],
        }

    def tree(self, commit: Commit, path: str, recursive: bool) -> list[dict[str, Any]]:
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        if prefix and not any(name.startswith(prefix) for name in commit.files):
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", commit.oid)
        entries, folders = [], set()
        for name, blob in sorted(commit.files.items()):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :].split("/")
            for depth in range(1, len(rest) if recursive else min(len(rest), 2)):
                folders.add(prefix + "/".join(rest[:depth]))
            if len(rest) > 1 and not recursive:
                continue
            entry: dict[str, Any] = {"type": "file", "oid": blob.git_oid, "size": blob.size, "path": name}
            if blob.lfs:
                entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": len(lfs_pointer(blob.sha256, 0))}
            entries.append(entry)
        for folder in sorted(folders):
            inside = sorted((n, b.git_oid) for n, b in commit.files.items() if n.startswith(folder + "/"))
            oid = hashlib.sha1(json.dumps(inside).encode()).hexdigest()
            entries.append({"type": "directory", "oid": oid, "size": 0, "path": folder})
        return entries


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(timestamp))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    server_version = "HubStandin/1"

    @property
    def hub(self) -> HubStandin:
        return self.server.hub  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        pass  # the requests are kept in `hub.requests`; stderr stays quiet

    # ------------------------------------------------------------------------------------------- plumbing

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        raw_parts = [p for p in split.path.split("/") if p]
        parts = [unquote(p) for p in raw_parts]
        with self.hub.lock:
            self.hub.requests.append((method, split.path))
        body = self._read_body()
        try:
            if self.server.role == "storage":  # type: ignore[attr-defined]
                self._storage(method, parts, body)
            else:
                self._api(method, parts, body)
        except HubError as err:
            headers = {"X-Error-Message": err.message}
            if err.code:
                headers["X-Error-Code"] = err.code
            if err.commit:
                headers["X-Repo-Commit"] = err.commit
            self._json({"error": err.message}, err.status, headers, method)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, headers: dict[str, str], method: str) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", headers.get("Content-Length", str(len(body))))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None, method: str = "GET") -> None:
        body = json.dumps(obj).encode()
        self._send(status, body, {"Content-Type": "application/json", **(headers or {})}, method)

    def _require_token(self) -> None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[len("Bearer ") :].strip():
            raise HubError(401, "Invalid credentials in Authorization header")

    def _repo(self, repo_type: str, namespace: str, name: str) -> Repo:
        with self.hub.lock:
            repo = self.hub.repos.get((repo_type, f"{namespace}/{name}"))
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _commit_of(self, repo: Repo, revision: str) -> Commit:
        with self.hub.lock:
            commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _unhandled(self, method: str) -> None:
        with self.hub.lock:
            self.hub.unhandled.append((method, self.path))
        raise HubError(404, f"The stand-in Hub does not serve {method} {self.path}")

    # ------------------------------------------------------------------------------------------- API server

    def _api(self, method: str, parts: list[str], body: bytes) -> None:
        if parts[:1] == ["api"]:
            self._api_json(method, parts[1:], body)
            return
        repo_type = "model"
        if parts[:1] in (["datasets"], ["spaces"]):
            repo_type, parts = PLURAL[parts[0]], parts[1:]
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            self._resolve(method, self._repo(repo_type, parts[0], parts[1]), parts[3], "/".join(parts[4:]))
        elif parts[2:4] == ["info", "lfs"] and parts[1].endswith(".git") and method == "POST":
            self._require_token()
            repo = self._repo(repo_type, parts[0], parts[1][: -len(".git")])
            if parts[4:] == ["objects", "batch"]:
                self._lfs_batch(repo, json.loads(body))
            elif parts[4:] == ["objects", "verify"]:
                self._lfs_verify(json.loads(body))
            else:
                self._unhandled(method)
        else:
            self._unhandled(method)

    def _api_json(self, method: str, parts: list[str], body: bytes) -> None:
        if parts == ["whoami-v2"] and method == "GET":
            self._require_token()
            self._json({"type": "user", "id": "0" * 24, "name": self.hub.user, "fullname": "Stand-in Tester",
                        "orgs": [], "auth": {"type": "access_token",
                                             "accessToken": {"displayName": "standin", "role": "write"}}})  # fmt: skip
        elif parts == ["repos", "create"] and method == "POST":
            self._require_token()
            self._create(json.loads(body))
        elif parts == ["validate-yaml"] and method == "POST":
            with self.hub.lock:
                self.hub.cards.append(json.loads(body).get("content", ""))
            self._json({"errors": [], "warnings": []})
        elif len(parts) >= 3 and parts[0] in PLURAL:
            self._repo_api(method, PLURAL[parts[0]], parts[1], parts[2], parts[3:], body)
        elif len(parts) == 2 and parts[0] in PLURAL:  # an id without namespace (as create_repo's 401 fallback asks)
            raise HubError(404, "Repository not found", "RepoNotFound")
        else:
            self._unhandled(method)

    def _create(self, payload: dict[str, Any]) -> None:
        repo_type = payload.get("type") or "model"
        namespace = payload.get("organization") or self.hub.user
        repo_id = f"{namespace}/{payload['name']}"
        private = payload.get("private") or payload.get("visibility") == "private"
        try:
            repo = self.hub.create_repo(repo_type, repo_id, bool(private))
        except HubError as err:
            existing = self.hub.repo(repo_id, repo_type)
            self._json({"error": err.message, "url": self.hub.repo_url(existing)}, 409)
            return
        self._json({"url": self.hub.repo_url(repo), "name": repo_id, "id": repo_id})

    def _repo_api(self, method: str, repo_type: str, namespace: str, name: str, rest: list[str], body: bytes) -> None:
        repo = self._repo(repo_type, namespace, name)
        action = rest[0] if rest else None
        if method == "GET" and action is None:
            self._json(self.hub.info(repo, self._commit_of(repo, "main")))
        elif method == "GET" and action == "revision" and len(rest) == 2:
            self._json(self.hub.info(repo, self._commit_of(repo, rest[1])))
        elif method == "GET" and action == "tree" and len(rest) >= 2:
            commit = self._commit_of(repo, rest[1])
            recursive = self.query.get("recursive", "false").lower() in ("true", "1")
            self._json(self.hub.tree(commit, "/".join(rest[2:]), recursive))
        elif method == "POST" and action == "preupload" and len(rest) == 2:
            self._require_token()
            self._preupload(repo, rest[1], json.loads(body))
        elif method == "POST" and action == "commit" and len(rest) == 2:
            self._require_token()
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            commit = self.hub.commit(repo, rest[1], lines)
            url = f"{self.hub.repo_url(repo)}/commit/{commit.oid}"
            self._json({"success": True, "commitOid": commit.oid, "commitUrl": url, "hookOutput": "",
                        "pullRequestUrl": None})  # fmt: skip
        else:
            self._unhandled(method)

    def _preupload(self, repo: Repo, revision: str, payload: dict[str, Any]) -> None:
        head = self._commit_of(repo, revision)
        answers = []
        for item in payload.get("files", []):
            path, size = item["path"], int(item["size"])
            mode = self.hub.upload_mode(path, size)
            current = head.files.get(path)
            oid = None
            if current is not None and current.lfs == (mode == "lfs"):
                oid = current.sha256 if current.lfs else current.git_oid  # what the client compares with its own
            answers.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._json({"files": answers, "commitOid": head.oid})

    def _lfs_batch(self, repo: Repo, payload: dict[str, Any]) -> None:
        if payload.get("operation") != "upload":
            raise HubError(400, "The stand-in Hub only serves LFS uploads")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if not self.hub.object_path(oid).exists():  # stored objects get no action: the client skips them
                answer["actions"] = {
                    "upload": {"href": f"{self.hub.storage_url}/lfs/{oid}", "header": {}, "expires_in": 3600},
                    "verify": {"href": f"{self.hub.repo_url(repo)}.git/info/lfs/objects/verify", "header": {}},
                }
            objects.append(answer)
        body = json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode()
        self._send(200, body, {"Content-Type": "application/vnd.git-lfs+json"}, "POST")

    def _lfs_verify(self, payload: dict[str, Any]) -> None:
        path = self.hub.object_path(payload["oid"])
        if not path.exists() or path.stat().st_size != int(payload["size"]):
            raise HubError(404, f"LFS object {payload['oid']} not found or of the wrong size")
        self._json({"success": True}, method="POST")

    def _resolve(self, method: str, repo: Repo, revision: str, path: str) -> None:
        commit = self._commit_of(repo, revision)
        blob = commit.files.get(path)
        if blob is None:
            raise HubError(404, "Entry not found", "EntryNotFound", commit.oid)
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{blob.git_oid}"', "Accept-Ranges": "bytes"}
        if blob.lfs:  # as the Hub sends LFS files to its CDN: another host, so the client stops and reads these
            headers.update({
                "X-Linked-Etag": f'"{blob.sha256}"',
                "X-Linked-Size": str(blob.size),
                "Location": f"{self.hub.storage_url}/lfs/{blob.sha256}",
            })  # fmt: skip
            self._send(302, b"", headers, method)
            return
        data = self.hub.object_path(blob.sha256).read_bytes()
        self._send(200, data, {"Content-Type": "application/octet-stream", **headers}, method)

    # ------------------------------------------------------------------------------------------- storage server

    def _storage(self, method: str, parts: list[str], body: bytes) -> None:
        if "Authorization" in self.headers:
            with self.hub.lock:
                self.hub.storage_auth.append(self.headers["Authorization"])
        if len(parts) != 2 or parts[0] != "lfs":
            self._unhandled(method)
        oid = parts[1]
        if method == "PUT":
            if hashlib.sha256(body).hexdigest() != oid:
                raise HubError(400, f"Uploaded content does not match sha256 {oid}")
            self.hub.store(body)
            self._send(200, b"", {"ETag": f'"{hashlib.md5(body).hexdigest()}"'}, method)
        elif method in ("GET", "HEAD"):
            path = self.hub.object_path(oid)
            if not path.exists():
                raise HubError(404, "No such object")
            data = path.read_bytes()
            self._send(200, data, {"Content-Type": "application/octet-stream", "ETag": f'"{oid}"'}, method)
        else:
            self._unhandled(method)


@pytest.fixture
def hub_standin(tmp_path_factory) -> Iterator[HubStandin]:
    """A running stand-in Hub, stopped after the test; its files live in a fresh temporary folder."""
    with HubStandin(tmp_path_factory.mktemp("hub-standin")) as server:
        yield server
