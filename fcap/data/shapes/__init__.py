"""The synthetic shapes world (tiny profile, tests): generator and data source."""
from fcap.data.shapes import source  # noqa: F401  (registers 'shapes')
from fcap.data.shapes.world import LAYOUTS, ShapesWorldConfig, ensure_shapes_world, world_root

__all__ = ["LAYOUTS", "ShapesWorldConfig", "ensure_shapes_world", "world_root"]
