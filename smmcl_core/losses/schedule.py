"""Warm-up of the contrastive weights of Eq. (7).

``L = L_ce + s(t) (lambda_cm L_cm + lambda_vis L_vis + lambda_aux L_aux)`` with ``t`` the
training progress in epochs (fractional within an epoch) and

    s(t) = 0                          for t < delay
    s(t) = min(1, (t - delay) / ramp)  afterwards (ramp = 0: a step to 1 at ``delay``)

``delay = ramp = 0`` gives the paper's constant weights. Why: from scratch on small data the
contrastive terms (about log of the number of sampled embeddings) start an order of magnitude
above the cross-entropy they are meant to regularise and can dominate the early gradient;
letting cross-entropy shape the features first, then adding the contrast, avoids that.
"""


def contrastive_scale(progress: float, delay: float = 0.0, ramp: float = 0.0) -> float:
    """Factor in [0, 1] for the contrastive weights at ``progress`` epochs.

    Raises:
        ValueError: Negative ``delay`` or ``ramp``.
    """
    if delay < 0 or ramp < 0:
        raise ValueError(f'lambda delay/ramp epochs must be >= 0, got {delay}, {ramp}')
    if progress < delay:
        return 0.0
    if ramp <= 0:
        return 1.0
    return min(1.0, (progress - delay) / ramp)
