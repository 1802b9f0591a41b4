"""axe-core in the page tests: the rules checked, run in the browser through axe-selenium-python.

axe-selenium-python (requirements-dev.txt) runs axe-core and bundles a copy from 2018 that
lacks rules the page needs checked (aria-hidden-focus, aria-input-field-name, ...). A current
axe-core, pinned as AXE_CORE_VERSION, is installed beside it by ``.ci/run`` (npm, into
AXE_CORE_DIR, outside the repository) and used when present; under CI it must be.
"""

from __future__ import annotations

import os
from pathlib import Path

AXE_CORE_VERSION = "4.14.1"
AXE_CORE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "creative-analytics" / "axe"
SEVERE = ("serious", "critical")


def axe_script() -> str:
    """The path of the axe-core script to inject: the pinned current one, or (outside CI) the bundled one."""
    current = AXE_CORE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if current.exists():
        return str(current)
    if os.environ.get("CI"):
        raise RuntimeError(
            f"axe-core {AXE_CORE_VERSION} is not installed in {AXE_CORE_DIR}: run "
            f"npm install --no-save --prefix {AXE_CORE_DIR} axe-core@{AXE_CORE_VERSION}"
        )
    import axe_selenium_python

    return str(Path(axe_selenium_python.__file__).parent / "node_modules" / "axe-core" / "axe.min.js")


def severe_violations(driver, exclude: tuple[str, ...] = ()) -> list[tuple]:
    """axe-core's serious and critical violations on the page the driver shows: (rule, impact, first targets).

    ``exclude``: CSS selectors of parts left out of the check (each caller says why).
    """
    from axe_selenium_python import Axe

    axe = Axe(driver, script_url=axe_script())
    axe.inject()
    results = axe.run(context={"exclude": [[selector] for selector in exclude]}) if exclude else axe.run()
    return [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:5])
        for v in results["violations"]
        if v["impact"] in SEVERE
    ]
