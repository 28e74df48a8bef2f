"""`dvc plots show` renders the declared CSV plots offline, checked in a real headless Chromium.

DVC's default page loads vega / vega-lite / vega-embed from a CDN, so without network its plots are
empty frames; the repo's template (.dvc/plots/offline.html, wired by .dvc/config) inlines them. The
test screenshots both pages with networking disabled: the repo's must show the plots' colours (the
curves), the default page must not (the control that shows the test can fail).
"""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from dvc_render.html import PAGE_HTML

from initlab.config import PROJECT_ROOT

PIL = pytest.importorskip("PIL.Image")
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
# vega's default categorical palette (tableau10): the first series' colours, drawn only by curves / points
SERIES_RGB = [(0x4C, 0x78, 0xA8), (0xF5, 0x85, 0x18), (0xE4, 0x57, 0x56)]
NO_NETWORK = ["--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]


def declared_csv_plots() -> list[str]:
    plots = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["plots"]
    return [next(iter(p)) for p in plots if isinstance(p, dict)]


def series_pixels(png: Path) -> int:
    """Pixels within a small distance of a series colour (antialiased curve edges are not counted)."""
    image = PIL.open(png).convert("RGB")
    return sum(
        count
        for count, rgb in image.getcolors(maxcolors=1 << 24)
        if any(sum(abs(a - b) for a, b in zip(rgb, ref)) <= 30 for ref in SERIES_RGB)
    )


def show_and_screenshot(out: Path, *html_template: str) -> Path:
    subprocess.run(
        ["dvc", "plots", "show", "-o", str(out), *html_template],
        cwd=PROJECT_ROOT, check=True, capture_output=True, timeout=120,
    )
    page = out / "index.html"
    shot = out / "shot.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", *NO_NETWORK,
         "--virtual-time-budget=15000", "--window-size=1400,2400", f"--screenshot={shot}", page.as_uri()],
        check=True, capture_output=True, timeout=180,
    )
    return shot


def test_every_plots_csv_is_declared_with_axes() -> None:
    declared = {Path(p).name: p for p in declared_csv_plots()}
    plots = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["plots"]
    for entry in filter(lambda p: isinstance(p, dict), plots):
        (props,) = entry.values()
        assert {"template", "x", "y", "title"} <= props.keys(), entry
    on_disk = {p.name for p in (PROJECT_ROOT / "reports" / "plots").glob("*.csv")}
    assert on_disk <= declared.keys(), on_disk - declared.keys()


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
def test_plots_render_offline_in_headless_chromium(tmp_path: Path) -> None:
    missing = [p for p in declared_csv_plots() if not (PROJECT_ROOT / p).is_file()]
    if missing:
        pytest.skip(f"run `dvc pull` first: {missing[0]} is missing")
    offline = show_and_screenshot(tmp_path / "offline")
    html = (tmp_path / "offline" / "index.html").read_text()
    assert "<script src=" not in html and html.count("vegaEmbed(") >= len(declared_csv_plots())
    default_page = tmp_path / "default.html"
    default_page.write_text(PAGE_HTML)
    cdn = show_and_screenshot(tmp_path / "cdn", "--html-template", str(default_page))
    # a plot panel is ~250 x 200 px; the first screen holds several panels with 3 coloured series each
    assert series_pixels(offline) > 2000, f"blank plots: {offline}"
    assert series_pixels(cdn) < 100, "the CDN page drew curves without network: the control is broken"
