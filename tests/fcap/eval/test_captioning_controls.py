"""generate_captions' controls and counts: shuffled frames, shuffled videos, EOS, max_items."""
import torch

from fcap.eval.captioning import Generated, generate_captions, shuffle_frames


def test_shuffle_frames_permutes_each_items_valid_frames_only():
    b, t = 6, 5
    video = torch.arange(b * t, dtype=torch.float32).view(b, t, 1, 1, 1).expand(b, t, 3, 2, 2).clone()
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[0, 3:] = False  # item 0: 3 real frames, 2 padded
    out = shuffle_frames({"pixel_values": video, "frame_mask": mask}, torch.Generator().manual_seed(0))
    got = out["pixel_values"][:, :, 0, 0, 0]
    for i in range(b):
        n = int(mask[i].sum())
        # the same frames, each once, padded frames in place, pixels of a frame kept together
        assert sorted(got[i, :n].tolist()) == video[i, :n, 0, 0, 0].tolist()
        assert got[i, n:].tolist() == video[i, n:, 0, 0, 0].tolist()
        assert torch.equal(out["pixel_values"][i], out["pixel_values"][i, :, :1, :1, :1].expand(t, 3, 2, 2))
    assert not torch.equal(got, video[:, :, 0, 0, 0])  # some order changed
    assert torch.equal(out["frame_mask"], mask)


def test_shuffle_frames_is_seeded_and_moves_features_with_pixels():
    feats = torch.randn(4, 8, 3, 2)  # (b, t, s, d) visual features
    a = shuffle_frames({"visual_features": feats}, torch.Generator().manual_seed(1))
    b = shuffle_frames({"visual_features": feats}, torch.Generator().manual_seed(1))
    c = shuffle_frames({"visual_features": feats}, torch.Generator().manual_seed(2))
    assert torch.equal(a["visual_features"], b["visual_features"])
    assert not torch.equal(a["visual_features"], c["visual_features"])
    one = torch.randn(2, 1, 3, 4, 4)  # images are 1-frame videos: unchanged
    assert torch.equal(shuffle_frames({"pixel_values": one}, torch.Generator())["pixel_values"], one)


class _Model(torch.nn.Module):
    """Stands in for FrozenCaptioner: 'captions' its first pixel; row 1 of each batch never ends."""

    class lm:
        eos_token_id = 2

    def __init__(self):
        super().__init__()
        self.seen = []

    def generate_ids(self, *, pixel_values, decoding, frame_mask=None):
        self.seen.append(pixel_values[:, :, 0, 0, 0].clone())
        ids = torch.full((pixel_values.shape[0], 3), 5)
        ids[:, 2] = self.lm.eos_token_id
        ids[1::2, 2] = 7  # odd rows hit max_new_tokens
        return ids

    def decode(self, ids):
        return [f"caption {i}" for i in range(len(ids))]


def _loader(n_batches=3, b=4, t=4):
    for k in range(n_batches):
        pixels = torch.arange(t, dtype=torch.float32).repeat(b, 1).view(b, t, 1, 1, 1)
        pixels = (pixels + 10 * k).expand(b, t, 3, 2, 2).clone()
        yield {"pixel_values": pixels, "ids": [f"v{k}_{i}" for i in range(b)],
               "references": [[f"ref {k} {i}"] for i in range(b)]}


def test_generated_counts_eos_and_caps_items():
    model = _Model()
    out = generate_captions(model, _loader(), decoding=None, device=torch.device("cpu"),
                            dtype=torch.float32, max_items=6)
    assert isinstance(out, Generated)
    assert list(out.predictions) == ["v0_0", "v0_1", "v0_2", "v0_3", "v1_0", "v1_1"]
    assert set(out.references) == set(out.predictions) == set(out.ended_with_eos)
    assert out.ended_with_eos["v0_0"] is True and out.ended_with_eos["v0_1"] is False
    assert out.eos_fraction == 0.5
    assert len(model.seen) == 2  # stopped reading once the cap was reached


def test_generate_captions_shuffle_frames_reaches_the_model():
    plain, shuffled = _Model(), _Model()
    for model, flag in ((plain, False), (shuffled, True)):
        generate_captions(model, _loader(n_batches=1), decoding=None, device=torch.device("cpu"),
                          dtype=torch.float32, frames_shuffled=flag, seed=3)
    assert plain.seen[0].tolist() == [[0.0, 1.0, 2.0, 3.0]] * 4
    assert plain.seen[0].tolist() != shuffled.seen[0].tolist()
    assert all(sorted(row) == [0.0, 1.0, 2.0, 3.0] for row in shuffled.seen[0].tolist())
