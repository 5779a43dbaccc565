"""fcap.data: media reading, data sources, resumable loaders, the visual feature cache.

Importing this package registers every built-in data source (explicitly, below).
The trainer's entry point is :func:`build_loader`; see fcap/data/README.md.
"""
from fcap.data import howto100m, laion, mixture, msrvtt, msvd  # noqa: F401  (register)
from fcap.data import shapes  # noqa: F401  (registers 'shapes')
from fcap.data.env import DataEnv
from fcap.data.errors import (AnnotationError, DataError, FeatureCacheError, MediaError,
                              SkipLimitError)
from fcap.data.features import FeatureCache, extract_features
from fcap.data.items import Item, LoaderSpec
from fcap.data.shapes import ShapesWorldConfig, ensure_shapes_world
from fcap.data.skips import SkipStats
from fcap.data.source import DataSource, MapSource, StreamSource, build_loader

__all__ = [
    "AnnotationError", "DataEnv", "DataError", "DataSource", "FeatureCache", "FeatureCacheError",
    "Item", "LoaderSpec", "MapSource", "MediaError", "ShapesWorldConfig", "SkipLimitError",
    "SkipStats", "StreamSource", "build_loader", "ensure_shapes_world", "extract_features",
]
