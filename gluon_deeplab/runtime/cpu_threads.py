"""How many OpenMP threads MXNet computes with on the CPU.

MXNet 1.9.1 on x86, when neither ``OMP_NUM_THREADS`` nor ``MXNET_OMP_MAX_THREADS`` is set,
uses half of ``omp_get_num_procs()`` (``src/engine/openmp.cc``: it assumes two
hyper-threads per core; elsewhere it uses them all). On a machine without SMT (e.g. a
2-vCPU cloud VM whose vCPUs are whole cores) that is half the machine: measured on a
2-core AMD EPYC, ResNet18-v2 ASPP at 224x224, batch 8, trained at 2.96 img/s with 1 thread
and 5.16 with 2 (``scripts/bench.py``, README, Speed). Importing ``gluon_deeplab`` before
``mxnet`` sets ``OMP_NUM_THREADS`` to ``default_threads()`` on x86 Linux, unless the user
set either variable. MXNet reads it once, when its library loads; after ``import mxnet``
it changes nothing. Child processes inherit it (``launch.py`` divides it among the
workers it starts on one machine).
"""
import math
import os
import platform
import sys

__all__ = ['MARK', 'cgroup_cpu_limit', 'default_threads', 'mxnet_threads', 'physical_cores',
           'set_default_threads']

SYSFS_CPU = '/sys/devices/system/cpu'
CGROUP = '/sys/fs/cgroup'
#: Set (to the value) in the environment when ``set_default_threads`` chose
#: ``OMP_NUM_THREADS``, so that launchers know it is theirs to divide.
MARK = 'GLUON_DEEPLAB_DEFAULT_OMP_THREADS'
#: ``platform.machine()`` names of the CPUs on which MXNet halves its default.
X86 = ('x86_64', 'amd64', 'i386', 'i686', 'x86')


def _usable_cpus():
    if hasattr(os, 'sched_getaffinity'):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def physical_cores(cpus=None, sysfs=SYSFS_CPU):
    """The number of physical cores among ``cpus`` (logical CPU numbers; default: those
    this process may run on): distinct ``topology/thread_siblings_list`` sets read from
    ``sysfs``; ``len(cpus)`` where the topology cannot be read."""
    cpus = _usable_cpus() if cpus is None else sorted(cpus)
    cores = set()
    for cpu in cpus:
        try:
            with open(os.path.join(sysfs, 'cpu%d' % cpu, 'topology',
                                   'thread_siblings_list')) as f:
                cores.add(f.read().strip())
        except OSError:
            return len(cpus)
    return max(1, len(cores))


def _quota(folder):
    """Whole CPUs of the quota in ``folder`` (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``
    over ``cpu.cfs_period_us``), or None for none / unreadable."""
    try:
        with open(os.path.join(folder, 'cpu.max')) as f:
            quota, period = f.read().split()[:2]
    except (OSError, ValueError):
        try:
            with open(os.path.join(folder, 'cpu.cfs_quota_us')) as f:
                quota = f.read().strip()
            with open(os.path.join(folder, 'cpu.cfs_period_us')) as f:
                period = f.read().strip()
        except OSError:
            return None
    try:
        quota, period = float(quota), float(period)
    except ValueError:  # 'max': no quota
        return None
    if quota <= 0 or period <= 0:  # v1 writes -1 for no quota
        return None
    return max(1, math.floor(quota / period))  # a throttled extra thread stalls the rest


def cgroup_cpu_limit(root=CGROUP, proc_cgroup='/proc/self/cgroup'):
    """The smallest CPU quota, in whole CPUs (at least 1), of this process's cgroup and
    its ancestors under ``root`` (cgroup v2: the ``0::/path`` line of ``proc_cgroup``;
    v1: the ``cpu`` controller's folder ``root/cpu``, where a container sees its own), or
    None when there is no quota or it cannot be read (a container started with ``--cpus
    1.5`` gets 1)."""
    folders = []
    try:
        with open(proc_cgroup) as f:
            path = next((line.strip().split(':', 2)[2] for line in f
                         if line.startswith('0::')), None)
    except OSError:
        path = None
    if path is not None:
        parts = [p for p in path.split('/') if p]
        folders += [os.path.join(root, *parts[:i]) for i in range(len(parts), -1, -1)]
    folders.append(os.path.join(root, 'cpu'))
    limits = [q for q in map(_quota, folders) if q is not None]
    return min(limits) if limits else None


def default_threads():
    """One OpenMP thread per physical core this process may use (``physical_cores``), at
    most ``cgroup_cpu_limit()``."""
    threads, limit = physical_cores(), cgroup_cpu_limit()
    return min(threads, limit) if limit else threads


def set_default_threads(environ=None, modules=None, machine=None):
    """Set ``OMP_NUM_THREADS`` (and ``MARK``) in ``environ`` (default ``os.environ``) to
    ``default_threads()`` when the ``machine`` (default ``platform.machine()``) is x86,
    neither ``OMP_NUM_THREADS`` nor ``MXNET_OMP_MAX_THREADS`` is set and ``mxnet`` is not
    among ``modules`` (default ``sys.modules``: not imported yet). Returns the value
    set, or None when nothing was changed."""
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    machine = (platform.machine() if machine is None else machine).lower()
    if (machine not in X86 or 'OMP_NUM_THREADS' in environ or 'MXNET_OMP_MAX_THREADS' in environ
            or 'mxnet' in modules):
        return None
    environ['OMP_NUM_THREADS'] = environ[MARK] = str(default_threads())
    return environ['OMP_NUM_THREADS']


def mxnet_threads(environ=None, machine=None):
    """The OpenMP thread count MXNet runs with in a process started with ``environ``
    (default ``os.environ``) on ``machine`` (default ``platform.machine()``):
    ``MXNET_OMP_MAX_THREADS``, else ``OMP_NUM_THREADS`` (its first number), else MXNet's
    own default: half the usable CPUs on x86, all of them elsewhere."""
    environ = os.environ if environ is None else environ
    value = environ.get('MXNET_OMP_MAX_THREADS') or environ.get('OMP_NUM_THREADS')
    if value:
        return int(value.split(',')[0])
    cpus = len(_usable_cpus())
    machine = (platform.machine() if machine is None else machine).lower()
    return max(1, cpus // 2) if machine in X86 else cpus
