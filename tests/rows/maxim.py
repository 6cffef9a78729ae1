"""MAXIM (image restoration): counts from specs/maxim.md §2.6 (num_supervision_scales=3, as the checkpoints)."""
from rows import ModelRow

# An image-to-image model: forward returns the restored image (B, 3, H, W), there is no classifier,
# pooling or logits. These checks assume one; MAXIM's own tests cover the image path instead
# (tests/test_maxim.py: forward/backward, forward_features + forward_head, official outputs).
_NO_CLASSIFIER = "image-to-image model: returns the restored image, has no classifier / num_classes"
NOT_APPLICABLE = {
    "forward_backward": _NO_CLASSIFIER + " (output is (B, 3, H, W), not logits; tested in test_maxim.py)",
    "num_classes_and_in_chans": _NO_CLASSIFIER + " (num_classes != 0 is refused)",
    "global_pool": "image-to-image model: no global pooling",
    "forward_features_and_head": "forward_head picks the final image from forward_features' list of stage "
                                 "outputs; there are no pre-logits (tested in test_maxim.py)",
    "reset_classifier": _NO_CLASSIFIER,
    "ggem_groups_are_checked_against_the_pooled_width": "image-to-image model: no global pooling to replace",
}

_S3 = 22_212_795  # MAXIM-3S, 3 supervision scales
_S2 = 14_176_178  # MAXIM-2S, 3 supervision scales


# The eleven names are two architectures (MAXIM-3S, MAXIM-2S) with different official weights; their
# constructors are identical within a variant. The checks that run the network (several forward /
# backward passes of a 14-22 M parameter model each) run on one name per variant; on the other names
# they would repeat the same computation on the same architecture.
_REFERENCE = {"maxim_3s": "maxim_3s_denoising_sidd", "maxim_2s": "maxim_2s_deraining_rain13k"}
_NETWORK_CHECKS = ("features_only", "forward_intermediates", "grad_checkpointing_changes_nothing",
                   "eval_output_does_not_depend_on_batch", "empty_batch_gives_empty_outputs")


def _row(name: str, params: int) -> ModelRow:
    not_applicable = dict(NOT_APPLICABLE)
    reference = _REFERENCE[name[:8]]
    if name != reference:
        why = f"same architecture and constructor as {reference} (only the pretrained cfg differs), checked there"
        not_applicable.update({check: why for check in _NETWORK_CHECKS})
    # 64 x 64 is the smallest size the official network takes without padding (forward pads any size).
    return ModelRow(name, params, input_size=(3, 64, 64), not_applicable=not_applicable)


ROWS = [
    _row("maxim_3s_denoising_sidd", _S3),
    _row("maxim_3s_deblurring_gopro", _S3),
    _row("maxim_3s_deblurring_reds", _S3),
    _row("maxim_3s_deblurring_realblur_j", _S3),
    _row("maxim_3s_deblurring_realblur_r", _S3),
    _row("maxim_2s_deraining_rain13k", _S2),
    _row("maxim_2s_deraining_raindrop", _S2),
    _row("maxim_2s_dehazing_sots_indoor", _S2),
    _row("maxim_2s_dehazing_sots_outdoor", _S2),
    _row("maxim_2s_enhancement_lol", _S2),
    _row("maxim_2s_enhancement_fivek", _S2),
]
