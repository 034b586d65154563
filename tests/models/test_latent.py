"""LatentODE: the ODE-RNN encoder, the ELBO's terms, masks, per-series grids, fit, save/load."""

import math

import pytest
import torch

import physnode as pn
from physnode.models.latent import ODERNN, advance


def series(n=6, k=12, seed=0, dtype=torch.float64, irregular=False):
    """Noisy sines of random frequency and phase (the toy periodic set in miniature)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        t = torch.linspace(0, 5, k, dtype=dtype)
        if irregular:
            t = torch.sort(torch.rand(k, generator=g, dtype=dtype) * 5).values
        w = 0.4 + 0.4 * torch.rand(1, generator=g, dtype=dtype)
        phase = 2 * math.pi * torch.rand(1, generator=g, dtype=dtype)
        out.append(pn.data.Trajectory(t, torch.sin(2 * math.pi * w * t + phase)[:, None]))
    return pn.data.Trajectories(out)


def small(**kw):
    torch.manual_seed(0)
    return pn.models.LatentODE(1, 3, hidden=16, encoder_dim=8, **kw).double()


def test_odernn_with_zero_dynamics_is_a_gru_run_backwards():
    torch.manual_seed(0)
    encoder = ODERNN(2, 5, 7).double()
    last = encoder.field.net[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    t = torch.sort(torch.rand(3, 6, dtype=torch.float64), 1).values
    x = torch.randn(3, 6, 2, dtype=torch.float64)
    mask = torch.ones_like(x)
    _, after = encoder(t, x, mask, reverse=True)
    gru = torch.nn.GRUCell(4, 5).double()
    gru.load_state_dict(encoder.gru.state_dict())
    h = torch.zeros(3, 5, dtype=torch.float64)
    for j in range(5, -1, -1):
        h = gru(torch.cat([x[:, j], mask[:, j]], -1), h)
        torch.testing.assert_close(after[:, j], h, rtol=0, atol=1e-14)


def test_odernn_evolves_the_hidden_state_by_its_ode_between_observations():
    torch.manual_seed(0)
    encoder = ODERNN(1, 4, 8, substeps=20).double()
    t = torch.tensor([[0.0, 0.7]], dtype=torch.float64)
    x, mask = torch.randn(1, 2, 1, dtype=torch.float64), torch.ones(1, 2, 1, dtype=torch.float64)
    before, after = encoder(t, x, mask, reverse=True)
    reference = pn.solve(encoder.field, after[:, 1], torch.tensor([0.7, 0.0], dtype=torch.float64),
                         dt=0.7 / 20)
    torch.testing.assert_close(before[:, 0], reference.ys[-1], rtol=1e-10, atol=1e-12)


def test_kl_matches_the_closed_form():
    mean = torch.randn(5, 3, dtype=torch.float64)
    std = torch.rand(5, 3, dtype=torch.float64) + 0.1
    q = torch.distributions.Normal(mean, std)
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(std))
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(pn.models.LatentODE.kl(mean, std), expected)
    # And by Monte Carlo, against the densities themselves.
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)
    torch.testing.assert_close(mc, expected, rtol=0, atol=0.02)


def test_elbo_likelihood_is_the_gaussian_density_of_the_observed_values():
    model = small(noise=0.2)
    t, y, mask = series(2, 5).padded()
    mask[0, 2] = 0
    ll, kl, count = model.elbo_terms((t, y, mask), samples=1,
                                     generator=torch.Generator().manual_seed(3))
    mean, std = model.encode(t, y, mask)
    z0 = mean + std * torch.randn((1, *mean.shape), generator=torch.Generator().manual_seed(3),
                                  dtype=mean.dtype)
    decoded = model.decode(z0, t)[0]
    normal = torch.distributions.Normal(decoded, 0.2 * model.x_scale)
    expected = (normal.log_prob(y) * mask).sum((-1, -2))
    torch.testing.assert_close(ll, expected)
    assert count.tolist() == [4.0, 5.0]


def test_masked_values_do_not_change_the_loss():
    model = small()
    model.eval()
    t, y, mask = series(3, 8).padded()
    mask[1, 3] = mask[2, 0] = 0
    loss = pn.training.ELBOLoss()
    other = y.clone()
    other[1, 3] = 1e3
    other[2, 0] = -7
    assert loss(model, (t, y, mask)) == loss(model, (t, other, mask))
    assert loss(model, (t, y, mask)) != loss(model, (t, other, torch.ones_like(mask)))


def test_nan_in_the_data_means_missing():
    data = series(2, 6)
    y = data[0].y.clone()
    y[2] = float("nan")
    with_gap = data.with_trajectories([pn.data.Trajectory(data[0].t, y), data[1]])
    t, values, mask = with_gap.padded()
    assert mask[0, 2, 0] == 0 and values[0, 2, 0] == 0 and mask.sum() == 11
    model = small()
    model.eval()
    filled = pn.training.ELBOLoss()(model, (t, values, mask))
    assert torch.isfinite(filled)


def test_per_series_grids_give_one_at_a_time_answers():
    model = small()
    data = series(3, 9, irregular=True)
    short = pn.data.Trajectory(data[2].t[:5], data[2].y[:5])
    data = data.with_trajectories([data[0], data[1], short])
    t, y, mask = data.padded()
    mean, std = model.encode(t, y, mask)
    decoded = model.decode(mean, t)
    for i, tr in enumerate(data):
        ti, yi, mi = data[i:i + 1].padded()
        m1, s1 = model.encode(ti, yi, mi)
        torch.testing.assert_close(mean[i:i + 1], m1, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(std[i:i + 1], s1, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(decoded[i:i + 1, :len(tr)], model.decode(m1, ti),
                                   rtol=1e-12, atol=1e-12)


def test_advance_is_exact_for_linear_dynamics_and_per_row():
    field = lambda t, y: -y                                          # noqa: E731
    y = torch.ones(3, 1, dtype=torch.float64)
    dt = torch.tensor([0.0, 0.5, -1.0], dtype=torch.float64)
    out = advance(field, y, dt, "rk4", 50)
    torch.testing.assert_close(out[:, 0], torch.exp(-dt), rtol=1e-8, atol=0)


def test_fit_trains_the_elbo_and_it_decreases(tmp_path):
    g = torch.Generator().manual_seed(0)
    t = torch.linspace(0, 3, 10, dtype=torch.float64)
    data = pn.data.Trajectories([pn.data.Trajectory(t, (2 * torch.rand(
        1, generator=g, dtype=torch.float64) - 1) * torch.exp(-0.5 * t)[:, None])
        for _ in range(12)])                  # decays of random amplitude
    model = small(noise=0.2)
    result = pn.fit(model, data, epochs=25, progress=False, checkpoint=tmp_path / "c.pt")
    losses = [h["train_loss"] for h in result.history]
    assert result.stages == ["elbo"]
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-3:]) < 0.3 * sum(losses[:3])
    assert (tmp_path / "c.pt").is_file()
    prediction = model.predict(data[:2], torch.linspace(0, 8, 20), samples=6)
    assert prediction.samples.shape == (6, 2, 20, 1)
    assert prediction.mean.shape == prediction.std.shape == (2, 20, 1)
    assert bool(torch.isfinite(prediction.samples).all())


def test_save_and_load_round_trip(tmp_path):
    dynamics = pn.models.HNN(dof=1, hidden=8)
    model = pn.models.LatentODE(2, 2, dynamics=dynamics, hidden=8, encoder_dim=4,
                                decoder_layers=0).double()
    model.adapt_data(pn.data.Trajectories(
        [pn.data.Trajectory(tr.t, torch.cat([tr.y, 2 * tr.y + 1], 1)) for tr in series(3, 6)]))
    path = model.save(tmp_path / "latent.pt")
    loaded = pn.models.load(path).double()
    assert isinstance(loaded.dynamics, pn.models.HNN)
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        torch.testing.assert_close(a, b, equal_nan=True, msg=k)
    data = pn.data.Trajectories([pn.data.Trajectory(torch.linspace(0, 1, 4, dtype=torch.float64),
                                                    torch.randn(4, 2, dtype=torch.float64))])
    t_new = torch.linspace(0, 2, 5, dtype=torch.float64)
    torch.testing.assert_close(model.predict(data, t_new, 3).samples,
                               loaded.predict(data, t_new, 3).samples)


@pytest.mark.parametrize("kwargs,error,message", [
    ({"obs_dim": 0, "latent_dim": 2}, ValueError, r"^`obs_dim` must be at least 1; got 0$"),
    ({"obs_dim": 1, "latent_dim": 2, "noise": 0.0}, ValueError,
     r"^`noise` must be positive; got 0.0$"),
    ({"obs_dim": 1, "latent_dim": 2, "method": "dopri5"}, ValueError,
     r"^`method` must be an explicit fixed-step method; got 'dopri5'$"),
    ({"obs_dim": 1, "latent_dim": 4, "dynamics": pn.models.NeuralODE(2, hidden=4)}, ValueError,
     r"^`dynamics` must have width latent_dim = 4; got NeuralODE of width 2$"),
    ({"obs_dim": 1, "latent_dim": 2, "dynamics": torch.nn.Linear(2, 2)}, TypeError,
     r"^`dynamics` must be a NeuralODE or an HNN; got Linear$"),
])
def test_bad_construction_is_pinned(kwargs, error, message):
    with pytest.raises(error, match=message):
        pn.models.LatentODE(**kwargs)


def test_bad_data_is_pinned():
    model = small()
    data = series(2, 5)
    with pytest.raises(ValueError, match=r"^`data` must have 1 observed coordinates; got 2$"):
        model.predict(pn.data.Trajectories([pn.data.Trajectory(tr.t, tr.y.repeat(1, 2))
                                            for tr in data]), [1.0])
    with pytest.raises(TypeError, match=r"^`data` must be physnode.data.Trajectories or a "
                                        r"Trajectory; got list$"):
        model.predict([1.0], [1.0])
    with pytest.raises(ValueError, match=r"^`t_new` must have shape \(K,\) or \(2, K\) with "
                                         r"K ≥ 1; got \(3, 2\)$"):
        model.predict(data, torch.zeros(3, 2))
    empty = data.with_trajectories([pn.data.Trajectory(data[0].t,
                                                       torch.full_like(data[0].y, float("nan")))])
    with pytest.raises(ValueError, match=r"^`data\[0\].y` must hold finite numbers, NaN for a "
                                         r"missing value, and at least one observed value; got "
                                         r"nothing observed$"):
        pn.fit(model, empty, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"^LatentODE cannot be trained with DerivativeLoss; "
                                         r"expected ELBOLoss$"):
        pn.fit(model, data, loss=pn.training.DerivativeLoss(), epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"^NeuralODE cannot be trained with ELBOLoss; "
                                         r"expected DerivativeLoss or RolloutLoss$"):
        pn.fit(pn.models.NeuralODE(1, hidden=4), data, loss=pn.training.ELBOLoss(), epochs=1,
               progress=False)
    with pytest.raises(ValueError, match=r"^`samples` must be at least 1; got 0$"):
        pn.training.ELBOLoss(samples=0)


def test_an_interrupted_fit_resumes_exactly(tmp_path):
    data = series(12, 6)
    options = {"epochs": 6, "progress": False, "seed": 1, "checkpoint_every": 1}
    whole = small(noise=0.2)
    pn.fit(whole, data, **options)
    ckpt = tmp_path / "c.pt"

    class Interrupt(Exception):
        pass

    def crash(*_):
        if ckpt.is_file() and torch.load(ckpt, weights_only=True)["state"]["epoch"] >= 3:
            raise Interrupt
    interrupted = small(noise=0.2)
    hook = interrupted.decoder.register_forward_pre_hook(crash)
    with pytest.raises(Interrupt):
        pn.fit(interrupted, data, checkpoint=ckpt, **options)
    hook.remove()
    torch.manual_seed(123)                      # another process: another global generator
    resumed = small(noise=0.2)
    result = pn.fit(resumed, data, checkpoint=ckpt, resume=True, **options)
    assert [h["epoch"] for h in result.history] == list(range(1, 7))
    for (k, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=k)


def test_kl_warmup_weights_the_training_kl_and_validates_on_the_full_elbo():
    model = small()
    model.eval()
    batch = series(3, 8).padded()
    loss = pn.training.ELBOLoss(kl_warmup=3)
    ll, kl, count = model.elbo_terms(batch, 1, torch.Generator().manual_seed(0))
    for weight in (0.0, 0.5, 1.0):
        torch.testing.assert_close(loss(model, batch, kl_weight=weight),
                                   -(ll - weight * kl).sum() / count.sum())
    assert [loss.epoch_options(e) for e in range(4)] == [
        {"kl_weight": 1 / 3}, {"kl_weight": 2 / 3}, {"kl_weight": 1.0}, {"kl_weight": 1.0}]
    assert pn.training.ELBOLoss().epoch_options(0) == {}

    seen = []

    class Spy(pn.training.ELBOLoss):
        def __call__(self, model, batch, kl_weight=1.0):
            seen.append((model.training, kl_weight))
            return super().__call__(model, batch, kl_weight)

    pn.fit(small(), series(12, 6), loss=Spy(kl_warmup=3, batch_size=None), epochs=4,
           progress=False, seed=0)
    assert seen == [(True, 1 / 3), (False, 1.0), (True, 2 / 3), (False, 1.0),
                    (True, 1.0), (False, 1.0), (True, 1.0), (False, 1.0)]
    with pytest.raises(ValueError, match=r"^`kl_warmup` must be at least 0; got -1$"):
        pn.training.ELBOLoss(kl_warmup=-1)


def test_clock_times_predict_like_times_from_zero():
    # A float32 model of whole series depends on time differences only; absolute times of a
    # clock (1.7e9 s) would lose them in float32.
    torch.manual_seed(0)
    model = pn.models.LatentODE(1, 2, encoder_dim=8, hidden=8)
    data = series(3, 10, dtype=torch.float64)
    pn.fit(model, data, epochs=1, progress=False)
    clock = data.with_trajectories([pn.data.Trajectory(tr.t + 1.7e9, tr.y) for tr in data])
    t_new = torch.linspace(0, 8, 7, dtype=torch.float64)
    here, there = model.predict(data, t_new, 3), model.predict(clock, t_new + 1.7e9, 3)
    torch.testing.assert_close(there.samples, here.samples, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(there.t - 1.7e9, here.t.double())
