"""``falconet --support``: what a bug report needs, as one JSON document (upstream's shape).

Keys as upstream's ``print_support``: ``version``, ``engine_info``, ``system_info`` (uname),
``cmdline``, ``config`` (the merged configuration), ``rules_files`` (each with its content).
The configuration is re-read with ``${VAR}`` references left as written, so that secrets passed
through the environment do not end up in a report that users paste into public issues.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from falconet import ENGINE_VERSION, __version__
from falconet.api import Plugin
from falconet.config import CONFIGS_KEY, Config, apply_override
from falconet.rules_files import expand_rules_paths


class _KeepReferences(Mapping[str, str]):
    """An environment in which ``${NAME}`` stays ``${NAME}`` (``$${`` is interpolation's escape
    for a literal ``${``, so the result is not expanded again)."""

    def __getitem__(self, key: str) -> str:
        return f"$${{{key}}}"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def engine_info(plugins: Sequence[Plugin]) -> dict[str, Any]:
    """Upstream's ``versions_info.as_json`` for falconet (also ``--version`` with json_output)."""
    return {
        "falconet_version": __version__,
        "engine_version": ENGINE_VERSION.split(".")[1],
        "engine_version_semver": ENGINE_VERSION,
        "python_version": platform.python_version(),
        "plugin_versions": {p.name: p.version for p in plugins},
    }


def system_info() -> dict[str, str]:
    u = os.uname()
    return {"sysname": u.sysname, "nodename": u.nodename, "release": u.release,
            "version": u.version, "machine": u.machine}


def config_without_env(path: str | None, overrides: Sequence[str]) -> dict[str, Any]:
    """The merged configuration as ``load_config`` builds it, ``${VAR}`` references unexpanded."""
    from falconet import config as cfg

    env = _KeepReferences()
    main = Path(path) if path is not None else None
    root: dict[str, Any] = cfg._read_yaml(main, env) if main is not None else {}
    for option in overrides:
        if option.startswith(CONFIGS_KEY):
            apply_override(root, option)
    cfg._merge_config_files(root, main, env, [])
    for option in overrides:
        apply_override(root, option)
    return root


def rules_files(paths: Sequence[str]) -> list[dict[str, Any]]:
    """Each rules file that would be loaded, with its content (unreadable: the error instead)."""
    out = []
    for path in expand_rules_paths(paths):
        try:
            content = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            content = f"<cannot read: {exc.strerror or exc}>"
        out.append({"name": str(path), "variants": [{"content": content}]})
    return out


def support_document(config: Config, config_path: str | None, overrides: Sequence[str],
                     rules_paths: Sequence[str], cmdline: Sequence[str],
                     plugins: Sequence[Plugin]) -> dict[str, Any]:
    """The ``--support`` document; ``rules_paths`` are ``-r`` values (empty: rules_files)."""
    return {
        "version": __version__,
        "engine_info": engine_info(plugins),
        "system_info": system_info(),
        "cmdline": " ".join(cmdline),
        "config": config_without_env(config_path, overrides),
        "config_files": list(config.loaded_files),
        "rules_files": rules_files(list(rules_paths) or list(config.rules_files)),
    }
