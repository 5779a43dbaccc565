"""Building a tiny model leaves the caller's random state alone: a run's adapter init must not
depend on whether its frozen models were already in the cache."""
import torch

from fcap.models.tiny import TinyOPT, TinyTimesformer, build_tiny_opt, build_tiny_timesformer


def test_tiny_builds_do_not_touch_the_global_random_state(tmp_path):
    for i, (build, dims) in enumerate(((build_tiny_opt, TinyOPT()),
                                       (build_tiny_timesformer, TinyTimesformer()))):
        torch.manual_seed(123)
        expected = torch.rand(4)
        torch.manual_seed(123)
        build(tmp_path / str(i), dims)
        assert torch.equal(torch.rand(4), expected), build.__name__
