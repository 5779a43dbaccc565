"""One config path: YAML -> ``base:`` chain -> profile -> overrides -> dataclasses."""
from fcap.config.errors import ConfigError, Problem
from fcap.config.schema import (Component, build_component, component, from_dict, input_path,
                                input_paths, run_option, run_options, to_dict)

__all__ = [
    "Component", "ConfigError", "Problem", "build_component", "component", "from_dict",
    "input_path", "input_paths", "run_option", "run_options", "to_dict",
]
