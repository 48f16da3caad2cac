"""The example every softmax tutorial starts from."""

import numpy as np
import torch

from softmax_lab.compute.softmax import softmax


def test_seed_example_matches_tutorial_values():
    p = softmax([2.0, 1.0, 0.1])
    np.testing.assert_allclose(p, [0.659, 0.242, 0.099], atol=5e-4)
    reference = torch.nn.functional.softmax(torch.tensor([2.0, 1.0, 0.1]), dim=0).numpy()
    np.testing.assert_allclose(p, reference, rtol=1e-6)
