import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, TESTS
from gluon_deeplab.launch import job_nodes

pytestmark = pytest.mark.slow  # subprocesses: workers, servers, launchers

#: A worker that joins the job; rank 1 then dies while rank 0 waits for it in a sum.
DYING_WORKER = '''
import os, mxnet as mx
from gluon_deeplab.engine.distributed import Workers
workers = Workers('dist_sync')
if workers.rank == 1:
    os._exit(3)
workers.sum('never complete', [mx.nd.ones((1,))])
print(mx.nd.ones((1,)).asnumpy())
'''

#: A worker that sums its rank + 1 with the others' and prints the result.
SUM_WORKER = '''
import mxnet as mx
from gluon_deeplab.engine.distributed import Workers
workers = Workers('dist_sync')
total = mx.nd.array([workers.rank + 1])
workers.sum('rank', [total])
print('rank %d of %d: sum %g' % (workers.rank, workers.num_workers, total.asscalar()))
'''


def _launch(args, worker, timeout=120):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]))
    tic = time.time()
    proc = subprocess.run([sys.executable, '-m', 'gluon_deeplab.launch'] + args
                          + ['--', sys.executable, '-c', worker], cwd=TESTS, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return proc, time.time() - tic


def test_plan_gives_every_process_the_dmlc_environment():
    nodes = job_nodes(['python', 'train.py'], 3, hosts=['10.0.0.2', '10.0.0.3'], host='10.0.0.1',
                 port=9000)
    assert [(n.role, n.host) for n in nodes] == [
        ('scheduler', None), ('server', '10.0.0.2'), ('server', '10.0.0.3'),
        ('worker', '10.0.0.2'), ('worker', '10.0.0.3'), ('worker', '10.0.0.2')]
    for n in nodes:
        assert n.env['DMLC_ROLE'] == n.role
        assert (n.env['DMLC_PS_ROOT_URI'], n.env['DMLC_PS_ROOT_PORT']) == ('10.0.0.1', '9000')
        assert (n.env['DMLC_NUM_WORKER'], n.env['DMLC_NUM_SERVER']) == ('3', '2')
        assert n.env['DMLC_NODE_HOST'] == (n.host or '10.0.0.1')
    assert nodes[-1].command == ['python', 'train.py']
    local = job_nodes(['w'], 2)
    assert {n.env['DMLC_NODE_HOST'] for n in local} == {'127.0.0.1'}
    assert [n.host for n in local] == [None] * 4


def test_workers_on_one_machine_share_the_default_thread_count_not_the_user_s():
    from gluon_deeplab.runtime.cpu_threads import MARK
    ours = job_nodes(['w'], 2, environ={'OMP_NUM_THREADS': '4', MARK: '4'})
    assert [(n.role, n.env['OMP_NUM_THREADS']) for n in ours] == [
        ('scheduler', '1'), ('server', '1'), ('worker', '2'), ('worker', '2')]
    # set by the user (or by us and then changed by the user): passed on as it is
    for environ in ({'OMP_NUM_THREADS': '4'}, {'OMP_NUM_THREADS': '3', MARK: '4'}):
        assert all('OMP_NUM_THREADS' not in n.env for n in job_nodes(['w'], 2, environ=environ))
    # workers elsewhere start with their own machine's default
    remote = job_nodes(['w'], 2, hosts=['10.0.0.2'], host='10.0.0.1', port=9000,
                  environ={'OMP_NUM_THREADS': '4', MARK: '4'})
    assert [n.env.get('OMP_NUM_THREADS') for n in remote] == ['1', None, None, None]


def test_a_dying_worker_fails_the_job_with_a_clear_message_not_a_hang():
    proc, seconds = _launch(['-n', '2', '--timeout', '100'], DYING_WORKER)
    assert proc.returncode == 1
    assert 'exited with status 3' in proc.stderr and 'worker' in proc.stderr, proc.stderr
    assert 'stopping the' in proc.stderr
    assert seconds < 60


def test_timeout_stops_a_job_that_hangs():
    proc, seconds = _launch(['-n', '1', '--timeout', '3'],
                            'import time; time.sleep(600)')
    assert proc.returncode == 1
    assert 'did not finish within --timeout 3' in proc.stderr
    assert seconds < 30


def test_hostfile_starts_workers_and_servers_through_the_remote_shell(tmp_path):
    """Two 'hosts' that are this machine, reached through a stand-in for ssh that runs
    the command locally and records which host it was asked for."""
    fake_ssh = tmp_path / 'fake_ssh'
    fake_ssh.write_text('#!/bin/sh\nhost=$1; shift\necho "$host" >> %s\nexec sh -c "$1"\n'
                        % (tmp_path / 'hosts_used'))
    fake_ssh.chmod(0o755)
    (tmp_path / 'hosts').write_text('# two hosts\n127.0.0.1\nlocalhost\n')
    proc, _ = _launch(['-n', '2', '-H', str(tmp_path / 'hosts'), '--ssh', str(fake_ssh),
                       '--timeout', '100'], SUM_WORKER)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the two workers share stdout: their lines may interleave
    assert sorted(re.findall(r'rank \d of \d: sum \d+', proc.stdout)) == [
        'rank 0 of 2: sum 3', 'rank 1 of 2: sum 3']
    # 2 servers (one per host) and 2 workers, in turn
    assert sorted((tmp_path / 'hosts_used').read_text().split()) == ['127.0.0.1'] * 2 + [
        'localhost'] * 2


def _sleeping_job(tmp_path, **popen):
    """``(launcher process, its 4 children's pids, the workers' pid file)``: a job of 2
    workers that sleep, once every worker has started."""
    pids = tmp_path / 'pids'
    worker = ('import os, time\nopen(%r, "a").write("%%d\\n" %% os.getpid())\ntime.sleep(600)'
              % str(pids))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.Popen([sys.executable, '-m', 'gluon_deeplab.launch', '-n', '2', '--',
                             sys.executable, '-c', worker], cwd=TESTS, env=env, **popen)
    deadline = time.time() + 60
    while time.time() < deadline and len(pids.read_text().split() if pids.exists() else []) < 2:
        time.sleep(0.2)
    children = subprocess.run(['pgrep', '-P', str(proc.pid)], capture_output=True,
                              text=True).stdout.split()
    assert len(children) == 4  # scheduler, server, 2 workers
    return proc, children, pids


def test_sigterm_to_the_launcher_stops_every_process_of_the_job(tmp_path):
    """What ``timeout``, ``kill`` and batch schedulers send: the launcher must take its
    scheduler, server and workers with it."""
    proc, children, pids = _sleeping_job(tmp_path, stderr=subprocess.PIPE, text=True)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 1
    assert 'terminated (SIGTERM); stopping the 4 other processes' in proc.stderr.read()
    time.sleep(1)
    alive = [p for p in children + pids.read_text().split() if os.path.exists('/proc/' + p)]
    assert not alive


def _running(pid):
    """Whether process ``pid`` exists and is not a zombie (an ended process not yet reaped:
    in a container, nothing may reap the launcher's orphans)."""
    try:
        with open('/proc/%s/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='the parent-death signal is Linux\'s prctl(PR_SET_PDEATHSIG)')
def test_sigkill_of_the_launcher_still_ends_every_process_of_the_job(tmp_path):
    """kill -9 leaves the launcher no chance to stop the job: its processes, each in its
    own session, must notice on their own."""
    proc, children, _ = _sleeping_job(tmp_path)
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.time() + 30
    while time.time() < deadline and any(map(_running, children)):
        time.sleep(0.2)
    assert not [p for p in children if _running(p)]
