"""The test hub answers the real huggingface_hub and datasets clients the way the Hub does, and
the network guard stops connections that would leave the machine."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hub_server import blocked_connections, install_network_guard
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import get_session

REPO = "tester/zoo"


@pytest.fixture(scope="module", autouse=True)
def network_guard():
    install_network_guard()


@pytest.fixture
def folder(tmp_path):
    """A folder with a text file, an LFS-tracked binary file and a nested file."""
    root = tmp_path / "upload"
    (root / "weights").mkdir(parents=True)
    (root / "card.txt").write_text("a small zoo\n")
    (root / "weights" / "run-0.safetensors").write_bytes(bytes(range(256)) * 40)
    (root / "weights" / "notes.json").write_text(json.dumps({"runs": 1}))
    return root


def upload(folder, message="push") -> str:
    api = HfApi()
    api.create_repo(REPO, repo_type="dataset", exist_ok=True)
    return api.upload_folder(folder_path=folder, repo_id=REPO, repo_type="dataset",
                             commit_message=message).oid


def run_python(hub, code: str, **extra_env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **hub.env, **extra_env})


def test_upload_folder_then_snapshot_at_the_commit_gives_the_same_bytes(hub, folder):
    sha = upload(folder)

    snapshot = snapshot_download(REPO, repo_type="dataset", revision=sha,
                                 cache_dir=hub.home / "hub")

    for path in ("card.txt", "weights/run-0.safetensors", "weights/notes.json"):
        assert (folder / path).read_bytes() == open(os.path.join(snapshot, path), "rb").read()
        assert hub.read(REPO, path, revision=sha) == (folder / path).read_bytes()
    assert hub.is_lfs(REPO, "weights/run-0.safetensors")
    assert not hub.is_lfs(REPO, "card.txt")
    assert hub.head(REPO) == sha


def test_a_second_commit_leaves_the_first_revision_readable(hub, folder):
    first = upload(folder)
    (folder / "card.txt").write_text("changed\n")
    (folder / "weights" / "notes.json").unlink()
    api = HfApi()
    second = api.upload_folder(folder_path=folder, repo_id=REPO, repo_type="dataset",
                               delete_patterns=["*.json"], parent_commit=first).oid

    def read(path, revision):
        return open(hf_hub_download(REPO, path, repo_type="dataset", revision=revision,
                                    cache_dir=hub.home / "hub"), "rb").read()

    assert read("card.txt", first) == b"a small zoo\n"
    assert read("card.txt", second) == read("card.txt", "main") == b"changed\n"
    assert read("weights/notes.json", first) == b'{"runs": 1}'
    with pytest.raises(RemoteEntryNotFoundError):
        read("weights/notes.json", second)
    assert hub.commits(REPO)[:2] == [second, first]
    assert [c.commit_id for c in api.list_repo_commits(REPO, repo_type="dataset")][:2] == \
        [second, first]


def test_a_commit_on_a_stale_parent_is_refused(hub, folder):
    first = upload(folder)
    hub.commit(REPO, {"card.txt": "someone else"})

    with pytest.raises(HfHubHTTPError) as error:
        HfApi().upload_file(path_or_fileobj=b"mine", path_in_repo="card.txt", repo_id=REPO,
                            repo_type="dataset", parent_commit=first)
    assert error.value.response.status_code == 412
    assert hub.read(REPO, "card.txt") == b"someone else"


def test_a_missing_file_raises_entry_not_found(hub, folder):
    sha = upload(folder)

    with pytest.raises(RemoteEntryNotFoundError) as error:
        hf_hub_download(REPO, "no/such/file.bin", repo_type="dataset",
                        cache_dir=hub.home / "hub")
    assert error.value.response.headers["X-Repo-Commit"] == sha


def test_an_unknown_revision_or_repo_is_named_as_such(hub, folder):
    upload(folder)

    for revision in ("no-such-branch", "0123456789abcdef0123456789abcdef01234567"):
        with pytest.raises(RevisionNotFoundError):
            hf_hub_download(REPO, "card.txt", repo_type="dataset", revision=revision,
                            cache_dir=hub.home / "hub")
        with pytest.raises(RevisionNotFoundError):
            snapshot_download(REPO, repo_type="dataset", revision=revision,
                              cache_dir=hub.home / "hub")
    with pytest.raises(RepositoryNotFoundError):
        HfApi().dataset_info("tester/absent")


def test_offline_a_cached_snapshot_loads_and_an_uncached_one_fails(hub, folder):
    cached = upload(folder)
    uncached = hub.commit(REPO, {"card.txt": "newer"})
    snapshot_download(REPO, repo_type="dataset", revision=cached, cache_dir=hub.env["HF_HUB_CACHE"])
    requests = len(hub.requests)

    proc = run_python(hub, f"""
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
        path = snapshot_download("{REPO}", repo_type="dataset", revision="{cached}")
        print(open(path + "/card.txt").read(), end="")
        try:
            snapshot_download("{REPO}", repo_type="dataset", revision="{uncached}")
        except LocalEntryNotFoundError as error:
            print("offline:", error)
        """, HF_HUB_OFFLINE="1")

    assert proc.returncode == 0, proc.stderr
    card, offline = proc.stdout.split("\n", 1)
    assert card == "a small zoo"
    assert "offline:" in offline and "HF_HUB_OFFLINE" in offline
    assert len(hub.requests) == requests  # offline means not a single request


@pytest.mark.parametrize("card", [None, "configs"])
def test_load_dataset_reads_the_rows_of_a_pushed_parquet_file(hub, tmp_path, card):
    import datasets

    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"run": [0, 1, 2], "loss": [0.5, 0.25, 0.125]}), path)
    api = HfApi()
    api.create_repo(REPO, repo_type="dataset")
    api.upload_file(path_or_fileobj=path, path_in_repo="runs/part-0.parquet", repo_id=REPO,
                    repo_type="dataset")
    if card:
        readme = ("---\nconfigs:\n- config_name: default\n  data_files:\n"
                  "  - split: train\n    path: runs/*.parquet\n---\n# Runs\n")
        api.upload_file(path_or_fileobj=readme.encode(), path_in_repo="README.md",
                        repo_id=REPO, repo_type="dataset")

    rows = datasets.load_dataset(REPO, split="train", cache_dir=str(tmp_path / "datasets"))

    assert rows.to_dict() == {"run": [0, 1, 2], "loss": [0.5, 0.25, 0.125]}
    assert hub.is_lfs(REPO, "runs/part-0.parquet")


def test_a_card_with_broken_yaml_is_refused_before_upload(hub):
    HfApi().create_repo(REPO, repo_type="dataset")

    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        HfApi().upload_file(path_or_fileobj=b"---\nconfigs: [unclosed\n---\n", repo_id=REPO,
                            path_in_repo="README.md", repo_type="dataset")
    assert "README.md" not in hub.files(REPO)


def test_a_file_tampered_on_the_hub_is_served_as_tampered(hub, folder):
    sha = upload(folder)
    hub.tamper(REPO, "card.txt", "forged\n", revision=sha)

    path = hf_hub_download(REPO, "card.txt", repo_type="dataset", revision=sha,
                           cache_dir=hub.home / "hub")

    assert open(path, "rb").read() == b"forged\n"
    assert hub.head(REPO) == sha


def test_a_tag_names_a_revision_that_later_commits_do_not_move(hub, folder):
    first = upload(folder)
    api = HfApi()
    api.create_tag(REPO, tag="v1", repo_type="dataset")
    hub.commit(REPO, {"card.txt": "newer"})

    refs = api.list_repo_refs(REPO, repo_type="dataset")
    path = hf_hub_download(REPO, "card.txt", repo_type="dataset", revision="v1",
                           cache_dir=hub.home / "hub")

    assert [(tag.name, tag.target_commit) for tag in refs.tags] == [("v1", first)]
    assert open(path).read() == "a small zoo\n"


def test_range_requests_get_the_asked_bytes(hub):
    hub.create_repo(REPO, {"blob.bin": bytes(range(100))})
    url = f"{hub.endpoint}/datasets/{REPO}/resolve/main/blob.bin"

    part = get_session().get(url, headers={"Range": "bytes=10-19"})
    tail = get_session().get(url, headers={"Range": "bytes=-5"})
    beyond = get_session().get(url, headers={"Range": "bytes=200-"})

    assert (part.status_code, part.content) == (206, bytes(range(10, 20)))
    assert part.headers["Content-Range"] == "bytes 10-19/100"
    assert tail.content == bytes(range(95, 100))
    assert beyond.status_code == 416


def test_only_the_configured_token_is_accepted(hub):
    assert HfApi().whoami(token=hub.token)["name"] == "wmplat-tester"
    with pytest.raises(HfHubHTTPError) as error:
        HfApi().whoami(token="hf_not_a_token")
    assert error.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError):
        HfApi(token=False).create_repo("tester/anonymous", repo_type="dataset")


def test_creating_an_existing_repo_conflicts_with_its_url(hub):
    api = HfApi()
    url = api.create_repo(REPO, repo_type="dataset")

    with pytest.raises(HfHubHTTPError) as error:
        api.create_repo(REPO, repo_type="dataset")
    assert error.value.response.status_code == 409
    assert error.value.response.json()["url"] == url
    assert api.create_repo(REPO, repo_type="dataset", exist_ok=True).repo_id == REPO


def test_the_guard_blocks_a_connection_off_the_machine(hub):
    with pytest.raises(RuntimeError, match=r"10\.255\.255\.1:80"):
        socket.create_connection(("10.255.255.1", 80), timeout=1)
    with pytest.raises(socket.gaierror):  # what `datasets` asks for: refused, harmlessly
        socket.getaddrinfo("datasets-server.127.0.0.1", 80)
    # one refusal (recorded in this process, and in the session's log when one is kept)
    attempts = blocked_connections(clear=True)
    assert attempts and all("10.255.255.1:80" in a for a in attempts)

    proc = run_python(hub, """
        import socket
        socket.create_connection(("10.255.255.1", 80), timeout=1)
        """)

    assert proc.returncode != 0
    assert "NetworkBlockedError" in proc.stderr and "10.255.255.1:80" in proc.stderr
    blocked_connections(clear=True)  # consumed: the subprocess's refusal was expected
