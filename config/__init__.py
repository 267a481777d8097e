"""Stage configuration: YAML files validated into frozen, typed models."""

from config.loader import ConfigError, load_stage, load_stages, parse_stage
from config.stage import StageConfig

__all__ = ["ConfigError", "StageConfig", "load_stage", "load_stages", "parse_stage"]
