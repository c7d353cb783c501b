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
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hub_http import _Handler
from hub_repos import (
    GITATTRIBUTES,
    LFS_MIN_SIZE,
    LFS_SUFFIXES,
    TYPE_PREFIX,
    Blob,
    Commit,
    HubError,
    Repo,
    git_blob_oid,
    iso_time,
    lfs_pointer,
)


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
            "lastModified": iso_time(commit.date),
            "createdAt": iso_time(repo.commits[0].date),
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


@pytest.fixture
def hub_standin(tmp_path_factory) -> Iterator[HubStandin]:
    """A running stand-in Hub, stopped after the test; its files live in a fresh temporary folder."""
    with HubStandin(tmp_path_factory.mktemp("hub-standin")) as server:
        yield server
