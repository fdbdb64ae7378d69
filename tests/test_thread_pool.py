"""The C kernels' thread pool (csrc/thread_pool.h): workers that outlive a call, wake from sleep, are shared
safely by Python threads and are made anew in a forked child. Every result is compared bit for bit."""

import multiprocessing
import os
import threading
import time

import pytest
import torch

from torch_tanhnet.kernels import c_kernels, dispatch

K, N = 64, 4096  # 2^18 network-samples: the kernel runs on all of torch's threads


@pytest.fixture(scope="module")
def problem():
    if dispatch.c_kernels(torch.float32) is None:
        pytest.skip("the C kernels are unavailable here")
    g = torch.Generator().manual_seed(0)
    X = torch.randn(K, N, 2, generator=g)
    y = (torch.rand(K, N, 1, generator=g) < 0.5).float()
    params = [torch.randn(s, generator=g) for s in ((K, 3, 2), (K, 3), (K, 1, 3), (K, 1))]
    return X, params, y


def gradients(X, params, y):
    eps, grads, _ = dispatch.c_kernels(torch.float32).ensemble_loss_and_gradients(X, *params, y, False)
    return torch.cat([eps.view(-1), *(g.view(-1) for g in grads)])


@pytest.fixture
def two_threads(monkeypatch):
    """At least two kernel threads (with one CPU the pool would never be used)."""
    monkeypatch.setattr(c_kernels, "ensemble_schedule", lambda K, N, lanes=False: (2, 1))


def test_a_worker_that_has_gone_to_sleep_wakes_for_the_next_job(problem, two_threads):
    first = gradients(*problem)
    time.sleep(0.05)  # far beyond the 0.5 ms a worker waits before it sleeps
    assert torch.equal(gradients(*problem), first)


def test_python_threads_calling_at_once_get_the_results_of_one_at_a_time(problem, two_threads):
    alone = gradients(*problem)
    results, errors = [], []

    def work():
        try:
            for _ in range(10):
                results.append(gradients(*problem))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    assert len(results) == 40 and all(torch.equal(r, alone) for r in results)


def _child(problem, queue):
    c_kernels.ensemble_schedule = lambda K, N, lanes=False: (2, 1)
    queue.put(gradients(*problem).tolist())  # plain numbers: a tensor would travel as shared memory


def test_a_forked_child_makes_its_own_workers(problem, two_threads):
    parent = gradients(*problem)  # the parent's workers exist now
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(problem, queue))
    child.start()
    got = queue.get(timeout=30)  # a child waiting on workers it does not have would never answer
    child.join(timeout=60)
    assert child.exitcode == 0 and got == parent.tolist()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_while_another_thread_builds_the_kernels_does_not_wait_for_ever():
    # the build's lock, held by a thread that is not in the child, hung the child's first call
    from torch_tanhnet.kernels import cpu

    held, release = threading.Event(), threading.Event()

    def builder():
        with cpu._lock:
            held.set()
            release.wait(10)

    t = threading.Thread(target=builder)
    t.start()
    held.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: the lock must be free
        os._exit(0 if cpu._lock.acquire(timeout=5) else 1)
    release.set()
    t.join(10)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
