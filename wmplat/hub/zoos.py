"""Zoos on the Hub: pulled at a pinned revision into the Hugging Face cache and verified file
by file against the manifest's sha256; pushed as a dataset repo with a card."""

from pathlib import Path

from ..engine.progress import status
from ..errors import HubError, ZooError
from ..schema import COMMIT
from ..task import Task
from ..zoo.format import MANIFEST, TASK_FILE, Zoo, load_zoo, read_manifest, verify_files
from .cards import zoo_card
from .client import hub_errors

CARD = "README.md"
# what a pull downloads: a task file's data file is safetensors too (tasks/file/schema.py)
ZOO_FILES = [MANIFEST, "*.safetensors", TASK_FILE]


def pull_zoo(name: str, repo_id: str, repo_type: str, revision: str, task: Task | None) -> Zoo:
    """The zoo at `revision`, from the cache when it is there, else downloaded. A copy whose
    own files fail their hashes is removed from the cache, so it is never taken for a valid
    one; a copy that is whole but does not suit `task` stays (offline it could not come back).
    With `task` None, the task is the one the zoo's own task file describes."""
    where = f"zoo {name!r} ({repo_type} {repo_id} at {revision})"
    folder = _download(repo_id, repo_type, revision, name, where)
    commit = folder.name  # the cache names each snapshot folder by its commit
    try:
        manifest = read_manifest(folder)
    except ZooError as exc:
        raise ZooError(f"{where}: {exc}") from None
    # the snapshot's files are links into the cache's blobs/, beside snapshots/
    within = folder.parent.parent
    try:
        verify_files(folder, manifest, within)
    except ZooError as exc:
        _forget(repo_id, repo_type, commit)
        raise ZooError(f"{where}: {exc}; the downloaded copy was removed from the cache") \
            from None
    try:
        return load_zoo(folder, task, revision=commit, within=within)
    except ZooError as exc:
        raise ZooError(f"{where}: {exc}") from None


def _download(repo_id: str, repo_type: str, revision: str, name: str, where: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    if COMMIT.match(revision):  # a pinned commit never changes: no need to ask the Hub
        cached = _cached(repo_id, repo_type, revision)
        if cached is not None:
            return cached
    status(f"pulling {where} into the Hugging Face cache ...")
    try:
        with hub_errors(f"pulling {where}"):
            return Path(snapshot_download(repo_id, repo_type=repo_type, revision=revision,
                                          allow_patterns=ZOO_FILES))
    except LocalEntryNotFoundError:
        raise HubError(f"{where} is not in the Hugging Face cache, and the Hub cannot be "
                       "reached (offline: HF_HUB_OFFLINE is set, or no network). Run "
                       f"`wmplat zoo pull {name}` where the Hub is "
                       "reachable, then copy its cache (HF_HUB_CACHE) here") from None


def _cached(repo_id: str, repo_type: str, revision: str) -> Path | None:
    """The zoo's snapshot folder in the Hugging Face cache, without asking the Hub."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, repo_type=repo_type, revision=revision,
                                      allow_patterns=ZOO_FILES, local_files_only=True))
    except LocalEntryNotFoundError:
        return None


def is_cached(repo_id: str, repo_type: str, revision: str) -> bool:
    return _cached(repo_id, repo_type, revision) is not None


def _forget(repo_id: str, repo_type: str, commit: str) -> None:
    from huggingface_hub import scan_cache_dir

    cache = scan_cache_dir()
    if any(r.commit_hash == commit for repo in cache.repos
           if repo.repo_id == repo_id and repo.repo_type == repo_type for r in repo.revisions):
        cache.delete_revisions(commit).execute()


def push_zoo(zoo: Zoo, repo_id: str, token: str) -> str:
    """Publish a zoo's folder as a dataset repo in one commit; return the commit."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(token=token)
    files = [MANIFEST, *[f.path for f in zoo.manifest.files]]
    with hub_errors(f"pushing zoo {zoo.name!r} to {repo_id}"):
        api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
        operations = [CommitOperationAdd(path, zoo.folder / path) for path in dict.fromkeys(files)]
        operations.append(CommitOperationAdd(CARD, zoo_card(zoo, repo_id).encode()))
        info = api.create_commit(repo_id, operations, repo_type="dataset",
                                 commit_message=f"wmplat zoo {zoo.name} "
                                                f"({len(zoo.manifest.models)} models)")
    return info.oid
