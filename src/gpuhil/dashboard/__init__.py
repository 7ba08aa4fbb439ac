"""The nightly perf dashboard: a static site built from the run history.

Plotting is plotly: its one JS file (plotly.min.js, ~4.8 MB) is written once into the site's assets/
and every page links it relatively, so the site works offline from file:// with no CDN and no server;
figures are plain JSON built in Python (checked without a browser, see tests/test_dashboard_site.py)
and rendered client-side to SVG, which a headless browser test can see; hover shows each run's
commit, fingerprint and invalid reason, which static images (matplotlib) cannot. Bokeh would work the
same way but ships several JS files and has no smaller footprint for these plot types.
"""

from .build import Site, build

__all__ = ["Site", "build"]
