"""Write the self-contained page template for `dvc plots show` and point DVC's local config at it.

Reads web/dvc_plots_template.html (committed; it loads vega, vega-lite and vega-embed from the CDN)
and .web/{vega,vega-lite,vega-embed}.min.js (fetched by `make web-assets` from the npm registry),
replaces each CDN <script src> tag by the library inlined, and writes .web/dvc_plots_template.html.
Then sets ``plots.html_template`` in .dvc/config.local (git-ignored, read after .dvc/config), so every
page DVC writes - in dvc_plots/ or any ``-o DIR`` - renders with no network and no file outside its
folder. A checkout without npm keeps the committed CDN template from .dvc/config, and DVC never
points at a file that is missing. Standard library only (runs before the project's venv exists);
files are replaced atomically with os.replace.

Usage: python web/build_offline_template.py [REPO]   (REPO: default the folder above web/)
"""

from __future__ import annotations

import configparser
import os
import re
import sys
import tempfile
from pathlib import Path

LIBRARIES: tuple[str, ...] = ("vega", "vega-lite", "vega-embed")
OUTPUT = Path(".web") / "dvc_plots_template.html"
CONFIG_VALUE = "../.web/dvc_plots_template.html"  # DVC resolves it against .dvc/


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the page template is a plain readable file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _inline_script(code: str, name: str) -> str:
    """``code`` as an inline <script>: "</script" and "<!--" inside it would end or confuse the HTML
    script element, so they are written as "<\\/script" and "<\\!--" (the same string to JavaScript)."""
    safe = re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE).replace("<!--", "<\\!--")
    return f"<script>/* {name}.min.js, inlined by web/build_offline_template.py */\n{safe}\n</script>"


def build(repo: Path) -> Path:
    """Write ``repo/.web/dvc_plots_template.html`` and return its path; exits with one line when an
    input is missing or the template lost a CDN tag."""
    template = (repo / "web" / "dvc_plots_template.html").read_text(encoding="utf-8")
    for name in LIBRARIES:
        lib = repo / ".web" / f"{name}.min.js"
        if not lib.is_file() or lib.stat().st_size == 0:
            sys.exit(f"build_offline_template: {lib} is missing; run `make web-assets` (needs npm)")
        tag = re.compile(rf'<script src="https://cdn\.jsdelivr\.net/npm/{re.escape(name)}@[^"/]+/build/{re.escape(name)}\.min\.js"></script>')
        if len(tag.findall(template)) != 1:
            sys.exit(f"build_offline_template: web/dvc_plots_template.html must load {name} "
                     "by exactly one CDN <script src> tag")
        start, end = tag.search(template).span()  # type: ignore[union-attr]  # found exactly once above
        template = template[:start] + _inline_script(lib.read_text(encoding="utf-8"), name) + template[end:]
    template = template.replace('<meta name="nucvn-vega" content="cdn">', '<meta name="nucvn-vega" content="inline">')
    out = repo / OUTPUT
    _write(out, template)
    return out


def point_dvc_at(repo: Path) -> None:
    """Set ``plots.html_template`` in ``repo/.dvc/config.local``, keeping its other settings."""
    path = repo / ".dvc" / "config.local"
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.optionxform = str  # type: ignore[assignment,method-assign]  # keep keys as written
    if path.is_file():
        cfg.read(path, encoding="utf-8")
    if cfg.has_section("plots") and cfg.get("plots", "html_template", fallback=None) == CONFIG_VALUE:
        return
    if not cfg.has_section("plots"):
        cfg.add_section("plots")
    cfg.set("plots", "html_template", CONFIG_VALUE)
    lines: list[str] = []
    for section in cfg.sections():
        lines.append(f"[{section}]")
        lines.extend(f"    {k} = {v}" for k, v in cfg.items(section))
    _write(path, "\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    repo = Path(argv[1]).resolve() if len(argv) > 1 else Path(__file__).resolve().parents[1]
    out = build(repo)
    point_dvc_at(repo)
    print(f"web-assets: {out.relative_to(repo)} (vega inlined, {out.stat().st_size // 1024} KiB); "
          f".dvc/config.local plots.html_template = {CONFIG_VALUE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
