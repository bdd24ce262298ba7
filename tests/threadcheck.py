"""Run a test's work on several threads at once and surface their failures."""
import threading


def run_in_threads(work, n):
    """Call ``work(k)`` for ``k`` in ``range(n)``, each on its own thread,
    released together by a barrier; re-raise the first worker's exception."""
    barrier = threading.Barrier(n)
    errors = []

    def run(k):
        try:
            barrier.wait()
            work(k)
        except BaseException as exc:  # re-raised in the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
