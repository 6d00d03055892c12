"""What pulling and pushing share: repo ids, the token, and Hub errors turned into one line
that says what to do."""

from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import ConfigError, HubError

TOKEN_HELP = "set HF_TOKEN or run `hf auth login`"


def check_repo_id(repo_id: str) -> str:
    """OWNER/NAME as the Hub accepts it; ConfigError naming the problem otherwise."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if repo_id.count("/") != 1:
        raise ConfigError(f"--repo {repo_id!r}: expected OWNER/NAME, e.g. my-lab/wmplat-results")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ConfigError(f"--repo {repo_id!r} is not a valid Hub repo id: {exc}") from None
    return repo_id


def require_token() -> str:
    """The Hub token, checked against the Hub before any work starts: a push that fails after
    an hour of evaluation for want of a token is the failure this prevents."""
    from huggingface_hub import HfApi, get_token

    token = get_token()
    if not token:
        raise HubError(f"pushing needs a Hugging Face token with write access: {TOKEN_HELP}")
    with hub_errors("checking the Hugging Face token"):
        HfApi().whoami(token=token)
    return token


def push_credentials(repo_id: str) -> str:
    """Everything a push needs, checked before any work starts: a valid repo id and a token
    the Hub accepts. Returns the token."""
    check_repo_id(repo_id)
    return require_token()


@contextmanager
def hub_errors(action: str) -> Iterator[None]:
    """Turn the client's exceptions into a HubError that names the action and the cause."""
    from huggingface_hub import errors

    try:
        yield
    except errors.RevisionNotFoundError:
        raise HubError(f"{action}: no such revision on the Hub") from None
    except errors.RepositoryNotFoundError:
        raise HubError(f"{action}: the repo does not exist, or the token may not read it "
                       f"({TOKEN_HELP})") from None
    except errors.RemoteEntryNotFoundError as exc:
        raise HubError(f"{action}: a file is missing from the repo ({_first_line(exc)})") \
            from None
    except errors.OfflineModeIsEnabled:
        raise HubError(f"{action}: HF_HUB_OFFLINE is set, so the Hub is not contacted") from None
    except errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        if status == 401:
            raise HubError(f"{action}: the Hub rejected the token ({TOKEN_HELP})") from None
        if status == 412:
            raise HubError(f"{action}: someone pushed to the repo meanwhile; nothing was "
                           "written, run the push again to merge with theirs") from None
        raise HubError(f"{action}: the Hub answered {status}: {_first_line(exc)}") from None
    except (*_transport_errors(), ConnectionError) as exc:
        raise HubError(f"{action}: cannot reach the Hub ({_first_line(exc)}); check the "
                       "network, or HF_ENDPOINT") from None


def _transport_errors() -> tuple[type[Exception], ...]:
    """The HTTP library's connection errors: huggingface_hub 2.x uses httpx2, 1.x httpx."""
    for module in ("httpx2", "httpx"):
        try:
            return (__import__(module).TransportError,)
        except ImportError:
            continue
    return ()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
