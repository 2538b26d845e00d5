"""Start a job on MXNet's parameter server (ps-lite): one scheduler, the servers and the
workers, each a process with the ``DMLC_*`` environment, all watched until they end.

    # 2 workers and 1 server on this machine, over 127.0.0.1
    python scripts/launch_dist.py -n 2 -- \\
        python -m gluon_deeplab.train --kvstore dist_sync --batch_size 16 ...
    # 2 machines: hosts.txt lists one address per line; --host is this machine's address
    # as the others reach it (the scheduler runs here)
    python scripts/launch_dist.py -n 2 -H hosts.txt --host 10.0.0.1 -- \\
        python -m gluon_deeplab.train --kvstore dist_sync ...

Workers and servers go to the hosts of ``-H`` in turn, started with ``ssh`` (keys, no
password prompt) in this folder's path; without ``-H`` everything runs here. Each
process binds to its host's address as given (``DMLC_NODE_HOST``), so a job on one
machine stays on the loopback interface. When any process exits with an error or is
killed, the launcher stops all the others and exits with status 1 naming it; the same
after ``--timeout`` seconds. If the launcher itself is killed (even by SIGKILL), every
process it started gets SIGTERM (Linux's parent-death signal). This replaces MXNet's
bundled ``tools/launch.py``, which fails on Python 3.11 (``Thread.isAlive``) and picks
a non-loopback address itself.
"""
import argparse
import ctypes
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

from .runtime.cpu_threads import MARK

__all__ = ['Node', 'job_nodes', 'run', 'main']

#: What a server or the scheduler runs: importing MXNet with DMLC_ROLE=server or
#: scheduler runs that role's loop, and the process exits when the job ends.
NODE_COMMAND = ['-c', 'import mxnet']


class Node(object):
    """One process of the job: ``role`` ('scheduler', 'server', 'worker'), its index
    within the role, the ``host`` it runs on (None: this machine, no ssh), the command
    (a list) and the ``DMLC_*`` variables it needs."""

    def __init__(self, role, index, host, command, env):
        self.role, self.index, self.host, self.command, self.env = (role, index, host,
                                                                    command, env)
        self.proc = None

    def __str__(self):
        return '%s %d%s' % (self.role, self.index, ' on %s' % self.host if self.host else '')


def _address(host):
    """The IPv4 address of ``host`` (ps-lite binds to addresses, not names)."""
    try:
        return socket.gethostbyname(host)
    except OSError as err:
        raise ValueError('cannot resolve host %r: %s' % (host, err))


