"""How many OpenMP threads MXNet computes with on the CPU.

MXNet 1.9.1, when neither ``OMP_NUM_THREADS`` nor ``MXNET_OMP_MAX_THREADS`` is set, uses
half of ``omp_get_num_procs()`` on x86 (``src/engine/openmp.cc``: it assumes two
hyper-threads per core). On a machine without SMT (e.g. a 2-vCPU cloud VM whose vCPUs are
whole cores) that is half the machine: measured on a 2-core AMD EPYC, ResNet18-v2 ASPP at
224x224, batch 8, trained at 2.96 img/s with 1 thread and 5.16 with 2 (``scripts/bench.py``,
README, Speed). Importing ``gluon_deeplab`` before ``mxnet`` sets ``OMP_NUM_THREADS`` to the
number of physical cores this process may run on (at most its cgroup CPU quota, as a
container limited with ``--cpus`` has), unless the user set either variable. MXNet
reads it once, when its library loads; after ``import mxnet`` it changes nothing.
"""
import math
import os
import sys

__all__ = ['cgroup_cpu_limit', 'physical_cores', 'set_default_threads']

SYSFS_CPU = '/sys/devices/system/cpu'
CGROUP = '/sys/fs/cgroup'


def physical_cores(cpus=None, sysfs=SYSFS_CPU):
    """The number of distinct physical cores (package, core id) among ``cpus`` (logical
    CPU numbers; default: the ones this process may run on), read from ``sysfs``;
    ``len(cpus)`` where the topology cannot be read."""
    cpus = sorted(os.sched_getaffinity(0) if cpus is None else cpus)
    cores = set()
    for cpu in cpus:
        topology = os.path.join(sysfs, 'cpu%d' % cpu, 'topology')
        try:
            with open(os.path.join(topology, 'physical_package_id')) as f:
                package = f.read().strip()
            with open(os.path.join(topology, 'core_id')) as f:
                cores.add((package, f.read().strip()))
        except OSError:
            return len(cpus)
    return max(1, len(cores))


def cgroup_cpu_limit(root=CGROUP):
    """The CPUs this process's cgroup may use per period, rounded up (cgroup v2
    ``cpu.max``, else v1 ``cpu/cpu.cfs_quota_us`` over ``cpu.cfs_period_us``, under
    ``root``), or None when there is no quota or it cannot be read."""
    try:
        with open(os.path.join(root, 'cpu.max')) as f:
            quota, period = f.read().split()[:2]
    except (OSError, ValueError):
        try:
            with open(os.path.join(root, 'cpu', 'cpu.cfs_quota_us')) as f:
                quota = f.read().strip()
            with open(os.path.join(root, 'cpu', 'cpu.cfs_period_us')) as f:
                period = f.read().strip()
        except OSError:
            return None
    try:
        quota, period = float(quota), float(period)
    except ValueError:  # 'max': no quota
        return None
    if quota <= 0 or period <= 0:  # v1 writes -1 for no quota
        return None
    return max(1, math.ceil(quota / period))


def set_default_threads(environ=None, modules=None):
    """Set ``OMP_NUM_THREADS`` in ``environ`` (default ``os.environ``) to
    ``physical_cores()``, at most ``cgroup_cpu_limit()``, when neither it nor
    ``MXNET_OMP_MAX_THREADS`` is set and ``mxnet`` is not among ``modules`` (default
    ``sys.modules``: not imported yet). Returns the value set, or None when nothing was
    changed."""
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    if ('OMP_NUM_THREADS' in environ or 'MXNET_OMP_MAX_THREADS' in environ
            or 'mxnet' in modules):
        return None
    threads = physical_cores()
    limit = cgroup_cpu_limit()
    environ['OMP_NUM_THREADS'] = str(min(threads, limit) if limit else threads)
    return environ['OMP_NUM_THREADS']
