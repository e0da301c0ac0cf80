"""The maths of our RL loop against hand-computed values: GAE, the k1/k3 KL estimators, REINFORCE++ returns,
global advantage normalisation (one process = the same batch split over two), the group baseline."""

import math

import pytest
import torch

from mmredstar.training.ppo import (
    discounted_returns,
    gae,
    global_whiten,
    group_baseline,
    kl_penalty,
    token_rewards,
)


def close(t, expected, tol=1e-6):
    torch.testing.assert_close(t.double(), torch.tensor(expected, dtype=torch.float64), atol=tol, rtol=0)


def test_gae_by_hand():
    rewards = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 5.0]])
    values = torch.tensor([[0.2, 0.5, 0.8], [0.3, 0.6, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # row 2: a 2-token response, junk after it
    adv, ret = gae(rewards, values, mask, gamma=0.9, lam=0.8)
    # row 1: d2 = 1 - .8 = .2; d1 = .9*.8 - .5 = .22, A1 = .22 + .72*.2; d0 = .9*.5 - .2 = .25, A0 = .25 + .72*A1
    a1 = 0.22 + 0.72 * 0.2
    exp_adv = [[0.25 + 0.72 * a1, a1, 0.2], [0.24 + 0.72 * 0.4, 0.4, 0.0]]
    close(adv, exp_adv)
    close(ret, [[exp_adv[0][0] + 0.2, a1 + 0.5, 1.0], [0.528 + 0.3, 1.0, 0.0]])
    # lambda = 1: advantages are Monte-Carlo returns minus values; lambda = 0: one-step TD errors
    a, _ = gae(rewards[:1], values[:1], mask[:1], 1.0, 1.0)
    close(a, [[0.8, 0.5, 0.2]])
    a, _ = gae(rewards[:1], values[:1], mask[:1], 1.0, 0.0)
    close(a, [[0.3, 0.3, 0.2]])


def test_kl_estimators_by_hand_and_unbiased():
    logp, ref = torch.tensor([-1.0, -2.0, -0.5]), torch.tensor([-1.5, -1.0, -0.5])
    assert kl_penalty(logp, ref, "k1").tolist() == pytest.approx([0.5, -1.0, 0.0])
    assert kl_penalty(logp, ref, "k3").tolist() == pytest.approx([math.exp(-0.5) - 1 + 0.5, math.e - 2, 0.0], abs=1e-6)
    # both estimate KL(p || q) without bias when tokens are sampled from p; k3 is never negative
    p, q = torch.tensor([0.5, 0.3, 0.2]), torch.tensor([0.2, 0.3, 0.5])
    kl = float((p * (p / q).log()).sum())
    x = torch.multinomial(p, 400_000, replacement=True, generator=torch.Generator().manual_seed(0))
    lp, lq = p.log()[x], q.log()[x]
    assert float(kl_penalty(lp, lq, "k1").mean()) == pytest.approx(kl, abs=0.01)
    k3 = kl_penalty(lp, lq, "k3")
    assert float(k3.mean()) == pytest.approx(kl, abs=0.01) and float(k3.min()) >= 0.0
    with pytest.raises(ValueError, match="k1 or k3"):
        kl_penalty(lp, lq, "k2")


def test_token_rewards_and_reinforce_returns():
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.5, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    r = token_rewards(torch.tensor([1.0, -1.0]), kl, mask, beta=0.1)
    close(r, [[-0.01, -0.02, 0.97], [-0.05, -1.05, 0.0]])
    g = discounted_returns(r, mask, gamma=1.0)
    close(g, [[0.94, 0.95, 0.97], [-1.1, -1.05, 0.0]])
    g = discounted_returns(r, mask, gamma=0.5)
    close(g[0], [-0.01 + 0.5 * (-0.02 + 0.5 * 0.97), -0.02 + 0.5 * 0.97, 0.97])


def test_global_normalisation_by_hand_and_across_processes():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 7.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    std = math.sqrt(1.25)  # tokens 1, 2, 3, 4: mean 2.5, population variance 1.25
    w = global_whiten(x, mask)
    close(w, [[-1.5 / std, -0.5 / std, 0.5 / std], [1.5 / std, 0.0, 0.0]])

    # two processes holding one row each, statistics summed over both = the one-process result
    def stats(i):
        return torch.stack([(x[i] * mask[i]).sum(), (x[i] ** 2 * mask[i]).sum(), mask[i].sum()]).double()

    for i in (0, 1):
        other = stats(1 - i)
        wi = global_whiten(x[i:i + 1], mask[i:i + 1], reduce=lambda s, o=other: s + o)
        close(wi, w[i:i + 1].tolist())
    # per-process normalisation would differ (that is what "global" rules out)
    assert not torch.allclose(global_whiten(x[:1], mask[:1]), w[:1], atol=1e-3)


def test_group_baseline():
    s = torch.tensor([1.0, 0.0, -1.0, -1.0, 1.0, 1.0])
    assert group_baseline(s, [0, 0, 1, 1, 2, 2]).tolist() == pytest.approx([0.5, -0.5, 0.0, 0.0, 0.0, 0.0])
