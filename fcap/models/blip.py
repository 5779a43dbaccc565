"""Captioning images with a transformers BLIP (``BlipForConditionalGeneration``).

One decode path for every BLIP in fcap: the pseudolabeller
(:mod:`fcap.pseudolabel.blip_labeler`, Sec. 3.1) and the tiny BLIP's quality
check (:mod:`fcap.models.pretrain_tiny.blip`) caption through it, so the
quality a build reports is what the pseudolabel stage gets.
"""
from __future__ import annotations

import torch


def caption_images(model, tokenizer, pixels: torch.Tensor, *, max_new_tokens: int,
                   min_new_tokens: int = 0, num_beams: int = 1, repeat: int = 1,
                   logits_processor=None) -> list[str]:
    """Captions of normalised images ``pixels: (b, 3, H, W)``, ``repeat`` per image (image-major).

    The text decoder starts from BLIP's ``[DEC]`` and stops at ``[SEP]``;
    greedy (or beam) search unless ``logits_processor`` adds noise. Inputs of
    another side than the model's are read with interpolated position
    embeddings.
    """
    from transformers import GenerationConfig, LogitsProcessorList

    native = model.config.vision_config.image_size
    image = model.vision_model(pixel_values=pixels,
                               interpolate_pos_encoding=pixels.shape[-1] != native)[0]
    image = image.repeat_interleave(repeat, dim=0)
    text = model.config.text_config
    gen = GenerationConfig(max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                           do_sample=False, num_beams=num_beams, bos_token_id=text.bos_token_id,
                           eos_token_id=text.sep_token_id, pad_token_id=text.pad_token_id,
                           use_cache=True)
    out = model.text_decoder.generate(
        input_ids=torch.full((image.shape[0], 1), text.bos_token_id, dtype=torch.long,
                             device=image.device),
        encoder_hidden_states=image,
        encoder_attention_mask=torch.ones(image.shape[:2], dtype=torch.long, device=image.device),
        generation_config=gen, logits_processor=logits_processor or LogitsProcessorList())
    return [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]
