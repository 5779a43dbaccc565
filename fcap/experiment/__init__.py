"""Experiments: YAML -> a validated plan of runs (variants x stages)."""
from fcap.experiment.command import plan_from_argv
from fcap.experiment.plan import Plan, Run, build_plan
from fcap.experiment.spec import ExperimentHeader, Resources

__all__ = ["ExperimentHeader", "Plan", "Resources", "Run", "build_plan", "plan_from_argv"]
