"""The frozen TimeSformer runs at crops other than its training size (Sec. 6: 224-384 px)."""
import pytest
import torch

from fcap.config import build_component
from registry import MODELS


@pytest.fixture(scope="module")
def encoder():
    import fcap.models  # noqa: F401  (registers the families)

    return build_component(MODELS, {"name": "timesformer", "source": "tiny"}).build()


@pytest.mark.parametrize("size,side", [(24, 3), (28, 3), (40, 5), (48, 6)])
def test_other_crops_give_their_own_patch_grid(encoder, size, side):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 3, size, size)
    out = encoder.encode(x)
    assert out.shape == (2, 3, side * side, encoder.hidden_size)
    assert torch.isfinite(out).all()
    padded = encoder.encode(x, torch.tensor([[True, True, False], [True, True, True]]))
    assert torch.allclose(padded[1], out[1], atol=1e-5)  # unpadded sample unchanged
    assert torch.allclose(padded[0, :2], encoder.encode(x[:1, :2])[0], atol=1e-5)
    # the trained size is restored for the next call
    assert encoder.model.config.image_size == encoder.spec.image_size == 32


def test_non_square_frames_are_refused(encoder):
    with pytest.raises(ValueError, match="frames are 32x40; 'tiny' needs square frames"):
        encoder.encode(torch.randn(1, 2, 3, 32, 40))