def _free_port(host):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def job_nodes(command, num_workers, num_servers=None, hosts=None, host='127.0.0.1', port=0,
         python=sys.executable, environ=None):
    """The job's processes, as a list of ``Node``: the scheduler on this machine at
    ``host:port`` (``port`` 0: a free one), then ``num_servers`` servers (default: one
    per host, or 1) and ``num_workers`` workers running ``command`` (a list), placed on
    ``hosts`` in turn (None: all here, each bound to ``host``). Host names are resolved
    to addresses here. Where ``OMP_NUM_THREADS`` in ``environ`` (default ``os.environ``)
    is the package's default (``cpu_threads.MARK``), not the user's, the workers on this
    machine share it and its scheduler and servers get 1. Raises ValueError for fewer
    than one worker or server, or a host name that does not resolve."""
    if num_workers < 1:
        raise ValueError('need at least one worker, got -n %d' % num_workers)
    num_servers = num_servers or len(hosts or [host])
    if num_servers < 1:
        raise ValueError('need at least one server, got -s %d' % num_servers)
    port = port or _free_port(host)
    addresses = {h: _address(h) for h in (hosts or []) + [host]}
    common = {'DMLC_PS_ROOT_URI': addresses[host], 'DMLC_PS_ROOT_PORT': str(port),
              'DMLC_NUM_SERVER': str(num_servers), 'DMLC_NUM_WORKER': str(num_workers)}

    def node(role, index, cmd):
        where = hosts[index % len(hosts)] if hosts and role != 'scheduler' else None
        return Node(role, index, where, cmd,
                    dict(common, DMLC_ROLE=role, DMLC_NODE_HOST=addresses[where or host]))
    nodes = ([node('scheduler', 0, [python] + NODE_COMMAND)]
             + [node('server', i, [python] + NODE_COMMAND) for i in range(num_servers)]
             + [node('worker', i, list(command)) for i in range(num_workers)])
    environ = os.environ if environ is None else environ
    threads = environ.get(MARK)
    if threads and environ.get('OMP_NUM_THREADS') == threads:  # ours to divide
        here = [n for n in nodes if n.host is None]
        workers = max(1, sum(n.role == 'worker' for n in here))
        for n in here:
            n.env['OMP_NUM_THREADS'] = str(max(1, int(threads) // workers)
                                           if n.role == 'worker' else 1)
    return nodes


_PR_SET_PDEATHSIG = 1  # prctl(2) option: the signal a process gets when its parent dies


def _end_with_parent(launcher_pid):
    """Run in each node's process between fork and exec (Linux): SIGTERM when the
    launcher dies, even by SIGKILL, which leaves it no chance to stop the job itself. An
    ssh node then ends its remote command by hanging up. Elsewhere: nothing."""
    if not sys.platform.startswith('linux'):
        return None
    try:  # looked up here: no dynamic loading between fork and exec
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def arm():
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != launcher_pid:  # it died before the signal was armed
            os.kill(os.getpid(), signal.SIGTERM)
    return arm


def _start(node, ssh):
    arm = _end_with_parent(os.getpid())
    if node.host is None:
        node.proc = subprocess.Popen(node.command, env=dict(os.environ, **node.env),
                                     start_new_session=True,  # its own process group
                                     preexec_fn=arm)
    else:
        remote = 'cd %s && env %s %s' % (
            shlex.quote(os.getcwd()),
            ' '.join('%s=%s' % (k, shlex.quote(v)) for k, v in sorted(node.env.items())),
            ' '.join(shlex.quote(c) for c in node.command))
        node.proc = subprocess.Popen(shlex.split(ssh) + [node.host, remote],
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=arm)


def _stop(nodes, grace=5.0):
    """SIGTERM to every running node's process group, SIGKILL after ``grace`` s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        running = [n for n in nodes if n.proc is not None and n.proc.poll() is None]
        for n in running:
            try:
                os.killpg(n.proc.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + grace
        while running and time.time() < deadline:
            running = [n for n in running if n.proc.poll() is None]
            time.sleep(0.1)


def _status(code):
    return 'was killed by signal %d' % -code if code < 0 else 'exited with status %d' % code


class _Terminated(Exception):
    """SIGTERM arrived (``timeout``, ``kill``, a batch scheduler ending the job)."""


def _raise_terminated(signum, frame):
    raise _Terminated()


def run(nodes, timeout=None, ssh='ssh -tt -o BatchMode=yes', log=sys.stderr):
    """Start ``nodes`` (``job_nodes``) and watch them. Returns 0 once every worker exited with
    status 0 (servers and scheduler are then given 30 s to end); otherwise stops every
    process and returns 1 after writing which one failed, that ``timeout`` seconds
    passed, or that the launcher was interrupted (SIGINT) or terminated (SIGTERM), to
    ``log``: no process of the job outlives the launcher."""
    workers = [n for n in nodes if n.role == 'worker']
    start = time.time()
    previous = signal.signal(signal.SIGTERM, _raise_terminated)

    def fail(message):
        others = [n for n in nodes if n.proc is not None and n.proc.poll() is None]
        log.write('launch_dist: %s; stopping the %d other processes of the job\n'
                  % (message, len(others)))
        log.flush()
        _stop(nodes)
        return 1
    try:
        for node in nodes:
            _start(node, ssh)
        while True:
            for node in nodes:
                code = node.proc.poll()
                if code is not None and code != 0:
                    return fail('%s (pid %d) %s' % (node, node.proc.pid, _status(code)))
            if all(w.proc.poll() == 0 for w in workers):
                break
            if timeout and time.time() - start > timeout:
                return fail('the job did not finish within --timeout %g s' % timeout)
            time.sleep(0.2)
        deadline = time.time() + 30
        while time.time() < deadline and any(n.proc.poll() is None for n in nodes):
            time.sleep(0.1)
        _stop(nodes)
        return 0
    except KeyboardInterrupt:
        return fail('interrupted')
    except _Terminated:
        return fail('terminated (SIGTERM)')
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='example: python scripts/launch_dist.py -n 2 -- python -m gluon_deeplab.train '
               '--kvstore dist_sync ...')
    p.add_argument('-n', '--num_workers', type=int, required=True)
    p.add_argument('-s', '--num_servers', type=int, default=None,
                   help='default: one per host (1 without --hostfile)')
    p.add_argument('-H', '--hostfile', default=None,
                   help='one host address per line (# comments); workers and servers go to '
                        'them in turn, over ssh')
    p.add_argument('--host', default='127.0.0.1',
                   help='address of this machine that the scheduler binds to (and, without '
                        '--hostfile, every process); with --hostfile, one the hosts reach')
    p.add_argument('--port', type=int, default=0, help='scheduler port; 0: a free one')
    p.add_argument('--timeout', type=float, default=0,
                   help='seconds after which the whole job is stopped; 0: none')
    p.add_argument('--ssh', default='ssh -tt -o BatchMode=yes',
                   help='command that runs a command on a host: SSH HOST COMMAND')
    p.add_argument('--python', default=sys.executable,
                   help='Python (with MXNet) that servers and the scheduler run, on every host')
    p.add_argument('command', nargs=argparse.REMAINDER,
                   help='the worker command, after --')
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ['--'] else args.command
    if not command:
        p.error('give the worker command after --')
    hosts = None
    if args.hostfile:
        with open(args.hostfile) as f:
            hosts = [line.split('#')[0].strip() for line in f]
        hosts = [h for h in hosts if h]
        if not hosts:
            p.error('%s lists no host' % args.hostfile)
        if args.host in ('127.0.0.1', 'localhost') and any(
                h not in ('127.0.0.1', 'localhost') for h in hosts):
            p.error('with remote hosts, --host must be an address of this machine that '
                    'they can reach (the scheduler listens there)')
    try:
        nodes = job_nodes(command, args.num_workers, args.num_servers, hosts, args.host, args.port,
                     args.python)
    except (ValueError, OSError) as err:
        p.error(str(err))
    return run(nodes, args.timeout, args.ssh)


if __name__ == '__main__':
    sys.exit(main())
