"""Fixtures shared by the end-to-end tests (pytest loads this file)."""
import pytest

from edge import Edge


@pytest.fixture
def fresh(tmp_path):
    """Make edges of the example (Edge's arguments); all stopped at the end."""
    made = []

    def make(**kw):
        e = Edge(tmp_path / f"e{len(made)}", **kw)
        made.append(e)
        return e
    yield make
    # every edge is stopped, even when stopping one of them fails
    errors = []
    for e in made:
        try:
            e.stop()
        except Exception as err:
            errors.append(err)
    if errors:
        raise errors[0]
