"""The plugin is written as a third party writes one: against wmplat's public names only."""

from pathlib import Path

from wmplat.testing import check_public_api

PACKAGE = Path(__file__).resolve().parents[1]


def test_the_package_and_its_tests_use_only_wmplats_public_names():
    check_public_api(PACKAGE / "wmplat_hyperdiffusion", tests=PACKAGE / "tests")
