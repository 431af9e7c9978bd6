"""``momoflow.client`` type-checks in a merchant's service, as an installed package.

The package is built as a wheel and installed alone into a bare virtual environment whose
only other path is this environment's site-packages (for httpx, pydantic, temporalio). mypy
then checks a sample service from a directory outside the repository, so it sees momoflow
exactly as a service would: only through ``py.typed``. A second sample with a type error
proves the types are really read (an untyped package would make everything ``Any``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SERVICE = """
from __future__ import annotations

from pathlib import Path

from momoflow.client import (
    CampaignProgress,
    CampaignSubmission,
    CreateResult,
    MomoflowClient,
    MomoflowError,
    PayoutRequest,
    PayoutState,
    TransactionStatus,
    construct_event,
)


async def pay(client: MomoflowClient, request: PayoutRequest) -> int | None:
    try:
        state: PayoutState = await client.create_payout(request)
    except MomoflowError as exc:
        request_id: str | None = exc.request_id
        print(request_id, exc.status, exc.code)
        return None
    settled = await client.wait_for_payout(state.reference, timeout=60)
    if settled.status is TransactionStatus.SUCCEEDED:
        return settled.amount
    return None


async def campaign(client: MomoflowClient, data: bytes) -> int:
    progress = await client.submit_campaign("C-1", data, CampaignSubmission(name="June"))
    return progress.lines


async def campaign_from_file(client: MomoflowClient, path: Path) -> bool:
    submitted: CreateResult[CampaignProgress] = await client.submit_campaign_result(
        "C-2", path, CampaignSubmission(name="July")
    )
    final = await client.wait_for_campaign("C-2", timeout=600)
    written: int = await client.download_campaign_report("C-2", path.with_suffix(".out.csv"))
    return submitted.created and final.phase.is_final and written > 0


async def replayed(client: MomoflowClient, request: PayoutRequest) -> str | None:
    result = await client.create_payout_result(request)
    if result.replayed:
        return result.request_id
    return result.state.workflow_id


def received(body: bytes, headers: dict[str, str]) -> str:
    event = construct_event(body, headers, ["whsec_old", "whsec_new"])
    if isinstance(event.data, PayoutState):
        return event.data.recipient_phone_masked
    return event.type
"""

WRONG = """
from __future__ import annotations

from momoflow.client import MomoflowClient


async def wrong(client: MomoflowClient) -> str:
    state = await client.get_payout("INV-1")
    return state.amount
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare venv holding the momoflow wheel; returns its python."""
    work = tmp_path_factory.mktemp("client-typing")
    # Built from a copy: an in-tree build would leave build/ in the repository, and a stale
    # build/ would then hide what the sources ship.
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "worker.py"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("momoflow", "workflows", "activities"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = work / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(src), "-w", str(wheels)],
        check=True,
        cwd=work,
    )
    (wheel,) = wheels.glob("momoflow-*.whl")
    env_dir = work / "service-venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site)]
        + [str(wheel)],
        check=True,
    )
    # The dependencies come from this environment; its editable momoflow is an import hook,
    # which mypy does not follow, so momoflow itself resolves to the installed wheel only.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def mypy(python: Path, source: str, folder: Path) -> subprocess.CompletedProcess[str]:
    folder.mkdir()
    script = folder / "service.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental"]
        + ["--python-executable", str(python), str(script)],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_service_type_checks_against_the_installed_client(
    installed: Path, tmp_path: Path
) -> None:
    result = mypy(installed, SERVICE, tmp_path / "service")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout


def test_the_installed_types_catch_a_mistake(installed: Path, tmp_path: Path) -> None:
    result = mypy(installed, WRONG, tmp_path / "wrong")
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Incompatible return value type (got "int", expected "str")' in result.stdout
    assert "py.typed" not in result.stdout  # the package's types were found
