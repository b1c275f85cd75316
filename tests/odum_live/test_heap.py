"""odum_live.heap: the start-up heap is frozen out of the collector's walks."""

import gc
import subprocess
import sys
from pathlib import Path

from odum_live.heap import freeze_startup_heap

ROOT = Path(__file__).resolve().parents[2]


def test_freeze_startup_heap_moves_live_objects_to_the_permanent_generation():
    # Arrange
    kept = [object() for _ in range(1000)]

    try:
        # Act
        frozen = freeze_startup_heap(warm_urls=True)

        # Assert: the objects alive at the freeze (these included) are out of every generation
        assert frozen >= len(kept) and gc.get_freeze_count() >= len(kept)
        assert not any(o is kept[0] for generation in range(3) for o in gc.get_objects(generation))
    finally:
        gc.unfreeze()


def test_wsgi_entry_point_freezes_the_loaded_heap():
    # The WSGI module, as gunicorn imports it in each worker, freezes what Django loaded.
    code = ("import gc, odum_live.wsgi; import django.urls as u; "
            "assert gc.get_freeze_count() > 10000, gc.get_freeze_count(); "
            "assert 'orders.api.views' in __import__('sys').modules")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "odum_live.settings",
                                 "DJANGO_DEBUG": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
