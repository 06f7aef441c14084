"""Compatibility layer that lets Strawberry Fields 0.23.0 (its last release) import and run on
current scipy and numpy.

Only what SF needs, applied once, before SF is first imported:

* ``scipy.integrate.simps`` was removed in scipy 1.14. SF's ``backends/states.py`` imports it
  and calls ``simps(y, x)`` with ``x`` positional; its replacement ``simpson`` takes ``x`` only
  as a keyword. We add a thin ``simps`` that forwards to ``simpson`` with ``x=`` -- and only if
  scipy lacks one, so an older scipy is left exactly as it is.
* ``pkg_resources`` is gone from setuptools >= 81. ``import strawberryfields`` imports
  ``apps.data``, whose two modules call ``pkg_resources.resource_filename`` once, at import, to
  locate SF's bundled sample data. While (and only while) SF is first imported, a minimal
  stand-in with that one function (on :mod:`importlib.resources`) is placed in ``sys.modules``;
  it is removed right after, so no other library ever sees a partial ``pkg_resources``. A real
  ``pkg_resources``, when installed, is used as it is.

What was checked and needs no shim (SF 0.23.0, numpy 2.x, scipy 1.17): the gaussian backend,
``GraphEmbed`` / ``Interferometer`` decompositions, ``LossChannel``, ``MeasureFock`` and
``MeasureThreshold``, ``apps.sample`` / ``apps.clique`` / ``apps.train``, and a single-loop
``TDMProgram`` run on the gaussian backend, and a multi-loop Borealis-layout ``TDMProgram``
space-unrolled and run *without* measurement (the reference state of :mod:`.borealis`). What does
fail in SF's time-domain code, and is not patched because the photonic backend does not use it, is
recorded in :data:`KNOWN_SF_LIMITS`.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from types import ModuleType

from optimizer.errors import MissingDependency

__all__ = ["apply", "import_strawberryfields", "simps", "resource_filename", "KNOWN_SF_LIMITS", "PATCHES"]

log = logging.getLogger(__name__)

#: Names of the patches :func:`apply` installed in this process (for ``info`` and tests).
PATCHES: list[str] = []

#: Problems in SF 0.23.0's time-domain (TDM) code found while building this backend; they are
#: why the Borealis device computes its unrolled state itself and samples it with thewalrus, using
#: SF's TDM program (space-unrolled, unmeasured) only as the reference state.
KNOWN_SF_LIMITS: dict[str, str] = {
    "tdm_fock_conditioning": (
        "the gaussian backend measures each time bin from its marginal and does not condition "
        "the remaining modes (it warns 'Conditional state after Fock measurement has not been "
        "updated'), so TDMProgram click patterns lack the correlations GBS needs"),
    "tdm_crop_nested_loops": (
        "TDMProgram.get_crop_value raises NotImplementedError for Borealis-like multi-loop programs"),
    "tdm_space_unrolled_run": (
        "running a space-unrolled TDMProgram fails in tdm.program.reshape_samples (IndexError)"),
}


def simps(y, x=None, dx: float = 1.0, axis: int = -1, even=None):
    """``scipy.integrate.simps`` (removed in scipy 1.14) on top of ``simpson``.

    Accepts ``x`` positionally, as SF calls it. ``even`` was dropped by scipy; it is accepted
    and ignored, since ``simpson`` now always uses the rule that old ``even='simpson'`` chose.
    """
    del even
    from scipy.integrate import simpson

    return simpson(y, x=x, dx=dx, axis=axis)


def apply() -> list[str]:
    """Install the shims SF needs into this process (idempotent); returns the names applied."""
    import scipy.integrate

    if not hasattr(scipy.integrate, "simps"):
        scipy.integrate.simps = simps
        PATCHES.append("scipy.integrate.simps")
        log.debug("compat: added scipy.integrate.simps -> simpson(x=...) for Strawberry Fields")
    return list(PATCHES)


def resource_filename(package: str, resource: str) -> str:
    """``pkg_resources.resource_filename`` for a package installed as plain files (SF's case)."""
    from importlib.resources import files

    return str(files(package).joinpath(resource))


def _pkg_resources_stand_in() -> ModuleType:
    module = ModuleType("pkg_resources", "qfreight stand-in: resource_filename only, during SF's import")
    module.resource_filename = resource_filename
    return module


def import_strawberryfields() -> ModuleType:
    """Import Strawberry Fields with the shims applied; a clear error names what is missing."""
    apply()
    if "strawberryfields" in sys.modules:
        return sys.modules["strawberryfields"]
    stand_in = None
    if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
        stand_in = sys.modules["pkg_resources"] = _pkg_resources_stand_in()
        if "pkg_resources.resource_filename" not in PATCHES:
            PATCHES.append("pkg_resources.resource_filename")
    try:
        return importlib.import_module("strawberryfields")
    except ImportError as exc:
        if getattr(exc, "name", None) and exc.name.split(".")[0] not in ("strawberryfields", "thewalrus"):
            raise
        raise MissingDependency("photonic", "strawberryfields",
                                "pip install strawberryfields==0.23.0 thewalrus") from exc
    finally:
        if stand_in is not None and sys.modules.get("pkg_resources") is stand_in:
            del sys.modules["pkg_resources"]
